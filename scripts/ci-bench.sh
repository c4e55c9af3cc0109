#!/usr/bin/env bash
# The performance-regression gate for CI: builds BASE_REF's gev-echo in a temporary git worktree
# and the working tree's gev-echo, runs `harness compare` between them in one session (side by
# side), prints the markdown table on stdout, and exits with the gate's status.
#
# Usage: scripts/ci-bench.sh [BASE_REF] [-- EXTRA HARNESS COMPARE ARGS...]
#   BASE_REF defaults to origin/main when that ref exists, else HEAD~1.
#   Extra arguments go to `harness compare` (e.g. -- --repeats 8 --callgrind). The gate always
#   runs with --until-confident: while a verdict is inconclusive it adds rounds, up to
#   --max-repeats (default 15), so a noisy stretch costs time rather than a missed regression.
#
# Exit status: 0 no regression, 1 regression (the gate failed), 2 usage or build error.
# Progress and build logs go to stderr, so `scripts/ci-bench.sh > table.md` keeps only the table.
# Environment: CI_BENCH_TARGET_DIR keeps the base build's target dir across runs (default: a
# temporary one, removed on exit); CI_BENCH_PROFILE is the cargo profile both sides are built
# with (default release; the test suite uses fast).
#
# Build order: the working tree first, then the base. A fresh base target dir is seeded with the
# registry crates the working tree's build already compiled (hard links to their .rlib/.rmeta/.so,
# copies of their build-script outputs and fingerprints), so the base build compiles only the
# base's own crates and any dependency whose version differs at the base (cargo's fingerprints
# decide, as in any incremental build). The workspace's own crates (`gev*`) are never seeded.
set -euo pipefail

die() {
    echo "ci-bench: $*" >&2
    exit 2
}

# Variables cargo sets for a crate it builds or tests (this script runs under `cargo nextest` in
# harness/tests/ci_bench.rs). Cargo compares the ones build scripts watch (ring's
# `rerun-if-env-changed=CARGO_PKG_NAME`, ...) with its own environment, so inherited they would
# rerun those build scripts and rebuild ring, rustls and all above them in the shared target dir,
# twice: here, and again in the next ordinary build.
unset OUT_DIR CARGO_MANIFEST_DIR CARGO_MANIFEST_PATH CARGO_MANIFEST_LINKS CARGO_CRATE_NAME \
    CARGO_PRIMARY_PACKAGE CARGO_TARGET_TMPDIR
for variable in $(compgen -e); do
    case $variable in CARGO_PKG_* | CARGO_BIN_*) unset "$variable" ;; esac
done

root=$(git rev-parse --show-toplevel 2>/dev/null) || die "not inside a git repository"
cd "$root"

base_ref=""
if [[ $# -gt 0 && $1 != "--" ]]; then
    base_ref=$1
    shift
fi
if [[ $# -gt 0 && $1 == "--" ]]; then
    shift
fi
if [[ -z $base_ref ]]; then
    if git rev-parse --verify --quiet "origin/main^{commit}" >/dev/null; then
        base_ref=origin/main
    else
        base_ref=HEAD~1
    fi
fi
base_commit=$(git rev-parse --verify --quiet "${base_ref}^{commit}") ||
    die "base ref '$base_ref' does not exist in $root (fetch it first, e.g. 'git fetch origin main', or pass a commit: scripts/ci-bench.sh <ref>)"

work=$(mktemp -d "${TMPDIR:-/tmp}/gev-ci-bench.XXXXXX")
base_tree="$work/base"
cleanup() {
    git -C "$root" worktree remove --force "$base_tree" >/dev/null 2>&1 || true
    git -C "$root" worktree prune >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

base_target=${CI_BENCH_TARGET_DIR:-"$work/target"}
profile=${CI_BENCH_PROFILE:-release}
[[ $profile =~ ^[A-Za-z0-9_-]+$ ]] || die "CI_BENCH_PROFILE '$profile' is not a cargo profile name (e.g. release)"
# Where cargo puts a profile's binaries: its own name, except the dev profile's `debug`.
profile_dir=$profile
[[ $profile == dev ]] && profile_dir=debug

echo "ci-bench: base $base_ref ($(git rev-parse --short "$base_commit")) vs working tree ($(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ', with local changes'))" >&2
git worktree add --detach "$base_tree" "$base_commit" >&2 || die "cannot create a worktree for $base_ref"

# The whole workspace's binaries, as scripts/test.sh builds them: the same feature set, so a
# build the test suite already made is reused as it is.
echo "ci-bench: building the working tree's gev, loadgen and harness ($profile)" >&2
cargo build --profile "$profile" --workspace --bins >&2 ||
    die "building the working tree failed (see the log above)"
target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
target_dir=${target_dir:-"$root/target"}
candidate_echo="$target_dir/$profile_dir/gev-echo"
harness="$target_dir/$profile_dir/harness"
[[ -x $candidate_echo ]] || die "the working tree has no gev-echo binary ($candidate_echo)"

# Seeds a fresh base target dir with the working tree's compiled registry crates (see the header).
seed_base_target() {
    local from="$target_dir/$profile_dir" to="$base_target/$profile_dir"
    mkdir -p "$to/deps" "$to/build" "$to/.fingerprint" || return 1
    find "$from/deps" -maxdepth 1 -type f -name 'lib*' ! -name 'libgev*' \
        \( -name '*.rlib' -o -name '*.rmeta' -o -name '*.so' \) -exec ln -t "$to/deps" {} + || return 1
    find "$from/deps" -maxdepth 1 -type f -name '*.d' ! -name 'gev*' -exec cp -p -t "$to/deps" {} + ||
        return 1
    find "$from/build" "$from/.fingerprint" -mindepth 1 -maxdepth 1 ! -name 'gev*' -print0 |
        while IFS= read -r -d '' dir; do
            cp -a "$dir" "$to/${dir#"$from/"}" || exit 1
        done
}
if [[ -d $target_dir/$profile_dir/deps && ! -e $base_target/$profile_dir ]]; then
    if seed_base_target 2>/dev/null; then
        echo "ci-bench: seeded $base_target with the working tree's compiled dependencies" >&2
    else
        # Hard links need one file system; without them the base build compiles everything.
        echo "ci-bench: could not seed $base_target (another file system?); building from scratch" >&2
        rm -rf "${base_target:?}/$profile_dir"
    fi
fi

# Only the binary the gate runs, but resolved for the whole workspace as the working tree's build
# was: cargo unifies dependency features over the packages selected, so `-p gev` alone would give
# ring, flate2 and others other features, other hashes, and a rebuild of each.
echo "ci-bench: building the base gev-echo ($profile) in $base_tree" >&2
(cd "$base_tree" && CARGO_TARGET_DIR="$base_target" cargo build --profile "$profile" --workspace --bin gev-echo) >&2 ||
    die "building gev-echo at $base_ref failed (see the log above; a base without gev-echo is too old)"
base_echo="$base_target/$profile_dir/gev-echo"
[[ -x $base_echo ]] || die "$base_ref has no gev-echo binary (looked for $base_echo); pick a newer base ref"

set +e
"$harness" compare \
    --baseline-cmd "$base_echo --host 127.0.0.1 --port {port} --loops {loops}" \
    --candidate-cmd "$candidate_echo --host 127.0.0.1 --port {port} --loops {loops}" \
    --until-confident "$@"
status=$?
set -e
case $status in
0 | 1) exit "$status" ;;
*) die "harness compare failed (exit $status)" ;;
esac
