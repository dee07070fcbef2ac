//! A write transaction on Postgres: the storage primitives of [`Tx`], with
//! journal events buffered and inserted in a few statements at commit.

use super::super::*;
use super::open_run_in;
use crate::store::rows::{push_run_change, run_from_row, sequence_taken};
use sqlx::{Postgres, QueryBuilder, Transaction};

pub(super) struct PgTx {
    pub(super) tx: Transaction<'static, Postgres>,
    /// Appended rows with their run, inserted at commit (one statement per
    /// 5000 rows).
    pub(super) events: Vec<(String, EventRow)>,
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[async_trait]
impl Tx for PgTx {
    async fn run(&mut self, run_id: &str) -> anyhow::Result<Option<RunRecord>> {
        let row = sqlx::query("SELECT * FROM runs WHERE run_id = $1")
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
            "SELECT * FROM runs WHERE namespace = $1 AND workflow_id = $2 \
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
             status, created_at_ms, updated_at_ms, parent_run_id, parent_close, deadline_at_ms, \
             shard) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8, $9, $10, $11, $12, $13)",
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
        .bind(shard_of(&new.run_id) as i64)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn append(&mut self, run_id: &str, rows: &[EventRow]) -> anyhow::Result<()> {
        self.events
            .extend(rows.iter().map(|row| (run_id.to_string(), row.clone())));
        Ok(())
    }

    async fn update_run(
        &mut self,
        run_id: &str,
        change: &RunChange,
        only_open: bool,
    ) -> anyhow::Result<bool> {
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("UPDATE runs SET");
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
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
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
            "SELECT id, run_id, name, payload, at_ms FROM signals WHERE request_id = $1",
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
            "UPDATE signals SET consumed_seq = $1 \
             WHERE id = $2 AND run_id = $3 AND consumed_seq IS NULL",
        )
        .bind(seq as i64)
        .bind(signal_id)
        .bind(run_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_attributes(
        &mut self,
        run_id: &str,
        attributes: &serde_json::Map<String, Value>,
    ) -> anyhow::Result<()> {
        for (key, value) in attributes {
            if value.is_null() {
                sqlx::query(crate::store::search::REMOVE_ATTRIBUTE)
                    .bind(run_id)
                    .bind(key)
                    .execute(&mut *self.tx)
                    .await?;
                continue;
            }
            let (text, num, json) = crate::store::search::stored(value);
            sqlx::query(crate::store::search::SET_ATTRIBUTE)
                .bind(run_id)
                .bind(key)
                .bind(text)
                .bind(num)
                .bind(json)
                .execute(&mut *self.tx)
                .await?;
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
        let done = sqlx::query(crate::store::updates::DECIDE_UPDATE)
            .bind(to.as_str())
            .bind(run_id)
            .bind(outcome.map(Value::to_string))
            .bind(crate::clock::now_ms())
            .bind(&key.namespace)
            .bind(&key.workflow_id)
            .bind(&key.update_id)
            .bind(from.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn move_pending_signals(&mut self, from: &str, to: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE signals SET run_id = $1 WHERE run_id = $2 AND consumed_seq IS NULL")
            .bind(to)
            .bind(from)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn fence(&mut self, lease: Lease) -> anyhow::Result<()> {
        // FOR SHARE: a node taking the shard over (which bumps the epoch)
        // waits for this transaction, or skips the shard for now.
        let current: Option<i64> =
            sqlx::query_scalar("SELECT epoch FROM shard_leases WHERE shard = $1 FOR SHARE")
                .bind(lease.shard as i64)
                .fetch_optional(&mut *self.tx)
                .await?;
        // Epoch 0 is no lease: a shard no node ever took.
        if lease.epoch == 0 || current != Some(lease.epoch as i64) {
            anyhow::bail!(
                "fenced: shard {} is no longer held in epoch {} (now {}): another node drives its runs",
                lease.shard,
                lease.epoch,
                current.map_or("unknown".into(), |e| e.to_string())
            );
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> anyhow::Result<()> {
        // 6 parameters a row, Postgres allows 65535 a statement.
        for chunk in self.events.chunks(5000) {
            let mut qb: QueryBuilder<Postgres> =
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
                    sequence_taken()
                } else {
                    e.into()
                }
            })?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}
