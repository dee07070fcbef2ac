//! The runtime: which runs are resident, how they are told about signals,
//! cancellation and children, when evicted runs wake up, which runs resume
//! at start-up, and the activity executor.

mod activities;
mod batches;
mod cluster;
mod commands;
mod cron;
mod due;
mod ended;
mod fair;
mod native;
mod pause;
mod peers;
mod quotas;
mod reset;
mod resume;
mod schedules;
mod timers;
mod updates;
mod versions;

pub use batches::BatchAction;
pub use cluster::ClusterConfig;
pub use commands::{SignalRequest, Signalled, StartRun};
pub use due::parse_time;
pub use ended::RunEnd;
pub use native::{NativeActivity, NativeCall, UnderWay};
pub use peers::{FORWARDED, Route};
pub use reset::ResetRequest;
pub use schedules::{NewSchedule, next_times};
pub use updates::UpdateRequest;
pub use versions::{Exclusive, Report, Target};

use crate::clock::now_ms;
use crate::engine::runner::Ending;
use crate::engine::{Engine, Loaded, Notice};
use crate::journal::{ParentClose, Recorded};
use crate::store::{ComponentKind, ComponentVersion, RunRecord, RunStatus, Store};
use crate::writes::{Touched, WriteOp, WriteOutcome, Writer};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use timers::Timers;
use tokio::sync::{mpsc, oneshot, watch};

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Waits at most this long keep a run in memory; longer ones (timers,
    /// signals that do not come) evict it until they are due.
    pub resident_timer_ms: u64,
    /// An idle run a signal, update or child may wake waits in memory this
    /// long (at most `resident_timer_ms`) before it is evicted.
    pub idle_linger_ms: u64,
    /// Start-to-close timeout of an activity attempt that sets none.
    pub activity_timeout: Duration,
    /// Runs executing at once.
    pub max_resident_runs: usize,
    /// Activity attempts executing at once.
    pub max_concurrent_activities: usize,
    /// After its deadline a run may clean up this long before it is ended.
    pub deadline_grace_ms: u64,
    /// See [`crate::engine::Waits::send_when_parked`].
    pub send_when_parked: bool,
    /// This node's place among others sharing the store; `None` alone.
    pub cluster: Option<ClusterConfig>,
    /// The token a request forwarded to another node carries (the cluster
    /// admin's: every node is given the same).
    pub peer_token: Option<String>,
    /// The client requests forwarded to other nodes go through (it trusts
    /// what their certificates need).
    pub peer_client: reqwest::Client,
}

/// A run executing now (or held by an upgrade): how to tell it things.
struct Resident {
    inbox: mpsc::UnboundedSender<Notice>,
    sent: Arc<AtomicU64>,
    /// Upgrades waiting to hold the run once this execution (or hold) is
    /// over, in arrival order: the run is handed to them, never restarted
    /// in between.
    claims: VecDeque<oneshot::Sender<()>>,
}

impl Resident {
    fn new(inbox: mpsc::UnboundedSender<Notice>, sent: Arc<AtomicU64>) -> Self {
        Resident {
            inbox,
            sent,
            claims: VecDeque::new(),
        }
    }

    /// The entry of a held run: notices go nowhere and wakes are no-ops
    /// (the store keeps what they were about; the release wakes the run).
    fn held(claims: VecDeque<oneshot::Sender<()>>) -> Self {
        Resident {
            claims,
            ..Resident::new(mpsc::unbounded_channel().0, Arc::default())
        }
    }
}

/// How long the newest version of an activity, once read, is used
/// before it is read again (a deploy on this node forgets it at once).
const ACTIVITY_FRESH_FOR: Duration = Duration::from_secs(2);

