//! Where a run is resumed: load its journal, instantiate its pinned
//! component, run it from the top (replaying, then live) and record how the
//! execution ended.

use super::exports::{Returned, WorkflowCode};
use super::host::Host;
use super::limits::Interrupt;
use super::ops::Notice;
use super::workflow::{RunFacts, WorkflowState};
use super::{Engine, Loaded, Prepared};
use crate::journal::{Cursor, ErrorInfo, Event, Recorded, RunEnd};
use crate::store::{NewRun, RunRecord, RunStatus, Signal, UpdateRecord};
use crate::writes::{RunUpdate, Sink};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::mpsc;
use wasmtime::Store;

/// How one execution of a run ended.
#[derive(Debug)]
pub enum Ending {
    /// Evicted until `wake_at_ms` or a notice; `notices_seen` tells the
    /// runtime whether one arrived while the run was leaving.
    Suspended {
        wake_at_ms: Option<i64>,
        notices_seen: u64,
    },
    /// Completed, failed, cancelled, timed out or stuck: nothing more to do
    /// until someone acts. `parent` is told.
    Ended { parent: Option<String> },
    /// Continued as a new run, which must start.
    Continued { next_run_id: String },
    /// A transient problem (storage, resources): try again later.
    Retry(String),
}

fn error_value(kind: &str, message: String, details: Option<String>) -> Value {
    let mut info = ErrorInfo::new(kind, message);
    info.details = details.filter(|d| !d.is_empty()).map(Value::String);
    serde_json::to_value(info).expect("error info serializes")
}

/// Record the end of a run that cannot even start: the run is `stuck` with
/// a diagnostic, never retried in a loop.
pub async fn stuck(sink: &Sink, message: String) -> Ending {
    let update = RunUpdate::Ended {
        status: RunStatus::Stuck,
        output: None,
        error: Some(error_value("stuck", message, None)),
    };
    match sink.commit(Some(update)).await {
        Ok(_) => Ending::Ended { parent: None },
        Err(e) => Ending::Retry(format!("{e:#}")),
    }
}

