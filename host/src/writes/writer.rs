//! Group commit: one task owns all writes made while runs execute. It drains
//! whatever is queued into one transaction, so a thousand runs waiting for
//! their step to be durable share one fsync. Writes queue by namespace (a
//! lane each) and a transaction takes from the lanes in turn, so one
//! namespace's backlog does not stand in front of another's steps; and a
//! transaction stops growing as soon as a namespace it holds nothing of
//! has writes waiting, so those wait for one op and a commit, not for a
//! transaction of hundreds.

use super::{WriteOp, WriteOutcome, rules};
use crate::store::Store;
use futures::FutureExt as _;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

/// Upper bound of ops in one transaction (a bound on how long a step
/// queued behind one waits).
const MAX_BATCH: usize = 512;
/// The bound while several namespaces have writes queued: shorter
/// transactions, so a step of a quiet namespace waits less behind a busy one.
const SHARED_BATCH: usize = 8;

/// Called with every committed outcome, in commit order, before anyone is
/// answered: the runtime tells runs about their signals here, so they see
/// them in arrival order.
pub type OnCommit = Box<dyn Fn(&WriteOutcome) + Send + Sync>;

struct Request {
    /// The namespace the op belongs to, when known (its lane).
    lane: Option<Arc<str>>,
    op: WriteOp,
    reply: Option<oneshot::Sender<anyhow::Result<WriteOutcome>>>,
}

