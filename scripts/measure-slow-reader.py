#!/usr/bin/env python3
"""Measures what a client that never reads costs gev-echo: it sends until the server stops reading
(backpressure), then samples the gev-loop threads CPU and the RSS for 5 s. Run from the workspace root
after `cargo build --release -p gev --bins`. Loopback only, bounded in time."""
import socket, subprocess, time, os, glob, sys
p = subprocess.Popen(["target/release/gev-echo","--host","127.0.0.1","--port","0","--loops","1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
addr = p.stdout.readline().split()[-1]; host, port = addr.rsplit(":",1)
s = socket.create_connection((host, int(port))); s.setblocking(False)
sent = 0; chunk = b"x"*65536; t0 = time.time()
while time.time() - t0 < 3:
    try: sent += s.send(chunk)
    except BlockingIOError: time.sleep(0.01)
def ticks():
    t = 0
    for f in glob.glob(f"/proc/{p.pid}/task/*/stat"):
        parts = open(f).read().rsplit(")",1)[1].split()
        if "gev-loop" in open(f.replace("stat","comm")).read(): t += int(parts[11]) + int(parts[12])
    return t
rss = lambda: int([l for l in open(f"/proc/{p.pid}/status") if l.startswith("VmRSS")][0].split()[1])
a, r0 = ticks(), rss(); time.sleep(5); b, r1 = ticks(), rss()
print(f"client sent {sent/2**20:.1f} MiB then stalled; loop CPU over 5 s: {(b-a)/os.sysconf('SC_CLK_TCK')/5*100:.1f}% of a core; RSS {r0} -> {r1} KiB")
p.send_signal(2); p.wait(5)
