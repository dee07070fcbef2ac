//! The activity executor: attempts with exponential backoff, timeouts and
//! non-retryable error kinds. Failed attempts are journaled as they happen
//! (informational events), so a resumed run continues the count.

use super::Runtime;
use super::native::{Busy, NativeActivity, NativeCall};
use crate::clock::now_ms;
use crate::engine::activity::AttemptInfo;
use crate::engine::heartbeat::Heartbeats;
use crate::engine::{ActivityJob, ActivityOutcome, Loaded};
use crate::journal::{ErrorInfo, Event, Failure, TimeoutKind, payload_value};
use crate::store::ComponentKind;
use crate::writes::Sink;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument as _;
use weft_contract::kind;

/// `cloud/create-record` → (`cloud`, `create-record`); a bare name calls the
/// function named like its component.
fn split_name(name: &str) -> (&str, &str) {
    name.split_once('/').unwrap_or((name, name))
}

/// How often an activity waiting for its component looks again, for a
/// deploy made on another node (a deploy here wakes it at once).
const DEPLOY_POLL: Duration = Duration::from_secs(2);

/// What runs an attempt.
enum Runner {
    /// A Rust function registered in this process.
    Native(NativeActivity),
    /// A deployed component, compiled, with the hosts it may reach.
    Component(Arc<Loaded>, Arc<Vec<String>>),
}

/// What runs activity `scheduled` (component `name`): a native activity
/// registered under either name, or the newest deployed version of the
/// component; `None` while neither is there.
async fn runner(
    rt: &Runtime,
    namespace: &str,
    scheduled: &str,
    name: &str,
) -> Result<Option<Runner>, Failure> {
    if let Some(f) = rt.native_activity(scheduled) {
        return Ok(Some(Runner::Native(f)));
    }
    let internal =
        |e: anyhow::Error| Failure::Application(ErrorInfo::new("internal", format!("{e:#}")));
    let Some(version) = rt
        .latest_activity(namespace, name)
        .await
        .map_err(internal)?
    else {
        return Ok(None);
    };
    if version.kind != ComponentKind::Activity {
        return Err(Failure::Application(ErrorInfo::new(
            kind::NOT_AN_ACTIVITY,
            format!("`{name}` is a workflow, not an activity"),
        )));
    }
    let loaded = rt
        .component(&version.digest, ComponentKind::Activity)
        .await
        .map_err(internal)?;
    Ok(Some(Runner::Component(
        loaded,
        Arc::new(version.allow_http),
    )))
}

/// Wait for a deploy (here, or on another node within [`DEPLOY_POLL`]),
/// up to `deadline`. A run whose deadline passes aborts this task.
async fn await_deploy(deploys: &mut watch::Receiver<u64>, deadline: Option<i64>) {
    let mut wait = DEPLOY_POLL;
    if let Some(deadline) = deadline {
        wait = wait.min(Duration::from_millis((deadline - now_ms()).max(0) as u64));
    }
    let _ = tokio::time::timeout(wait, deploys.changed()).await;
}

/// The outcome of a cancelled activity after `attempts` attempts, or
/// `None` if it goes on: no further attempt, whatever the last one's error.
/// One told of its cancellation journals that it ended; an abandoned one
/// leaves no trace.
fn cancelled(job: &ActivityJob, sink: &Sink, attempts: u32) -> Option<ActivityOutcome> {
    let cancel = &job.cancel;
    if !cancel.requested_now() {
        return None;
    }
    if cancel.told() {
        sink.record_and_send(Event::ActivityCancelled { handle: job.handle });
    }
    Some(ActivityOutcome {
        attempts,
        result: Err(Failure::Cancelled),
    })
}

