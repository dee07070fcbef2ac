//! This node among others on one shared store: which shards it drives (in
//! which epoch), how it takes shards, loses them and hands them over, and
//! the messages that carry notices to the node driving a run.
//!
//! Alone (SQLite) a node drives every run and none of this runs. With a
//! shared store, a lease loop beats the node's heartbeat (which renews all
//! its leases at once), learns which nodes are alive, takes free or
//! expired shards up to an even share and hands surplus ones over. A
//! notice for a run driven elsewhere is published; the node driving it
//! listens and delivers it.

use super::Runtime;
use crate::engine::Notice;
use crate::store::{Coordination, Lease, NodeInfo, SHARDS, shard_of};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// Where this node stands among others.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// This node's name among the others: unique, stable across restarts.
    pub node_id: String,
    /// A node that has not beaten its heartbeat for this long has lost its
    /// shards to the others.
    pub lease_ms: u64,
}

/// The shards this node drives, and what it says to the others.
pub(super) struct Membership {
    config: Option<ClusterConfig>,
    /// Shard → the epoch it is held in.
    held: Mutex<HashMap<u32, u64>>,
    /// Held shards being handed over: their runs finish here, new work
    /// for them goes to the next node.
    leaving: Mutex<HashSet<u32>>,
    /// The API's address, as other nodes reach it.
    url: Mutex<String>,
    /// The nodes alive at the last heartbeat.
    nodes: Mutex<Vec<NodeInfo>>,
    /// Shutting down: take nothing more.
    stopping: AtomicBool,
    /// Run the lease loop now.
    kick: Notify,
    /// One look at the leases at a time (a round, or a recheck after a
    /// refused append).
    round: tokio::sync::Mutex<()>,
    outbox: mpsc::UnboundedSender<String>,
    outbox_rx: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
}

/// What a message tells the node driving a run (or every node).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Signal,
    /// An update was requested for the run's workflow id.
    Update,
    Cancel,
    ChildEnded,
    Wake,
    /// The run ended: those waiting for it on any node want to know.
    Ended,
    /// Shards were handed over: take them now.
    Free,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Signal => "signal",
            Kind::Update => "update",
            Kind::Cancel => "cancel",
            Kind::ChildEnded => "child",
            Kind::Wake => "wake",
            Kind::Ended => "ended",
            Kind::Free => "free",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "signal" => Kind::Signal,
            "update" => Kind::Update,
            "cancel" => Kind::Cancel,
            "child" => Kind::ChildEnded,
            "wake" => Kind::Wake,
            "ended" => Kind::Ended,
            "free" => Kind::Free,
            _ => return None,
        })
    }

    fn of(notice: &Notice) -> Option<Kind> {
        match notice {
            Notice::Signal(_) => Some(Kind::Signal),
            Notice::Update(_) => Some(Kind::Update),
            Notice::Cancel => Some(Kind::Cancel),
            Notice::ChildEnded(_) => Some(Kind::ChildEnded),
            Notice::Poke => Some(Kind::Wake),
            // Only a verb on the node that drives the run evicts or pauses
            // it (requests for it are forwarded there first).
            Notice::Evict | Notice::Pause(_) => None,
        }
    }
}

impl Membership {
    pub(super) fn new(config: Option<ClusterConfig>) -> Self {
        let (outbox, rx) = mpsc::unbounded_channel();
        Membership {
            config,
            held: Mutex::default(),
            leaving: Mutex::default(),
            url: Mutex::default(),
            nodes: Mutex::default(),
            stopping: AtomicBool::new(false),
            kick: Notify::new(),
            round: tokio::sync::Mutex::new(()),
            outbox,
            outbox_rx: Mutex::new(Some(rx)),
        }
    }

    pub(super) fn clustered(&self) -> bool {
        self.config.is_some()
    }

    pub(super) fn node_id(&self) -> Option<&str> {
        self.config.as_ref().map(|c| c.node_id.as_str())
    }

