-- A paused run takes no step until it is unpaused (nothing resumes it).
ALTER TABLE runs ADD COLUMN paused BIGINT NOT NULL DEFAULT 0;