pub struct Runtime {
    pub store: Arc<dyn Store>,
    pub writer: Writer,
    pub engine: Arc<Engine>,
    pub config: RuntimeConfig,
    resident: Mutex<HashMap<String, Resident>>,
    /// Consecutive transient failures per run, for backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// The newest version of each (namespace, activity name), as last read
    /// and when.
    activities: Mutex<HashMap<(String, String), (std::time::Instant, ComponentVersion)>>,
    /// Bumped by every deploy or deletion here: activities waiting for
    /// their component to be deployed look again.
    deploys: watch::Sender<u64>,
    /// Bumped when an update is accepted, answered or rejected here: its
    /// callers waiting on this node look again.
    updates_decided: watch::Sender<u64>,
    /// Look for batch jobs to work off now.
    batch_kick: tokio::sync::Notify,
    timers: Timers,
    ended: Arc<ended::EndWaiters>,
    run_slots: Arc<fair::FairSlots>,
    activity_slots: Arc<fair::FairSlots>,
    membership: cluster::Membership,
    quotas: quotas::Quotas,
    /// The HTTP client of requests forwarded to other nodes (one, so its
    /// connections are reused).
    peers: reqwest::Client,
    /// Activities run by Rust functions in this process, by name.
    native: Mutex<HashMap<String, NativeActivity>>,
    /// Tasks under way (see `native::Busy`): activities not waiting on
    /// the clock, what follows an execution, an update's caller woken.
    tasks: Arc<std::sync::atomic::AtomicUsize>,
}

impl Runtime {
    pub fn new(store: Arc<dyn Store>, engine: Arc<Engine>, config: RuntimeConfig) -> Arc<Self> {
        let rt = Arc::new_cyclic(|me: &Weak<Runtime>| Runtime {
            writer: Writer::spawn(store.clone(), {
                let me = me.clone();
                Box::new(move |outcome| {
                    if let Some(rt) = me.upgrade() {
                        rt.committed(outcome);
                    }
                })
            }),
            store,
            engine,
            resident: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            activities: Mutex::new(HashMap::new()),
            deploys: watch::Sender::new(0),
            updates_decided: watch::Sender::new(0),
            batch_kick: tokio::sync::Notify::new(),
            timers: Timers::default(),
            ended: Arc::default(),
            run_slots: fair::FairSlots::new(config.max_resident_runs),
            activity_slots: fair::FairSlots::new(config.max_concurrent_activities),
            membership: cluster::Membership::new(config.cluster.clone()),
            quotas: quotas::Quotas::default(),
            peers: config.peer_client.clone(),
            native: Mutex::default(),
            tasks: Arc::default(),
            config,
        });
        tokio::spawn(timers::run(rt.clone()));
        rt
    }

    /// Start driving runs: alone, resume every run that was in flight
    /// when the server stopped (answers how many); among others, join them
    /// (`url` is where this node's API answers) and resume the runs of the
    /// shards this node takes.
    pub async fn start(self: &Arc<Self>, url: String) -> anyhow::Result<usize> {
        tokio::spawn(schedules::run(Arc::downgrade(self)));
        tokio::spawn(batches::job_loop(Arc::downgrade(self)));
        if self.membership.clustered() {
            self.join(url).await?;
            return Ok(self.resident_count());
        }
        let runs = self.store.runnable_runs(None).await?;
        let n = runs.len();
        self.resume_all(runs);
        Ok(n)
    }

    /// This node's place in the cluster, for `/healthz`.
    pub fn cluster_status(&self) -> serde_json::Value {
        self.membership.status()
    }

    /// Shards this node drives (0 alone).
    pub fn shards_held(&self) -> usize {
        self.membership.shards_held()
    }

    /// Runs executing now.
    pub fn resident_count(&self) -> usize {
        self.resident.lock().unwrap().len()
    }

    /// Resolves when `run_id` reaches a final status (or `stuck`) from
    /// now on: watch first, then read the run.
    pub fn watch_end(&self, run_id: &str) -> RunEnd {
        self.ended.watch(run_id)
    }

    /// Execute (or resume) a run; a resident one is only poked.
    pub fn wake(self: &Arc<Self>, run_id: String, preloaded: Option<(RunRecord, Vec<Recorded>)>) {
        self.notify(&run_id, Notice::Poke, preloaded);
    }

    /// Tell a run something: through its inbox when it is resident,
    /// otherwise by starting an execution (which reads the store).
    pub fn tell(self: &Arc<Self>, run_id: &str, notice: Notice) {
        self.notify(run_id, notice, None);
    }

