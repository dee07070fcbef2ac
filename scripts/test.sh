#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests and the end-to-end
# tests (which build every guest in examples/ and fixtures/ from source).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test
