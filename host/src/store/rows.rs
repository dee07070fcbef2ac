//! Rows as records, for every SQL backend: the same columns decode the same
//! way whatever the database (integers are 64-bit, JSON is text).

use super::{ComponentVersion, RunChange, RunRecord};
use crate::journal::ParentClose;
use serde_json::Value;
use sqlx::{Database, Encode, QueryBuilder, Row, Type};

/// The column readers weft needs from a backend's rows.
pub(super) trait SqlRow {
    fn text(&self, name: &str) -> anyhow::Result<String>;
    fn text_opt(&self, name: &str) -> anyhow::Result<Option<String>>;
    fn int(&self, name: &str) -> anyhow::Result<i64>;
    fn int_opt(&self, name: &str) -> anyhow::Result<Option<i64>>;
}

macro_rules! sql_row {
    ($row:ty) => {
        impl SqlRow for $row {
            fn text(&self, name: &str) -> anyhow::Result<String> {
                Ok(self.try_get(name)?)
            }
            fn text_opt(&self, name: &str) -> anyhow::Result<Option<String>> {
                Ok(self.try_get(name)?)
            }
            fn int(&self, name: &str) -> anyhow::Result<i64> {
                Ok(self.try_get(name)?)
            }
            fn int_opt(&self, name: &str) -> anyhow::Result<Option<i64>> {
                Ok(self.try_get(name)?)
            }
        }
    };
}

sql_row!(sqlx::sqlite::SqliteRow);
sql_row!(sqlx::postgres::PgRow);

fn json(row: &impl SqlRow, name: &str) -> anyhow::Result<Option<Value>> {
    Ok(match row.text_opt(name)? {
        Some(t) => Some(serde_json::from_str(&t)?),
        None => None,
    })
}

pub(super) fn run_from_row(row: &impl SqlRow) -> anyhow::Result<RunRecord> {
    Ok(RunRecord {
        run_id: row.text("run_id")?,
        namespace: row.text("namespace")?,
        workflow_id: row.text("workflow_id")?,
        workflow: row.text("workflow")?,
        version: row.int("version")? as u32,
        digest: row.text("digest")?,
        input: json(row, "input")?.unwrap_or(Value::Null),
        status: row.text("status")?.parse()?,
        output: json(row, "output")?,
        error: json(row, "error")?,
        custom_status: json(row, "custom_status")?,
        parent_run_id: row.text_opt("parent_run_id")?,
        cancel_requested: row.int("cancel_requested")? != 0,
        deadline_at_ms: row.int_opt("deadline_at_ms")?,
        created_at_ms: row.int("created_at_ms")?,
        updated_at_ms: row.int("updated_at_ms")?,
        ended_at_ms: row.int_opt("ended_at_ms")?,
        wake_at_ms: row.int_opt("wake_at_ms")?,
        idle: row.int("idle")? != 0,
        paused: row.int("paused")? != 0,
    })
}

pub(super) fn version_from_row(row: &impl SqlRow) -> anyhow::Result<ComponentVersion> {
    Ok(ComponentVersion {
        namespace: row.text("namespace")?,
        name: row.text("name")?,
        kind: row.text("kind")?.parse()?,
        version: row.int("version")? as u32,
        digest: row.text("digest")?,
        size: row.int("size")? as u64,
        created_at_ms: row.int("created_at_ms")?,
        allow_http: serde_json::from_str(&row.text("allow_http")?)?,
    })
}

/// A select of versions, each joined with its component's size, followed
/// by `$rest` (its `WHERE …`).
macro_rules! select_versions {
    ($rest:literal) => {
        concat!(
            "SELECT v.namespace, v.name, v.version, v.digest, v.kind, \
             v.created_at_ms, v.allow_http, c.size \
             FROM component_versions v JOIN components c ON c.digest = v.digest ",
            $rest
        )
    };
}

/// The columns of a version, joined with its component's size.
pub(super) const VERSION_COLUMNS: &str = select_versions!("");
/// The newest version of a namespace's (`$1`) component (`$2`).
pub(super) const LATEST_VERSION: &str =
    select_versions!("WHERE v.namespace = $1 AND v.name = $2 ORDER BY v.version DESC LIMIT 1");
