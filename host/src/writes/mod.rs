//! Every write a run or a client makes, and the rules of each, written once
//! above the store: creating runs (a workflow id names one open run),
//! appends with their effects (children, signals, signal-with-start,
//! consumed signals, the published status, updates taken) and run updates (suspension,
//! the end, continue-as-new, re-pinning), client signals with idempotency
//! keys, cancellation. The group-commit [`Writer`] applies them through the
//! store's transaction primitives; a run's [`Sink`] feeds it.

#[cfg(test)]
mod contract;
mod rules;
mod sink;
mod writer;

pub use sink::Sink;
pub use writer::{Writer, write_batch};

use crate::journal::Recorded;
use crate::store::{EventRow, Lease, NewRun, RunRecord, RunStatus, Signal, UpdateKey, UpdateState};
use serde_json::Value;

/// An event as the store keeps it: kind, the digest of the call it answers
/// (none for informational events), JSON body.
pub(crate) fn event_row(recorded: &Recorded, digest: Option<String>) -> anyhow::Result<EventRow> {
    Ok(EventRow {
        seq: recorded.seq,
        at_ms: recorded.at_ms,
        kind: recorded.event.kind(),
        digest,
        body: serde_json::to_string(&recorded.event)?,
    })
}

/// Events recorded outside a run's sink (a reset's copy, a run's start)
/// as the store keeps them, each with the digest of the call it answers.
pub(crate) fn event_rows(events: &[Recorded]) -> anyhow::Result<Vec<EventRow>> {
    (events.iter())
        .map(|r| event_row(r, r.event.call().map(|c| c.digest())))
        .collect()
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
    /// Ask another run (a child) to cancel; nothing if it has ended.
    RequestCancel { run_id: String },
    /// The journal event `seq` consumed this signal.
    Consume { signal_id: i64, seq: u64 },
    /// Publish the workflow's status.
    SetStatus(Value),
    /// Set search attributes of the run (`null` removes one).
    SetAttributes(serde_json::Map<String, Value>),
    /// An update this run took: accepted (beside the event that journals
    /// it) or answered (`outcome`).
    DecideUpdate {
        key: UpdateKey,
        from: UpdateState,
        to: UpdateState,
        outcome: Option<Value>,
    },
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
    /// Paused or unpaused by an operator.
    Paused(bool),
}

#[derive(Debug, Clone)]
pub enum SignalTarget {
    Run(String),
    Workflow {
        namespace: String,
        workflow_id: String,
    },
}

/// What a start does when its workflow id is taken (Temporal's conflict
/// and reuse policies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
pub struct IdPolicy {
    #[serde(default)]
    pub conflict: IdConflict,
    #[serde(default)]
    pub reuse: IdReuse,
}

/// When an open run holds the workflow id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum IdConflict {
    /// Answer the open run (the start is idempotent on the workflow id).
    #[default]
    UseExisting,
    /// Refuse the start.
    Fail,
    /// Terminate the open run and start anew (the runtime terminates it
    /// before the start is written).
    TerminateExisting,
}

/// When only closed runs had the workflow id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum IdReuse {
    #[default]
    AllowDuplicate,
    /// Only if the last run with the id did not complete.
    AllowDuplicateFailedOnly,
    RejectDuplicate,
}

#[derive(Debug, Clone)]
pub enum WriteOp {
    CreateRun {
        run: NewRun,
        policy: IdPolicy,
    },
    Append {
        run_id: String,
        /// The lease of the run's shard it was written under, if the store
        /// is shared: a stale lease refuses the append.
        lease: Option<Lease>,
        /// Prepared as they were recorded (serialized, with the digest of
        /// the call each answers), so the writer does no per-event work.
        events: Vec<EventRow>,
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
    /// A run made from an earlier one's journal (a reset): `run` with
    /// `events` after its `started` (numbered from 1), the `signals` to
    /// deliver to it, the unconsumed signals of `from` moved to it (with
    /// `move_pending`), and `from_event` appended to `from`'s journal.
    Reset {
        run: Box<NewRun>,
        events: Vec<Recorded>,
        signals: Vec<(String, Value)>,
        from: String,
        from_event: Recorded,
        move_pending: bool,
    },
}

/// Runs an append's effects reached: created ones to start, signalled ones
/// to tell.
#[derive(Debug, Clone, PartialEq)]
pub enum Touched {
    Created(String),
    Signalled(Signal),
    /// A run was asked to cancel (a stuck one ended at once).
    CancelRequested {
        run_id: String,
        status: RunStatus,
    },
    /// An update was accepted or answered: its caller may be waiting.
    UpdateDecided {
        key: UpdateKey,
        /// It has its answer now (completed or rejected), not only
        /// accepted.
        answered: bool,
    },
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
    /// The workflow id's policy refuses the start.
    IdTaken(String),
}
