//! How a live await waits for the operations it names: readiness,
//! interrupts (cancellation, deadline), and eviction when nothing is about
//! to happen.

use super::host::ActivityOutcome;
use super::limits::{Interrupt, storage};
use super::ops::{Notice, Op, joined};
use super::workflow::WorkflowState;
use crate::clock::now_ms;
use crate::journal::{ErrorInfo, Event, Failure, TimeoutKind};
use crate::store::RunStatus;
use futures::future::select_all;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How an ended child run looks to its parent.
fn child_outcome(handle: u32, status: RunStatus, run: &crate::store::RunRecord) -> Event {
    let failure = match status {
        RunStatus::Completed => {
            return Event::ChildCompleted {
                handle,
                child_run_id: run.run_id.clone(),
                output: run.output.clone().unwrap_or_default(),
                select: None,
            };
        }
        RunStatus::Cancelled => Failure::Cancelled,
        RunStatus::TimedOut => Failure::timed_out(
            TimeoutKind::RunDeadline,
            format!("child run {} passed its deadline", run.run_id),
        ),
        _ => {
            let error = run
                .error
                .as_ref()
                .and_then(|e| serde_json::from_value::<ErrorInfo>(e.clone()).ok())
                .unwrap_or_else(|| ErrorInfo::new("child-failed", "the child run failed"));
            Failure::Application(error)
        }
    };
    Event::ChildFailed {
        handle,
        child_run_id: Some(run.run_id.clone()),
        failure,
        select: None,
    }
}

/// The completion event of activity `handle`, which ended with `outcome`.
fn activity_ended(handle: u32, outcome: ActivityOutcome) -> Event {
    match outcome.result {
        Ok(output) => Event::ActivityCompleted {
            handle,
            attempts: outcome.attempts,
            output,
            select: None,
        },
        Err(failure) => Event::ActivityFailed {
            handle,
            attempts: outcome.attempts,
            failure,
            select: None,
        },
    }
}

impl WorkflowState {
    /// Wait, live, until one of `handles` can be consumed; answers its
    /// handle, its completion event (not yet journaled) and whether that
    /// is an outcome already journaled as held. Held outcomes are taken
    /// first, in the order of `handles`: after a crash the same await
    /// takes the same one, so taking it needs no commit of its own.
    pub(super) async fn wait_live(
        &mut self,
        handles: &[u32],
    ) -> wasmtime::Result<(u32, Event, bool)> {
        self.went_live();
        loop {
            self.drain_inbox();
            if self.evict {
                for op in &mut self.ops {
                    if let Op::Activity { task: Some(t), .. } = op {
                        t.abort();
                    }
                }
                // Due at once: whoever evicted it wakes it (or recovery does).
                return Err(Interrupt::Suspend {
                    wake_at_ms: Some(now_ms()),
                }
                .into());
            }
            self.make_asks().await?;
            self.take_pause_requests().await?;
            if self.paused {
                self.hold().await?;
                continue;
            }
            if let Some(event) = self.interrupt_due(handles[0])? {
                return Ok((handles[0], event, false));
            }
            let mut order: Vec<(u32, bool)> = (handles.iter())
                .map(|&h| (h, self.ops[h as usize].answers_held()))
                .collect();
            // Stable: held first, each group in the await's order.
            order.sort_by_key(|&(_, held)| !held);
            for (h, from_held) in order {
                if let Some(event) = self.try_ready(h).await? {
                    let op = std::mem::replace(&mut self.ops[h as usize], Op::Consumed);
                    self.consumed_label = op.into_label();
                    return Ok((h, event, from_held));
                }
            }
            self.block(handles).await?;
        }
    }

    pub(super) fn drain_inbox(&mut self) {
        while let Ok(notice) = self.inbox.try_recv() {
            self.take_notice(notice);
        }
    }

    pub(super) fn take_notice(&mut self, notice: Notice) {
        self.notices_seen += 1;
        match notice {
            Notice::Signal(signal) => self.queue_signal(signal),
            Notice::Update(update) => self.queue_update(update),
            Notice::Cancel => self.run.cancel_requested = true,
            Notice::ChildEnded(_) => {
                for op in &mut self.ops {
                    if let Op::Child { stale, .. } = op {
                        *stale = true;
                    }
                }
            }
            Notice::Evict => self.evict = true,
            Notice::Pause(request) => self.pause_requests.push(request),
            Notice::Poke => self.updates_out_stale(),
        }
    }

