//! Group commit: one task owns all writes made while runs execute. It drains
//! whatever is queued into one transaction, so a thousand runs waiting for
//! their step to be durable share one fsync.

use super::{WriteOp, WriteOutcome, rules};
use crate::store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

/// Upper bound of ops in one transaction.
const MAX_BATCH: usize = 2048;

/// Called with every committed outcome, in commit order, before anyone is
/// answered: the runtime tells runs about their signals here, so they see
/// them in arrival order.
pub type OnCommit = Box<dyn Fn(&WriteOutcome) + Send + Sync>;

struct Request {
    op: WriteOp,
    reply: Option<oneshot::Sender<anyhow::Result<WriteOutcome>>>,
}

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Request>,
    stats: Arc<Stats>,
}

/// What the writer did, for `/metrics`.
#[derive(Default)]
pub struct Stats {
    /// Transactions committed (one per batch, more when a batch is split).
    pub batches: AtomicU64,
    /// Ops written (appends, run creations, signals...).
    pub ops: AtomicU64,
    /// Ops refused (a fenced append, a storage error).
    pub failed: AtomicU64,
}

impl Writer {
    pub fn spawn(store: Arc<dyn Store>, on_commit: OnCommit) -> Writer {
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Stats::default());
        tokio::spawn(run(store, rx, on_commit, stats.clone()));
        Writer { tx, stats }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Queue `op` now; the future resolves once it is committed. Ops are
    /// committed in the order they were queued.
    pub fn write(
        &self,
        op: WriteOp,
    ) -> impl Future<Output = anyhow::Result<WriteOutcome>> + Send + 'static {
        let (reply, done) = oneshot::channel();
        let sent = self
            .tx
            .send(Request {
                op,
                reply: Some(reply),
            })
            .is_ok();
        async move {
            if !sent {
                anyhow::bail!("the journal writer has stopped");
            }
            done.await
                .map_err(|_| anyhow::anyhow!("the journal writer has stopped"))?
        }
    }

    /// Queue `op` without waiting; a later `write` is committed after it.
    pub fn send(&self, op: WriteOp) {
        let _ = self.tx.send(Request { op, reply: None });
    }
}

async fn run(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<Request>,
    on_commit: OnCommit,
    stats: Arc<Stats>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (ops, replies): (Vec<WriteOp>, Vec<_>) =
            batch.drain(..).map(|r| (r.op, r.reply)).unzip();
        let results = write_batch(&*store, &ops).await;
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.ops.fetch_add(results.len() as u64, Ordering::Relaxed);
        let failed = results.iter().filter(|r| r.is_err()).count() as u64;
        stats.failed.fetch_add(failed, Ordering::Relaxed);
        for result in results.iter().flatten() {
            on_commit(result);
        }
        for (reply, result) in replies.into_iter().zip(results) {
            match reply {
                Some(reply) => {
                    let _ = reply.send(result);
                }
                None => {
                    if let Err(e) = result {
                        tracing::error!("unacknowledged journal write failed: {e:#}");
                    }
                }
            }
        }
    }
}

/// Apply `ops` in one transaction when they all succeed; when one fails (a
/// fenced append), each op is retried on its own so only it fails.
pub async fn write_batch(store: &dyn Store, ops: &[WriteOp]) -> Vec<anyhow::Result<WriteOutcome>> {
    match try_batch(store, ops).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(e) if ops.len() == 1 => vec![Err(e)],
        Err(_) => {
            let mut results = Vec::with_capacity(ops.len());
            for op in ops {
                let one = try_batch(store, std::slice::from_ref(op)).await;
                results.push(one.map(|mut v| v.remove(0)));
            }
            results
        }
    }
}

async fn try_batch(store: &dyn Store, ops: &[WriteOp]) -> anyhow::Result<Vec<WriteOutcome>> {
    let mut tx = store.begin().await?;
    let mut outcomes = Vec::with_capacity(ops.len());
    for op in ops {
        outcomes.push(rules::apply(&mut *tx, op).await?);
    }
    tx.commit().await?;
    Ok(outcomes)
}
