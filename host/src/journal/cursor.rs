//! The replay cursor: answers guest calls from a loaded journal, in memory,
//! and detects divergence between the journal and the code.

use super::event::{Call, Event, short};
use super::failure::{ErrorInfo, Failure};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

/// An event as stored: its per-run sequence number and the event itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    pub seq: u64,
    pub at_ms: i64,
    #[serde(flatten)]
    pub event: Event,
}

/// The code and the journal disagree. The run stops in `stuck` with this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    /// Sequence number of the journal event that did not match.
    pub seq: u64,
    /// What the journal holds at that point.
    pub journal: String,
    /// What the code asked for instead.
    pub code: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "event {}: journal has {}, code asked for {}",
            self.seq, self.journal, self.code
        )
    }
}

impl std::error::Error for Divergence {}

/// How a run's code ended. A journal that records one is matched against
/// it: code that ends otherwise, or goes on where the journal ended, diverges.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEnd {
    Completed { output: Value },
    Failed { error: ErrorInfo },
    ContinuedAsNew { input: Value },
}

/// The message of the end the host imposes once a run's deadline and its
/// grace period are over: the code was stopped where it waited.
pub const DEADLINE_STOP: &str =
    "the run passed its deadline (execution timeout) and the grace period after it";

/// Error kinds of the ends the host imposes (a trap, a limit, a
/// termination): the code was stopped, it did not choose that end.
const STOPPED_KINDS: [&str; 4] = [
    "trap",
    "spin-limit",
    "memory-limit",
    weft_contract::kind::TERMINATED,
];

impl RunEnd {
    /// The end the code chose, as recorded; `None` for other events and
    /// for ends the host imposed.
    fn of(event: &Event) -> Option<RunEnd> {
        match event {
            Event::Completed { output } => Some(RunEnd::Completed {
                output: output.clone(),
            }),
            Event::Failed { error }
                if STOPPED_KINDS.contains(&error.kind.as_str())
                    || (error.kind == weft_contract::kind::TIMED_OUT
                        && error.message == DEADLINE_STOP) =>
            {
                None
            }
            Event::Failed { error } => Some(RunEnd::Failed {
                error: error.clone(),
            }),
            Event::ContinuedAsNew { input, .. } => Some(RunEnd::ContinuedAsNew {
                input: input.clone(),
            }),
            _ => None,
        }
    }

    /// Same end: same kind and same output, error or input. Errors match
    /// by kind and message (the details may hold a backtrace), at any level
    /// of the code's cause chain: code built on contract 0.2 fails with the
    /// `activity-failed` error around the activity's own where code built
    /// on 0.1 failed with the activity's own.
    fn matches(&self, other: &RunEnd) -> bool {
        match (self, other) {
            (RunEnd::Failed { error: a }, RunEnd::Failed { error: b }) => b
                .chain()
                .any(|b| a.kind == b.kind && a.message == b.message),
            _ => self == other,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            RunEnd::Completed { output } => {
                format!("the run's end (completed with {})", short(output))
            }
            RunEnd::Failed { error } => format!(
                "the run's end (failed with `{}`: {})",
                error.kind,
                short(&Value::String(error.message.clone()))
            ),
            RunEnd::ContinuedAsNew { input } => {
                format!(
                    "the run's end (continue-as-new with input {})",
                    short(input)
                )
            }
        }
    }
}

/// How the journal answers a call.
#[derive(Debug, PartialEq)]
pub enum Replay<'a> {
    /// The recorded event of this call.
    Recorded(&'a Recorded),
    /// A soft call the journal goes on without (a patch marker recorded
    /// after this journal was; a status, which is never matched).
    Skipped,
    /// The journal is exhausted: the call runs live.
    Live,
}

/// Walks a journal in order. Informational events are skipped; every other
/// event must be matched by the guest's next call, by kind and digest.
pub struct Cursor {
    events: Vec<Recorded>,
    pos: usize,
    /// What the informational events say of each activity (or child), by
    /// handle, read in one pass (an activity's replay asks, and a scan per
    /// activity made replay quadratic).
    activities: HashMap<u32, ActivityNotes>,
}

/// An activity's informational events: failed attempts, when the next
/// attempt is due, its last heartbeat's details, and an outcome held while
/// the run was paused; a child's retried runs.
#[derive(Default)]
struct ActivityNotes {
    failed: u32,
    next_due: Option<i64>,
    heartbeat: Option<Value>,
    /// A child's runs that failed and were started again; its current run.
    child_retries: u32,
    child_run: Option<String>,
    held: Option<(u32, Result<Value, Failure>)>,
}

impl Cursor {
    pub fn new(events: Vec<Recorded>) -> Self {
        let mut activities: HashMap<u32, ActivityNotes> = HashMap::new();
        for r in &events {
            match &r.event {
                Event::ActivityAttemptFailed {
                    handle,
                    retry_in_ms,
                    ..
                } => {
                    let notes = activities.entry(*handle).or_default();
                    notes.failed += 1;
                    notes.next_due = retry_in_ms.map(|ms| r.at_ms + ms as i64);
                }
                Event::ActivityHeartbeat {
                    handle, details, ..
                } => activities.entry(*handle).or_default().heartbeat = Some(details.clone()),
                Event::ChildAttemptFailed {
                    handle,
                    next_run_id,
                    ..
                } => {
                    let notes = activities.entry(*handle).or_default();
                    notes.child_retries += 1;
                    notes.child_run = Some(next_run_id.clone());
                }
                Event::ActivityHeld {
                    handle,
                    attempts,
                    output,
                    failure,
                } => {
                    let outcome = match failure {
                        Some(f) => Err(f.clone()),
                        None => Ok(output.clone().unwrap_or_default()),
                    };
                    let notes = activities.entry(*handle).or_default();
                    notes.held.get_or_insert((*attempts, outcome));
                }
                _ => {}
            }
        }
        Cursor {
            events,
            pos: 0,
            activities,
        }
    }

