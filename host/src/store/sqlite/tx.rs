//! A write transaction on SQLite: the storage primitives of [`Tx`] on a
//! synchronous connection, so its statements run on the caller's thread
//! (the journal writer's own) instead of crossing to a connection's worker
//! thread and back for each; under load every such crossing waits for a
//! core, and every step of every run waits for the commit.

use super::super::*;
use super::connections::Connections;
use super::{OPEN_RUN, RUN_BY_ID};
use crate::store::rows::{Param, SqlRow, run_change_columns, run_from_row, sequence_taken};
use rusqlite::{Connection, OptionalExtension, ToSql, params};
use std::sync::Arc;

/// A write transaction on one of the writer's [`Connections`].
pub(super) struct SqliteTx {
    /// Taken until commit or drop, then given back.
    conn: Option<Connection>,
    home: Arc<Connections>,
}

impl SqliteTx {
    /// Begin a write transaction on one of `home`'s connections (waits for
    /// other writers, up to the busy timeout).
    pub(super) fn begin(home: &Arc<Connections>) -> anyhow::Result<SqliteTx> {
        let conn = home.take()?;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(SqliteTx {
            conn: Some(conn),
            home: home.clone(),
        })
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.home.give_back(conn);
        }
    }
}

impl SqlRow for rusqlite::Row<'_> {
    fn text(&self, name: &str) -> anyhow::Result<String> {
        Ok(self.get(name)?)
    }
    fn text_opt(&self, name: &str) -> anyhow::Result<Option<String>> {
        Ok(self.get(name)?)
    }
    fn int(&self, name: &str) -> anyhow::Result<i64> {
        Ok(self.get(name)?)
    }
    fn int_opt(&self, name: &str) -> anyhow::Result<Option<i64>> {
        Ok(self.get(name)?)
    }
}

impl ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Param::Text(v) => v.to_sql(),
            Param::Int(v) => v.to_sql(),
        }
    }
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

impl SqliteTx {
    fn conn(&self) -> &Connection {
        self.conn.as_ref().expect("an open transaction")
    }

    /// The first run `sql` selects with `params`.
    fn run_where(&self, sql: &str, params: &[&dyn ToSql]) -> anyhow::Result<Option<RunRecord>> {
        let mut stmt = self.conn().prepare_cached(sql)?;
        let mut rows = stmt.query(params)?;
        rows.next()?.map(run_from_row).transpose()
    }
}

#[async_trait]
impl Tx for SqliteTx {
    async fn run(&mut self, run_id: &str) -> anyhow::Result<Option<RunRecord>> {
        self.run_where(RUN_BY_ID, params![run_id])
    }

    async fn open_run(
        &mut self,
        namespace: &str,
        workflow_id: &str,
    ) -> anyhow::Result<Option<RunRecord>> {
        self.run_where(OPEN_RUN, params![namespace, workflow_id])
    }

    async fn last_run(
        &mut self,
        namespace: &str,
        workflow_id: &str,
    ) -> anyhow::Result<Option<RunRecord>> {
        self.run_where(
            "SELECT * FROM runs WHERE namespace = ? AND workflow_id = ? \
             ORDER BY created_at_ms DESC, run_id DESC LIMIT 1",
            params![namespace, workflow_id],
        )
    }