    fn notify(
        self: &Arc<Self>,
        run_id: &str,
        notice: Notice,
        preloaded: Option<(RunRecord, Vec<Recorded>)>,
    ) {
        let (rx, sent) = {
            let mut resident = self.resident.lock().unwrap();
            if let Some(r) = resident.get(run_id) {
                r.sent.fetch_add(1, Ordering::SeqCst);
                let _ = r.inbox.send(notice);
                return;
            }
            if !self.membership.drives(run_id) {
                drop(resident);
                self.forward(run_id, &notice);
                return;
            }
            let (tx, rx) = mpsc::unbounded_channel();
            let sent = Arc::new(AtomicU64::new(0));
            resident.insert(run_id.to_string(), Resident::new(tx, sent.clone()));
            (rx, sent)
        };
        let rt = self.clone();
        let run_id = run_id.to_string();
        tokio::spawn(async move {
            let ending = {
                let execution =
                    tokio::spawn(resume::resume(rt.clone(), run_id.clone(), preloaded, rx));
                // A panic in the host must not leave the run locked resident.
                execution
                    .await
                    .unwrap_or_else(|e| Ending::Retry(format!("the execution panicked: {e}")))
            };
            // Under way until what follows the execution is done (it tells
            // parents and callers after the run has left `resident`).
            let _busy = native::Busy::new(&rt.tasks);
            // Handed to an upgrade, the run stays held: what `after` wakes
            // is then a no-op, and the upgrade's release wakes it.
            rt.release(&run_id);
            rt.after(run_id, ending, sent.load(Ordering::SeqCst)).await;
        });
    }

    /// An execution or a hold of `run_id` is over: hand the run to the
    /// first upgrade still waiting for it, or let it go. True if handed.
    fn release(&self, run_id: &str) -> bool {
        let mut resident = self.resident.lock().unwrap();
        let Some(entry) = resident.get_mut(run_id) else {
            return false;
        };
        while let Some(claim) = entry.claims.pop_front() {
            if claim.send(()).is_ok() {
                let waiting = std::mem::take(&mut entry.claims);
                *entry = Resident::held(waiting);
                return true;
            }
        }
        resident.remove(run_id);
        false
    }

    /// What happens once an execution is over.
    async fn after(self: &Arc<Self>, run_id: String, ending: Ending, sent: u64) {
        if self.membership.clustered() && !matches!(ending, Ending::Ended { .. }) {
            if let Ending::Retry(reason) = &ending {
                // A refused append may mean another node took the shard.
                if let Err(e) = self.recheck().await {
                    tracing::warn!(run = run_id, "cannot check leases: {e:#}");
                }
                if !self.membership.drives(&run_id) {
                    tracing::warn!(
                        run = run_id,
                        "dropped: another node drives it now ({reason})"
                    );
                }
            }
            if !self.membership.drives(&run_id) {
                // Its shard changed hands: the next node resumes it.
                self.failures.lock().unwrap().remove(&run_id);
                self.timers.forget(&run_id);
                if let Ending::Continued { next_run_id } = ending {
                    self.announce_end(&run_id);
                    self.wake(next_run_id, None);
                }
                return;
            }
        }
        match ending {
            Ending::Suspended {
                wake_at_ms,
                notices_seen,
            } => {
                self.failures.lock().unwrap().remove(&run_id);
                if sent > notices_seen {
                    // Told something while leaving: go again.
                    self.wake(run_id, None);
                } else if let Some(at) = wake_at_ms {
                    self.timers.push(at, run_id);
                } else {
                    // Waits for an event only: an older timer is stale.
                    self.timers.forget(&run_id);
                }
            }
            Ending::Ended { parent } => self.closed(&run_id, parent).await,
            Ending::Continued { next_run_id } => {
                self.failures.lock().unwrap().remove(&run_id);
                self.timers.forget(&run_id);
                self.announce_end(&run_id);
                self.wake(next_run_id, None);
            }
            Ending::Retry(reason) => {
                let n = {
                    let mut failures = self.failures.lock().unwrap();
                    let n = failures.entry(run_id.clone()).or_insert(0);
                    *n += 1;
                    *n
                };
                let delay = 500i64 << n.min(7);
                tracing::warn!(run = run_id, "will retry in {delay} ms: {reason}");
                self.timers.push(now_ms() + delay, run_id);
            }
        }
    }

    /// A run reached a final status (or `stuck`): forget its wake-ups, tell
    /// those waiting for it and its parent, close its children.
    async fn closed(self: &Arc<Self>, run_id: &str, parent: Option<String>) {
        self.failures.lock().unwrap().remove(run_id);
        self.timers.forget(run_id);
        self.announce_end(run_id);
        if let Some(parent) = parent {
            self.tell(&parent, Notice::ChildEnded(run_id.to_string()));
        }
        self.close_children(run_id).await;
        self.sent_updates_orphaned(run_id).await;
    }

