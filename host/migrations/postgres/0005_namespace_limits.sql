-- A namespace's limits (JSON; an absent field is no limit).
ALTER TABLE namespaces ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';
