//! Batch actions — what a batch does to each run it matched, through the
//! same path as the run's own request — and batch jobs: a batch written
//! down (its runs listed when it was asked) and worked through in the
//! background, each run claimed before it is acted on, so a job survives a
//! restart and any node may carry it on. A signal carries the job and the
//! run as its idempotency key: acted on twice, it is delivered once.

use super::{Route, Runtime, SignalRequest, Target};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::store::{BatchJob, RunFilter, RunStatus};
use crate::writes::SignalTarget;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// What a batch does to each run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum BatchAction {
    Cancel,
    Terminate {
        reason: Option<String>,
    },
    Signal {
        name: String,
        payload: Value,
    },
    Pause {
        reason: Option<String>,
    },
    Unpause {
        reason: Option<String>,
    },
    /// Move each run to a version, if its journal replays on it.
    Upgrade {
        to: Option<u32>,
    },
}

impl BatchAction {
    pub fn name(&self) -> &'static str {
        match self {
            BatchAction::Cancel => "cancel",
            BatchAction::Terminate { .. } => "terminate",
            BatchAction::Signal { .. } => "signal",
            BatchAction::Pause { .. } => "pause",
            BatchAction::Unpause { .. } => "unpause",
            BatchAction::Upgrade { .. } => "upgrade",
        }
    }
}

/// Runs a job claims at once.
const CLAIM: u32 = 50;
/// A claimed run not finished within this long (its node died) is claimed
/// again.
const STALE_MS: i64 = 10_000;
/// How often the job loop looks for unfinished jobs.
const LOOK: Duration = Duration::from_millis(500);

impl Runtime {
    /// Do `action` to one run of `namespace`; `request_id` makes a signal
    /// idempotent.
    pub async fn apply_batch_action(
        self: &Arc<Self>,
        namespace: &str,
        action: &BatchAction,
        run_id: &str,
        request_id: Option<String>,
    ) -> Result<()> {
        match action {
            BatchAction::Cancel => {
                let outcome = self.cancel(run_id).await.map(drop);
                self.already(outcome, run_id, RunStatus::Cancelled).await
            }
            BatchAction::Terminate { reason } => {
                let reason = reason.as_deref().unwrap_or("terminated by a batch");
                let outcome = (self.terminate_run(run_id, reason, Route::ToDriver).await).map(drop);
                self.already(outcome, run_id, RunStatus::Terminated).await
            }
            BatchAction::Pause { reason } | BatchAction::Unpause { reason } => {
                let paused = matches!(action, BatchAction::Pause { .. });
                let verb = if paused { "paused" } else { "unpaused" };
                let reason = reason
                    .clone()
                    .unwrap_or_else(|| format!("{verb} by a batch"));
                self.pause_run(run_id, paused, &reason, Route::ToDriver)
                    .await
                    .map(drop)
            }
            BatchAction::Upgrade { to } => {
                let target = to.map_or(Target::Latest, Target::Version);
                let report = self
                    .upgrade_run(run_id, target, false, Route::ToDriver)
                    .await?;
                if report.upgraded || report.from_version == report.to_version {
                    Ok(())
                } else {
                    Err(Error::Conflict(format!(
                        "cannot move to v{}: {:?}",
                        report.to_version, report.verdict
                    )))
                }
            }
            BatchAction::Signal { name, payload } => {
                let req = SignalRequest {
                    target: SignalTarget::Run(run_id.to_string()),
                    namespace: namespace.to_string(),
                    name: name.clone(),
                    payload: payload.clone(),
                    start: None,
                    request_id,
                };
                self.signal(req).await.map(drop)
            }
        }
    }

    /// A cancel or terminate refused because the run already ended so (a
    /// job acting on a run again after a restart) did what it was to do.
    async fn already(&self, outcome: Result<()>, run_id: &str, status: RunStatus) -> Result<()> {
        match outcome {
            Err(Error::Conflict(message)) => match self.store.get_run(run_id).await? {
                Some(run) if run.status == status => Ok(()),
                _ => Err(Error::Conflict(message)),
            },
            other => other,
        }
    }

    /// Write a batch job down: the runs `filter` matches now (all of them)
    /// are its runs. The job loop works it off.
    pub async fn start_batch_job(
        self: &Arc<Self>,
        namespace: &str,
        action: BatchAction,
        filter: &RunFilter,
    ) -> Result<BatchJob> {
        let runs: Vec<String> = self
            .store
            .list_runs(filter)
            .await?
            .into_iter()
            .map(|r| r.run_id)
            .collect();
        let job = BatchJob {
            id: uuid::Uuid::now_v7().to_string(),
            namespace: namespace.to_string(),
            spec: serde_json::to_value(&action).map_err(anyhow::Error::from)?,
            done: false,
            matched: runs.len() as u64,
            applied: 0,
            failed: 0,
            errors: Vec::new(),
            created_at_ms: now_ms(),
            finished_at_ms: None,
        };
        self.store.batch_jobs().create_job(&job, &runs).await?;
        self.batch_kick.notify_one();
        Ok(job)
    }

    /// Work off one claim of `job`'s runs; false once it has none left.
    async fn work_batch_job(self: &Arc<Self>, job: &BatchJob) -> anyhow::Result<bool> {
        let action: BatchAction = serde_json::from_value(job.spec.clone())?;
        let jobs = self.store.batch_jobs();
        let claimed = jobs
            .claim_runs(&job.id, now_ms(), now_ms() - STALE_MS, CLAIM)
            .await?;
        if claimed.is_empty() {
            return Ok(!jobs.finish_job_if_done(&job.id, now_ms()).await?);
        }
        for run_id in claimed {
            let request_id = Some(format!("batch-{}-{run_id}", job.id));
            let outcome = self
                .apply_batch_action(&job.namespace, &action, &run_id, request_id)
                .await;
            let error = outcome.err().map(|e| e.to_string());
            jobs.finish_run(&job.id, &run_id, error.as_deref()).await?;
        }
        Ok(true)
    }
}

/// Works off unfinished batch jobs, this node's and those a dead node
/// left, until the runtime is gone.
pub(super) async fn job_loop(rt: std::sync::Weak<Runtime>) {
    while let Some(rt) = rt.upgrade() {
        let open = match rt.store.batch_jobs().open_jobs().await {
            Ok(open) => open,
            Err(e) => {
                tracing::warn!("cannot read batch jobs: {e:#}");
                Vec::new()
            }
        };
        for job in open {
            loop {
                match rt.work_batch_job(&job).await {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(e) => {
                        tracing::warn!(job = job.id, "batch job: {e:#}");
                        break;
                    }
                }
            }
        }
        tokio::select! {
            _ = rt.batch_kick.notified() => {}
            _ = tokio::time::sleep(LOOK) => {}
        }
    }
}
