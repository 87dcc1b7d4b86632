#!/usr/bin/env bash
# A realistic request: the shop's POST /orders (a typed call to users, a
# typed call to inventory's reserve, kv writes in inventory and orders) at 1
# and 16 connections, with req/s, p50 and p99; then a CPU profile of the
# host (perf, when the kernel allows it) split into instantiation, typed
# calls, kv and HTTP. Loopback only, every run bounded in time.
#
# Usage: bash bench/shop.sh [HIVE]     (default target/release/hive)
# Environment: SHOP_SECONDS per run (default 5).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/tools.sh
ensure_wrk
SECS="${SHOP_SECONDS:-5}"
HIVE="${1:-$ROOT/target/release/hive}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/hive-shopbench.XXXXXX")"
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

[ -f deploy/orders.wasm ] || "$HIVE" build --components components --out deploy >/dev/null
mkdir -p "$WORK/services"
for name in users inventory orders; do cp "deploy/$name.wasm" "deploy/$name.toml" "$WORK/services/"; done
RUST_LOG=warn "$HIVE" serve --dir "$WORK/services" --listen 127.0.0.1:18650 --admin-listen 127.0.0.1:0 \
    --data "$WORK/data" --cache-dir "$WORK/cache" --no-watch >"$WORK/hive.log" 2>&1 &
PID=$!
for _ in $(seq 1 300); do curl -sf 127.0.0.1:18650/users >/dev/null && break; sleep 0.1; done
curl -sf -X PUT 127.0.0.1:18650/users/ana -d '{"name": "Ana", "email": "ana@example.com"}' >/dev/null
# Orders spread over 200 items, as real ones are: all on one item would
# measure inventory's optimistic retries (409 "in high demand") instead.
for i in $(seq 1 200); do
    curl -sf -X PUT "127.0.0.1:18650/inventory/item$i" -d '{"count": 100000000}' >/dev/null
done

cat >"$WORK/order.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
request = function()
    local body = string.format('{"user": "ana", "sku": "item%d", "quantity": 1}', math.random(1, 200))
    return wrk.format(nil, nil, nil, body)
end
LUA
echo "| connections | POST /orders req/s | p50 | p99 | non-2xx |"
echo "| --- | --- | --- | --- | --- |"
for c in 1 16; do
    t=$((c < 2 ? 1 : 2))
    out=$(wrk -t$t -c$c -d"${SECS}s" --latency -s "$WORK/order.lua" http://127.0.0.1:18650/orders)
    printf '| %s | %s | %s | %s | %s |\n' "$c" \
        "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
        "$(echo "$out" | awk '$1 == "50%" {print $2}')" \
        "$(echo "$out" | awk '$1 == "99%" {print $2}')" \
        "$(echo "$out" | awk '/Non-2xx/ {print $NF}')"
done

if command -v perf >/dev/null && perf record -o "$WORK/probe.data" -q -- true 2>/dev/null; then
    (wrk -t2 -c16 -d"$((SECS + 2))s" -s "$WORK/order.lua" http://127.0.0.1:18650/orders >/dev/null &)
    sleep 1
    perf record -q -g -p "$PID" -o "$WORK/perf.data" -- sleep "$SECS" 2>/dev/null
    perf report -i "$WORK/perf.data" --no-children --stdio --sort symbol 2>/dev/null >"$WORK/report.txt" || true
    echo
    echo "CPU profile (perf, 16 connections, self time of the host's samples by kind):"
    awk '$1 ~ /%$/ {
        share = $1; sub(/%/, "", share); sym = $0
        if (sym ~ /futex|schedule|switch|wake_up|try_to_wake|__x64_sys_sched|syscall|do_syscall|entry_SYSCALL/) k = "scheduling and wake-ups (futex, context switches)"
        else if (sym ~ /redb|fdatasync|fsync|ext4|jbd2|blk_|nvme|virtio/) k = "kv (redb, fsync)"
        else if (sym ~ /hyper|http|tcp_|sock|epoll|net_|skb|ip_|__dev_queue|loopback/) k = "HTTP and sockets"
        else if (sym ~ /wasmtime|cranelift|component/) k = "wasmtime (instantiation, calls, value copies)"
        else if (sym ~ /0x0000|\[unknown\]/) k = "guest code and trampolines"
        else if (sym ~ /malloc|free|memmove|memcpy|memset|realloc/) k = "allocation and copies"
        else k = "other"
        total[k] += share
    } END { for (k in total) printf "  %5.1f%%  %s\n", total[k], k }' "$WORK/report.txt" | sort -rn
fi
