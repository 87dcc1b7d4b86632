#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine (Rust from rustup with only the
# host target). It first installs what the tests need that cargo cannot
# fetch (see scripts/tools.sh); the wasm32-wasip2 target is added by the
# tests themselves through `hive build`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh

ensure_chromium            # the status page tests
ensure_tmux                # `hive top` under tmux
ensure_redis               # the shared kv and the cluster tests
ensure_haproxy             # the failover test
ensure_apt openssl openssl # the TLS test's certificate
ensure_apt curl curl       # the TLS test's client
ensure_python_servers      # gunicorn and uvicorn, beside which the Flask and Starlette apps are compared
ensure_otel_proto          # the trace tests' OTLP receiver decodes with the OpenTelemetry protobufs

cargo test --release --workspace "$@"
# The demo inventory's stock record, tested natively (its crate builds for
# wasm32-wasip2 by default; the tests need no host calls).
cargo test --release --manifest-path components/Cargo.toml -p inventory --lib \
    --target "$(rustc -vV | sed -n 's/^host: //p')"
