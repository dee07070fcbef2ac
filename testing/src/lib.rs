//! Test weft workflows in-process: the real engine and runtime, with no
//! server and no network, on a virtual clock.
//!
//! A [`TestEnv`] deploys workflow components, stands in for activities
//! with Rust closures ([`TestEnv::mock_activity`]), starts runs, signals
//! and cancels them, and reads their result, status and journal. Time is
//! virtual: when nothing can progress without the clock (every run waits
//! on a timer, a backoff or a deadline), the clock skips to the earliest
//! of them, so a rollout that waits a week between rings finishes in
//! milliseconds. [`TestEnv::advance`] moves it explicitly, to look at a
//! run in between.
//!
//! ```no_run
//! use serde_json::json;
//! use weft_testing::TestEnv;
//!
//! # async fn example() -> anyhow::Result<()> {
//! let wasm = weft_testing::build_guest("hello")?;
//! let env = TestEnv::new().await?;
//! env.deploy("hello", &wasm).await?;
//! let greet = env.mock_activity("greeter", |call| Ok(json!(format!("hi {}", call.input))));
//! let run = env.start("hello", json!("ada")).await?;
//! assert_eq!(run.result().await?, json!("hi \"ada\""));
//! assert_eq!(greet.count(), 1);
//! # Ok(()) }
//! ```
//!
//! The store is a SQLite file in a temporary directory (in memory-backed
//! `/dev/shm` where there is one), removed with the environment. The clock
//! is the process's: environments in one test binary take turns (each
//! holds the turn while it lives), which costs little as each test takes
//! milliseconds of real time.

#![warn(missing_docs)]

mod build;
mod mock;
mod replay;
mod run;

pub use build::{build_guest, build_guest_in};
pub use mock::Mock;
pub use replay::{read_journal, replay_corpus};
pub use run::TestRun;
pub use weft::journal::{ErrorInfo, Event, Export, Recorded};
pub use weft::runtime::NativeCall;
pub use weft::store::{RunRecord, RunStatus};

use anyhow::Context as _;
use serde::Serialize;
use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};
use weft::clock;
use weft::engine::{Engine, EngineConfig};
use weft::runtime::{Runtime, RuntimeConfig, StartRun};
use weft::store::{DEFAULT_NAMESPACE, Durability, SqliteStore};

/// The virtual clock (the process's), in ms since the Unix epoch: what a
/// workflow reads as now, and a mock too.
pub fn now_ms() -> i64 {
    clock::now_ms()
}

/// The process's clock is shared: one environment at a time.
static TURN: LazyLock<Arc<Mutex<()>>> = LazyLock::new(Arc::default);

/// How long the runtime must stay still before the clock moves: readings
/// equal to the one before, with nothing under way (three readings over at
/// least two milliseconds).
const STILL_READINGS: u32 = 2;
const READING_EVERY: Duration = Duration::from_millis(1);

/// One workflow engine with its own store, on the process's virtual clock.
pub struct TestEnv {
    rt: Arc<Runtime>,
    _dir: tempfile::TempDir,
    _turn: OwnedMutexGuard<()>,
}

/// How a run ended, other than with its output.
#[derive(Debug, Clone, PartialEq)]
pub enum RunError {
    /// The run ended `failed`, `cancelled`, `timed-out`, `terminated` or
    /// `stuck` (a divergence): the status and the error it recorded.
    Ended {
        /// How it ended.
        status: RunStatus,
        /// What it recorded: `{"kind", "message", "details"?}`, or a
        /// divergence's diagnostic.
        error: Value,
    },
    /// The run waits for something no one will send (a signal, an update,
    /// a deploy) and no timer is left to fire.
    Waiting {
        /// What the workflow last published with `set-status`.
        status: Option<Value>,
    },
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Ended { status, error } => {
                write!(f, "the run ended {}: {error}", status.as_str())
            }
            RunError::Waiting { status } => write!(
                f,
                "the run waits for a signal, update or deploy that nothing sends, \
                 with no timer left to fire (its status: {})",
                status.as_ref().map_or("none".into(), Value::to_string)
            ),
        }
    }
}

impl std::error::Error for RunError {}

