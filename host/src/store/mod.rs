//! Storage behind one narrow trait; one implementation per backend.
//!
//! Writes that the engine makes while runs execute (creating runs, appending
//! journal events, changing a run's status) go through [`Store::write_batch`],
//! which the group-commit writer calls with everything queued at that moment,
//! so many runs share one transaction and one fsync.

mod sqlite;
pub mod writer;

pub use sqlite::{Durability, SqliteStore};

use crate::journal::{Event, ParentClose, Recorded};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

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
    pub name: String,
    pub kind: ComponentKind,
    pub version: u32,
    pub digest: String,
    pub size: u64,
    pub created_at_ms: i64,
    /// Hosts this (activity) version may reach over `wasi:http`.
    pub allow_http: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Running,
    Completed,
    Failed,
    Cancelled,
    TimedOut,
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
            "stuck" => RunStatus::Stuck,
            other => anyhow::bail!(
                "unknown status `{other}` (expected running, completed, failed, cancelled, timed-out or stuck)"
            ),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
}

impl NewRun {
    /// A run of `version`, starting now, with a fresh run id; without a
    /// `workflow_id`, the run id is its workflow id too.
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

/// Side effects a run's journal append carries, in the same transaction.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Start a child run.
    CreateRun(NewRun),
    /// Deliver a signal to an open run.
    Signal {
        run_id: String,
        name: String,
        payload: Value,
    },
    /// Deliver a signal to the open run with the workflow id of `start`,
    /// creating `start` first if there is none.
    SignalWithStart {
        start: NewRun,
        name: String,
        payload: Value,
    },
    /// The journal event `seq` consumed this signal.
    Consume { signal_id: i64, seq: u64 },
    /// Publish the workflow's status.
    SetStatus(Value),
}

/// A change to a run's row, written atomically with the events beside it.
#[derive(Debug, Clone)]
pub enum RunUpdate {
    /// Evicted until `wake_at_ms`, or (`None`) until an event wakes it.
    Suspended { wake_at_ms: Option<i64> },
    /// Ended, or `stuck` with a diagnostic in `error`.
    Ended {
        status: RunStatus,
        output: Option<Value>,
        error: Option<Value>,
    },
    /// Completed by continuing as `next` (same workflow id); unconsumed
    /// signals move to it.
    ContinuedAsNew { next: NewRun },
    /// Pinned to another version (its journal replayed on it); a `stuck`
    /// run is `running` again.
    Repin { digest: String, version: u32 },
    /// An evicted run executes again (sent with its first append).
    Awake,
}

#[derive(Debug, Clone)]
pub enum SignalTarget {
    Run(String),
    Workflow {
        namespace: String,
        workflow_id: String,
    },
}

#[derive(Debug, Clone)]
pub enum WriteOp {
    CreateRun(NewRun),
    Append {
        run_id: String,
        events: Vec<Recorded>,
        effects: Vec<Effect>,
        update: Option<RunUpdate>,
    },
    /// A signal from outside (the API); with `start`, signal-with-start.
    Signal {
        target: SignalTarget,
        name: String,
        payload: Value,
        start: Option<NewRun>,
        /// The client's id for this request: a repeat is not a new signal.
        request_id: Option<String>,
    },
    RequestCancel {
        run_id: String,
    },
}

/// Runs an append's effects reached: created ones to start, signalled ones
/// to tell.
#[derive(Debug, Clone, PartialEq)]
pub enum Touched {
    Created(String),
    Signalled(Signal),
}

#[derive(Debug, Clone)]
pub enum WriteOutcome {
    Appended(Vec<Touched>),
    /// The run was created; its `started` event is seq 0.
    Created(RunRecord),
    /// An open run already holds the workflow id: that one is answered.
    Existing(RunRecord),
    Signalled {
        signal: Signal,
        /// Signal-with-start created the run.
        created: bool,
        /// The request id was seen before: this is the signal it delivered.
        duplicate: bool,
    },
    /// Cancellation was recorded (or already was) on this open run.
    CancelRequested(RunRecord),
    /// The target does not exist or is not open.
    Refused(Refusal),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    NotFound(String),
    NotOpen(String),
}

#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    pub workflow: Option<String>,
    pub workflow_id: Option<String>,
    pub namespace: Option<String>,
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
pub trait Store: Send + Sync + 'static {
    /// Apply `ops` in one transaction when they all succeed; when one fails
    /// (a fenced append), each op is retried on its own so only it fails.
    async fn write_batch(&self, ops: &[WriteOp]) -> Vec<anyhow::Result<WriteOutcome>>;

    async fn put_component(
        &self,
        name: &str,
        kind: ComponentKind,
        digest: &str,
        bytes: &[u8],
        allow_http: Option<&[String]>,
        at_ms: i64,
    ) -> anyhow::Result<PutComponent>;
    async fn component_bytes(&self, digest: &str) -> anyhow::Result<Option<Vec<u8>>>;
    /// All versions of all names (or of one), oldest first.
    async fn component_versions(&self, name: Option<&str>)
    -> anyhow::Result<Vec<ComponentVersion>>;
    async fn latest_version(&self, name: &str) -> anyhow::Result<Option<ComponentVersion>>;

    async fn get_run(&self, run_id: &str) -> anyhow::Result<Option<RunRecord>>;
    async fn list_runs(&self, filter: &RunFilter) -> anyhow::Result<Vec<RunRecord>>;
    async fn journal(&self, run_id: &str) -> anyhow::Result<Vec<Recorded>>;
    /// Runs that must resume at start-up, with their wake-up time: those in
    /// `running` (not `stuck`) unless evicted idle with nothing new for them.
    async fn runnable_runs(&self) -> anyhow::Result<Vec<(String, Option<i64>)>>;
    /// How many runs have each status.
    async fn status_counts(&self) -> anyhow::Result<Vec<(RunStatus, u64)>>;
    /// Signals delivered to a run and not consumed yet, oldest first.
    async fn pending_signals(&self, run_id: &str) -> anyhow::Result<Vec<Signal>>;
    /// The open run holding a workflow id.
    async fn open_run(
        &self,
        namespace: &str,
        workflow_id: &str,
    ) -> anyhow::Result<Option<RunRecord>>;
    /// Open runs (`running` or `stuck`) of a workflow, oldest first.
    async fn open_runs_of(&self, workflow: &str) -> anyhow::Result<Vec<RunRecord>>;
    /// Delete a version no open run is pinned to.
    async fn delete_version(&self, name: &str, version: u32) -> anyhow::Result<DeleteVersion>;
    /// Open children of a run, with their parent-close policy.
    async fn open_children(&self, run_id: &str) -> anyhow::Result<Vec<(String, ParentClose)>>;
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
