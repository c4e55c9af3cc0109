#!/usr/bin/env bash
# Runs the Autobahn TestSuite (kosoku, from .venv-test/) against gev-websocket and leaves the
# HTML/JSON report in reports/out/autobahn/ (open index.html). Cases default to 1-10 and 12-13;
# pass kosoku `-i` globs to choose others, e.g. `scripts/autobahn.sh 6.4.* 12.1.*`.
# The test suite runs the same cases (server/tests/ws_autobahn.rs); this is for reading the report.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kosoku="$root/.venv-test/bin/kosoku"
server="$root/target/fast/gev-websocket"
[ -x "$kosoku" ] || { echo "autobahn.sh: $kosoku missing: run scripts/setup-test-deps.sh" >&2; exit 1; }
[ -x "$server" ] || { echo "autobahn.sh: $server missing: run cargo build --profile fast -p gev --bins" >&2; exit 1; }
out="$root/reports/out/autobahn"
rm -rf "$out" && mkdir -p "$out"

log=$(mktemp)
"$server" --host 127.0.0.1 --port 0 --loops 2 >"$log" 2>"$out/server.log" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q '^listening on ' "$log" && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$log")
[ -n "$addr" ] || { echo "autobahn.sh: gev-websocket did not start (see $out/server.log)" >&2; exit 1; }

cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=('1.*' '2.*' '3.*' '4.*' '5.*' '6.*' '7.*' '9.*' '10.*' '12.*' '13.*')
includes=()
for c in "${cases[@]}"; do includes+=(-i "$c"); done
# kosoku has no per-case timeout; bound the whole run.
timeout 900 "$kosoku" -m fuzzingclient -p 4 -o "$out" "${includes[@]}" "$addr" || true
"$root/.venv-test/bin/python" - "$out/index.json" <<'PY'
import collections, json, sys
cases = next(iter(json.load(open(sys.argv[1])).values()))
counts = collections.Counter((c["behavior"], c["behaviorClose"]) for c in cases.values())
print(f"{len(cases)} cases; (behavior, close) counts: {dict(counts)}")
bad = {k: v["behavior"] for k, v in cases.items()
       if v["behavior"] not in ("OK", "INFORMATIONAL") or v["behaviorClose"] not in ("OK", "INFORMATIONAL")}
print("not OK/INFORMATIONAL:", bad or "none")
sys.exit(1 if bad else 0)
PY
