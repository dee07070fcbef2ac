//! Batch jobs as stored: the job (its action as JSON, how many runs it
//! matched) and one row per run it is to act on, claimed by
//! compare-and-set so two nodes never act on one run at once.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchJob {
    pub id: String,
    pub namespace: String,
    /// What it does to each run (the runtime's batch action, as JSON).
    pub spec: Value,
    pub done: bool,
    pub matched: u64,
    pub applied: u64,
    pub failed: u64,
    /// The first runs it could not act on, with why.
    pub errors: Vec<Value>,
    pub created_at_ms: i64,
    pub finished_at_ms: Option<i64>,
}

#[async_trait]
pub trait BatchJobs: Send + Sync {
    async fn create_job(&self, job: &BatchJob, runs: &[String]) -> anyhow::Result<()>;
    /// The job with its progress.
    async fn job(&self, id: &str) -> anyhow::Result<Option<BatchJob>>;
    /// Jobs not done yet.
    async fn open_jobs(&self) -> anyhow::Result<Vec<BatchJob>>;
    /// Claim up to `n` runs of `job`: pending ones, or ones claimed before
    /// `stale_ms` and not finished.
    async fn claim_runs(
        &self,
        job: &str,
        now_ms: i64,
        stale_ms: i64,
        n: u32,
    ) -> anyhow::Result<Vec<String>>;
    /// A claimed run was acted on: `error` says why not, if not.
    async fn finish_run(&self, job: &str, run_id: &str, error: Option<&str>) -> anyhow::Result<()>;
    /// Mark the job done if none of its runs is pending or claimed; true
    /// if it is done.
    async fn finish_job_if_done(&self, job: &str, now_ms: i64) -> anyhow::Result<bool>;
}

/// How many failed runs a job reports by name.
pub(super) const ERRORS_SHOWN: i64 = 20;

/// [`BatchJobs`] for a store with a `pool`: the same SQL on every backend.
macro_rules! impl_batch_jobs {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::batch_jobs::BatchJobs for $store {
            async fn create_job(
                &self,
                job: &$crate::store::BatchJob,
                runs: &[String],
            ) -> anyhow::Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO batch_jobs (id, namespace, spec, done, matched, created_at_ms) \
                     VALUES ($1, $2, $3, 0, $4, $5)",
                )
                .bind(&job.id)
                .bind(&job.namespace)
                .bind(job.spec.to_string())
                .bind(job.matched as i64)
                .bind(job.created_at_ms)
                .execute(&mut *tx)
                .await?;
                for run_id in runs {
                    sqlx::query("INSERT INTO batch_job_runs (job_id, run_id) VALUES ($1, $2)")
                        .bind(&job.id)
                        .bind(run_id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn job(&self, id: &str) -> anyhow::Result<Option<$crate::store::BatchJob>> {
                let row: Option<(String, String, String, i64, i64, i64, Option<i64>)> =
                    sqlx::query_as(
                        "SELECT id, namespace, spec, done, matched, created_at_ms, finished_at_ms \
                         FROM batch_jobs WHERE id = $1",
                    )
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                let Some((id, namespace, spec, done, matched, created, finished)) = row else {
                    return Ok(None);
                };
                let counts: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT state, COUNT(*) FROM batch_job_runs WHERE job_id = $1 GROUP BY state",
                )
                .bind(&id)
                .fetch_all(&self.pool)
                .await?;
                let count = |state: &str| {
                    counts
                        .iter()
                        .find(|(s, _)| s == state)
                        .map_or(0, |(_, n)| *n as u64)
                };
                let errors: Vec<(String, Option<String>)> = sqlx::query_as(
                    "SELECT run_id, error FROM batch_job_runs WHERE job_id = $1 \
                     AND state = 'failed' ORDER BY run_id LIMIT $2",
                )
                .bind(&id)
                .bind($crate::store::batch_jobs::ERRORS_SHOWN)
                .fetch_all(&self.pool)
                .await?;
                Ok(Some($crate::store::BatchJob {
                    spec: serde_json::from_str(&spec)?,
                    done: done != 0,
                    matched: matched as u64,
                    applied: count("applied"),
                    failed: count("failed"),
                    errors: errors
                        .into_iter()
                        .map(|(run_id, error)| serde_json::json!({ "run_id": run_id, "error": error }))
                        .collect(),
                    created_at_ms: created,
                    finished_at_ms: finished,
                    id,
                    namespace,
                }))
            }

            async fn open_jobs(&self) -> anyhow::Result<Vec<$crate::store::BatchJob>> {
                let ids: Vec<(String,)> =
                    sqlx::query_as("SELECT id FROM batch_jobs WHERE done = 0 ORDER BY created_at_ms")
                        .fetch_all(&self.pool)
                        .await?;
                let mut jobs = Vec::new();
                for (id,) in ids {
                    if let Some(job) = self.job(&id).await? {
                        jobs.push(job);
                    }
                }
                Ok(jobs)
            }

            async fn claim_runs(
                &self,
                job: &str,
                now_ms: i64,
                stale_ms: i64,
                n: u32,
            ) -> anyhow::Result<Vec<String>> {
                let candidates: Vec<(String,)> = sqlx::query_as(
                    "SELECT run_id FROM batch_job_runs WHERE job_id = $1 AND \
                     (state = 'pending' OR (state = 'applying' AND claimed_at_ms < $2)) \
                     ORDER BY run_id LIMIT $3",
                )
                .bind(job)
                .bind(stale_ms)
                .bind(n as i64)
                .fetch_all(&self.pool)
                .await?;
                let mut claimed = Vec::new();
                for (run_id,) in candidates {
                    let done = sqlx::query(
                        "UPDATE batch_job_runs SET state = 'applying', claimed_at_ms = $1 \
                         WHERE job_id = $2 AND run_id = $3 AND \
                         (state = 'pending' OR (state = 'applying' AND claimed_at_ms < $4))",
                    )
                    .bind(now_ms)
                    .bind(job)
                    .bind(&run_id)
                    .bind(stale_ms)
                    .execute(&self.pool)
                    .await?;
                    if done.rows_affected() == 1 {
                        claimed.push(run_id);
                    }
                }
                Ok(claimed)
            }

            async fn finish_run(
                &self,
                job: &str,
                run_id: &str,
                error: Option<&str>,
            ) -> anyhow::Result<()> {
                sqlx::query(
                    "UPDATE batch_job_runs SET state = $1, error = $2 \
                     WHERE job_id = $3 AND run_id = $4",
                )
                .bind(if error.is_some() { "failed" } else { "applied" })
                .bind(error)
                .bind(job)
                .bind(run_id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn finish_job_if_done(&self, job: &str, now_ms: i64) -> anyhow::Result<bool> {
                let done = sqlx::query(
                    "UPDATE batch_jobs SET done = 1, finished_at_ms = $1 WHERE id = $2 AND done = 0 \
                     AND NOT EXISTS (SELECT 1 FROM batch_job_runs WHERE job_id = $2 \
                                     AND state IN ('pending', 'applying'))",
                )
                .bind(now_ms)
                .bind(job)
                .execute(&self.pool)
                .await?;
                if done.rows_affected() == 1 {
                    return Ok(true);
                }
                let (done,): (i64,) = sqlx::query_as("SELECT done FROM batch_jobs WHERE id = $1")
                    .bind(job)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(done != 0)
            }
        }
    };
}
pub(super) use impl_batch_jobs;
