//! Pausing and unpausing a run. A run executing here journals the change
//! itself and keeps running the activities it started (their outcomes are
//! held for when it goes on); any other is held while the change is
//! written after its journal.

use super::Runtime;
use super::versions::LEAVE_TIMEOUT;
use crate::engine::{Notice, PauseRequest};
use crate::error::{Error, Result};
use crate::journal::Event;
use crate::store::RunRecord;
use crate::writes::RunUpdate;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::oneshot;

impl Runtime {
    /// Pause a run (it answers no await until unpaused: timers that fall
    /// due wait, the activities it runs finish and are journaled) or
    /// unpause it; the journal records each with its reason.
    pub async fn pause(
        self: &Arc<Self>,
        run_id: &str,
        paused: bool,
        reason: &str,
    ) -> Result<RunRecord> {
        let verb = if paused { "paused" } else { "unpaused" };
        let deadline = tokio::time::Instant::now() + LEAVE_TIMEOUT;
        loop {
            let (done, answer) = oneshot::channel();
            let request = PauseRequest {
                paused,
                reason: reason.to_string(),
                done,
            };
            if !self.tell_executing(run_id, Notice::Pause(request)) {
                break;
            }
            match tokio::time::timeout_at(deadline, answer).await {
                Ok(Ok(Ok(()))) => {
                    tracing::info!(run = run_id, "{verb}");
                    return self.run_record(run_id).await;
                }
                Ok(Ok(Err(message))) => return Err(Error::Conflict(message)),
                // The execution ended before it took the request: look again.
                Ok(Err(_)) => continue,
                Err(_) => {
                    return Err(Error::Conflict(format!(
                        "run {run_id} did not take the request within {} s; try again",
                        LEAVE_TIMEOUT.as_secs()
                    )));
                }
            }
        }
        let held = self.exclusive(run_id).await?;
        let run = self.open_run_for(run_id, verb).await?;
        if run.paused == paused {
            return Err(Error::Conflict(format!("run {run_id} is already {verb}")));
        }
        let sink = self.sink_at_end(run_id).await?;
        sink.record(Event::pause_changed(paused, reason));
        sink.commit(Some(RunUpdate::Paused(paused))).await?;
        tracing::info!(run = run_id, "{verb}");
        // Letting go wakes it: unpaused, it goes on (taking the outcomes
        // held for it); paused, it stays out.
        drop(held);
        self.run_record(run_id).await
    }

    /// Hand `notice` to an execution of `run_id` running here; false if
    /// none runs (the run is out of memory, or held by another verb).
    fn tell_executing(&self, run_id: &str, notice: Notice) -> bool {
        let resident = self.resident.lock().unwrap();
        let Some(r) = resident.get(run_id) else {
            return false;
        };
        // A held run's inbox has no receiver.
        if r.inbox.send(notice).is_err() {
            return false;
        }
        r.sent.fetch_add(1, Ordering::SeqCst);
        true
    }
}
