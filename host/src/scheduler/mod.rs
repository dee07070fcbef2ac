//! The runtime: which runs are resident, when evicted runs wake up, which
//! runs resume at start-up, and the activity executor.

mod retry;
mod timers;

pub use retry::{ActivityJob, ActivityOutcome};

use crate::engine::runner::{self, Ending};
use crate::engine::{Engine, Loaded};
use crate::error::{Error, Result, check_name};
use crate::journal::{Event, Recorded, Sink};
use crate::store::writer::Writer;
use crate::store::{
    ComponentKind, ComponentVersion, NewRun, PutComponent, RunRecord, Store, WriteOp, WriteOutcome,
    now_ms,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timers::Timers;
use tokio::sync::{Semaphore, broadcast};
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Timers shorter than this are waited for in memory; longer ones evict
    /// the run until they fire.
    pub resident_timer_ms: u64,
    /// Start-to-close timeout of an activity attempt that sets none.
    pub activity_timeout: Duration,
    /// Runs executing at once.
    pub max_resident_runs: usize,
    /// Activity attempts executing at once.
    pub max_concurrent_activities: usize,
}

pub struct StartRun {
    pub workflow: String,
    pub input: Value,
    pub workflow_id: Option<String>,
    pub version: Option<u32>,
}

pub struct Runtime {
    pub store: Arc<dyn Store>,
    pub writer: Writer,
    pub engine: Arc<Engine>,
    pub config: RuntimeConfig,
    resident: Mutex<HashSet<String>>,
    /// Consecutive transient failures per run, for backoff.
    failures: Mutex<HashMap<String, u32>>,
    timers: Timers,
    ended: broadcast::Sender<String>,
    run_slots: Arc<Semaphore>,
    activity_slots: Arc<Semaphore>,
}

impl Runtime {
    pub fn new(store: Arc<dyn Store>, engine: Arc<Engine>, config: RuntimeConfig) -> Arc<Self> {
        let rt = Arc::new(Runtime {
            writer: Writer::spawn(store.clone()),
            store,
            engine,
            resident: Mutex::new(HashSet::new()),
            failures: Mutex::new(HashMap::new()),
            timers: Timers::default(),
            ended: broadcast::channel(4096).0,
            run_slots: Arc::new(Semaphore::new(config.max_resident_runs)),
            activity_slots: Arc::new(Semaphore::new(config.max_concurrent_activities)),
            config,
        });
        tokio::spawn(timers::run(rt.clone()));
        rt
    }

    /// Resume every run that was in flight when the server stopped.
    pub async fn recover(self: &Arc<Self>) -> anyhow::Result<usize> {
        let runs = self.store.runnable_runs().await?;
        let now = now_ms();
        for (run_id, wake_at) in &runs {
            match wake_at {
                Some(at) if *at > now => self.timers.push(*at, run_id.clone()),
                _ => self.wake(run_id.clone(), None),
            }
        }
        Ok(runs.len())
    }

    /// Told when a run reaches a final status (or `stuck`).
    pub fn subscribe_ended(&self) -> broadcast::Receiver<String> {
        self.ended.subscribe()
    }

    pub async fn deploy(&self, name: &str, bytes: Vec<u8>) -> Result<(ComponentVersion, bool)> {
        check_name("component", name)?;
        let digest = hex::encode(Sha256::digest(&bytes));
        let known = self.store.component_versions(Some(name)).await?;
        if let Some(v) = known.into_iter().find(|v| v.digest == digest) {
            return Ok((v, false));
        }
        let engine = self.engine.clone();
        let digest_owned = digest.clone();
        let compiled = tokio::task::spawn_blocking(move || {
            let (component, loaded) = engine.build(&digest_owned, &bytes)?;
            Ok::<_, Error>((component, loaded, bytes))
        })
        .await
        .map_err(|e| Error::Internal(e.into()))??;
        let (component, loaded, bytes) = compiled;
        let kind = loaded.kind;
        match self
            .store
            .put_component(name, kind, &digest, &bytes, now_ms())
            .await?
        {
            PutComponent::Created(v) => {
                self.engine.remember(&component, loaded);
                Ok((v, true))
            }
            PutComponent::Existing(v) => Ok((v, false)),
            PutComponent::KindConflict { existing } => Err(Error::Conflict(format!(
                "`{name}` is deployed as {} and this component is {}: use another name",
                article(existing),
                article(kind)
            ))),
        }
    }