    /// A parent ended: ask the children it wants gone to cancel, end those
    /// it wants ended.
    async fn close_children(self: &Arc<Self>, run_id: &str) {
        let children = match self.store.open_children(run_id).await {
            Ok(children) => children,
            Err(e) => {
                tracing::error!(run = run_id, "cannot list children: {e:#}");
                return;
            }
        };
        for (child, close) in children {
            let closed = match close {
                ParentClose::Abandon => continue,
                ParentClose::Cancel => self.cancel(&child).await.map(drop),
                ParentClose::Terminate => {
                    let reason =
                        format!("its parent {run_id} ended (parent-close policy terminate)");
                    Box::pin(self.terminate_run(&child, &reason, Route::ToDriver))
                        .await
                        .map(drop)
                }
            };
            if let Err(e) = closed {
                tracing::error!(run = child, "cannot close child ({}): {e}", close.as_str());
            }
        }
    }

    /// Tell runs what a commit did to them (in commit order: signals reach
    /// a run in arrival order). Runs created by an append are started here
    /// too; runs created by `start_run` are started by it, preloaded.
    fn committed(self: &Arc<Self>, outcome: &WriteOutcome) {
        match outcome {
            WriteOutcome::Appended(touched) => {
                for t in touched {
                    match t {
                        Touched::Created(run_id) => self.wake(run_id.clone(), None),
                        Touched::Signalled(signal) => {
                            self.tell(&signal.run_id, Notice::Signal(signal.clone()))
                        }
                        Touched::CancelRequested { run_id, status } => {
                            self.cancel_requested(run_id, *status)
                        }
                        Touched::UpdateDecided { key, answered } => {
                            self.update_decided(key, *answered)
                        }
                    }
                }
            }
            WriteOutcome::Signalled {
                signal, created, ..
            } => {
                if *created {
                    self.wake(signal.run_id.clone(), None);
                } else {
                    self.tell(&signal.run_id, Notice::Signal(signal.clone()));
                }
            }
            WriteOutcome::CancelRequested(run) => self.cancel_requested(&run.run_id, run.status),
            WriteOutcome::Created(_) | WriteOutcome::Existing(_) | WriteOutcome::Refused(_) => {}
        }
    }

    fn cancel_requested(self: &Arc<Self>, run_id: &str, status: RunStatus) {
        if status == RunStatus::Running {
            self.tell(run_id, Notice::Cancel);
        } else {
            // A stuck run ended at once.
            self.announce_end(run_id);
        }
    }

    /// The newest version of activity component `name` (activities are not
    /// pinned: each attempt runs the newest), cached until a deploy here
    /// and for [`ACTIVITY_FRESH_FOR`] at most, so a deploy on another
    /// node reaches this one's activities too.
    pub async fn latest_activity(
        &self,
        namespace: &str,
        name: &str,
    ) -> anyhow::Result<Option<ComponentVersion>> {
        let key = (namespace.to_string(), name.to_string());
        if let Some((at, v)) = self.activities.lock().unwrap().get(&key)
            && at.elapsed() < ACTIVITY_FRESH_FOR
        {
            return Ok(Some(v.clone()));
        }
        let version = self.store.latest_version(namespace, name).await?;
        if let Some(v) = &version {
            let read = (std::time::Instant::now(), v.clone());
            self.activities.lock().unwrap().insert(key, read);
        }
        Ok(version)
    }

    /// A deploy or a deletion changed what `name` resolves to in `namespace`.
    fn forget_version(&self, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        self.activities.lock().unwrap().remove(&key);
        self.deploys.send_modify(|n| *n += 1);
    }

    /// The workflow component a run is pinned to.
    pub async fn workflow_component(&self, digest: &str) -> anyhow::Result<Arc<Loaded>> {
        self.component(digest, ComponentKind::Workflow).await
    }

    /// The compiled component of `digest`: cached, or compiled from the
    /// stored bytes.
    pub async fn component(
        &self,
        digest: &str,
        kind: ComponentKind,
    ) -> anyhow::Result<Arc<Loaded>> {
        let store = self.store.clone();
        let d = digest.to_string();
        self.engine
            .load(digest, kind, async move {
                store
                    .component_bytes(&d)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("component {d} is not stored"))
            })
            .await
    }

    async fn write(&self, op: WriteOp) -> crate::error::Result<WriteOutcome> {
        Ok(self.writer.write(op).await?)
    }
}
