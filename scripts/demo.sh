#!/usr/bin/env bash
# The control-plane demo: builds the examples, starts the simulated cloud
# and weft (SQLite, ./demo.db), deploys everything, and starts a tenant
# provisioning and a ring rollout with waits scaled down to seconds.
# Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "building weft, simcloud and the control-plane examples..." >&2
cargo build --quiet -p weft -p simcloud
target="${CARGO_TARGET_DIR:-target}"
weft="$target/debug/weft"
wasm=$(scripts/guests.sh sim provision-namespace cell-entity rollout rollout-request)
cloud_addr="${SIMCLOUD_ADDR:-127.0.0.1:7412}"
export WEFT_SERVER="${WEFT_ADDR:-127.0.0.1:7411}"
cloud="http://$cloud_addr"

rm -f demo.db demo.db-wal demo.db-shm
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
"$target/debug/simcloud" "$cloud_addr" --failure-rate 0.2 --cert-delay-ms 4000 --dns-delay-ms 3000 &
pids+=($!)
"$weft" serve --db demo.db --addr "$WEFT_SERVER" --resident-timer-ms 1000 2> demo.log &
pids+=($!)
for _ in $(seq 100); do "$weft" runs --limit 1 >/dev/null 2>&1 && break; sleep 0.1; done

"$weft" deploy "$wasm/sim.wasm" --allow-http "$cloud_addr"
for w in provision-namespace cell-entity rollout rollout-request; do
    "$weft" deploy "$wasm/${w//-/_}.wasm" --name "$w"
done

provision=$("$weft" start provision-namespace --timeout-ms 1800000 \
    --input "{\"namespace\":\"acme\",\"region\":\"eu\",\"cloud\":\"$cloud\",\"poll_ms\":500}")
plan="{\"version\":\"v2\",\"cloud\":\"$cloud\",
  \"business_hours\":{\"start_hour\":0,\"end_hour\":24,\"weekends\":true},
  \"cell\":{\"pause_ms\":1000,\"canary_window_ms\":3000,\"canary_interval_ms\":1000},
  \"batches\":[{\"ring\":0,\"cells\":[\"ap-1\"],\"wait_ms\":2000},
               {\"ring\":1,\"cells\":[\"us-1\",\"us-2\"],\"wait_ms\":5000},
               {\"ring\":2,\"cells\":[\"eu-1\",\"eu-2\"],\"wait_ms\":5000},
               {\"ring\":2,\"cells\":[\"eu-3\"],\"wait_ms\":3000}]}"
rollout=$("$weft" start rollout-request \
    --input "{\"requested_by\":\"you\",\"reason\":\"the demo\",\"plan\":$plan}")

cat <<EOF2

== weft on http://$WEFT_SERVER, the simulated cloud on $cloud (20% of its calls fail)
   provisioning run: $provision
   rollout request:  $rollout   (the rollout itself has workflow id rollout-v2)

   $weft show $provision --follow          # the provisioning timeline, retries included
   $weft show $rollout --follow
   curl -s http://$WEFT_SERVER/v1/workflow-ids/rollout-v2 | head -c 600   # ring, batch, next wake-up
   $weft runs --query "workflow = 'rollout' AND cells STARTS_WITH 'eu-'"   # rollouts touching eu cells now
   $weft pause <rollout-v2's run id> --reason incident; $weft unpause ...   # hold it, then let it go
   $weft update cell-ap-1 upgrade --input '{"version":"v3"}'   # ask a cell directly: accepted, or refused while busy
   curl -s $cloud/admin/state | head -c 600                                # the cloud: messages, upgrades
   $weft runs

Ctrl-C stops the demo (the server log is demo.log).
EOF2

# The operator's verbs, once the rollout is under way: find it by query,
# pause it during an "incident", let it go again.
for _ in $(seq 100); do
    rollout_run=$("$weft" runs --query "workflow_id = 'rollout-v2' AND status = 'running'" | awk 'NR == 2 { print $1 }')
    [ -n "$rollout_run" ] && break
    sleep 0.2
done
if [ -n "${rollout_run:-}" ]; then
    echo "== the running rollouts (search attributes: ring, cells, state):" >&2
    "$weft" runs --query "workflow = 'rollout' AND status = 'running'" >&2
    echo "== an incident: pausing rollout run $rollout_run for 10 s" >&2
    "$weft" pause "$rollout_run" --reason "incident: demo" >&2
    sleep 10
    "$weft" unpause "$rollout_run" --reason "all clear" >&2
fi
wait
