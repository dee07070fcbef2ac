//! Replay checks: journals (exported, or a corpus of them) against new code.

use crate::{Export, TestEnv};
use anyhow::{Context as _, bail};
use std::path::Path;
use weft::engine::check::Verdict;

impl TestEnv {
    /// Replay `journal` on the component at `wasm`: `Ok` with the events
    /// replayed when the code is compatible with it, otherwise the same
    /// diagnostic the server and `weft replay` give.
    ///
    /// ```no_run
    /// # async fn example() -> anyhow::Result<()> {
    /// use weft_testing::{TestEnv, build_guest, read_journal};
    /// // A journal exported from production with `weft show RUN --json`:
    /// let journal = read_journal("tests/journals/rollout-2026-11.json")?;
    /// let replayed = TestEnv::replay(build_guest("rollout")?, journal).await?;
    /// # Ok(()) }
    /// ```
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
///
/// ```no_run
/// # fn example() -> anyhow::Result<()> {
/// let journal = weft_testing::read_journal("tests/journals/rollout-2026-11.json")?;
/// assert_eq!(journal.workflow, "rollout");
/// # Ok(()) }
/// ```
pub fn read_journal(path: impl AsRef<Path>) -> anyhow::Result<Export> {
    weft::offline::read_export(path.as_ref())
}

/// Replay every exported journal (`*.json`) in `dir` — a corpus kept from
/// production — on the component at `wasm`, compiled once: `Ok` with how
/// many replayed, or an error naming each journal the code is not
/// compatible with and its divergence (`weft replay DIR --wasm FILE`'s
/// check, from a test).
///
/// ```no_run
/// #[tokio::test]
/// async fn production_journals_still_replay() -> anyhow::Result<()> {
///     let wasm = weft_testing::build_guest("rollout")?;
///     let checked = weft_testing::replay_corpus(&wasm, "tests/journals").await?;
///     assert!(checked > 0);
///     Ok(())
/// }
/// ```
pub async fn replay_corpus(wasm: impl AsRef<Path>, dir: impl AsRef<Path>) -> anyhow::Result<usize> {
    let checked = weft::offline::replay_each(dir.as_ref(), wasm.as_ref()).await?;
    let total = checked.len();
    let failures: Vec<String> = checked
        .into_iter()
        .filter_map(|(file, verdict)| {
            let why = match verdict {
                Ok((Verdict::Compatible { .. }, _)) => return None,
                Ok((Verdict::Diverged { divergence }, _)) => divergence.to_string(),
                Ok((Verdict::Failed { message }, _)) => message,
                Err(e) => format!("{e:#}"),
            };
            Some(format!("{}: {why}", file.display()))
        })
        .collect();
    if !failures.is_empty() {
        bail!(
            "{} of {total} journals do not replay:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    Ok(total)
}
