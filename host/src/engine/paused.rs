//! A resident run paused by an operator: it answers no await (timers that
//! fall due, signals and completions wait), while the activities it was
//! running go on; each outcome is journaled as it ends (`activity-held`)
//! and taken, without running the activity again, once the run goes on.

use super::limits::{Interrupt, storage};
use super::ops::{Op, joined};
use super::workflow::WorkflowState;
use crate::journal::Event;
use crate::writes::RunUpdate;
use futures::future::select_all;

impl WorkflowState {
    /// Journal the pause and unpause requests taken from the inbox, in
    /// order, and answer each (an error if the run already was so).
    pub(super) async fn take_pause_requests(&mut self) -> wasmtime::Result<()> {
        for request in std::mem::take(&mut self.pause_requests) {
            if request.paused == self.paused {
                let verb = if request.paused { "paused" } else { "unpaused" };
                let message = format!("run {} is already {verb}", self.run.run_id);
                let _ = request.done.send(Err(message));
                continue;
            }
            self.sink
                .record(Event::pause_changed(request.paused, &request.reason));
            self.sink
                .commit(Some(RunUpdate::Paused(request.paused)))
                .await
                .map_err(storage)?;
            self.paused = request.paused;
            let _ = request.done.send(Ok(()));
        }
        Ok(())
    }

    /// Journal (`activity-held`) the outcome of every activity that has
    /// ended and is not journaled yet, and say whether any was: once
    /// committed, an await takes such an outcome without a commit of its
    /// own, and a restart takes it without running the activity again.
    pub(super) async fn hold_ended(&mut self) -> wasmtime::Result<bool> {
        let mut newly_held = false;
        for (h, op) in self.ops.iter_mut().enumerate() {
            let Op::Activity {
                job,
                task,
                outcome,
                held,
            } = op
            else {
                continue;
            };
            if *held || job.answered_cancelled() {
                continue;
            }
            if outcome.is_none() {
                match task.take_if(|t| t.is_finished()) {
                    Some(t) => *outcome = Some(joined(t.await)?),
                    None => continue,
                }
            }
            let Some(ended) = outcome else { continue };
            *held = true;
            newly_held = true;
            let (output, failure) = match &ended.result {
                Ok(output) => (Some(output.clone()), None),
                Err(failure) => (None, Some(failure.clone())),
            };
            self.sink.record(Event::ActivityHeld {
                handle: h as u32,
                attempts: ended.attempts,
                output,
                failure,
            });
        }
        Ok(newly_held)
    }

    /// Paused: journal the outcome of every activity that has ended, then
    /// wait for the next to end or for a notice; leave memory once none
    /// runs (unpausing wakes the run, which takes the held outcomes).
    pub(super) async fn hold(&mut self) -> wasmtime::Result<()> {
        if self.hold_ended().await? {
            self.sink.commit(None).await.map_err(storage)?;
        }
        let running: Vec<_> = self
            .ops
            .iter_mut()
            .enumerate()
            .filter_map(|(h, op)| match op {
                Op::Activity {
                    task: Some(t),
                    outcome: None,
                    ..
                } => Some((h, t)),
                _ => None,
            })
            .collect();
        if running.is_empty() {
            return Err(Interrupt::Suspend { wake_at_ms: None }.into());
        }
        let ended = select_all(
            running
                .into_iter()
                .map(|(h, t)| Box::pin(async move { (h, t.await) })),
        );
        let woke = tokio::select! {
            ((h, joined), _, _) = ended => Ok((h, joined)),
            notice = self.inbox.recv() => Err(notice),
        };
        match woke {
            Ok((h, task)) => {
                let ended = joined(task)?;
                if let Op::Activity { outcome, task, .. } = &mut self.ops[h] {
                    *task = None;
                    *outcome = Some(ended);
                }
            }
            Err(Some(notice)) => self.take_notice(notice),
            Err(None) => {}
        }
        Ok(())
    }
}