impl TestEnv {
    /// A fresh environment: an empty store, the `default` namespace, no
    /// components. Waits for its turn if another lives in this process.
    pub async fn new() -> anyhow::Result<TestEnv> {
        let turn = TURN.clone().lock_owned().await;
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::Builder::new()
                .prefix("weft-test")
                .tempdir_in(shm)?
        } else {
            tempfile::Builder::new().prefix("weft-test").tempdir()?
        };
        let store = SqliteStore::open(&dir.path().join("weft.db"), Durability::Normal).await?;
        let engine = Engine::new(EngineConfig {
            memory_limit: 256 << 20,
            spin_limit: Duration::from_secs(10),
            // Compiled components are keyed by digest and engine
            // configuration: sharing them between tests is safe.
            cache_dir: Some(std::env::temp_dir().join("weft-testing-cache")),
            max_instances: 64,
            guest_cores: 0,
        })?;
        let rt = Runtime::new(
            Arc::new(store),
            engine,
            RuntimeConfig {
                // Runs wait in memory (the clock skips over their timers)
                // and their journals read complete while they do.
                resident_timer_ms: 30 * 86_400_000,
                send_when_parked: true,
                activity_timeout: Duration::from_secs(300),
                max_resident_runs: 64,
                max_concurrent_activities: 64,
                deadline_grace_ms: 1000,
                cluster: None,
                peer_token: None,
                peer_client: reqwest::Client::new(),
            },
        );
        Ok(TestEnv {
            rt,
            _dir: dir,
            _turn: turn,
        })
    }

    /// The runtime itself, for what this harness does not wrap.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.rt
    }

    /// Deploy the component at `wasm` under `name` (a workflow or an
    /// activity); answers its version.
    pub async fn deploy(&self, name: &str, wasm: impl AsRef<Path>) -> anyhow::Result<u32> {
        let path = wasm.as_ref();
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let (version, _) = self.rt.deploy(DEFAULT_NAMESPACE, name, bytes, None).await?;
        Ok(version.version)
    }

    /// Answer every call of activity `name` (`cloud/create-record`, or a
    /// component's name for all its functions) with `f`, in place of a
    /// component: retries, timeouts and the journal are as for any
    /// activity. An `Err` is the attempt's failure (retried by the policy
    /// unless its kind is non-retryable).
    pub fn mock_activity<F>(&self, name: &str, f: F) -> Mock
    where
        F: Fn(&NativeCall) -> Result<Value, ErrorInfo> + Send + Sync + 'static,
    {
        let mock = Mock::default();
        self.rt.register_native_activity(name, mock.wrap(f));
        mock
    }

    /// Start a run of the newest version of `workflow`.
    pub async fn start(
        &self,
        workflow: &str,
        input: impl Serialize,
    ) -> anyhow::Result<TestRun<'_>> {
        self.start_run(workflow, None, input).await
    }

    /// Start a run under a workflow id of your choosing.
    pub async fn start_with_id(
        &self,
        workflow: &str,
        workflow_id: &str,
        input: impl Serialize,
    ) -> anyhow::Result<TestRun<'_>> {
        self.start_run(workflow, Some(workflow_id.to_string()), input)
            .await
    }

    async fn start_run(
        &self,
        workflow: &str,
        workflow_id: Option<String>,
        input: impl Serialize,
    ) -> anyhow::Result<TestRun<'_>> {
        let (run, _) = self
            .rt
            .start_run(StartRun {
                workflow: workflow.to_string(),
                input: serde_json::to_value(input)?,
                workflow_id,
                version: None,
                namespace: None,
                execution_timeout_ms: None,
                policy: Default::default(),
            })
            .await?;
        Ok(TestRun {
            env: self,
            run_id: run.run_id,
        })
    }

    /// A run this environment started (or a child of one), by id.
    pub fn run(&self, run_id: &str) -> TestRun<'_> {
        TestRun {
            env: self,
            run_id: run_id.to_string(),
        }
    }

    /// The virtual clock, in ms since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        now_ms()
    }

    /// Wait (in real time) until nothing runs that could progress without
    /// the clock: every run waits on a timer, a backoff, a deadline, or on
    /// something from outside.
    pub async fn settle(&self) {
        let mut last = None;
        let mut still = 0;
        while still < STILL_READINGS {
            let now = self.rt.under_way();
            // A wait that has ended is about to wake its task.
            let due = clock::next_wait_end_ms().is_some_and(|at| at <= clock::now_ms());
            if now.still() && !due && last == Some(now) {
                still += 1;
            } else {
                still = 0;
            }
            last = Some(now);
            tokio::time::sleep(READING_EVERY).await;
        }
    }

    /// Let `d` of virtual time pass: everything due within it happens, in
    /// order, and the environment settles after each.
    pub async fn advance(&self, d: Duration) {
        let until = clock::now_ms() + d.as_millis() as i64;
        loop {
            self.settle().await;
            match clock::next_wait_end_ms() {
                Some(at) if at <= until => clock::skip_to(at),
                _ => break,
            }
        }
        clock::skip_to(until);
        self.settle().await;
    }

    /// Skip to the next wait's end (call it settled): false when nothing
    /// waits on the clock.
    fn skip_to_next_wait(&self) -> bool {
        match clock::next_wait_end_ms() {
            Some(at) => {
                clock::skip_to(at);
                true
            }
            None => false,
        }
    }
}
