//! A workflow's host state, and the durability combinator every journaled
//! host call goes through: [`WorkflowState::journaled`] (answer from the
//! journal or detect divergence; else run live, record, make durable).

use super::host::Host;
use super::limits::{Interrupt, MemoryLimit, RunLimits, Slice, captured_wasi};
use super::ops::{Notice, Op, response};
use crate::journal::{Call, Cursor, Divergence, Event, Failure, Recorded, Replay, Source, calls};
use crate::store::{Signal, UpdateRecord};
use crate::writes::{Effect, Sink};
use futures::FutureExt as _;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::Instrument as _;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Facts about the run the host needs while it executes.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub run_id: String,
    pub namespace: String,
    pub workflow_id: String,
    pub workflow: String,
    pub version: u32,
    pub deadline_at_ms: Option<i64>,
    pub cancel_requested: bool,
    /// Its namespace's limits.
    pub limits: RunLimits,
}

impl From<&crate::store::RunRecord> for RunFacts {
    fn from(run: &crate::store::RunRecord) -> Self {
        RunFacts {
            run_id: run.run_id.clone(),
            namespace: run.namespace.clone(),
            workflow_id: run.workflow_id.clone(),
            workflow: run.workflow.clone(),
            version: run.version,
            deadline_at_ms: run.deadline_at_ms,
            cancel_requested: run.cancel_requested,
            limits: RunLimits::default(),
        }
    }
}

/// When a live call's event must be durable.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Durable {
    /// With the next commit: replaying the call again after a crash gives
    /// the same outcome (a clock read, a timer started or fired).
    Later,
    /// Sent to the writer at once, without waiting (a published status).
    Soon,
    /// Committed before the guest sees the answer: the durable point of a
    /// step (an activity's or child's result, a child started, a signal
    /// sent).
    Now,
}

/// What a live call journals.
pub(super) struct Step {
    event: Event,
    durable: Durable,
    /// The signal the event consumes: committed together, never apart.
    consumes: Option<i64>,
    /// A side effect committed together with the event, never apart.
    effect: Option<Effect>,
    /// Not recorded yet: an update handed to the guest, journaled as
    /// accepted once the guest goes on with it (see `undecided`).
    deferred: bool,
}

impl Step {
    pub(super) fn new(event: Event, durable: Durable) -> Self {
        Step {
            event,
            durable,
            consumes: None,
            effect: None,
            deferred: false,
        }
    }

    fn consuming(mut self, signal_id: i64) -> Self {
        self.consumes = Some(signal_id);
        self
    }

    pub(super) fn with_effect(mut self, effect: Effect) -> Self {
        self.effect = Some(effect);
        self
    }
}

/// How a journaled call was answered.
pub(super) enum Answer {
    /// From the journal.
    Replayed(Recorded),
    /// Live, and now journaled.
    Live(Recorded),
    /// A soft call the journal goes on without.
    Skipped,
}

impl Answer {
    /// The event that answers the call (a hard call always has one).
    pub(super) fn recorded(&self) -> wasmtime::Result<&Recorded> {
        match self {
            Answer::Replayed(r) | Answer::Live(r) => Ok(r),
            Answer::Skipped => Err(wasmtime::Error::msg("only soft calls are skipped")),
        }
    }
}

pub struct WorkflowState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) memory: MemoryLimit,
    pub(super) slice: Slice,
    pub(super) run: RunFacts,
    pub(super) cursor: Cursor,
    pub(super) sink: Sink,
    pub(super) ops: Vec<Op>,
    pub(super) host: Arc<dyn Host>,
    pub(super) inbox: mpsc::UnboundedReceiver<Notice>,
    /// Notices taken from the inbox so far (see `Ending::Suspended`).
    pub(super) notices_seen: u64,
    /// Delivered, not yet consumed signals, by arrival order.
    signals: BTreeMap<i64, Signal>,
    consumed_signals: HashSet<i64>,
    /// Requested, not yet taken updates, oldest first.
    pub(super) updates: Vec<UpdateRecord>,
    /// Updates this execution took (accepted or rejected), by id.
    pub(super) taken_updates: HashSet<String>,
    /// The update the last await handed to the guest, not journaled yet:
    /// the guest either rejects it at once or goes on with it (any other
    /// journaled call, or the end), which journals it as accepted.
    pub(super) undecided: Option<Event>,
    /// Updates accepted and not answered yet: handle -> update id.
    pub(super) accepted_updates: HashMap<u32, String>,
    pub(super) cancel_delivered: bool,
    pub(super) deadline_delivered: bool,
    /// Asked to leave memory at the next wait.
    pub(super) evict: bool,
    /// When this execution began replaying its journal, until it goes live.
    pub(super) replaying_since: Option<std::time::Instant>,
    /// The span of the latest live host call (disabled when not traced):
    /// what the call starts (an activity) runs under it.
    pub(super) call_span: tracing::Span,
    /// Some sent update's request is still to be made.
    pub(super) asks_pending: bool,
    /// Paused by an operator while resident: no await is answered.
    pub(super) paused: bool,
    /// Pause and unpause requests taken from the inbox, to journal.
    pub(super) pause_requests: Vec<super::ops::PauseRequest>,
    /// A compatibility check: replay only, stop where the journal ends.
    pub(super) check: bool,
    /// What the op the last live await consumed ran (see `Op::into_label`).
    pub(super) consumed_label: Option<String>,
    /// Tasks of activities cancelled without waiting for them (try-cancel,
    /// abandon): they run on while the run is in memory.
    pub(super) let_go: Vec<tokio::task::JoinHandle<super::ActivityOutcome>>,
    last_monotonic: u64,
    stderr: MemoryOutputPipe,
}

