//! Group commit: one task owns all writes made while runs execute. It drains
//! whatever is queued into one transaction, so a thousand runs waiting for
//! their step to be durable share one fsync. Writes queue by namespace (a
//! lane each) and a transaction takes from the lanes in turn, so one
//! namespace's backlog does not stand in front of another's steps; and
//! when a namespace the transaction holds nothing of has writes waiting,
//! its oldest op joins the transaction, which then ends: that step waits
//! for one commit already under way, not for a transaction of hundreds
//! and then its own.

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
    /// Ops queued (written or not yet).
    pub queued: AtomicU64,
}

impl Writer {
    pub fn spawn(store: Arc<dyn Store>, on_commit: OnCommit) -> Writer {
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Stats::default());
        if !store.runs_off_the_runtime() {
            tokio::spawn(run(store, rx, on_commit, stats.clone()));
            return Writer { tx, stats };
        }
        // Its own thread: on the executor's threads, every statement's
        // answer would wait in the run queue behind other tasks (under a
        // flood, hundreds), and every step waits for a commit. Its timers
        // and the tasks `on_commit` spawns stay the server's runtime's.
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
        self.stats.queued.fetch_add(1, Ordering::SeqCst);
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
        self.stats.queued.fetch_add(1, Ordering::SeqCst);
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
        let mut batch = Batch::of(lanes.take(max));
        // A namespace with nothing in the transaction that has writes
        // waiting gets one op into it at once, and the transaction ends
        // with them: its step waits for this commit only, not for this
        // one and then its own.
        let mut within: Vec<Option<Arc<str>>> = Vec::new();
        for (lane, _) in &batch.waiting {
            if !within.contains(lane) {
                within.push(lane.clone());
            }
        }
        let mut latecomers = || {
            while let Ok(request) = rx.try_recv() {
                lanes.extend(std::iter::once(request));
            }
            let late: Vec<_> = (lanes.turns.iter())
                .filter(|lane| !within.contains(lane))
                .cloned()
                .collect();
            late.iter()
                .filter_map(|lane| lanes.take_one(lane))
                .collect()
        };
        let started = std::time::Instant::now();
        let results = write_growing(&*store, &mut batch, &mut latecomers).await;
        let m = crate::metrics::metrics();
        m.commit_seconds.observe(started.elapsed().as_secs_f64());
        lanes.put_back(std::mem::take(&mut batch.unwritten));
        let waiting = batch.waiting;
        let replies = waiting.into_iter().map(|(_, reply)| reply);
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.ops.fetch_add(results.len() as u64, Ordering::SeqCst);
        let failed = results.iter().filter(|r| r.is_err()).count() as u64;
        stats.failed.fetch_add(failed, Ordering::Relaxed);
        m.commits.inc();
        m.commit_writes.observe(results.len() as f64);
        m.writes.inc_by(results.len() as u64 - failed);
        m.write_failures.inc_by(failed);
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

    /// The oldest request of `lane`, out of its turn.
    fn take_one(&mut self, lane: &Option<Arc<str>>) -> Option<Request> {
        let queue = self.queues.get_mut(lane)?;
        let request = queue.pop_front();
        if queue.is_empty() {
            self.queues.remove(lane);
            self.turns.retain(|l| l != lane);
        }
        request
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

/// The ops of one transaction, with whom to answer; the ops that made
/// room for latecomers wait for the next.
struct Batch {
    ops: Vec<WriteOp>,
    waiting: Vec<(Option<Arc<str>>, Option<Reply>)>,
    unwritten: Vec<Request>,
}

type Reply = oneshot::Sender<anyhow::Result<WriteOutcome>>;

impl Batch {
    fn of(requests: Vec<Request>) -> Batch {
        let mut batch = Batch {
            ops: Vec::with_capacity(requests.len()),
            waiting: Vec::with_capacity(requests.len()),
            unwritten: Vec::new(),
        };
        batch.extend(requests);
        batch
    }

    fn extend(&mut self, requests: Vec<Request>) {
        for r in requests {
            self.ops.push(r.op);
            self.waiting.push((r.lane, r.reply));
        }
    }

    /// After `written` ops: `late` next, the rest to the next transaction.
    fn cut_in(&mut self, written: usize, late: Vec<Request>) {
        let ops = self.ops.split_off(written);
        let waiting = self.waiting.split_off(written);
        self.unwritten = (ops.into_iter().zip(waiting))
            .map(|(op, (lane, reply))| Request { lane, op, reply })
            .collect();
        self.extend(late);
    }
}

/// [`write_batch`] for the writer: after any op, requests of namespaces
/// the transaction holds nothing of (`late`) may take the place of the ops
/// not yet written; the transaction ends with them. Answers the outcome of
/// each op in `batch.ops` as it ends, in order.
async fn write_growing(
    store: &dyn Store,
    batch: &mut Batch,
    late: &mut (dyn FnMut() -> Vec<Request> + Send),
) -> Vec<anyhow::Result<WriteOutcome>> {
    match try_growing(store, batch, late).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(_) => write_batch(store, &batch.ops).await,
    }
}

async fn try_growing(
    store: &dyn Store,
    batch: &mut Batch,
    late: &mut (dyn FnMut() -> Vec<Request> + Send),
) -> anyhow::Result<Vec<WriteOutcome>> {
    let mut tx = store.begin().await?;
    let mut outcomes = Vec::with_capacity(batch.ops.len());
    let mut joined = false;
    while outcomes.len() < batch.ops.len() {
        outcomes.push(rules::apply(&mut *tx, &batch.ops[outcomes.len()]).await?);
        if !joined {
            let latecomers = late();
            if !latecomers.is_empty() {
                joined = true;
                batch.cut_in(outcomes.len(), latecomers);
            }
        }
    }
    tx.commit().await?;
    Ok(outcomes)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(lane: &str, run_id: &str) -> Request {
        Request {
            lane: Some(lane.into()),
            op: WriteOp::RequestCancel {
                run_id: run_id.to_string(),
            },
            reply: None,
        }
    }

    fn run_ids(ops: &[WriteOp]) -> Vec<&str> {
        ops.iter()
            .map(|op| match op {
                WriteOp::RequestCancel { run_id } => run_id.as_str(),
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn a_latecomer_takes_the_place_of_the_ops_not_yet_written() {
        let mut lanes = Lanes::default();
        lanes.extend(
            ["a1", "a2", "a3", "a4"]
                .map(|id| request("a", id))
                .into_iter(),
        );
        let mut batch = Batch::of(lanes.take(MAX_BATCH));
        assert!(lanes.is_empty());
        lanes.extend(["b1", "b2"].map(|id| request("b", id)).into_iter());
        // Two of a's ops are written when b's arrive: b's oldest joins.
        let late: Vec<Request> = lanes.take_one(&Some("b".into())).into_iter().collect();
        batch.cut_in(2, late);
        assert_eq!(run_ids(&batch.ops), ["a1", "a2", "b1"]);
        assert_eq!(batch.waiting.len(), 3);
        lanes.put_back(std::mem::take(&mut batch.unwritten));
        // a's unwritten ops come next, in their order, b's next in turn.
        let next: Vec<WriteOp> = lanes.take(MAX_BATCH).into_iter().map(|r| r.op).collect();
        assert_eq!(run_ids(&next), ["a3", "b2", "a4"]);
        assert!(lanes.is_empty() && lanes.queues.is_empty());
    }
}
