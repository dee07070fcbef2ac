-- Schedules: start a workflow at fixed intervals. `spec` holds what the
-- operator set (JSON: every_ms, overlap, catchup_window_ms); the rest is
-- state, changed only by a compare-and-set on `revision`, so each due time
-- is acted on once however many nodes look.
CREATE TABLE schedules (
    namespace TEXT NOT NULL,
    id TEXT NOT NULL,
    workflow TEXT NOT NULL,
    input TEXT NOT NULL,
    spec TEXT NOT NULL,
    paused BIGINT NOT NULL DEFAULT 0,
    note TEXT NOT NULL DEFAULT '',
    next_due_ms BIGINT NOT NULL,
    last_run_id TEXT,
    recent TEXT NOT NULL DEFAULT '[]',
    revision BIGINT NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (namespace, id)
);
CREATE INDEX schedules_due ON schedules (next_due_ms) WHERE paused = 0;
