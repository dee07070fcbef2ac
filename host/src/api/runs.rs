use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, JsonBody, QueryParams};
use super::openapi::NamespaceQuery;
use crate::error::Error;
use crate::journal::Export;
use crate::runtime::StartRun;
use crate::store::{Role, RunFilter, RunRecord, RunStatus};
use crate::writes::{IdConflict, IdPolicy, IdReuse};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// Longest long-poll a client may ask for.
const MAX_WAIT_SECS: f64 = 600.0;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    workflow: String,
    #[serde(default)]
    input: Value,
    workflow_id: Option<String>,
    version: Option<u32>,
    namespace: Option<String>,
    execution_timeout_ms: Option<u64>,
    /// When an open run holds the workflow id: `use-existing` (default),
    /// `fail`, `terminate-existing`.
    #[serde(default)]
    id_conflict_policy: IdConflict,
    /// When closed runs had it: `allow-duplicate` (default),
    /// `allow-duplicate-failed-only`, `reject-duplicate`.
    #[serde(default)]
    id_reuse_policy: IdReuse,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StartQuery {
    /// Seconds (at most 600) to wait for the run to end: the answer is
    /// then the run as `GET /v1/runs/{run_id}` gives it, output included,
    /// with `created`.
    wait: Option<f64>,
}

/// Start a run of a workflow.
///
/// Idempotent on `workflow_id` among open runs unless its policies say
/// otherwise (`id_conflict_policy`, `id_reuse_policy`). 201 with the run;
/// 200 with the open run it joined. With `wait`, answers once that run is
/// no longer `running` or the time is up, whichever comes first: a start
/// and its result in one request.
#[utoipa::path(
    post,
    path = "/v1/runs",
    operation_id = "startRun",
    tag = "runs",
    params(StartQuery),
    request_body = StartBody,
    responses(
        (status = 201, description = "The new run", body = RunRecord),
        (status = 200, description = "The open run with that workflow id", body = RunRecord),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<StartQuery>,
    JsonBody(body): JsonBody<StartBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let wait = wait_secs(query.wait)?;
    let namespace = caller.acting_in(body.namespace.as_deref(), Role::Operate)?;
    let (run, created) = state
        .rt
        .start_run(StartRun {
            workflow: body.workflow,
            input: body.input,
            workflow_id: body.workflow_id,
            version: body.version,
            namespace: Some(namespace),
            execution_timeout_ms: body.execution_timeout_ms,
            policy: IdPolicy {
                conflict: body.id_conflict_policy,
                reuse: body.id_reuse_policy,
            },
        })
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    if let Some(wait) = wait {
        let mut ended = when_ended(&state, &caller, &run.run_id, Role::Operate, wait).await?;
        ended["created"] = created.into();
        return Ok((status, Json(ended)));
    }
    Ok((
        status,
        Json(json!({
            "run_id": run.run_id,
            "workflow_id": run.workflow_id,
            "workflow": run.workflow,
            "version": run.version,
            "status": run.status,
            "created": created,
        })),
    ))
}

/// A `wait` asked for, checked: none, or 0 to [`MAX_WAIT_SECS`] seconds.
fn wait_secs(wait: Option<f64>) -> Result<Option<Duration>, Error> {
    match wait {
        None => Ok(None),
        Some(secs) if (0.0..=MAX_WAIT_SECS).contains(&secs) => {
            Ok(Some(Duration::from_secs_f64(secs)))
        }
        Some(_) => Err(Error::BadRequest(format!(
            "wait must be between 0 and {MAX_WAIT_SECS} seconds"
        ))),
    }
}

/// Run `run_id` (as `role` may see it) once it is no longer `running` or
/// `wait` is up, whichever comes first, with its attributes.
async fn when_ended(
    state: &AppState,
    caller: &Caller,
    run_id: &str,
    role: Role,
    wait: Duration,
) -> Result<Value, ApiError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let end = state.rt.watch_end(run_id);
        let run = load(state, caller, run_id, role).await?;
        if run.status != RunStatus::Running || tokio::time::Instant::now() >= deadline {
            return Ok(with_attributes(state, run).await?);
        }
        let _ = tokio::time::timeout_at(deadline, end).await;
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GetQuery {
    /// Wait up to this many seconds for the run to leave `running`.
    wait: Option<f64>,
}

