#!/usr/bin/env bash
# Events through a real host and a real subscriber, on the embedded store
# and on Redis (appendfsync always) in one run. The events-probe test
# component publishes (`POST /probe/publish/<topic>`, one durable publish
# per request) and, subscribed to its topics with `concurrency = 16`,
# handles each message in a fresh instance (three durable kv writes: its
# record and two counters) and acks.
#
# - Full speed: wrk publishes for EVENTS_SECONDS at EVENTS_CONNECTIONS
#   connections; reported are publishes/s (each answered once durable) and
#   messages handled per second, from the first publish to the last handle.
# - Steady: 200 publishes a second for EVENTS_SECONDS, one at a time, well
#   under what the handler keeps up with; reported are p50 / p99 of
#   publish-to-handle time (each message's publish time to when its
#   handler ran, both on the host's clock, in ms). Loopback
# only; bounded in time. The store's own rates beside native Redis Streams
# are `cargo bench -p hive --bench events`.
#
# Usage: bash bench/events.sh [HIVE]   (default: target/release/hive)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/tools.sh
ensure_wrk
ensure_redis
SECS="${EVENTS_SECONDS:-5}"
CONNS="${EVENTS_CONNECTIONS:-16}"
HIVE="${1:-$ROOT/target/release/hive}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hive-eventsbench.XXXXXX")"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

"$HIVE" build --components test-components --out "$WORK/built" >/dev/null 2>&1
mkdir -p "$WORK/services"
cp "$WORK/built/events-probe.wasm" "$WORK/services/probe.wasm"
printf '[[subscribe]]\ntopic = "bench"\nconcurrency = 16\n[[subscribe]]\ntopic = "steady"\nconcurrency = 16\n' \
    >"$WORK/services/probe.toml"

cat >"$WORK/publish.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"id":1,"user":{"id":"ana","name":"Ana","email":"ana@example.com"},"sku":"mug","quantity":3}'
LUA

mkdir -p "$WORK/redis"
redis-server --bind 127.0.0.1 --port 16599 --dir "$WORK/redis" --save '' --appendonly yes \
    --appendfsync always --logfile "$WORK/redis/log" &
PIDS+=($!)
for _ in $(seq 1 50); do redis-cli -p 16599 ping >/dev/null 2>&1 && break; sleep 0.1; done

run() {
    local name="$1" port="$2"
    shift 2
    "$HIVE" serve --dir "$WORK/services" --listen "127.0.0.1:$port" \
        --admin-listen "127.0.0.1:$((port + 1))" --cache-dir "$WORK/cache" "$@" \
        >"$WORK/$name.log" 2>&1 &
    local pid=$!
    PIDS+=($pid)
    for _ in $(seq 1 600); do curl -sf "127.0.0.1:$((port + 1))/ready" >/dev/null && break; sleep 0.1; done
    local url="http://127.0.0.1:$port/probe/publish/bench"
    local out
    out="$(wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$WORK/publish.lua" "$url")"
    local published
    published="$(echo "$out" | awk '/Requests\/sec/ { print $2 }')"
    # Wait until the subscriber has handled what was published.
    local total=0 handled=-1
    total="$(echo "$out" | awk '/requests in/ { print $1 }')"
    for _ in $(seq 1 600); do
        handled="$(curl -s "127.0.0.1:$port/probe/count/bench")"
        [ "${handled:-0}" -ge "$total" ] && break
        sleep 0.2
    done
    curl -s "127.0.0.1:$port/probe/seen?topic=bench" >"$WORK/$name.seen"
    # The steady run: paced publishes, one at a time.
    python3 - "127.0.0.1" "$port" "$SECS" <<'PY'
import http.client, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
connection = http.client.HTTPConnection(host, port, timeout=10)
start = time.monotonic()
n = 0
while time.monotonic() - start < seconds:
    due = start + n / 200.0
    pause = due - time.monotonic()
    if pause > 0:
        time.sleep(pause)
    connection.request("POST", "/probe/publish/steady", body=b'{"id":1}')
    connection.getresponse().read()
    n += 1
PY
    sleep 2
    curl -s "127.0.0.1:$port/probe/seen?topic=steady" >"$WORK/$name.steady"
    python3 - "$WORK/$name.seen" "$WORK/$name.steady" "$name" "$published" "$total" <<'PY'
import json, sys
full, steady, name, published, total = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
load = lambda path: [json.loads(line) for line in open(path) if line.strip()]
records = [r for r in load(full) if r["attempt"] == 1]
first = min(r["published_at_ms"] for r in records)
last = max(r["at_ms"] for r in records)
paced = [r for r in load(steady) if r["attempt"] == 1]
lat = sorted(r["at_ms"] - r["published_at_ms"] for r in paced)
pick = lambda q: lat[min(len(lat) - 1, max(0, int(len(lat) * q + 0.999) - 1))]
print(f"{name:<9} full speed: {published:>6.0f} publishes/s, {len(records)}/{total} handled at "
      f"{len(records) / max(0.001, (last - first) / 1000):>6.0f}/s;   steady 200/s: "
      f"{len(paced)} handled, publish-to-handle p50 {pick(0.5)} ms, p99 {pick(0.99)} ms")
PY
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

echo "events through a host: ${SECS} s of wrk -c$CONNS publishes, one subscriber (concurrency 16)"
run embedded 18700 --data "$WORK/data"
run redis 18710 --kv redis://127.0.0.1:16599/0
