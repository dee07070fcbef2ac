#!/usr/bin/env bash
# What leases cost at scale, on Postgres: with N open runs (default 100k)
# in the database, time what a node does each lease round (heartbeat, read
# its shards), what a takeover does (take 512 shards, list their runnable
# runs), and what one fenced append costs. Uses a database of its own,
# dropped after. Usage: scripts/lease-cost.sh [N] [postgres://admin-url]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-100000}"
admin="${2:-postgres://postgres@127.0.0.1:5432/test}"
weft="${WEFT:-${CARGO_TARGET_DIR:-target}/release/weft}"
db="weft_lease_cost_$$"
base="${admin%/*}"
psql -q "$admin" -c "CREATE DATABASE $db"
trap 'psql -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
# One node starts and applies the schema, then leaves.
"$weft" serve --db "$base/$db" --addr 127.0.0.1:0 --node-id setup --cache-dir "/tmp/$db" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do
    psql -Atq "$base/$db" -c "SELECT 1 FROM nodes LIMIT 1" 2>/dev/null | grep -q 1 && break
    sleep 0.2
done
kill "$pid"; wait "$pid" 2>/dev/null || true
psql -q "$base/$db" <<SQL
INSERT INTO runs (run_id, workflow_id, workflow, version, digest, input, status,
                  created_at_ms, updated_at_ms, idle, wake_at_ms, shard)
SELECT id, id, 'w', 1, 'd', '{}', 'running', 0, 0, 1,
       CASE WHEN i % 2 = 0 THEN 9000000000000 END,
       ('x' || substr(encode(sha256(convert_to(id, 'UTF8')), 'hex'), 1, 8))::bit(32)::bigint % 1024
FROM (SELECT i, 'run-' || i AS id FROM generate_series(1, $runs) AS i) AS r;
INSERT INTO events (run_id, seq, kind, body, at_ms)
SELECT run_id, 0, 'started', '{}', 0 FROM runs;
INSERT INTO nodes VALUES ('a', 'http://a', 0), ('b', 'http://b', 0), ('c', 'http://c', 0);
UPDATE shard_leases SET owner = CASE WHEN shard < 512 THEN 'a' ELSE 'b' END, epoch = 1;
-- The design not taken, for comparison: a lease row per run.
CREATE TABLE run_leases (run_id TEXT PRIMARY KEY, owner TEXT, expires_at_ms BIGINT);
INSERT INTO run_leases SELECT run_id, CASE WHEN shard < 512 THEN 'a' ELSE 'b' END, 0 FROM runs;
CREATE INDEX ON run_leases (owner);
ANALYZE;
SQL
now="(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT"
time_of() {
    # The median of 21 executions, in ms, by EXPLAIN ANALYZE's own clock.
    for _ in $(seq 21); do
        psql -Atq "$base/$db" -c "EXPLAIN (ANALYZE, FORMAT JSON) $1" \
            | python3 -c 'import json,sys; p=json.load(sys.stdin)[0]; print("%.2f" % (p["Planning Time"]+p["Execution Time"]))'
    done | sort -g | sed -n 11p
}
echo "open runs: $(psql -Atq "$base/$db" -c "SELECT count(*) FROM runs WHERE status = 'running'")"
echo "lease round, per node:"
echo "  heartbeat (renews all its leases):  $(time_of "UPDATE nodes SET heartbeat_at_ms = $now WHERE node_id = 'a'") ms"
echo "  read the shards it holds:           $(time_of "SELECT shard, epoch FROM shard_leases WHERE owner = 'a' ORDER BY shard") ms"
echo "  (a lease row per run instead: renew $(psql -Atq "$base/$db" -c "SELECT count(*) FROM run_leases WHERE owner = 'a'") rows: $(time_of "UPDATE run_leases SET expires_at_ms = $now + 10000 WHERE owner = 'a'") ms)"
echo "takeover of a dead node's 512 shards:"
echo "  take them (new epoch):              $(time_of "UPDATE shard_leases l SET owner = 'c', epoch = l.epoch + 1 WHERE l.shard IN (SELECT s.shard FROM shard_leases s LEFT JOIN nodes n ON n.node_id = s.owner WHERE s.shard < 512 ORDER BY s.shard LIMIT 512 FOR UPDATE OF s SKIP LOCKED) RETURNING l.shard, l.epoch") ms"
shards="ARRAY(SELECT generate_series(0, 511))::BIGINT[]"
echo "  list their runnable runs:           $(time_of "SELECT r.run_id, r.wake_at_ms, r.idle, (r.cancel_requested = 1 OR EXISTS (SELECT 1 FROM signals s WHERE s.run_id = r.run_id AND s.consumed_seq IS NULL) OR EXISTS (SELECT 1 FROM runs c WHERE c.parent_run_id = r.run_id AND c.status NOT IN ('running', 'stuck') AND c.ended_at_ms >= r.updated_at_ms)) FROM runs r WHERE r.status = 'running' AND r.shard = ANY($shards)") ms"
echo "fencing, per append transaction:"
echo "  check the lease (FOR SHARE):        $(time_of "SELECT epoch FROM shard_leases WHERE shard = 7 FOR SHARE") ms"
