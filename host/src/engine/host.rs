//! What the engine needs from whoever hosts its runs — the runtime in a
//! server, a stand-in for offline checks — as one narrow trait, and the
//! types the two exchange. The engine imports nothing above it.

use super::Engine;
use super::limits::RunLimits;
use crate::journal::{ActivityOptions, ErrorInfo, Failure, StartSpec};
use crate::store::{ComponentVersion, RunRecord, UpdateKey};
use crate::writes::Sink;
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// How a run's waits are timed.
#[derive(Debug, Clone, Copy)]
pub struct Waits {
    /// Waits at most this long keep a run in memory; longer ones evict it.
    pub resident_timer_ms: u64,
    /// An idle run a notice may wake lingers this long (at most
    /// `resident_timer_ms`) before it is evicted.
    pub idle_linger_ms: u64,
    /// After its deadline a run may clean up this long before it is ended.
    pub deadline_grace_ms: u64,
    /// Send what a run recorded (timers started, clock reads) to the store
    /// before it parks in memory, so its journal reads complete while it
    /// waits (a test harness looks); otherwise it rides with the next
    /// commit.
    pub send_when_parked: bool,
}

/// One scheduled activity, as the workflow asked for it.
#[derive(Debug, Clone)]
pub struct ActivityJob {
    pub run_id: String,
    /// The run's namespace: activities resolve by name within it.
    pub namespace: String,
    pub workflow_id: String,
    pub handle: u32,
    pub name: String,
    pub input: String,
    pub options: ActivityOptions,
    pub idempotency_key: String,
    pub scheduled_at_ms: i64,
    /// Attempts that failed before a restart.
    pub prior_attempts: u32,
    /// The last heartbeat details recorded before a restart.
    pub heartbeat_details: Option<Value>,
    /// Set when the workflow cancels it.
    pub cancel: Arc<super::cancellation::Cancellation>,
    pub next_attempt_at_ms: Option<i64>,
    /// What its span is a child of: the host call that scheduled it when
    /// traced, else the run's execution.
    pub scheduled_in: tracing::Span,
}

impl ActivityJob {
    /// Cancelled in a mode that answers its await at once (try-cancel,
    /// abandon): whatever the activity still does is not its outcome.
    pub fn answered_cancelled(&self) -> bool {
        self.cancel.requested_now()
            && self.options.cancellation
                != crate::journal::CancellationMode::WaitCancellationCompleted
    }
}

/// An update a workflow sends another (`update-workflow`), as it asked.
#[derive(Debug, Clone)]
pub struct UpdateAsk {
    pub name: String,
    pub input: Value,
    pub start: Option<StartSpec>,
}

/// How an activity ended, after its retries.
#[derive(Debug)]
pub struct ActivityOutcome {
    pub attempts: u32,
    pub result: Result<Value, Failure>,
}

#[async_trait]
pub trait Host: Send + Sync + 'static {
    fn engine(&self) -> &Arc<Engine>;
    fn waits(&self) -> Waits;
    /// Where `run_id`'s journal is appended, its next event numbered
    /// `next_seq`.
    fn sink(&self, run_id: &str, next_seq: u64) -> Sink;
    /// A component's newest version (children, signal-with-start,
    /// continue-as-new start on it).
    async fn latest_version(
        &self,
        namespace: &str,
        name: &str,
    ) -> anyhow::Result<Option<ComponentVersion>>;
    /// A run as stored (a child's status, say).
    async fn run(&self, run_id: &str) -> anyhow::Result<Option<RunRecord>>;
    /// The open run holding a workflow id (a signal's target, a child's id).
    async fn open_run(
        &self,
        namespace: &str,
        workflow_id: &str,
    ) -> anyhow::Result<Option<RunRecord>>;
    /// Refuse a requested update (its row only: nothing is journaled).
    async fn reject_update(self: Arc<Self>, key: &UpdateKey, error: &Value) -> anyhow::Result<()>;
    /// Ask the open run of `key.workflow_id` for the update `ask` on
    /// behalf of run `caller`, which is woken once it is answered; a known
    /// update id is left as it is. The inner error says why no run can
    /// take it.
    async fn ask_update(
        self: Arc<Self>,
        key: &UpdateKey,
        ask: &UpdateAsk,
        caller: &str,
    ) -> anyhow::Result<Result<(), ErrorInfo>>;
    /// The answer to an update, once it has one.
    async fn update_answer(
        self: Arc<Self>,
        key: &UpdateKey,
    ) -> anyhow::Result<Option<Result<Value, ErrorInfo>>>;
    /// What a run of `namespace` may use.
    async fn run_limits(&self, _namespace: &str) -> RunLimits {
        RunLimits::default()
    }
    /// Whether `namespace` may open one more run (a child): why not, if
    /// not.
    async fn admit_child(&self, _namespace: &str) -> anyhow::Result<Result<(), String>> {
        Ok(Ok(()))
    }
    /// Resolves when another execution waits for the slot an idle run
    /// holds while it lingers (never, where slots are not counted).
    async fn run_slot_wanted(&self) {
        std::future::pending::<()>().await
    }
    /// Execute an activity with its retries; failed attempts go to `sink`.
    fn spawn_activity(self: Arc<Self>, job: ActivityJob, sink: Sink)
    -> JoinHandle<ActivityOutcome>;
}
