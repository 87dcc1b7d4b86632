#!/usr/bin/env bash
# What `prewarm = N` buys, measured side by side in one run: the Rust
# `hello` and a Python hello (no kv), each served by three hosts at their
# defaults: a fresh instance per request, the same with `prewarm = 4`, and
# `instance-reuse = 1000`. Three rounds alternate between the hosts: at one
# connection (p50 and req/s) and at 16 (req/s, saturation). Then the memory
# an instance made ahead holds: the host's RSS with `prewarm = 32` against
# `prewarm = 0`, idle, divided by 32. All on loopback, each wrk run bounded.
#
# Usage: bash bench/prewarm.sh   (after `cargo build --release`; installs
# wrk and componentize-py when missing)
# Environment: PREWARM_SECONDS per wrk run (default 4), PREWARM_ROUNDS (3).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/tools.sh
ensure_wrk
SECS="${PREWARM_SECONDS:-4}"
ROUNDS="${PREWARM_ROUNDS:-3}"
HIVE="$ROOT/target/release/hive"
[ -x "$HIVE" ] || { echo "prewarm bench: build hive first (cargo build --release)" >&2; exit 2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hive-prewarm.XXXXXX")"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# The Python hello of bench/python.sh: only the instance and the call.
mkdir -p "$WORK/project/components/pyhello"
cp -r wit "$WORK/project/wit"
cat >"$WORK/project/components/pyhello/app.py" <<'PY'
from wit_world import exports
from wit_world.imports.types import Request, Response


class Handler(exports.Handler):
    def handle(self, req: Request) -> Response:
        return Response(200, [("content-type", "text/plain; charset=utf-8")], b"Hello, world!\n")
PY
export HIVE_TOOLS="$ROOT/.hive/tools"
(cd "$WORK/project" && "$HIVE" build >"$WORK/build.log" 2>&1) || { cat "$WORK/build.log"; exit 1; }
cp "$ROOT/deploy/hello.wasm" "$WORK/project/deploy/"

port=18700
serve() { # serve DIR: starts a host at its defaults on the next ports, waits for /ready
    local dir=$1
    port=$((port + 2))
    env -u RUST_LOG "$HIVE" serve --dir "$dir" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$((port + 1))" \
        --cache-dir "$WORK/cache" --data "$WORK/data-$port" --no-watch >"$WORK/serve-$port.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 1200); do
        curl -sf "127.0.0.1:$((port + 1))/ready" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "prewarm bench: the host on $port never became ready" >&2
    exit 1
}
# folder NAME MODE LIMITS: a folder serving NAME.wasm with [limits] LIMITS
folder() {
    local dir="$WORK/$1-$2"
    mkdir -p "$dir"
    cp "$WORK/project/deploy/$1.wasm" "$dir/"
    [ -n "$3" ] && printf '[limits]\n%s\n' "$3" >"$dir/$1.toml"
    echo "$dir"
}
# Only one host at a time does work; the others idle on their ports.
MODES=(fresh prewarm reuse)
declare -A LIMITS=([fresh]="" [prewarm]="prewarm = 4" [reuse]="instance-reuse = 1000")
for name in hello pyhello; do
    declare -A PORT=()
    for mode in "${MODES[@]}"; do
        serve "$(folder "$name" "$mode" "${LIMITS[$mode]}")"
        PORT[$mode]=$port
        curl -sf "127.0.0.1:$port/$name" >/dev/null
    done
    sleep 2 # the instances made ahead are made
    echo
    echo "## $name"
    echo
    echo "| round | mode | 1 conn p50 | 1 conn req/s | 16 conns req/s |"
    echo "| --- | --- | --- | --- | --- |"
    for round in $(seq 1 "$ROUNDS"); do
        for mode in "${MODES[@]}"; do
            url="http://127.0.0.1:${PORT[$mode]}/$name"
            one=$(wrk -t1 -c1 -d"${SECS}s" --latency "$url")
            many=$(wrk -t2 -c16 -d"${SECS}s" "$url")
            p50=$(awk '$1 == "50%" {print $2}' <<<"$one")
            rps1=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$one")
            rps16=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$many")
            echo "| $round | $mode | $p50 | $rps1 | $rps16 |"
        done
    done
    made=$(curl -s "127.0.0.1:$((PORT[prewarm] + 1))/metrics" | awk -v c="$name" '$1 == "hive_instances_prewarmed_total{component=\"" c "\"}" {print $2}')
    all=$(curl -s "127.0.0.1:$((PORT[prewarm] + 1))/metrics" | awk -v c="$name" '$1 == "hive_instantiations_total{component=\"" c "\"}" {print $2}')
    echo
    echo "prewarm host: $made of $all instances were made ahead of their request"
    for _ in "${MODES[@]}"; do
        kill "${PIDS[-1]}"
        wait "${PIDS[-1]}" 2>/dev/null || true
        unset 'PIDS[-1]'
    done
done

echo
echo "## Memory an instance made ahead holds (idle host, RSS)"
echo
echo "| component | prewarm = 0 | prewarm = 32 | per instance |"
echo "| --- | --- | --- | --- |"
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
for name in hello pyhello; do
    serve "$(folder "$name" none "prewarm = 0")"
    sleep 3
    none=$(rss_kib "${PIDS[-1]}")
    serve "$(folder "$name" many "prewarm = 32")"
    sleep 5
    many=$(rss_kib "${PIDS[-1]}")
    printf '| %s | %.1f MiB | %.1f MiB | %.2f MiB |\n' "$name" "$(echo "$none / 1024" | bc -l)" \
        "$(echo "$many / 1024" | bc -l)" "$(echo "($many - $none) / 32 / 1024" | bc -l)"
    for _ in 1 2; do
        kill "${PIDS[-1]}"
        wait "${PIDS[-1]}" 2>/dev/null || true
        unset 'PIDS[-1]'
    done
done