/// Version `$3` of a namespace's (`$1`) component (`$2`).
pub(super) const VERSION_NUMBERED: &str =
    select_versions!("WHERE v.namespace = $1 AND v.name = $2 AND v.version = $3");

/// A value to bind: weft's columns are text or 64-bit integers.
pub(super) enum Param {
    Text(Option<String>),
    Int(Option<i64>),
}

/// The columns `change` sets, with their values, in one place for every
/// backend's `UPDATE runs SET …`.
pub(super) fn run_change_columns(change: &RunChange) -> Vec<(&'static str, Param)> {
    let json = |v: &Option<Value>| Param::Text(v.as_ref().map(Value::to_string));
    let mut columns = Vec::new();
    if let Some(status) = change.status {
        columns.push(("status", Param::Text(Some(status.as_str().to_string()))));
    }
    if let Some(output) = &change.output {
        columns.push(("output", json(output)));
    }
    if let Some(error) = &change.error {
        columns.push(("error", json(error)));
    }
    if let Some(status) = &change.custom_status {
        columns.push(("custom_status", Param::Text(Some(status.to_string()))));
    }
    if let Some(ended) = change.ended_at_ms {
        columns.push(("ended_at_ms", Param::Int(ended)));
    }
    if let Some(wake) = change.wake_at_ms {
        columns.push(("wake_at_ms", Param::Int(wake)));
    }
    if let Some(idle) = change.idle {
        columns.push(("idle", Param::Int(Some(idle as i64))));
    }
    if let Some(cancel) = change.cancel_requested {
        columns.push(("cancel_requested", Param::Int(Some(cancel as i64))));
    }
    if let Some((digest, version)) = &change.pin {
        columns.push(("digest", Param::Text(Some(digest.clone()))));
        columns.push(("version", Param::Int(Some(*version as i64))));
    }
    if let Some(at) = change.updated_at_ms {
        columns.push(("updated_at_ms", Param::Int(Some(at))));
    }
    if let Some(paused) = change.paused {
        columns.push(("paused", Param::Int(Some(paused as i64))));
    }
    columns
}

/// `UPDATE runs SET …` for `change` (after the caller's `UPDATE runs SET`);
/// false when it changes nothing.
pub(super) fn push_run_change<'a, DB: Database>(
    qb: &mut QueryBuilder<'a, DB>,
    change: &RunChange,
) -> bool
where
    Option<String>: Encode<'a, DB> + Type<DB>,
    Option<i64>: Encode<'a, DB> + Type<DB>,
{
    let columns = run_change_columns(change);
    for (i, (column, value)) in columns.iter().enumerate() {
        qb.push(if i == 0 { " " } else { ", " })
            .push(column)
            .push(" = ");
        match value {
            Param::Text(v) => qb.push_bind(v.clone()),
            Param::Int(v) => qb.push_bind(*v),
        };
    }
    !columns.is_empty()
}

/// What an append whose (run, seq) is taken fails with, on every backend:
/// another writer advanced the run (see `Tx::append`).
pub(super) fn sequence_taken() -> anyhow::Error {
    anyhow::anyhow!(
        "journal append refused: an event with that sequence number exists \
         (another writer advanced this run)"
    )
}

/// A child's parent-close policy as stored.
pub(super) fn parent_close(text: Option<&str>) -> ParentClose {
    match text {
        Some("cancel") => ParentClose::Cancel,
        Some("terminate") => ParentClose::Terminate,
        _ => ParentClose::Abandon,
    }
}

/// Whether a running run resumes at start-up, and when: a run in memory or
/// with something new for it (poked) now; an idle one at its wake-up time;
/// an idle one waiting for an event not at all.
pub(super) fn resumes(
    (run_id, wake_at, idle, poked): (String, Option<i64>, i64, bool),
) -> Option<(String, Option<i64>)> {
    match (idle, poked, wake_at) {
        (0, _, _) | (_, true, _) => Some((run_id, None)),
        (_, _, Some(at)) => Some((run_id, Some(at))),
        _ => None,
    }
}
