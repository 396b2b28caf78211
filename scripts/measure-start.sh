#!/usr/bin/env bash
# Start-time measurement behind BENCHMARKS.md "Start time".
# usage: scripts/measure-start.sh RECORDS [WORK_DIR [ACCOUNTS HOOKS_PER_ACCOUNT]]
# Builds a synthetic log of RECORDS records (examples/synth_log.rs), then times three
# starts of the release daemon until its `listening on` line: a full replay (no
# snapshot yet) and a start from the snapshot written by the clean stop before it.
# (A start with an unusable snapshot is a full replay: the integration tests show it.)
set -euo pipefail
records=${1:?records}
work=${2:-$(mktemp -d)}
shift $(( $# < 2 ? $# : 2 ))
bin=target/release/piston-webhooks
[[ -x $bin && -x target/release/examples/synth_log ]] || {
    echo "build first: cargo build --release --bin piston-webhooks --example synth_log" >&2
    exit 2
}
rm -rf "$work/data"
/usr/bin/time -f "synth: %e s, max RSS %M KiB" target/release/examples/synth_log "$work/data" "$records" "$@"
du -sh "$work/data/eventlog" | sed 's/^/log size: /'

start_once() {
    local label=$1
    local t0 t1 pid
    t0=$(date +%s.%N)
    "$bin" serve --listen 127.0.0.1:0 --data-dir "$work/data" --master-api-key synth-master-key \
        > "$work/out" 2> "$work/err" &
    pid=$!
    for _ in $(seq 1 6000); do
        grep -q "listening on" "$work/out" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || { cat "$work/err" >&2; exit 1; }
        sleep 0.05
    done
    t1=$(date +%s.%N)
    local rss
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    local url
    url=$(sed -n 's/^listening on //p' "$work/out")
    local health
    health=$(curl -s "$url/healthz" | python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]; print("snapshot_seq=%s replayed=%s last_seq=%s" % (d["start"]["snapshot_seq"], d["start"]["replayed_records"], d["last_seq"]))')
    printf '%s: %.2f s to listening, RSS %s KiB, %s\n' "$label" "$(echo "$t1 - $t0" | bc)" "$rss" "$health"
    kill -TERM "$pid"
    wait "$pid" || true
}

start_once "start 1 (full replay)"
start_once "start 2 (snapshot from the clean stop)"
