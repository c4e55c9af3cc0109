# Shared by the loadgen benchmark scripts: start a workspace server pinned to a core, wait for its
# `listening on ADDR` line, and stop it when the script exits. Source this file.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin="$root/target/${PROFILE:-fast}"
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill -INT "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# start_server CPUS NAME ARGS... -> sets server_pid and server_addr
start_server() {
  local cpus=$1 name=$2; shift 2
  for b in "$bin/$name" "$bin/loadgen"; do
    [ -x "$b" ] || { echo "missing $b: run cargo build --profile ${PROFILE:-fast} --workspace --bins" >&2; exit 1; }
  done
  RUST_LOG=warn taskset -c "$cpus" "$bin/$name" --host 127.0.0.1 --port 0 "$@" > "$work/server.out" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    server_addr=$(sed -n 's/^listening on //p' "$work/server.out")
    [ -n "$server_addr" ] && return 0
    sleep 0.1
  done
  echo "$name printed no listening line" >&2; exit 1
}

# json_field FILE EXPR: evaluate a Python expression on the parsed summary `s`.
json_field() {
  python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print($2)" "$1"
}

# thread_cpu_ticks PID PREFIX: user+system ticks of the threads of PID whose name starts with PREFIX.
thread_cpu_ticks() {
  local total=0 f comm rest
  for f in /proc/"$1"/task/*/stat; do
    comm=$(sed -E 's/^[0-9]+ \((.*)\) .*/\1/' "$f")
    case "$comm" in "$2"*) ;; *) continue ;; esac
    rest=$(sed -E 's/^.*\) //' "$f")
    set -- $rest
    total=$((total + ${12} + ${13}))
    set -- "$1" "$2"
  done
  echo "$total"
}

rss_kib() { awk '/^VmRSS/ {print $2}' /proc/"$1"/status; }

# cpu_run OUT_FILE CMD...: run CMD with stdout to OUT_FILE and print the CPU seconds (user +
# system) it used, from the kernel's child accounting.
cpu_run() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys
with open(sys.argv[1], "w") as out:
    subprocess.run(sys.argv[2:], stdout=out, check=True)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{usage.ru_utime + usage.ru_stime:.3f}")
PY
}