    /// Deliver a cancellation or the deadline, once each: this await
    /// answers it and every pending operation is dropped.
    fn interrupt_due(&mut self, handle: u32) -> wasmtime::Result<Option<Event>> {
        let now = now_ms();
        let failure = if self.run.cancel_requested && !self.cancel_delivered {
            Failure::Cancelled
        } else if let Some(deadline) = self.run.deadline_at_ms
            && now >= deadline
        {
            if self.deadline_delivered {
                if now >= deadline + self.host.waits().deadline_grace_ms as i64 {
                    return Err(Interrupt::DeadlineExceeded.into());
                }
                return Ok(None);
            }
            Failure::timed_out(
                TimeoutKind::RunDeadline,
                "the run passed its deadline (execution timeout)",
            )
        } else {
            return Ok(None);
        };
        self.interrupted(&failure);
        self.ops[handle as usize] = Op::Consumed;
        Ok(Some(Event::Interrupted {
            handle,
            failure,
            select: None,
        }))
    }

    /// Bookkeeping of a delivered interrupt, live or replayed: pending
    /// operations are dropped (running activities are aborted).
    pub(super) fn interrupted(&mut self, failure: &Failure) {
        match failure {
            Failure::Cancelled => self.cancel_delivered = true,
            _ => self.deadline_delivered = true,
        }
        for op in &mut self.ops {
            if let Op::Activity { task: Some(t), .. } = op {
                t.abort();
            }
            if !matches!(op, Op::Consumed) {
                *op = Op::Dropped(failure.clone());
            }
        }
    }

    /// The completion of `h` if it is ready now.
    async fn try_ready(&mut self, h: u32) -> wasmtime::Result<Option<Event>> {
        if let Op::Signal { name } = &self.ops[h as usize] {
            let name = name.clone();
            return Ok(self.take_signal(&name).map(|s| Event::SignalReceived {
                handle: h,
                name,
                signal_id: s.id,
                payload: s.payload,
                select: None,
            }));
        }
        if let Op::Update { name } = &self.ops[h as usize] {
            let name = name.clone();
            return Ok(self.take_update(&name).map(|u| Event::UpdateAccepted {
                handle: h,
                name,
                update_id: u.update_id,
                input: u.input,
                select: None,
            }));
        }
        if let Op::UpdateOut { .. } = &self.ops[h as usize] {
            return self.update_out_ready(h).await;
        }
        let host = self.host.clone();
        let sink = self.sink.clone();
        let op = &mut self.ops[h as usize];
        Ok(match op {
            // Answered at once; the task runs on, told or not.
            Op::Activity { job, task, .. } if job.answered_cancelled() => {
                self.let_go.extend(task.take());
                Some(Event::ActivityFailed {
                    handle: h,
                    attempts: job.prior_attempts,
                    failure: Failure::Cancelled,
                    select: None,
                })
            }
            Op::Activity {
                job, task, outcome, ..
            } => match (task.as_mut(), outcome.take()) {
                (_, Some(ended)) => Some(activity_ended(h, ended)),
                (None, None) => {
                    // Scheduled before a restart, not completed: run it now.
                    *task = Some(host.clone().spawn_activity((**job).clone(), sink));
                    None
                }
                (Some(t), None) if t.is_finished() => Some(activity_ended(h, joined(t.await)?)),
                (Some(_), None) => None,
            },
            Op::Timer { fire_at_ms } => {
                let late = now_ms() - *fire_at_ms;
                (late >= 0).then(|| {
                    let m = crate::metrics::metrics();
                    let late = std::time::Duration::from_millis(late as u64);
                    crate::metrics::observe(&m.timer_lag, &[&self.run.namespace], late);
                    Event::TimerFired {
                        handle: h,
                        select: None,
                    }
                })
            }
            Op::Child {
                run_id: None,
                error,
                ..
            } => {
                let error = error
                    .clone()
                    .unwrap_or_else(|| ErrorInfo::new("child-not-started", "no child run"));
                Some(Event::ChildFailed {
                    handle: h,
                    child_run_id: None,
                    failure: Failure::Application(error),
                    select: None,
                })
            }
            Op::Child {
                run_id: Some(id),
                stale,
                ..
            } => {
                if !*stale {
                    return Ok(None);
                }
                *stale = false;
                let mut id = id.clone();
                let ended = loop {
                    let Some(run) = host.run(&id).await.map_err(storage)? else {
                        break None;
                    };
                    // Follow a child that continued as new to its last run.
                    match run.output.as_ref().and_then(|o| o["continued_as"].as_str()) {
                        Some(next) if run.status == RunStatus::Completed => id = next.to_string(),
                        _ if run.status.is_open() => break None,
                        _ => break Some(run),
                    }
                };
                match ended {
                    Some(run) => return self.child_ended(h, run).await,
                    None => None,
                }
            }
            Op::Dropped(failure) => Some(Event::Interrupted {
                handle: h,
                failure: failure.clone(),
                select: None,
            }),
            Op::Signal { .. } | Op::Update { .. } | Op::UpdateOut { .. } | Op::Consumed => None,
        })
    }

