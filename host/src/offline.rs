//! `weft replay`: replay an exported journal (or a directory of them, a
//! team's corpus) against a local `.wasm`, with no server — the check a
//! workflow author runs before deploying, and in CI.

use crate::engine::check::{Verdict, check, facts_of};
use crate::engine::{ActivityJob, ActivityOutcome, Engine, EngineConfig, Host, Loaded, Waits};
use crate::journal::{ErrorInfo, Export, Failure};
use crate::store::{ComponentVersion, RunRecord};
use crate::writes::Sink;
use anyhow::Context as _;
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// The engine alone, for checks: no database, no writer or timer task, no
/// compile cache on disk. A check replays a journal and stops where it
/// ends, so nothing here is ever asked to store or run anything.
pub struct Offline {
    engine: Arc<Engine>,
}

/// The host of an offline check: the journal is all there is.
struct Standalone {
    engine: Arc<Engine>,
}

#[async_trait]
impl Host for Standalone {
    fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    fn waits(&self) -> Waits {
        Waits {
            resident_timer_ms: 0,
            idle_linger_ms: 0,
            deadline_grace_ms: 0,
            send_when_parked: false,
        }
    }

    fn sink(&self, run_id: &str, next_seq: u64) -> Sink {
        Sink::detached(run_id, next_seq)
    }

    async fn latest_version(
        &self,
        _namespace: &str,
        _name: &str,
    ) -> anyhow::Result<Option<ComponentVersion>> {
        Ok(None)
    }

    async fn run(&self, _run_id: &str) -> anyhow::Result<Option<RunRecord>> {
        Ok(None)
    }

    async fn ask_update(
        self: std::sync::Arc<Self>,
        _key: &crate::store::UpdateKey,
        _ask: &crate::engine::UpdateAsk,
        _caller: &str,
    ) -> anyhow::Result<Result<(), crate::journal::ErrorInfo>> {
        // Unreachable in a check: it stops where the journal ends.
        anyhow::bail!("an offline check sends no updates")
    }

    async fn update_answer(
        self: std::sync::Arc<Self>,
        _key: &crate::store::UpdateKey,
    ) -> anyhow::Result<Option<Result<serde_json::Value, crate::journal::ErrorInfo>>> {
        Ok(None)
    }

    async fn reject_update(
        self: std::sync::Arc<Self>,
        _key: &crate::store::UpdateKey,
        _error: &serde_json::Value,
    ) -> anyhow::Result<()> {
        // Unreachable in a check: it stops where the journal ends.
        Ok(())
    }

    async fn open_run(
        &self,
        _namespace: &str,
        _workflow_id: &str,
    ) -> anyhow::Result<Option<RunRecord>> {
        Ok(None)
    }

    fn spawn_activity(
        self: Arc<Self>,
        job: ActivityJob,
        _sink: Sink,
    ) -> JoinHandle<ActivityOutcome> {
        // Unreachable in a check (it stops where the journal ends); answered
        // as a failure rather than a panic all the same.
        tokio::spawn(async move {
            ActivityOutcome {
                attempts: 0,
                result: Err(Failure::Application(ErrorInfo::new(
                    "offline",
                    format!("an offline check does not run activities ({})", job.name),
                ))),
            }
        })
    }
}

impl Offline {
    pub fn new() -> anyhow::Result<Offline> {
        let engine = Engine::new(EngineConfig {
            memory_limit: 256 << 20,
            spin_limit: Duration::from_secs(30),
            cache_dir: None,
            max_instances: 8,
            guest_cores: 0,
        })?;
        Ok(Offline { engine })
    }

    /// Compile `wasm` and replay the exported journal on it; answers the
    /// verdict and how long the replay took.
    pub async fn replay(
        &self,
        journal: Export,
        wasm: Vec<u8>,
    ) -> anyhow::Result<(Verdict, Duration)> {
        let loaded = self.compile(wasm).await?;
        self.replay_on(&loaded, journal).await
    }

    async fn compile(&self, wasm: Vec<u8>) -> anyhow::Result<Loaded> {
        let engine = self.engine.clone();
        let (_, loaded) =
            tokio::task::spawn_blocking(move || engine.build("offline", &wasm)).await??;
        Ok(loaded)
    }

    /// Replay the exported journal on a compiled component.
    async fn replay_on(
        &self,
        loaded: &Loaded,
        journal: Export,
    ) -> anyhow::Result<(Verdict, Duration)> {
        let run_id = if journal.run_id.is_empty() {
            "offline"
        } else {
            journal.run_id.as_str()
        };
        let (facts, input) = facts_of(run_id, &journal.events).map_err(anyhow::Error::msg)?;
        let events = journal.events;
        let host = Arc::new(Standalone {
            engine: self.engine.clone(),
        });
        let started = Instant::now();
        let verdict = check(host, loaded, facts, &input, events).await;
        Ok((verdict, started.elapsed()))
    }
}

/// The journals `path` names: itself, or the `.json` files in it (a
/// corpus of exported journals), in name order.
fn journals(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(path).with_context(|| format!("cannot read {}", path.display()))?
    {
        let file = entry?.path();
        if file.extension().is_some_and(|e| e == "json") && file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    if files.is_empty() {
        anyhow::bail!("{} holds no .json journal", path.display());
    }
    Ok(files)
}

/// One journal's check: its verdict and how long the replay took, or why
/// it could not be read or replayed.
pub type Checked = anyhow::Result<(Verdict, Duration)>;

/// Replay the journal at `path` (or each in the directory, in name order)
/// on `wasm`, compiled once: each file with its check. Fails only when
/// `path` holds no journal or `wasm` cannot be read or compiled.
pub async fn replay_each(path: &Path, wasm: &Path) -> anyhow::Result<Vec<(PathBuf, Checked)>> {
    let files = journals(path)?;
    let bytes = std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    let offline = Offline::new()?;
    let loaded = offline.compile(bytes).await?;
    let mut checked = Vec::with_capacity(files.len());
    for file in files {
        let verdict = match read_export(&file) {
            Ok(doc) => offline.replay_on(&loaded, doc).await,
            Err(e) => Err(e),
        };
        checked.push((file, verdict));
    }
    Ok(checked)
}

/// The CLI: replays the journal at `path` (or each in the directory) on
/// `wasm`, printing a verdict per journal; `Ok(false)` when any is
/// incompatible or unreadable.
pub async fn run(path: &Path, wasm: &Path) -> anyhow::Result<bool> {
    let checked = replay_each(path, wasm).await?;
    let corpus = path.is_dir();
    let total = checked.len();
    let mut passed = 0;
    for (file, verdict) in checked {
        let name = if corpus {
            format!("{}: ", file.display())
        } else {
            String::new()
        };
        match verdict {
            Ok((Verdict::Compatible { events }, took)) => {
                passed += 1;
                out!(
                    "{name}compatible: {events} journal events replayed on {} in {took:?}",
                    wasm.display()
                );
            }
            Ok((Verdict::Diverged { divergence }, _)) => {
                eprintln!("{name}incompatible: {divergence}")
            }
            Ok((Verdict::Failed { message }, _)) => eprintln!("{name}incompatible: {message}"),
            Err(e) if corpus => eprintln!("{name}unreadable: {e:#}"),
            Err(e) => return Err(e),
        }
    }
    if corpus {
        out!("{passed} of {total} journals replay on {}", wasm.display());
    }
    Ok(passed == total)
}

/// Read a journal export (`weft show RUN --json`, `GET
/// /v1/runs/{id}/journal`), naming the file in any error.
pub fn read_export(file: &Path) -> anyhow::Result<Export> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    Export::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
}