impl Drop for WorkflowState {
    fn drop(&mut self) {
        for task in &self.let_go {
            task.abort();
        }
    }
}

impl WasiView for WorkflowState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_io::IoView for WorkflowState {
    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

/// Largest random draw a workflow may journal in one call.
const MAX_RANDOM: u64 = 1 << 20;

pub(super) fn corrupt(recorded: &Recorded) -> wasmtime::Error {
    wasmtime::Error::msg(format!(
        "journal event {} ({}) does not fit the call that matched it: the journal is corrupt",
        recorded.seq,
        recorded.event.kind()
    ))
}

fn fill_random(buf: &mut [u8]) {
    use wasmtime_wasi::Rng;
    wasmtime_wasi::thread_rng().fill_bytes(buf);
}

impl WorkflowState {
    pub fn new(
        host: Arc<dyn Host>,
        run: RunFacts,
        cursor: Cursor,
        sink: Sink,
        signals: Vec<Signal>,
        inbox: mpsc::UnboundedReceiver<Notice>,
    ) -> Self {
        let (wasi, stderr) = captured_wasi();
        let config = &host.engine().config;
        WorkflowState {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryLimit::within(config.memory_limit, run.limits.memory),
            slice: Slice::new(
                run.limits
                    .spin
                    .map_or(config.spin_limit, |own| own.min(config.spin_limit)),
            ),
            run,
            cursor,
            sink,
            ops: Vec::new(),
            host,
            inbox,
            notices_seen: 0,
            signals: signals.into_iter().map(|s| (s.id, s)).collect(),
            consumed_signals: HashSet::new(),
            updates: Vec::new(),
            taken_updates: HashSet::new(),
            undecided: None,
            accepted_updates: HashMap::new(),
            cancel_delivered: false,
            deadline_delivered: false,
            evict: false,
            replaying_since: None,
            call_span: tracing::Span::none(),
            asks_pending: false,
            paused: false,
            pause_requests: Vec::new(),
            check: false,
            consumed_label: None,
            let_go: Vec::new(),
            last_monotonic: 0,
            stderr,
        }
    }

    /// Updates requested for the run's workflow id before it started.
    pub fn with_updates(mut self, updates: Vec<UpdateRecord>) -> Self {
        for update in updates {
            self.queue_update(update);
        }
        self
    }

    /// Make this execution a compatibility check: it replays the journal
    /// and stops, without side effects, where the journal ends.
    pub fn checking(mut self) -> Self {
        self.check = true;
        self
    }

    /// What the guest wrote to stderr (a panic message, typically).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_string()
    }