    /// Child `h`'s run ended as `run` says: its outcome, unless its retry
    /// policy starts it again (once the backoff has passed: until then it
    /// is looked at again when it is due).
    async fn child_ended(
        &mut self,
        h: u32,
        run: crate::store::RunRecord,
    ) -> wasmtime::Result<Option<Event>> {
        let outcome = child_outcome(h, run.status, &run);
        let (
            Op::Child {
                workflow,
                retry: Some(retry),
                stale,
                ..
            },
            Event::ChildFailed { failure, .. },
        ) = (&mut self.ops[h as usize], &outcome)
        else {
            return Ok(Some(outcome));
        };
        let retries = matches!(run.status, RunStatus::Failed | RunStatus::TimedOut)
            && retry.policy.retries(failure, retry.attempt);
        if !retries {
            return Ok(Some(outcome));
        }
        let ended_at = run.ended_at_ms.unwrap_or_else(now_ms);
        let due = ended_at + retry.policy.backoff_ms(retry.attempt) as i64;
        if now_ms() < due {
            retry.due_at_ms = Some(due);
            *stale = true;
            return Ok(None);
        }
        let workflow = workflow.clone();
        let (input, parent_close, run_timeout_ms, attempt) = (
            retry.input.clone(),
            retry.parent_close,
            retry.run_timeout_ms,
            retry.attempt,
        );
        let failure = failure.clone();
        let started = self
            .child_run(
                &workflow,
                Some(run.workflow_id.clone()),
                &input,
                parent_close,
                run_timeout_ms,
            )
            .await?;
        // A run that cannot start again (its workflow gone, the quota
        // reached): the failure stands.
        let Ok(next) = started else {
            return Ok(Some(outcome));
        };
        let next_run_id = next.run_id.clone();
        self.sink.record(Event::ChildAttemptFailed {
            handle: h,
            attempt,
            child_run_id: run.run_id.clone(),
            failure,
            next_run_id: next_run_id.clone(),
        });
        self.sink.effect(crate::writes::Effect::CreateRun(next));
        self.sink.commit(None).await.map_err(storage)?;
        if let Op::Child {
            run_id,
            stale,
            retry: Some(retry),
            ..
        } = &mut self.ops[h as usize]
        {
            *run_id = Some(next_run_id);
            *stale = true;
            retry.attempt += 1;
            retry.due_at_ms = None;
        }
        Ok(None)
    }

    /// Something the run waits on is executing. An awaited activity that
    /// finished since it was last looked at counts: its outcome is joined
    /// below, never dropped by an eviction (a run suspended with nothing to
    /// wake it would wait forever).
    /// An activity cancelled without waiting for it counts while it runs:
    /// it runs on only while the run is in memory.
    fn in_flight(&self, handles: &[u32]) -> bool {
        self.ops
            .iter()
            .enumerate()
            .any(|(i, op)| op.pending_task(handles.contains(&(i as u32))))
            || !self.let_go.is_empty()
    }

