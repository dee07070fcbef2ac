//! Batch operations: one request cancels, terminates, signals, pauses or
//! upgrades every run
//! of a namespace that a filter matches ("cancel every running rollout").
//! Each run goes through the same path as its own request would (a run
//! driven by another node is handled there); one audit entry records the
//! batch. A dry run answers what would be touched.

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, JsonBody};
use crate::error::Error;
use crate::runtime::BatchAction;
use crate::store::{Role, RunFilter, RunStatus};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

/// The most runs one batch touches; `more` says when others matched.
const MAX_RUNS: u32 = 1000;
/// The most runs one background job takes.
const MAX_JOB_RUNS: u32 = 1_000_000;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// `cancel`, `terminate`, `pause` or `unpause` (with `reason`), or
    /// `signal` (with `signal`, the signal's name, and `payload`).
    action: String,
    reason: Option<String>,
    signal: Option<String>,
    payload: Option<Value>,
    /// Default: the token's namespace (or `default`).
    namespace: Option<String>,
    workflow: Option<String>,
    workflow_id: Option<String>,
    /// A list query over fields and search attributes.
    query: Option<String>,
    /// The version an `upgrade` moves runs to: a number or `latest`
    /// (default).
    version: Option<Value>,
    /// Default: `running`.
    status: Option<String>,
    #[serde(default)]
    dry_run: bool,
    /// Write the batch down as a job worked off in the background (all
    /// matching runs, however many): answers the job at once.
    #[serde(default)]
    background: bool,
}

impl BatchBody {
    fn action(&self) -> Result<BatchAction, Error> {
        let only = |fields: &[(&str, bool)]| match fields.iter().find(|(_, given)| *given) {
            Some((name, _)) => Err(Error::BadRequest(format!(
                "`{name}` does not apply to a batch {}",
                self.action
            ))),
            None => Ok(()),
        };
        let signal = self.signal.is_some() || self.payload.is_some();
        match self.action.as_str() {
            "cancel" => {
                only(&[("reason", self.reason.is_some()), ("signal", signal)])?;
                Ok(BatchAction::Cancel)
            }
            "terminate" => {
                only(&[("signal", signal)])?;
                Ok(BatchAction::Terminate {
                    reason: self.reason.clone(),
                })
            }
            "pause" | "unpause" => {
                only(&[("signal", signal)])?;
                let reason = self.reason.clone();
                Ok(if self.action == "pause" {
                    BatchAction::Pause { reason }
                } else {
                    BatchAction::Unpause { reason }
                })
            }
            "upgrade" => {
                only(&[("reason", self.reason.is_some()), ("signal", signal)])?;
                let to = match &self.version {
                    None => None,
                    Some(Value::String(s)) if s == "latest" => None,
                    Some(v) => Some(v.as_u64().map(|n| n as u32).ok_or_else(|| {
                        Error::BadRequest(format!("a version is a number or `latest`, not {v}"))
                    })?),
                };
                Ok(BatchAction::Upgrade { to })
            }
            "signal" => {
                only(&[("reason", self.reason.is_some())])?;
                let name = self.signal.clone().unwrap_or_default();
                if name.is_empty() || name.len() > 128 {
                    return Err(Error::BadRequest(
                        "a batch signal needs `signal`, its name (1 to 128 characters)".into(),
                    ));
                }
                Ok(BatchAction::Signal {
                    name,
                    payload: self.payload.clone().unwrap_or(Value::Null),
                })
            }
            other => Err(Error::BadRequest(format!(
                "unknown batch action `{other}` (cancel, terminate, signal, pause, unpause or upgrade)"
            ))),
        }
    }
}