    /// The durability combinator: every journaled host call goes through
    /// here. The journal answers first — the recorded event of a call that
    /// matches by kind and argument digest, a skipped soft call, or a trap
    /// with the divergence. Once the journal is exhausted the call runs
    /// `live`, whose event is recorded (with the signal it consumes and the
    /// effects it attached to the sink) and made durable as its step says.
    /// A compatibility check stops there instead.
    pub(super) async fn journaled(
        &mut self,
        call: &Call<'_>,
        live: impl AsyncFnOnce(&mut Self) -> wasmtime::Result<Step>,
    ) -> wasmtime::Result<Answer> {
        match self.cursor.replay(call) {
            Err(divergence) => Err(Interrupt::Diverged(divergence).into()),
            Ok(Replay::Recorded(recorded)) => Ok(Answer::Replayed(recorded.clone())),
            Ok(Replay::Skipped) => Ok(Answer::Skipped),
            Ok(Replay::Live) if self.check => Err(Interrupt::ReplayComplete.into()),
            Ok(Replay::Live) => {
                self.went_live();
                self.accept_undecided();
                if let Some(max) = self.run.limits.max_journal_events
                    && self.sink.next_seq() >= max
                {
                    return Err(Interrupt::JournalLimit(max).into());
                }
                // A span per live host call (traced only when exported).
                let span = tracing::debug_span!("host-call", kind = call.kind);
                self.call_span = span.clone();
                let step = live(self).instrument(span).await?;
                if step.deferred {
                    let recorded = Recorded {
                        seq: self.sink.next_seq(),
                        at_ms: crate::clock::now_ms(),
                        event: step.event.clone(),
                    };
                    self.undecided = Some(step.event);
                    return Ok(Answer::Live(recorded));
                }
                let recorded = match step.effect {
                    Some(effect) => self
                        .sink
                        .record_call_with(step.event, call.digest(), effect),
                    None => self
                        .sink
                        .record_call(step.event, call.digest(), step.consumes),
                };
                match step.durable {
                    Durable::Later => {}
                    Durable::Soon => self.sink.send(),
                    Durable::Now => {
                        if let Err(e) = self.sink.commit(None).await {
                            return Err(Interrupt::Storage(format!("{e:#}")).into());
                        }
                    }
                }
                Ok(Answer::Live(recorded))
            }
        }
    }

    /// [`Self::journaled`] for a call from a synchronous import (a WASI
    /// clock or random draw): its live part never waits and its event rides
    /// along with the next commit, so it completes at the first poll.
    fn journaled_at_once(
        &mut self,
        call: &Call<'_>,
        live: impl FnOnce(&mut Self) -> Event,
    ) -> wasmtime::Result<Answer> {
        self.journaled(call, async |s| Ok(Step::new(live(s), Durable::Later)))
            .now_or_never()
            .unwrap_or_else(|| wasmtime::bail!("a call journaled at once had to wait"))
    }

    pub(super) fn queue_signal(&mut self, signal: Signal) {
        if !self.consumed_signals.contains(&signal.id) {
            self.signals.insert(signal.id, signal);
        }
    }

    /// The oldest delivered signal named `name`, consumed.
    pub(super) fn take_signal(&mut self, name: &str) -> Option<Signal> {
        let id = self.signals.values().find(|s| s.name == name)?.id;
        self.consumed_signals.insert(id);
        self.signals.remove(&id)
    }

    pub(super) fn clock(&mut self, source: Source) -> wasmtime::Result<u64> {
        let last_monotonic = self.last_monotonic;
        let answer = self.journaled_at_once(&calls::clock(source), |_| {
            let mut nanos = crate::clock::now_nanos();
            if source == Source::MonotonicClock {
                nanos = nanos.max(last_monotonic + 1);
            }
            Event::Clock { source, nanos }
        })?;
        let recorded = answer.recorded()?;
        let Event::Clock { nanos, .. } = recorded.event else {
            return Err(corrupt(recorded));
        };
        if source == Source::MonotonicClock {
            self.last_monotonic = nanos;
        }
        Ok(nanos)
    }

    pub(super) fn random(&mut self, source: Source, len: u64) -> wasmtime::Result<Vec<u8>> {
        if len > MAX_RANDOM {
            wasmtime::bail!("a workflow may draw at most {MAX_RANDOM} random bytes at once");
        }
        let answer = self.journaled_at_once(&calls::random(source, len), |_| {
            let mut bytes = vec![0u8; len as usize];
            fill_random(&mut bytes);
            Event::Random {
                source,
                hex: hex::encode(&bytes),
            }
        })?;
        let recorded = answer.recorded()?;
        match &recorded.event {
            Event::Random { hex, .. } => hex::decode(hex).map_err(|_| corrupt(recorded)),
            _ => Err(corrupt(recorded)),
        }
    }

    /// The journal is replayed: how long that took is measured once.
    pub(super) fn went_live(&mut self) {
        if let Some(since) = self.replaying_since.take() {
            let m = crate::metrics::metrics();
            crate::metrics::observe(&m.replays, &[&self.run.namespace], since.elapsed());
        }
    }

    pub(super) fn new_handle(&mut self, op: Op) -> u32 {
        self.ops.push(op);
        (self.ops.len() - 1) as u32
    }

