//! Guest limits (memory, CPU without yielding) and the reasons the host
//! stops a guest from inside a host call.

use crate::journal::Divergence;
use std::time::Duration;
use wasmtime::{ResourceLimiter, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// A namespace's limits on each of its runs (`None`: the server's own).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunLimits {
    pub max_journal_events: Option<u64>,
    /// Largest output the run may end with, as JSON bytes.
    pub max_payload_bytes: Option<u64>,
    /// Linear memory, in bytes; at most the server's.
    pub memory: Option<usize>,
    /// Computing without a host call; at most the server's.
    pub spin: Option<Duration>,
}

/// Why the host stopped a guest. Raised as a trap from a host call or the
/// epoch callback, and recognised by the runner when the call returns.
#[derive(Debug, thiserror::Error)]
pub enum Interrupt {
    /// The run waits for something far enough away that it is evicted:
    /// until `wake_at_ms` (a timer, its deadline) or until a notice.
    #[error("suspended")]
    Suspend { wake_at_ms: Option<i64> },
    /// The guest asked to continue as a new run.
    #[error("continued as new")]
    ContinueAsNew { input: serde_json::Value },
    /// A compatibility check replayed the whole journal.
    #[error("the replay reached the end of the journal")]
    ReplayComplete,
    /// The deadline passed, and so did the grace period for cleanup.
    #[error("{}", crate::journal::DEADLINE_STOP)]
    DeadlineExceeded,
    /// The code asked for something other than what the journal holds.
    #[error("nondeterminism: {0}")]
    Diverged(Divergence),
    #[error(
        "the guest computed for more than {0:?} without waiting on the host (epoch \
         interruption); workflow code must not spin"
    )]
    Spin(Duration),
    #[error(
        "the guest tried to grow its memory to {} MiB, past the limit of {} MiB",
        desired.div_ceil(1 << 20),
        limit >> 20
    )]
    Memory { desired: usize, limit: usize },
    /// The run's journal reached its namespace's limit.
    #[error(
        "the journal reached {0} events, the namespace's limit (max_journal_events); a \
         long-lived workflow should continue as new (continue-as-new) to start a fresh journal"
    )]
    JournalLimit(u64),
    /// A journal write failed: the run is left as it is and retried later.
    #[error("journal write failed: {0}")]
    Storage(String),
}

/// A store read failed inside a host call: the run stops and is retried.
pub fn storage(e: anyhow::Error) -> wasmtime::Error {
    Interrupt::Storage(format!("{e:#}")).into()
}

impl Interrupt {
    /// Find the interrupt in a trap's error chain.
    pub fn of(err: &wasmtime::Error) -> Option<&Interrupt> {
        err.chain().find_map(|e| e.downcast_ref::<Interrupt>())
    }
}

/// A guest's WASI context with stdout and stderr captured in memory (no
/// environment, no preopens); answers the stderr pipe, for error messages.
pub fn captured_wasi() -> (wasmtime_wasi::WasiCtx, MemoryOutputPipe) {
    let stderr = MemoryOutputPipe::new(64 * 1024);
    let wasi = wasmtime_wasi::WasiCtx::builder()
        .stdout(MemoryOutputPipe::new(64 * 1024))
        .stderr(stderr.clone())
        .build();
    (wasi, stderr)
}

/// Caps linear memory with a trap that says so (instead of a failed
/// `memory.grow` that surfaces as an obscure allocation abort).
pub struct MemoryLimit {
    pub limit: usize,
}

impl MemoryLimit {
    /// The server's limit, or a run's own if that is lower.
    pub fn within(server: usize, own: Option<usize>) -> Self {
        MemoryLimit {
            limit: own.map_or(server, |own| own.min(server)),
        }
    }
}

impl ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            return Err(Interrupt::Memory {
                desired,
                limit: self.limit,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// CPU-slice bookkeeping for the epoch callback: the slice restarts each
/// time the guest waits on the host. It counts the epoch ticks the guest
/// was running at, not wall time, so waiting for a core (other tasks, other
/// namespaces' turns) does not count as computing.
pub struct Slice {
    ticks: u32,
    limit: Duration,
}

impl Slice {
    pub fn new(limit: Duration) -> Self {
        Slice { ticks: 0, limit }
    }

    pub fn restart(&mut self) {
        self.ticks = 0;
    }

    /// Called at each epoch tick the guest runs at: yield to other tasks,
    /// or stop a spinner.
    pub fn tick(&mut self) -> wasmtime::Result<UpdateDeadline> {
        self.ticks += 1;
        if super::EPOCH_TICK * self.ticks > self.limit {
            return Err(Interrupt::Spin(self.limit).into());
        }
        Ok(UpdateDeadline::Yield(1))
    }
}
