-- Components are stored content-addressed: a digest names exactly one blob.
CREATE TABLE components (
    digest TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    size INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL
);

-- A name has versions 1, 2, ...; each version is one digest.
CREATE TABLE component_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    digest TEXT NOT NULL REFERENCES components(digest),
    kind TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (name, version),
    UNIQUE (name, digest)
);

CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    workflow TEXT NOT NULL,
    version INTEGER NOT NULL,
    digest TEXT NOT NULL,
    input TEXT NOT NULL,
    status TEXT NOT NULL,
    output TEXT,
    error TEXT,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    ended_at_ms INTEGER,
    -- When an evicted run must be resumed (its earliest timer); NULL = now.
    wake_at_ms INTEGER
);

-- A workflow id names at most one open run: entity workflows are singletons.
CREATE UNIQUE INDEX runs_open_workflow_id ON runs (workflow_id)
    WHERE status IN ('running', 'stuck');
CREATE INDEX runs_status ON runs (status, created_at_ms);
CREATE INDEX runs_workflow ON runs (workflow, created_at_ms);

-- The journal. (run_id, seq) is unique: an append that expects seq N and
-- finds it taken is refused, which fences out a second writer.
CREATE TABLE events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    digest TEXT,
    body TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
