#!/usr/bin/env bash
# What a Python service costs on this machine, measured in one run: build
# time and .wasm size, first compile and a warm restart, and req/s and
# latency with a fresh instance per request vs instance reuse, at 1 and 16
# connections, beside the Rust `hello` in the same host. All on loopback,
# each wrk run bounded in time.
#
# Usage: bash bench/python.sh      (after `cargo build --release`; installs
# wrk and componentize-py when missing)
# Environment: PY_BENCH_SECONDS per wrk run (default 5).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/tools.sh
ensure_wrk
SECS="${PY_BENCH_SECONDS:-5}"
HIVE="$ROOT/target/release/hive"
[ -x "$HIVE" ] || { echo "python bench: build hive first (cargo build --release)" >&2; exit 2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hive-pybench.XXXXXX")"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# A project with one Python hello (no kv: only the instance and the call).
mkdir -p "$WORK/project/components/pyhello"
cp -r wit "$WORK/project/wit"
cat > "$WORK/project/components/pyhello/app.py" <<'PY'
from wit_world import exports
from wit_world.imports.types import Request, Response


class Handler(exports.Handler):
    def handle(self, req: Request) -> Response:
        return Response(200, [("content-type", "text/plain; charset=utf-8")], b"Hello, world!\n")
PY
export HIVE_TOOLS="$ROOT/.hive/tools"
started=$(date +%s.%N)
(cd "$WORK/project" && "$HIVE" build >"$WORK/build.log" 2>&1) || { cat "$WORK/build.log"; exit 1; }
built=$(date +%s.%N)
size=$(stat -c %s "$WORK/project/deploy/pyhello.wasm")
printf 'build: %.1f s, pyhello.wasm %.1f MB\n' "$(echo "$built - $started" | bc)" "$(echo "$size / 1000000" | bc -l)"

# Two folders: fresh instances, and instance reuse; each with the Rust hello.
for mode in fresh reuse; do
    mkdir -p "$WORK/$mode"
    cp "$WORK/project/deploy/pyhello.wasm" "$ROOT/deploy/hello.wasm" "$ROOT/deploy/hello.toml" "$WORK/$mode/"
done
printf '[limits]\ninstance-reuse = 1000\n' >"$WORK/reuse/pyhello.toml"
printf '\n[limits]\ninstance-reuse = 1000\n' >>"$WORK/reuse/hello.toml"

port=18480
ready_after=0
serve() { # serve DIR CACHE: starts a host on the next ports; sets ready_after (s)
    local dir=$1 cache=$2 t0 admin
    port=$((port + 2))
    admin=$((port + 1))
    t0=$(date +%s.%N)
    RUST_LOG=warn "$HIVE" serve --dir "$dir" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" \
        --cache-dir "$cache" --data "$WORK/data-$port" --no-watch >"$WORK/serve-$port.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 600); do
        curl -sf "127.0.0.1:$admin/ready" >/dev/null 2>&1 && break
        sleep 0.1
    done
    ready_after=$(echo "$(date +%s.%N) - $t0" | bc)
}
stop() { kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'; }

serve "$WORK/fresh" "$WORK/cache"
cold=$ready_after
compile=$(curl -s "127.0.0.1:$((port + 1))/metrics" | awk '/^hive_compile_seconds_total/ {print $2}')
stop
serve "$WORK/fresh" "$WORK/cache"
warm=$ready_after
stop
printf 'first start (compiles pyhello and hello): %.1f s to ready, %.1f s compiling\n' "$cold" "$compile"
printf 'restart with the compile cache: %.2f s to ready\n' "$warm"

printf '\n| mode | connections | pyhello req/s | pyhello p50 | Rust hello req/s | ratio |\n| --- | --- | --- | --- | --- | --- |\n'
for mode in fresh reuse; do
    serve "$WORK/$mode" "$WORK/cache"
    for c in 1 16; do
        t=$((c < 2 ? 1 : 2))
        curl -sf "127.0.0.1:$port/pyhello" >/dev/null
        py=$(wrk -t$t -c$c -d"${SECS}s" --latency "http://127.0.0.1:$port/pyhello")
        rs=$(wrk -t$t -c$c -d"${SECS}s" "http://127.0.0.1:$port/hello")
        py_rps=$(echo "$py" | awk '/Requests\/sec/ {print $2}')
        py_p50=$(echo "$py" | awk '$1 == "50%" {print $2}')
        rs_rps=$(echo "$rs" | awk '/Requests\/sec/ {print $2}')
        printf '| %s | %s | %.0f | %s | %.0f | %.3f |\n' "$mode" "$c" "$py_rps" "$py_p50" "$rs_rps" "$(echo "$py_rps / $rs_rps" | bc -l)"
    done
    stop
done
