//! Updates: `POST /v1/workflow-ids/{id}/updates/{name}` delivers a request
//! to the open run of a workflow id and answers with the workflow's answer
//! (or its rejection); `GET …/updates/{update_id}` re-attaches to one. An
//! update id makes a retried request the same update.

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, JsonBody, QueryParams};
use crate::runtime::{StartRun, UpdateRequest};
use crate::store::{Role, UpdateKey, UpdateRecord, UpdateState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// How long a caller waits for the answer unless it says.
const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// How long a caller waits (the runtime bounds it).
fn wait(wait_ms: Option<u64>) -> Duration {
    wait_ms.map_or(DEFAULT_WAIT, Duration::from_millis)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = UpdateWithStart)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    workflow: String,
    #[serde(default)]
    input: Value,
    execution_timeout_ms: Option<u64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    #[serde(default)]
    input: Value,
    update_id: Option<String>,
    wait_ms: Option<u64>,
    namespace: Option<String>,
    /// Update-with-start: start this run under the workflow id if none is
    /// open.
    start: Option<StartBody>,
}

/// The answer: 200 once the update is answered (`completed`, `failed`:
/// the handler's error, `rejected`: the validator's), 202 while it is still
/// `requested` or `accepted` (ask again by update id).
fn answer(update: UpdateRecord) -> (StatusCode, Json<Value>) {
    let answer = update.answer();
    let error = answer.as_ref().and_then(|a| a.as_ref().err().cloned());
    let status = match (update.state, &error) {
        (UpdateState::Rejected, _) => "rejected",
        (UpdateState::Requested, None) => "requested",
        (UpdateState::Accepted, None) => "accepted",
        (_, Some(_)) => "failed",
        (UpdateState::Completed, None) => "completed",
    };
    let mut body = json!({
        "update_id": update.update_id,
        "workflow_id": update.workflow_id,
        "namespace": update.namespace,
        "name": update.name,
        "run_id": update.run_id,
        "status": status,
    });
    match answer {
        Some(Ok(output)) => body["output"] = output,
        Some(Err(error)) => body["error"] = error,
        None => {}
    }
    let code = match status {
        "requested" | "accepted" => StatusCode::ACCEPTED,
        _ => StatusCode::OK,
    };
    (code, Json(body))
}

/// Send an update to the open run of a workflow id, and wait for its answer.
///
/// 200 once the update is answered (`completed`, `failed`: the handler's
/// error, `rejected`: the validator's), 202 while it is still `requested`
/// or `accepted` (ask again by update id). With `start`: update-with-start.
#[utoipa::path(
    post,
    path = "/v1/workflow-ids/{workflow_id}/updates/{name}",
    operation_id = "sendUpdate",
    tag = "signals and updates",
    params(
        ("workflow_id" = String, Path, description = "The workflow id"),
        ("name" = String, Path, description = "The update"),
    ),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "Answered", body = Object),
        (status = 202, description = "Not answered yet", body = Object),
    )
)]
pub async fn send(
    State(state): State<AppState>,
    caller: Caller,
    Path((workflow_id, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let namespace = caller.acting_in(body.namespace.as_deref(), Role::Operate)?;
    let start = body.start.map(|s| StartRun {
        workflow: s.workflow,
        input: s.input,
        workflow_id: Some(workflow_id.clone()),
        version: None,
        namespace: Some(namespace.clone()),
        execution_timeout_ms: s.execution_timeout_ms,
        policy: Default::default(),
    });
    let req = UpdateRequest {
        namespace,
        workflow_id,
        name,
        input: body.input,
        update_id: body.update_id,
        start,
        wait: wait(body.wait_ms),
    };
    Ok(answer(state.rt.update(req).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AttachQuery {
    /// Default: the token's, else `default`.
    namespace: Option<String>,
    /// Wait up to this long for the answer (default 0).
    wait_ms: Option<u64>,
}

/// An update by its id, waiting up to `wait_ms` (default 0) for its answer.
#[utoipa::path(
    get,
    path = "/v1/workflow-ids/{workflow_id}/updates/{name}",
    operation_id = "getUpdate",
    tag = "signals and updates",
    params(
        ("workflow_id" = String, Path, description = "The workflow id"),
        ("name" = String, Path, description = "The update id"),
        AttachQuery,
    ),
    responses(
        (status = 200, description = "Answered", body = Object),
        (status = 202, description = "Not answered yet", body = Object),
    )
)]
pub async fn attach(
    State(state): State<AppState>,
    caller: Caller,
    Path((workflow_id, update_id)): Path<(String, String)>,
    QueryParams(query): QueryParams<AttachQuery>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let namespace = caller.acting_in(query.namespace.as_deref(), Role::Read)?;
    let key = UpdateKey {
        namespace,
        workflow_id,
        update_id,
    };
    let wait = Duration::from_millis(query.wait_ms.unwrap_or(0));
    Ok(answer(state.rt.await_update(&key, wait).await?))
}
