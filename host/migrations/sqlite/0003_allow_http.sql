-- Hosts an activity version may reach over wasi:http (JSON array).
ALTER TABLE component_versions ADD COLUMN allow_http TEXT NOT NULL DEFAULT '[]';
