//! What callers ask of the runtime: deploy a component, start a run, signal
//! one (with or without starting it), cancel one.

use super::{Runtime, Target};
use crate::clock::now_ms;
use crate::engine::Host as _;
use crate::error::{Error, Result, check_name};
use crate::journal::{ErrorInfo, Event};
use crate::store::{
    ComponentKind, ComponentVersion, DEFAULT_NAMESPACE, Namespace, NewRun, PutComponent, RunRecord,
    RunStatus, Signal,
};
use crate::writes::{
    IdConflict, IdPolicy, Refusal, RunUpdate, SignalTarget, Sink, WriteOp, WriteOutcome,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use weft_contract::kind;

pub struct StartRun {
    pub workflow: String,
    pub input: Value,
    pub workflow_id: Option<String>,
    pub version: Option<u32>,
    pub namespace: Option<String>,
    /// Execution timeout: the run ends `timed-out` this long after it starts.
    pub execution_timeout_ms: Option<u64>,
    /// What to do when the workflow id is taken.
    pub policy: IdPolicy,
}

pub struct SignalRequest {
    pub target: SignalTarget,
    /// The target's namespace, as the caller resolved it: its limits apply.
    pub namespace: String,
    pub name: String,
    pub payload: Value,
    /// Signal-with-start: the run to start when none is open.
    pub start: Option<StartRun>,
    /// The client's id for this request (an `Idempotency-Key`): sending it
    /// again answers the signal it delivered instead of a new one.
    pub request_id: Option<String>,
}

/// What a signal request did.
pub struct Signalled {
    pub signal: Signal,
    /// Signal-with-start created the run.
    pub created: bool,
    /// A repeat of a request already served.
    pub duplicate: bool,
}

/// An allow-list entry: `host`, `host:port` or `*.domain`.
fn check_host(entry: &str) -> Result<()> {
    let ok = !entry.is_empty()
        && entry.len() <= 255
        && entry
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:*[]".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "invalid allow-http entry `{entry}`: use host, host:port or *.domain"
        )))
    }
}

fn article(kind: ComponentKind) -> &'static str {
    match kind {
        ComponentKind::Workflow => "a workflow",
        ComponentKind::Activity => "an activity",
    }
}

pub(super) fn refused(refusal: Refusal) -> Error {
    match refusal {
        Refusal::NotFound(m) => Error::NotFound(m),
        Refusal::NotOpen(m) | Refusal::IdTaken(m) => Error::Conflict(m),
    }
}

