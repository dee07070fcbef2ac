//! A workflow's host state and its context imports. Every journaled call
//! goes through [`WorkflowState::replayed`] (answer from the journal, or
//! detect divergence) and [`WorkflowState::record`] (append when live).

use super::bindings::workflow::weft::workflow::{context, types};
use super::bindings::{WitActivityOptions, WitFailure, log_level};
use super::limits::{Interrupt, MemoryLimit, Slice, storage};
use super::ops::{Notice, Op, response};
use crate::journal::{
    ActivityOptions, Call, Cursor, Divergence, ErrorInfo, Event, ParentClose, Recorded, Sink,
    Source, StartSpec, calls, payload_value,
};
use crate::scheduler::{ActivityJob, Runtime};
use crate::store::{ComponentKind, Effect, NewRun, Signal, now_ms};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use tokio::sync::mpsc;
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
}

pub struct WorkflowState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) memory: MemoryLimit,
    pub(super) slice: Slice,
    pub(super) run: RunFacts,
    cursor: Cursor,
    sink: Sink,
    pub(super) ops: Vec<Op>,
    pub(super) rt: Arc<Runtime>,
    pub(super) inbox: mpsc::UnboundedReceiver<Notice>,
    /// Notices taken from the inbox so far (see `Ending::Suspended`).
    pub(super) notices_seen: u64,
    /// Delivered, not yet consumed signals, by arrival order.
    signals: BTreeMap<i64, Signal>,
    consumed_signals: HashSet<i64>,
    pub(super) cancel_delivered: bool,
    pub(super) deadline_delivered: bool,
    /// Asked to leave memory at the next wait.
    pub(super) evict: bool,
    /// A compatibility check: replay only, stop where the journal ends.
    check: bool,
    last_monotonic: u64,
    stderr: MemoryOutputPipe,
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

fn corrupt(recorded: &Recorded) -> wasmtime::Error {
    wasmtime::Error::msg(format!(
        "journal event {} ({}) does not fit the call that matched it: the journal is corrupt",
        recorded.seq,
        recorded.event.kind()
    ))
}

fn wall_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn fill_random(buf: &mut [u8]) {
    use wasmtime_wasi::Rng;
    wasmtime_wasi::thread_rng().fill_bytes(buf);
}

impl WorkflowState {
    pub fn new(
        rt: Arc<Runtime>,
        run: RunFacts,
        cursor: Cursor,
        sink: Sink,
        signals: Vec<Signal>,
        inbox: mpsc::UnboundedReceiver<Notice>,
    ) -> Self {
        let stderr = MemoryOutputPipe::new(64 * 1024);
        let wasi = WasiCtx::builder()
            .stdout(MemoryOutputPipe::new(64 * 1024))
            .stderr(stderr.clone())
            .build();
        let config = &rt.engine.config;
        WorkflowState {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryLimit {
                limit: config.memory_limit,
            },
            slice: Slice::new(config.spin_limit),
            run,
            cursor,
            sink,
            ops: Vec::new(),
            rt,
            inbox,
            notices_seen: 0,
            signals: signals.into_iter().map(|s| (s.id, s)).collect(),
            consumed_signals: HashSet::new(),
            cancel_delivered: false,
            deadline_delivered: false,
            evict: false,
            check: false,
            last_monotonic: 0,
            stderr,
        }
    }

    /// Make this execution a compatibility check: it replays the journal
    /// and stops, without side effects, where the journal ends.
    pub fn checking(mut self) -> Self {
        self.check = true;
        self
    }

    pub fn sink(&self) -> &Sink {
        &self.sink
    }

    pub fn cursor(&mut self) -> &mut Cursor {
        &mut self.cursor
    }

