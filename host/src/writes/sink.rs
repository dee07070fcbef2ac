//! The write side of one run's journal: assigns sequence numbers and hands
//! events to the group-commit writer.

use super::{Effect, RunUpdate, WriteOp, WriteOutcome, Writer};
use crate::clock::now_ms;
use crate::journal::{Event, Recorded};
use crate::store::{EventRow, Lease};
use std::sync::{Arc, Mutex};

/// Pending events beyond this are sent without waiting for a durable point.
const MAX_PENDING: usize = 1024;

/// Shared by a run's task and its activity tasks; the one writer of the
/// run's sequence numbers.
#[derive(Clone)]
pub struct Sink {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    run_id: String,
    next_seq: u64,
    /// Recorded, not yet sent to the writer, as the store will keep them.
    pending: Vec<EventRow>,
    effects: Vec<Effect>,
    /// `None` for a check's sink, which never commits.
    writer: Option<Writer>,
    /// The run was evicted: the first append says it executes again.
    waking: bool,
    /// The shard lease the run executes under: every append is fenced by it.
    lease: Option<Lease>,
    /// The run's namespace: its writer lane.
    lane: Option<Arc<str>>,
}

impl Inner {
    /// Number `event` and prepare its row here, on the run's thread: the
    /// one writer of every run's rows has no per-event work left.
    fn push(&mut self, event: Event, digest: Option<String>) -> Recorded {
        let recorded = Recorded {
            seq: self.next_seq,
            at_ms: now_ms(),
            event,
        };
        self.next_seq += 1;
        let row = super::event_row(&recorded, digest).expect("a journal event serializes");
        self.pending.push(row);
        recorded
    }

    /// Send what is pending without waiting — unless an effect starts or
    /// signals a run: the workflow waits for those to be committed.
    fn send_quietly(&mut self) {
        let quiet = self.effects.iter().all(|e| {
            matches!(
                e,
                Effect::Consume { .. }
                    | Effect::SetStatus(_)
                    | Effect::SetAttributes(_)
                    | Effect::DecideUpdate { .. }
            )
        });
        if quiet && let Some(writer) = self.writer.clone() {
            let op = self.take(None);
            writer.send_in(self.lane.clone(), op);
        }
    }

    fn take(&mut self, mut update: Option<RunUpdate>) -> WriteOp {
        if std::mem::take(&mut self.waking) && update.is_none() {
            update = Some(RunUpdate::Awake);
        }
        WriteOp::Append {
            run_id: self.run_id.clone(),
            lease: self.lease,
            events: std::mem::take(&mut self.pending),
            effects: std::mem::take(&mut self.effects),
            update,
        }
    }
}

impl Sink {
    pub fn new(run_id: &str, next_seq: u64, writer: Writer) -> Self {
        Sink::new_with(run_id, next_seq, Some(writer))
    }

    fn new_with(run_id: &str, next_seq: u64, writer: Option<Writer>) -> Self {
        Sink {
            inner: Arc::new(Mutex::new(Inner {
                run_id: run_id.to_string(),
                next_seq,
                pending: Vec::new(),
                effects: Vec::new(),
                writer,
                waking: false,
                lease: None,
                lane: None,
            })),
        }
    }

    /// A sink that writes nothing: a compatibility check stops before
    /// anything would be committed, and needs no database.
    pub fn detached(run_id: &str, next_seq: u64) -> Self {
        Sink::new_with(run_id, next_seq, None)
    }

    /// For a run that was evicted: its first append marks it as executing.
    pub fn waking(self, evicted: bool) -> Self {
        self.inner.lock().unwrap().waking = evicted;
        self
    }

    /// Queue this run's writes in its namespace's lane.
    pub fn in_namespace(self, namespace: &str) -> Self {
        self.inner.lock().unwrap().lane = Some(namespace.into());
        self
    }

    /// The sequence number the next event gets.
    pub fn next_seq(&self) -> u64 {
        self.inner.lock().unwrap().next_seq
    }

    /// For a run of a shard this node leases: appends are refused once
    /// the lease is gone (another node drives the run now).
    pub fn leased(self, lease: Option<Lease>) -> Self {
        self.inner.lock().unwrap().lease = lease;
        self
    }

    /// Append an event that answers no call — informational (a failed
    /// attempt, an upgrade) or the run's end — in memory; it becomes
    /// durable with the next commit. Calls go through [`Sink::record_call`].
    pub fn record(&self, event: Event) -> Recorded {
        debug_assert!(
            event.call().is_none(),
            "the call event `{}` must be journaled by the engine's durability combinator",
            event.kind()
        );
        self.push(event, None, None)
    }

    /// Append the event of a call whose digest is `digest`: the engine's
    /// durability combinator is the one caller. With `consumes`, the event
    /// consumes that signal, and the consumption is committed in the same
    /// transaction, never apart.
    pub fn record_call(&self, event: Event, digest: String, consumes: Option<i64>) -> Recorded {
        self.push(event, Some(digest), consumes)
    }

    /// Append the event of a call with a side effect committed in the same
    /// transaction, never apart (an update accepted or answered).
    pub fn record_call_with(&self, event: Event, digest: String, effect: Effect) -> Recorded {
        let mut inner = self.inner.lock().unwrap();
        inner.effects.push(effect);
        inner.push(event, Some(digest))
    }

    fn push(&self, event: Event, digest: Option<String>, consumes: Option<i64>) -> Recorded {
        let mut inner = self.inner.lock().unwrap();
        let recorded = inner.push(event, digest);
        match consumes {
            Some(signal_id) => inner.effects.push(Effect::Consume {
                signal_id,
                seq: recorded.seq,
            }),
            None if inner.pending.len() >= MAX_PENDING => inner.send_quietly(),
            None => {}
        }
        recorded
    }

    /// Attach a side effect to the next commit.
    pub fn effect(&self, effect: Effect) {
        self.inner.lock().unwrap().effects.push(effect);
    }

    /// Append `event` and send it to the writer without waiting.
    pub fn record_and_send(&self, event: Event) {
        self.record(event);
        self.send();
    }

    /// Send what is pending to the writer without waiting for it.
    pub fn send(&self) {
        self.inner.lock().unwrap().send_quietly();
    }

    /// Make everything recorded so far durable (with its effects and with
    /// `update` to the run's row, atomically) and wait for it.
    pub async fn commit(&self, update: Option<RunUpdate>) -> anyhow::Result<()> {
        let done = {
            let mut inner = self.inner.lock().unwrap();
            let op = inner.take(update);
            let Some(writer) = &inner.writer else {
                anyhow::bail!("a check's journal is never committed");
            };
            writer.write_in(inner.lane.clone(), op)
        };
        match done.await? {
            WriteOutcome::Appended(_) => Ok(()),
            other => anyhow::bail!("the writer answered an append with {other:?}"),
        }
    }
}
