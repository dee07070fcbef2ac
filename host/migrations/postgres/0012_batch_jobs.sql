-- Batch jobs: a batch written down and worked off in the background. Its
-- runs are listed when it is asked; each is claimed (`applying`, with the
-- time) before it is acted on and ends `applied` or `failed`; a claim
-- older than a few seconds (its node died) is taken again.
CREATE TABLE batch_jobs (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    spec TEXT NOT NULL,
    done BIGINT NOT NULL DEFAULT 0,
    matched BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    finished_at_ms BIGINT
);
CREATE TABLE batch_job_runs (
    job_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    claimed_at_ms BIGINT,
    error TEXT,
    PRIMARY KEY (job_id, run_id)
);
CREATE INDEX batch_job_runs_state ON batch_job_runs (job_id, state);
