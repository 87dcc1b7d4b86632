#!/usr/bin/env bash
# Durable key-value writes, measured in one run: the shop's PUT /users/:id
# and GET /users/:id through each hive binary given (interleaved rounds,
# e.g. before and after a change), and Redis with `appendfsync always`
# (`redis-benchmark -t set`) on the same machine as the anchor. Loopback
# only; every run bounded in time.
#
# Usage: bash bench/kv.sh [HIVE ...]     (default: target/release/hive)
# Environment: KV_SECONDS per run (default 5), KV_CONNECTIONS (default 16),
#   KV_ROUNDS (default 2), KV_BACKEND (`embedded`, the default, or `redis`:
#   each hive keeps its data in its own database of the anchor's Redis).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/tools.sh
ensure_wrk
ensure_redis
SECS="${KV_SECONDS:-5}"
CONNS="${KV_CONNECTIONS:-16}"
ROUNDS="${KV_ROUNDS:-2}"
BACKEND="${KV_BACKEND:-embedded}"
case "$BACKEND" in embedded | redis) ;; *) echo "KV_BACKEND is embedded or redis, not $BACKEND" >&2; exit 2 ;; esac
BINS=("$@")
[ ${#BINS[@]} -gt 0 ] || BINS=("$ROOT/target/release/hive")

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hive-kvbench.XXXXXX")"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

[ -f deploy/users.wasm ] || "${BINS[0]}" build --components components --out deploy >/dev/null
mkdir -p "$WORK/services"
cp deploy/users.wasm deploy/users.toml "$WORK/services/"

cat >"$WORK/put.lua" <<'LUA'
-- PUT /users/<fresh id> with a small JSON body: every request a new write.
counter = 0
request = function()
    counter = counter + 1
    local id = string.format("u%d-%d", math.random(1, 1000000000), counter)
    return wrk.format("PUT", "/users/" .. id, {["content-type"] = "application/json"},
        '{"name": "Bench", "email": "bench@example.com"}')
end
LUA

mkdir -p "$WORK/redis"
redis-server --bind 127.0.0.1 --port 16499 --dir "$WORK/redis" --save '' --appendonly yes \
    --appendfsync always --logfile "$WORK/redis/log" &
PIDS+=($!)
for _ in $(seq 1 50); do redis-cli -p 16499 ping >/dev/null 2>&1 && break; sleep 0.1; done
port=18600
for i in "${!BINS[@]}"; do
    port=$((port + 2))
    mkdir -p "$WORK/data-$i"
    store=(--data "$WORK/data-$i")
    [ "$BACKEND" = redis ] && store=(--kv "redis://127.0.0.1:16499/$((i + 1))")
    RUST_LOG=warn "${BINS[$i]}" serve --dir "$WORK/services" --listen "127.0.0.1:$port" \
        --admin-listen "127.0.0.1:$((port + 1))" "${store[@]}" --cache-dir "$WORK/cache-$i" \
        --no-watch >"$WORK/hive-$i.log" 2>&1 &
    PIDS+=($!)
    HIVE_PIDS[$i]=$!
    PORTS[$i]=$port
    for _ in $(seq 1 300); do curl -sf "127.0.0.1:$port/users" >/dev/null && break; sleep 0.1; done
    curl -sf -X PUT "127.0.0.1:$port/users/ana" -d '{"name": "Ana", "email": "ana@example.com"}' >/dev/null
done

# The server's user + system CPU time, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tick_us=$((1000000 / $(getconf CLK_TCK)))

echo "Store: $BACKEND"
echo
echo "| binary | round | PUT /users/:id req/s | server CPU per PUT | GET /users/ana req/s | server CPU per GET |"
echo "| --- | --- | --- | --- | --- | --- |"
for round in $(seq 1 "$ROUNDS"); do
    for i in "${!BINS[@]}"; do
        p=${PORTS[$i]}
        before=$(cpu_ticks "${HIVE_PIDS[$i]}")
        out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$WORK/put.lua" "http://127.0.0.1:$p")
        after=$(cpu_ticks "${HIVE_PIDS[$i]}")
        put=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
        done_puts=$(awk '/requests in/ {print $1}' <<<"$out")
        cpu_us=$(((after - before) * tick_us / (done_puts > 0 ? done_puts : 1)))
        before=$(cpu_ticks "${HIVE_PIDS[$i]}")
        out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$p/users/ana")
        after=$(cpu_ticks "${HIVE_PIDS[$i]}")
        get=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
        done_gets=$(awk '/requests in/ {print $1}' <<<"$out")
        get_us=$(((after - before) * tick_us / (done_gets > 0 ? done_gets : 1)))
        printf '| %s | %s | %.0f | %s us | %.0f | %s us |\n' "${BINS[$i]#"$ROOT"/}" "$round" "$put" "$cpu_us" "$get" "$get_us"
    done
done

# --csv: the -q form rewrites one line with \r as it goes, so its first
# figure is the 0 of the start.
set_rps=$(redis-benchmark -p 16499 -t set -c "$CONNS" -n 100000 --csv | awk -F'"' '/^"SET"/ {print $4}')
printf '\nRedis 7 appendfsync always, redis-benchmark -t set -c %s -n 100000: %s SET/s\n' "$CONNS" "$set_rps"
