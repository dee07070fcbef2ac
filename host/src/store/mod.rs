//! Storage behind one narrow trait; one implementation per backend.
//!
//! The trait offers storage primitives only: reads, and a transaction
//! ([`Tx`]) of inserts and updates. The group-commit writer (`writes`)
//! applies the rules of every write through it, with everything queued at
//! that moment in one transaction, so many runs share one fsync.

mod access;
pub(crate) mod batch_jobs;
mod components;
mod coordination;
mod postgres;
mod rows;
mod schedules;
pub(crate) mod search;
mod sqlite;
#[cfg(test)]
pub(crate) mod test_database;
mod updates;

pub use access::{Access, AuditEntry, DeleteNamespace, Limits, Namespace, Role, TokenRecord};
pub use batch_jobs::{BatchJob, BatchJobs};
pub use components::Components;
pub use coordination::{Coordination, Lease, NodeInfo, SHARDS, shard_of};
pub use postgres::PostgresStore;
pub use schedules::{Overlap, Schedule, ScheduleAction, ScheduleSpec, ScheduleState, Schedules};
pub use sqlite::{Durability, SqliteStore};
pub use updates::{UpdateKey, UpdateRecord, UpdateState, Updates};

use crate::clock::now_ms;
use crate::journal::{Event, ParentClose, Recorded};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

/// Whether `e` says the database cannot be reached now (down, restarting,
/// the network cut, no connection free in time) rather than that a
/// request was wrong: the caller may retry, and nothing was lost.
pub fn unavailable(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|cause| match cause.downcast_ref::<sqlx::Error>() {
            Some(
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed,
            ) => true,
            // Connection exceptions (08…) and operator intervention (57P…:
            // shutting down, cannot connect now).
            Some(sqlx::Error::Database(d)) => d
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
            _ => false,
        })
}

/// The namespace of whatever does not name one.
pub const DEFAULT_NAMESPACE: &str = "default";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComponentKind {
    Workflow,
    Activity,
}

impl ComponentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::Workflow => "workflow",
            ComponentKind::Activity => "activity",
        }
    }
}

impl FromStr for ComponentKind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "workflow" => Ok(ComponentKind::Workflow),
            "activity" => Ok(ComponentKind::Activity),
            other => anyhow::bail!("unknown component kind `{other}`"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentVersion {
    pub namespace: String,
    pub name: String,
    pub kind: ComponentKind,
    pub version: u32,
    pub digest: String,
    pub size: u64,
    pub created_at_ms: i64,
    /// Hosts this (activity) version may reach over `wasi:http`.
    pub allow_http: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Running,
    Completed,
    Failed,
    Cancelled,
    TimedOut,
    /// Ended at once by an operator (or a start that replaced it), without
    /// running its cleanup.
    Terminated,
    Stuck,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::TimedOut => "timed-out",
            RunStatus::Terminated => "terminated",
            RunStatus::Stuck => "stuck",
        }
    }

    /// Open runs hold their workflow id; `stuck` is open (an upgrade can
    /// continue it), the others are final.
    pub fn is_open(self) -> bool {
        matches!(self, RunStatus::Running | RunStatus::Stuck)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "running" => RunStatus::Running,
            "completed" => RunStatus::Completed,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            "timed-out" => RunStatus::TimedOut,
            "terminated" => RunStatus::Terminated,
            "stuck" => RunStatus::Stuck,
            other => anyhow::bail!(
                "unknown status `{other}` (expected running, completed, failed, cancelled, timed-out, terminated or stuck)"
            ),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunRecord {
    pub run_id: String,
    pub namespace: String,
    pub workflow_id: String,
    pub workflow: String,
    pub version: u32,
    pub digest: String,
    pub input: Value,
    pub status: RunStatus,
    pub output: Option<Value>,
    pub error: Option<Value>,
    /// The latest status the workflow published with `set-status`.
    pub custom_status: Option<Value>,
    pub parent_run_id: Option<String>,
    pub cancel_requested: bool,
    pub deadline_at_ms: Option<i64>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    pub wake_at_ms: Option<i64>,
    /// Out of memory, waiting for `wake_at_ms` or an event.
    #[serde(rename = "evicted")]
    pub idle: bool,
    /// Paused by an operator: it takes no step until unpaused.
    pub paused: bool,
}

#[derive(Debug, Clone)]
pub struct NewRun {
    pub run_id: String,
    pub namespace: String,
    pub workflow_id: String,
    pub workflow: String,
    pub version: u32,
    pub digest: String,
    pub input: Value,
    pub at_ms: i64,
    /// The parent run and what happens to this one when it ends first.
    pub parent: Option<(String, ParentClose)>,
    pub deadline_at_ms: Option<i64>,
    /// The trace its spans continue (see [`crate::telemetry`]).
    pub traceparent: Option<String>,
}

impl NewRun {
    /// A run of `version`, starting now, with a fresh run id; without a
    /// `workflow_id`, the run id is its workflow id too. It continues the
    /// trace of the span it is made in (a start request's, a parent run's).
    pub fn of(
        version: &ComponentVersion,
        namespace: &str,
        workflow_id: Option<String>,
        input: Value,
    ) -> Self {
        let run_id = uuid::Uuid::now_v7().to_string();
        NewRun {
            workflow_id: workflow_id.unwrap_or_else(|| run_id.clone()),
            run_id,
            namespace: namespace.to_string(),
            workflow: version.name.clone(),
            version: version.version,
            digest: version.digest.clone(),
            input,
            at_ms: now_ms(),
            parent: None,
            deadline_at_ms: None,
            traceparent: crate::telemetry::current_traceparent(),
        }
    }

    pub fn record(&self) -> RunRecord {
        RunRecord {
            run_id: self.run_id.clone(),
            namespace: self.namespace.clone(),
            workflow_id: self.workflow_id.clone(),
            workflow: self.workflow.clone(),
            version: self.version,
            digest: self.digest.clone(),
            input: self.input.clone(),
            status: RunStatus::Running,
            output: None,
            error: None,
            custom_status: None,
            parent_run_id: self.parent.as_ref().map(|(p, _)| p.clone()),
            cancel_requested: false,
            deadline_at_ms: self.deadline_at_ms,
            created_at_ms: self.at_ms,
            updated_at_ms: self.at_ms,
            ended_at_ms: None,
            wake_at_ms: None,
            idle: false,
            paused: false,
        }
    }

    /// Event 0 of the run's journal.
    pub fn started(&self) -> Recorded {
        Recorded {
            seq: 0,
            at_ms: self.at_ms,
            event: Event::Started {
                workflow: self.workflow.clone(),
                version: self.version,
                digest: self.digest.clone(),
                workflow_id: self.workflow_id.clone(),
                input: self.input.clone(),
                traceparent: self.traceparent.clone(),
            },
        }
    }
}

/// A signal delivered to a run, not necessarily consumed yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// Arrival order.
    pub id: i64,
    pub run_id: String,
    pub name: String,
    pub payload: Value,
    pub at_ms: i64,
}

