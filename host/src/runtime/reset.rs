//! Reset: a run (ended, stuck or running) carried on by a new run that
//! replays its journal up to an earlier event and continues live from
//! there — after an activity's bug is fixed, say, from the step that
//! failed, without running the steps before it again.

use super::commands::refused;
use super::{Route, Runtime, Target};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::journal::{Event, Recorded};
use crate::store::{ComponentKind, NewRun, RunRecord};
use crate::writes::{WriteOp, WriteOutcome};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

pub struct ResetRequest {
    /// The first event the new run does not keep: it goes live there.
    pub event: u64,
    pub reason: String,
    /// Deliver again the signals the old run consumed from `event` on (and
    /// move those it had not consumed).
    pub reapply_signals: bool,
    /// The workflow version the new run is pinned to (default: the old
    /// run's).
    pub version: Option<u32>,
}

/// The events the new run keeps: the old journal's `1..event`, renumbered
/// from 1, less the failed attempts of activities not completed before the
/// cut (an activity that runs again starts with fresh attempts, and an
/// outcome held while paused is not taken from the old run).
fn kept_events(journal: &[Recorded], event: u64) -> Vec<Event> {
    let kept = &journal[1..event as usize];
    let completed: HashSet<u32> = kept
        .iter()
        .filter_map(|r| match &r.event {
            Event::ActivityCompleted { handle, .. }
            | Event::ActivityFailed { handle, .. }
            | Event::ChildCompleted { handle, .. }
            | Event::ChildFailed { handle, .. } => Some(*handle),
            _ => None,
        })
        .collect();
    kept.iter()
        .filter(|r| match &r.event {
            Event::ActivityAttemptFailed { handle, .. }
            | Event::ActivityAwaitingDeployment { handle, .. }
            | Event::ActivityHeartbeat { handle, .. }
            | Event::ActivityCancelled { handle, .. }
            | Event::ChildAttemptFailed { handle, .. }
            | Event::ActivityHeld { handle, .. } => completed.contains(handle),
            _ => true,
        })
        .map(|r| r.event.clone())
        .collect()
}

/// Signals the old run consumed from `event` on, in the order it did.
fn signals_after(journal: &[Recorded], event: u64) -> Vec<(String, Value)> {
    journal[event as usize..]
        .iter()
        .filter_map(|r| match &r.event {
            Event::SignalReceived { name, payload, .. } => Some((name.clone(), payload.clone())),
            _ => None,
        })
        .collect()
}

impl Runtime {
    /// Reset `run_id` to its event `req.event`: end it if it is open
    /// (terminated), and start a run under its workflow id whose journal is
    /// the old one's before that event, then `reset-from`; the old journal
    /// ends with `reset`, naming the new run.
    pub async fn reset(self: &Arc<Self>, run_id: &str, req: ResetRequest) -> Result<RunRecord> {
        let mut run = self
            .store
            .get_run(run_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no run {run_id}")))?;
        let mut journal = self.store.journal(run_id).await?;
        if req.event == 0 || req.event as usize >= journal.len() {
            return Err(Error::BadRequest(format!(
                "run {run_id} has events 0 to {}; reset to one of 1 to {} (event 0 is its start: start a new run instead)",
                journal.len().saturating_sub(1),
                journal.len().saturating_sub(1)
            )));
        }
        let version = self.reset_version(&run, req.version).await?;
        if run.status.is_open() {
            let reason = format!("reset to event {}: {}", req.event, req.reason);
            run = self.terminate_run(run_id, &reason, Route::ToDriver).await?;
            // Its end was appended: the `reset` event goes after it.
            journal = self.store.journal(run_id).await?;
        }
        let mut new = NewRun::of(
            &version,
            &run.namespace,
            Some(run.workflow_id.clone()),
            run.input.clone(),
        );
        // The old run's execution timeout, counted from now.
        new.deadline_at_ms = run
            .deadline_at_ms
            .map(|d| new.at_ms + (d - run.created_at_ms).max(0));
        let mut events: Vec<Recorded> = kept_events(&journal, req.event)
            .into_iter()
            .enumerate()
            .map(|(i, event)| Recorded {
                seq: i as u64 + 1,
                at_ms: now_ms(),
                event,
            })
            .collect();
        events.push(Recorded {
            seq: events.len() as u64 + 1,
            at_ms: now_ms(),
            event: Event::ResetFrom {
                run_id: run_id.to_string(),
                event: req.event,
                reason: req.reason.clone(),
            },
        });
        let from_event = Recorded {
            seq: journal.last().map_or(0, |r| r.seq + 1),
            at_ms: now_ms(),
            event: Event::Reset {
                event: req.event,
                new_run_id: new.run_id.clone(),
                reason: req.reason.clone(),
            },
        };
        let signals = if req.reapply_signals {
            signals_after(&journal, req.event)
        } else {
            Vec::new()
        };
        let op = WriteOp::Reset {
            run: Box::new(new),
            events,
            signals,
            from: run_id.to_string(),
            from_event,
            move_pending: req.reapply_signals,
        };
        match self.write(op).await? {
            WriteOutcome::Created(created) => {
                tracing::info!(
                    run = run_id,
                    "reset to event {}: run {} carries on",
                    req.event,
                    created.run_id
                );
                self.wake(created.run_id.clone(), None);
                Ok(created)
            }
            WriteOutcome::Refused(r) => Err(refused(r)),
            other => Err(Error::Internal(anyhow::anyhow!(
                "the writer answered a reset with {other:?}"
            ))),
        }
    }

    /// The version a reset run is pinned to: `asked`, or the old run's.
    async fn reset_version(
        &self,
        run: &RunRecord,
        asked: Option<u32>,
    ) -> Result<crate::store::ComponentVersion> {
        let wanted = asked.unwrap_or(run.version);
        self.stored_version(&run.namespace, &run.workflow, Target::Version(wanted))
            .await?
            .filter(|v| v.kind == ComponentKind::Workflow)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "workflow `{}` has no version {wanted} deployed",
                    run.workflow
                ))
            })
    }
}
