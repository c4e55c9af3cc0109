#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain: `wrk` and `valgrind` (Debian
# packages) for the HTTP comparison and the callgrind gate, cargo-fuzz for the bounded fuzz runs,
# and a Python virtualenv at .venv-test/ with pinned test peers: the Autobahn fuzzing client port
# (kosoku), two WebSocket client libraries and the Prometheus text parser. Idempotent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

# wrk: loadgen is checked against it; valgrind: the gate's callgrind instruction counts.
missing=""
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
command -v valgrind >/dev/null 2>&1 || missing="$missing valgrind"
# openssh-server (Debian's sshd) and ping: harness/tests/multi_host.rs runs a real sshd in each
# network namespace of its multi-host sweep and checks the reported RTT against ping.
[ -x /usr/sbin/sshd ] || missing="$missing openssh-server"
command -v ping >/dev/null 2>&1 || missing="$missing iputils-ping"
if [ -n "$missing" ]; then
  echo "setup-test-deps: installing$missing with apt-get" >&2
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  # shellcheck disable=SC2086 # the list is meant to split into package names
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
fi

# cargo-fuzz runs the WebSocket fuzz targets for a bounded time in the test suite
# (server/tests/ws_fuzz.rs); stable rustc takes its nightly flags with RUSTC_BOOTSTRAP=1.
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz 0.13.2" ]; then
  echo "setup-test-deps: installing cargo-fuzz 0.13.2" >&2
  cargo install --quiet --locked cargo-fuzz --version 0.13.2
fi

# The venv is shared by every checkout of the same requirements: it is built once in a per-user
# cache (GEV_TEST_CACHE, default ~/.cache/gev-test) and .venv-test/ is a symlink to it, so a fresh
# clone (CI) does not spend ~45 s on pip. A .venv-test/ that is a real directory is kept and
# updated in place, as before.
venv="$root/.venv-test"
want="kosoku==0.1.0 websockets==17.4 websocket-client==1.9.2 prometheus-client==0.26.0"
venv_ready() { [ -x "$1/bin/python" ] && [ "$(cat "$1/.requirements" 2>/dev/null)" = "$want" ]; }
make_venv() {
  echo "setup-test-deps: creating $1" >&2
  python3 -m venv "$1"
  # shellcheck disable=SC2086 # the list is meant to split into requirements
  "$1/bin/python" -m pip install --quiet --disable-pip-version-check $want
  echo "$want" > "$1/.requirements"
}
if ! venv_ready "$venv"; then
  if [ -d "$venv" ] && [ ! -L "$venv" ]; then
    make_venv "$venv"
  else
    cache="${GEV_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gev-test}"
    shared="$cache/venv-$(echo "$want" | sha256sum | cut -c1-16)"
    mkdir -p "$cache"
    # One builder at a time: console scripts (kosoku) name the venv's absolute path, so it is
    # built where it stays rather than built elsewhere and moved.
    exec 9>"$cache/.lock"
    flock 9
    venv_ready "$shared" || { rm -rf "$shared"; make_venv "$shared"; }
    flock -u 9
    rm -f "$venv"
    ln -s "$shared" "$venv"
    echo "setup-test-deps: $venv -> $shared" >&2
  fi
fi
