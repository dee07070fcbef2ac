-- Cluster mode: runs are grouped in 1024 virtual shards by their id, and
-- nodes lease shards (see docs/architecture.md, "Several nodes").

-- A run's shard: the first four bytes of the SHA-256 of its id, mod 1024
-- (`store::shard_of` computes the same for new runs).
ALTER TABLE runs ADD COLUMN shard BIGINT NOT NULL DEFAULT 0;
UPDATE runs SET shard =
    ('x' || substr(encode(sha256(convert_to(run_id, 'UTF8')), 'hex'), 1, 8))::bit(32)::bigint % 1024;
CREATE INDEX runs_running_shard ON runs (shard) WHERE status = 'running';

-- Nodes alive: a node's leases last while its heartbeat is fresh, so
-- renewing them is one row a node, however many shards and runs it has.
CREATE TABLE nodes (
    node_id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    heartbeat_at_ms BIGINT NOT NULL
);

-- Who drives each shard's runs, and in which epoch. Taking a shard over
-- bumps its epoch; every journal append checks the epoch it was written
-- under (FOR SHARE), so a node that lost a shard cannot append to it.
CREATE TABLE shard_leases (
    shard BIGINT PRIMARY KEY,
    owner TEXT,
    epoch BIGINT NOT NULL DEFAULT 0
);
INSERT INTO shard_leases (shard) SELECT generate_series(0, 1023);
CREATE INDEX shard_leases_owner ON shard_leases (owner);
