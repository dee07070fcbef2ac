-- Namespaces, the unit of isolation, and API tokens (stored as SHA-256
-- hashes, never as values). `default` exists from the first start.
CREATE TABLE namespaces (
    name TEXT PRIMARY KEY,
    created_at_ms BIGINT NOT NULL
);
INSERT INTO namespaces (name, created_at_ms) VALUES ('default', 0);
INSERT INTO namespaces (name, created_at_ms)
    SELECT DISTINCT namespace, 0 FROM runs WHERE namespace <> 'default';

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    -- NULL for the cluster admin's token.
    namespace TEXT,
    role TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at_ms BIGINT NOT NULL,
    last_used_at_ms BIGINT,
    revoked_at_ms BIGINT
);
CREATE INDEX tokens_namespace ON tokens (namespace);
