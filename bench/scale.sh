#!/usr/bin/env bash
# Hive with many components: startup time (cold, and with the compile cache),
# idle memory, and req/s spread across all of them (`just bench-scale`).
#
# For each N in ${SCALE_COUNTS:-"100 1000"}: N distinct copies of the `hello`
# component (each made unique with a trailing custom section, so each is its
# own compile and cache entry) are served by one host. Startup is measured
# from spawn to "listening" (every component loaded), first with an empty
# compile cache, then with the cache it filled. Idle RSS is read from /proc
# after startup. wrk then requests a random one of the N routes per request.
#
# Installs wrk if missing; stops every process it starts.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

COUNTS="${SCALE_COUNTS:-100 1000}"
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
OUT="${BENCH_OUT:-$ROOT/bench/results/scale.md}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/hive-scale.XXXXXX")"
HIVE_PID=""

cleanup() {
    if [[ -n "$HIVE_PID" ]]; then kill "$HIVE_PID" 2>/dev/null || true; wait "$HIVE_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

say() { printf '==> %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null; then
    say "installing wrk"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
say "building"
cargo build --release -q -p hive
target/release/hive build --components components --out "$WORK/built" 2>/dev/null

# Starts hive on $1 (services) with cache $2; sets HIVE_PID, PORT and
# STARTUP (seconds from spawn until it listened). Not run in a subshell, so
# the variables reach the caller.
start_hive() {
    local dir="$1" cache="$2" log="$WORK/hive.log"
    : >"$log"
    local started; started=$(date +%s.%N)
    RUST_LOG=warn,hive::server=info timeout -k 5 900 target/release/hive serve \
        --dir "$dir" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --no-watch \
        --cache-dir "$cache" --data "$WORK/data" >/dev/null 2>"$log" &
    HIVE_PID=$!
    until grep -q "listening on http://" "$log"; do
        kill -0 "$HIVE_PID" 2>/dev/null || { cat "$log" >&2; exit 1; }
        sleep 0.02
    done
    local ended; ended=$(date +%s.%N)
    PORT=$(grep -o "listening on http://127.0.0.1:[0-9]*" "$log" | grep -o "[0-9]*$")
    STARTUP=$(python3 -c "print(round($ended - $started, 3))")
}

stop_hive() {
    kill "$HIVE_PID" 2>/dev/null || true
    wait "$HIVE_PID" 2>/dev/null || true
    HIVE_PID=""
}

# RSS of the hive process itself ($1 is the `timeout` wrapping it).
rss_mib() {
    local pid; pid=$(pgrep -P "$1" | head -1)
    awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/${pid:-$1}/status"
}

{
    echo "# Hive at scale"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "- command: \`SCALE_COUNTS=\"$COUNTS\" BENCH_SECONDS=$SECONDS_PER_RUN bash bench/scale.sh\`"
    echo "- each component: a distinct copy of \`hello\`; wrk -t2 -c16, a random route per request"
    echo
    echo "| components | startup, cold cache | startup, warm cache | idle RSS | req/s across all | p50 | p99 |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
} >"$OUT.tmp"

for n in $COUNTS; do
    say "$n components"
    dir="$WORK/services-$n"
    mkdir -p "$dir"
    python3 - "$WORK/built/hello.wasm" "$dir" "$n" <<'PY'
import sys
source, out, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = open(source, "rb").read()
for i in range(count):
    name = f"scale-{i}".encode()
    content = bytes([len(name)]) + name
    # A custom section (id 0) with a unique name makes each copy distinct.
    open(f"{out}/svc{i}.wasm", "wb").write(base + bytes([0, len(content)]) + content)
PY
    cache="$WORK/cache-$n"
    start_hive "$dir" "$cache"; cold=$STARTUP; stop_hive
    start_hive "$dir" "$cache"; warm=$STARTUP
    sleep 1
    rss=$(rss_mib "$HIVE_PID")
    curl -fsS "http://127.0.0.1:$PORT/svc$((n - 1))?name=x" | grep -q "Hello, x!" || { echo "svc$((n - 1)) did not answer" >&2; exit 1; }
    cat >"$WORK/spread.lua" <<LUA
math.randomseed(42)
request = function()
    return wrk.format(nil, "/svc" .. math.random(0, $((n - 1))))
end
LUA
    result=$(wrk -t2 -c16 -d"${SECONDS_PER_RUN}s" --latency -s "$WORK/spread.lua" "http://127.0.0.1:$PORT/")
    stop_hive
    rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$result")
    p50=$(awk '$1 == "50%" { print $2 }' <<<"$result")
    p99=$(awk '$1 == "99%" { print $2 }' <<<"$result")
    non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$result")
    [[ -z "$non2xx" ]] || { echo "$non2xx non-2xx responses with $n components" >&2; exit 1; }
    printf '| %s | %.2f s | %.2f s | %s MiB | %s | %s | %s |\n' "$n" "$cold" "$warm" "$rss" "$rps" "$p50" "$p99" >>"$OUT.tmp"
done

mv "$OUT.tmp" "$OUT"
cat "$OUT"