    /// Sequence number the next appended event gets.
    pub fn next_seq(&self) -> u64 {
        self.events.last().map_or(0, |e| e.seq + 1)
    }

    fn skip_informational(&mut self) {
        while self
            .events
            .get(self.pos)
            .is_some_and(|r| r.event.call().is_none())
        {
            self.pos += 1;
        }
    }

    /// True while recorded calls remain to be matched.
    pub fn replaying(&mut self) -> bool {
        self.skip_informational();
        self.pos < self.events.len()
    }

    /// Skip informational events and patch markers: a marker only counts
    /// for the `patched` call that asks for it.
    fn skip_soft(&mut self) {
        loop {
            self.skip_informational();
            match self.events.get(self.pos) {
                Some(r) if matches!(r.event, Event::PatchMarker { .. }) => self.pos += 1,
                _ => return,
            }
        }
    }

    /// The end the journal records the code chose, if it does.
    fn recorded_end(&self) -> Option<(u64, RunEnd)> {
        let last = self.events.last()?;
        RunEnd::of(&last.event).map(|end| (last.seq, end))
    }

    /// Match the guest's `call` against the next recorded call. `Ok(None)`
    /// means the journal is exhausted: the call runs live. Past a recorded
    /// end there is nothing to go on to: the call diverges.
    pub fn expect(&mut self, call: &Call) -> Result<Option<&Recorded>, Divergence> {
        self.skip_soft();
        if self.pos >= self.events.len() {
            return match self.recorded_end() {
                Some((seq, end)) => Err(Divergence {
                    seq,
                    journal: end.describe(),
                    code: call.describe(),
                }),
                None => Ok(None),
            };
        }
        let recorded = &self.events[self.pos];
        let expected = recorded.event.call().expect("skipped informational events");
        if expected != *call {
            return Err(Divergence {
                seq: recorded.seq,
                journal: expected.describe(),
                code: call.describe(),
            });
        }
        self.pos += 1;
        Ok(Some(&self.events[self.pos - 1]))
    }

    /// At the end of the run: recorded calls the code never made (trimmed
    /// code) are a divergence, and so is an end other than the recorded one.
    pub fn finish(&mut self, end: &RunEnd) -> Result<(), Divergence> {
        self.skip_soft();
        if let Some(recorded) = self.events.get(self.pos) {
            return Err(Divergence {
                seq: recorded.seq,
                journal: recorded.event.call().expect("a call").describe(),
                code: end.describe(),
            });
        }
        match self.recorded_end() {
            Some((seq, recorded)) if !recorded.matches(end) => Err(Divergence {
                seq,
                journal: recorded.describe(),
                code: end.describe(),
            }),
            _ => Ok(()),
        }
    }

    /// Answer `call` from the journal: the one place where calls are
    /// matched. Hard calls must be the next recorded call (see `expect`);
    /// a patch answers from its marker (soft: other calls skip markers); a
    /// status is skipped while the journal has more.
    pub fn replay(&mut self, call: &Call) -> Result<Replay<'_>, Divergence> {
        match call.kind {
            "patch" => Ok(self.patch(call)),
            "status" | "search-attributes" => {
                let more = self.replaying() || self.recorded_end().is_some();
                Ok(if more { Replay::Skipped } else { Replay::Live })
            }
            _ => Ok(match self.expect(call)? {
                Some(recorded) => Replay::Recorded(recorded),
                None => Replay::Live,
            }),
        }
    }

    /// A patch marker: recorded where the journal has it (consumed),
    /// skipped where the journal goes on without it (recorded before the
    /// change), live once the journal is exhausted.
    fn patch(&mut self, call: &Call) -> Replay<'_> {
        let mut i = self.pos;
        while let Some(r) = self.events.get(i) {
            match &r.event {
                Event::PatchMarker { .. } if r.event.call().as_ref() == Some(call) => {
                    self.pos = i + 1;
                    return Replay::Recorded(&self.events[i]);
                }
                Event::PatchMarker { .. } => i += 1,
                // The journal went on to its end without the marker.
                e if RunEnd::of(e).is_some() => return Replay::Skipped,
                e if e.call().is_none() => i += 1,
                _ => return Replay::Skipped,
            }
        }
        Replay::Live
    }

    /// Failed attempts of the activity `handle` recorded so far, and when
    /// the next attempt is due, so a resumed activity continues its count
    /// and its backoff.
    pub fn failed_attempts(&self, handle: u32) -> (u32, Option<i64>) {
        self.activities
            .get(&handle)
            .map_or((0, None), |n| (n.failed, n.next_due))
    }

    /// How many of child `handle`'s runs failed and were started again, and
    /// the run started last.
    pub fn child_retries(&self, handle: u32) -> (u32, Option<String>) {
        self.activities
            .get(&handle)
            .map_or((0, None), |n| (n.child_retries, n.child_run.clone()))
    }

    /// The details of activity `handle`'s last recorded heartbeat.
    pub fn heartbeat_details(&self, handle: u32) -> Option<Value> {
        self.activities.get(&handle)?.heartbeat.clone()
    }

    /// The outcome activity `handle` was recorded finishing with while the
    /// run was paused (`activity-held`): attempts, then output or failure.
    pub fn held_outcome(&self, handle: u32) -> Option<(u32, Result<Value, Failure>)> {
        self.activities.get(&handle)?.held.clone()
    }
}

#[cfg(test)]
#[path = "cursor_tests.rs"]
mod tests;
