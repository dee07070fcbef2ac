#!/usr/bin/env bash
# Build guest crates (examples/*, fixtures/*) for wasm32-wasip2 in their own target
# directory and print where the .wasm files are. Usage: guests.sh [CRATE...]
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}/guests"
args=()
for crate in "$@"; do args+=(-p "$crate"); done
cargo build --quiet --release --target wasm32-wasip2 --target-dir "$target" "${args[@]}" >&2
echo "$target/wasm32-wasip2/release"
