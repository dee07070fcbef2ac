-- Component names and versions belong to a namespace (the bytes stay
-- shared, content-addressed). Versions recorded before are the default
-- namespace's, and also of every namespace that has runs, so those runs
-- keep finding their components.
CREATE TABLE component_versions_by_namespace (
    namespace TEXT NOT NULL DEFAULT 'default',
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    digest TEXT NOT NULL REFERENCES components(digest),
    kind TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    allow_http TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (namespace, name, version),
    UNIQUE (namespace, name, digest)
);
INSERT INTO component_versions_by_namespace
    (namespace, name, version, digest, kind, created_at_ms, allow_http)
SELECT n.name, v.name, v.version, v.digest, v.kind, v.created_at_ms, v.allow_http
FROM component_versions v, namespaces n;
DROP TABLE component_versions;
ALTER TABLE component_versions_by_namespace RENAME TO component_versions;