impl Runtime {
    /// Deploy `bytes` under `name`; `allow_http` (activities) sets the
    /// hosts it may reach, `None` keeps what a redeploy of the same bytes had.
    pub async fn deploy(
        &self,
        namespace: &str,
        name: &str,
        bytes: Vec<u8>,
        allow_http: Option<Vec<String>>,
    ) -> Result<(ComponentVersion, bool)> {
        check_name("component", name)?;
        self.namespace(namespace).await?;
        if let Some(hosts) = &allow_http {
            for host in hosts {
                check_host(host)?;
            }
        }
        let digest = hex::encode(Sha256::digest(&bytes));
        let known = self
            .store
            .component_versions(Some(namespace), Some(name))
            .await?;
        if let Some(v) = known.into_iter().find(|v| v.digest == digest) {
            if allow_http.as_ref().is_none_or(|a| *a == v.allow_http) {
                return Ok((v, false));
            }
            let put = self
                .store
                .put_component(
                    namespace,
                    name,
                    v.kind,
                    &digest,
                    &bytes,
                    allow_http.as_deref(),
                    now_ms(),
                )
                .await?;
            self.forget_version(namespace, name);
            return match put {
                PutComponent::Existing(v) | PutComponent::Created(v) => Ok((v, false)),
                PutComponent::KindConflict { .. } => unreachable!("same bytes, same kind"),
            };
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
            .put_component(
                namespace,
                name,
                kind,
                &digest,
                &bytes,
                allow_http.as_deref(),
                now_ms(),
            )
            .await
            .inspect(|_| self.forget_version(namespace, name))?
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

    /// Check the open runs of workflow `name` against `bytes` without
    /// deploying anything: what would happen if these were its next version.
    pub async fn dry_run(
        self: &Arc<Self>,
        namespace: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<(String, Vec<super::Report>)> {
        check_name("component", name)?;
        let digest = hex::encode(Sha256::digest(&bytes));
        let engine = self.engine.clone();
        let d = digest.clone();
        let (_, loaded) = tokio::task::spawn_blocking(move || engine.build(&d, &bytes))
            .await
            .map_err(|e| Error::Internal(e.into()))??;
        if loaded.kind != ComponentKind::Workflow {
            return Err(Error::BadRequest(
                "only workflows can be checked against open runs".into(),
            ));
        }
        let next = self
            .store
            .latest_version(namespace, name)
            .await?
            .map_or(1, |v| v.version + 1);
        let reports = self
            .check_open_runs(namespace, name, &loaded, next, None)
            .await?;
        Ok((digest, reports))
    }

    /// A namespace, which must exist before anything is put in it.
    pub(super) async fn namespace(&self, namespace: &str) -> Result<Namespace> {
        let found = self.store.access().namespace(namespace).await?;
        found.ok_or_else(|| no_namespace(namespace))
    }

    /// Resolve `req` to a new run (not yet written).
    async fn new_run(&self, req: StartRun) -> Result<NewRun> {
        check_name("workflow", &req.workflow)?;
        let namespace = req.namespace.unwrap_or_else(|| DEFAULT_NAMESPACE.into());
        check_name("namespace", &namespace)?;
        // Read once, fresh: the namespace must exist, and its limits admit
        // the start.
        let (found, chosen) = self
            .store
            .start_lookup(&namespace, &req.workflow, req.version)
            .await?;
        let Some(Namespace { limits, .. }) = found else {
            return Err(no_namespace(&namespace));
        };
        if let Some(id) = &req.workflow_id
            && (id.is_empty() || id.len() > 256)
        {
            return Err(Error::BadRequest(
                "workflow_id must be 1 to 256 characters".into(),
            ));
        }
        let Some(version) = chosen else {
            // A version asked for: say whether the workflow exists at all.
            let deployed = match req.version {
                Some(n) => self
                    .stored_version(&namespace, &req.workflow, Target::Latest)
                    .await?
                    .map(|_| n),
                None => None,
            };
            return Err(Error::NotFound(match deployed {
                Some(n) => format!("workflow `{}` has no version {n}", req.workflow),
                None => format!("no workflow named `{}` is deployed", req.workflow),
            }));
        };
        if version.kind != ComponentKind::Workflow {
            return Err(Error::BadRequest(format!(
                "`{}` is an activity; start a workflow instead",
                req.workflow
            )));
        }
        self.check_payload(&limits, &namespace, "input", &req.input)?;
        self.admit_start(&limits, &namespace).await?;
        let mut new = NewRun::of(&version, &namespace, req.workflow_id, req.input);
        // Among several nodes, a run started here is driven here.
        if let Some(id) = self.membership.local_run_id() {
            if new.workflow_id == new.run_id {
                new.workflow_id = id.clone();
            }
            new.run_id = id;
        }
        new.deadline_at_ms = req.execution_timeout_ms.map(|t| new.at_ms + t as i64);
        Ok(new)
    }

    /// Start a run; a workflow id held by an open run answers that run.
    pub async fn start_run(self: &Arc<Self>, req: StartRun) -> Result<(RunRecord, bool)> {
        let mut policy = req.policy;
        let new = self.new_run(req).await?;
        if policy.conflict == IdConflict::TerminateExisting {
            if let Some(open) = self
                .store
                .open_run(&new.namespace, &new.workflow_id)
                .await?
            {
                let reason = format!("replaced by a new run of workflow id `{}`", new.workflow_id);
                self.terminate_run(&open.run_id, &reason, super::Route::ToDriver)
                    .await?;
            }
            // Terminated (or gone): a run that took the id meanwhile wins.
            policy.conflict = IdConflict::Fail;
        }
        let started = new.started();
        match self.write(WriteOp::CreateRun { run: new, policy }).await? {
            WriteOutcome::Created(run) => {
                self.wake(run.run_id.clone(), Some((run.clone(), vec![started])));
                Ok((run, true))
            }
            WriteOutcome::Existing(run) => Ok((run, false)),
            WriteOutcome::Refused(r) => Err(refused(r)),
            other => Err(Error::Internal(anyhow::anyhow!(
                "the writer answered a run creation with {other:?}"
            ))),
        }
    }

    /// Deliver a signal (durably, before answering); with `start`, start
    /// the run first if none is open.
    pub async fn signal(self: &Arc<Self>, req: SignalRequest) -> Result<Signalled> {
        if req.name.is_empty() || req.name.len() > 128 {
            return Err(Error::BadRequest(
                "a signal name must be 1 to 128 characters".into(),
            ));
        }
        let limits = self.limits(&req.namespace).await?;
        self.check_payload(&limits, &req.namespace, "signal payload", &req.payload)?;
        let start = match req.start {
            Some(start) => Some(self.new_run(start).await?),
            None => None,
        };
        if let Some(id) = &req.request_id
            && (id.is_empty() || id.len() > 256)
        {
            return Err(Error::BadRequest(
                "an idempotency key must be 1 to 256 characters".into(),
            ));
        }
        let op = WriteOp::Signal {
            target: req.target,
            name: req.name,
            payload: req.payload,
            start,
            request_id: req.request_id,
        };
        match self.write(op).await? {
            WriteOutcome::Signalled {
                signal,
                created,
                duplicate,
            } => Ok(Signalled {
                signal,
                created,
                duplicate,
            }),
            WriteOutcome::Refused(r) => Err(refused(r)),
            other => Err(Error::Internal(anyhow::anyhow!("unexpected {other:?}"))),
        }
    }

    /// End an open run at once, without its cleanup: it is taken out of
    /// memory (activities in flight are aborted), its journal ends with a
    /// `failed` event of kind `terminated` and `reason`, its parent is told
    /// and its children are closed by their policy.
    pub async fn terminate(self: &Arc<Self>, run_id: &str, reason: &str) -> Result<RunRecord> {
        let held = self.exclusive(run_id).await?;
        let run = self.open_run_for(run_id, "terminated").await?;
        let error = ErrorInfo::new(kind::TERMINATED, reason);
        let value = serde_json::to_value(&error).expect("error info serializes");
        let sink = self.sink_at_end(run_id).await?;
        sink.record(Event::Failed { error });
        sink.commit(Some(RunUpdate::Ended {
            status: RunStatus::Terminated,
            output: None,
            error: Some(value),
        }))
        .await?;
        held.release_ended();
        tracing::info!(run = run_id, "terminated: {reason}");
        self.closed(run_id, run.parent_run_id.clone()).await;
        let run = self.store.get_run(run_id).await?.expect("still there");
        Ok(run)
    }

    /// A sink that appends after the last event of a run held exclusively
    /// (no execution of it numbers events meanwhile).
    pub(super) async fn sink_at_end(&self, run_id: &str) -> Result<Sink> {
        let journal = self.store.journal(run_id).await?;
        Ok(self.sink(run_id, journal.last().map_or(0, |r| r.seq + 1)))
    }

    /// The run `run_id` as stored; 404 if there is none.
    pub(super) async fn run_record(&self, run_id: &str) -> Result<RunRecord> {
        self.store
            .get_run(run_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no run `{run_id}`")))
    }

    /// The run `run_id`, which must be open to be `what` (upgraded, say).
    pub(super) async fn open_run_for(&self, run_id: &str, what: &str) -> Result<RunRecord> {
        let run = self.run_record(run_id).await?;
        if !run.status.is_open() {
            return Err(Error::Conflict(format!(
                "run {run_id} has ended ({}); only open runs can be {what}",
                run.status
            )));
        }
        Ok(run)
    }

    /// Ask a run to cancel: its next await answers `cancelled`.
    pub async fn cancel(self: &Arc<Self>, run_id: &str) -> Result<RunRecord> {
        let op = WriteOp::RequestCancel {
            run_id: run_id.to_string(),
        };
        match self.write(op).await? {
            WriteOutcome::CancelRequested(run) => Ok(run),
            WriteOutcome::Refused(r) => Err(refused(r)),
            other => Err(Error::Internal(anyhow::anyhow!("unexpected {other:?}"))),
        }
    }
}

/// 404 for a namespace that does not exist.
fn no_namespace(namespace: &str) -> Error {
    Error::NotFound(format!(
        "no namespace `{namespace}`: create it first (POST /v1/namespaces)"
    ))
}
