#!/usr/bin/env bash
# Is one loadgen thread the bottleneck against one gev-echo loop? gev-echo (one loop) on CPU 0,
# loadgen (one thread) on CPU 1, closed loop; reports req/s and the CPU share of the server's loop
# thread and of the generator thread over the same run, and each side's CPU time per request
# (robust on a shared machine): the side that needs more CPU per request is the one that would
# saturate first.
# Usage: loadgen/bench/generator_vs_echo.sh [SECONDS=5] [CONNECTIONS=64] [PIPELINE=1]
source "$(dirname "$0")/common.sh"
secs=${1:-5}; conns=${2:-64}; pipeline=${3:-1}
start_server 0 gev-echo --loops 1
hz=$(getconf CLK_TCK)
before=$(thread_cpu_ticks "$server_pid" gev-loop)
start=$(date +%s.%N)
taskset -c 1 "$bin/loadgen" "$server_addr" -t 1 -c "$conns" --pipeline "$pipeline" -d "${secs}s" --json > "$work/lg.json"
end=$(date +%s.%N)
after=$(thread_cpu_ticks "$server_pid" gev-loop)
python3 - "$work/lg.json" "$before" "$after" "$hz" "$start" "$end" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
ticks = int(sys.argv[3]) - int(sys.argv[2]); hz = int(sys.argv[4]); wall = float(sys.argv[6]) - float(sys.argv[5])
print(f"closed loop, {s['config']['connections']} connections, pipeline {s['config']['pipeline']}: "
      f"{s['throughput']['rps']:.0f} req/s, p99 {s['latency_us']['p99']:.0f} us")
done = s['requests']['completed']
server_cpu = ticks / hz
gen_cpu = s['generator_cpu_percent'][0] / 100.0 * s['duration_secs']
print(f"gev-echo loop thread cpu {100.0 * server_cpu / wall:.0f}% of the wall time incl. start-up, {1e6 * server_cpu / done:.2f} us per request")
print(f"loadgen thread cpu {s['generator_cpu_percent'][0]:.0f}% of the measured window, {1e6 * gen_cpu / done:.2f} us per request")
print(f"generator/server cpu per request: {gen_cpu / server_cpu:.2f}")
for w in s["warnings"]:
    print("warning:", w)
PY
