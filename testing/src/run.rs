//! A run of a test environment: its record, journal, result, and what a
//! test can send it.

use crate::{ErrorInfo, Event, Export, Recorded, RunError, RunRecord, RunStatus, TestEnv};
use anyhow::{Context as _, bail};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;
use weft::clock;
use weft::runtime::{SignalRequest, UpdateRequest};
use weft::store::{DEFAULT_NAMESPACE, UpdateKey};
use weft::writes::SignalTarget;

/// A run in a [`TestEnv`].
///
/// ```no_run
/// # async fn example(env: &weft_testing::TestEnv) -> anyhow::Result<()> {
/// use serde_json::json;
/// let run = env.start("rollout", json!({ "rings": 3 })).await?;
/// run.signal("operator", json!({ "action": "resume" })).await?;
/// assert_eq!(run.result().await?, json!("done"));
/// # Ok(()) }
/// ```
pub struct TestRun<'a> {
    pub(crate) env: &'a TestEnv,
    /// Its run id (the same in its journal and its export).
    pub run_id: String,
}

impl TestRun<'_> {
    /// Its row: status, output or error, custom status, wake-up time.
    ///
    /// ```no_run
    /// # async fn example(run: weft_testing::TestRun<'_>) -> anyhow::Result<()> {
    /// let record = run.record().await?;
    /// assert_eq!(record.workflow, "rollout");
    /// assert_eq!(record.version, 1);
    /// # Ok(()) }
    /// ```
    pub async fn record(&self) -> anyhow::Result<RunRecord> {
        self.env
            .rt
            .store
            .get_run(&self.run_id)
            .await?
            .with_context(|| format!("no run {}", self.run_id))
    }

    /// The status the workflow last published (`set-status`), once the
    /// environment has settled.
    ///
    /// ```no_run
    /// # async fn example(run: weft_testing::TestRun<'_>) -> anyhow::Result<()> {
    /// let status = run.status().await?.unwrap_or_default();
    /// assert_eq!(status["state"], "waiting-for-operator");
    /// # Ok(()) }
    /// ```
    pub async fn status(&self) -> anyhow::Result<Option<Value>> {
        self.env.settle().await;
        Ok(self.record().await?.custom_status)
    }

    /// Run it to its end, skipping time whenever it only waits on the
    /// clock; its output, or how it ended otherwise ([`RunError`]).
    ///
    /// ```no_run
    /// # async fn example(env: &weft_testing::TestEnv) -> anyhow::Result<()> {
    /// let run = env.start("provision", serde_json::json!({ "tenant": "acme" })).await?;
    /// let output = run.result().await?;
    /// assert_eq!(output["cert"], "ready");
    /// # Ok(()) }
    /// ```
    pub async fn result(&self) -> anyhow::Result<Value> {
        loop {
            self.env.settle().await;
            let run = self.record().await?;
            if !run.status.is_open() {
                return match run.status {
                    RunStatus::Completed => Ok(run.output.unwrap_or(Value::Null)),
                    status => Err(RunError::Ended {
                        status,
                        error: run.error.unwrap_or(Value::Null),
                    }
                    .into()),
                };
            }
            if run.status == RunStatus::Stuck {
                return Err(RunError::Ended {
                    status: run.status,
                    error: run.error.unwrap_or(Value::Null),
                }
                .into());
            }
            if !self.env.skip_to_next_wait() {
                let run = self.record().await?;
                if run.status.is_open() && run.status != RunStatus::Stuck {
                    return Err(RunError::Waiting {
                        status: run.custom_status,
                    }
                    .into());
                }
            }
        }
    }

    /// Its journal so far, once the environment has settled.
    ///
    /// ```no_run
    /// # async fn example(run: weft_testing::TestRun<'_>) -> anyhow::Result<()> {
    /// use weft_testing::Event;
    /// let scheduled: Vec<String> = run
    ///     .journal()
    ///     .await?
    ///     .into_iter()
    ///     .filter_map(|r| match r.event {
    ///         Event::ActivityScheduled { name, .. } => Some(name),
    ///         _ => None,
    ///     })
    ///     .collect();
    /// assert_eq!(scheduled, ["cloud/drain", "cloud/deploy"]);
    /// # Ok(()) }
    /// ```
    pub async fn journal(&self) -> anyhow::Result<Vec<Recorded>> {
        self.env.settle().await;
        self.env.rt.store.journal(&self.run_id).await
    }

    /// When its timers that have not fired yet are due (ms since the
    /// epoch, soonest first), once the environment has settled; a timer a
    /// select left behind counts until the run ends.
    ///
    /// ```no_run
    /// # async fn example(env: &weft_testing::TestEnv) -> anyhow::Result<()> {
    /// let run = env.start("rollout", serde_json::json!({ "rings": 3 })).await?;
    /// let timers = run.pending_timers().await?;
    /// // The soak after ring 1: a day from now.
    /// assert_eq!(timers, [env.now_ms() + 86_400_000]);
    /// # Ok(()) }
    /// ```
    pub async fn pending_timers(&self) -> anyhow::Result<Vec<i64>> {
        let journal = self.journal().await?;
        if !self.record().await?.status.is_open() {
            return Ok(Vec::new());
        }
        let mut pending = std::collections::BTreeMap::new();
        for recorded in journal {
            match recorded.event {
                Event::TimerStarted {
                    handle, fire_at_ms, ..
                } => {
                    pending.insert(handle, fire_at_ms as i64);
                }
                Event::TimerFired { handle, .. } => {
                    pending.remove(&handle);
                }
                _ => {}
            }
        }
        let mut due: Vec<i64> = pending.into_values().collect();
        due.sort();
        Ok(due)
    }

    /// Its journal as `weft show --json` exports it (for [`TestEnv::replay`]
    /// or a corpus for `weft replay`).
    ///
    /// ```no_run
    /// # async fn example(env: &weft_testing::TestEnv) -> anyhow::Result<()> {
    /// let run = env.start("rollout", serde_json::json!({ "rings": 3 })).await?;
    /// run.result().await?;
    /// let journal = run.export().await?;
    /// std::fs::write("tests/journals/rollout-3.json", serde_json::to_vec_pretty(&journal)?)?;
    /// # Ok(()) }
    /// ```
    pub async fn export(&self) -> anyhow::Result<Export> {
        let events = self.journal().await?;
        let run = self.record().await?;
        Ok(Export::new(
            run.run_id,
            run.workflow,
            run.version,
            run.digest,
            events,
        ))
    }

    /// Send it signal `name`.
    ///
    /// ```no_run
    /// # async fn example(run: weft_testing::TestRun<'_>) -> anyhow::Result<()> {
    /// run.signal("approve", "ada").await?;
    /// # Ok(()) }
    /// ```
    pub async fn signal(&self, name: &str, payload: impl Serialize) -> anyhow::Result<()> {
        self.env
            .rt
            .signal(SignalRequest {
                target: SignalTarget::Run(self.run_id.clone()),
                namespace: DEFAULT_NAMESPACE.to_string(),
                name: name.to_string(),
                payload: serde_json::to_value(payload)?,
                start: None,
                request_id: None,
            })
            .await?;
        Ok(())
    }

    /// Ask it for update `name` and wait for the answer, skipping time
    /// while the run only waits on the clock: the handler's output, or its
    /// error or rejection.
    ///
    /// ```no_run
    /// # async fn example(run: weft_testing::TestRun<'_>) -> anyhow::Result<()> {
    /// let answer = run.update("resize", 8).await?;
    /// assert_eq!(answer, Ok(serde_json::json!("resized")));
    /// let refused = run.update("resize", 1000).await?.unwrap_err();
    /// assert_eq!(refused.kind, "invalid");
    /// # Ok(()) }
    /// ```
    pub async fn update(
        &self,
        name: &str,
        payload: impl Serialize,
    ) -> anyhow::Result<Result<Value, ErrorInfo>> {
        let run = self.record().await?;
        let asked = self
            .env
            .rt
            .update(UpdateRequest {
                namespace: run.namespace.clone(),
                workflow_id: run.workflow_id.clone(),
                name: name.to_string(),
                input: serde_json::to_value(payload)?,
                update_id: None,
                start: None,
                wait: Duration::ZERO,
            })
            .await?;
        let key = UpdateKey {
            namespace: asked.namespace,
            workflow_id: asked.workflow_id,
            update_id: asked.update_id,
        };
        loop {
            self.env.settle().await;
            let update = self.env.rt.await_update(&key, Duration::ZERO).await?;
            if update.state.decided() {
                let outcome = update.outcome.unwrap_or(Value::Null);
                return Ok(match outcome.get("error") {
                    Some(error) => Err(serde_json::from_value(error.clone())?),
                    None => Ok(outcome.get("output").cloned().unwrap_or(Value::Null)),
                });
            }
            match clock::next_wait_end_ms() {
                Some(at) => clock::skip_to(at),
                None => bail!(
                    "update `{name}` is {} and nothing will answer it: the run waits for \
                     something no one sends",
                    update.state.as_str()
                ),
            }
        }
    }

    /// Ask it to cancel (it sees `cancelled` at its next await and may
    /// clean up).
    ///
    /// ```no_run
    /// # async fn example(run: weft_testing::TestRun<'_>) -> anyhow::Result<()> {
    /// use weft_testing::{RunError, RunStatus};
    /// run.cancel().await?;
    /// let ended = run.result().await.unwrap_err();
    /// assert!(matches!(
    ///     ended.downcast_ref::<RunError>(),
    ///     Some(RunError::Ended { status: RunStatus::Cancelled, .. })
    /// ));
    /// # Ok(()) }
    /// ```
    pub async fn cancel(&self) -> anyhow::Result<()> {
        self.env.rt.cancel(&self.run_id).await?;
        Ok(())
    }
}