/// The run `run_id`, if `caller` may act on it as `role` (404 for a run
/// it cannot see).
pub(super) async fn load(
    state: &AppState,
    caller: &Caller,
    run_id: &str,
    role: Role,
) -> Result<RunRecord, ApiError> {
    let run = state.rt.store.get_run(run_id).await?;
    caller.on_run(run, run_id, role)
}

/// A run: its status, input, output or error, custom status and search
/// attributes.
///
/// With `wait`, answers once the run is no longer `running` or the time is
/// up, whichever comes first. An open run lists its undelivered signals
/// (`pending_signals`).
#[utoipa::path(
    get,
    path = "/v1/runs/{run_id}",
    operation_id = "getRun",
    tag = "runs",
    params(
        ("run_id" = String, Path, description = "The run's id"),
        GetQuery,
    ),
    responses((status = 200, description = "The run, with `search_attributes` and, while open, `pending_signals`", body = RunRecord))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(run_id): Path<String>,
    QueryParams(query): QueryParams<GetQuery>,
) -> Result<Json<Value>, ApiError> {
    let wait = wait_secs(query.wait)?.unwrap_or_default();
    let run = when_ended(&state, &caller, &run_id, Role::Read, wait).await?;
    Ok(Json(run))
}

/// A run as stored, with its search attributes (`search_attributes`)
/// and, while it is open, the signals delivered and not consumed yet
/// (`pending_signals`: name, id, arrival time).
async fn with_attributes(state: &AppState, run: RunRecord) -> Result<Value, Error> {
    let attributes = state.rt.store.run_attributes(&run.run_id).await?;
    let mut body = serde_json::to_value(&run).map_err(anyhow::Error::from)?;
    body["search_attributes"] = Value::Object(attributes);
    if run.status.is_open() {
        let pending = state.rt.store.pending_signals(&run.run_id).await?;
        body["pending_signals"] = pending
            .iter()
            .map(|s| json!({ "name": s.name, "id": s.id, "at_ms": s.at_ms }))
            .collect();
    }
    Ok(body)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `running`, `completed`, `failed`, `cancelled`, `timed-out`,
    /// `terminated` or `stuck`.
    status: Option<String>,
    /// The workflow's name.
    workflow: Option<String>,
    workflow_id: Option<String>,
    /// Default: the token's, else `default`.
    namespace: Option<String>,
    /// The most runs to answer.
    limit: Option<u32>,
    /// A list query over the run's fields and its search attributes, e.g.
    /// `region = 'eu-west' AND (cells > 2 OR workflow IN ('rollout'))`.
    q: Option<String>,
}

/// A list query as given (an empty one is none); 400 naming the position
/// where it stops making sense.
pub(super) fn list_query(text: Option<&str>) -> Result<Option<crate::query::Expr>, Error> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => crate::query::parse(text)
            .map(Some)
            .map_err(|e| Error::BadRequest(format!("the query {text:?}: {e}"))),
    }
}

/// Runs, newest first, filtered by status, workflow, workflow id, namespace or
/// a query.
#[utoipa::path(
    get,
    path = "/v1/runs",
    operation_id = "listRuns",
    tag = "runs",
    params(ListQuery),
    responses((status = 200, description = "A list: `runs`", body = Object))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let namespace = caller.listing(query.namespace.as_deref())?;
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            s.parse::<RunStatus>()
                .map_err(|e| Error::BadRequest(e.to_string()))?,
        ),
    };
    let filter = RunFilter {
        status,
        workflow: query.workflow.filter(|w| !w.is_empty()),
        workflow_id: query.workflow_id.filter(|w| !w.is_empty()),
        namespace,
        query: list_query(query.q.as_deref())?,
        limit: query.limit.unwrap_or(100).clamp(1, 1000),
    };
    let runs = state.rt.store.list_runs(&filter).await?;
    Ok(Json(json!({ "runs": runs })))
}

