#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine (Rust from rustup with only the
# host target). It installs what the tests need that cargo cannot fetch:
# Chromium, for the status page test. The wasm32-wasip2 target is added by
# the tests themselves through `hive build`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    echo "== installing Chromium for the status page test"
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
fi

cargo test --release --workspace "$@"
