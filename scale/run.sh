#!/usr/bin/env bash
# A Hive cluster on one machine, for a person to try (`just cluster`):
# Redis (shared kv and deployment, appendfsync always) on 127.0.0.1:16379,
# three hosts (public 127.0.0.1:8101-8103, admin 9101-9103), HAProxy on
# 127.0.0.1:8000 in front (scale/haproxy.cfg). The demo services are built
# and deployed through host 1; every host picks them up from Redis.
# Ctrl-C stops everything it started.
#
# Installs redis-server and haproxy with apt-get when missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/tools.sh
ensure_redis
ensure_haproxy

WORK="${CLUSTER_DIR:-$ROOT/.hive/cluster}"
REDIS_PORT=16379
REDIS="redis://127.0.0.1:$REDIS_PORT/0"
mkdir -p "$WORK"
PIDS=()
stop_all() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop_all EXIT INT TERM

echo "== building hive and the demo services"
cargo build --release --quiet
HIVE="$ROOT/target/release/hive"
"$HIVE" build --components components --out "$WORK/built"

# A deploy through any host changes every host, so each needs the token.
TOKEN_FILE="$WORK/admin-token"
if [ ! -s "$TOKEN_FILE" ]; then
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TOKEN_FILE"
    chmod 600 "$TOKEN_FILE"
fi
export HIVE_ADMIN_TOKEN="$(cat "$TOKEN_FILE")"

echo "== redis on 127.0.0.1:$REDIS_PORT (appendonly, appendfsync always)"
mkdir -p "$WORK/redis"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$WORK/redis" --save '' \
    --appendonly yes --appendfsync always --maxmemory-policy noeviction \
    --logfile "$WORK/redis/redis.log" &
PIDS+=($!)
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

for i in 1 2 3; do
    mkdir -p "$WORK/host$i/deploy"
    echo "== host $i on 127.0.0.1:810$i (admin 127.0.0.1:910$i)"
    "$HIVE" serve --dir "$WORK/host$i/deploy" --listen "127.0.0.1:810$i" \
        --admin-listen "127.0.0.1:910$i" --cache-dir "$WORK/host$i/cache" \
        --kv "$REDIS" --cluster "$REDIS" --admin-token-file "$TOKEN_FILE" \
        >"$WORK/host$i/hive.log" 2>&1 &
    PIDS+=($!)
done
for i in 1 2 3; do
    for _ in $(seq 1 300); do curl -sf "127.0.0.1:910$i/ready" >/dev/null && break; sleep 0.1; done
done

echo "== deploying the demo services through host 1"
for wasm in "$WORK"/built/*.wasm; do
    "$HIVE" deploy "$wasm" --admin http://127.0.0.1:9101
done

echo "== haproxy on 127.0.0.1:8000"
haproxy -f scale/haproxy.cfg -db >"$WORK/haproxy.log" 2>&1 &
PIDS+=($!)
sleep 1

cat <<TXT

The cluster is up. Try:
  curl 127.0.0.1:8000/hello?name=cluster                        # any host answers
  curl -X PUT 127.0.0.1:8000/users/ana -d '{"name": "Ana", "email": "ana@example.com"}'
  curl 127.0.0.1:8102/users/ana                                 # written through any host, read on host 2
  export HIVE_ADMIN_TOKEN=\$(cat $TOKEN_FILE)                   # the admin token of every host
  $HIVE ls --admin http://127.0.0.1:9103                   # which host serves which digest
  $HIVE cluster status --admin http://127.0.0.1:9101       # the cluster this host follows
  kill -9 \$(pgrep -f 'listen 127.0.0.1:8101')                   # HAProxy routes around it
Logs are in $WORK. Ctrl-C stops everything.
TXT
wait
