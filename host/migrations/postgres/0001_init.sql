-- The schema of the SQLite backend's migrations 1-4, for Postgres. Integers
-- are BIGINT (read back as i64 by the shared row decoders); JSON is TEXT,
-- stored as written.

-- Components are stored content-addressed: a digest names exactly one blob.
-- Every node loads every version from here.
CREATE TABLE components (
    digest TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    size BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    created_at_ms BIGINT NOT NULL
);

-- A name has versions 1, 2, ...; each version is one digest.
CREATE TABLE component_versions (
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    digest TEXT NOT NULL REFERENCES components(digest),
    kind TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    -- Hosts an activity version may reach over wasi:http (JSON array).
    allow_http TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (name, version),
    UNIQUE (name, digest)
);

CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL DEFAULT 'default',
    workflow_id TEXT NOT NULL,
    workflow TEXT NOT NULL,
    version BIGINT NOT NULL,
    digest TEXT NOT NULL,
    input TEXT NOT NULL,
    status TEXT NOT NULL,
    output TEXT,
    error TEXT,
    custom_status TEXT,
    parent_run_id TEXT,
    parent_close TEXT,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    deadline_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    ended_at_ms BIGINT,
    -- When an evicted run must be resumed (its earliest timer); NULL = now.
    wake_at_ms BIGINT,
    -- 1 while evicted waiting for something other than a timer.
    idle BIGINT NOT NULL DEFAULT 0
);

-- Workflow ids are unique among the open runs of a namespace.
CREATE UNIQUE INDEX runs_open_workflow_id ON runs (namespace, workflow_id)
    WHERE status IN ('running', 'stuck');
CREATE INDEX runs_status ON runs (status, created_at_ms);
CREATE INDEX runs_workflow ON runs (workflow, created_at_ms);
CREATE INDEX runs_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;

-- The journal. (run_id, seq) is unique: an append that expects seq N and
-- finds it taken is refused, which fences out a second writer.
CREATE TABLE events (
    run_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    digest TEXT,
    body TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- Signals, in arrival order (id). `consumed_seq` is the journal event that
-- consumed it, written in the same transaction as that event.
CREATE TABLE signals (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    payload TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    consumed_seq BIGINT,
    request_id TEXT
);
CREATE INDEX signals_pending ON signals (run_id, id) WHERE consumed_seq IS NULL;
CREATE UNIQUE INDEX signals_request ON signals (request_id) WHERE request_id IS NOT NULL;
