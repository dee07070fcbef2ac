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
///
/// ```no_run
/// # fn example(env: &weft_testing::TestEnv) {
/// use serde_json::json;
/// // A mock that answers with the virtual time it was called at.
/// env.mock_activity("cloud/stamp", |_| Ok(json!(weft_testing::now_ms())));
/// # }
/// ```
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
///
/// ```no_run
/// use serde_json::json;
/// use weft_testing::TestEnv;
///
/// #[tokio::test]
/// async fn rollout_waits_a_week_between_rings() -> anyhow::Result<()> {
///     let env = TestEnv::new().await?;
///     env.deploy("rollout", weft_testing::build_guest("rollout")?).await?;
///     let deploys = env.mock_activity("cloud/deploy", |_| Ok(json!("ok")));
///     let run = env.start("rollout", json!({ "rings": 3 })).await?;
///     let started = env.now_ms();
///     run.result().await?; // milliseconds of real time
///     assert!(env.now_ms() - started >= 14 * 86_400_000);
///     assert_eq!(deploys.count(), 3);
///     Ok(())
/// }
/// ```
pub struct TestEnv {
    rt: Arc<Runtime>,
    _dir: tempfile::TempDir,
    _turn: OwnedMutexGuard<()>,
}

/// How a run ended, other than with its output: the error
/// [`TestRun::result`] answers, to downcast.
///
/// ```no_run
/// # async fn example(run: weft_testing::TestRun<'_>) -> anyhow::Result<()> {
/// use weft_testing::{RunError, RunStatus};
/// let err = run.result().await.unwrap_err();
/// match err.downcast_ref::<RunError>() {
///     Some(RunError::Ended { status: RunStatus::Failed, error }) => {
///         assert_eq!(error["kind"], "canary-failed");
///     }
///     other => panic!("expected a failure, got {other:?}"),
/// }
/// # Ok(()) }
/// ```
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
    ///
    /// ```no_run
    /// # async fn example() -> anyhow::Result<()> {
    /// let env = weft_testing::TestEnv::new().await?;
    /// # Ok(()) }
    /// ```
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
                idle_linger_ms: 30 * 86_400_000,
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
    ///
    /// ```no_run
    /// # async fn example(env: &weft_testing::TestEnv) -> anyhow::Result<()> {
    /// let run = env.start("hello", "ada").await?;
    /// env.runtime().cancel(&run.run_id).await?;
    /// # Ok(()) }
    /// ```
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.rt
    }

    /// Deploy the component at `wasm` under `name` (a workflow or an
    /// activity); answers its version.
    ///
    /// ```no_run
    /// # async fn example(env: &weft_testing::TestEnv) -> anyhow::Result<()> {
    /// let v1 = env.deploy("provision", weft_testing::build_guest("provision")?).await?;
    /// // A real activity component instead of a mock:
    /// env.deploy("cloud", weft_testing::build_guest("cloud-activities")?).await?;
    /// assert_eq!(v1, 1);
    /// # Ok(()) }
    /// ```
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
    ///
    /// ```no_run
    /// # fn example(env: &weft_testing::TestEnv) {
    /// use serde_json::json;
    /// use weft_testing::ErrorInfo;
    /// // Flaky: the first two attempts fail, the third answers.
    /// let create = env.mock_activity("cloud/create-record", |call| {
    ///     if call.attempt < 3 {
    ///         return Err(ErrorInfo::new("unavailable", "try again"));
    ///     }
    ///     Ok(json!({ "id": format!("rec-{}", call.input["tenant"]) }))
    /// });
    /// # }
    /// ```
    pub fn mock_activity<F>(&self, name: &str, f: F) -> Mock
    where
        F: Fn(&NativeCall) -> Result<Value, ErrorInfo> + Send + Sync + 'static,
    {
        let mock = Mock::default();
        self.rt.register_native_activity(name, mock.wrap(f));
        mock
    }

    /// Start a run of the newest version of `workflow`.
    ///
    /// ```no_run
    /// # async fn example(env: &weft_testing::TestEnv) -> anyhow::Result<()> {
    /// let run = env.start("provision", serde_json::json!({ "tenant": "acme" })).await?;
    /// # Ok(()) }
    /// ```
    pub async fn start(
        &self,
        workflow: &str,
        input: impl Serialize,
    ) -> anyhow::Result<TestRun<'_>> {
        self.start_run(workflow, None, input).await
    }

    /// Start a run under a workflow id of your choosing.
    ///
    /// ```no_run
    /// # async fn example(env: &weft_testing::TestEnv) -> anyhow::Result<()> {
    /// let run = env.start_with_id("cell-entity", "cell-eu-1", "eu-1").await?;
    /// // A second open run under the same id is refused:
    /// assert!(env.start_with_id("cell-entity", "cell-eu-1", "eu-1").await.is_err());
    /// # Ok(()) }
    /// ```
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
    ///
    /// ```no_run
    /// # async fn example(env: &weft_testing::TestEnv) -> anyhow::Result<()> {
    /// use weft_testing::Event;
    /// let parent = env.start("fleet", "eu").await?;
    /// parent.result().await?;
    /// for recorded in parent.journal().await? {
    ///     if let Event::ChildStarted { child_run_id: Some(id), .. } = recorded.event {
    ///         assert!(!env.run(&id).record().await?.status.is_open());
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn run(&self, run_id: &str) -> TestRun<'_> {
        TestRun {
            env: self,
            run_id: run_id.to_string(),
        }
    }

    /// The virtual clock, in ms since the Unix epoch.
    ///
    /// ```no_run
    /// # async fn example(env: &weft_testing::TestEnv) -> anyhow::Result<()> {
    /// let before = env.now_ms();
    /// env.advance(std::time::Duration::from_secs(3600)).await;
    /// assert_eq!(env.now_ms() - before, 3_600_000);
    /// # Ok(()) }
    /// ```
    pub fn now_ms(&self) -> i64 {
        now_ms()
    }

    /// Wait (in real time) until nothing runs that could progress without
    /// the clock: every run waits on a timer, a backoff, a deadline, or on
    /// something from outside.
    ///
    /// ```no_run
    /// # async fn example(env: &weft_testing::TestEnv) -> anyhow::Result<()> {
    /// let notify = env.mock_activity("mail/notify", |_| Ok(serde_json::Value::Null));
    /// env.start("onboarding", "ada").await?;
    /// env.settle().await; // the run has done all it can before its first timer
    /// assert_eq!(notify.count(), 1);
    /// # Ok(()) }
    /// ```
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
    ///
    /// ```no_run
    /// # async fn example(env: &weft_testing::TestEnv) -> anyhow::Result<()> {
    /// use std::time::Duration;
    /// let run = env.start("rollout", serde_json::json!({ "rings": 3 })).await?;
    /// env.advance(Duration::from_secs(86_400)).await; // one day in
    /// assert_eq!(run.status().await?, Some(serde_json::json!({ "ring": 1 })));
    /// # Ok(()) }
    /// ```
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
