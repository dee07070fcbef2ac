//! Schedules: start a workflow at fixed intervals or at a cron
//! expression's times in a time zone, durably. Every node
//! looks for due schedules; a due time is claimed by a compare-and-set of
//! the schedule's state, and the run it starts has a workflow id made of
//! the schedule and the due time with duplicates rejected, so a due time
//! starts one run across crashes and nodes.

use super::cron::Cron;
use super::due::{Due, NEVER, jitter, parse_duration};
use super::{Runtime, StartRun};
use crate::clock::now_ms;
use crate::error::{Error, Result, check_name};
use crate::store::RunRecord;
use crate::store::{ComponentKind, Overlap, Schedule, ScheduleAction, ScheduleSpec, ScheduleState};
use crate::writes::{IdConflict, IdPolicy, IdReuse};
use serde_json::Value;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often each node looks for due schedules.
const LOOK_EVERY: Duration = Duration::from_millis(200);
/// Actions kept in a schedule's recent list.
const RECENT: usize = 10;
/// Due times acted on per schedule per look (the rest wait for the next).
const MOST_PER_LOOK: usize = 100;
/// Due times one backfill request may start.
const MOST_BACKFILLED: usize = 1000;
/// Shortest interval.
const MIN_EVERY_MS: u64 = 1000;
/// Catch-up window of a schedule that sets none.
pub const DEFAULT_CATCHUP_MS: u64 = 60_000;

/// What a new schedule is made of.
pub struct NewSchedule {
    pub namespace: String,
    pub id: String,
    pub workflow: String,
    pub input: Value,
    /// An interval (`30s`, `5m`, …) or else a cron expression.
    pub every: Option<String>,
    pub cron: Option<String>,
    pub time_zone: Option<String>,
    pub overlap: Overlap,
    pub catchup_window: Option<String>,
    pub jitter: Option<String>,
    pub paused: bool,
    pub note: String,
}

/// A schedule with its next due times, as the API shows it.
pub fn next_times(schedule: &Schedule, n: usize) -> Vec<i64> {
    if schedule.state.paused {
        return Vec::new();
    }
    let due = Due::of(&schedule.spec);
    let mut times = vec![schedule.state.next_due_ms];
    while times.len() < n && times[times.len() - 1] != NEVER {
        times.push(due.after(times[times.len() - 1]));
    }
    times.retain(|t| *t != NEVER);
    times
}

fn push_recent(state: &mut ScheduleState, action: ScheduleAction) {
    state.recent.push(action);
    let extra = state.recent.len().saturating_sub(RECENT);
    state.recent.drain(..extra);
}

