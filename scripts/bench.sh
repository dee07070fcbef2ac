#!/usr/bin/env bash
# weft bench in release mode: chain10 latency and throughput on a fresh
# SQLite file. Extra arguments go to `weft bench` (e.g. --durability normal;
# --db postgres://postgres@127.0.0.1:5432/test [--nodes 3] benches nodes on
# a Postgres database the bench makes there and drops after).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --quiet --release -p weft
wasm=$(scripts/guests.sh chain10 step fanout effects steps deadline)
exec "${CARGO_TARGET_DIR:-target}/release/weft" bench --wasm-dir "$wasm" "$@"
