//! A workflow's host state and its context imports. Every journaled call
//! goes through [`WorkflowState::replayed`] (answer from the journal, or
//! detect divergence) and [`WorkflowState::record`] (append when live).

use super::bindings::workflow::weft::workflow::{context, types};
use super::bindings::{WitActivityOptions, WitFailure, log_level};
use super::limits::{Interrupt, MemoryLimit, Slice};
use crate::journal::{
    ActivityOptions, Call, Cursor, Event, Recorded, Sink, Source, calls, payload_value,
};
use crate::scheduler::{ActivityJob, ActivityOutcome, Runtime};
use crate::store::now_ms;
use std::sync::Arc;
use tokio::task::JoinHandle;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Facts about the run, fixed for its life.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub run_id: String,
    pub workflow_id: String,
    pub workflow: String,
    pub version: u32,
}

/// An operation the guest started, by handle.
enum Op {
    Activity {
        job: Box<ActivityJob>,
        task: Option<JoinHandle<ActivityOutcome>>,
    },
    Timer {
        fire_at_ms: i64,
    },
    /// Already awaited.
    Consumed,
}

pub struct WorkflowState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) memory: MemoryLimit,
    pub(super) slice: Slice,
    facts: RunFacts,
    cursor: Cursor,
    sink: Sink,
    ops: Vec<Op>,
    rt: Arc<Runtime>,
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

impl WorkflowState {
    pub fn new(rt: Arc<Runtime>, facts: RunFacts, cursor: Cursor, sink: Sink) -> Self {
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
            facts,
            cursor,
            sink,
            ops: Vec::new(),
            rt,
            last_monotonic: 0,
            stderr,
        }
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
            Ok(recorded) => Ok(recorded.cloned()),
            Err(divergence) => Err(Interrupt::Diverged(divergence).into()),
        }
    }

    /// Append a live event to the journal (durable at the next commit).
    fn record(&mut self, event: Event) -> Recorded {
        self.sink.record(event)
    }

    /// Make the journal durable before the guest sees a result.
    async fn commit(&mut self) -> wasmtime::Result<()> {
        self.sink
            .commit(None)
            .await
            .map_err(|e| Interrupt::Storage(format!("{e:#}")).into())
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
                getrandom_fill(&mut bytes);
                self.record(Event::Random {
                    source,
                    hex: hex::encode(&bytes),
                });
                Ok(bytes)
            }
        }
    }

    fn spawn_activity(&self, job: &ActivityJob) -> JoinHandle<ActivityOutcome> {
        self.rt.spawn_activity(job.clone(), self.sink.clone())
    }

    fn in_flight(&self) -> bool {
        self.ops
            .iter()
            .any(|op| matches!(op, Op::Activity { task: Some(t), .. } if !t.is_finished()))
    }

    async fn await_activity(
        &mut self,
        handle: u32,
        job: ActivityJob,
        task: Option<JoinHandle<ActivityOutcome>>,
    ) -> wasmtime::Result<Result<String, WitFailure>> {
        let task = match task {
            Some(task) => task,
            // Scheduled before a restart and not completed: run it now.
            None => self.spawn_activity(&job),
        };
        let outcome = task
            .await
            .map_err(|e| wasmtime::Error::msg(format!("activity task failed: {e}")))?;
        let attempts = outcome.attempts;
        let (event, response) = match outcome.result {
            Ok(output) => {
                let text = output.to_string();
                (
                    Event::ActivityCompleted {
                        handle,
                        attempts,
                        output,
                    },
                    Ok(text),
                )
            }
            Err(failure) => (
                Event::ActivityFailed {
                    handle,
                    attempts,
                    failure: failure.clone(),
                },
                Err(failure.into()),
            ),
        };
        self.record(event);
        self.commit().await?;
        Ok(response)
    }

    async fn await_timer(
        &mut self,
        handle: u32,
        fire_at_ms: i64,
    ) -> wasmtime::Result<Result<String, WitFailure>> {
        let wait = fire_at_ms - now_ms();
        if wait > 0 {
            let resident = self.rt.config.resident_timer_ms as i64;
            if wait > resident && !self.in_flight() {
                // Far away: give the memory back and let the scheduler wake us.
                self.ops[handle as usize] = Op::Timer { fire_at_ms };
                return Err(Interrupt::Suspend {
                    wake_at_ms: fire_at_ms,
                }
                .into());
            }
            tokio::time::sleep(std::time::Duration::from_millis(wait as u64)).await;
        }
        // Not committed on its own: replaying an unrecorded, already due
        // timer fires it again, with the same outcome.
        self.record(Event::TimerFired { handle });
        Ok(Ok("null".to_string()))
    }
}

fn getrandom_fill(buf: &mut [u8]) {
    use wasmtime_wasi::Rng;
    wasmtime_wasi::thread_rng().fill_bytes(buf);
}

impl types::Host for WorkflowState {}

impl context::Host for WorkflowState {
    async fn info(&mut self) -> wasmtime::Result<types::RunInfo> {
        Ok(types::RunInfo {
            run_id: self.facts.run_id.clone(),
            workflow_id: self.facts.workflow_id.clone(),
            workflow: self.facts.workflow.clone(),
            version: self.facts.version,
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
            let run = &self.facts.run_id;
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
            run_id: self.facts.run_id.clone(),
            workflow_id: self.facts.workflow_id.clone(),
            handle,
            name,
            input,
            options,
            idempotency_key: format!("{}:{}", self.facts.run_id, recorded.seq),
            scheduled_at_ms: recorded.at_ms,
            prior_attempts,
            next_attempt_at_ms,
        };
        let task = live.then(|| self.spawn_activity(&job));
        self.ops.push(Op::Activity {
            job: Box::new(job),
            task,
        });
        Ok(handle)
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
        self.ops.push(Op::Timer { fire_at_ms });
        Ok(handle)
    }

    async fn await_(&mut self, handle: u32) -> wasmtime::Result<Result<String, WitFailure>> {
        let Some(slot) = self.ops.get_mut(handle as usize) else {
            wasmtime::bail!("await of handle #{handle}, which the workflow never created");
        };
        let op = std::mem::replace(slot, Op::Consumed);
        if matches!(op, Op::Consumed) {
            wasmtime::bail!("handle #{handle} was already awaited");
        }
        let call = calls::await_handle(handle);
        if let Some(recorded) = self.replayed(&call)? {
            return match (&op, recorded.event) {
                (Op::Activity { .. }, Event::ActivityCompleted { output, .. }) => {
                    Ok(Ok(output.to_string()))
                }
                (Op::Activity { .. }, Event::ActivityFailed { failure, .. }) => {
                    Ok(Err(failure.into()))
                }
                (Op::Timer { .. }, Event::TimerFired { .. }) => Ok(Ok("null".to_string())),
                (_, event) => Err(corrupt(&Recorded { event, ..recorded })),
            };
        }
        self.slice.restart();
        let response = match op {
            Op::Activity { job, task } => self.await_activity(handle, *job, task).await,
            Op::Timer { fire_at_ms } => self.await_timer(handle, fire_at_ms).await,
            Op::Consumed => unreachable!("checked above"),
        };
        self.slice.restart();
        response
    }
}