    pub async fn start_run(self: &Arc<Self>, req: StartRun) -> Result<(RunRecord, bool)> {
        check_name("workflow", &req.workflow)?;
        if let Some(id) = &req.workflow_id
            && (id.is_empty() || id.len() > 256)
        {
            return Err(Error::BadRequest(
                "workflow_id must be 1 to 256 characters".into(),
            ));
        }
        let versions = self.store.component_versions(Some(&req.workflow)).await?;
        let chosen = match req.version {
            Some(n) => versions.iter().find(|v| v.version == n),
            None => versions.last(),
        };
        let Some(version) = chosen else {
            return Err(Error::NotFound(match req.version {
                Some(n) if !versions.is_empty() => {
                    format!("workflow `{}` has no version {n}", req.workflow)
                }
                _ => format!("no workflow named `{}` is deployed", req.workflow),
            }));
        };
        if version.kind != ComponentKind::Workflow {
            return Err(Error::BadRequest(format!(
                "`{}` is an activity; start a workflow instead",
                req.workflow
            )));
        }
        let run_id = uuid::Uuid::now_v7().to_string();
        let new = NewRun {
            workflow_id: req.workflow_id.unwrap_or_else(|| run_id.clone()),
            run_id,
            workflow: req.workflow,
            version: version.version,
            digest: version.digest.clone(),
            input: req.input,
            at_ms: now_ms(),
        };
        match self.writer.write(WriteOp::CreateRun(new)).await? {
            WriteOutcome::Created(run) => {
                let started = Recorded {
                    seq: 0,
                    at_ms: run.created_at_ms,
                    event: Event::Started {
                        workflow: run.workflow.clone(),
                        version: run.version,
                        digest: run.digest.clone(),
                        workflow_id: run.workflow_id.clone(),
                        input: run.input.clone(),
                    },
                };
                self.wake(run.run_id.clone(), Some((run.clone(), vec![started])));
                Ok((run, true))
            }
            WriteOutcome::Existing(run) => Ok((run, false)),
            WriteOutcome::Appended => Err(Error::Internal(anyhow::anyhow!(
                "the writer answered a run creation with an append"
            ))),
        }
    }

    /// Execute (or resume) a run unless it is already resident.
    pub fn wake(self: &Arc<Self>, run_id: String, preloaded: Option<(RunRecord, Vec<Recorded>)>) {
        if !self.resident.lock().unwrap().insert(run_id.clone()) {
            return;
        }
        let rt = self.clone();
        tokio::spawn(async move {
            let ending = {
                let _slot = rt.run_slots.clone().acquire_owned().await;
                runner::execute(rt.clone(), &run_id, preloaded).await
            };
            rt.resident.lock().unwrap().remove(&run_id);
            match ending {
                Ending::Suspended { wake_at_ms } => {
                    rt.failures.lock().unwrap().remove(&run_id);
                    rt.timers.push(wake_at_ms, run_id);
                }
                Ending::Ended => {
                    rt.failures.lock().unwrap().remove(&run_id);
                    let _ = rt.ended.send(run_id);
                }
                Ending::Retry(reason) => {
                    let n = {
                        let mut failures = rt.failures.lock().unwrap();
                        let n = failures.entry(run_id.clone()).or_insert(0);
                        *n += 1;
                        *n
                    };
                    let delay = 500i64 << n.min(7);
                    tracing::warn!(run = run_id, "will retry in {delay} ms: {reason}");
                    rt.timers.push(now_ms() + delay, run_id);
                }
            }
        });
    }

    pub fn spawn_activity(
        self: &Arc<Self>,
        job: ActivityJob,
        sink: Sink,
    ) -> JoinHandle<ActivityOutcome> {
        tokio::spawn(retry::run_activity(self.clone(), job, sink))
    }

    /// The workflow component a run is pinned to.
    pub async fn workflow_component(&self, digest: &str) -> anyhow::Result<Arc<Loaded>> {
        let store = self.store.clone();
        let d = digest.to_string();
        self.engine
            .load(digest, ComponentKind::Workflow, async move {
                store
                    .component_bytes(&d)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("component {d} is not stored"))
            })
            .await
    }
}

fn article(kind: ComponentKind) -> &'static str {
    match kind {
        ComponentKind::Workflow => "a workflow",
        ComponentKind::Activity => "an activity",
    }
}