    /// Whether something awaited ends by a notice (a signal, an update or
    /// its answer, a child's end) rather than by the clock alone.
    fn awaits_notice(&self, handles: &[u32]) -> bool {
        handles.iter().any(|&h| {
            matches!(
                self.ops[h as usize],
                Op::Signal { .. } | Op::Update { .. } | Op::UpdateOut { .. } | Op::Child { .. }
            )
        })
    }

    /// Nothing is ready: wait for something to change, or evict the run
    /// when nothing is running and nothing is due soon.
    async fn block(&mut self, handles: &[u32]) -> wasmtime::Result<()> {
        self.let_go.retain(|t| !t.is_finished());
        let now = now_ms();
        let mut wake_at: Option<i64> = handles
            .iter()
            .filter_map(|&h| match &self.ops[h as usize] {
                Op::Timer { fire_at_ms } => Some(*fire_at_ms),
                Op::Child {
                    retry: Some(retry), ..
                } => retry.due_at_ms,
                _ => None,
            })
            .min();
        if let Some(deadline) = self.run.deadline_at_ms {
            let at = if self.deadline_delivered {
                deadline + self.host.waits().deadline_grace_ms as i64
            } else {
                deadline
            };
            wake_at = Some(wake_at.map_or(at, |w| w.min(at)));
        }
        let waits = self.host.waits();
        if waits.send_when_parked {
            self.sink.send();
        }
        let resident = waits.resident_timer_ms as i64;
        if !self.in_flight(handles) && wake_at.is_none_or(|at| at - now > resident) {
            // Idle: linger a little if a notice may end the wait soon
            // (signals often come in bursts), then give the memory back;
            // the runtime or a notice wakes us. A wait only the clock ends
            // gives it back at once: lingering would hold a run slot that
            // starts behind it wait for.
            let linger = if self.awaits_notice(handles) {
                Duration::from_millis(waits.idle_linger_ms.min(resident.max(0) as u64))
            } else {
                Duration::ZERO
            };
            let _parked = super::Parked::new(self.host.engine());
            let host = self.host.clone();
            // A notice first; then an execution waiting for this run's slot
            // ends the lingering early.
            let noticed = tokio::select! {
                biased;
                noticed = tokio::time::timeout(linger, self.inbox.recv()) => noticed,
                () = host.run_slot_wanted() => Ok(None),
            };
            return match noticed {
                Ok(Some(notice)) => {
                    self.take_notice(notice);
                    Ok(())
                }
                _ => Err(Interrupt::Suspend {
                    wake_at_ms: wake_at,
                }
                .into()),
            };
        }
        let sleep = async {
            match wake_at {
                Some(at) => crate::clock::sleep_until_ms(at).await,
                None => std::future::pending().await,
            }
        };
        let mut tasks: Vec<(usize, &mut JoinHandle<ActivityOutcome>)> = Vec::new();
        for (i, op) in self.ops.iter_mut().enumerate() {
            if let Op::Activity {
                task: Some(t),
                outcome: None,
                ..
            } = op
                && handles.contains(&(i as u32))
            {
                tasks.push((i, t));
            }
        }
        let finished = async {
            if tasks.is_empty() {
                std::future::pending().await
            } else {
                let (joined, _, _) = select_all(
                    tasks
                        .into_iter()
                        .map(|(i, t)| Box::pin(async move { (i, t.await) })),
                )
                .await;
                joined
            }
        };
        let let_go: Vec<&mut JoinHandle<ActivityOutcome>> = self.let_go.iter_mut().collect();
        // One let go ending may let the run leave memory: look again.
        let let_go_ended = async {
            if let_go.is_empty() {
                std::future::pending().await
            } else {
                select_all(
                    let_go
                        .into_iter()
                        .map(|t| Box::pin(async move { drop(t.await) })),
                )
                .await;
            }
        };
        let _parked = super::Parked::new(self.host.engine());
        let woke = tokio::select! {
            _ = sleep => None,
            joined = finished => Some(Ok(joined)),
            notice = self.inbox.recv() => notice.map(Err),
            () = let_go_ended => None,
        };
        match woke {
            Some(Ok((i, task))) => {
                let ended = joined(task)?;
                if let Op::Activity { outcome, .. } = &mut self.ops[i] {
                    *outcome = Some(ended);
                }
            }
            Some(Err(notice)) => self.take_notice(notice),
            None => {}
        }
        Ok(())
    }
}
