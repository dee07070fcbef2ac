//! Hot versioning: a workflow's versions and the runs pinned to them,
//! upgrading runs by replay, and checking open runs against new code.

use super::{Resident, Runtime};
use crate::engine::check::{Verdict, check};
use crate::engine::{Host as _, Loaded, Notice};
use crate::error::{Error, Result};
use crate::journal::{Event, Recorded};
use crate::store::{ComponentKind, ComponentVersion, DeleteVersion, RunRecord, RunStatus};
use crate::writes::RunUpdate;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Replays a deploy-time check runs at once.
const CONCURRENT_CHECKS: usize = 4;

/// Which version to move runs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    Latest,
    Version(u32),
}

/// The outcome of one run's upgrade (or check).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Report {
    pub run_id: String,
    pub from_version: u32,
    pub to_version: u32,
    pub upgraded: bool,
    /// Upgraded whatever the check found (`verdict` says what that was).
    pub forced: bool,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// How long an upgrade waits for a resident run to reach a wait and leave.
pub(super) const LEAVE_TIMEOUT: Duration = Duration::from_secs(30);

/// While held, the run executes nowhere (it was evicted if it was
/// resident) and nothing else starts it; on drop it is handed to the next
/// upgrade waiting for it, or woken — unless it ended while held.
pub struct Exclusive {
    rt: Arc<Runtime>,
    run_id: String,
    ended: bool,
}

impl Exclusive {
    /// Let go of a run that ended while held: there is nothing to wake.
    pub fn release_ended(mut self) {
        self.ended = true;
    }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        if !self.rt.release(&self.run_id) && !self.ended {
            self.rt.wake(self.run_id.clone(), None);
        }
    }
}

impl Runtime {
    /// Take a run for ourselves. A resident run is told to leave at its
    /// next wait and handed to us as it leaves (never restarted in
    /// between); meanwhile nothing else starts it.
    pub async fn exclusive(self: &Arc<Self>, run_id: &str) -> Result<Exclusive> {
        let held = || Exclusive {
            rt: self.clone(),
            run_id: run_id.to_string(),
            ended: false,
        };
        if !self.membership.drives(run_id) {
            return Err(self.elsewhere(run_id).await);
        }
        let deadline = tokio::time::Instant::now() + LEAVE_TIMEOUT;
        loop {
            let mut handed = {
                let mut resident = self.resident.lock().unwrap();
                match resident.get_mut(run_id) {
                    None => {
                        resident.insert(run_id.to_string(), Resident::held(Default::default()));
                        return Ok(held());
                    }
                    Some(r) => {
                        let _ = r.inbox.send(Notice::Evict);
                        let (tx, rx) = oneshot::channel();
                        r.claims.push_back(tx);
                        rx
                    }
                }
            };
            match tokio::time::timeout_at(deadline, &mut handed).await {
                Ok(Ok(())) => return Ok(held()),
                // The entry went away without handing over: look again.
                Ok(Err(_)) => continue,
                Err(_) => {
                    handed.close();
                    // Handed over just as we gave up: let it go again.
                    if handed.try_recv().is_ok() {
                        drop(held());
                    }
                    return Err(Error::Conflict(format!(
                        "run {run_id} did not leave memory within {} s; try again",
                        LEAVE_TIMEOUT.as_secs()
                    )));
                }
            }
        }
    }

    /// Version `target` of component `name` in `namespace`, as stored:
    /// one row read, not every version the name ever had.
    pub(super) async fn stored_version(
        &self,
        namespace: &str,
        name: &str,
        target: Target,
    ) -> Result<Option<ComponentVersion>> {
        Ok(match target {
            Target::Latest => self.store.latest_version(namespace, name).await?,
            Target::Version(n) => self.store.component_version(namespace, name, n).await?,
        })
    }

