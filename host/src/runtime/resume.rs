//! Where a run is resumed: read what its execution needs from the store
//! (the run, its journal, its pending signals, its component), then hand
//! it to the engine. The runtime is the engine's [`Host`].

use super::Runtime;
use crate::engine::runner::{self, Ending, stuck};
use crate::engine::{
    ActivityJob, ActivityOutcome, Engine, Host, Notice, RunLimits, UpdateAsk, Waits,
};
use crate::journal::ErrorInfo;
use crate::journal::{Event, Recorded};
use crate::store::{ComponentVersion, RunRecord, RunStatus, UpdateKey};
use crate::writes::Sink;
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

/// Execute (or resume) `run_id`: `preloaded` when it was just created.
pub(super) async fn resume(
    rt: Arc<Runtime>,
    run_id: String,
    preloaded: Option<(RunRecord, Vec<Recorded>)>,
    inbox: mpsc::UnboundedReceiver<Notice>,
) -> Ending {
    let retry = |e: anyhow::Error| Ending::Retry(format!("{e:#}"));
    // An execution holds a slot, shared fairly among namespaces, until it
    // ends.
    let _slot;
    let (run, journal, signals) = match preloaded {
        Some((run, journal)) => {
            _slot = rt.run_slots.acquire(&run.namespace).await;
            (run, journal, Vec::new())
        }
        None => {
            let run = match rt.store.get_run(&run_id).await {
                // Paused: nothing to do until unpaused, which wakes it.
                Ok(Some(run)) if run.paused => {
                    return Ending::Suspended {
                        wake_at_ms: None,
                        notices_seen: u64::MAX,
                    };
                }
                Ok(Some(run)) if run.status == RunStatus::Running => run,
                Ok(_) => return Ending::Ended { parent: None },
                Err(e) => return retry(e),
            };
            _slot = rt.run_slots.acquire(&run.namespace).await;
            let signals = match rt.store.pending_signals(&run_id).await {
                Ok(signals) => signals,
                Err(e) => return retry(e),
            };
            match rt.store.journal(&run_id).await {
                Ok(journal) => (run, journal, signals),
                Err(e) => {
                    let sink = rt.sink(&run_id, u64::MAX);
                    return stuck(&sink, format!("the journal cannot be read: {e:#}")).await;
                }
            }
        }
    };
    let component = match rt.workflow_component(&run.digest).await {
        Ok(component) => component,
        Err(e) => {
            let next_seq = journal.last().map_or(0, |r| r.seq + 1);
            let sink = rt.sink(&run_id, next_seq);
            let message = format!("component {} cannot be loaded: {e:#}", run.digest);
            return stuck(&sink, message).await;
        }
    };
    let updates = match rt
        .store
        .updates()
        .requested_updates(&run.namespace, &run.workflow_id)
        .await
    {
        Ok(updates) => updates,
        Err(e) => return retry(e),
    };
    let namespace = run.namespace.clone();
    // Every line logged while the run executes names it and its namespace.
    let span = tracing::info_span!("run", run_id = %run.run_id, namespace = %namespace);
    if let Some(Recorded {
        event: Event::Started {
            traceparent: Some(parent),
            ..
        },
        ..
    }) = journal.first()
    {
        crate::telemetry::continue_trace(&span, parent);
    }
    let started = std::time::Instant::now();
    let ending = runner::execute(rt, run, journal, (signals, updates), component, inbox)
        .instrument(span)
        .await;
    let m = crate::metrics::metrics();
    let kind = match &ending {
        Ending::Suspended { .. } => {
            m.evictions.with_label_values(&[namespace.as_str()]).inc();
            "suspended"
        }
        Ending::Ended { .. } => "ended",
        Ending::Continued { .. } => "continued",
        Ending::Retry(_) => "retry",
    };
    crate::metrics::observe(&m.executions, &[&namespace, kind], started.elapsed());
    ending
}

#[async_trait]
impl Host for Runtime {
    fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    fn waits(&self) -> Waits {
        Waits {
            resident_timer_ms: self.config.resident_timer_ms,
            idle_linger_ms: self.config.idle_linger_ms,
            deadline_grace_ms: self.config.deadline_grace_ms,
            send_when_parked: self.config.send_when_parked,
        }
    }

    fn sink(&self, run_id: &str, next_seq: u64) -> Sink {
        Sink::new(run_id, next_seq, self.writer.clone()).leased(self.membership.lease_of(run_id))
    }

    async fn latest_version(
        &self,
        namespace: &str,
        name: &str,
    ) -> anyhow::Result<Option<ComponentVersion>> {
        self.store.latest_version(namespace, name).await
    }

    async fn run_slot_wanted(&self) {
        self.run_slots.until_wanted().await
    }

    async fn run_limits(&self, namespace: &str) -> RunLimits {
        let limits = self.limits(namespace).await.unwrap_or_default();
        RunLimits {
            max_journal_events: limits.max_journal_events,
            max_payload_bytes: limits.max_payload_bytes,
            memory: limits.max_memory_bytes(),
            spin: limits.spin_limit_ms.map(Duration::from_millis),
        }
    }

    async fn admit_child(&self, namespace: &str) -> anyhow::Result<Result<(), String>> {
        let limits = self.limits(namespace).await?;
        match self.open_runs_left(&limits, namespace).await {
            Ok(()) => Ok(Ok(())),
            Err(crate::error::Error::QuotaExceeded(message)) => Ok(Err(message)),
            Err(e) => Err(e.into()),
        }
    }

    async fn run(&self, run_id: &str) -> anyhow::Result<Option<RunRecord>> {
        self.store.get_run(run_id).await
    }

    async fn reject_update(self: Arc<Self>, key: &UpdateKey, error: &Value) -> anyhow::Result<()> {
        self.store.updates().reject_update(key, error).await?;
        self.update_decided(key, true);
        Ok(())
    }

    async fn ask_update(
        self: Arc<Self>,
        key: &UpdateKey,
        ask: &UpdateAsk,
        caller: &str,
    ) -> anyhow::Result<Result<(), ErrorInfo>> {
        Runtime::ask_update(&self, key, ask, caller).await
    }

    async fn update_answer(
        self: Arc<Self>,
        key: &UpdateKey,
    ) -> anyhow::Result<Option<Result<Value, ErrorInfo>>> {
        Ok(Runtime::update_answer(&self, key).await?)
    }

    async fn open_run(
        &self,
        namespace: &str,
        workflow_id: &str,
    ) -> anyhow::Result<Option<RunRecord>> {
        self.store.open_run(namespace, workflow_id).await
    }

    fn spawn_activity(
        self: Arc<Self>,
        job: ActivityJob,
        sink: Sink,
    ) -> JoinHandle<ActivityOutcome> {
        let span = tracing::info_span!(
            parent: &job.scheduled_in,
            "activity",
            run_id = %job.run_id,
            namespace = %job.namespace,
            activity = %job.name,
        );
        // Busy from now, not from its first poll: a harness reading what is
        // under way must not see a gap.
        let busy = super::native::Busy::new(&self.tasks);
        tokio::spawn(super::activities::run_activity(self, job, sink, busy).instrument(span))
    }
}
