//! Signals: to a run, to the open run of a workflow id, and
//! signal-with-start (the entity-workflow entry point). An
//! `Idempotency-Key` header makes a retried request safe: it is answered
//! with the signal it already delivered.

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, Body, Code, JsonBody, QueryParams};
use super::openapi::NamespaceQuery;
use crate::runtime::{SignalRequest, StartRun};
use crate::store::Role;
use crate::writes::SignalTarget;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

/// The payload is the body as JSON (an empty body is `null`).
fn payload(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            Code::MalformedJson,
            format!("the signal payload is not JSON: {e}"),
        )
    })
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `target`'s `namespace` is the one the caller was checked in.
async fn deliver(
    state: &AppState,
    headers: &HeaderMap,
    namespace: String,
    target: SignalTarget,
    name: String,
    payload: Value,
    start: Option<StartRun>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = SignalRequest {
        target,
        namespace,
        name,
        payload,
        start,
        request_id: request_id(headers),
    };
    let done = state.rt.signal(req).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "run_id": done.signal.run_id,
            "signal_id": done.signal.id,
            "created": done.created,
            "duplicate": done.duplicate,
        })),
    ))
}

/// Signal a run; the body is the payload (any JSON).
#[utoipa::path(
    post,
    path = "/v1/runs/{run_id}/signals/{name}",
    operation_id = "signalRun",
    tag = "signals and updates",
    params(
        ("run_id" = String, Path, description = "The run's id"),
        ("name" = String, Path, description = "The signal"),
    ),
    request_body(content = Object, description = "The payload"),
    responses((status = 202, description = "Delivered (the run reads it when it waits)", body = Object))
)]
pub async fn to_run(
    State(state): State<AppState>,
    caller: Caller,
    Path((run_id, name)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let run = super::runs::load(&state, &caller, &run_id, Role::Operate).await?;
    let target = SignalTarget::Run(run_id);
    let payload = payload(&body)?;
    deliver(&state, &headers, run.namespace, target, name, payload, None).await
}

/// Signal the open run of a workflow id; the body is the payload.
#[utoipa::path(
    post,
    path = "/v1/workflow-ids/{workflow_id}/signals/{name}",
    operation_id = "signalWorkflow",
    tag = "signals and updates",
    params(
        ("workflow_id" = String, Path, description = "The workflow id"),
        ("name" = String, Path, description = "The signal"),
        NamespaceQuery,
    ),
    request_body(content = Object, description = "The payload"),
    responses((status = 202, description = "Delivered", body = Object))
)]
pub async fn to_workflow(
    State(state): State<AppState>,
    caller: Caller,
    Path((workflow_id, name)): Path<(String, String)>,
    QueryParams(query): QueryParams<NamespaceQuery>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let namespace = caller.acting_in(query.namespace.as_deref(), Role::Operate)?;
    let target = SignalTarget::Workflow {
        namespace: namespace.clone(),
        workflow_id,
    };
    let payload = payload(&body)?;
    deliver(&state, &headers, namespace, target, name, payload, None).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithStartBody {
    workflow: String,
    #[serde(default)]
    input: Value,
    signal: String,
    #[serde(default)]
    payload: Value,
    namespace: Option<String>,
    execution_timeout_ms: Option<u64>,
}

/// Signal-with-start: start the run if none is open under the workflow id, and
/// deliver the signal either way.
#[utoipa::path(
    post,
    path = "/v1/workflow-ids/{workflow_id}/signal-with-start",
    operation_id = "signalWithStart",
    tag = "signals and updates",
    params(("workflow_id" = String, Path, description = "The workflow id")),
    request_body = WithStartBody,
    responses((status = 202, description = "Delivered, with the run", body = Object))
)]
pub async fn with_start(
    State(state): State<AppState>,
    caller: Caller,
    Path(workflow_id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<WithStartBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let namespace = caller.acting_in(body.namespace.as_deref(), Role::Operate)?;
    let target = SignalTarget::Workflow {
        namespace: namespace.clone(),
        workflow_id: workflow_id.clone(),
    };
    let start = StartRun {
        workflow: body.workflow,
        input: body.input,
        workflow_id: Some(workflow_id),
        version: None,
        namespace: Some(namespace.clone()),
        execution_timeout_ms: body.execution_timeout_ms,
        policy: Default::default(),
    };
    deliver(
        &state,
        &headers,
        namespace,
        target,
        body.signal,
        body.payload,
        Some(start),
    )
    .await
}