/// Execute `run` on `component` (the one it is pinned to): replay its
/// `journal`, then continue live; `pending` are the signals and updates
/// waiting for it.
pub async fn execute(
    host: Arc<dyn Host>,
    run: RunRecord,
    journal: Vec<Recorded>,
    pending: (Vec<Signal>, Vec<UpdateRecord>),
    component: Arc<Loaded>,
    inbox: mpsc::UnboundedReceiver<Notice>,
) -> Ending {
    let run_id = run.run_id.as_str();
    if journal.len() > 1 {
        tracing::info!(
            run = run_id,
            events = journal.len(),
            "resuming: replaying the journal"
        );
    }
    let replaying = journal.len() > 1;
    let cursor = Cursor::new(journal);
    let sink = host
        .sink(run_id, cursor.next_seq())
        .waking(run.idle)
        .in_namespace(&run.namespace);
    let Prepared::Workflow(pre) = &component.pre else {
        return stuck(&sink, format!("component {} is not a workflow", run.digest)).await;
    };

    let mut facts = RunFacts::from(&run);
    facts.limits = host.run_limits(&run.namespace).await;
    let (signals, updates) = pending;
    let mut state = WorkflowState::new(host.clone(), facts, cursor, sink.clone(), signals, inbox)
        .with_updates(updates);
    if replaying {
        state.replaying_since = Some(std::time::Instant::now());
    }
    let execution = {
        let (engine, pre, input) = (host.engine().clone(), pre.clone(), run.input.clone());
        async move { run_guest(&engine, &pre, state, &input).await }
    };
    let (mut store, result) = match host.engine().cpu.run(&run.namespace, execution).await {
        Ok(ran) => ran,
        Err(e) => return Ending::Retry(format!("cannot instantiate: {e:#}")),
    };
    let state = store.data_mut();
    // An update handed to the guest just before the end was gone on with.
    state.accept_undecided();
    let parent = run.parent_run_id.clone();
    let (event, update) = match result {
        Ok(returned) => {
            if let Err(divergence) = state.cursor.finish(&code_end(&returned)) {
                diverged(run_id, &divergence)
            } else {
                let max_output = state.run.limits.max_payload_bytes.unwrap_or(u64::MAX);
                match returned {
                    // What a workflow produces is held to the namespace's
                    // payload limit too, not only what arrives over HTTP.
                    Ok(text) if text.len() as u64 > max_output => failed(ErrorInfo::new(
                        weft_contract::kind::PAYLOAD_LIMIT,
                        format!(
                            "the output is {} bytes, over the namespace's max_payload_bytes ({max_output})",
                            text.len()
                        ),
                    )),
                    Ok(text) => {
                        let output = crate::journal::payload_value(&text);
                        (
                            Some(Event::Completed {
                                output: output.clone(),
                            }),
                            RunUpdate::Ended {
                                status: RunStatus::Completed,
                                output: Some(output),
                                error: None,
                            },
                        )
                    }
                    Err(info) => {
                        // After a delivered cancellation (or past the
                        // deadline), any error ends the run cancelled (timed out).
                        let past_deadline = run
                            .deadline_at_ms
                            .is_some_and(|d| crate::clock::now_ms() >= d);
                        let status = if state.cancel_delivered {
                            RunStatus::Cancelled
                        } else if state.deadline_delivered || past_deadline {
                            RunStatus::TimedOut
                        } else {
                            RunStatus::Failed
                        };
                        ended_with(status, info)
                    }
                }
            }
        }
        Err(trap) => match Interrupt::of(&trap) {
            Some(Interrupt::Suspend { wake_at_ms }) => {
                let wake_at_ms = *wake_at_ms;
                let notices_seen = state.notices_seen;
                return match sink.commit(Some(RunUpdate::Suspended { wake_at_ms })).await {
                    Ok(_) => Ending::Suspended {
                        wake_at_ms,
                        notices_seen,
                    },
                    Err(e) => Ending::Retry(format!("{e:#}")),
                };
            }
            Some(Interrupt::ContinueAsNew { input }) => {
                let end = RunEnd::ContinuedAsNew {
                    input: input.clone(),
                };
                if let Err(divergence) = state.cursor.finish(&end) {
                    diverged(run_id, &divergence)
                } else {
                    return continue_as_new(&*host, &run, &sink, input.clone()).await;
                }
            }
            Some(Interrupt::Diverged(divergence)) => diverged(run_id, divergence),
            Some(Interrupt::Storage(message)) => return Ending::Retry(message.clone()),
            Some(Interrupt::ReplayComplete) => {
                return Ending::Retry("a check ended an execution".into());
            }
            Some(limit @ Interrupt::JournalLimit(_)) => {
                failed(ErrorInfo::new("journal-limit", limit.to_string()))
            }
            Some(limit @ Interrupt::Spin(_)) => {
                failed(ErrorInfo::new("spin-limit", limit.to_string()))
            }
            Some(limit @ Interrupt::Memory { .. }) => {
                failed(ErrorInfo::new("memory-limit", limit.to_string()))
            }
            Some(limit @ Interrupt::DeadlineExceeded) => ended_with(
                RunStatus::TimedOut,
                ErrorInfo::new(weft_contract::kind::TIMED_OUT, limit.to_string()),
            ),
            None => failed(trap_error(&trap, &state.stderr())),
        },
    };
    if let Some(event) = event {
        sink.record(event);
    }
    let status = match &update {
        RunUpdate::Ended { status, .. } => Some(*status),
        _ => None,
    };
    match sink.commit(Some(update)).await {
        Ok(_) => {
            if let Some(status) = status {
                let lived = (crate::clock::now_ms() - run.created_at_ms).max(0) as u64;
                crate::metrics::observe(
                    &crate::metrics::metrics().run_durations,
                    &[&run.namespace, status.as_str()],
                    std::time::Duration::from_millis(lived),
                );
            }
            Ending::Ended { parent }
        }
        Err(e) => Ending::Retry(format!("{e:#}")),
    }
}

