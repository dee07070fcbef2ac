#!/usr/bin/env bash
# Install what building weft needs; safe to run again and again.
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
    echo "weft needs a Rust toolchain (https://rustup.rs); cargo is not on PATH" >&2
    exit 1
fi
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "installing the wasm32-wasip2 target (guests are built for it)" >&2
    rustup target add wasm32-wasip2
fi
