#!/usr/bin/env bash
# Recover memory: a webhook disabled while N events (default 100,000) arrive for it, then
# re-enabled and recovered. Prints the daemon's RSS (KiB) sampled every second: before the
# recover, its peak while the backlog is re-delivered, and at the end, with the recover's
# count and how long the re-delivery took. BENCHMARKS.md records its output.
#
#   cargo build --release
#   scripts/recover-bench.sh [EVENTS]
#
# BIN (default target/release/piston-webhooks; $CARGO_TARGET_DIR is honoured) can be set.
# Loopback only: the receiver is a Python HTTP server on 127.0.0.1 that counts requests.
set -euo pipefail
cd "$(dirname "$0")/.."

events=${1:-100000}
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release/piston-webhooks}
[[ -x $bin ]] || { echo "build first: cargo build --release ($bin missing)" >&2; exit 2; }
work=$(mktemp -d /tmp/recover-bench.XXXXXX)
key=recover-bench-key
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

# The receiver: answers 200 to everything, counts requests in $work/received.
cat >"$work/receiver.py" <<'PY'
import http.server, sys, threading, time
count = 0
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        global count
        self.rfile.read(int(self.headers.get("content-length", 0)))
        with lock:
            count += 1
            n = count
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *a): pass
def publish():
    while True:
        time.sleep(0.5)
        with open(sys.argv[2] + ".tmp", "w") as f:
            f.write(str(count))
        __import__("os").replace(sys.argv[2] + ".tmp", sys.argv[2])
s = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
threading.Thread(target=publish, daemon=True).start()
s.serve_forever()
PY
port=$((20000 + RANDOM % 20000))
python3 "$work/receiver.py" "$port" "$work/received" & pids+=($!)

"$bin" serve --data-dir "$work/data" --listen 127.0.0.1:0 --master-api-key "$key" \
    --allow-private-targets >"$work/stdout" 2>"$work/stderr" & daemon=$!; pids+=($daemon)
for _ in $(seq 1 100); do grep -q "listening on" "$work/stdout" 2>/dev/null && break; sleep 0.2; done
base=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/stdout" | head -1)
[[ -n $base ]] || { echo "daemon did not start: $(tail -5 "$work/stderr")" >&2; exit 1; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$daemon/status"; }

auth=$(curl -sf -X PUT "$base/v2/api_auth" -d "{\"data\":{\"api_key\":\"$key\"}}")
token=$(jq -r .auth_token <<<"$auth")
account=$(jq -r .data.account_id <<<"$auth")
api() { curl -sf -H "X-Auth-Token: $token" "$@"; }
hook=$(api -X PUT "$base/v2/accounts/$account/webhooks" \
    -d "{\"data\":{\"name\":\"recover\",\"uri\":\"http://127.0.0.1:$port/\",\"hook\":\"channel_create\",\"http_verb\":\"post\",\"enabled\":false}}" | jq -r .data.id)
since=$(date +%s)

# The backlog: N events for the disabled hook, batches of 1,000, 100 calls.
python3 - "$events" "$account" >"$work/batches" <<'PY'
import json, sys
n, account = int(sys.argv[1]), sys.argv[2]
for start in range(0, n, 1000):
    batch = [{"hook_event": "channel_create", "account_id": account,
              "call_id": f"call-{i % 100}", "event_id": f"rb-{i}"} for i in range(start, min(n, start + 1000))]
    print(json.dumps({"data": batch}))
PY
while read -r line; do
    api -X POST "$base/v2/events" -d "$line" >/dev/null
done <"$work/batches"
echo "events posted: $events; RSS before the recover: $(rss) KiB"

api -X PATCH "$base/v2/accounts/$account/webhooks/$hook" -d '{"data":{"enabled":true}}' >/dev/null
started=$(date +%s.%N)
count=$(api -X PUT "$base/v2/accounts/$account/webhooks/$hook/recover" -d "{\"data\":{\"since\":$((since - 5))}}" | jq -r .data.events)
answered=$(date +%s.%N)
echo "recover answered 202 with events=$count in $(echo "$answered - $started" | bc) s"

peak=0; samples=()
for _ in $(seq 1 1800); do
    r=$(rss); samples+=("$r"); ((r > peak)) && peak=$r
    got=$(cat "$work/received" 2>/dev/null || echo 0)
    ((got >= events)) && break
    sleep 1
done
ended=$(date +%s.%N)
got=$(cat "$work/received" 2>/dev/null || echo 0)
echo "received: $got of $events in $(echo "$ended - $started" | bc) s"
echo "RSS KiB every second during the re-delivery: ${samples[*]}"
echo "RSS peak during the recover: $peak KiB; at the end: $(rss) KiB"
