//! What a store shared by several nodes offers for coordinating them:
//! which node is alive, which node drives which shard (in which epoch),
//! and messages between nodes. SQLite has one node and offers none of it.
//!
//! Runs are grouped in [`SHARDS`] virtual shards by their id; a node
//! leases shards, not runs, so keeping 100k open runs owned costs one
//! heartbeat row a node, whatever the number of runs.

use async_trait::async_trait;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

/// Virtual shards. Fixed: a run's shard is a function of its id.
pub const SHARDS: u32 = 1024;

/// The shard of a run: the first four bytes of the SHA-256 of its id (the
/// Postgres migration computes the same in SQL).
pub fn shard_of(run_id: &str) -> u32 {
    let d = Sha256::digest(run_id.as_bytes());
    u32::from_be_bytes([d[0], d[1], d[2], d[3]]) % SHARDS
}

/// A shard held by a node in one epoch. Every journal append of a run
/// carries its lease and is refused once the shard changed hands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lease {
    pub shard: u32,
    pub epoch: u64,
}

/// A node as the database sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeInfo {
    pub node_id: String,
    /// Where its HTTP API answers.
    pub url: String,
    pub heartbeat_at_ms: i64,
    /// Shards it holds.
    pub shards: u64,
}

#[async_trait]
pub trait Coordination: Send + Sync {
    /// Record that `node_id` (answering at `url`) is alive now, by the
    /// database's clock; answers the nodes alive within `ttl_ms`.
    async fn heartbeat(
        &self,
        node_id: &str,
        url: &str,
        ttl_ms: i64,
    ) -> anyhow::Result<Vec<NodeInfo>>;
    /// The shards `node_id` holds, with their epochs.
    async fn held(&self, node_id: &str) -> anyhow::Result<Vec<Lease>>;
    /// Take up to `n` shards that nobody alive within `ttl_ms` holds, each
    /// in a new epoch. Shards being written to are skipped, not waited for.
    async fn acquire(&self, node_id: &str, n: u32, ttl_ms: i64) -> anyhow::Result<Vec<Lease>>;
    /// Give shards up at once (a hand-over: the next node need not wait).
    async fn release(&self, node_id: &str, shards: &[u32]) -> anyhow::Result<()>;
    /// Leave the cluster: give every shard up and forget the node.
    async fn leave(&self, node_id: &str) -> anyhow::Result<()>;
    /// The node holding `shard`, if one does.
    async fn owner(&self, shard: u32) -> anyhow::Result<Option<NodeInfo>>;
    /// Send messages to every listening node (each is under 8000 bytes).
    async fn publish(&self, messages: &[String]) -> anyhow::Result<()>;
    /// The messages published from now on. `None` marks a gap: the
    /// connection dropped and messages may have been missed.
    async fn listen(&self) -> anyhow::Result<mpsc::UnboundedReceiver<Option<String>>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        // The same value as Postgres computes in migration 0002.
        assert_eq!(shard_of("abc"), 703);
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000 {
            seen.insert(shard_of(&format!("run-{i}")));
        }
        assert!(
            seen.len() > 1000,
            "10k ids fill most shards: {}",
            seen.len()
        );
    }
}
