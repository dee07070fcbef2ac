//! The write side of the batch transaction: creating runs, signals,
//! cancellation, and what a journal append carries (effects, run updates).

use super::super::*;
use super::run_from_row;
use anyhow::bail;
use sqlx::{Sqlite, Transaction};

pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

pub(super) async fn create_run(
    tx: &mut Transaction<'_, Sqlite>,
    new: &NewRun,
) -> anyhow::Result<WriteOutcome> {
    if let Some(existing) = open_run_in(tx, &new.namespace, &new.workflow_id).await? {
        return Ok(WriteOutcome::Existing(existing));
    }
    let (parent, parent_close) = match &new.parent {
        Some((run, close)) => (Some(run.as_str()), Some(close.as_str())),
        None => (None, None),
    };
    sqlx::query(
        "INSERT INTO runs (run_id, namespace, workflow_id, workflow, version, digest, input, \
         status, created_at_ms, updated_at_ms, parent_run_id, parent_close, deadline_at_ms) \
         VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)",
    )
    .bind(&new.run_id)
    .bind(&new.namespace)
    .bind(&new.workflow_id)
    .bind(&new.workflow)
    .bind(new.version as i64)
    .bind(&new.digest)
    .bind(new.input.to_string())
    .bind(new.at_ms)
    .bind(new.at_ms)
    .bind(parent)
    .bind(parent_close)
    .bind(new.deadline_at_ms)
    .execute(&mut **tx)
    .await?;
    let started = new.started();
    sqlx::query(
        "INSERT INTO events (run_id, seq, kind, digest, body, at_ms) VALUES (?, 0, ?, NULL, ?, ?)",
    )
    .bind(&new.run_id)
    .bind(started.event.kind())
    .bind(serde_json::to_string(&started.event)?)
    .bind(new.at_ms)
    .execute(&mut **tx)
    .await?;
    Ok(WriteOutcome::Created(new.record()))
}

async fn open_run_in(
    tx: &mut Transaction<'_, Sqlite>,
    namespace: &str,
    workflow_id: &str,
) -> anyhow::Result<Option<RunRecord>> {
    let row = sqlx::query(
        "SELECT * FROM runs WHERE namespace = ? AND workflow_id = ? AND status IN ('running', 'stuck')",
    )
    .bind(namespace)
    .bind(workflow_id)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(run_from_row).transpose()
}

async fn run_in(
    tx: &mut Transaction<'_, Sqlite>,
    run_id: &str,
) -> anyhow::Result<Option<RunRecord>> {
    let row = sqlx::query("SELECT * FROM runs WHERE run_id = ?")
        .bind(run_id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(run_from_row).transpose()
}

async fn insert_signal(
    tx: &mut Transaction<'_, Sqlite>,
    run_id: &str,
    name: &str,
    payload: &Value,
    request_id: Option<&str>,
) -> anyhow::Result<Signal> {
    let at_ms = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO signals (run_id, name, payload, at_ms, request_id) VALUES (?, ?, ?, ?, ?) \
         RETURNING id",
    )
    .bind(run_id)
    .bind(name)
    .bind(payload.to_string())
    .bind(at_ms)
    .bind(request_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Signal {
        id,
        run_id: run_id.to_string(),
        name: name.to_string(),
        payload: payload.clone(),
        at_ms,
    })
}

