//! Updates: a request into the open run of a workflow id whose caller waits
//! for the answer (Temporal's updates). The request is a row; the run that
//! takes it accepts it in its journal (or rejects it without a trace) and
//! answers it there, each beside the row's change in one commit. Callers
//! wait on the row, so any node can answer them, and a caller that lost its
//! connection re-attaches by update id.

use super::{Runtime, StartRun};
use crate::clock::now_ms;
use crate::engine::{Notice, UpdateAsk};
use crate::error::{Error, Result};
use crate::journal::ErrorInfo;
use crate::store::{UpdateKey, UpdateRecord, UpdateState};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// How often a waiting caller reads the row when nothing here told it of
/// a change (the run may answer on another node).
const POLL: Duration = Duration::from_millis(250);

/// The longest a caller may wait in one request.
const MAX_WAIT: Duration = Duration::from_secs(600);

pub struct UpdateRequest {
    pub namespace: String,
    pub workflow_id: String,
    pub name: String,
    pub input: Value,
    /// The caller's id for the update: a retried request is the same one.
    pub update_id: Option<String>,
    /// Update-with-start: the run to start under the workflow id if none
    /// is open.
    pub start: Option<StartRun>,
    /// How long to wait for the answer before answering where it is.
    pub wait: Duration,
}

impl Runtime {
    /// Deliver an update and wait (up to `wait`) for its answer; a known
    /// update id is answered with that update, however it was asked.
    pub async fn update(self: &Arc<Self>, req: UpdateRequest) -> Result<UpdateRecord> {
        self.request_update(req, None).await
    }

    /// [`Runtime::update`], on behalf of run `caller` if a workflow asks.
    async fn request_update(
        self: &Arc<Self>,
        req: UpdateRequest,
        caller: Option<&str>,
    ) -> Result<UpdateRecord> {
        if req.name.is_empty() || req.name.len() > 128 {
            return Err(Error::BadRequest(
                "an update name must be 1 to 128 characters".into(),
            ));
        }
        let update_id = match req.update_id {
            Some(id) if id.is_empty() || id.len() > 256 => {
                return Err(Error::BadRequest(
                    "an update id must be 1 to 256 characters".into(),
                ));
            }
            Some(id) => id,
            None => uuid::Uuid::new_v4().to_string(),
        };
        let key = UpdateKey {
            namespace: req.namespace.clone(),
            workflow_id: req.workflow_id.clone(),
            update_id,
        };
        if let Some(known) = self.store.updates().update(&key).await? {
            return self.same_update(known, &req.name, req.wait).await;
        }
        let limits = self.limits(&req.namespace).await?;
        self.check_payload(&limits, &req.namespace, "update input", &req.input)?;
        let run = match req.start {
            Some(start) => self.start_run(start).await?.0,
            None => self
                .store
                .open_run(&req.namespace, &req.workflow_id)
                .await?
                .ok_or_else(|| {
                    Error::NotFound(format!(
                        "no open run with workflow id `{}`",
                        req.workflow_id
                    ))
                })?,
        };
        let request = UpdateRecord {
            namespace: key.namespace.clone(),
            workflow_id: key.workflow_id.clone(),
            update_id: key.update_id.clone(),
            name: req.name.clone(),
            input: req.input,
            state: UpdateState::Requested,
            run_id: None,
            outcome: None,
            requested_at_ms: now_ms(),
            decided_at_ms: None,
            caller_run_id: caller.map(str::to_string),
        };
        let (stored, created) = self.store.updates().request_update(&request).await?;
        if !created {
            // The same id, asked twice at once: one of them wrote it.
            return self.same_update(stored, &req.name, req.wait).await;
        }
        self.tell(&run.run_id, Notice::Update(stored));
        self.await_update(&key, req.wait).await
    }

    /// A request whose update id is known: it re-attaches to that update,
    /// if it is one of the same name.
    async fn same_update(
        self: &Arc<Self>,
        known: UpdateRecord,
        name: &str,
        wait: Duration,
    ) -> Result<UpdateRecord> {
        if known.name != name {
            return Err(Error::Conflict(format!(
                "update id `{}` is taken by an update named `{}`",
                known.update_id, known.name
            )));
        }
        let key = UpdateKey {
            namespace: known.namespace,
            workflow_id: known.workflow_id,
            update_id: known.update_id,
        };
        self.await_update(&key, wait).await
    }

    /// The update, once answered or after `wait`, whichever comes first.
    /// An update its run can no longer answer (the run ended first) is
    /// answered with an error saying so.
    pub async fn await_update(
        self: &Arc<Self>,
        key: &UpdateKey,
        wait: Duration,
    ) -> Result<UpdateRecord> {
        let until = tokio::time::Instant::now() + wait.min(MAX_WAIT);
        let mut decided = self.updates_decided.subscribe();
        loop {
            decided.borrow_and_update();
            let update = self.store.updates().update(key).await?.ok_or_else(|| {
                Error::NotFound(format!(
                    "no update `{}` for workflow id `{}`",
                    key.update_id, key.workflow_id
                ))
            })?;
            if update.state.decided() {
                return Ok(update);
            }
            if let Some(orphaned) = self.orphaned(update.clone()).await? {
                return Ok(orphaned);
            }
            let now = tokio::time::Instant::now();
            if now >= until {
                return Ok(update);
            }
            let nap = (until - now).min(POLL);
            tokio::select! {
                _ = decided.changed() => {}
                _ = tokio::time::sleep(nap) => {}
            }
        }
    }

