#!/usr/bin/env bash
# What request logging costs: the same host binary four times side by side
# on `/hello`, fresh instances and reused ones (instance-reuse 1000), each
# at its defaults (RUST_LOG unset: the `info` request line, written to a
# file, and the console's capture) and with RUST_LOG=warn (no request
# line). Rounds alternate which host runs first. Beside req/s, each run
# reports the host's CPU per request (user + system time from /proc over
# the run), which the noise of a shared 2-core machine moves less. Loopback
# only; each run bounded in time.
#
# On a noisy machine, many short rounds judge a few percent better than a
# few long ones: the machine's speed drifts over seconds, and each round's
# ratio compares two runs a second apart. `LOG_SECONDS=1 LOG_ROUNDS=30`
# does that; the summary gives the median and the quartiles of the ratios.
#
# Usage: bash bench/logging.sh [HIVE]   (default target/release/hive)
# Environment: LOG_SECONDS per run (default 5), LOG_CONNECTIONS (default
#   32), LOG_ROUNDS (default 3), LOG_COMPONENT (default hello, which logs a
#   line of its own per request; hello-http logs none, so its runs measure
#   the request line alone).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/tools.sh
ensure_wrk
HIVE="${1:-$ROOT/target/release/hive}"
SECS="${LOG_SECONDS:-5}"
CONNS="${LOG_CONNECTIONS:-32}"
ROUNDS="${LOG_ROUNDS:-3}"
COMPONENT="${LOG_COMPONENT:-hello}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hive-logbench.XXXXXX")"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

[ -f "deploy/$COMPONENT.wasm" ] || "$HIVE" build --components components --out deploy >/dev/null

# start NAME PORT LEVEL REUSE: LEVEL "default" leaves RUST_LOG unset.
start() {
    local name="$1" port="$2" level="$3" reuse="$4"
    mkdir -p "$WORK/$name"
    cp "deploy/$COMPONENT.wasm" "deploy/$COMPONENT.toml" "$WORK/$name/"
    [ "$reuse" = yes ] && printf '\n[limits]\ninstance-reuse = 1000\n' >>"$WORK/$name/$COMPONENT.toml"
    local env=(env -u RUST_LOG)
    [ "$level" = warn ] && env=(env RUST_LOG=warn)
    "${env[@]}" "$HIVE" serve --dir "$WORK/$name" --listen "127.0.0.1:$port" \
        --admin-listen "127.0.0.1:$((port + 1))" --cache-dir "$WORK/cache-$name" \
        --data "$WORK/data-$name" --no-watch >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    PID_AT[$port]=$!
    for _ in $(seq 1 600); do curl -sf "127.0.0.1:$((port + 1))/ready" >/dev/null && break; sleep 0.1; done
}
declare -A PID_AT
start fresh-default 18800 default no
start fresh-warn 18810 warn no
start reuse-default 18820 default yes
start reuse-warn 18830 warn yes

# ticks PID: the process's user + system CPU so far, in clock ticks.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
HZ="$(getconf CLK_TCK)"

# rate PORT: "REQ/S US_PER_REQUEST" for one wrk run.
rate() {
    local pid="${PID_AT[$1]}" before after out
    before="$(ticks "$pid")"
    out="$(wrk -t2 -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$1/$COMPONENT")"
    after="$(ticks "$pid")"
    awk -v t=$((after - before)) -v hz="$HZ" '
        /requests in/ { n = $1 }
        /Requests\/sec/ { r = $2 }
        END { printf "%s %.1f\n", r, t / hz * 1e6 / n }' <<<"$out"
}
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# quartiles VALUES...: "LOWER-UPPER", the middle half of the values.
quartiles() {
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 3) / 4)] "-" v[int((3 * NR + 3) / 4)] }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

echo "defaults / RUST_LOG=warn on /$COMPONENT, ${SECS} s per run at $CONNS connections, $ROUNDS rounds"
for mode in fresh reuse; do
    base=18800
    [ "$mode" = reuse ] && base=18820
    ratios=()
    cpu=()
    for round in $(seq 1 "$ROUNDS"); do
        if [ $((round % 2)) = 1 ]; then
            read -r default default_us < <(rate "$base")
            read -r warn warn_us < <(rate $((base + 10)))
        else
            read -r warn warn_us < <(rate $((base + 10)))
            read -r default default_us < <(rate "$base")
        fi
        r="$(ratio "$default" "$warn")"
        c="$(ratio "$warn_us" "$default_us")"
        ratios+=("$r")
        cpu+=("$c")
        echo "$mode round $round: defaults $default, warn $warn req/s ($r); CPU per request $default_us, $warn_us us (warn/defaults $c)"
    done
    echo "$mode median ratio defaults/warn: $(median "${ratios[@]}") req/s (quartiles $(quartiles "${ratios[@]}")), $(median "${cpu[@]}") CPU per request (warn's over the defaults')"
done
for name in fresh-default reuse-default; do
    echo "$name: $(grep -c 'hive::request' "$WORK/$name.log") request lines logged"
done
