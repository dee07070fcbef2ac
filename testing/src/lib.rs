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

mod build;
mod mock;

pub use build::{build_guest, build_guest_in};
pub use mock::Mock;
pub use weft::journal::{ErrorInfo, Event, Export, Recorded};
pub use weft::runtime::NativeCall;
pub use weft::store::{RunRecord, RunStatus};

use anyhow::{Context as _, bail};
use serde::Serialize;
use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};
use weft::clock;
use weft::engine::check::Verdict;
use weft::engine::{Engine, EngineConfig};
use weft::runtime::{Runtime, RuntimeConfig, SignalRequest, StartRun, UpdateRequest};
use weft::store::{DEFAULT_NAMESPACE, UpdateKey};
use weft::store::{Durability, SqliteStore};
use weft::writes::SignalTarget;

/// The virtual clock (the process's), in ms since the Unix epoch: what a
/// workflow reads as now, and a mock too.
pub fn now_ms() -> i64 {
    clock::now_ms()
}

/// The process's clock is shared: one environment at a time.
static TURN: LazyLock<Arc<Mutex<()>>> = LazyLock::new(Arc::default);

/// How long the runtime must stay still, in consecutive readings, before
/// the clock moves.
const STILL_READINGS: u32 = 3;
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
    Ended { status: RunStatus, error: Value },
    /// The run waits for something no one will send (a signal, an update,
    /// a deploy) and no timer is left to fire.
    Waiting { status: Option<Value> },
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
                // Every wait leaves memory: the clock skips over it.
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
        clock::now_ms()
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

    /// Settle, then skip to the next wait's end: false when nothing waits
    /// on the clock.
    async fn skip_once(&self) -> bool {
        self.settle().await;
        match clock::next_wait_end_ms() {
            Some(at) => {
                clock::skip_to(at);
                true
            }
            None => false,
        }
    }

    /// Replay `journal` on the component at `wasm`: `Ok` with the events
    /// replayed when the code is compatible with it, otherwise the same
    /// diagnostic the server and `weft replay` give.
    pub async fn replay(wasm: impl AsRef<Path>, journal: Export) -> anyhow::Result<usize> {
        let path = wasm.as_ref();
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let (verdict, _) = weft::offline::Offline::new()?
            .replay(journal, bytes)
            .await?;
        match verdict {
            Verdict::Compatible { events } => Ok(events),
            Verdict::Diverged { divergence } => bail!("{divergence}"),
            Verdict::Failed { message } => bail!("{message}"),
        }
    }
}

/// Read a journal exported by `weft show RUN --json` (or `GET
/// /v1/runs/{id}/journal`), for [`TestEnv::replay`].
pub fn read_journal(path: impl AsRef<Path>) -> anyhow::Result<Export> {
    let path = path.as_ref();
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Export::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Replay every exported journal (`*.json`) in `dir` — a corpus kept from
/// production — on the component at `wasm`: `Ok` with how many replayed,
/// or an error naming each journal the code is not compatible with and
/// its divergence (what `weft replay DIR --wasm FILE` checks, from a test).
pub async fn replay_corpus(wasm: impl AsRef<Path>, dir: impl AsRef<Path>) -> anyhow::Result<usize> {
    let dir = dir.as_ref();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{} holds no .json journal", dir.display());
    }
    let mut failures = Vec::new();
    for file in &files {
        let outcome = match read_journal(file) {
            Ok(journal) => TestEnv::replay(wasm.as_ref(), journal).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            failures.push(format!("{}: {e:#}", file.display()));
        }
    }
    if !failures.is_empty() {
        bail!(
            "{} of {} journals do not replay:\n{}",
            failures.len(),
            files.len(),
            failures.join("\n")
        );
    }
    Ok(files.len())
}

/// A run in a [`TestEnv`].
pub struct TestRun<'a> {
    env: &'a TestEnv,
    pub run_id: String,
}

