-- Who did what to a namespace: deploys, upgrades, cancellations,
-- terminations, limits and tokens. `actor` is a token id, never a value.
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT 'null'
);
CREATE INDEX audit_namespace ON audit (namespace, id);