impl Runtime {
    pub async fn create_schedule(&self, new: NewSchedule) -> Result<Schedule> {
        check_name("schedule", &new.id)?;
        self.namespace(&new.namespace).await?;
        let (every_ms, cron) = match (&new.every, &new.cron) {
            (Some(every), None) => {
                if new.time_zone.is_some() {
                    return Err(Error::BadRequest(
                        "a time zone applies to a cron schedule, not an interval".into(),
                    ));
                }
                let ms = parse_duration(every)
                    .filter(|ms| *ms >= MIN_EVERY_MS)
                    .ok_or_else(|| {
                        Error::BadRequest(format!(
                            "invalid interval `{every}`: use a duration of at least 1s, such as 30s, 5m, 2h or 1d"
                        ))
                    })?;
                (Some(ms), None)
            }
            (None, Some(expression)) => {
                Cron::parse(expression, new.time_zone.as_deref()).map_err(|e| {
                    Error::BadRequest(format!("invalid cron expression `{expression}`: {e}"))
                })?;
                (None, Some(expression.trim().to_string()))
            }
            _ => {
                return Err(Error::BadRequest(
                    "a schedule needs `every` (an interval such as 30s) or `cron` (such as \"0 9 * * mon-fri\"), not both".into(),
                ));
            }
        };
        let catchup_window_ms = match &new.catchup_window {
            None => DEFAULT_CATCHUP_MS,
            Some(text) => parse_duration(text).ok_or_else(|| {
                Error::BadRequest(format!(
                    "invalid catch-up window `{text}`: use a duration such as 0, 30s, 5m or 1d"
                ))
            })?,
        };
        if self
            .store
            .latest_version(&new.namespace, &new.workflow)
            .await?
            .is_none_or(|v| v.kind != ComponentKind::Workflow)
        {
            return Err(Error::NotFound(format!(
                "no workflow named `{}` is deployed in namespace `{}`",
                new.workflow, new.namespace
            )));
        }
        let jitter_ms = match &new.jitter {
            None => 0,
            Some(text) => parse_duration(text).ok_or_else(|| {
                Error::BadRequest(format!(
                    "invalid jitter `{text}`: use a duration such as 0, 500ms or 30s"
                ))
            })?,
        };
        let now = now_ms();
        let spec = ScheduleSpec {
            every_ms,
            cron,
            time_zone: new.time_zone,
            overlap: new.overlap,
            catchup_window_ms,
            jitter_ms,
        };
        let next_due_ms = Due::of(&spec).after(now);
        let schedule = Schedule {
            namespace: new.namespace,
            id: new.id,
            workflow: new.workflow,
            input: new.input,
            spec,
            state: ScheduleState {
                paused: new.paused,
                note: new.note,
                next_due_ms,
                last_run_id: None,
                recent: Vec::new(),
            },
            revision: 0,
            created_at_ms: now,
        };
        if !self.store.schedules().create_schedule(&schedule).await? {
            return Err(Error::Conflict(format!(
                "namespace `{}` already has a schedule `{}`",
                schedule.namespace, schedule.id
            )));
        }
        Ok(schedule)
    }

    pub async fn schedule(&self, namespace: &str, id: &str) -> Result<Schedule> {
        self.store
            .schedules()
            .schedule(namespace, id)
            .await?
            .ok_or_else(|| {
                Error::NotFound(format!("namespace `{namespace}` has no schedule `{id}`"))
            })
    }

    /// Change a schedule's state with `change` until the compare-and-set
    /// holds (another node or the scheduler may change it in between).
    async fn change_schedule(
        &self,
        namespace: &str,
        id: &str,
        change: impl Fn(&Schedule, &mut ScheduleState),
    ) -> Result<Schedule> {
        loop {
            let mut schedule = self.schedule(namespace, id).await?;
            let mut state = schedule.state.clone();
            change(&schedule, &mut state);
            if self
                .store
                .schedules()
                .set_schedule_state(namespace, id, schedule.revision, &state)
                .await?
            {
                schedule.state = state;
                schedule.revision += 1;
                return Ok(schedule);
            }
        }
    }

    /// Pause (no due time is acted on; those that pass are not caught up)
    /// or unpause, with a note.
    pub async fn pause_schedule(
        &self,
        namespace: &str,
        id: &str,
        paused: bool,
        note: &str,
    ) -> Result<Schedule> {
        self.change_schedule(namespace, id, |schedule, state| {
            if state.paused && !paused {
                state.next_due_ms = Due::of(&schedule.spec).after(now_ms());
            }
            state.paused = paused;
            state.note = note.to_string();
        })
        .await
    }

    /// Start the schedule's workflow now, whatever its state and overlap.
    pub async fn trigger_schedule(
        self: &Arc<Self>,
        namespace: &str,
        id: &str,
    ) -> Result<(Schedule, String)> {
        let schedule = self.schedule(namespace, id).await?;
        let at = now_ms();
        let (run_id, _) = self
            .start_scheduled(&schedule, format!("{id}-manual-{at}"))
            .await?;
        let schedule = self
            .change_schedule(namespace, id, |_, state| {
                state.last_run_id = Some(run_id.clone());
                push_recent(
                    state,
                    ScheduleAction {
                        due_ms: None,
                        at_ms: at,
                        outcome: "started".into(),
                        run_id: Some(run_id.clone()),
                        count: None,
                        message: None,
                    },
                );
            })
            .await?;
        Ok((schedule, run_id))
    }