/// A change to a run's row: fields left `None` stay as they are.
#[derive(Debug, Clone, Default)]
pub struct RunChange {
    pub status: Option<RunStatus>,
    pub output: Option<Option<Value>>,
    pub error: Option<Option<Value>>,
    pub custom_status: Option<Value>,
    pub ended_at_ms: Option<Option<i64>>,
    pub wake_at_ms: Option<Option<i64>>,
    pub idle: Option<bool>,
    pub cancel_requested: Option<bool>,
    /// Pinned to another component: (digest, version).
    pub pin: Option<(String, u32)>,
    pub updated_at_ms: Option<i64>,
    pub paused: Option<bool>,
}

/// A journal event as stored: prepared above the store (which computes no
/// digests and serializes no events), read back as a [`Recorded`].
#[derive(Debug, Clone)]
pub struct EventRow {
    pub seq: u64,
    pub at_ms: i64,
    pub kind: &'static str,
    /// The call's digest, for events that answer a call.
    pub digest: Option<String>,
    /// The event as JSON.
    pub body: String,
}

/// One transaction of storage primitives. It knows no rules: what a write
/// means (signal-with-start, continue-as-new, cancelling a stuck run) is
/// decided above it, once for every backend.
#[async_trait]
pub trait Tx: Send {
    async fn run(&mut self, run_id: &str) -> anyhow::Result<Option<RunRecord>>;
    /// The open (`running` or `stuck`) run holding a workflow id.
    async fn open_run(
        &mut self,
        namespace: &str,
        workflow_id: &str,
    ) -> anyhow::Result<Option<RunRecord>>;
    /// The newest run that had a workflow id, open or closed.
    async fn last_run(
        &mut self,
        namespace: &str,
        workflow_id: &str,
    ) -> anyhow::Result<Option<RunRecord>>;
    /// Insert a run's row (status `running`); its events are appended apart.
    async fn insert_run(&mut self, run: &NewRun) -> anyhow::Result<()>;
    /// Append journal rows. A row whose (run, seq) is taken fails the
    /// transaction (here or at commit) with an error saying so: that is
    /// what fences a second writer.
    async fn append(&mut self, run_id: &str, rows: &[EventRow]) -> anyhow::Result<()>;
    /// Change a run's row; with `only_open`, only if it is `running` or
    /// `stuck`. Answers whether a row changed.
    async fn update_run(
        &mut self,
        run_id: &str,
        change: &RunChange,
        only_open: bool,
    ) -> anyhow::Result<bool>;
    /// Queue a signal for a run; answers its id (arrival order).
    async fn insert_signal(
        &mut self,
        run_id: &str,
        name: &str,
        payload: &Value,
        request_id: Option<&str>,
        at_ms: i64,
    ) -> anyhow::Result<i64>;
    /// The signal a client's request id delivered, if it was seen before.
    async fn signal_by_request(&mut self, request_id: &str) -> anyhow::Result<Option<Signal>>;
    /// Mark a pending signal of `run_id` consumed by event `seq`; answers
    /// false if it was not pending.
    async fn consume_signal(
        &mut self,
        run_id: &str,
        signal_id: i64,
        seq: u64,
    ) -> anyhow::Result<bool>;
    /// Give the unconsumed signals of `from` to `to`.
    async fn move_pending_signals(&mut self, from: &str, to: &str) -> anyhow::Result<()>;
    /// Set a run's search attributes (a `null` value removes one).
    async fn set_attributes(
        &mut self,
        run_id: &str,
        attributes: &serde_json::Map<String, Value>,
    ) -> anyhow::Result<()>;
    /// Move an update from state `from` to `to`, taken by `run_id`, with
    /// its answer if it has one; false if it was not in `from`.
    async fn decide_update(
        &mut self,
        key: &UpdateKey,
        from: UpdateState,
        to: UpdateState,
        run_id: &str,
        outcome: Option<&Value>,
    ) -> anyhow::Result<bool>;
    /// Fail the transaction unless `lease` is still the current epoch of
    /// its shard, and keep it so until commit: a node that lost a shard
    /// cannot append to its runs. A store with one node always passes.
    async fn fence(&mut self, lease: Lease) -> anyhow::Result<()>;
    async fn commit(self: Box<Self>) -> anyhow::Result<()>;
}

