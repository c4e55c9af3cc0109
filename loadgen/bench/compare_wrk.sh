#!/usr/bin/env bash
# loadgen --framing http vs wrk against gev-http on the same core split: the server (one loop)
# on CPU 0, the client (one thread) on CPU 1, alternating runs so both see the same machine load.
# Prints each client's req/s, their ratio, and each client's CPU time per request (the
# load-robust measure of the generator's own cost).
# Usage: loadgen/bench/compare_wrk.sh [ROUNDS=3] [SECONDS=5] [CONNECTIONS=64]
source "$(dirname "$0")/common.sh"
rounds=${1:-3}; secs=${2:-5}; conns=${3:-64}
command -v wrk >/dev/null || { echo "wrk missing: run scripts/setup-test-deps.sh" >&2; exit 1; }
start_server 0 gev-http --loops 1
url="http://$server_addr/"
echo "gev-http (1 loop) on CPU 0 at $url; clients (1 thread) on CPU 1; $conns connections, ${secs}s per run"
for r in $(seq "$rounds"); do
  wrk_cpu=$(cpu_run "$work/wrk.txt" taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" "$url")
  lg_cpu=$(cpu_run "$work/lg.json" taskset -c 1 "$bin/loadgen" "$url" -t 1 -c "$conns" -d "${secs}s" --json)
  python3 - "$work/wrk.txt" "$work/lg.json" "$wrk_cpu" "$lg_cpu" "$r" <<'PY'
import json, re, sys
wrk_text = open(sys.argv[1]).read()
w = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk_text).group(1))
w_total = int(re.search(r"(\d+) requests in", wrk_text).group(1))
s = json.load(open(sys.argv[2]))
l = s["throughput"]["rps"]
wrk_cpu, lg_cpu = float(sys.argv[3]), float(sys.argv[4])
print(f"round {sys.argv[5]}: wrk {w:.0f} req/s ({1e6 * wrk_cpu / w_total:.1f} us cpu/req)  "
      f"loadgen {l:.0f} req/s ({1e6 * lg_cpu / max(s['requests']['completed'], 1):.1f} us cpu/req, "
      f"p99 {s['latency_us']['p99']:.0f} us)  loadgen/wrk {l / w:.3f}")
PY
done
