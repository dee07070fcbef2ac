//! What each write means, over the store's transaction primitives: the same
//! for every backend.

use super::*;
use crate::clock::now_ms;
use crate::journal::Event;
use crate::store::{RunChange, Tx};
use anyhow::bail;
use serde_json::json;

/// Apply one op inside `tx`.
pub(super) async fn apply(tx: &mut dyn Tx, op: &WriteOp) -> anyhow::Result<WriteOutcome> {
    match op {
        WriteOp::CreateRun { run, policy } => start_run(tx, run, *policy).await,
        WriteOp::Append {
            run_id,
            lease,
            events,
            effects,
            update,
        } => {
            if let Some(lease) = lease {
                tx.fence(*lease).await?;
            }
            tx.append(run_id, events).await?;
            let mut touched = Vec::new();
            for effect in effects {
                apply_effect(tx, run_id, effect, &mut touched).await?;
            }
            if let Some(update) = update {
                apply_update(tx, run_id, update, &mut touched).await?;
            }
            Ok(WriteOutcome::Appended(touched))
        }
        WriteOp::Signal {
            target,
            name,
            payload,
            start,
            request_id,
        } => {
            signal(
                tx,
                target,
                name,
                payload,
                start.as_ref(),
                request_id.as_deref(),
            )
            .await
        }
        WriteOp::RequestCancel { run_id } => request_cancel(tx, run_id).await,
        WriteOp::Reset {
            run,
            events,
            signals,
            from,
            from_event,
            move_pending,
        } => {
            let created = match create_run(tx, run).await? {
                WriteOutcome::Created(created) => created,
                _ => {
                    return Ok(WriteOutcome::Refused(Refusal::IdTaken(format!(
                        "workflow id `{}` is held by an open run",
                        run.workflow_id
                    ))));
                }
            };
            tx.append(&run.run_id, &event_rows(events)?).await?;
            // Replay skips the attributes the kept events set: set them now.
            let mut attributes = serde_json::Map::new();
            for recorded in events {
                if let Event::SearchAttributesSet {
                    attributes: Value::Object(set),
                } = &recorded.event
                {
                    attributes.extend(set.clone());
                }
            }
            tx.set_attributes(&run.run_id, &attributes).await?;
            if *move_pending {
                tx.move_pending_signals(from, &run.run_id).await?;
            }
            for (name, payload) in signals {
                insert_signal(tx, &run.run_id, name, payload, None).await?;
            }
            tx.append(from, &event_rows(std::slice::from_ref(from_event))?)
                .await?;
            Ok(WriteOutcome::Created(created))
        }
    }
}

/// A start under the workflow id's policy: an open run holding the id is
/// answered (or the start refused); closed runs that had it may forbid
/// reusing it. Terminating an open run first is the runtime's to do.
async fn start_run(
    tx: &mut dyn Tx,
    new: &NewRun,
    policy: IdPolicy,
) -> anyhow::Result<WriteOutcome> {
    if let Some(open) = tx.open_run(&new.namespace, &new.workflow_id).await? {
        return Ok(match policy.conflict {
            IdConflict::Fail | IdConflict::TerminateExisting => {
                WriteOutcome::Refused(Refusal::IdTaken(format!(
                    "workflow id `{}` is held by open run {}",
                    new.workflow_id, open.run_id
                )))
            }
            IdConflict::UseExisting => WriteOutcome::Existing(open),
        });
    }
    if policy.reuse != IdReuse::AllowDuplicate
        && let Some(last) = tx.last_run(&new.namespace, &new.workflow_id).await?
    {
        let refused = match policy.reuse {
            IdReuse::RejectDuplicate => true,
            _ => last.status == RunStatus::Completed,
        };
        if refused {
            return Ok(WriteOutcome::Refused(Refusal::IdTaken(format!(
                "workflow id `{}` was used by run {} ({}) and its reuse policy refuses another",
                new.workflow_id, last.run_id, last.status
            ))));
        }
    }
    create_run(tx, new).await
}

/// A workflow id names at most one open run: if one holds it, that one is
/// the answer.
async fn create_run(tx: &mut dyn Tx, new: &NewRun) -> anyhow::Result<WriteOutcome> {
    if let Some(existing) = tx.open_run(&new.namespace, &new.workflow_id).await? {
        return Ok(WriteOutcome::Existing(existing));
    }
    tx.insert_run(new).await?;
    tx.append(&new.run_id, &event_rows(&[new.started()])?)
        .await?;
    Ok(WriteOutcome::Created(new.record()))
}

