#!/usr/bin/env bash
# What edge authentication and a rate limit cost `/hello`, measured side
# by side: the same binary serving `hello` twice, plainly and with
# `[auth]` (HS256, issuer and audience checked) plus `[limits] rate`
# (high enough never to refuse, so every request pays the check), wrk
# sending a valid token to both. Rounds alternate between the two.
# Loopback only; each run bounded in time.
#
# Usage: bash bench/security.sh [HIVE]   (default: target/release/hive)
# Environment: SECURITY_SECONDS per run (default 5), SECURITY_CONNECTIONS
#   (default 16), SECURITY_ROUNDS (default 2).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/tools.sh
ensure_wrk
SECS="${SECURITY_SECONDS:-5}"
CONNS="${SECURITY_CONNECTIONS:-16}"
ROUNDS="${SECURITY_ROUNDS:-2}"
HIVE="${1:-$ROOT/target/release/hive}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hive-securitybench.XXXXXX")"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

[ -f deploy/hello.wasm ] || "$HIVE" build --components components --out deploy >/dev/null
mkdir -p "$WORK/plain" "$WORK/guarded" "$WORK/secrets"
cp deploy/hello.wasm "$WORK/plain/"
cp deploy/hello.wasm "$WORK/guarded/"
printf 'routes = ["/hello"]\ncalls = []\n[config]\ngreeting = "Hello"\n' >"$WORK/plain/hello.toml"
cat >"$WORK/guarded/hello.toml" <<'TOML'
routes = ["/hello"]
calls = []
[config]
greeting = "Hello"
[limits]
rate = "1000000/s"
burst = 1000000
[auth]
algorithms = ["HS256"]
hmac-secret = "bench-key"
issuer = "https://login.bench"
audience = "hello"
TOML
printf 'a-bench-only-hmac-key-0123456789' >"$WORK/secrets/bench-key"
TOKEN="$(python3 - <<'PY'
import base64, hashlib, hmac, json, time
b64 = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=")
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"sub": "bench", "iss": "https://login.bench", "aud": "hello",
                       "exp": int(time.time()) + 3600}).encode())
signature = hmac.new(b"a-bench-only-hmac-key-0123456789", head + b"." + body, hashlib.sha256).digest()
print((head + b"." + body + b"." + b64(signature)).decode())
PY
)"

start() {
    local name="$1" port="$2"
    "$HIVE" serve --dir "$WORK/$name" --listen "127.0.0.1:$port" \
        --admin-listen "127.0.0.1:$((port + 1))" --cache-dir "$WORK/cache" \
        --data "$WORK/data-$name" --secrets "$WORK/secrets" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 600); do curl -sf "127.0.0.1:$((port + 1))/ready" >/dev/null && break; sleep 0.1; done
    local status
    status="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "127.0.0.1:$port/hello")"
    [ "$status" = 200 ] || { echo "$name answered $status" >&2; cat "$WORK/$name.log" >&2; exit 1; }
}
start plain 18800
start guarded 18810

echo "/hello, ${SECS} s per run at $CONNS connections, a valid token sent to both"
for round in $(seq 1 "$ROUNDS"); do
    for target in plain:18800 guarded:18810; do
        name="${target%%:*}"
        port="${target##*:}"
        rate="$(wrk -t2 -c"$CONNS" -d"${SECS}s" -H "Authorization: Bearer $TOKEN" \
            "http://127.0.0.1:$port/hello" | awk '/Requests\/sec/ { print $2 }')"
        echo "round $round  $name  $rate req/s"
    done
done