    /// What becomes of an update whose run ended before answering it: a
    /// requested one is rejected (no run will take it), an accepted one is
    /// answered with an error (its row stays as the journal left it).
    async fn orphaned(self: &Arc<Self>, mut update: UpdateRecord) -> Result<Option<UpdateRecord>> {
        let error = match (&update.state, &update.run_id) {
            (UpdateState::Requested, _) => {
                if self
                    .store
                    .open_run(&update.namespace, &update.workflow_id)
                    .await?
                    .is_some()
                {
                    return Ok(None);
                }
                let error = json!({
                    "kind": "run-ended",
                    "message": format!(
                        "no open run with workflow id `{}` took the update",
                        update.workflow_id
                    ),
                });
                let key = UpdateKey {
                    namespace: update.namespace.clone(),
                    workflow_id: update.workflow_id.clone(),
                    update_id: update.update_id.clone(),
                };
                if !self.store.updates().reject_update(&key, &error).await? {
                    // Taken meanwhile: the next look says how.
                    return Ok(None);
                }
                self.update_decided(&key, true);
                update.state = UpdateState::Rejected;
                error
            }
            (UpdateState::Accepted, Some(run_id)) => match self.store.get_run(run_id).await? {
                Some(run) if !run.status.is_open() => json!({
                    "kind": "update-unanswered",
                    "message": format!(
                        "run {run_id} accepted the update and ended ({}) without answering it",
                        run.status
                    ),
                }),
                _ => return Ok(None),
            },
            _ => return Ok(None),
        };
        update.outcome = Some(json!({ "error": error }));
        Ok(Some(update))
    }

    /// An update was accepted, answered or rejected here: callers waiting
    /// on this node look again at once, and once it is `answered`, a run
    /// that sent it is woken.
    pub(super) fn update_decided(self: &Arc<Self>, key: &UpdateKey, answered: bool) {
        self.updates_decided.send_modify(|n| *n += 1);
        if !answered {
            return;
        }
        let (rt, key) = (self.clone(), key.clone());
        let busy = super::native::Busy::new(&self.tasks);
        tokio::spawn(async move {
            let _busy = busy;
            match rt.store.updates().update(&key).await {
                Ok(Some(update)) => {
                    if let Some(caller) = update.caller_run_id {
                        rt.tell(&caller, Notice::Poke);
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("cannot read update {}: {e:#}", key.update_id),
            }
        });
    }

    /// Run `run_id` ended: the updates runs sent to its workflow id that
    /// no run will answer now are answered so (waking their senders).
    pub(super) async fn sent_updates_orphaned(self: &Arc<Self>, run_id: &str) {
        let sent = match self.store.updates().sent_updates_open(run_id).await {
            Ok(sent) => sent,
            Err(e) => {
                tracing::warn!(run = run_id, "cannot list the updates sent to it: {e:#}");
                return;
            }
        };
        for update in sent {
            let id = update.update_id.clone();
            match self.orphaned(update).await {
                Ok(Some(update)) if update.state == UpdateState::Accepted => {
                    // Its row stays as the journal left it: tell the sender.
                    if let Some(caller) = &update.caller_run_id {
                        self.tell(caller, Notice::Poke);
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("cannot answer update {id}: {e}"),
            }
        }
    }

    /// The answer to an update once it has one (`None` while it waits):
    /// the handler's output, or the error it was answered with.
    pub(super) async fn update_answer(
        self: &Arc<Self>,
        key: &UpdateKey,
    ) -> Result<Option<std::result::Result<Value, ErrorInfo>>> {
        let update = self.await_update(key, Duration::ZERO).await?;
        Ok(update.answer().map(|answer| {
            answer.map_err(|error| {
                serde_json::from_value(error.clone())
                    .unwrap_or_else(|_| ErrorInfo::new("update-failed", error.to_string()))
            })
        }))
    }

    /// A workflow (run `caller`) asks for an update: the request is made,
    /// not waited for. The inner error says why no run can take it.
    pub(super) async fn ask_update(
        self: &Arc<Self>,
        key: &UpdateKey,
        ask: &UpdateAsk,
        caller: &str,
    ) -> anyhow::Result<std::result::Result<(), ErrorInfo>> {
        let start = ask.start.as_ref().map(|spec| StartRun {
            workflow: spec.workflow.clone(),
            input: spec.input.clone(),
            workflow_id: Some(key.workflow_id.clone()),
            version: None,
            namespace: Some(key.namespace.clone()),
            execution_timeout_ms: None,
            policy: Default::default(),
        });
        let req = UpdateRequest {
            namespace: key.namespace.clone(),
            workflow_id: key.workflow_id.clone(),
            name: ask.name.clone(),
            input: ask.input.clone(),
            update_id: Some(key.update_id.clone()),
            start,
            wait: Duration::ZERO,
        };
        match self.request_update(req, Some(caller)).await {
            Ok(_) => Ok(Ok(())),
            Err(Error::Internal(e)) => Err(e),
            Err(e) => Ok(Err(ErrorInfo::new(e.kind(), e.to_string()))),
        }
    }
}