#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    pub workflow: Option<String>,
    pub workflow_id: Option<String>,
    pub namespace: Option<String>,
    /// A list query over the run's fields and search attributes.
    pub query: Option<crate::query::Expr>,
    pub limit: u32,
}

#[derive(Debug, PartialEq)]
pub enum DeleteVersion {
    Deleted,
    NotFound,
    /// Open runs are pinned to it.
    InUse(u64),
}

#[derive(Debug)]
pub enum PutComponent {
    /// A new version was recorded.
    Created(ComponentVersion),
    /// These exact bytes are already this version of the name.
    Existing(ComponentVersion),
    /// The name exists with the other kind.
    KindConflict { existing: ComponentKind },
}

#[async_trait]
pub trait Store: Components + Send + Sync + 'static {
    /// A write transaction (one at a time: the group-commit writer is the
    /// only caller while runs execute).
    async fn begin(&self) -> anyhow::Result<Box<dyn Tx>>;

    async fn get_run(&self, run_id: &str) -> anyhow::Result<Option<RunRecord>>;
    /// What a start reads before its run is written: its namespace and, if
    /// that exists, version `version` of component `name` there (`None`:
    /// the newest).
    async fn start_lookup(
        &self,
        namespace: &str,
        name: &str,
        version: Option<u32>,
    ) -> anyhow::Result<(Option<Namespace>, Option<ComponentVersion>)> {
        let Some(found) = self.access().namespace(namespace).await? else {
            return Ok((None, None));
        };
        let chosen = match version {
            None => self.latest_version(namespace, name).await?,
            Some(n) => self.component_version(namespace, name, n).await?,
        };
        Ok((Some(found), chosen))
    }
    async fn list_runs(&self, filter: &RunFilter) -> anyhow::Result<Vec<RunRecord>>;
    /// A run's search attributes, as the workflow last set them.
    async fn run_attributes(&self, run_id: &str) -> anyhow::Result<serde_json::Map<String, Value>>;
    async fn journal(&self, run_id: &str) -> anyhow::Result<Vec<Recorded>>;
    /// Runs that must resume at start-up, with their wake-up time: those in
    /// `running` (not `stuck`) unless evicted idle with nothing new for them;
    /// with `shards`, only the runs of those shards.
    async fn runnable_runs(
        &self,
        shards: Option<&[u32]>,
    ) -> anyhow::Result<Vec<(String, Option<i64>)>>;
    /// Signals delivered to a run and not consumed yet, oldest first.
    async fn pending_signals(&self, run_id: &str) -> anyhow::Result<Vec<Signal>>;
    /// The open run holding a workflow id.
    async fn open_run(
        &self,
        namespace: &str,
        workflow_id: &str,
    ) -> anyhow::Result<Option<RunRecord>>;
    /// Open children of a run, with their parent-close policy.
    async fn open_children(&self, run_id: &str) -> anyhow::Result<Vec<(String, ParentClose)>>;
    /// Namespaces and tokens.
    fn access(&self) -> &dyn Access;
    fn schedules(&self) -> &dyn Schedules;
    fn updates(&self) -> &dyn Updates;
    fn batch_jobs(&self) -> &dyn BatchJobs;
    /// Coordination of several nodes, for a store they can share.
    fn coordination(&self) -> Option<&dyn Coordination> {
        None
    }
    /// Whether its statements run on threads of its own (SQLite's), so a
    /// writer polled off the server's runtime answers each at once; a
    /// store whose statements are sockets the runtime drives (Postgres)
    /// would make such a writer wait for the runtime instead.
    fn runs_off_the_runtime(&self) -> bool {
        false
    }
}
