//! End-to-end test of `scripts/ci-bench.sh`, the gate as a pull request runs it: it checks out a
//! base commit in a git worktree, builds its gev-echo, builds the working tree, and runs
//! `harness compare` between the two. Here the base is `HEAD` and the build profile is the one
//! this test was built with (`fast` under `scripts/test.sh`), so the working tree's build is the
//! one the suite already made; the base's is a real build of the base commit in a temporary
//! target directory under `target/`, which the script seeds with the working tree's compiled
//! registry crates, so only gev itself compiles (the test checks the seeding happened: it is what
//! keeps this test to about a minute instead of a full dependency build).
//!
//! Runs alone and first (see `.config/nextest.toml`): it compiles while it runs. Bounded: the
//! script and everything it started are killed as a process group after [`TIMEOUT`].

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::Finished;

use serde_json::Value;

/// A build of the gev crate plus a few short comparison rounds, with room for a slow machine
/// (and for a full build should seeding ever fail).
const TIMEOUT: Duration = Duration::from_secs(900);

/// The cargo profile this test binary was built with, from target/<profile dir>/deps/<test>.
fn cargo_profile() -> String {
    let dir = common::bin_dir()
        .file_name()
        .and_then(|name| name.to_str())
        .expect("profile directory")
        .to_string();
    if dir == "debug" {
        "dev".to_string()
    } else {
        dir
    }
}

/// A temporary base target dir beside the workspace's own `target/<profile>` directories: the
/// same file system, so the script can seed it with hard links.
fn base_target_dir() -> tempfile::TempDir {
    let target = common::bin_dir()
        .parent()
        .expect("target/<profile> has a parent")
        .to_path_buf();
    tempfile::Builder::new()
        .prefix("ci-bench-base-")
        .tempdir_in(target)
        .expect("temporary directory in target/")
}

fn ci_bench(args: &[&str], base_target: &Path) -> Finished {
    let mut command = Command::new("bash");
    command
        .arg(common::workspace_root().join("scripts/ci-bench.sh"))
        .args(args)
        .current_dir(common::workspace_root())
        .env("CI_BENCH_PROFILE", cargo_profile())
        .env("CI_BENCH_TARGET_DIR", base_target);
    common::run_within(
        command,
        &format!("scripts/ci-bench.sh {args:?}"),
        TIMEOUT,
        true,
    )
}

#[test]
fn ci_bench_builds_the_base_commit_and_gates_the_working_tree_against_it() {
    let base_target = base_target_dir();
    let output = ci_bench(
        &[
            "HEAD",
            "--",
            "--repeats",
            "2",
            "--max-repeats",
            "2",
            "--connections",
            "8",
            "--duration",
            "500ms",
            "--warmup",
            "200ms",
            "--json",
        ],
        base_target.path(),
    );
    let (stdout, stderr) = (&output.stdout, &output.stderr);
    let report: Value = serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("stdout is not a compare report ({e}):\n{stdout}\n{stderr}"));
    assert_eq!(report["schema"], "gev-compare/1");
    assert_eq!(report["evidence"], "same_run_paired");
    assert_eq!(report["schedule"], "side-by-side");
    // The base is the worktree build in the given target dir; the candidate the working tree's.
    let baseline = report["baseline"].as_str().expect("baseline command");
    assert!(
        baseline.starts_with(&base_target.path().display().to_string()),
        "{baseline}"
    );
    assert!(report["candidate"]
        .as_str()
        .expect("candidate command")
        .contains("gev-echo"));
    assert_eq!(report["repeats"], 2);
    // The same commit on both sides (up to local edits while developing): the gate must not
    // fail. Two rounds are fewer than the six a `regressed` verdict needs, so this holds however
    // noisy the machine is, not just usually.
    assert_eq!(report["regressed"], false, "{report}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("ci-bench: base HEAD"), "{stderr}");
    assert!(
        stderr.contains("ci-bench: seeded"),
        "the base target dir was not seeded with the compiled dependencies:\n{stderr}"
    );
}

#[test]
fn a_base_ref_that_does_not_exist_is_one_clear_line_and_exit_2() {
    let base_target = base_target_dir();
    let output = ci_bench(&["no-such-ref-gev"], base_target.path());
    let stderr = &output.stderr;
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no-such-ref-gev"), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(output.stdout.is_empty());
}