/// Act on many runs at once: cancel, terminate, pause, unpause, signal or
/// upgrade those a filter matches.
///
/// Answers the runs it matched, those it acted on and those it could not;
/// with `background`, a job worked off in the background (202).
#[utoipa::path(
    post,
    path = "/v1/batches",
    operation_id = "runBatch",
    tag = "runs",
    request_body = BatchBody,
    responses(
        (status = 200, description = "What the batch did", body = Object),
        (status = 202, description = "The background job", body = Object),
    )
)]
pub async fn run(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<BatchBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let namespace = caller.namespace_or(body.namespace.as_deref()).to_string();
    super::auth::visible(&state, &caller, &namespace).await?;
    let action = body.action()?;
    // Upgrades are the deploy role's verb; the others the operate role's.
    let role = match action {
        BatchAction::Upgrade { .. } => Role::Deploy,
        _ => Role::Operate,
    };
    caller.require(role, &namespace)?;
    let status = match body.status.as_deref() {
        None | Some("") => RunStatus::Running,
        Some(s) => s
            .parse::<RunStatus>()
            .map_err(|e| Error::BadRequest(e.to_string()))?,
    };
    let mut filter = RunFilter {
        status: Some(status),
        workflow: body.workflow.clone().filter(|w| !w.is_empty()),
        workflow_id: body.workflow_id.clone().filter(|w| !w.is_empty()),
        namespace: Some(namespace.clone()),
        query: super::runs::list_query(body.query.as_deref())?,
        limit: MAX_RUNS + 1,
    };
    if body.background {
        if body.dry_run {
            return Err(Error::BadRequest("a dry run is never a background job".into()).into());
        }
        filter.limit = MAX_JOB_RUNS;
        let job = state
            .rt
            .start_batch_job(&namespace, action.clone(), &filter)
            .await?;
        let details = json!({ "job": job.id, "matched": job.matched, "query": body.query });
        let what = format!("batch-job-{}", action.name());
        super::audit::record(&state, &caller, &namespace, &what, &namespace, details).await;
        return Ok((StatusCode::ACCEPTED, Json(json!(job))));
    }
    let mut runs = state.rt.store.list_runs(&filter).await?;
    let more = runs.len() > MAX_RUNS as usize;
    runs.truncate(MAX_RUNS as usize);
    let matched: Vec<String> = runs.into_iter().map(|r| r.run_id).collect();
    let mut applied = Vec::new();
    let mut failed = Vec::new();
    if !body.dry_run {
        for run_id in &matched {
            let outcome = (state.rt)
                .apply_batch_action(&namespace, &action, run_id, None)
                .await;
            match outcome {
                Ok(()) => applied.push(run_id.clone()),
                Err(e) => failed.push(json!({ "run_id": run_id, "error": e.to_string() })),
            }
        }
        let details = json!({
            "filter": {
                "workflow": body.workflow,
                "workflow_id": body.workflow_id,
                "status": status.as_str(),
                "query": body.query,
            },
            "applied": applied.len(),
            "failed": failed.len(),
        });
        let what = format!("batch-{}", action.name());
        super::audit::record(&state, &caller, &namespace, &what, &namespace, details).await;
    }
    let answer = json!({
        "action": action.name(),
        "namespace": namespace,
        "dry_run": body.dry_run,
        "matched": matched,
        "applied": applied,
        "failed": failed,
        "more": more,
    });
    Ok((StatusCode::OK, Json(answer)))
}

/// A background batch job with its progress (`matched`, `applied`, `failed`,
/// the first `errors`, `done`).
#[utoipa::path(
    get,
    path = "/v1/batches/{id}",
    operation_id = "getBatchJob",
    tag = "runs",
    params(("id" = String, Path, description = "The job id")),
    responses((status = 200, description = "The job", body = Object))
)]
pub async fn job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let job = state.rt.store.batch_jobs().job(&id).await?;
    let job = job.ok_or_else(|| Error::NotFound(format!("no batch job {id}")))?;
    // Another namespace's job is not found either.
    if caller.acting_in(Some(&job.namespace), Role::Read).is_err() {
        return Err(Error::NotFound(format!("no batch job {id}")).into());
    }
    Ok(Json(json!(job)))
}
