//! A write transaction on SQLite: the storage primitives of [`Tx`], with
//! journal events buffered and inserted in a few statements at commit.

use super::super::*;
use super::open_run_in;
use crate::store::rows::{push_run_change, run_from_row};
use sqlx::{QueryBuilder, Sqlite, Transaction};

pub(super) struct SqliteTx {
    pub(super) tx: Transaction<'static, Sqlite>,
    /// Appended rows with their run, inserted at commit (one statement per
    /// 5000 rows).
    pub(super) events: Vec<(String, EventRow)>,
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[async_trait]
impl Tx for SqliteTx {
    async fn run(&mut self, run_id: &str) -> anyhow::Result<Option<RunRecord>> {
        let row = sqlx::query("SELECT * FROM runs WHERE run_id = ?")
            .bind(run_id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn open_run(
        &mut self,
        namespace: &str,
        workflow_id: &str,
    ) -> anyhow::Result<Option<RunRecord>> {
        open_run_in(&mut *self.tx, namespace, workflow_id).await
    }

    async fn last_run(
        &mut self,
        namespace: &str,
        workflow_id: &str,
    ) -> anyhow::Result<Option<RunRecord>> {
        let row = sqlx::query(
            "SELECT * FROM runs WHERE namespace = ? AND workflow_id = ? \
             ORDER BY created_at_ms DESC, run_id DESC LIMIT 1",
        )
        .bind(namespace)
        .bind(workflow_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn insert_run(&mut self, new: &NewRun) -> anyhow::Result<()> {
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
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn append(&mut self, run_id: &str, rows: Vec<EventRow>) -> anyhow::Result<()> {
        self.events
            .extend(rows.into_iter().map(|row| (run_id.to_string(), row)));
        Ok(())
    }

    async fn update_run(
        &mut self,
        run_id: &str,
        change: &RunChange,
        only_open: bool,
    ) -> anyhow::Result<bool> {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("UPDATE runs SET");
        if !push_run_change(&mut qb, change) {
            // Nothing to change: answer whether the row is there.
            return Ok(self
                .run(run_id)
                .await?
                .is_some_and(|r| !only_open || r.status.is_open()));
        }
        qb.push(" WHERE run_id = ").push_bind(run_id);
        if only_open {
            qb.push(" AND status IN ('running', 'stuck')");
        }
        let done = qb.build().execute(&mut *self.tx).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_signal(
        &mut self,
        run_id: &str,
        name: &str,
        payload: &Value,
        request_id: Option<&str>,
        at_ms: i64,
    ) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO signals (run_id, name, payload, at_ms, request_id) \
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(run_id)
        .bind(name)
        .bind(payload.to_string())
        .bind(at_ms)
        .bind(request_id)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    async fn signal_by_request(&mut self, request_id: &str) -> anyhow::Result<Option<Signal>> {
        let sent: Option<(i64, String, String, String, i64)> = sqlx::query_as(
            "SELECT id, run_id, name, payload, at_ms FROM signals WHERE request_id = ?",
        )
        .bind(request_id)
        .fetch_optional(&mut *self.tx)
        .await?;
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
        let done = sqlx::query(
            "UPDATE signals SET consumed_seq = ? \
             WHERE id = ? AND run_id = ? AND consumed_seq IS NULL",
        )
        .bind(seq as i64)
        .bind(signal_id)
        .bind(run_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn move_pending_signals(&mut self, from: &str, to: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE signals SET run_id = ? WHERE run_id = ? AND consumed_seq IS NULL")
            .bind(to)
            .bind(from)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn fence(&mut self, _lease: Lease) -> anyhow::Result<()> {
        // One node writes a SQLite file: nobody else can hold its shards.
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> anyhow::Result<()> {
        // 6 parameters a row, SQLite allows 32766 a statement.
        for chunk in self.events.chunks(5000) {
            let mut qb: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT INTO events (run_id, seq, kind, digest, body, at_ms) ");
            qb.push_values(chunk, |mut b, (run_id, row)| {
                b.push_bind(run_id.as_str())
                    .push_bind(row.seq as i64)
                    .push_bind(row.kind)
                    .push_bind(row.digest.as_deref())
                    .push_bind(row.body.as_str())
                    .push_bind(row.at_ms);
            });
            qb.build().execute(&mut *self.tx).await.map_err(|e| {
                if is_unique_violation(&e) {
                    anyhow::anyhow!(
                        "journal append refused: an event with that sequence number exists \
                         (another writer advanced this run)"
                    )
                } else {
                    e.into()
                }
            })?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}
