#!/usr/bin/env bash
# What setting Spin's request headers costs a wasi:http route, measured
# side by side: two builds of the host (one from before the headers, one
# with them) serving the same `hello-http` at their defaults, rounds
# alternating between them. Loopback only; each run bounded in time.
#
# Usage: bash bench/spin_headers.sh BEFORE_HIVE [AFTER_HIVE]
#   (AFTER defaults to target/release/hive)
# Environment: SPIN_SECONDS per run (default 5), SPIN_CONNECTIONS
#   (default 16), SPIN_ROUNDS (default 2).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/tools.sh
ensure_wrk
BEFORE="${1:?usage: bash bench/spin_headers.sh BEFORE_HIVE [AFTER_HIVE]}"
AFTER="${2:-$ROOT/target/release/hive}"
SECS="${SPIN_SECONDS:-5}"
CONNS="${SPIN_CONNECTIONS:-16}"
ROUNDS="${SPIN_ROUNDS:-2}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hive-spinbench.XXXXXX")"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

[ -f deploy/hello-http.wasm ] || "$AFTER" build --components components --out deploy >/dev/null

start() {
    local name="$1" binary="$2" port="$3"
    mkdir -p "$WORK/$name"
    cp deploy/hello-http.wasm "$WORK/$name/"
    [ -f deploy/hello-http.toml ] && cp deploy/hello-http.toml "$WORK/$name/"
    "$binary" serve --dir "$WORK/$name" --listen "127.0.0.1:$port" \
        --admin-listen "127.0.0.1:$((port + 1))" --cache-dir "$WORK/cache-$name" \
        --data "$WORK/data-$name" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 600); do curl -sf "127.0.0.1:$((port + 1))/ready" >/dev/null && break; sleep 0.1; done
    local status
    status="$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$port/hello-http")"
    [ "$status" = 200 ] || { echo "$name answered $status" >&2; cat "$WORK/$name.log" >&2; exit 1; }
}
start before "$BEFORE" 18820
start after "$AFTER" 18830

echo "/hello-http (wasi:http), ${SECS} s per run at $CONNS connections"
for round in $(seq 1 "$ROUNDS"); do
    for target in before:18820 after:18830; do
        name="${target%%:*}"
        port="${target##*:}"
        rate="$(wrk -t2 -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$port/hello-http" |
            awk '/Requests\/sec/ { print $2 }')"
        echo "round $round  $name  $rate req/s"
    done
done
