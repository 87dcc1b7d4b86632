#!/usr/bin/env bash
# What traces cost: the same host binary four times side by side, at its
# defaults (log level included) but for traces: off (--traces=false),
# sampling 1% (parentbased_traceidratio 0.01) and sampling everything
# (parentbased_always_on), both exporting over OTLP/HTTP to a collector
# that answers without decoding (on the same machine, so its CPU counts),
# and Hive at its defaults (no collector, so at most 100 new traces a
# second recorded for the console). Measured on
# `/hello` and on the shop's `POST /orders` (typed calls to users and
# inventory, kv writes, the outbox commit), rounds alternating between the
# hosts. Loopback only; each run bounded in time.
#
# Usage: bash bench/traces.sh [HIVE]   (default target/release/hive)
# Environment: TRACE_SECONDS per run (default 5), TRACE_CONNECTIONS
#   (default 16), TRACE_ROUNDS (default 3).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/tools.sh
ensure_wrk
ensure_otel_proto
HIVE="${1:-$ROOT/target/release/hive}"
SECS="${TRACE_SECONDS:-5}"
CONNS="${TRACE_CONNECTIONS:-16}"
ROUNDS="${TRACE_ROUNDS:-3}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hive-tracebench.XXXXXX")"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

[ -f deploy/orders.wasm ] || "$HIVE" build --components components --out deploy >/dev/null

# The collector: takes every export, decodes nothing.
mkfifo "$WORK/collector.in"
"$HIVE_TOOLS/otel/bin/python" host/tests/support/otlp_receiver.py --discard \
    <"$WORK/collector.in" >"$WORK/collector.out" &
PIDS+=($!)
exec 3>"$WORK/collector.in"
for _ in $(seq 1 100); do grep -q listening "$WORK/collector.out" 2>/dev/null && break; sleep 0.1; done
COLLECTOR="http://127.0.0.1:$(awk '/listening/ { print $2 }' "$WORK/collector.out")"

start() {
    local name="$1" port="$2"
    shift 2
    mkdir -p "$WORK/$name"
    for service in hello users inventory orders; do
        cp "deploy/$service.wasm" "$WORK/$name/"
        [ -f "deploy/$service.toml" ] && cp "deploy/$service.toml" "$WORK/$name/"
    done
    local endpoint="$COLLECTOR"
    [ "$name" = default ] && endpoint=""
    OTEL_EXPORTER_OTLP_ENDPOINT="$endpoint" "$HIVE" serve --dir "$WORK/$name" \
        --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$((port + 1))" \
        --cache-dir "$WORK/cache-$name" --data "$WORK/data-$name" --no-watch "$@" \
        >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 600); do curl -sf "127.0.0.1:$((port + 1))/ready" >/dev/null && break; sleep 0.1; done
    curl -sf -X PUT "127.0.0.1:$port/users/ana" -d '{"name": "Ana", "email": "ana@example.com"}' >/dev/null
    # Orders spread over 200 items, as in bench/shop.sh.
    for i in $(seq 1 200); do
        curl -sf -X PUT "127.0.0.1:$port/inventory/item$i" -d '{"count": 100000000}' >/dev/null
    done
}
start off 18900 --traces=false
start ratio 18910 --trace-sampler parentbased_traceidratio --trace-sampler-arg 0.01
start all 18920
start default 18930

cat >"$WORK/order.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
request = function()
    local body = string.format('{"user": "ana", "sku": "item%d", "quantity": 1}', math.random(1, 200))
    return wrk.format(nil, nil, nil, body)
end
LUA

rate() {
    local port="$1" path="$2"
    local script=()
    [ "$path" = /orders ] && script=(-s "$WORK/order.lua")
    wrk -t2 -c"$CONNS" -d"${SECS}s" "${script[@]}" "http://127.0.0.1:$port$path" |
        awk '/Requests\/sec/ { print $2 }'
}

echo "traces off / 1% / 100% / defaults, ${SECS} s per run at $CONNS connections, $ROUNDS rounds"
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
for path in /hello /orders; do
    ratios_low=()
    ratios_all=()
    ratios_default=()
    for round in $(seq 1 "$ROUNDS"); do
        # Each round starts with a different host, so no setting always
        # runs first (or right after the busiest one).
        order=(off low all default)
        shift_by=$(((round - 1) % 4))
        order=("${order[@]:$shift_by}" "${order[@]:0:$shift_by}")
        declare -A rates=()
        for name in "${order[@]}"; do
            case $name in
                off) rates[off]="$(rate 18900 "$path")" ;;
                low) rates[low]="$(rate 18910 "$path")" ;;
                all) rates[all]="$(rate 18920 "$path")" ;;
                default) rates[default]="$(rate 18930 "$path")" ;;
            esac
        done
        r_low="$(ratio "${rates[low]}" "${rates[off]}")"
        r_all="$(ratio "${rates[all]}" "${rates[off]}")"
        r_default="$(ratio "${rates[default]}" "${rates[off]}")"
        ratios_low+=("$r_low")
        ratios_all+=("$r_all")
        ratios_default+=("$r_default")
        echo "$path round $round: off ${rates[off]}, 1% ${rates[low]} ($r_low), 100% ${rates[all]} ($r_all), defaults ${rates[default]} ($r_default) req/s"
    done
    echo "$path median ratio: 1% $(median "${ratios_low[@]}"), 100% $(median "${ratios_all[@]}"), defaults $(median "${ratios_default[@]}")"
done
for target in off:18901 ratio:18911 all:18921 default:18931; do
    metrics="$(curl -s "127.0.0.1:${target##*:}/metrics")"
    dropped="$(awk '/^hive_trace_spans_dropped_total/ { print $2 }' <<<"$metrics")"
    exported="$(awk '/^hive_trace_spans_exported_total/ { print $2 }' <<<"$metrics")"
    echo "${target%%:*}: spans exported ${exported:-0}, dropped ${dropped:-0}"
done