    /// Whether this node executes `run_id` (alone, every run).
    pub(super) fn drives(&self, run_id: &str) -> bool {
        if !self.clustered() {
            return true;
        }
        let shard = shard_of(run_id);
        self.held.lock().unwrap().contains_key(&shard)
            && !self.leaving.lock().unwrap().contains(&shard)
    }

    /// The lease a run's appends are fenced by: `None` alone; epoch 0 (which
    /// the store always refuses) for a shard this node does not hold.
    pub(super) fn lease_of(&self, run_id: &str) -> Option<Lease> {
        self.config.as_ref()?;
        let shard = shard_of(run_id);
        let epoch = self.held.lock().unwrap().get(&shard).copied().unwrap_or(0);
        Some(Lease { shard, epoch })
    }

    /// A fresh run id of a shard this node drives, so a run started here
    /// is driven here (no hand-off before its first step).
    pub(super) fn local_run_id(&self) -> Option<String> {
        if !self.clustered() || self.held.lock().unwrap().is_empty() {
            return None;
        }
        (0..4 * SHARDS).find_map(|_| {
            let id = uuid::Uuid::now_v7().to_string();
            self.drives(&id).then_some(id)
        })
    }

    fn publish(&self, kind: Kind, run_id: &str) {
        if let Some(message) = self.message(kind, run_id) {
            let _ = self.outbox.send(message);
        }
    }

    /// A message to the other nodes, as they read it (clustered only).
    fn message(&self, kind: Kind, run_id: &str) -> Option<String> {
        let node_id = &self.config.as_ref()?.node_id;
        Some(format!("{node_id}\t{}\t{run_id}", kind.as_str()))
    }

    /// What `/healthz` says of this node.
    pub(super) fn status(&self) -> serde_json::Value {
        match &self.config {
            None => serde_json::json!({ "mode": "single" }),
            Some(config) => serde_json::json!({
                "mode": "cluster",
                "node": config.node_id,
                "url": *self.url.lock().unwrap(),
                "lease_ms": config.lease_ms,
                "shards": self.held.lock().unwrap().len(),
                "shards_total": SHARDS,
                "nodes": *self.nodes.lock().unwrap(),
            }),
        }
    }

    /// The shards held now, in order.
    fn held_shards(&self) -> Vec<u32> {
        let mut shards: Vec<u32> = self.held.lock().unwrap().keys().copied().collect();
        shards.sort_unstable();
        shards
    }

    /// The nodes alive at the last heartbeat (this one alone: 1).
    pub(super) fn nodes_alive(&self) -> usize {
        self.nodes.lock().unwrap().len().max(1)
    }

    pub(super) fn shards_held(&self) -> usize {
        self.held.lock().unwrap().len()
    }
}

impl Runtime {
    fn coordination(&self) -> &dyn Coordination {
        self.store
            .coordination()
            .expect("cluster mode needs a store several nodes share")
    }

    /// The error for a request only the node driving `run_id` can serve.
    pub(super) async fn elsewhere(&self, run_id: &str) -> crate::error::Error {
        let owner = self.coordination().owner(shard_of(run_id)).await;
        crate::error::Error::Conflict(match owner {
            Ok(Some(node)) => format!(
                "run {run_id} is driven by node {} ({}): send this request there",
                node.node_id, node.url
            ),
            _ => format!("run {run_id} is being taken over by another node; try again shortly"),
        })
    }

    /// Tell the node driving `run_id` (another one) about `notice`.
    pub(super) fn forward(&self, run_id: &str, notice: &Notice) {
        if let Some(kind) = Kind::of(notice) {
            self.membership.publish(kind, run_id);
        }
    }

    /// Tell every node that `run_id` ended (or is stuck).
    pub(super) fn announce_end(&self, run_id: &str) {
        self.ended.ended(run_id);
        self.membership.publish(Kind::Ended, run_id);
    }