/// Ask a run to cancel.
///
/// The run's next await answers `cancelled`; it may clean up, then ends
/// `cancelled`.
#[utoipa::path(
    post,
    path = "/v1/runs/{run_id}/cancel",
    operation_id = "cancelRun",
    tag = "runs",
    params(("run_id" = String, Path, description = "The run's id")),
    responses((status = 200, description = "The run", body = RunRecord))
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(run_id): Path<String>,
) -> Result<(StatusCode, Json<RunRecord>), ApiError> {
    load(&state, &caller, &run_id, Role::Operate).await?;
    let run = state.rt.cancel(&run_id).await?;
    super::audit::record(
        &state,
        &caller,
        &run.namespace,
        "cancel",
        &run_id,
        Value::Null,
    )
    .await;
    Ok((StatusCode::ACCEPTED, Json(run)))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TerminateBody {
    /// Why (terminate, pause, unpause).
    reason: Option<String>,
}

/// End a run at once, `terminated`, without its cleanup.
#[utoipa::path(
    post,
    path = "/v1/runs/{run_id}/terminate",
    operation_id = "terminateRun",
    tag = "runs",
    params(("run_id" = String, Path, description = "The run's id")),
    request_body(content = Option<TerminateBody>, description = "Why"),
    responses((status = 200, description = "The run", body = RunRecord))
)]
pub async fn terminate(
    State(state): State<AppState>,
    caller: Caller,
    Path(run_id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<TerminateBody>,
) -> Result<Json<RunRecord>, ApiError> {
    load(&state, &caller, &run_id, Role::Operate).await?;
    let reason = body
        .reason
        .unwrap_or_else(|| "terminated by an operator".into());
    let route = super::route(&headers);
    let run = state.rt.terminate_run(&run_id, &reason, route).await?;
    if route == crate::runtime::Route::ToDriver {
        let details = json!({ "reason": reason });
        super::audit::record(
            &state,
            &caller,
            &run.namespace,
            "terminate",
            &run_id,
            details,
        )
        .await;
    }
    Ok(Json(run))
}

/// Pause a run: it takes no step until unpaused.
///
/// Activities already running finish and their outcomes are held for the
/// run.
#[utoipa::path(
    post,
    path = "/v1/runs/{run_id}/pause",
    operation_id = "pauseRun",
    tag = "runs",
    params(("run_id" = String, Path, description = "The run's id")),
    request_body(content = Option<TerminateBody>, description = "Why"),
    responses((status = 200, description = "The run", body = RunRecord))
)]
pub async fn pause(
    state: State<AppState>,
    caller: Caller,
    run_id: Path<String>,
    headers: HeaderMap,
    body: JsonBody<TerminateBody>,
) -> Result<Json<RunRecord>, ApiError> {
    set_paused(state, caller, run_id, headers, body, true).await
}

/// Unpause a run: it goes on from where it stopped.
#[utoipa::path(
    post,
    path = "/v1/runs/{run_id}/unpause",
    operation_id = "unpauseRun",
    tag = "runs",
    params(("run_id" = String, Path, description = "The run's id")),
    request_body(content = Option<TerminateBody>, description = "Why"),
    responses((status = 200, description = "The run", body = RunRecord))
)]
pub async fn unpause(
    state: State<AppState>,
    caller: Caller,
    run_id: Path<String>,
    headers: HeaderMap,
    body: JsonBody<TerminateBody>,
) -> Result<Json<RunRecord>, ApiError> {
    set_paused(state, caller, run_id, headers, body, false).await
}