    async fn insert_run(&mut self, new: &NewRun) -> anyhow::Result<()> {
        let (parent, parent_close) = match &new.parent {
            Some((run, close)) => (Some(run.as_str()), Some(close.as_str())),
            None => (None, None),
        };
        self.conn()
            .prepare_cached(
                "INSERT INTO runs (run_id, namespace, workflow_id, workflow, version, digest, \
                 input, status, created_at_ms, updated_at_ms, parent_run_id, parent_close, \
                 deadline_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                new.run_id,
                new.namespace,
                new.workflow_id,
                new.workflow,
                new.version as i64,
                new.digest,
                new.input.to_string(),
                new.at_ms,
                new.at_ms,
                parent,
                parent_close,
                new.deadline_at_ms,
            ])?;
        Ok(())
    }

    async fn append(&mut self, run_id: &str, rows: &[EventRow]) -> anyhow::Result<()> {
        let mut stmt = self.conn().prepare_cached(
            "INSERT INTO events (run_id, seq, kind, digest, body, at_ms) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )?;
        for row in rows {
            stmt.execute(params![
                run_id,
                row.seq as i64,
                row.kind,
                row.digest,
                row.body,
                row.at_ms
            ])
            .map_err(|e| {
                if is_unique_violation(&e) {
                    sequence_taken()
                } else {
                    e.into()
                }
            })?;
        }
        Ok(())
    }

    async fn update_run(
        &mut self,
        run_id: &str,
        change: &RunChange,
        only_open: bool,
    ) -> anyhow::Result<bool> {
        let columns = run_change_columns(change);
        if columns.is_empty() {
            // Nothing to change: answer whether the row is there.
            return Ok(self
                .run(run_id)
                .await?
                .is_some_and(|r| !only_open || r.status.is_open()));
        }
        let set: Vec<String> = columns.iter().map(|(c, _)| format!("{c} = ?")).collect();
        let mut sql = format!("UPDATE runs SET {} WHERE run_id = ?", set.join(", "));
        if only_open {
            sql.push_str(" AND status IN ('running', 'stuck')");
        }
        let mut values: Vec<&dyn ToSql> = columns.iter().map(|(_, v)| v as &dyn ToSql).collect();
        values.push(&run_id);
        let changed = self.conn().prepare_cached(&sql)?.execute(&values[..])?;
        Ok(changed == 1)
    }

    async fn insert_signal(
        &mut self,
        run_id: &str,
        name: &str,
        payload: &Value,
        request_id: Option<&str>,
        at_ms: i64,
    ) -> anyhow::Result<i64> {
        Ok(self
            .conn()
            .prepare_cached(
                "INSERT INTO signals (run_id, name, payload, at_ms, request_id) \
                 VALUES (?, ?, ?, ?, ?) RETURNING id",
            )?
            .query_row(
                params![run_id, name, payload.to_string(), at_ms, request_id],
                |row| row.get(0),
            )?)
    }

    async fn signal_by_request(&mut self, request_id: &str) -> anyhow::Result<Option<Signal>> {
        let sent: Option<(i64, String, String, String, i64)> = self
            .conn()
            .prepare_cached(
                "SELECT id, run_id, name, payload, at_ms FROM signals WHERE request_id = ?",
            )?
            .query_row(params![request_id], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            })
            .optional()?;
        sent.map(|(id, run_id, name, payload, at_ms)| {
            Ok(Signal {
                id,
                run_id,
                name,
                payload: serde_json::from_str(&payload)?,
                at_ms,
            })
        })
        .transpose()
    }

    async fn consume_signal(
        &mut self,
        run_id: &str,
        signal_id: i64,
        seq: u64,
    ) -> anyhow::Result<bool> {
        let changed = self
            .conn()
            .prepare_cached(
                "UPDATE signals SET consumed_seq = ? \
                 WHERE id = ? AND run_id = ? AND consumed_seq IS NULL",
            )?
            .execute(params![seq as i64, signal_id, run_id])?;
        Ok(changed == 1)
    }

    async fn move_pending_signals(&mut self, from: &str, to: &str) -> anyhow::Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE signals SET run_id = ? WHERE run_id = ? AND consumed_seq IS NULL",
            )?
            .execute(params![to, from])?;
        Ok(())
    }

    async fn set_attributes(
        &mut self,
        run_id: &str,
        attributes: &serde_json::Map<String, Value>,
    ) -> anyhow::Result<()> {
        for (key, value) in attributes {
            if value.is_null() {
                self.conn()
                    .prepare_cached(crate::store::search::REMOVE_ATTRIBUTE)?
                    .execute(params![run_id, key])?;
                continue;
            }
            let (text, num, json) = crate::store::search::stored(value);
            self.conn()
                .prepare_cached(crate::store::search::SET_ATTRIBUTE)?
                .execute(params![run_id, key, text, num, json])?;
        }
        Ok(())
    }

    async fn decide_update(
        &mut self,
        key: &UpdateKey,
        from: UpdateState,
        to: UpdateState,
        run_id: &str,
        outcome: Option<&Value>,
    ) -> anyhow::Result<bool> {
        let changed = self
            .conn()
            .prepare_cached(crate::store::updates::DECIDE_UPDATE)?
            .execute(params![
                to.as_str(),
                run_id,
                outcome.map(Value::to_string),
                crate::clock::now_ms(),
                key.namespace,
                key.workflow_id,
                key.update_id,
                from.as_str()
            ])?;
        Ok(changed == 1)
    }

    async fn fence(&mut self, _lease: Lease) -> anyhow::Result<()> {
        // One node writes a SQLite file: nobody else can hold its shards.
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> anyhow::Result<()> {
        let conn = self.conn.take().expect("an open transaction");
        let committed = conn.execute_batch("COMMIT");
        self.home.give_back(conn);
        Ok(committed?)
    }
}
