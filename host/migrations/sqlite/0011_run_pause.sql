-- A paused run takes no step until it is unpaused (nothing resumes it).
ALTER TABLE runs ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
