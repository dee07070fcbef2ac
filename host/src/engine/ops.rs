//! The operations a workflow starts (activities, timers, signal and update
//! receives, children), what a resident run is told, and what the guest gets for a
//! completion. How a live await waits for them is in `waits.rs`.

use super::host::{ActivityJob, ActivityOutcome, UpdateAsk};
use crate::journal::{ErrorInfo, Event, Failure, ParentClose, RetryPolicy};
use crate::store::{Signal, UpdateKey, UpdateRecord};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use weft_contract::kind;

/// Something a resident run is told while it executes.
#[derive(Debug)]
pub enum Notice {
    Signal(Signal),
    /// An update was requested for the run's workflow id.
    Update(UpdateRecord),
    Cancel,
    /// A child run ended.
    ChildEnded(String),
    /// Look again (e.g. a timer of the runtime fired).
    Poke,
    /// Leave memory at the next wait (an upgrade needs the run to itself).
    Evict,
    /// An operator pauses or unpauses the run.
    Pause(PauseRequest),
}

/// A pause (or unpause) the resident execution journals itself, so the
/// activities it runs go on and their outcomes are journaled as they end.
#[derive(Debug)]
pub struct PauseRequest {
    pub paused: bool,
    pub reason: String,
    /// Answered once the change is committed; an error if it was already so.
    pub done: oneshot::Sender<Result<(), String>>,
}

/// An operation the guest started, by handle.
pub(super) enum Op {
    Activity {
        job: Box<ActivityJob>,
        task: Option<JoinHandle<ActivityOutcome>>,
        /// The task's outcome once it was joined (or held while paused).
        outcome: Option<ActivityOutcome>,
        /// The outcome is journaled as `activity-held`.
        held: bool,
    },
    Timer {
        fire_at_ms: i64,
    },
    Signal {
        name: String,
    },
    Update {
        name: String,
    },
    /// An update sent to another workflow, waiting for its answer.
    UpdateOut {
        key: UpdateKey,
        /// The request still to make (sent live, or replayed before a
        /// restart: made again, idempotently, once the run is live).
        ask: Option<Box<UpdateAsk>>,
        /// Why no run can take it, once the request was refused.
        refused: Option<ErrorInfo>,
        /// Whether the store must be asked (again) for the answer.
        stale: bool,
    },
    Child {
        /// The workflow it runs, for its failure's message.
        workflow: String,
        run_id: Option<String>,
        error: Option<ErrorInfo>,
        /// Whether the store must be asked (again) if it ended.
        stale: bool,
        /// Its retry policy and what a retry starts; `None`: one run.
        retry: Option<Box<ChildRetry>>,
    },
    /// Pending when the run was cancelled or passed its deadline.
    Dropped(Failure),
    /// Already awaited.
    Consumed,
}

/// A child's retry policy, and what starting it again takes.
pub(super) struct ChildRetry {
    pub policy: RetryPolicy,
    pub input: serde_json::Value,
    pub parent_close: ParentClose,
    pub run_timeout_ms: Option<u64>,
    /// Runs started so far (1 for the first).
    pub attempt: u32,
    /// When the next run is due, once the current one failed.
    pub due_at_ms: Option<i64>,
}

/// An activity task's outcome, once joined (a task that panicked or was
/// aborted is an error of the execution).
pub(super) fn joined(
    task: Result<ActivityOutcome, tokio::task::JoinError>,
) -> wasmtime::Result<ActivityOutcome> {
    task.map_err(|e| wasmtime::Error::msg(format!("activity task failed: {e}")))
}

impl Op {
    pub(super) fn describe(&self) -> &'static str {
        match self {
            Op::Activity { .. } => "an activity",
            Op::Timer { .. } => "a timer",
            Op::Signal { .. } => "a signal",
            Op::Update { .. } => "an update",
            Op::UpdateOut { .. } => "an update sent",
            Op::Child { .. } => "a child workflow",
            Op::Dropped(_) => "a dropped operation",
            Op::Consumed => "a consumed operation",
        }
    }

    /// What an activity or child runs, for the boundary error its
    /// failure is wrapped in (taken as the op is consumed: no copy).
    pub(super) fn into_label(self) -> Option<String> {
        match self {
            Op::Activity { job, .. } => Some(job.name),
            Op::Child { workflow, .. } => Some(workflow),
            _ => None,
        }
    }

    /// An activity whose outcome is journaled as held answers its await
    /// with it (unless cancelled in a mode that answers at once).
    pub(super) fn answers_held(&self) -> bool {
        matches!(self, Op::Activity { held: true, outcome: Some(_), job, .. } if !job.answered_cancelled())
    }

    /// An activity task whose outcome is still to be taken: one that runs,
    /// or — if `awaited` — one that finished but was not joined yet.
    pub(super) fn pending_task(&self, awaited: bool) -> bool {
        matches!(self, Op::Activity { task: Some(t), outcome: None, .. } if awaited || !t.is_finished())
    }
}

/// What the guest gets for a completion event of the operation `label`
/// names: an activity's or a started child's failure is the cause of a
/// boundary error that says which failed.
pub(super) fn response(event: &Event, label: Option<&str>) -> Result<String, Failure> {
    let label = label.unwrap_or("?");
    match event {
        Event::ActivityCompleted { output, .. }
        | Event::ChildCompleted { output, .. }
        | Event::SignalReceived {
            payload: output, ..
        }
        | Event::UpdateAccepted { input: output, .. } => Ok(output.to_string()),
        Event::ActivityFailed {
            failure, attempts, ..
        } => Err(failure.clone().across(
            kind::ACTIVITY_FAILED,
            format!(
                "activity `{label}` failed after {attempts} attempt(s): {}: {}",
                failure.kind(),
                failure.message()
            ),
        )),
        Event::ChildFailed {
            failure,
            child_run_id: Some(id),
            ..
        } => Err(failure.clone().across(
            kind::CHILD_FAILED,
            format!(
                "child workflow `{label}` (run {id}) failed: {}: {}",
                failure.kind(),
                failure.message()
            ),
        )),
        Event::ChildFailed { failure, .. } | Event::Interrupted { failure, .. } => {
            Err(failure.clone())
        }
        Event::UpdateAnswered {
            error: Some(error), ..
        } => Err(Failure::Application(error.clone())),
        Event::UpdateAnswered {
            output: Some(output),
            ..
        } => Ok(output.to_string()),
        _ => Ok("null".to_string()),
    }
}
