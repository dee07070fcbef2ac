//! Where a run is resumed: load its journal, instantiate its pinned
//! component, run it from the top (replaying, then live) and record how the
//! execution ended.

use super::Prepared;
use super::limits::Interrupt;
use super::workflow::{RunFacts, WorkflowState};
use crate::journal::{Cursor, ErrorInfo, Event, Recorded, Sink};
use crate::scheduler::Runtime;
use crate::store::{RunRecord, RunStatus, RunUpdate};
use serde_json::{Value, json};
use std::sync::Arc;
use wasmtime::Store;

/// How one execution of a run ended.
#[derive(Debug)]
pub enum Ending {
    /// Evicted until its next timer.
    Suspended { wake_at_ms: i64 },
    /// Completed, failed or stuck: nothing more to do until someone acts.
    Ended,
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
async fn stuck(sink: &Sink, message: String) -> Ending {
    let update = RunUpdate::Ended {
        status: RunStatus::Stuck,
        output: None,
        error: Some(error_value("stuck", message, None)),
    };
    match sink.commit(Some(update)).await {
        Ok(()) => Ending::Ended,
        Err(e) => Ending::Retry(format!("{e:#}")),
    }
}

pub async fn execute(
    rt: Arc<Runtime>,
    run_id: &str,
    preloaded: Option<(RunRecord, Vec<Recorded>)>,
) -> Ending {
    let (run, journal) = match preloaded {
        Some(p) => p,
        None => {
            let run = match rt.store.get_run(run_id).await {
                Ok(Some(run)) if run.status == RunStatus::Running => run,
                Ok(_) => return Ending::Ended,
                Err(e) => return Ending::Retry(format!("{e:#}")),
            };
            match rt.store.journal(run_id).await {
                Ok(journal) => (run, journal),
                Err(e) => {
                    let sink = Sink::new(run_id, u64::MAX, rt.writer.clone());
                    return stuck(&sink, format!("the journal cannot be read: {e:#}")).await;
                }
            }
        }
    };
    if journal.len() > 1 {
        tracing::info!(
            run = run_id,
            events = journal.len(),
            "resuming: replaying the journal"
        );
    }
    let cursor = Cursor::new(journal);
    let sink = Sink::new(run_id, cursor.next_seq(), rt.writer.clone());
    let loaded = match rt.workflow_component(&run.digest).await {
        Ok(loaded) => loaded,
        Err(e) => {
            return stuck(
                &sink,
                format!("component {} cannot be loaded: {e:#}", run.digest),
            )
            .await;
        }
    };
    let Prepared::Workflow(pre) = &loaded.pre else {
        return stuck(&sink, format!("component {} is not a workflow", run.digest)).await;
    };

    let facts = RunFacts {
        run_id: run.run_id.clone(),
        workflow_id: run.workflow_id.clone(),
        workflow: run.workflow.clone(),
        version: run.version,
    };
    let state = WorkflowState::new(rt.clone(), facts, cursor, sink.clone());
    let mut store = Store::new(rt.engine.wasm(), state);
    store.limiter(|s| &mut s.memory);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|ctx| ctx.data().slice.tick());

    let instance = match pre.instantiate_async(&mut store).await {
        Ok(instance) => instance,
        Err(e) => return Ending::Retry(format!("cannot instantiate: {e:#}")),
    };
    let input = run.input.to_string();
    let result = instance.call_run(&mut store, &input).await;

    let state = store.data_mut();
    let (event, update) = match result {
        Ok(returned) => {
            let what = if returned.is_ok() {
                "the run's end (it completed)"
            } else {
                "the run's end (it failed)"
            };
            if let Err(divergence) = state.cursor().finish(what) {
                diverged(run_id, &divergence)
            } else {
                match returned {
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
                        let error: ErrorInfo = info.into();
                        failed(error)
                    }
                }
            }
        }
        Err(trap) => match Interrupt::of(&trap) {
            Some(Interrupt::Suspend { wake_at_ms }) => {
                let wake_at_ms = *wake_at_ms;
                return match sink.commit(Some(RunUpdate::Suspended { wake_at_ms })).await {
                    Ok(()) => Ending::Suspended { wake_at_ms },
                    Err(e) => Ending::Retry(format!("{e:#}")),
                };
            }
            Some(Interrupt::Diverged(divergence)) => diverged(run_id, divergence),
            Some(Interrupt::Storage(message)) => return Ending::Retry(message.clone()),
            Some(limit @ Interrupt::Spin(_)) => {
                failed(ErrorInfo::new("spin-limit", limit.to_string()))
            }
            Some(limit @ Interrupt::Memory { .. }) => {
                failed(ErrorInfo::new("memory-limit", limit.to_string()))
            }
            None => failed(trap_error(&trap, &state.stderr())),
        },
    };
    if let Some(event) = event {
        sink.record(event);
    }
    match sink.commit(Some(update)).await {
        Ok(()) => Ending::Ended,
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
    let value = serde_json::to_value(&error).expect("error info serializes");
    (
        Some(Event::Failed { error }),
        RunUpdate::Ended {
            status: RunStatus::Failed,
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