    /// Join the cluster: listen, publish, and run the lease loop (which
    /// takes shards and resumes their runs).
    pub(super) async fn join(self: &Arc<Self>, url: String) -> anyhow::Result<()> {
        *self.membership.url.lock().unwrap() = url;
        // A previous incarnation of this node (killed, then restarted under
        // the same id) may still hold shards: free them, to be taken again
        // in a new epoch rather than left to a heartbeat that now looks alive.
        if let Some(node_id) = self.membership.node_id() {
            self.coordination().leave(node_id).await?;
        }
        let messages = self.coordination().listen().await?;
        tokio::spawn(listen(self.clone(), messages));
        let outbox = self.membership.outbox_rx.lock().unwrap().take();
        if let Some(outbox) = outbox {
            tokio::spawn(publish(self.clone(), outbox));
        }
        self.lease_round().await?;
        tokio::spawn(lease_loop(self.clone()));
        Ok(())
    }

    /// Beat the heartbeat, notice lost shards, take or hand over shards
    /// toward an even share.
    async fn lease_round(self: &Arc<Self>) -> anyhow::Result<()> {
        let Some(config) = self.membership.config.clone() else {
            return Ok(());
        };
        let _round = self.membership.round.lock().await;
        let ttl = config.lease_ms as i64;
        let c = self.coordination();
        let url = self.membership.url.lock().unwrap().clone();
        let nodes = c.heartbeat(&config.node_id, &url, ttl).await?;
        let alive = nodes.len().max(1) as u32;
        *self.membership.nodes.lock().unwrap() = nodes;
        self.check_held().await?;
        if self.membership.stopping.load(Ordering::SeqCst) {
            return Ok(());
        }
        let share = SHARDS.div_ceil(alive);
        let (held, leaving) = {
            let held = self.membership.held.lock().unwrap().len() as u32;
            (held, self.membership.leaving.lock().unwrap().len() as u32)
        };
        let driving = held.saturating_sub(leaving);
        if driving < share {
            let taken = c.acquire(&config.node_id, share - driving, ttl).await?;
            if !taken.is_empty() {
                self.gained(taken).await?;
            }
        } else if driving > share && leaving == 0 {
            let surplus = self.membership.held_shards().split_off(share as usize);
            let rt = self.clone();
            tokio::spawn(async move { rt.hand_over(surplus).await });
        }
        Ok(())
    }

    /// Look at the leases again now (an append was refused).
    pub(super) async fn recheck(self: &Arc<Self>) -> anyhow::Result<()> {
        let _round = self.membership.round.lock().await;
        self.check_held().await
    }

    /// Compare the shards held by the database's account with ours: a shard
    /// another node took (or took and gave back: a new epoch) is lost.
    async fn check_held(self: &Arc<Self>) -> anyhow::Result<()> {
        let Some(node_id) = self.membership.node_id() else {
            return Ok(());
        };
        let current: HashMap<u32, u64> = self
            .coordination()
            .held(node_id)
            .await?
            .into_iter()
            .map(|l| (l.shard, l.epoch))
            .collect();
        let lost: Vec<u32> = {
            let mut held = self.membership.held.lock().unwrap();
            let leaving = self.membership.leaving.lock().unwrap();
            let gone: Vec<u32> = held
                .iter()
                .filter(|(shard, epoch)| current.get(shard) != Some(epoch))
                .map(|(shard, _)| *shard)
                .collect();
            for shard in &gone {
                held.remove(shard);
            }
            // Shards handed over are gone as planned.
            gone.into_iter().filter(|s| !leaving.contains(s)).collect()
        };
        if !lost.is_empty() {
            tracing::warn!(
                "lost {} shard(s) to other nodes (this node was not heard from within its lease): dropping their runs",
                lost.len()
            );
            self.let_go(&lost);
        }
        Ok(())
    }

    /// Shards taken: their runs resume here.
    async fn gained(self: &Arc<Self>, leases: Vec<Lease>) -> anyhow::Result<()> {
        let shards: Vec<u32> = leases.iter().map(|l| l.shard).collect();
        self.membership
            .held
            .lock()
            .unwrap()
            .extend(leases.iter().map(|l| (l.shard, l.epoch)));
        let runs = self.store.runnable_runs(Some(&shards)).await?;
        tracing::info!(
            "took {} shard(s); resuming {} run(s) of them",
            shards.len(),
            runs.len()
        );
        self.resume_all(runs);
        Ok(())
    }