    /// What the guest wrote to stderr (a panic message, typically).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_string()
    }

    /// Answer `call` from the journal while replaying: `Some` with the
    /// recorded event, `None` once the journal is exhausted (the call runs
    /// live), or a trap that stops the run as diverged.
    fn replayed(&mut self, call: &Call) -> wasmtime::Result<Option<Recorded>> {
        match self.cursor.expect(call) {
            Ok(None) if self.check => Err(Interrupt::ReplayComplete.into()),
            Ok(recorded) => Ok(recorded.cloned()),
            Err(divergence) => Err(Interrupt::Diverged(divergence).into()),
        }
    }

    /// Append a live event to the journal (durable at the next commit).
    fn record(&mut self, event: Event) -> Recorded {
        self.sink.record(event)
    }

    /// Make the journal durable before the guest sees a result (the
    /// runtime starts or tells the runs its effects reached).
    async fn commit(&mut self) -> wasmtime::Result<()> {
        match self.sink.commit(None).await {
            Ok(_) => Ok(()),
            Err(e) => Err(Interrupt::Storage(format!("{e:#}")).into()),
        }
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
        let call = calls::clock(source);
        let nanos = match self.replayed(&call)? {
            Some(recorded) => match recorded.event {
                Event::Clock { nanos, .. } => nanos,
                _ => return Err(corrupt(&recorded)),
            },
            None => {
                let mut nanos = wall_nanos();
                if source == Source::MonotonicClock {
                    nanos = nanos.max(self.last_monotonic + 1);
                }
                self.record(Event::Clock { source, nanos });
                nanos
            }
        };
        if source == Source::MonotonicClock {
            self.last_monotonic = nanos;
        }
        Ok(nanos)
    }

    pub(super) fn random(&mut self, source: Source, len: u64) -> wasmtime::Result<Vec<u8>> {
        let call = calls::random(source, len);
        match self.replayed(&call)? {
            Some(recorded) => match &recorded.event {
                Event::Random { hex, .. } => hex::decode(hex).map_err(|_| corrupt(&recorded)),
                _ => Err(corrupt(&recorded)),
            },
            None => {
                let mut bytes = vec![0u8; len as usize];
                fill_random(&mut bytes);
                self.record(Event::Random {
                    source,
                    hex: hex::encode(&bytes),
                });
                Ok(bytes)
            }
        }
    }

    fn new_handle(&mut self, op: Op) -> u32 {
        self.ops.push(op);
        (self.ops.len() - 1) as u32
    }

    /// Await `handles` (one, or a select over several): from the journal
    /// while replaying, live afterwards.
    async fn await_handles(
        &mut self,
        handles: &[u32],
        select: bool,
    ) -> wasmtime::Result<(u32, Result<String, WitFailure>)> {
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
        let call = if select {
            calls::await_any(handles)
        } else {
            calls::await_handle(handles[0])
        };
        if let Some(recorded) = self.replayed(&call)? {
            return self.replay_completion(handles, recorded);
        }
        self.slice.restart();
        let (h, event) = self.wait_live(handles).await?;
        let event = event.selected(select.then(|| handles.to_vec()));
        let answer = response(&event);
        let durable = matches!(
            event,
            Event::ActivityCompleted { .. }
                | Event::ActivityFailed { .. }
                | Event::ChildCompleted { .. }
                | Event::ChildFailed { .. }
        );
        match &event {
            Event::SignalReceived { signal_id, .. } => {
                let id = *signal_id;
                self.sink.record_consuming(event, id);
            }
            _ => {
                self.record(event);
            }
        }
        // An activity's or child's result is the durable point of a step;
        // a timer or a signal can be observed again after a crash.
        if durable {
            self.commit().await?;
        }
        self.slice.restart();
        Ok((h, answer))
    }

    fn replay_completion(
        &mut self,
        handles: &[u32],
        recorded: Recorded,
    ) -> wasmtime::Result<(u32, Result<String, WitFailure>)> {
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
            (
                Op::Activity { .. },
                Event::ActivityCompleted { .. } | Event::ActivityFailed { .. },
            ) => true,
            (Op::Timer { .. }, Event::TimerFired { .. }) => true,
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
            _ => {}
        }
        self.ops[h as usize] = Op::Consumed;
        Ok((h, response(&recorded.event)))
    }

    /// A workflow's newest version, for children and signal-with-start.
    async fn latest_workflow(
        &mut self,
        workflow: &str,
    ) -> wasmtime::Result<Result<crate::store::ComponentVersion, ErrorInfo>> {
        let rt = self.rt.clone();
        let version = rt.store.latest_version(workflow).await.map_err(storage)?;
        Ok(match version {
            Some(v) if v.kind == ComponentKind::Workflow => Ok(v),
            _ => Err(ErrorInfo::new(
                "unknown-workflow",
                format!("no workflow named `{workflow}` is deployed"),
            )),
        })
    }

    fn new_run(
        &self,
        version: &crate::store::ComponentVersion,
        workflow_id: Option<String>,
        input: Value,
    ) -> NewRun {
        let run_id = uuid::Uuid::now_v7().to_string();
        NewRun {
            workflow_id: workflow_id.unwrap_or_else(|| run_id.clone()),
            run_id,
            namespace: self.run.namespace.clone(),
            workflow: version.name.clone(),
            version: version.version,
            digest: version.digest.clone(),
            input,
            at_ms: now_ms(),
            parent: None,
            deadline_at_ms: None,
        }
    }

    /// Send a signal (with `start`: signal-with-start), exactly once.
    async fn send_signal(
        &mut self,
        workflow_id: String,
        name: String,
        payload: String,
        start: Option<StartSpec>,
    ) -> wasmtime::Result<Result<(), types::ErrorInfo>> {
        let payload = payload_value(&payload);
        let call = calls::signal_out(&workflow_id, &name, &payload, start.as_ref());
        if let Some(recorded) = self.replayed(&call)? {
            return match recorded.event {
                Event::SignalSent { error: None, .. } => Ok(Ok(())),
                Event::SignalSent { error: Some(e), .. } => Ok(Err(e.into())),
                _ => Err(corrupt(&recorded)),
            };
        }
        let effect = match &start {
            Some(spec) => match self.latest_workflow(&spec.workflow).await? {
                Ok(version) => {
                    let new = self.new_run(&version, Some(workflow_id.clone()), spec.input.clone());
                    Ok(Effect::SignalWithStart {
                        start: new,
                        name: name.clone(),
                        payload: payload.clone(),
                    })
                }
                Err(e) => Err(e),
            },
            None => match self
                .rt
                .store
                .open_run(&self.run.namespace, &workflow_id)
                .await
                .map_err(storage)?
            {
                Some(target) => Ok(Effect::Signal {
                    run_id: target.run_id,
                    name: name.clone(),
                    payload: payload.clone(),
                }),
                None => Err(ErrorInfo::new(
                    "not-found",
                    format!("no open run with workflow id `{workflow_id}`"),
                )),
            },
        };
        let error = effect.as_ref().err().cloned();
        if let Ok(effect) = effect {
            self.sink.effect(effect);
        }
        self.record(Event::SignalSent {
            workflow_id,
            name,
            payload,
            start,
            error: error.clone(),
        });
        self.commit().await?;
        Ok(match error {
            None => Ok(()),
            Some(e) => Err(e.into()),
        })
    }
}

