//! The operations a workflow starts (activities, timers, signal and update
//! receives, children), what a resident run is told, and what the guest gets for a
//! completion. How a live await waits for them is in `waits.rs`.

use super::bindings::WitFailure;
use super::host::{ActivityJob, ActivityOutcome};
use crate::journal::{ErrorInfo, Event, Failure};
use crate::store::{Signal, UpdateRecord};
use tokio::task::JoinHandle;

/// Something a resident run is told while it executes.
#[derive(Debug, Clone)]
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
}

/// An operation the guest started, by handle.
pub(super) enum Op {
    Activity {
        job: Box<ActivityJob>,
        task: Option<JoinHandle<ActivityOutcome>>,
        /// The task's outcome once it was joined.
        outcome: Option<ActivityOutcome>,
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
    Child {
        run_id: Option<String>,
        error: Option<ErrorInfo>,
        /// Whether the store must be asked (again) if it ended.
        stale: bool,
    },
    /// Pending when the run was cancelled or passed its deadline.
    Dropped(Failure),
    /// Already awaited.
    Consumed,
}

impl Op {
    pub(super) fn describe(&self) -> &'static str {
        match self {
            Op::Activity { .. } => "an activity",
            Op::Timer { .. } => "a timer",
            Op::Signal { .. } => "a signal",
            Op::Update { .. } => "an update",
            Op::Child { .. } => "a child workflow",
            Op::Dropped(_) => "a dropped operation",
            Op::Consumed => "a consumed operation",
        }
    }

    /// An activity task whose outcome is still to be taken: one that runs,
    /// or — if `awaited` — one that finished but was not joined yet.
    pub(super) fn pending_task(&self, awaited: bool) -> bool {
        matches!(self, Op::Activity { task: Some(t), outcome: None, .. } if awaited || !t.is_finished())
    }
}

/// What the guest gets for a completion event.
pub(super) fn response(event: &Event) -> Result<String, WitFailure> {
    match event {
        Event::ActivityCompleted { output, .. }
        | Event::ChildCompleted { output, .. }
        | Event::SignalReceived {
            payload: output, ..
        }
        | Event::UpdateAccepted { input: output, .. } => Ok(output.to_string()),
        Event::ActivityFailed { failure, .. }
        | Event::ChildFailed { failure, .. }
        | Event::Interrupted { failure, .. } => Err(failure.clone().into()),
        _ => Ok("null".to_string()),
    }
}