    /// Await `handles` (one, or a select over several): from the journal
    /// while replaying, live afterwards.
    pub(super) async fn await_handles(
        &mut self,
        handles: &[u32],
        select: bool,
    ) -> wasmtime::Result<(u32, Result<String, Failure>)> {
        if handles.is_empty() {
            wasmtime::bail!("await-any of no handles");
        }
        for &h in handles {
            match self.ops.get(h as usize) {
                None => wasmtime::bail!("await of handle #{h}, which the workflow never created"),
                Some(Op::Consumed) => wasmtime::bail!("handle #{h} was already awaited"),
                Some(_) => {}
            }
        }
        self.consumed_label = None;
        let call = if select {
            calls::await_any(handles)
        } else {
            calls::await_handle(handles[0])
        };
        self.slice.restart();
        let answer = self
            .journaled(&call, async |s| {
                let (_, event, from_held) = s.wait_live(handles).await?;
                let event = event.selected(select.then(|| handles.to_vec()));
                // An activity's or child's result is the durable point of
                // a step; a timer or a signal can be observed again after a
                // crash, and so can a held outcome (already durable).
                let durable = match event {
                    _ if from_held => Durable::Later,
                    Event::ActivityCompleted { .. }
                    | Event::ActivityFailed { .. }
                    | Event::ChildCompleted { .. }
                    | Event::ChildFailed { .. } => Durable::Now,
                    _ => Durable::Later,
                };
                // The outcomes of other activities that have ended share
                // this commit (a fan-out's results arrive together): their
                // awaits then answer without a commit of their own.
                if durable == Durable::Now {
                    s.hold_ended().await?;
                }
                let step = match &event {
                    Event::SignalReceived { signal_id, .. } => {
                        let id = *signal_id;
                        Step::new(event, durable).consuming(id)
                    }
                    Event::UpdateAccepted { .. } => Step {
                        deferred: true,
                        ..Step::new(event, durable)
                    },
                    _ => Step::new(event, durable),
                };
                Ok(step)
            })
            .await?;
        self.slice.restart();
        match answer {
            Answer::Replayed(recorded) => self.replay_completion(handles, recorded),
            Answer::Live(recorded) => {
                let (h, _) = recorded
                    .event
                    .completion()
                    .ok_or_else(|| corrupt(&recorded))?;
                let label = self.consumed_label.take();
                Ok((h, response(&recorded.event, label.as_deref())))
            }
            Answer::Skipped => Err(wasmtime::Error::msg("an await is never skipped")),
        }
    }

    fn replay_completion(
        &mut self,
        handles: &[u32],
        recorded: Recorded,
    ) -> wasmtime::Result<(u32, Result<String, Failure>)> {
        let Some((h, _)) = recorded.event.completion() else {
            return Err(corrupt(&recorded));
        };
        if !handles.contains(&h) {
            return Err(corrupt(&recorded));
        }
        let fits = match (&self.ops[h as usize], &recorded.event) {
            (Op::Signal { name }, Event::SignalReceived { name: got, .. }) if name != got => {
                return Err(Interrupt::Diverged(Divergence {
                    seq: recorded.seq,
                    journal: format!("signal `{got}` for #{h}"),
                    code: format!("signal `{name}` for #{h}"),
                })
                .into());
            }
            (_, Event::Interrupted { .. }) => true,
            (Op::Signal { .. }, Event::SignalReceived { .. }) => true,
            (Op::Update { name }, Event::UpdateAccepted { name: got, .. }) => name == got,
            (
                Op::Activity { .. },
                Event::ActivityCompleted { .. } | Event::ActivityFailed { .. },
            ) => true,
            (Op::Timer { .. }, Event::TimerFired { .. }) => true,
            (Op::UpdateOut { .. }, Event::UpdateAnswered { .. }) => true,
            (Op::Child { .. }, Event::ChildCompleted { .. } | Event::ChildFailed { .. }) => true,
            (Op::Dropped(_), _) => false,
            _ => false,
        };
        if !fits {
            return Err(Interrupt::Diverged(Divergence {
                seq: recorded.seq,
                journal: recorded.event.summary(),
                code: format!("the result of #{h} ({})", self.ops[h as usize].describe()),
            })
            .into());
        }
        match &recorded.event {
            Event::Interrupted { failure, .. } => self.interrupted(failure),
            Event::SignalReceived { signal_id, .. } => {
                self.consumed_signals.insert(*signal_id);
                self.signals.remove(signal_id);
            }
            Event::UpdateAccepted { update_id, .. } => {
                self.taken_updates.insert(update_id.clone());
                self.updates.retain(|u| &u.update_id != update_id);
                self.accepted_updates.insert(h, update_id.clone());
            }
            _ => {}
        }
        let label = std::mem::replace(&mut self.ops[h as usize], Op::Consumed).into_label();
        Ok((h, response(&recorded.event, label.as_deref())))
    }
}