async fn insert_signal(
    tx: &mut dyn Tx,
    run_id: &str,
    name: &str,
    payload: &Value,
    request_id: Option<&str>,
) -> anyhow::Result<Signal> {
    let at_ms = now_ms();
    let id = tx
        .insert_signal(run_id, name, payload, request_id, at_ms)
        .await?;
    Ok(Signal {
        id,
        run_id: run_id.to_string(),
        name: name.to_string(),
        payload: payload.clone(),
        at_ms,
    })
}

/// A repeated request id answers the signal it delivered. Otherwise find
/// the run (creating it with `start` when none is open: signal-with-start)
/// and queue the signal for it.
async fn signal(
    tx: &mut dyn Tx,
    target: &SignalTarget,
    name: &str,
    payload: &Value,
    start: Option<&NewRun>,
    request_id: Option<&str>,
) -> anyhow::Result<WriteOutcome> {
    if let Some(request_id) = request_id
        && let Some(signal) = tx.signal_by_request(request_id).await?
    {
        return Ok(WriteOutcome::Signalled {
            signal,
            created: false,
            duplicate: true,
        });
    }
    let (found, what) = match target {
        SignalTarget::Run(id) => (tx.run(id).await?, format!("run `{id}`")),
        SignalTarget::Workflow {
            namespace,
            workflow_id,
        } => (
            tx.open_run(namespace, workflow_id).await?,
            format!("workflow id `{workflow_id}`"),
        ),
    };
    let (run, created) = match (found, start) {
        (Some(run), _) if run.status.is_open() => (run, false),
        (Some(run), None) => {
            return Ok(WriteOutcome::Refused(Refusal::NotOpen(format!(
                "run {} has ended ({}); it takes no more signals",
                run.run_id, run.status
            ))));
        }
        (_, Some(new)) => match create_run(tx, new).await? {
            WriteOutcome::Created(run) => (run, true),
            WriteOutcome::Existing(run) => (run, false),
            other => bail!("unexpected {other:?}"),
        },
        (None, None) => {
            return Ok(WriteOutcome::Refused(Refusal::NotFound(format!(
                "no open run with {what}"
            ))));
        }
    };
    let signal = insert_signal(tx, &run.run_id, name, payload, request_id).await?;
    Ok(WriteOutcome::Signalled {
        signal,
        created,
        duplicate: false,
    })
}

/// A running run is asked to cancel (it runs its cleanup); a stuck one
/// cannot execute its cleanup, so it ends at once.
async fn request_cancel(tx: &mut dyn Tx, run_id: &str) -> anyhow::Result<WriteOutcome> {
    let Some(run) = tx.run(run_id).await? else {
        return Ok(WriteOutcome::Refused(Refusal::NotFound(format!(
            "no run `{run_id}`"
        ))));
    };
    let now = now_ms();
    let change = match run.status {
        RunStatus::Running => RunChange {
            cancel_requested: Some(true),
            updated_at_ms: Some(now),
            ..RunChange::default()
        },
        RunStatus::Stuck => RunChange {
            status: Some(RunStatus::Cancelled),
            cancel_requested: Some(true),
            updated_at_ms: Some(now),
            ended_at_ms: Some(Some(now)),
            idle: Some(false),
            wake_at_ms: Some(None),
            ..RunChange::default()
        },
        status => {
            return Ok(WriteOutcome::Refused(Refusal::NotOpen(format!(
                "run {run_id} has already ended ({status})"
            ))));
        }
    };
    tx.update_run(run_id, &change, false).await?;
    let run = tx.run(run_id).await?.expect("still there");
    Ok(WriteOutcome::CancelRequested(run))
}

