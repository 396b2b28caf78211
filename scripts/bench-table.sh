#!/usr/bin/env bash
# The figures of BENCHMARKS.md's headline table, measured with the load tool: each
# scenario RUNS times (3 by default), its raw --json reports kept in OUT_DIR, then one
# markdown row per scenario with the median and the range of every run, and whether
# every run met the target (a target counts as met only when all runs meet it).
#
#   cargo build --release
#   scripts/bench-table.sh [OUT_DIR] [SCENARIO...]
#
# Scenarios (default: all but the long ones): ratio ingest ingest10 single rate1000
# isolation hooks10k deadbacklog burst (long) amqp (needs RabbitMQ).
# BIN (default target/release/piston-webhooks; $CARGO_TARGET_DIR is honoured) and RUNS can
# be set in the environment. Each scenario's exact command is printed above its row.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-$(mktemp -d /tmp/bench-table.XXXXXX)}
shift $(( $# > 0 ? 1 : 0 ))
runs=${RUNS:-3}
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release/piston-webhooks}
[[ -x $bin ]] || { echo "build first: cargo build --release ($bin missing)" >&2; exit 2; }
mkdir -p "$out"
scenarios=("$@")
((${#scenarios[@]})) || scenarios=(ratio ingest ingest10 single rate1000 isolation hooks10k deadbacklog)

# name | load tool arguments | jq expression of the figure | unit | target test (jq, on the figure)
declare -A args figure unit target also
args[ratio]="--accounts 10 --hooks-per-account 10 --events 20000 --batch 100 --baseline"
figure[ratio]='.baseline.ratio'; unit[ratio]='ratio'; target[ratio]='. >= 0.60'
also[ratio]='"\(.deliveries.per_second | floor)/s vs \(.baseline.per_second | floor)/s, \((.daemon.cpu_seconds // 0) * 1000000 / .deliveries.count | floor) µs daemon CPU/delivery"'
args[ingest]="--accounts 10 --hooks-per-account 0 --events 200000 --batch 100 --concurrency 8"
figure[ingest]='.appended.per_second'; unit[ingest]='events/s'; target[ingest]='. >= 50000'
args[ingest10]="--accounts 10 --hooks-per-account 10 --events 50000 --batch 100 --concurrency 64 --drain-timeout 300"
figure[ingest10]='.events.accepted_per_second'; unit[ingest10]='events/s'; target[ingest10]='. >= 60000'
args[single]="--accounts 10 --hooks-per-account 0 --events 100000 --batch 1 --connections 32"
figure[single]='.appended.per_second'; unit[single]='events/s'; target[single]='. >= 15000'
args[rate1000]="--accounts 10 --hooks-per-account 10 --rate 1000 --duration 30 --events 30000 --batch 10 --concurrency 16 --drain-timeout 120"
figure[rate1000]='.latency_ms.p99'; unit[rate1000]='ms p99'; target[rate1000]='. <= 20'
args[isolation]="--accounts 10 --hooks-per-account 10 --dead-hooks 10 --events 20000 --batch 100"
figure[isolation]='.deliveries.per_second'; unit[isolation]='deliveries/s (healthy)'; target[isolation]='true'
args[hooks10k]="--accounts 100 --hooks-per-account 100 --rate 50 --duration 60 --events 3000 --batch 10 --drain-timeout 300"
figure[hooks10k]='.daemon.sampled.max_kib // .daemon.peak_rss_kib'; unit[hooks10k]='KiB peak RSS'; target[hooks10k]='. <= 153600'
args[deadbacklog]="--dead-backlog 1000000 --drain-timeout 30"
figure[deadbacklog]='.daemon.sampled.max_kib // .daemon.peak_rss_kib'; unit[deadbacklog]='KiB peak RSS'; target[deadbacklog]='. <= 153600'
args[burst]="--accounts 10 --hooks-per-account 10 --rate 3500 --duration 60 --events 210000 --batch 100 --concurrency 8 --drain-timeout 900"
figure[burst]='.latency_ms.max'; unit[burst]='ms max lag'; target[burst]='. < 1000'
args[amqp]="--via amqp --accounts 10 --hooks-per-account 10 --events 20000 --batch 100"
figure[amqp]='.appended.per_second'; unit[amqp]='events/s'; target[amqp]='true'

commit=$(git rev-parse --short HEAD)
echo "commit $commit, $runs runs each, reports in $out, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| scenario | figure: median [min–max] | every run | target met | missing / duplicates | also (per run) |"
echo "|---|---|---|---|---|---|"
for name in "${scenarios[@]}"; do
    [[ -n ${args[$name]:-} ]] || { echo "unknown scenario $name" >&2; exit 2; }
    values=()
    met=yes
    lost=""
    notes=""
    for ((i = 1; i <= runs; i++)); do
        report="$out/$name-$i.json"
        # shellcheck disable=SC2086
        "$bin" loadtest ${args[$name]} --json > "$report" || true
        value=$(jq -r "${figure[$name]} // empty" "$report")
        [[ -n $value ]] || value=nan
        values+=("$value")
        jq -e "${figure[$name]} | ${target[$name]}" "$report" >/dev/null 2>&1 || met=no
        lost+="$(jq -r '"\(.reconciliation.missing // "?")/\(.reconciliation.duplicates // "?")"' "$report") "
        if [[ -n ${also[$name]:-} ]]; then
            notes+="$(jq -r "${also[$name]}" "$report" 2>/dev/null || echo '?'); "
        fi
    done
    sorted=$(printf '%s\n' "${values[@]}" | sort -g)
    median=$(printf '%s\n' "$sorted" | sed -n "$(( (runs + 1) / 2 ))p")
    lo=$(printf '%s\n' "$sorted" | head -1)
    hi=$(printf '%s\n' "$sorted" | tail -1)
    echo "<!-- $name: piston-webhooks loadtest ${args[$name]} -->"
    printf '| %s | %s %s [%s–%s] | %s | %s | %s | %s |\n' "$name" "$median" "${unit[$name]}" "$lo" "$hi" "${values[*]}" "$met" "$lost" "$notes"
done