/// Find the run (creating it with `start` when none is open), then queue
/// the signal for it.
pub(super) async fn signal(
    tx: &mut Transaction<'_, Sqlite>,
    target: &SignalTarget,
    name: &str,
    payload: &Value,
    start: Option<&NewRun>,
    request_id: Option<&str>,
) -> anyhow::Result<WriteOutcome> {
    if let Some(request_id) = request_id {
        let sent: Option<(i64, String, String, String, i64)> = sqlx::query_as(
            "SELECT id, run_id, name, payload, at_ms FROM signals WHERE request_id = ?",
        )
        .bind(request_id)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some((id, run_id, name, payload, at_ms)) = sent {
            let signal = Signal {
                id,
                run_id,
                name,
                payload: serde_json::from_str(&payload)?,
                at_ms,
            };
            return Ok(WriteOutcome::Signalled {
                signal,
                created: false,
                duplicate: true,
            });
        }
    }
    let (found, what) = match target {
        SignalTarget::Run(id) => (run_in(tx, id).await?, format!("run `{id}`")),
        SignalTarget::Workflow {
            namespace,
            workflow_id,
        } => (
            open_run_in(tx, namespace, workflow_id).await?,
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

pub(super) async fn request_cancel(
    tx: &mut Transaction<'_, Sqlite>,
    run_id: &str,
) -> anyhow::Result<WriteOutcome> {
    let Some(run) = run_in(tx, run_id).await? else {
        return Ok(WriteOutcome::Refused(Refusal::NotFound(format!(
            "no run `{run_id}`"
        ))));
    };
    match run.status {
        RunStatus::Running => {
            sqlx::query("UPDATE runs SET cancel_requested = 1, updated_at_ms = ? WHERE run_id = ?")
                .bind(now_ms())
                .bind(run_id)
                .execute(&mut **tx)
                .await?;
        }
        // A stuck run cannot execute its cleanup: it ends at once.
        RunStatus::Stuck => {
            let now = now_ms();
            sqlx::query(
                "UPDATE runs SET status = 'cancelled', cancel_requested = 1, updated_at_ms = ?, \
                 ended_at_ms = ?, idle = 0, wake_at_ms = NULL WHERE run_id = ?",
            )
            .bind(now)
            .bind(now)
            .bind(run_id)
            .execute(&mut **tx)
            .await?;
        }
        status => {
            return Ok(WriteOutcome::Refused(Refusal::NotOpen(format!(
                "run {run_id} has already ended ({status})"
            ))));
        }
    }
    let run = run_in(tx, run_id).await?.expect("still there");
    Ok(WriteOutcome::CancelRequested(run))
}

pub(super) async fn apply_effect(
    tx: &mut Transaction<'_, Sqlite>,
    run_id: &str,
    effect: &Effect,
    touched: &mut Vec<Touched>,
) -> anyhow::Result<()> {
    match effect {
        Effect::CreateRun(new) => match create_run(tx, new).await? {
            WriteOutcome::Created(run) => touched.push(Touched::Created(run.run_id)),
            _ => bail!("workflow id `{}` is held by an open run", new.workflow_id),
        },
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
            let done = sqlx::query(
                "UPDATE signals SET consumed_seq = ? WHERE id = ? AND run_id = ? AND consumed_seq IS NULL",
            )
            .bind(*seq as i64)
            .bind(signal_id)
            .bind(run_id)
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() != 1 {
                bail!("signal {signal_id} of run {run_id} is not pending: it was consumed already");
            }
        }
        Effect::SetStatus(status) => {
            sqlx::query("UPDATE runs SET custom_status = ? WHERE run_id = ?")
                .bind(status.to_string())
                .bind(run_id)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

pub(super) async fn apply_update(
    tx: &mut Transaction<'_, Sqlite>,
    run_id: &str,
    update: &RunUpdate,
    touched: &mut Vec<Touched>,
) -> anyhow::Result<()> {
    let now = now_ms();
    let done = match update {
        RunUpdate::Suspended { wake_at_ms } => {
            sqlx::query(
                "UPDATE runs SET wake_at_ms = ?, idle = 1, updated_at_ms = ? WHERE run_id = ?",
            )
            .bind(wake_at_ms)
            .bind(now)
            .bind(run_id)
            .execute(&mut **tx)
            .await?
        }
        RunUpdate::Ended {
            status,
            output,
            error,
        } => {
            let ended = (!status.is_open()).then_some(now);
            sqlx::query(
                "UPDATE runs SET status = ?, output = ?, error = ?, updated_at_ms = ?, \
                 ended_at_ms = ?, wake_at_ms = NULL, idle = 0 WHERE run_id = ?",
            )
            .bind(status.as_str())
            .bind(output.as_ref().map(|v| v.to_string()))
            .bind(error.as_ref().map(|v| v.to_string()))
            .bind(now)
            .bind(ended)
            .bind(run_id)
            .execute(&mut **tx)
            .await?
        }
        RunUpdate::Awake => {
            sqlx::query("UPDATE runs SET idle = 0 WHERE run_id = ?")
                .bind(run_id)
                .execute(&mut **tx)
                .await?
        }
        RunUpdate::Repin { digest, version } => {
            sqlx::query(
                "UPDATE runs SET digest = ?, version = ?, status = 'running', error = NULL, \
                 updated_at_ms = ?, idle = 0 WHERE run_id = ? AND status IN ('running', 'stuck')",
            )
            .bind(digest)
            .bind(*version as i64)
            .bind(now)
            .bind(run_id)
            .execute(&mut **tx)
            .await?
        }
        RunUpdate::ContinuedAsNew { next } => {
            let output = serde_json::json!({ "continued_as": next.run_id });
            let done = sqlx::query(
                "UPDATE runs SET status = 'completed', output = ?, updated_at_ms = ?, \
                 ended_at_ms = ?, wake_at_ms = NULL, idle = 0 WHERE run_id = ?",
            )
            .bind(output.to_string())
            .bind(now)
            .bind(now)
            .bind(run_id)
            .execute(&mut **tx)
            .await?;
            match create_run(tx, next).await? {
                WriteOutcome::Created(run) => touched.push(Touched::Created(run.run_id)),
                _ => bail!(
                    "workflow id `{}` is held by another open run",
                    next.workflow_id
                ),
            }
            sqlx::query("UPDATE signals SET run_id = ? WHERE run_id = ? AND consumed_seq IS NULL")
                .bind(&next.run_id)
                .bind(run_id)
                .execute(&mut **tx)
                .await?;
            done
        }
    };
    if done.rows_affected() != 1 {
        bail!("run {run_id} does not exist");
    }
    Ok(())
}
