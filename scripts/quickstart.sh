#!/usr/bin/env bash
# Build weft and the example workflows, start `weft serve` on ./weft.db with
# the examples deployed, and run one `hello` workflow against it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "building weft and the example guests (the first build takes a few minutes)..." >&2
cargo build --quiet -p weft
bin="${CARGO_TARGET_DIR:-target}/debug/weft"
wasm=$(scripts/guests.sh hello greeter provision cloud)
addr="${WEFT_ADDR:-127.0.0.1:7411}"

(
    export WEFT_SERVER="$addr"
    for _ in $(seq 100); do "$bin" runs --limit 1 >/dev/null 2>&1 && break; sleep 0.1; done
    echo
    echo "== a first run: weft start hello --input '{\"name\":\"world\"}' --wait"
    "$bin" start hello --input '{"name":"world"}' --wait 30 || true
    cat <<HINTS

== weft is running on http://$addr (Ctrl-C stops it). Try:
   $bin runs
   $bin show RUN_ID
   $bin start provision --input '{"namespace":"acme","region":"eu"}' --wait
   curl -s http://$addr/v1/runs | head -c 400
HINTS
) &

exec "$bin" serve --db weft.db --addr "$addr" \
    --deploy "$wasm/hello.wasm" --deploy "$wasm/greeter.wasm" \
    --deploy "$wasm/provision.wasm" --deploy "$wasm/cloud.wasm"
