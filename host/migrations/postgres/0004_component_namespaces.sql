-- Component names and versions belong to a namespace (the bytes stay
-- shared, content-addressed). Versions recorded before are the default
-- namespace's, and also of every namespace that exists, so their runs keep
-- finding their components.
ALTER TABLE component_versions ADD COLUMN namespace TEXT NOT NULL DEFAULT 'default';
ALTER TABLE component_versions DROP CONSTRAINT component_versions_pkey;
ALTER TABLE component_versions DROP CONSTRAINT component_versions_name_digest_key;
INSERT INTO component_versions (namespace, name, version, digest, kind, created_at_ms, allow_http)
SELECT n.name, v.name, v.version, v.digest, v.kind, v.created_at_ms, v.allow_http
FROM component_versions v, namespaces n WHERE n.name <> 'default';
ALTER TABLE component_versions ADD PRIMARY KEY (namespace, name, version);
ALTER TABLE component_versions ADD CONSTRAINT component_versions_namespace_name_digest_key
    UNIQUE (namespace, name, digest);
