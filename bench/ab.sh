#!/usr/bin/env bash
# Side-by-side A/B of two hive binaries on the same components: both serve
# at once, and wrk measures them in alternating rounds, so machine noise hits
# both alike. Prints req/s, p50 and the server's CPU time per request.
#
# Usage: bash bench/ab.sh DIR PATH HIVE_A HIVE_B
#   DIR     folder of .wasm (+ .toml) files both hives serve
#   PATH    request path, e.g. /hello
#   HIVE_A  first hive binary (e.g. a copy of target/release/hive before a change)
#   HIVE_B  second hive binary
# Environment: AB_ROUNDS (default 3), AB_SECONDS per round (default 4),
#   AB_CONNECTIONS (default 16).
set -euo pipefail

[[ $# -eq 4 ]] || {
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
DIR=$1 URL_PATH=$2
BINS=("$3" "$4")
ROUNDS="${AB_ROUNDS:-3}"
SECS="${AB_SECONDS:-4}"
CONNS="${AB_CONNECTIONS:-16}"
for n in "$ROUNDS" "$SECS" "$CONNS"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "ab: AB_* must be positive integers" >&2; exit 2; }
done
[[ -d "$DIR" ]] || { echo "ab: no folder $DIR" >&2; exit 2; }
for bin in "${BINS[@]}"; do
    [[ -x "$bin" ]] || { echo "ab: $bin is not an executable" >&2; exit 2; }
done
command -v wrk >/dev/null || { echo "ab: needs wrk (apt-get install wrk)" >&2; exit 2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hive-ab.XXXXXX")"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

read -r PORT_A PORT_B < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))
for x in s: x.close()')
PORTS=("$PORT_A" "$PORT_B")

for i in 0 1; do
    # Each server stops by itself after 15 minutes even if this script is killed.
    RUST_LOG=warn timeout 900 "${BINS[$i]}" serve --dir "$DIR" --listen "127.0.0.1:${PORTS[$i]}" \
        --no-watch --admin-listen 127.0.0.1:0 --cache-dir "$WORK/cache-$i" --data "$WORK/data-$i" \
        >"$WORK/log-$i" 2>&1 &
    PIDS+=("$!")
done

URLS=()
for i in 0 1; do
    URLS+=("http://127.0.0.1:${PORTS[$i]}$URL_PATH")
    for ((k = 0; k < 600; k++)); do
        curl -sf -o /dev/null "${URLS[$i]}" && break
        kill -0 "${PIDS[$i]}" 2>/dev/null || { echo "ab: ${BINS[$i]} exited:" >&2; cat "$WORK/log-$i" >&2; exit 1; }
        sleep 0.1
    done
    curl -sf -o /dev/null "${URLS[$i]}" || { echo "ab: ${URLS[$i]} does not answer 2xx" >&2; exit 1; }
done

# The server is the child of `timeout`.
server_pid() { pgrep -P "$1" | head -n 1; }
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
HZ="$(getconf CLK_TCK)"
THREADS=2
((CONNS < 2)) && THREADS=1

for i in 0 1; do wrk -t"$THREADS" -c"$CONNS" -d2s "${URLS[$i]}" >/dev/null; done
printf '%-4s %-6s %12s %10s %14s\n' "" round "req/s" p50 "CPU/request" >&2
for ((r = 1; r <= ROUNDS; r++)); do
    for i in 0 1; do
        pid="$(server_pid "${PIDS[$i]}")"
        before="$(cpu_ticks "$pid")"
        out="$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency "${URLS[$i]}")"
        after="$(cpu_ticks "$pid")"
        awk -v name="$([[ $i == 0 ]] && echo A || echo B)" -v r="$r" -v a="$before" -v b="$after" -v hz="$HZ" '
            /requests in/ { n = $1 }
            /^Requests\/sec:/ { rps = $2 }
            $1 == "50%" { p50 = $2 }
            /Non-2xx|Socket errors/ { err = err " " $0 }
            END { printf "%-4s %-6s %12s %10s %11.1f us%s\n", name, r, rps, p50, (b - a) / hz * 1e6 / n, err }' <<<"$out"
    done
done