impl types::Host for WorkflowState {}

impl context::Host for WorkflowState {
    async fn info(&mut self) -> wasmtime::Result<types::RunInfo> {
        Ok(types::RunInfo {
            run_id: self.run.run_id.clone(),
            workflow_id: self.run.workflow_id.clone(),
            workflow: self.run.workflow.clone(),
            version: self.run.version,
        })
    }

    async fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(self.clock(Source::Context)? / 1_000_000)
    }

    async fn random_bytes(&mut self, len: u32) -> wasmtime::Result<Vec<u8>> {
        if len > 1 << 20 {
            wasmtime::bail!("a workflow may draw at most 1 MiB of random bytes at once");
        }
        self.random(Source::Context, len as u64)
    }

    async fn log(&mut self, level: types::LogLevel, message: String) -> wasmtime::Result<()> {
        if !self.cursor.replaying() {
            let run = &self.run.run_id;
            match log_level(level) {
                tracing::Level::ERROR => tracing::error!(run, "{message}"),
                tracing::Level::WARN => tracing::warn!(run, "{message}"),
                tracing::Level::INFO => tracing::info!(run, "{message}"),
                _ => tracing::debug!(run, "{message}"),
            }
        }
        Ok(())
    }

    async fn schedule_activity(
        &mut self,
        name: String,
        input: String,
        options: WitActivityOptions,
    ) -> wasmtime::Result<u32> {
        let handle = self.ops.len() as u32;
        let input_value = payload_value(&input);
        let options = ActivityOptions::from(options);
        let call = calls::activity(&name, &input_value, &options);
        let (recorded, live) = match self.replayed(&call)? {
            Some(recorded) => (recorded, false),
            None => {
                let event = Event::ActivityScheduled {
                    handle,
                    name: name.clone(),
                    input: input_value,
                    options: options.clone(),
                };
                (self.record(event), true)
            }
        };
        let (prior_attempts, next_attempt_at_ms) = self.cursor.failed_attempts(handle);
        let job = ActivityJob {
            run_id: self.run.run_id.clone(),
            workflow_id: self.run.workflow_id.clone(),
            handle,
            name,
            input,
            options,
            idempotency_key: format!("{}:{}", self.run.run_id, recorded.seq),
            scheduled_at_ms: recorded.at_ms,
            prior_attempts,
            next_attempt_at_ms,
        };
        let task = live.then(|| self.rt.spawn_activity(job.clone(), self.sink.clone()));
        Ok(self.new_handle(Op::Activity {
            job: Box::new(job),
            task,
            outcome: None,
        }))
    }

    async fn start_timer(&mut self, duration_ms: u64) -> wasmtime::Result<u32> {
        let handle = self.ops.len() as u32;
        let call = calls::timer(duration_ms);
        let fire_at_ms = match self.replayed(&call)? {
            Some(recorded) => match recorded.event {
                Event::TimerStarted { fire_at_ms, .. } => fire_at_ms as i64,
                _ => return Err(corrupt(&recorded)),
            },
            None => {
                let fire_at_ms = now_ms().saturating_add(duration_ms.min(i64::MAX as u64) as i64);
                self.record(Event::TimerStarted {
                    handle,
                    duration_ms,
                    fire_at_ms: fire_at_ms as u64,
                });
                fire_at_ms
            }
        };
        Ok(self.new_handle(Op::Timer { fire_at_ms }))
    }

    async fn receive_signal(&mut self, name: String) -> wasmtime::Result<u32> {
        Ok(self.new_handle(Op::Signal { name }))
    }

    async fn start_child(
        &mut self,
        workflow: String,
        input: String,
        options: types::ChildOptions,
    ) -> wasmtime::Result<u32> {
        let handle = self.ops.len() as u32;
        let input = payload_value(&input);
        let parent_close = match options.parent_close {
            types::ParentClosePolicy::Abandon => ParentClose::Abandon,
            types::ParentClosePolicy::Cancel => ParentClose::Cancel,
        };
        let call = calls::child(
            &workflow,
            options.workflow_id.as_deref(),
            &input,
            parent_close,
        );
        if let Some(recorded) = self.replayed(&call)? {
            let Event::ChildStarted {
                child_run_id,
                error,
                ..
            } = recorded.event
            else {
                return Err(corrupt(&recorded));
            };
            return Ok(self.new_handle(Op::Child {
                run_id: child_run_id,
                error,
                stale: true,
            }));
        }
        let started = match self.latest_workflow(&workflow).await? {
            Ok(version) => {
                let mut new = self.new_run(&version, options.workflow_id.clone(), input.clone());
                new.parent = Some((self.run.run_id.clone(), parent_close));
                match self
                    .rt
                    .store
                    .open_run(&new.namespace, &new.workflow_id)
                    .await
                    .map_err(storage)?
                {
                    Some(_) => Err(ErrorInfo::new(
                        "workflow-id-in-use",
                        format!("an open run already has workflow id `{}`", new.workflow_id),
                    )),
                    None => Ok(new),
                }
            }
            Err(e) => Err(e),
        };
        let (child_run_id, error) = match started {
            Ok(new) => {
                let id = new.run_id.clone();
                self.sink.effect(Effect::CreateRun(new));
                (Some(id), None)
            }
            Err(e) => (None, Some(e)),
        };
        self.record(Event::ChildStarted {
            handle,
            workflow,
            workflow_id: options.workflow_id,
            input,
            parent_close,
            child_run_id: child_run_id.clone(),
            error: error.clone(),
        });
        self.commit().await?;
        Ok(self.new_handle(Op::Child {
            run_id: child_run_id,
            error,
            stale: true,
        }))
    }

    async fn await_(&mut self, handle: u32) -> wasmtime::Result<Result<String, WitFailure>> {
        Ok(self.await_handles(&[handle], false).await?.1)
    }

    async fn await_any(
        &mut self,
        handles: Vec<u32>,
    ) -> wasmtime::Result<(u32, Result<String, WitFailure>)> {
        self.await_handles(&handles, true).await
    }

    async fn signal_workflow(
        &mut self,
        workflow_id: String,
        name: String,
        payload: String,
    ) -> wasmtime::Result<Result<(), types::ErrorInfo>> {
        self.send_signal(workflow_id, name, payload, None).await
    }

    async fn signal_with_start(
        &mut self,
        workflow: String,
        workflow_id: String,
        input: String,
        name: String,
        payload: String,
    ) -> wasmtime::Result<Result<(), types::ErrorInfo>> {
        let start = StartSpec {
            workflow,
            input: payload_value(&input),
        };
        self.send_signal(workflow_id, name, payload, Some(start))
            .await
    }

    async fn set_status(&mut self, status: String) -> wasmtime::Result<()> {
        // Informational: replay skips the recorded ones, so record only live.
        if !self.cursor.replaying() && !self.check {
            let status = payload_value(&status);
            self.sink.effect(Effect::SetStatus(status.clone()));
            self.record(Event::StatusSet { status });
            // Visible to queries right away, without waiting for durability.
            self.sink.send();
        }
        Ok(())
    }

    async fn continue_as_new(&mut self, input: String) -> wasmtime::Result<()> {
        Err(Interrupt::ContinueAsNew {
            input: payload_value(&input),
        }
        .into())
    }

    async fn deadline_ms(&mut self) -> wasmtime::Result<Option<u64>> {
        Ok(self.run.deadline_at_ms.map(|d| d as u64))
    }

    /// Each call is answered on its own (a loop asks once per iteration):
    /// from the journal while replaying, true (and journaled) once live.
    async fn patched(&mut self, change_id: String) -> wasmtime::Result<bool> {
        match self.cursor.patch(&change_id) {
            Some(answer) => Ok(answer),
            None if self.check => Err(Interrupt::ReplayComplete.into()),
            None => {
                self.record(Event::PatchMarker { change_id });
                Ok(true)
            }
        }
    }
}
