//! Schedules: start a workflow at fixed intervals or at a cron
//! expression's times in a time zone, durably. Every node
//! looks for due schedules; a due time is claimed by a compare-and-set of
//! the schedule's state, and the run it starts has a workflow id made of
//! the schedule and the due time with duplicates rejected, so a due time
//! starts one run across crashes and nodes.

use super::cron::Cron;
use super::{Runtime, StartRun};
use crate::clock::now_ms;
use crate::error::{Error, Result, check_name};
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
/// Shortest interval.
const MIN_EVERY_MS: u64 = 1000;
/// Catch-up window of a schedule that sets none.
pub const DEFAULT_CATCHUP_MS: u64 = 60_000;

/// `1500`, `1500ms`, `30s`, `5m`, `2h`, `1d` as milliseconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let unit_ms = match unit {
        "" | "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms)
}

/// The first due time after `now` of an interval.
fn next_after(every_ms: u64, now: i64) -> i64 {
    let every = every_ms as i64;
    (now.div_euclid(every) + 1) * every
}

/// "Never": the next due time of a cron expression with none left.
const NEVER: i64 = i64::MAX;

/// The first due time of `spec` after `after` (checked when the schedule
/// was created, so a stored spec always parses).
fn due_after(spec: &ScheduleSpec, after: i64) -> i64 {
    match (&spec.every_ms, &spec.cron) {
        (Some(every), _) => next_after(*every, after),
        (None, Some(expression)) => Cron::parse(expression, spec.time_zone.as_deref())
            .ok()
            .and_then(|cron| cron.next_after(after))
            .unwrap_or(NEVER),
        (None, None) => NEVER,
    }
}

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
    pub paused: bool,
    pub note: String,
}

/// A schedule with its next due times, as the API shows it.
pub fn next_times(schedule: &Schedule, n: usize) -> Vec<i64> {
    if schedule.state.paused {
        return Vec::new();
    }
    let mut times = vec![schedule.state.next_due_ms];
    while times.len() < n && times[times.len() - 1] != NEVER {
        times.push(due_after(&schedule.spec, times[times.len() - 1]));
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
        let now = now_ms();
        let schedule = Schedule {
            namespace: new.namespace,
            id: new.id,
            workflow: new.workflow,
            input: new.input,
            spec: ScheduleSpec {
                every_ms,
                cron,
                time_zone: new.time_zone,
                overlap: new.overlap,
                catchup_window_ms,
            },
            state: ScheduleState {
                paused: new.paused,
                note: new.note,
                next_due_ms: NEVER,
                last_run_id: None,
                recent: Vec::new(),
            },
            revision: 0,
            created_at_ms: now,
        };
        let mut schedule = schedule;
        schedule.state.next_due_ms = due_after(&schedule.spec, now);
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
                state.next_due_ms = due_after(&schedule.spec, now_ms());
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
        let run_id = self
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

    async fn start_scheduled(
        self: &Arc<Self>,
        schedule: &Schedule,
        workflow_id: String,
    ) -> Result<String> {
        let (run, _) = self
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
        Ok(run.run_id)
    }

    /// Whether the schedule's last run is still open.
    async fn last_run_open(&self, state: &ScheduleState) -> Result<bool> {
        let Some(run_id) = &state.last_run_id else {
            return Ok(false);
        };
        let run = self.store.get_run(run_id).await?;
        Ok(run.is_some_and(|r| r.status.is_open()))
    }

    /// Act on the due times of one schedule up to `now`, each claimed by a
    /// compare-and-set; stops when another node got there first.
    async fn fire(self: &Arc<Self>, mut schedule: Schedule, now: i64) -> Result<()> {
        for _ in 0..MOST_PER_LOOK {
            let due = schedule.state.next_due_ms;
            if due > now {
                break;
            }
            let mut state = schedule.state.clone();
            let late = now - due;
            if late > schedule.spec.catchup_window_ms as i64 {
                // Every due time before the window opened is missed.
                let window_opened = now - schedule.spec.catchup_window_ms as i64;
                let (mut last_missed, mut count) = (due, 1);
                let mut next = due_after(&schedule.spec, due);
                while next < window_opened {
                    (last_missed, count) = (next, count + 1);
                    next = due_after(&schedule.spec, next);
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
                    },
                );
            } else if schedule.spec.overlap == Overlap::Skip && self.last_run_open(&state).await? {
                state.next_due_ms = due_after(&schedule.spec, due);
                push_recent(
                    &mut state,
                    ScheduleAction {
                        due_ms: Some(due),
                        at_ms: now,
                        outcome: "skipped".into(),
                        run_id: None,
                        count: None,
                    },
                );
            } else {
                let run_id = self
                    .start_scheduled(&schedule, format!("{}-{due}", schedule.id))
                    .await;
                let (outcome, run_id) = match run_id {
                    Ok(run_id) => ("started", Some(run_id)),
                    // Started and ended before a crash: acted on already.
                    Err(Error::Conflict(_)) => ("started", None),
                    Err(e) => return Err(e),
                };
                state.next_due_ms = due_after(&schedule.spec, due);
                if run_id.is_some() {
                    state.last_run_id = run_id.clone();
                }
                push_recent(
                    &mut state,
                    ScheduleAction {
                        due_ms: Some(due),
                        at_ms: now,
                        outcome: outcome.into(),
                        run_id,
                        count: None,
                    },
                );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("1500"), Some(1500));
        assert_eq!(parse_duration("250ms"), Some(250));
        assert_eq!(parse_duration("30s"), Some(30_000));
        assert_eq!(parse_duration("5m"), Some(300_000));
        assert_eq!(parse_duration("2h"), Some(7_200_000));
        assert_eq!(parse_duration("1d"), Some(86_400_000));
        for bad in ["", "s", "1.5s", "-1s", "10 parsecs", "5w"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn due_times_are_multiples_of_the_interval() {
        assert_eq!(next_after(1000, 12_345), 13_000);
        assert_eq!(next_after(1000, 13_000), 14_000);
        assert_eq!(next_after(60_000, 59_999), 60_000);
    }
}
