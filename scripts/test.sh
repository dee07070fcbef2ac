#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests (the store contract
# suite on SQLite and Postgres), weft-testing's tests and the example
# workflows' own (in-process, virtual time), `weft new` (a new crate's
# cargo test, then its component on a server), and the end-to-end tests
# (which build every guest in examples/ and fixtures/ from source), on
# SQLite then Postgres.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test
# The end-to-end suite again, every server on a Postgres database of its own.
WEFT_TEST_BACKEND=postgres cargo test --test e2e
