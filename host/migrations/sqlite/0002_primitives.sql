-- Workflow ids are unique among the open runs of a namespace.
ALTER TABLE runs ADD COLUMN namespace TEXT NOT NULL DEFAULT 'default';
DROP INDEX runs_open_workflow_id;
CREATE UNIQUE INDEX runs_open_workflow_id ON runs (namespace, workflow_id)
    WHERE status IN ('running', 'stuck');

-- Children: who started the run, and what happens to it when the parent ends.
ALTER TABLE runs ADD COLUMN parent_run_id TEXT;
ALTER TABLE runs ADD COLUMN parent_close TEXT;
CREATE INDEX runs_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;

-- The latest status the workflow published (JSON).
ALTER TABLE runs ADD COLUMN custom_status TEXT;
ALTER TABLE runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
-- Execution timeout, as an absolute time.
ALTER TABLE runs ADD COLUMN deadline_at_ms INTEGER;
-- 1 while evicted waiting for something other than a timer (a signal, a
-- child): such a run is woken by that event, not at start-up.
ALTER TABLE runs ADD COLUMN idle INTEGER NOT NULL DEFAULT 0;

-- Signals, in arrival order (id). `consumed_seq` is the journal event that
-- consumed it, written in the same transaction as that event.
CREATE TABLE signals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    payload TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    consumed_seq INTEGER
);
CREATE INDEX signals_pending ON signals (run_id, id) WHERE consumed_seq IS NULL;
