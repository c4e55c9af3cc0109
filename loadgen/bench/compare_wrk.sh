#!/usr/bin/env bash
# loadgen --framing http vs wrk against gev-http on the same core split: the server (one loop)
# on CPU 0, the client (one thread) on CPU 1, alternating runs so both see the same machine load.
# Usage: loadgen/bench/compare_wrk.sh [ROUNDS=3] [SECONDS=5] [CONNECTIONS=64]
source "$(dirname "$0")/common.sh"
rounds=${1:-3}; secs=${2:-5}; conns=${3:-64}
command -v wrk >/dev/null || { echo "wrk missing: run scripts/setup-test-deps.sh" >&2; exit 1; }
start_server 0 gev-http --loops 1
url="http://$server_addr/"
echo "gev-http on CPU 0 at $url; clients on CPU 1; $conns connections, ${secs}s per run"
for r in $(seq "$rounds"); do
  wrk_rps=$(taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" "$url" | awk '/^Requests\/sec:/ {print $2}')
  taskset -c 1 "$bin/loadgen" "$url" -t 1 -c "$conns" -d "${secs}s" --json > "$work/lg.json"
  lg_rps=$(json_field "$work/lg.json" 's["throughput"]["rps"]')
  lg_cpu=$(json_field "$work/lg.json" 's["generator_cpu_percent"][0]')
  lg_p99=$(json_field "$work/lg.json" 's["latency_us"]["p99"]')
  python3 -c "import sys; w,l=float(sys.argv[1]),float(sys.argv[2]); print(f'round $r: wrk {w:.0f} req/s  loadgen {l:.0f} req/s (thread cpu {float(sys.argv[3]):.0f}%, p99 {float(sys.argv[4]):.0f} us)  loadgen/wrk {l/w:.3f}')" "$wrk_rps" "$lg_rps" "$lg_cpu" "$lg_p99"
done