/// Run `job`'s attempts; `busy` counts it as under way (but not while it
/// waits on the clock or for a deploy).
pub async fn run_activity(
    rt: Arc<Runtime>,
    job: ActivityJob,
    sink: Sink,
    busy: Busy,
) -> ActivityOutcome {
    let mut busy = Some(busy);
    let policy = job.options.retry.clone().unwrap_or_default();
    let start_to_close = job
        .options
        .start_to_close_ms
        .map(Duration::from_millis)
        .unwrap_or(rt.config.activity_timeout);
    // The run's deadline needs no check here: when it passes, the
    // workflow's await is interrupted and this task aborted.
    let deadline = job
        .options
        .schedule_to_close_ms
        .map(|ms| job.scheduled_at_ms + ms as i64);
    // Only the first attempt can be late to start: later ones wait for
    // their backoff on purpose.
    let start_by = job
        .options
        .schedule_to_start_ms
        .filter(|_| job.prior_attempts == 0)
        .map(|ms| job.scheduled_at_ms + ms as i64);
    let heartbeat_timeout = job.options.heartbeat_timeout_ms.map(Duration::from_millis);
    let mut heartbeat_details = job.heartbeat_details.as_ref().map(|d| d.to_string());
    let (component_name, function) = split_name(&job.name);
    let mut attempt = job.prior_attempts + 1;
    if let Some(due) = job.next_attempt_at_ms {
        drop(busy.take());
        crate::clock::sleep_until_ms(due).await;
        busy = Some(Busy::new(&rt.tasks));
    }
    // Subscribed before the first look, so a deploy in between is seen.
    let mut deploys = rt.deploys.subscribe();
    let mut announced = false;
    loop {
        let heartbeats = Arc::new(Heartbeats::new(heartbeat_timeout, {
            let (sink, cancel, handle) = (sink.clone(), job.cancel.clone(), job.handle);
            move |details: String| {
                if !cancel.abandoned() {
                    sink.record_and_send(Event::ActivityHeartbeat {
                        handle,
                        attempt,
                        details: payload_value(&details),
                    })
                }
            }
        }));
        if let Some(outcome) = cancelled(&job, &sink, attempt - 1) {
            return outcome;
        }
        let mut timeout = (start_to_close, TimeoutKind::StartToClose);
        if let Some(deadline) = deadline {
            let left = Duration::from_millis((deadline - now_ms()).max(0) as u64);
            if left < timeout.0 {
                timeout = (left, TimeoutKind::ScheduleToClose);
            }
        }
        let result = match runner(&rt, &job.namespace, &job.name, component_name).await {
            Ok(None) => {
                let late = [
                    (
                        start_by,
                        TimeoutKind::ScheduleToStart,
                        job.options.schedule_to_start_ms,
                    ),
                    (
                        deadline,
                        TimeoutKind::ScheduleToClose,
                        job.options.schedule_to_close_ms,
                    ),
                ]
                .into_iter()
                .find(|(by, ..)| by.is_some_and(|d| now_ms() >= d));
                if let Some((_, which, ms)) = late {
                    return ActivityOutcome {
                        attempts: attempt - 1,
                        result: Err(Failure::timed_out(
                            which,
                            format!(
                                "the {} timeout of {} ms passed while no activity component \
                                 named `{component_name}` was deployed",
                                which.as_str(),
                                ms.unwrap_or_default()
                            ),
                        )),
                    };
                }
                if !announced {
                    announced = true;
                    sink.record_and_send(Event::ActivityAwaitingDeployment {
                        handle: job.handle,
                        component: component_name.to_string(),
                    });
                }
                drop(busy.take());
                tokio::select! {
                    () = await_deploy(&mut deploys, start_by.into_iter().chain(deadline).min()) => {}
                    () = job.cancel.requested() => {}
                }
                busy = Some(Busy::new(&rt.tasks));
                continue;
            }
            Ok(Some(Runner::Native(f))) => f(NativeCall {
                name: job.name.clone(),
                // The workflow's payload is JSON: the SDK wrote it.
                input: serde_json::from_str(&job.input).unwrap_or(serde_json::Value::Null),
                attempt,
                run_id: job.run_id.clone(),
                workflow_id: job.workflow_id.clone(),
                idempotency_key: job.idempotency_key.clone(),
            })
            .map_err(Failure::Application),
            Ok(Some(Runner::Component(loaded, allow_http))) => {
                let limits = rt.limits(&job.namespace).await.unwrap_or_default();
                let most = limits.max_concurrent_activities.map(|n| n as usize);
                let slot = rt.activity_slots.acquire_within(&job.namespace, most);
                let slot = match start_by.filter(|_| attempt == job.prior_attempts + 1) {
                    Some(by) => {
                        let left = Duration::from_millis((by - now_ms()).max(0) as u64);
                        tokio::time::timeout(left, slot).await.ok()
                    }
                    None => Some(slot.await),
                };
                let Some(_slot) = slot else {
                    return ActivityOutcome {
                        attempts: attempt - 1,
                        result: Err(Failure::timed_out(
                            TimeoutKind::ScheduleToStart,
                            format!(
                                "the schedule-to-start timeout of {} ms passed while the \
                                 namespace's activity slots were all taken",
                                job.options.schedule_to_start_ms.unwrap_or_default()
                            ),
                        )),
                    };
                };
                let info = AttemptInfo {
                    run_id: job.run_id.clone(),
                    namespace: job.namespace.clone(),
                    workflow_id: job.workflow_id.clone(),
                    activity: job.name.clone(),
                    function: function.to_string(),
                    attempt,
                    idempotency_key: job.idempotency_key.clone(),
                    allow_http,
                    memory_limit: limits.max_memory_bytes(),
                    heartbeat_details: heartbeat_details.clone(),
                    heartbeats: heartbeats.clone(),
                    cancel: job.cancel.clone(),
                };
                // A span per attempt (traced only when exported), inside
                // the activity's.
                let span = tracing::debug_span!("attempt", attempt);
                let invoke = rt
                    .engine
                    .invoke_activity(&loaded, info, &job.input, timeout)
                    .instrument(span);
                // Only an attempt with a heartbeat timeout is watched.
                let result = match heartbeat_timeout {
                    None => invoke.await,
                    Some(timeout) => tokio::select! {
                        result = invoke => result,
                        () = heartbeats.silent_for(timeout) => Err(Failure::timed_out(
                            TimeoutKind::Heartbeat,
                            format!(
                                "the attempt sent no heartbeat for its heartbeat timeout of {} ms",
                                timeout.as_millis()
                            ),
                        )),
                    },
                };
                // What an activity produces is held to the namespace's
                // payload limit too.
                let size = |output: &serde_json::Value| output.to_string().len() as u64;
                match (result, limits.max_payload_bytes) {
                    (Ok(output), Some(max)) if size(&output) > max => {
                        Err(Failure::Application(ErrorInfo::new(
                            kind::PAYLOAD_LIMIT,
                            format!(
                                "the output is {} bytes, over the namespace's max_payload_bytes ({max})",
                                size(&output)
                            ),
                        )))
                    }
                    (result, _) => result,
                }
            }
            Err(failure) => Err(failure),
        };
        let m = crate::metrics::metrics();
        let outcome = if result.is_ok() {
            "completed"
        } else {
            "failed"
        };
        let labels = [job.namespace.as_str(), component_name, function];
        m.activity_attempts
            .with_label_values(&[labels[0], labels[1], labels[2], outcome])
            .inc();
        if let Err(failure) = &result {
            m.activity_failures
                .with_label_values(&[labels[0], labels[1], labels[2], failure.kind()])
                .inc();
        }
        let failure = match result {
            Ok(output) => {
                return ActivityOutcome {
                    attempts: attempt,
                    result: Ok(output),
                };
            }
            Err(failure) => failure,
        };
        if let Some(outcome) = cancelled(&job, &sink, attempt) {
            return outcome;
        }
        let kind = failure.kind();
        let mut retry = !kind::NEVER_RETRY.contains(&kind) && policy.retries(&failure, attempt);
        let delay = policy.backoff_ms(attempt);
        let mut failure = failure;
        if retry
            && let Some(deadline) = deadline
            && now_ms() + delay as i64 >= deadline
        {
            retry = false;
            failure = Failure::timed_out(
                TimeoutKind::ScheduleToClose,
                format!(
                    "the schedule-to-close timeout of {} ms was reached after {attempt} \
                     attempt(s); last failure: {}: {}",
                    job.options.schedule_to_close_ms.unwrap_or_default(),
                    failure.kind(),
                    failure.message()
                ),
            );
        }
        if !retry {
            return ActivityOutcome {
                attempts: attempt,
                result: Err(failure),
            };
        }
        // The next attempt resumes from this one's last heartbeat, stored
        // first so a restart in the backoff resumes from it too.
        heartbeats.flush();
        if let Some(details) = heartbeats.latest() {
            heartbeat_details = Some(details);
        }
        sink.record_and_send(Event::ActivityAttemptFailed {
            handle: job.handle,
            attempt,
            failure,
            retry_in_ms: Some(delay),
        });
        drop(busy.take());
        tokio::select! {
            () = crate::clock::sleep(Duration::from_millis(delay)) => {}
            () = job.cancel.requested() => {}
        }
        busy = Some(Busy::new(&rt.tasks));
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_component_and_function() {
        assert_eq!(
            split_name("cloud/create-record"),
            ("cloud", "create-record")
        );
        assert_eq!(split_name("greet"), ("greet", "greet"));
    }
}