async fn apply_effect(
    tx: &mut dyn Tx,
    run_id: &str,
    effect: &Effect,
    touched: &mut Vec<Touched>,
) -> anyhow::Result<()> {
    match effect {
        Effect::CreateRun(new) => match create_run(tx, new).await? {
            WriteOutcome::Created(run) => touched.push(Touched::Created(run.run_id)),
            _ => bail!("workflow id `{}` is held by an open run", new.workflow_id),
        },
        Effect::RequestCancel { run_id: target } => {
            if let WriteOutcome::CancelRequested(run) = request_cancel(tx, target).await? {
                touched.push(Touched::CancelRequested {
                    run_id: run.run_id,
                    status: run.status,
                });
            }
        }
        Effect::Signal {
            run_id: target,
            name,
            payload,
        } => {
            let signal = insert_signal(tx, target, name, payload, None).await?;
            touched.push(Touched::Signalled(signal));
        }
        Effect::SignalWithStart {
            start,
            name,
            payload,
        } => {
            let target = SignalTarget::Workflow {
                namespace: start.namespace.clone(),
                workflow_id: start.workflow_id.clone(),
            };
            match signal(tx, &target, name, payload, Some(start), None).await? {
                WriteOutcome::Signalled {
                    signal, created, ..
                } => {
                    if created {
                        touched.push(Touched::Created(signal.run_id.clone()));
                    }
                    touched.push(Touched::Signalled(signal));
                }
                other => bail!("signal-with-start: unexpected {other:?}"),
            }
        }
        Effect::Consume { signal_id, seq } => {
            if !tx.consume_signal(run_id, *signal_id, *seq).await? {
                bail!("signal {signal_id} of run {run_id} is not pending: it was consumed already");
            }
        }
        Effect::DecideUpdate {
            key,
            from,
            to,
            outcome,
        } => {
            if !tx
                .decide_update(key, *from, *to, run_id, outcome.as_ref())
                .await?
            {
                bail!(
                    "update {} of workflow id `{}` is not {}: it was taken already",
                    key.update_id,
                    key.workflow_id,
                    from.as_str()
                );
            }
            touched.push(Touched::UpdateDecided {
                key: key.clone(),
                answered: to.decided(),
            });
        }
        Effect::SetAttributes(attributes) => tx.set_attributes(run_id, attributes).await?,
        Effect::SetStatus(status) => {
            let change = RunChange {
                custom_status: Some(status.clone()),
                ..RunChange::default()
            };
            tx.update_run(run_id, &change, false).await?;
        }
    }
    Ok(())
}

/// The row of a run that ended (`stuck` is not an end).
fn ended(status: RunStatus, output: Option<Value>, error: Option<Value>, now: i64) -> RunChange {
    RunChange {
        status: Some(status),
        output: Some(output),
        error: Some(error),
        updated_at_ms: Some(now),
        ended_at_ms: Some((!status.is_open()).then_some(now)),
        wake_at_ms: Some(None),
        idle: Some(false),
        ..RunChange::default()
    }
}

async fn apply_update(
    tx: &mut dyn Tx,
    run_id: &str,
    update: &RunUpdate,
    touched: &mut Vec<Touched>,
) -> anyhow::Result<()> {
    let now = now_ms();
    let (change, only_open) = match update {
        RunUpdate::Suspended { wake_at_ms } => (
            RunChange {
                wake_at_ms: Some(*wake_at_ms),
                idle: Some(true),
                updated_at_ms: Some(now),
                ..RunChange::default()
            },
            false,
        ),
        RunUpdate::Ended {
            status,
            output,
            error,
        } => (ended(*status, output.clone(), error.clone(), now), false),
        RunUpdate::Awake => (
            RunChange {
                idle: Some(false),
                ..RunChange::default()
            },
            false,
        ),
        RunUpdate::Paused(paused) => (
            RunChange {
                paused: Some(*paused),
                updated_at_ms: Some(now),
                ..RunChange::default()
            },
            true,
        ),
        RunUpdate::Repin { digest, version } => (
            RunChange {
                pin: Some((digest.clone(), *version)),
                status: Some(RunStatus::Running),
                error: Some(None),
                updated_at_ms: Some(now),
                idle: Some(false),
                ..RunChange::default()
            },
            true,
        ),
        RunUpdate::ContinuedAsNew { next } => {
            // The output points at the next run: a parent awaiting this one
            // follows it there.
            let output = json!({ "continued_as": next.run_id });
            let change = RunChange {
                error: None,
                ..ended(RunStatus::Completed, Some(output), None, now)
            };
            if !tx.update_run(run_id, &change, false).await? {
                bail!("run {run_id} does not exist");
            }
            match create_run(tx, next).await? {
                WriteOutcome::Created(run) => touched.push(Touched::Created(run.run_id)),
                _ => bail!(
                    "workflow id `{}` is held by another open run",
                    next.workflow_id
                ),
            }
            tx.move_pending_signals(run_id, &next.run_id).await?;
            return Ok(());
        }
    };
    if !tx.update_run(run_id, &change, only_open).await? {
        bail!("run {run_id} does not exist");
    }
    Ok(())
}