/// The lane of an op that names its namespace.
fn lane_of(op: &WriteOp) -> Option<Arc<str>> {
    match op {
        WriteOp::CreateRun { run, .. } => Some(run.namespace.as_str().into()),
        WriteOp::Signal {
            target: super::SignalTarget::Workflow { namespace, .. },
            ..
        } => Some(namespace.as_str().into()),
        _ => None,
    }
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
        // Its own thread: on the executor's threads, every statement's
        // answer would wait in the run queue behind the guests' work (under
        // a flood, hundreds of tasks), and every step waits for a commit.
        // Its timers, sockets and the tasks `on_commit` spawns stay the
        // server's runtime's.
        let runtime = tokio::runtime::Handle::current();
        let writing = stats.clone();
        std::thread::Builder::new()
            .name("weft-writer".into())
            .spawn(move || {
                let _runtime = runtime.enter();
                futures::executor::block_on(run(store, rx, on_commit, writing));
            })
            .expect("a thread for the journal writer");
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
        let lane = lane_of(&op);
        self.write_in(lane, op)
    }

    /// [`Writer::write`] in a namespace's lane (ops of one lane keep their
    /// order).
    pub fn write_in(
        &self,
        lane: Option<Arc<str>>,
        op: WriteOp,
    ) -> impl Future<Output = anyhow::Result<WriteOutcome>> + Send + 'static {
        let (reply, done) = oneshot::channel();
        let sent = self
            .tx
            .send(Request {
                lane,
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

    /// Queue `op` in a lane without waiting; a later write in the same
    /// lane is committed after it.
    pub fn send_in(&self, lane: Option<Arc<str>>, op: WriteOp) {
        let _ = self.tx.send(Request {
            lane,
            op,
            reply: None,
        });
    }
}

async fn run(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<Request>,
    on_commit: OnCommit,
    stats: Arc<Stats>,
) {
    let mut lanes = Lanes::default();
    let mut incoming = Vec::with_capacity(MAX_BATCH);
    loop {
        if lanes.is_empty() && rx.recv_many(&mut incoming, MAX_BATCH).await == 0 {
            return;
        }
        // Everything queued now, by lane; then a batch taken in turn.
        while rx
            .recv_many(&mut incoming, 4 * MAX_BATCH)
            .now_or_never()
            .unwrap_or(0)
            > 0
        {
            lanes.extend(incoming.drain(..));
        }
        lanes.extend(incoming.drain(..));
        let max = if lanes.turns.len() > 1 {
            SHARED_BATCH
        } else {
            MAX_BATCH
        };
        let (mut ops, mut waiting): (Vec<WriteOp>, Vec<_>) = lanes
            .take(max)
            .into_iter()
            .map(|r| (r.op, (r.lane, r.reply)))
            .unzip();
        // The transaction stops growing when a namespace with nothing in
        // it has writes waiting: they go in the next, at once.
        // The batch's lanes, each once: checked after every op it writes.
        let mut within: Vec<Option<Arc<str>>> = Vec::new();
        for (lane, _) in &waiting {
            if !within.contains(lane) {
                within.push(lane.clone());
            }
        }
        let mut others_waiting = || {
            while let Ok(request) = rx.try_recv() {
                lanes.extend(std::iter::once(request));
            }
            lanes.turns.iter().any(|lane| !within.contains(lane))
        };
        let results = write_growing(&*store, &ops, &mut others_waiting).await;
        let unwritten = ops.split_off(results.len()).into_iter();
        let requests = unwritten.zip(waiting.split_off(results.len()));
        lanes.put_back(
            requests
                .map(|(op, (lane, reply))| Request { lane, op, reply })
                .collect(),
        );
        let replies = waiting.into_iter().map(|(_, reply)| reply);
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

/// Queued requests by lane, served in turn.
#[derive(Default)]
struct Lanes {
    queues: HashMap<Option<Arc<str>>, VecDeque<Request>>,
    turns: VecDeque<Option<Arc<str>>>,
}

impl Lanes {
    fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }

    fn extend(&mut self, requests: impl Iterator<Item = Request>) {
        for request in requests {
            let queue = self.queues.entry(request.lane.clone()).or_default();
            if queue.is_empty() {
                self.turns.push_back(request.lane.clone());
            }
            queue.push_back(request);
        }
    }

    /// Requests taken but not written: first again in their lanes.
    fn put_back(&mut self, requests: Vec<Request>) {
        for request in requests.into_iter().rev() {
            let queue = self.queues.entry(request.lane.clone()).or_default();
            if queue.is_empty() {
                self.turns.push_front(request.lane.clone());
            }
            queue.push_front(request);
        }
    }

    /// Up to `max` requests, one from each lane in turn.
    fn take(&mut self, max: usize) -> Vec<Request> {
        let mut batch = Vec::with_capacity(max.min(1024));
        while batch.len() < max
            && let Some(lane) = self.turns.pop_front()
        {
            let queue = self.queues.get_mut(&lane).expect("a queue per turn");
            batch.push(queue.pop_front().expect("a turn has a request"));
            if queue.is_empty() {
                self.queues.remove(&lane);
            } else {
                self.turns.push_back(lane);
            }
        }
        batch
    }
}

/// Apply `ops` in one transaction when they all succeed; when one fails (a
/// fenced append), each op is retried on its own so only it fails.
pub async fn write_batch(store: &dyn Store, ops: &[WriteOp]) -> Vec<anyhow::Result<WriteOutcome>> {
    match try_batch(store, ops, &mut || false).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(e) if ops.len() == 1 => vec![Err(e)],
        Err(_) => {
            let mut results = Vec::with_capacity(ops.len());
            for op in ops {
                let one = try_batch(store, std::slice::from_ref(op), &mut || false).await;
                results.push(one.map(|mut v| v.remove(0)));
            }
            results
        }
    }
}

/// [`write_batch`] for the writer: the transaction may stop after any op
/// (once `stop` says so), answering the outcomes of the ops it wrote, in
/// order — at least the first.
async fn write_growing(
    store: &dyn Store,
    ops: &[WriteOp],
    stop: &mut (dyn FnMut() -> bool + Send),
) -> Vec<anyhow::Result<WriteOutcome>> {
    match try_batch(store, ops, stop).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(_) => write_batch(store, ops).await,
    }
}

async fn try_batch(
    store: &dyn Store,
    ops: &[WriteOp],
    stop: &mut (dyn FnMut() -> bool + Send),
) -> anyhow::Result<Vec<WriteOutcome>> {
    let mut tx = store.begin().await?;
    let mut outcomes = Vec::with_capacity(ops.len());
    for op in ops {
        outcomes.push(rules::apply(&mut *tx, op).await?);
        if outcomes.len() < ops.len() && stop() {
            break;
        }
    }
    tx.commit().await?;
    Ok(outcomes)
}
