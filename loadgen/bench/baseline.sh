#!/usr/bin/env bash
# How far is loadgen from the least a client can do? gev-echo (one loop) on CPU 0; on CPU 1,
# alternately, the minimal ping-pong client `pingpong-baseline` and `loadgen -t 1`, with the same
# connections, payload size, pipeline, warm-up and measured window. For each pipeline depth it
# prints, as medians over the rounds, the requests each client completed per CPU second of its
# own thread over the measured window, and the ratio loadgen / baseline (1.0: loadgen costs no
# more CPU per request than the floor; the target is >= 0.90). CPU per request is what matters
# here, not req/s: on a shared machine the rates move with everyone else's load, the cost much
# less, and each round runs both clients back to back (which one goes first alternates).
#
# Usage: loadgen/bench/baseline.sh [SECONDS=3] [CONNECTIONS=50] [ROUNDS=5] [PIPELINES="1 16 64"]
# Env: PROFILE (default release; build with cargo build --release -p gev -p gev-loadgen --bins),
#      LOADGEN (another loadgen binary to measure, e.g. one built from main), SIZE (default 64).
PROFILE=${PROFILE:-release}
source "$(dirname "$0")/common.sh"
secs=${1:-3}; conns=${2:-50}; rounds=${3:-5}; pipelines=${4:-"1 16 64"}
size=${SIZE:-64}
loadgen=${LOADGEN:-$bin/loadgen}
baseline=$bin/pingpong-baseline
[ -x "$baseline" ] || { echo "missing $baseline: run cargo build --profile $PROFILE -p gev -p gev-loadgen --bins" >&2; exit 1; }
start_server 0 gev-echo --loops 1

run_baseline() { # PIPELINE -> "requests cpu_secs"
  taskset -c 1 "$baseline" "$server_addr" -c "$conns" --pipeline "$1" --size "$size" \
    -d "$secs" --warmup 1 > "$work/b.json"
  json_field "$work/b.json" 's["requests"], s["cpu_secs"]'
}
run_loadgen() { # PIPELINE -> "requests cpu_secs"
  taskset -c 1 "$loadgen" "$server_addr" -t 1 -c "$conns" --pipeline "$1" --size "$size" \
    -d "${secs}s" --warmup 1s --json > "$work/l.json"
  json_field "$work/l.json" \
    's["requests"]["completed"], s["generator_cpu_percent"][0] / 100 * s["duration_secs"]'
}

: > "$work/results"
for round in $(seq "$rounds"); do
  for p in $pipelines; do
    if [ $((round % 2)) -eq 1 ]; then
      b=$(run_baseline "$p"); l=$(run_loadgen "$p")
    else
      l=$(run_loadgen "$p"); b=$(run_baseline "$p")
    fi
    echo "$p $b $l" >> "$work/results"
    echo "round $round pipeline $p: baseline $b, loadgen $l (requests cpu_secs)" >&2
  done
done

python3 - "$work/results" "$conns" "$size" "$secs" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
conns, size, secs = sys.argv[2:5]
print(f"{conns} connections, {size} B payload, {secs} s measured per run, medians over rounds")
print(f"{'pipeline':>8} {'baseline req/cpu-s':>19} {'loadgen req/cpu-s':>18} {'ratio':>6} {'ratios (per round)':>20}")
for p in dict.fromkeys(r[0] for r in rows):
    mine = [r for r in rows if r[0] == p]
    base = [int(r[1]) / float(r[2]) for r in mine]
    lg = [int(r[3]) / float(r[4]) for r in mine]
    ratios = [l / b for l, b in zip(lg, base)]
    print(f"{p:>8} {statistics.median(base):>19,.0f} {statistics.median(lg):>18,.0f} "
          f"{statistics.median(ratios):>6.3f} {' '.join(f'{r:.2f}' for r in ratios):>20}")
PY
