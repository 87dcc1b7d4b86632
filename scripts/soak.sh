#!/usr/bin/env bash
# The soak: the shop on three hosts, Redis with Sentinel and HAProxy on
# loopback, under load and seeded chaos, then the invariant checker
# (host/tests/soak/). Usage: scripts/soak.sh [SECONDS] [SEED] [DURABILITY]
# (defaults 1800, 20261202, replicated); the report goes to stdout and to
# bench/results/soak.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh

ensure_redis
ensure_haproxy

mkdir -p bench/results
HIVE_SOAK_SECONDS="${1:-1800}" \
HIVE_SOAK_SEED="${2:-20261202}" \
HIVE_SOAK_DURABILITY="${3:-replicated}" \
HIVE_SOAK_REPORT="$PWD/bench/results/soak.md" \
    cargo test --release -p hive --test soak -- --exact soak_with_faults_keeps_every_invariant --nocapture
