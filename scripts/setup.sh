#!/usr/bin/env bash
# Install what building weft needs; safe to run again and again.
# With --tests, also what the test suite needs (see below).
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
    echo "weft needs a Rust toolchain (https://rustup.rs); cargo is not on PATH" >&2
    exit 1
fi
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "installing the wasm32-wasip2 target (guests are built for it)" >&2
    rustup target add wasm32-wasip2
fi
[ "${1:-}" = "--tests" ] || exit 0
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
    echo "installing the wasm32-wasip1 target (cargo component builds for it)" >&2
    rustup target add wasm32-wasip1
fi
# `setup.sh --tests`: what the test suite needs besides. It builds guests
# with cargo-component too (one of the two documented ways), pinned and
# installed once per machine, outside the clone.
# Postgres at 127.0.0.1:5432 for the Postgres backend's tests (each test
# makes a database of its own and drops it).
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && command -v pg_ctlcluster >/dev/null; then
    echo "starting the local Postgres cluster" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
CARGO_COMPONENT_VERSION=0.21.1
if [ "$(cargo component --version 2>/dev/null | awk '{print $2}')" != "$CARGO_COMPONENT_VERSION" ]; then
    echo "installing cargo-component $CARGO_COMPONENT_VERSION (once per machine; ~7 min on 2 cores)" >&2
    cargo install cargo-component --locked --version "$CARGO_COMPONENT_VERSION"
fi
# Chromium, for the web UI's tests (Debian's package).
if ! command -v chromium >/dev/null 2>&1; then
    echo "installing Chromium (the web UI's tests render it)" >&2
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get install -y chromium || { $sudo apt-get update && $sudo apt-get install -y chromium; }
fi
# From npm, pinned in tests/ui/package-lock.json: playwright-core drives
# that Chromium through the UI's pages, swagger-parser validates the
# OpenAPI document.
ui_tests="$(cd "$(dirname "$0")/.." && pwd)/tests/ui"
if ! cmp -s "$ui_tests/package-lock.json" "$ui_tests/node_modules/.package-lock.json.installed"; then
    command -v npm >/dev/null 2>&1 || { echo "the browser tests need Node.js and npm" >&2; exit 1; }
    echo "installing the browser and API tests' npm packages" >&2
    (cd "$ui_tests" && npm ci --no-audit --no-fund --silent &&
        cp package-lock.json node_modules/.package-lock.json.installed)
fi
