#!/usr/bin/env bash
# Builds the server (normal + no-op-store build for durability-cost) and runs every scenario.
# Usage: bench/run-all.sh [extra nox-bench args, e.g. --quick]
# Results: a table on stdout and bench/results/latest.json.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-target}"
cargo build --release --bin nox-sync
CARGO_TARGET_DIR="$TARGET/noop-store" \
  cargo build --release -p nox-server --features bench-noop-store --bin nox-sync
mkdir -p bench/results
cargo run --release -p nox-bench -- all \
  --server-bin "$TARGET/release/nox-sync" \
  --noop-server-bin "$TARGET/noop-store/release/nox-sync" \
  --json bench/results/latest.json "$@"
