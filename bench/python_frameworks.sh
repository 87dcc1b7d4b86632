#!/usr/bin/env bash
# What a Flask and a Starlette app cost as Hive services, in one run:
# build time and .wasm size, first compile and a restart from the compile
# cache, then req/s and p50 with a fresh instance per request and with
# instance reuse, beside a plain `Handler` service in the same host and
# the same apps under gunicorn and uvicorn natively (2 workers each).
# Hive at its defaults (log level included). Loopback only; every wrk run
# bounded in time.
#
# Usage: bash bench/python_frameworks.sh   (after `cargo build --release`)
# Environment: PYF_SECONDS per wrk run (default 5), PYF_CONNECTIONS (16).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/tools.sh
ensure_wrk
ensure_python_servers
SECS="${PYF_SECONDS:-5}"
CONNS="${PYF_CONNECTIONS:-16}"
HIVE="$ROOT/target/release/hive"
SERVERS="$HIVE_TOOLS/servers/bin"
[ -x "$HIVE" ] || { echo "build hive first (cargo build --release)" >&2; exit 2; }
export HIVE_TOOLS

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hive-pyfbench.XXXXXX")"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# One project per app, so each build is timed alone.
mkdir -p "$WORK/plain/components/py-plain"
cat >"$WORK/plain/components/py-plain/app.py" <<'PY'
import json

from wit_world import exports
from wit_world.imports.types import Request, Response


class Handler(exports.Handler):
    def handle(self, req: Request) -> Response:
        body = json.dumps({"sum": 5}).encode()
        return Response(200, [("content-type", "application/json")], body)
PY
for app in py-flask py-starlette; do
    mkdir -p "$WORK/$app/components"
    cp -r "test-components/$app" "$WORK/$app/components/"
done
echo "| app | build | .wasm |"
echo "| --- | --- | --- |"
for app in plain py-flask py-starlette; do
    cp -r wit "$WORK/$app/wit"
    started=$(date +%s.%N)
    (cd "$WORK/$app" && "$HIVE" build >"$WORK/build-$app.log" 2>&1) || { cat "$WORK/build-$app.log"; exit 1; }
    took=$(echo "$(date +%s.%N) - $started" | bc)
    wasm=$(ls "$WORK/$app/deploy/"*.wasm)
    printf '| %s | %.1f s | %.1f MB |\n' "$(basename "$wasm" .wasm)" "$took" "$(echo "$(stat -c %s "$wasm") / 1000000" | bc -l)"
done

port=18600
ready_after=0
serve() { # serve DIR CACHE: a host on the next ports; sets ready_after (s)
    local dir=$1 cache=$2 t0 admin
    port=$((port + 2))
    admin=$((port + 1))
    t0=$(date +%s.%N)
    "$HIVE" serve --dir "$dir" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" \
        --cache-dir "$cache" --data "$WORK/data-$port" --no-watch >"$WORK/serve-$port.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 1200); do
        curl -sf "127.0.0.1:$admin/ready" >/dev/null 2>&1 && break
        sleep 0.1
    done
    ready_after=$(echo "$(date +%s.%N) - $t0" | bc)
}
stop() { kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'; }

echo
echo "| app | first start (compiling) | restart from the cache |"
echo "| --- | --- | --- |"
for app in plain py-flask py-starlette; do
    mkdir -p "$WORK/alone-$app"
    cp "$WORK/$app/deploy/"* "$WORK/alone-$app/"
    serve "$WORK/alone-$app" "$WORK/cache-$app"
    cold=$ready_after
    stop
    serve "$WORK/alone-$app" "$WORK/cache-$app"
    warm=$ready_after
    stop
    printf '| %s | %.1f s | %.2f s |\n' "$app" "$cold" "$warm"
done

# The three services in one host, fresh and reused.
for mode in fresh reuse; do
    mkdir -p "$WORK/$mode"
    for app in plain py-flask py-starlette; do cp "$WORK/$app/deploy/"* "$WORK/$mode/"; done
done
for name in py-plain py-flask py-starlette; do
    printf '\n[limits]\ninstance-reuse = 1000\n' >>"$WORK/reuse/$name.toml"
done

measure() { # measure URL: prints "req/s p50"
    local out
    out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "$1")
    echo "$(echo "$out" | awk '/Requests\/sec/ {print $2}') $(echo "$out" | awk '$1 == "50%" {print $2}')"
}

echo
echo "$CONNS connections, ${SECS} s per run"
echo
echo "| server | mode | plain Handler | Flask | Starlette |"
echo "| --- | --- | --- | --- | --- |"
for mode in fresh reuse; do
    serve "$WORK/$mode" "$WORK/cache-all"
    for path in /py-plain /py-flask/add/2/3 /py-starlette/users/7; do curl -sf "127.0.0.1:$port$path" >/dev/null; done
    plain=$(measure "http://127.0.0.1:$port/py-plain")
    flask=$(measure "http://127.0.0.1:$port/py-flask/add/2/3")
    star=$(measure "http://127.0.0.1:$port/py-starlette/users/7")
    echo "| Hive | $mode | $plain | $flask | $star |"
    stop
done

port=$((port + 2))
"$SERVERS/gunicorn" --chdir test-components/py-flask --workers 2 --bind "127.0.0.1:$port" \
    web:app >"$WORK/gunicorn.log" 2>&1 &
PIDS+=($!)
uport=$((port + 1))
"$SERVERS/uvicorn" --app-dir test-components/py-starlette --workers 2 --no-access-log \
    --host 127.0.0.1 --port "$uport" web:app >"$WORK/uvicorn.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 300); do
    curl -sf "127.0.0.1:$port/py-flask/add/2/3" >/dev/null 2>&1 \
        && curl -sf "127.0.0.1:$uport/py-starlette/users/7" >/dev/null 2>&1 && break
    sleep 0.1
done
flask=$(measure "http://127.0.0.1:$port/py-flask/add/2/3")
star=$(measure "http://127.0.0.1:$uport/py-starlette/users/7")
echo "| gunicorn / uvicorn, 2 workers | native | - | $flask | $star |"
