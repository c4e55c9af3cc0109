#!/usr/bin/env bash
# Open and hold N connections (default 10 000) against gev-echo with a light open-loop load, and
# report the resident memory per connection of the generator and of the server: RSS while holding
# N connections minus RSS while holding 100 (same threads, same rate), divided by the difference,
# plus the kernel's per-socket object sizes from /proc/slabinfo (outside both processes' RSS).
# Usage: loadgen/bench/hold_connections.sh [N=10000] [SECONDS=10]
source "$(dirname "$0")/common.sh"
n=${1:-10000}; secs=${2:-10}
few=100
start_server 0 gev-echo --loops 1
measure() {  # measure CONNECTIONS -> "loadgen_rss_kib server_rss_kib opened"
  local c=$1
  "$bin/loadgen" "$server_addr" -t 1 -c "$c" -R 1000 --warmup 3s -d "${secs}s" --json > "$work/hold-$c.json" &
  local lg=$!
  sleep $((3 + secs / 2))
  local lg_rss srv_rss tcp_pages  # tcp_pages: active TCP socket objects in the slab
  lg_rss=$(rss_kib "$lg"); srv_rss=$(rss_kib "$server_pid")
  tcp_pages=$(awk '/^TCP / {print $2}' /proc/slabinfo 2>/dev/null || echo 0)
  wait "$lg"
  echo "$lg_rss $srv_rss $tcp_pages $(json_field "$work/hold-$c.json" 's["connections"]["opened"]')"
}
read -r lg_few srv_few tcp_few opened_few < <(measure $few)
read -r lg_many srv_many tcp_many opened_many < <(measure "$n")
python3 - "$work/hold-$n.json" "$n" "$few" "$lg_few" "$lg_many" "$srv_few" "$srv_many" "$opened_many" "$tcp_few" "$tcp_many" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
n, few, lg_few, lg_many, srv_few, srv_many, opened, tcp_few, tcp_many = map(int, sys.argv[2:])
d = n - few
print(f"{opened} connections opened (failed {s['connections']['failed']}), connect p50 {s['connect_us']['p50']:.0f} us p99 {s['connect_us']['p99']:.0f} us")
print(f"{s['throughput']['rps']:.0f} req/s of -R 1000 while holding them, latency p99 {s['latency_us']['p99']:.0f} us, errors {s['requests']['errors']}")
print(f"loadgen RSS {lg_few} KiB with {few} connections, {lg_many} KiB with {n}: {1024 * (lg_many - lg_few) / d:.0f} bytes per connection")
print(f"gev-echo RSS {srv_few} KiB with {few}, {srv_many} KiB with {n}: {1024 * (srv_many - srv_few) / d:.0f} bytes per connection")
sizes = {}
try:
    for line in open("/proc/slabinfo"):
        f = line.split()
        if f and f[0] in ("TCP", "sock_inode_cache", "filp", "dentry"):
            sizes[f[0]] = int(f[3])
except OSError:
    pass
print(f"kernel: {tcp_few} TCP socket objects with {few} connections, {tcp_many} with {n} (two sockets per connection); "
      f"object sizes per socket {sizes} = {sum(sizes.values())} bytes, not counted in either RSS")
PY
