//! wasmtime: the engine configuration, the linkers, and the per-digest cache
//! of compiled components.
//!
//! Where a host call is journaled: [`workflow`] (`WorkflowState::journaled`,
//! the one durability combinator). Where a run is resumed:
//! `runtime::resume` reads it, [`runner::execute`] runs it.

pub mod activity;
pub mod bindings;
pub mod cancellation;
pub mod check;
mod components;
mod context;
mod contract_v0_1;
pub mod cpu;
mod exports;
pub mod heartbeat;
mod host;
mod limits;
mod ops;
mod paused;
pub mod runner;
mod update_out;
mod updates;
mod waits;
mod wasi;
pub mod workflow;

pub use components::{DeployError, Loaded, Prepared};
pub use host::{ActivityJob, ActivityOutcome, Host, UpdateAsk, Waits};
pub use limits::Interrupt;
pub use limits::RunLimits;
pub use ops::{Notice, PauseRequest};

use anyhow::Context as _;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::Linker;
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

use activity::ActivityState;
use workflow::WorkflowState;

/// How often the epoch advances: the granularity of yielding and of the
/// spin limit.
const EPOCH_TICK: Duration = Duration::from_millis(10);

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Linear memory one guest instance may grow to.
    pub memory_limit: usize,
    /// How long a guest may compute without waiting on the host.
    pub spin_limit: Duration,
    /// Compiled components, keyed by digest and engine configuration
    /// (`None`: compile every time, write nothing).
    pub cache_dir: Option<PathBuf>,
    /// Instances alive at once (workflows resident plus activity attempts).
    pub max_instances: u32,
    /// Guest executions running at once, on threads of their own, shared
    /// among namespaces in turn (see `cpu`); 0: one per core.
    pub guest_cores: usize,
}

pub struct Engine {
    wasm: wasmtime::Engine,
    workflow_linker: Linker<WorkflowState>,
    activity_linker: Linker<ActivityState>,
    engine_key: String,
    loaded: Mutex<HashMap<String, Arc<Loaded>>>,
    /// Guest work waits here for a core, namespaces in turn.
    pub cpu: Arc<cpu::Cpu>,
    /// Executions parked in an await that nothing ready answers.
    pub parked: std::sync::atomic::AtomicUsize,
    pub config: EngineConfig,
}

/// An execution parked in an await, counted in [`Engine::parked`] while
/// it lives.
pub(crate) struct Parked(Arc<Engine>);

impl Parked {
    pub(crate) fn new(engine: &Arc<Engine>) -> Parked {
        engine
            .parked
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Parked(engine.clone())
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        self.0
            .parked
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Engine {
    pub fn new(config: EngineConfig) -> anyhow::Result<Arc<Engine>> {
        let mut pool = PoolingAllocationConfig::new();
        let instances = config.max_instances.max(4);
        pool.total_component_instances(instances)
            .total_core_instances(instances * 8)
            .total_memories(instances * 3)
            .total_tables(instances * 4)
            .total_stacks(instances)
            .max_memory_size(config.memory_limit.next_multiple_of(65536) + 65536)
            .max_core_instances_per_component(32)
            .max_memories_per_component(8)
            .max_tables_per_component(16)
            .max_component_instance_size(1 << 20)
            .max_core_instance_size(4 << 20);
        // A freed instance's memory is given back (madvise) in batches:
        // one at a time, each drop interrupted the other core to flush
        // its TLB (12% of the server's samples in chain10's throughput
        // phase; batched, 30-40% less processor time a run).
        pool.decommit_batch_size(32);
        // A freed slot's first pages are reset in place (memset of the
        // pages the instance touched, found with the PAGEMAP_SCAN ioctl on
        // Linux 6.7+) instead of given back and faulted in again by the
        // next instance: each activity attempt is a fresh instance, and
        // this cut a chain10 run's processor time by about a third. Kept
        // memory is per slot, not per run: at most the peak of instances
        // alive at once, and few idle slots are kept warm.
        pool.linear_memory_keep_resident(256 << 10)
            .table_keep_resident(64 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto)
            .max_unused_warm_slots(8);

        let mut wasm_config = Config::new();
        wasm_config
            .wasm_component_model(true)
            .epoch_interruption(true)
            // Determinism: identical float results on every machine (threads
            // are not compiled in).
            .cranelift_nan_canonicalization(true)
            .relaxed_simd_deterministic(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let wasm = wasmtime::Engine::new(&wasm_config)?;

        let ticker = wasm.weak();
        std::thread::Builder::new()
            .name("weft-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })?;

        if let Some(dir) = &config.cache_dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create cache directory {}", dir.display()))?;
        }
        let engine_key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            wasm.precompile_compatibility_hash().hash(&mut h);
            format!("{:016x}", h.finish())
        };

        Ok(Arc::new(Engine {
            workflow_linker: wasi::workflow_linker(&wasm)?,
            activity_linker: activity::linker(&wasm)?,
            wasm,
            engine_key,
            loaded: Mutex::new(HashMap::new()),
            parked: Default::default(),
            cpu: {
                let cores = match config.guest_cores {
                    0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
                    n => n,
                };
                cpu::Cpu::new(cores).context("cannot start the guest threads")?
            },
            config,
        }))
    }

    pub fn wasm(&self) -> &wasmtime::Engine {
        &self.wasm
    }
}