impl TestRun<'_> {
    /// Its row: status, output or error, custom status, wake-up time.
    pub async fn record(&self) -> anyhow::Result<RunRecord> {
        self.env
            .rt
            .store
            .get_run(&self.run_id)
            .await?
            .with_context(|| format!("no run {}", self.run_id))
    }

    /// The status the workflow last published (`set-status`), once the
    /// environment has settled.
    pub async fn status(&self) -> anyhow::Result<Option<Value>> {
        self.env.settle().await;
        Ok(self.record().await?.custom_status)
    }

    /// Run it to its end, skipping time whenever it only waits on the
    /// clock; its output, or how it ended otherwise.
    pub async fn result(&self) -> anyhow::Result<Value> {
        loop {
            self.env.settle().await;
            let run = self.record().await?;
            if !run.status.is_open() {
                return match run.status {
                    RunStatus::Completed => Ok(run.output.unwrap_or(Value::Null)),
                    status => Err(RunError::Ended {
                        status,
                        error: run.error.unwrap_or(Value::Null),
                    }
                    .into()),
                };
            }
            if run.status == RunStatus::Stuck {
                return Err(RunError::Ended {
                    status: run.status,
                    error: run.error.unwrap_or(Value::Null),
                }
                .into());
            }
            if !self.env.skip_once().await {
                let run = self.record().await?;
                if run.status.is_open() && run.status != RunStatus::Stuck {
                    return Err(RunError::Waiting {
                        status: run.custom_status,
                    }
                    .into());
                }
            }
        }
    }

    /// Its journal so far, once the environment has settled.
    pub async fn journal(&self) -> anyhow::Result<Vec<Recorded>> {
        self.env.settle().await;
        self.env.rt.store.journal(&self.run_id).await
    }

    /// When its timers that have not fired yet are due (ms since the
    /// epoch, soonest first), once the environment has settled; a timer a
    /// select left behind counts until the run ends.
    pub async fn pending_timers(&self) -> anyhow::Result<Vec<i64>> {
        let journal = self.journal().await?;
        if !self.record().await?.status.is_open() {
            return Ok(Vec::new());
        }
        let mut pending = std::collections::BTreeMap::new();
        for recorded in journal {
            match recorded.event {
                Event::TimerStarted {
                    handle, fire_at_ms, ..
                } => {
                    pending.insert(handle, fire_at_ms as i64);
                }
                Event::TimerFired { handle, .. } => {
                    pending.remove(&handle);
                }
                _ => {}
            }
        }
        let mut due: Vec<i64> = pending.into_values().collect();
        due.sort();
        Ok(due)
    }

    /// Its journal as `weft show --json` exports it (for [`TestEnv::replay`]
    /// or a corpus for `weft replay`).
    pub async fn export(&self) -> anyhow::Result<Export> {
        let events = self.journal().await?;
        let run = self.record().await?;
        Ok(Export::new(
            run.run_id,
            run.workflow,
            run.version,
            run.digest,
            events,
        ))
    }

    /// Send it signal `name`.
    pub async fn signal(&self, name: &str, payload: impl Serialize) -> anyhow::Result<()> {
        self.env
            .rt
            .signal(SignalRequest {
                target: SignalTarget::Run(self.run_id.clone()),
                namespace: DEFAULT_NAMESPACE.to_string(),
                name: name.to_string(),
                payload: serde_json::to_value(payload)?,
                start: None,
                request_id: None,
            })
            .await?;
        Ok(())
    }

    /// Ask it for update `name` and wait for the answer, skipping time
    /// while the run only waits on the clock: the handler's output, or its
    /// error or rejection.
    pub async fn update(
        &self,
        name: &str,
        payload: impl Serialize,
    ) -> anyhow::Result<Result<Value, ErrorInfo>> {
        let run = self.record().await?;
        let asked = self
            .env
            .rt
            .update(UpdateRequest {
                namespace: run.namespace.clone(),
                workflow_id: run.workflow_id.clone(),
                name: name.to_string(),
                input: serde_json::to_value(payload)?,
                update_id: None,
                start: None,
                wait: Duration::ZERO,
            })
            .await?;
        let key = UpdateKey {
            namespace: asked.namespace,
            workflow_id: asked.workflow_id,
            update_id: asked.update_id,
        };
        loop {
            self.env.settle().await;
            let update = self.env.rt.await_update(&key, Duration::ZERO).await?;
            if update.state.decided() {
                let outcome = update.outcome.unwrap_or(Value::Null);
                return Ok(match outcome.get("error") {
                    Some(error) => Err(serde_json::from_value(error.clone())?),
                    None => Ok(outcome.get("output").cloned().unwrap_or(Value::Null)),
                });
            }
            match clock::next_wait_end_ms() {
                Some(at) => clock::skip_to(at),
                None => bail!(
                    "update `{name}` is {} and nothing will answer it: the run waits for \
                     something no one sends",
                    update.state.as_str()
                ),
            }
        }
    }

    /// Ask it to cancel (it sees `cancelled` at its next await and may
    /// clean up).
    pub async fn cancel(&self) -> anyhow::Result<()> {
        self.env.rt.cancel(&self.run_id).await?;
        Ok(())
    }
}
