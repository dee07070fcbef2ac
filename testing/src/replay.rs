//! Replay checks: journals (exported, or a corpus of them) against new code.

use crate::{Export, TestEnv};
use anyhow::{Context as _, bail};
use std::path::Path;
use weft::engine::check::Verdict;

impl TestEnv {
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
