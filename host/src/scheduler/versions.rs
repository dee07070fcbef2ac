//! Hot versioning: a workflow's versions and the runs pinned to them,
//! upgrading runs by replay, and checking open runs against new code.

use super::{Resident, Runtime};
use crate::engine::check::{Verdict, check};
use crate::engine::{Loaded, Notice};
use crate::error::{Error, Result};
use crate::journal::{Event, Recorded, Sink};
use crate::store::{
    ComponentKind, ComponentVersion, DeleteVersion, RunRecord, RunStatus, RunUpdate,
};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Replays a deploy-time check runs at once.
const CONCURRENT_CHECKS: usize = 4;

/// Which version to move runs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    Latest,
    Version(u32),
}

/// The outcome of one run's upgrade (or check).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub run_id: String,
    pub from_version: u32,
    pub to_version: u32,
    pub upgraded: bool,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// While held, the run executes nowhere (it was evicted if it was
/// resident) and nothing else starts it; on drop it is woken.
pub struct Exclusive {
    rt: Arc<Runtime>,
    run_id: String,
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        self.rt.resident.lock().unwrap().remove(&self.run_id);
        self.rt.wake(self.run_id.clone(), None);
    }
}

impl Runtime {
    /// Take a run for ourselves: evict it if it executes, keep it from
    /// being started meanwhile.
    pub async fn exclusive(self: &Arc<Self>, run_id: &str) -> Result<Exclusive> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            {
                let mut resident = self.resident.lock().unwrap();
                match resident.get(run_id) {
                    Some(r) => {
                        let _ = r.inbox.send(Notice::Evict);
                    }
                    None => {
                        // A placeholder: notices go nowhere, wakes are no-ops.
                        let (inbox, _) = mpsc::unbounded_channel();
                        let sent = Arc::new(AtomicU64::new(0));
                        resident.insert(run_id.to_string(), Resident { inbox, sent });
                        return Ok(Exclusive {
                            rt: self.clone(),
                            run_id: run_id.to_string(),
                        });
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(Error::Conflict(format!(
                    "run {run_id} did not leave memory within 30 s; try again"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn resolve(
        &self,
        workflow: &str,
        versions: &[ComponentVersion],
        target: Target,
    ) -> Result<ComponentVersion> {
        let chosen = match target {
            Target::Latest => versions.last(),
            Target::Version(n) => versions.iter().find(|v| v.version == n),
        };
        match chosen {
            Some(v) if v.kind == ComponentKind::Workflow => Ok(v.clone()),
            Some(_) => Err(Error::BadRequest(format!("`{workflow}` is an activity"))),
            None => Err(Error::NotFound(match target {
                Target::Latest => format!("no workflow named `{workflow}` is deployed"),
                Target::Version(n) => format!("workflow `{workflow}` has no version {n}"),
            })),
        }
    }

    async fn load_version(&self, v: &ComponentVersion) -> Result<Arc<Loaded>> {
        Ok(self.workflow_component(&v.digest).await?)
    }

    /// Replay `journal`, the run's, on `loaded`.
    async fn check_run(
        self: &Arc<Self>,
        run: &RunRecord,
        loaded: &Loaded,
        journal: Vec<Recorded>,
    ) -> Verdict {
        let facts = crate::engine::workflow::RunFacts::from(run);
        check(self, loaded, facts, &run.input, journal).await
    }

    /// Move an open run to another version if its journal replays on it
    /// (or, with `force`, without looking). A diverging run is untouched.
    pub async fn upgrade(
        self: &Arc<Self>,
        run_id: &str,
        target: Target,
        force: bool,
    ) -> Result<Report> {
        let run = self
            .store
            .get_run(run_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no run `{run_id}`")))?;
        if !run.status.is_open() {
            return Err(Error::Conflict(format!(
                "run {run_id} has ended ({}); only open runs can be upgraded",
                run.status
            )));
        }
        let versions = self.store.component_versions(Some(&run.workflow)).await?;
        let to = self.resolve(&run.workflow, &versions, target)?;
        let loaded = self.load_version(&to).await?;
        let _exclusive = self.exclusive(run_id).await?;
        // Read again: the run may have moved on while it was leaving memory.
        let run = self
            .store
            .get_run(run_id)
            .await?
            .filter(|r| r.status.is_open())
            .ok_or_else(|| Error::Conflict(format!("run {run_id} ended meanwhile")))?;
        let mut report = Report {
            run_id: run_id.to_string(),
            from_version: run.version,
            to_version: to.version,
            upgraded: false,
            verdict: Verdict::Compatible { events: 0 },
        };
        if to.digest == run.digest && run.status == RunStatus::Running {
            return Ok(report);
        }
        // Read once: nobody appends while we hold the run.
        let journal = self.store.journal(run_id).await?;
        let next_seq = journal.last().map_or(0, |r| r.seq + 1);
        report.verdict = if force {
            Verdict::Compatible { events: 0 }
        } else {
            self.check_run(&run, &loaded, journal).await
        };
        if !report.verdict.is_compatible() {
            return Ok(report);
        }
        let sink = Sink::new(run_id, next_seq, self.writer.clone());
        sink.record(Event::Upgraded {
            from_version: run.version,
            to_version: to.version,
            from_digest: run.digest.clone(),
            to_digest: to.digest.clone(),
            forced: force,
        });
        let update = RunUpdate::Repin {
            digest: to.digest.clone(),
            version: to.version,
        };
        sink.commit(Some(update)).await?;
        tracing::info!(
            run = run_id,
            "upgraded from v{} to v{}",
            run.version,
            to.version
        );
        report.upgraded = true;
        Ok(report)
    }

    /// Upgrade every open run of `workflow` (optionally only those on
    /// version `from`), reporting per run.
    pub async fn upgrade_all(
        self: &Arc<Self>,
        workflow: &str,
        target: Target,
        from: Option<u32>,
        force: bool,
    ) -> Result<Vec<Report>> {
        let mut reports = Vec::new();
        for run in self.store.open_runs_of(workflow).await? {
            if from.is_some_and(|f| f != run.version) {
                continue;
            }
            match self.upgrade(&run.run_id, target, force).await {
                Ok(report) => reports.push(report),
                Err(Error::Conflict(message)) => reports.push(Report {
                    run_id: run.run_id,
                    from_version: run.version,
                    to_version: 0,
                    upgraded: false,
                    verdict: Verdict::Failed { message },
                }),
                Err(e) => return Err(e),
            }
        }
        Ok(reports)
    }

    /// Replay every open run of `workflow` not already on `loaded` on it,
    /// a few at a time.
    pub async fn check_open_runs(
        self: &Arc<Self>,
        workflow: &str,
        loaded: &Loaded,
        to_version: u32,
    ) -> Result<Vec<Report>> {
        use futures::StreamExt;
        let runs = self.store.open_runs_of(workflow).await?;
        let checks = runs
            .into_iter()
            .filter(|run| run.digest != loaded.digest)
            .map(|run| async move {
                let journal = self.store.journal(&run.run_id).await?;
                let verdict = self.check_run(&run, loaded, journal).await;
                Ok(Report {
                    run_id: run.run_id,
                    from_version: run.version,
                    to_version,
                    upgraded: false,
                    verdict,
                })
            });
        futures::stream::iter(checks)
            .buffered(CONCURRENT_CHECKS)
            .collect::<Vec<Result<Report>>>()
            .await
            .into_iter()
            .collect()
    }

    /// A workflow's versions, each with the count of open runs on it.
    pub async fn versions(&self, name: &str) -> Result<(Vec<ComponentVersion>, Vec<u64>)> {
        let versions = self.store.component_versions(Some(name)).await?;
        if versions.is_empty() {
            return Err(Error::NotFound(format!("no component named `{name}`")));
        }
        let open = self.store.open_runs_of(name).await?;
        let counts = versions
            .iter()
            .map(|v| open.iter().filter(|r| r.digest == v.digest).count() as u64)
            .collect();
        Ok((versions, counts))
    }

    pub async fn delete_version(&self, name: &str, version: u32) -> Result<()> {
        self.forget_version(name);
        match self.store.delete_version(name, version).await? {
            DeleteVersion::Deleted => Ok(()),
            DeleteVersion::NotFound => {
                Err(Error::NotFound(format!("no version {version} of `{name}`")))
            }
            DeleteVersion::InUse(n) => Err(Error::Conflict(format!(
                "version {version} of `{name}` still has {n} open run(s); upgrade or finish them first"
            ))),
        }
    }
}
