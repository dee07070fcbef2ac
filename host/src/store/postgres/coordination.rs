//! Leases, liveness and messages between nodes, on Postgres: a `nodes`
//! row per node (its heartbeat is its leases' renewal), a `shard_leases`
//! row per shard (owner and epoch), and `LISTEN/NOTIFY` on one channel.

use super::PostgresStore;
use crate::store::{Coordination, Lease, NodeInfo};
use async_trait::async_trait;
use sqlx::postgres::PgListener;
use std::time::Duration;
use tokio::sync::mpsc;

/// The channel every node listens on.
const CHANNEL: &str = "weft";

/// Now, by the database's clock: nodes' clocks may disagree, its does not.
const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT";

fn leases(rows: Vec<(i64, i64)>) -> Vec<Lease> {
    rows.into_iter()
        .map(|(shard, epoch)| Lease {
            shard: shard as u32,
            epoch: epoch as u64,
        })
        .collect()
}

#[async_trait]
impl Coordination for PostgresStore {
    async fn heartbeat(
        &self,
        node_id: &str,
        url: &str,
        ttl_ms: i64,
    ) -> anyhow::Result<Vec<NodeInfo>> {
        sqlx::query(&format!(
            "INSERT INTO nodes (node_id, url, heartbeat_at_ms) VALUES ($1, $2, {NOW_MS}) \
             ON CONFLICT (node_id) DO UPDATE SET url = $2, heartbeat_at_ms = {NOW_MS}"
        ))
        .bind(node_id)
        .bind(url)
        .execute(&self.pool)
        .await?;
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(&format!(
            "SELECT n.node_id, n.url, n.heartbeat_at_ms, \
               (SELECT count(*) FROM shard_leases l WHERE l.owner = n.node_id) \
             FROM nodes n WHERE n.heartbeat_at_ms >= {NOW_MS} - $1 ORDER BY n.node_id"
        ))
        .bind(ttl_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(node_id, url, heartbeat_at_ms, shards)| NodeInfo {
                node_id,
                url,
                heartbeat_at_ms,
                shards: shards as u64,
            })
            .collect())
    }

    async fn held(&self, node_id: &str) -> anyhow::Result<Vec<Lease>> {
        let rows =
            sqlx::query_as("SELECT shard, epoch FROM shard_leases WHERE owner = $1 ORDER BY shard")
                .bind(node_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(leases(rows))
    }

    async fn acquire(&self, node_id: &str, n: u32, ttl_ms: i64) -> anyhow::Result<Vec<Lease>> {
        let rows = sqlx::query_as(&format!(
            "UPDATE shard_leases l SET owner = $1, epoch = l.epoch + 1 \
             WHERE l.shard IN ( \
               SELECT s.shard FROM shard_leases s LEFT JOIN nodes n ON n.node_id = s.owner \
               WHERE s.owner IS NULL OR n.node_id IS NULL OR n.heartbeat_at_ms < {NOW_MS} - $3 \
               ORDER BY s.shard LIMIT $2 FOR UPDATE OF s SKIP LOCKED) \
             RETURNING l.shard, l.epoch"
        ))
        .bind(node_id)
        .bind(n as i64)
        .bind(ttl_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(leases(rows))
    }

    async fn release(&self, node_id: &str, shards: &[u32]) -> anyhow::Result<()> {
        let shards: Vec<i64> = shards.iter().map(|&s| s as i64).collect();
        sqlx::query("UPDATE shard_leases SET owner = NULL WHERE owner = $1 AND shard = ANY($2)")
            .bind(node_id)
            .bind(shards)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn leave(&self, node_id: &str) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE shard_leases SET owner = NULL WHERE owner = $1")
            .bind(node_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM nodes WHERE node_id = $1")
            .bind(node_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn owner(&self, shard: u32) -> anyhow::Result<Option<NodeInfo>> {
        let row: Option<(String, String, i64)> = sqlx::query_as(
            "SELECT n.node_id, n.url, n.heartbeat_at_ms FROM shard_leases l \
             JOIN nodes n ON n.node_id = l.owner WHERE l.shard = $1",
        )
        .bind(shard as i64)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(node_id, url, heartbeat_at_ms)| NodeInfo {
            node_id,
            url,
            heartbeat_at_ms,
            shards: 0,
        }))
    }

    async fn publish(&self, messages: &[String]) -> anyhow::Result<()> {
        sqlx::query("SELECT pg_notify($1, m) FROM unnest($2::TEXT[]) AS m")
            .bind(CHANNEL)
            .bind(messages)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn listen(&self) -> anyhow::Result<mpsc::UnboundedReceiver<Option<String>>> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let message = match listener.try_recv().await {
                    Ok(Some(n)) => Some(n.payload().to_string()),
                    // The connection dropped; the next call reconnects.
                    Ok(None) => None,
                    Err(e) => {
                        tracing::warn!("listening for other nodes failed: {e}");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        None
                    }
                };
                if tx.send(message).is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }
}