/// The end the code chose by returning from `run`.
pub(super) fn code_end(returned: &Result<String, ErrorInfo>) -> RunEnd {
    match returned {
        Ok(text) => RunEnd::Completed {
            output: crate::journal::payload_value(text),
        },
        Err(info) => RunEnd::Failed {
            error: info.clone(),
        },
    }
}

/// Instantiate `pre` with `state` (limits, epoch yielding) and run the
/// workflow from the top; `Err` only when it cannot be instantiated.
pub(super) async fn run_guest(
    engine: &Engine,
    code: &WorkflowCode,
    state: WorkflowState,
    input: &Value,
) -> wasmtime::Result<(Store<WorkflowState>, Returned)> {
    let mut store = Store::new(engine.wasm(), state);
    store.limiter(|s| &mut s.memory);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut ctx| ctx.data_mut().slice.tick());
    let instance = code.instantiate(&mut store).await?;
    let result = instance.run(&mut store, input.to_string()).await;
    Ok((store, result))
}

/// End `run` and start its next run under the same workflow id.
async fn continue_as_new(host: &dyn Host, run: &RunRecord, sink: &Sink, input: Value) -> Ending {
    let version = match host.latest_version(&run.namespace, &run.workflow).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            return stuck(
                sink,
                format!("workflow `{}` is no longer deployed", run.workflow),
            )
            .await;
        }
        Err(e) => return Ending::Retry(format!("{e:#}")),
    };
    let next = NewRun::of(
        &version,
        &run.namespace,
        Some(run.workflow_id.clone()),
        input.clone(),
    );
    let next_run_id = next.run_id.clone();
    sink.record(Event::ContinuedAsNew {
        input,
        next_run_id: next_run_id.clone(),
    });
    match sink.commit(Some(RunUpdate::ContinuedAsNew { next })).await {
        Ok(_) => Ending::Continued { next_run_id },
        Err(e) => Ending::Retry(format!("{e:#}")),
    }
}

/// A trap as a run error: the guest's panic message when it printed one,
/// the trap otherwise; the wasm backtrace goes in the details.
fn trap_error(trap: &wasmtime::Error, stderr: &str) -> ErrorInfo {
    let root = trap.root_cause().to_string();
    let panic = stderr
        .lines()
        .skip_while(|l| !l.contains("panicked at"))
        .nth(1)
        .filter(|_| stderr.contains("panicked at"));
    let message = match panic {
        Some(msg) => format!("the workflow panicked: {msg}"),
        None => format!("the workflow trapped: {root}"),
    };
    let mut error = ErrorInfo::new("trap", message);
    let mut details = format!("{trap:?}");
    if !stderr.is_empty() {
        details = format!("{stderr}\n\n{details}");
    }
    error.details = Some(Value::String(details));
    error
}

fn failed(error: ErrorInfo) -> (Option<Event>, RunUpdate) {
    ended_with(RunStatus::Failed, error)
}

fn ended_with(status: RunStatus, error: ErrorInfo) -> (Option<Event>, RunUpdate) {
    let value = serde_json::to_value(&error).expect("error info serializes");
    (
        Some(Event::Failed { error }),
        RunUpdate::Ended {
            status,
            output: None,
            error: Some(value),
        },
    )
}

fn diverged(run_id: &str, divergence: &crate::journal::Divergence) -> (Option<Event>, RunUpdate) {
    tracing::warn!(run = run_id, "run stuck: {divergence}");
    let error = json!({
        "kind": "nondeterminism",
        "message": divergence.to_string(),
        "details": divergence,
    });
    (
        None,
        RunUpdate::Ended {
            status: RunStatus::Stuck,
            output: None,
            error: Some(error),
        },
    )
}