    /// Forget the timers of these shards' runs and stop the resident ones
    /// (their next append would be refused anyway).
    fn let_go(&self, shards: &[u32]) {
        let shards: HashSet<u32> = shards.iter().copied().collect();
        self.timers
            .forget_where(|run_id| shards.contains(&shard_of(run_id)));
        for r in self.resident.lock().unwrap().iter() {
            if shards.contains(&shard_of(r.0)) {
                let _ = r.1.inbox.send(Notice::Evict);
            }
        }
    }

    /// Hand shards over: their runs leave memory at their next wait (what
    /// they did is journaled), then the shards are released and the other
    /// nodes told, so they take them at once instead of at lease expiry.
    pub(super) async fn hand_over(self: &Arc<Self>, shards: Vec<u32>) {
        let Some(config) = self.membership.config.clone() else {
            return;
        };
        self.membership
            .leaving
            .lock()
            .unwrap()
            .extend(shards.iter().copied());
        self.let_go(&shards);
        let set: HashSet<u32> = shards.iter().copied().collect();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(config.lease_ms);
        loop {
            let busy = {
                let resident = self.resident.lock().unwrap();
                resident
                    .keys()
                    .filter(|r| set.contains(&shard_of(r)))
                    .count()
            };
            if busy == 0 || tokio::time::Instant::now() >= deadline {
                if busy > 0 {
                    tracing::warn!("{busy} run(s) did not leave in time; handing over anyway");
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        match self.coordination().release(&config.node_id, &shards).await {
            Ok(()) => {
                let mut held = self.membership.held.lock().unwrap();
                for shard in &shards {
                    held.remove(shard);
                }
                tracing::info!("handed {} shard(s) over", shards.len());
                self.membership.publish(Kind::Free, "");
            }
            Err(e) => tracing::warn!("cannot hand shards over: {e:#}"),
        }
        let mut leaving = self.membership.leaving.lock().unwrap();
        for shard in &shards {
            leaving.remove(shard);
        }
    }

    /// Leave the cluster (SIGTERM): take nothing more, hand every shard
    /// over, and forget this node.
    pub async fn leave(self: &Arc<Self>) {
        let Some(node_id) = self.membership.node_id().map(str::to_string) else {
            return;
        };
        self.membership.stopping.store(true, Ordering::SeqCst);
        self.hand_over(self.membership.held_shards()).await;
        if let Err(e) = self.coordination().leave(&node_id).await {
            tracing::warn!("cannot leave the cluster cleanly: {e:#}");
        }
        // The others take the shards when they hear `free`: said here and
        // waited for, since the process ends next (the publisher may not
        // get to its copy on a loaded machine; a second one is harmless).
        if let Some(free) = self.membership.message(Kind::Free, "")
            && let Err(e) = self.coordination().publish(&[free]).await
        {
            tracing::warn!("cannot tell the other nodes the shards are free: {e:#}");
        }
        // Let the publisher send what else is queued.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    /// Runs that were waiting are woken now or at their time.
    pub(super) fn resume_all(self: &Arc<Self>, runs: Vec<(String, Option<i64>)>) {
        let now = crate::clock::now_ms();
        for (run_id, wake_at) in runs {
            match wake_at {
                Some(at) if at > now => self.timers.push(at, run_id),
                _ => self.wake(run_id, None),
            }
        }
    }

    /// Look again at every runnable run this node drives: the fallback for
    /// a message that was lost (a node died between its commit and its
    /// message, or our listening connection dropped).
    async fn sweep(self: &Arc<Self>) -> anyhow::Result<()> {
        let shards = self.membership.held_shards();
        let runs = self.store.runnable_runs(Some(&shards)).await?;
        let missing: Vec<(String, Option<i64>)> = {
            let resident = self.resident.lock().unwrap();
            runs.into_iter()
                .filter(|(run_id, _)| {
                    !resident.contains_key(run_id) && !self.timers.contains(run_id)
                })
                .collect()
        };
        if !missing.is_empty() {
            tracing::info!(
                "sweep: {} run(s) had news that did not reach us",
                missing.len()
            );
        }
        self.resume_all(missing);
        Ok(())
    }

    /// A message from another node.
    fn received(self: &Arc<Self>, message: &str) {
        let mut parts = message.splitn(3, '\t');
        let (Some(from), Some(kind), Some(run_id)) = (parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        if Some(from) == self.membership.node_id() {
            return;
        }
        let Some(kind) = Kind::parse(kind) else {
            return;
        };
        match kind {
            Kind::Ended => self.ended.ended(run_id),
            Kind::Free => self.membership.kick.notify_one(),
            _ if !self.membership.drives(run_id) => {}
            Kind::Signal => {
                let rt = self.clone();
                let run_id = run_id.to_string();
                tokio::spawn(async move {
                    match rt.store.pending_signals(&run_id).await {
                        Ok(signals) => {
                            for signal in signals {
                                rt.tell(&run_id, Notice::Signal(signal));
                            }
                        }
                        Err(_) => rt.wake(run_id, None),
                    }
                });
            }
            Kind::Update => {
                let rt = self.clone();
                let run_id = run_id.to_string();
                tokio::spawn(async move {
                    let updates = match rt.store.get_run(&run_id).await {
                        Ok(Some(run)) => {
                            rt.store
                                .updates()
                                .requested_updates(&run.namespace, &run.workflow_id)
                                .await
                        }
                        Ok(None) => return,
                        Err(e) => Err(e),
                    };
                    match updates {
                        Ok(updates) => {
                            for update in updates {
                                rt.tell(&run_id, Notice::Update(update));
                            }
                        }
                        Err(_) => rt.wake(run_id, None),
                    }
                });
            }
            Kind::Cancel => self.tell(run_id, Notice::Cancel),
            Kind::ChildEnded => self.tell(run_id, Notice::ChildEnded(String::new())),
            Kind::Wake => self.wake(run_id.to_string(), None),
        }
    }
}

async fn lease_loop(rt: Arc<Runtime>) {
    let Some(config) = rt.membership.config.clone() else {
        return;
    };
    let beat = Duration::from_millis((config.lease_ms / 4).max(10));
    // The sweep runs every few leases: messages carry news at once.
    let mut rounds = 0u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(beat) => {}
            _ = rt.membership.kick.notified() => {}
        }
        if let Err(e) = rt.lease_round().await {
            tracing::warn!("lease round failed (the database may be down): {e:#}");
            continue;
        }
        rounds += 1;
        if rounds.is_multiple_of(24)
            && let Err(e) = rt.sweep().await
        {
            tracing::warn!("sweep failed: {e:#}");
        }
    }
}

async fn listen(rt: Arc<Runtime>, mut messages: mpsc::UnboundedReceiver<Option<String>>) {
    while let Some(message) = messages.recv().await {
        match message {
            Some(message) => rt.received(&message),
            None => {
                tracing::warn!("the connection listening for other nodes dropped; sweeping");
                if let Err(e) = rt.sweep().await {
                    tracing::warn!("sweep failed: {e:#}");
                }
            }
        }
    }
}

async fn publish(rt: Arc<Runtime>, mut outbox: mpsc::UnboundedReceiver<String>) {
    let mut batch = Vec::new();
    while outbox.recv_many(&mut batch, 512).await > 0 {
        for attempt in 0..5u32 {
            match rt.coordination().publish(&batch).await {
                Ok(()) => break,
                Err(e) if attempt == 4 => {
                    tracing::warn!(
                        "{} message(s) to other nodes lost (the sweep will find their runs): {e:#}",
                        batch.len()
                    )
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100 << attempt)).await,
            }
        }
        batch.clear();
    }
}