    pub async fn delete_schedule(&self, namespace: &str, id: &str) -> Result<()> {
        if self
            .store
            .schedules()
            .delete_schedule(namespace, id)
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound(format!(
                "namespace `{namespace}` has no schedule `{id}`"
            )))
        }
    }

    /// Start a run of the schedule's workflow: its id, and whether it is
    /// new (a due time started before answers its open run).
    async fn start_scheduled(
        self: &Arc<Self>,
        schedule: &Schedule,
        workflow_id: String,
    ) -> Result<(String, bool)> {
        let (run, created) = self
            .start_run(StartRun {
                workflow: schedule.workflow.clone(),
                input: schedule.input.clone(),
                workflow_id: Some(workflow_id),
                version: None,
                namespace: Some(schedule.namespace.clone()),
                execution_timeout_ms: None,
                // A due time started before a crash answers its run; one
                // that already ended is not started again.
                policy: IdPolicy {
                    conflict: IdConflict::UseExisting,
                    reuse: IdReuse::RejectDuplicate,
                },
            })
            .await?;
        Ok((run.run_id, created))
    }

    /// The schedule's last run, if it still exists.
    async fn last_run(&self, state: &ScheduleState) -> Result<Option<RunRecord>> {
        Ok(match &state.last_run_id {
            Some(run_id) => self.store.get_run(run_id).await?,
            None => None,
        })
    }

    /// Act on the due times of one schedule up to `now`, each claimed by a
    /// compare-and-set; stops when another node got there first.
    async fn fire(self: &Arc<Self>, mut schedule: Schedule, now: i64) -> Result<()> {
        let due_of = Due::of(&schedule.spec);
        for _ in 0..MOST_PER_LOOK {
            let spec = &schedule.spec;
            let due = schedule.state.next_due_ms;
            let start_at = due.saturating_add(jitter(&schedule, due));
            if start_at > now {
                break;
            }
            let mut state = schedule.state.clone();
            let last = self.last_run(&state).await?;
            let open = last.as_ref().filter(|r| r.status.is_open());
            // A due time buffered behind a run is on time when that run ends.
            let ready_at = match (&last, spec.overlap) {
                (Some(run), Overlap::BufferOne) if open.is_none() => {
                    start_at.max(run.ended_at_ms.unwrap_or(start_at))
                }
                _ => start_at,
            };
            let record = |state: &mut ScheduleState, outcome: &str, run_id: Option<String>| {
                push_recent(
                    state,
                    ScheduleAction {
                        due_ms: Some(due),
                        at_ms: now,
                        outcome: outcome.into(),
                        run_id,
                        count: None,
                        message: None,
                    },
                )
            };
            let next = due_of.after(due);
            if now - ready_at > spec.catchup_window_ms as i64 {
                // Every due time before the window opened is missed.
                let window_opened = now - spec.catchup_window_ms as i64;
                let (mut last_missed, mut count, mut next) = (due, 1, next);
                while next < window_opened {
                    (last_missed, count) = (next, count + 1);
                    next = due_of.after(next);
                }
                state.next_due_ms = next;
                push_recent(
                    &mut state,
                    ScheduleAction {
                        due_ms: Some(last_missed),
                        at_ms: now,
                        outcome: "missed".into(),
                        run_id: None,
                        count: Some(count as u64),
                        message: None,
                    },
                );
            } else if open.is_some() && matches!(spec.overlap, Overlap::Skip | Overlap::BufferOne) {
                if spec.overlap == Overlap::BufferOne && next > now {
                    // The newest due time waits for the open run to end.
                    break;
                }
                state.next_due_ms = next;
                record(&mut state, "skipped", None);
            } else {
                if let (Some(open), Overlap::CancelPrevious) = (open, spec.overlap) {
                    match self.cancel(&open.run_id).await {
                        Ok(_) | Err(Error::Conflict(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                let started = self
                    .start_scheduled(&schedule, format!("{}-{due}", schedule.id))
                    .await;
                state.next_due_ms = next;
                match started {
                    Ok((run_id, _)) => {
                        state.last_run_id = Some(run_id.clone());
                        record(&mut state, "started", Some(run_id));
                    }
                    // Started and ended before a crash: acted on already.
                    Err(Error::Conflict(_)) => record(&mut state, "started", None),
                    // No retry helps (the workflow or namespace is gone, a
                    // quota or limit refuses it): the due time failed.
                    Err(
                        e @ (Error::NotFound(_)
                        | Error::BadRequest(_)
                        | Error::QuotaExceeded(_)
                        | Error::TooLarge(_)),
                    ) => {
                        tracing::warn!("schedule {}/{}: {e}", schedule.namespace, schedule.id);
                        record(&mut state, "failed", None);
                        if let Some(action) = state.recent.last_mut() {
                            action.message = Some(e.to_string());
                        }
                    }
                    // Transient (a start rate, the store): the next look retries.
                    Err(e) => return Err(e),
                }
            }
            if !self
                .store
                .schedules()
                .set_schedule_state(&schedule.namespace, &schedule.id, schedule.revision, &state)
                .await?
            {
                return Ok(());
            }
            schedule.state = state;
            schedule.revision += 1;
        }
        Ok(())
    }

    /// Start the runs of every due time from `from` to `to` (inclusive;
    /// at most [`MOST_BACKFILLED`]) that did not have its run: a past range
    /// the schedule did not cover (it did not exist, or was paused).
    pub async fn backfill_schedule(
        self: &Arc<Self>,
        namespace: &str,
        id: &str,
        from: i64,
        to: i64,
    ) -> Result<(Schedule, Vec<String>)> {
        if from > to {
            return Err(Error::BadRequest(
                "a backfill's `from` must not be after its `to`".into(),
            ));
        }
        let schedule = self.schedule(namespace, id).await?;
        // The range is counted before anything starts.
        let mut due_times = Vec::new();
        let due_of = Due::of(&schedule.spec);
        let mut due = due_of.after(from - 1);
        while due <= to {
            if due_times.len() == MOST_BACKFILLED {
                return Err(Error::BadRequest(format!(
                    "the range holds more than {MOST_BACKFILLED} due times: backfill it in parts"
                )));
            }
            due_times.push(due);
            due = due_of.after(due);
        }
        let mut started = Vec::new();
        for due in due_times {
            match self.start_scheduled(&schedule, format!("{id}-{due}")).await {
                Ok((run_id, true)) => started.push(run_id),
                // That due time had its run.
                Ok((_, false)) | Err(Error::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let at = now_ms();
        let n = started.len() as u64;
        let schedule = self
            .change_schedule(namespace, id, |_, state| {
                push_recent(
                    state,
                    ScheduleAction {
                        due_ms: Some(from),
                        at_ms: at,
                        outcome: "backfilled".into(),
                        run_id: None,
                        count: Some(n),
                        message: None,
                    },
                );
            })
            .await?;
        Ok((schedule, started))
    }
}

/// Look for due schedules until the runtime is gone.
pub async fn run(rt: Weak<Runtime>) {
    let mut every = tokio::time::interval(LOOK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(rt) = rt.upgrade() else { return };
        let now = now_ms();
        let due = match rt.store.schedules().due_schedules(now).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!("cannot read due schedules: {e:#}");
                continue;
            }
        };
        for schedule in due {
            let name = format!("{}/{}", schedule.namespace, schedule.id);
            if let Err(e) = rt.fire(schedule, now).await {
                tracing::warn!("schedule {name}: {e}");
            }
        }
    }
}
