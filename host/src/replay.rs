//! `weft replay`: replay an exported journal against a local `.wasm`, with
//! no server — the check a workflow author runs before deploying.

use crate::engine::check::{Verdict, check, facts_of};
use crate::engine::{Engine, EngineConfig};
use crate::journal::Recorded;
use crate::scheduler::{Runtime, RuntimeConfig};
use crate::store::{Durability, SqliteStore, Store};
use anyhow::{Context as _, bail};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The export format `GET /v1/runs/{id}/journal` answers.
pub const FORMAT: &str = "weft-journal/1";

/// A throwaway runtime (a temporary SQLite file and compile cache) that
/// only replays.
pub struct Offline {
    rt: Arc<Runtime>,
    dir: std::path::PathBuf,
}

impl Offline {
    pub async fn new() -> anyhow::Result<Offline> {
        let nanos = crate::clock::now_nanos();
        let dir = std::env::temp_dir().join(format!("weft-replay-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.join("replay.db"), Durability::Normal).await?);
        let engine = Engine::new(EngineConfig {
            memory_limit: 256 << 20,
            spin_limit: Duration::from_secs(30),
            cache_dir: dir.join("cache"),
            max_instances: 8,
        })?;
        let rt = Runtime::new(
            store,
            engine,
            RuntimeConfig {
                resident_timer_ms: 0,
                activity_timeout: Duration::from_secs(1),
                max_resident_runs: 1,
                max_concurrent_activities: 1,
                deadline_grace_ms: 0,
            },
        );
        Ok(Offline { rt, dir })
    }

    /// Compile `wasm` and replay `journal` (an export document) on it;
    /// answers the verdict and how long the replay took.
    pub async fn replay(
        &self,
        journal: &Value,
        wasm: Vec<u8>,
    ) -> anyhow::Result<(Verdict, Duration)> {
        if let Some(format) = journal["format"].as_str()
            && format != FORMAT
        {
            bail!("journal format `{format}` is not one this weft reads ({FORMAT})");
        }
        let events: Vec<Recorded> = serde_json::from_value(journal["events"].clone())
            .context("the file is not a weft journal export (GET /v1/runs/{id}/journal)")?;
        let run_id = journal["run_id"].as_str().unwrap_or("offline");
        let (facts, input) = facts_of(run_id, &events).map_err(anyhow::Error::msg)?;
        let engine = self.rt.engine.clone();
        let (_, loaded) =
            tokio::task::spawn_blocking(move || engine.build("offline", &wasm)).await??;
        let started = Instant::now();
        let verdict = check(&self.rt, &loaded, facts, &input, events).await;
        Ok((verdict, started.elapsed()))
    }
}

impl Drop for Offline {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The CLI: prints the verdict; `Ok(false)` when incompatible.
pub async fn run(journal: &Path, wasm: &Path) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(journal)
        .with_context(|| format!("cannot read {}", journal.display()))?;
    let doc: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", journal.display()))?;
    let bytes = std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    let offline = Offline::new().await?;
    let (verdict, took) = offline.replay(&doc, bytes).await?;
    match &verdict {
        Verdict::Compatible { events } => {
            out!(
                "compatible: {events} journal events replayed on {} in {took:?}",
                wasm.display()
            );
            Ok(true)
        }
        Verdict::Diverged { divergence } => {
            eprintln!("incompatible: {divergence}");
            Ok(false)
        }
        Verdict::Failed { message } => {
            eprintln!("incompatible: {message}");
            Ok(false)
        }
    }
}
