-- Updates: requests into a running workflow whose callers wait for the
-- answer. Addressed to a workflow id (the open run under it takes them, a
-- continued run's successor included); `update_id` makes a retried request
-- the same update. `state` goes requested -> accepted (journaled by the
-- run that took it, `run_id`) -> completed, or requested -> rejected;
-- `outcome` is the answer: {"output": ...} or {"error": {...}}.
CREATE TABLE updates (
    namespace TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    update_id TEXT NOT NULL,
    name TEXT NOT NULL,
    input TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'requested',
    run_id TEXT,
    outcome TEXT,
    requested_at_ms INTEGER NOT NULL,
    decided_at_ms INTEGER,
    PRIMARY KEY (namespace, workflow_id, update_id)
);
CREATE INDEX updates_requested ON updates (namespace, workflow_id) WHERE state = 'requested';
