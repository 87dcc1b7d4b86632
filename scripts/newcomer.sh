#!/usr/bin/env bash
# Walks the path a newcomer takes, on this checkout, so a broken front door
# cannot land again (CI runs it after the tests, reusing their release build):
#
#   1. `cargo run --release -- --version` (fails if `cargo run` is ambiguous);
#   2. the README Quick start's first command, read out of README.md and run
#      exactly as written in the background; /hello?name=ci must answer 200
#      with "ci" in the body; then the server's process group is stopped;
#   3. `just build` (just installed by scripts/tools.sh when missing) must
#      produce deploy/hello.wasm;
#   4. `just --list` and `hive <command> --help` for every command exit 0.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh

step() { printf '\n== newcomer: %s\n' "$*"; }
fail() {
    printf 'newcomer: FAILED: %s\n' "$*" >&2
    exit 1
}

step 'cargo run --release -- --version'
cargo run --release --quiet -- --version

# The first command of the first ```sh block under "## Quick start", without
# its trailing comment.
quick_start="$(awk '
    /^## Quick start/ { in_section = 1; next }
    in_section && /^## / { exit }
    in_section && /^```sh/ { in_block = 1; next }
    in_block && /^```/ { exit }
    in_block && NF { sub(/[[:space:]]+#.*$/, ""); print; exit }
' README.md)"
[ -n "$quick_start" ] || fail "no command found in README.md's Quick start"

step "Quick start: $quick_start"
log="$(mktemp)"
server_pgid=""
stop_server() {
    if [ -n "$server_pgid" ]; then
        kill -TERM -- "-$server_pgid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 -- "-$server_pgid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$server_pgid" 2>/dev/null || true
        server_pgid=""
    fi
}
trap 'stop_server; rm -f "$log"' EXIT
# setsid gives the command its own process group, so cargo, hive and
# anything they start are stopped together.
setsid bash -c "$quick_start" >"$log" 2>&1 &
server_pgid=$!

status=""
for _ in $(seq 1 600); do
    if ! kill -0 "$server_pgid" 2>/dev/null; then
        cat "$log" >&2
        fail "the Quick start command exited before serving"
    fi
    status="$(curl -s -o /dev/null -w '%{http_code}' 'http://127.0.0.1:8080/hello?name=ci' || true)"
    [ "$status" = 200 ] && break
    sleep 0.5
done
if [ "$status" != 200 ]; then
    tail -n 50 "$log" >&2
    fail "/hello did not answer 200 within 300 s (last status: ${status:-none})"
fi
body="$(curl -sS 'http://127.0.0.1:8080/hello?name=ci')"
echo "GET /hello?name=ci -> 200: $body"
case "$body" in
*ci*) ;;
*) fail "the body does not greet ci: $body" ;;
esac
stop_server
echo "server stopped"

step 'just build'
ensure_just
rm -rf deploy
just build
[ -s deploy/hello.wasm ] || fail "just build did not produce deploy/hello.wasm"
ls deploy

step 'just --list'
just --list

step 'hive <command> --help'
hive=target/release/hive
"$hive" --help >/dev/null
commands="$("$hive" --help | awk '/^Commands:/ { on = 1; next } on && /^$/ { exit } on { print $1 }')"
[ -n "$commands" ] || fail "hive --help lists no commands"
for command in $commands; do
    [ "$command" = help ] && continue
    "$hive" "$command" --help >/dev/null || fail "hive $command --help failed"
    echo "hive $command --help: ok"
done
echo
echo "newcomer: ok"