    async fn resolve(
        &self,
        namespace: &str,
        workflow: &str,
        target: Target,
    ) -> Result<ComponentVersion> {
        match self.stored_version(namespace, workflow, target).await? {
            Some(v) if v.kind == ComponentKind::Workflow => Ok(v),
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
        check(self.clone(), loaded, facts, &run.input, journal).await
    }

    /// Move an open run to another version if its journal replays on it
    /// (or, with `force`, whatever the replay finds: the report says what
    /// it was). A diverging run is untouched unless forced.
    pub async fn upgrade(
        self: &Arc<Self>,
        run_id: &str,
        target: Target,
        force: bool,
    ) -> Result<Report> {
        let run = self.open_run_for(run_id, "upgraded").await?;
        let to = self.resolve(&run.namespace, &run.workflow, target).await?;
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
            forced: force,
            verdict: Verdict::Compatible { events: 0 },
        };
        if to.digest == run.digest && run.status == RunStatus::Running {
            return Ok(report);
        }
        // Read once: nobody appends while we hold the run.
        let journal = self.store.journal(run_id).await?;
        let next_seq = journal.last().map_or(0, |r| r.seq + 1);
        report.verdict = self.check_run(&run, &loaded, journal).await;
        if !report.verdict.is_compatible() && !force {
            return Ok(report);
        }
        let sink = self.sink(run_id, next_seq);
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
        namespace: &str,
        workflow: &str,
        target: Target,
        from: Option<u32>,
        force: bool,
    ) -> Result<Vec<Report>> {
        let mut reports = Vec::new();
        for run in self.store.open_runs_of(namespace, workflow).await? {
            if from.is_some_and(|f| f != run.version) {
                continue;
            }
            match self
                .upgrade_run(&run.run_id, target, force, super::Route::ToDriver)
                .await
            {
                Ok(report) => reports.push(report),
                Err(Error::Conflict(message)) => reports.push(Report {
                    run_id: run.run_id,
                    from_version: run.version,
                    to_version: 0,
                    upgraded: false,
                    forced: force,
                    verdict: Verdict::Failed { message },
                }),
                Err(e) => return Err(e),
            }
        }
        Ok(reports)
    }

    /// Replay every open run of `workflow` not already on `loaded` on it
    /// (or only the run `only`), a few at a time.
    pub async fn check_open_runs(
        self: &Arc<Self>,
        namespace: &str,
        workflow: &str,
        loaded: &Loaded,
        to_version: u32,
        only: Option<&str>,
    ) -> Result<Vec<Report>> {
        use futures::StreamExt;
        let runs = self.store.open_runs_of(namespace, workflow).await?;
        let checks = runs
            .into_iter()
            .filter(|run| run.digest != loaded.digest)
            .filter(|run| only.is_none_or(|id| id == run.run_id))
            .map(|run| async move {
                let journal = self.store.journal(&run.run_id).await?;
                let verdict = self.check_run(&run, loaded, journal).await;
                Ok(Report {
                    run_id: run.run_id,
                    from_version: run.version,
                    to_version,
                    upgraded: false,
                    forced: false,
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

    /// Replay the open runs of `workflow` (or only `only`) on its
    /// `version`, upgrading nothing: the deploy-time report, as of now.
    pub async fn check_version(
        self: &Arc<Self>,
        namespace: &str,
        workflow: &str,
        version: u32,
        only: Option<&str>,
    ) -> Result<Vec<Report>> {
        let to = self
            .resolve(namespace, workflow, Target::Version(version))
            .await?;
        let loaded = self.load_version(&to).await?;
        self.check_open_runs(namespace, workflow, &loaded, version, only)
            .await
    }

    /// A workflow's versions, each with the count of open runs on it.
    pub async fn versions(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(Vec<ComponentVersion>, Vec<u64>)> {
        let versions = self
            .store
            .component_versions(Some(namespace), Some(name))
            .await?;
        if versions.is_empty() {
            return Err(Error::NotFound(format!("no component named `{name}`")));
        }
        let open = self.store.open_runs_of(namespace, name).await?;
        let counts = versions
            .iter()
            .map(|v| open.iter().filter(|r| r.digest == v.digest).count() as u64)
            .collect();
        Ok((versions, counts))
    }

    pub async fn delete_version(&self, namespace: &str, name: &str, version: u32) -> Result<()> {
        self.forget_version(namespace, name);
        match self.store.delete_version(namespace, name, version).await? {
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