async fn set_paused(
    State(state): State<AppState>,
    caller: Caller,
    Path(run_id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<TerminateBody>,
    paused: bool,
) -> Result<Json<RunRecord>, ApiError> {
    load(&state, &caller, &run_id, Role::Operate).await?;
    let verb = if paused { "pause" } else { "unpause" };
    let reason = body
        .reason
        .unwrap_or_else(|| format!("{verb}d by an operator"));
    let route = super::route(&headers);
    let run = state.rt.pause_run(&run_id, paused, &reason, route).await?;
    if route == crate::runtime::Route::ToDriver {
        let details = json!({ "reason": reason });
        super::audit::record(&state, &caller, &run.namespace, verb, &run_id, details).await;
    }
    Ok(Json(run))
}

/// The open run with a workflow id, or else the latest one.
#[utoipa::path(
    get,
    path = "/v1/workflow-ids/{workflow_id}",
    operation_id = "getRunByWorkflowId",
    tag = "runs",
    params(
        ("workflow_id" = String, Path, description = "The workflow id"),
        NamespaceQuery,
    ),
    responses((status = 200, description = "The run", body = RunRecord))
)]
pub async fn by_workflow_id(
    State(state): State<AppState>,
    caller: Caller,
    Path(workflow_id): Path<String>,
    QueryParams(query): QueryParams<NamespaceQuery>,
) -> Result<Json<RunRecord>, ApiError> {
    let namespace = caller.acting_in(query.namespace.as_deref(), Role::Read)?;
    if let Some(run) = state.rt.store.open_run(&namespace, &workflow_id).await? {
        return Ok(Json(run));
    }
    let filter = RunFilter {
        workflow_id: Some(workflow_id.clone()),
        namespace: Some(namespace),
        limit: 1,
        ..RunFilter::default()
    };
    match state.rt.store.list_runs(&filter).await?.pop() {
        Some(run) => Ok(Json(run)),
        None => Err(Error::NotFound(format!("no run with workflow id `{workflow_id}`")).into()),
    }
}

/// A run's journal: every event, in order, with its time.
#[utoipa::path(
    get,
    path = "/v1/runs/{run_id}/journal",
    operation_id = "getJournal",
    tag = "runs",
    params(("run_id" = String, Path, description = "The run's id")),
    responses((status = 200, description = "The journal export (`weft replay` reads it)", body = Object))
)]
pub async fn journal(
    State(state): State<AppState>,
    caller: Caller,
    Path(run_id): Path<String>,
) -> Result<Json<Export>, ApiError> {
    let run = load(&state, &caller, &run_id, Role::Read).await?;
    let events = state.rt.store.journal(&run_id).await?;
    Ok(Json(Export::new(
        run.run_id,
        run.workflow,
        run.version,
        run.digest,
        events,
    )))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    /// The first event the new run does not keep.
    event: u64,
    reason: Option<String>,
    /// Deliver again the signals consumed from `event` on (default true).
    reapply_signals: Option<bool>,
    /// Pin the new run to this version (default: the old run's).
    version: Option<u32>,
}

/// Reset a run to an event of its journal.
///
/// A new run under the same workflow id replays the journal before
/// `event` and continues live from there; the old run (terminated first if
/// open) records the reset. 201 with the new run.
#[utoipa::path(
    post,
    path = "/v1/runs/{run_id}/reset",
    operation_id = "resetRun",
    tag = "runs",
    params(("run_id" = String, Path, description = "The run's id")),
    request_body = ResetBody,
    responses((status = 201, description = "The new run", body = Object))
)]
pub async fn reset(
    State(state): State<AppState>,
    caller: Caller,
    Path(run_id): Path<String>,
    JsonBody(body): JsonBody<ResetBody>,
) -> Result<(StatusCode, Json<RunRecord>), ApiError> {
    let old = load(&state, &caller, &run_id, Role::Operate).await?;
    let reason = body.reason.unwrap_or_else(|| "reset by an operator".into());
    let req = crate::runtime::ResetRequest {
        event: body.event,
        reason: reason.clone(),
        reapply_signals: body.reapply_signals.unwrap_or(true),
        version: body.version,
    };
    let run = state.rt.reset(&run_id, req).await?;
    let details = json!({ "event": body.event, "reason": reason, "new_run_id": run.run_id });
    super::audit::record(&state, &caller, &old.namespace, "reset", &run_id, details).await;
    Ok((StatusCode::CREATED, Json(run)))
}
