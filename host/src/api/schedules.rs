//! Schedules over HTTP: create, list, show (recent and next actions),
//! pause, unpause, trigger, delete. Reading needs `read`; the rest
//! `operate` (a schedule starts runs), in the schedule's namespace.

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, JsonBody, QueryParams};
use super::openapi::NamespaceQuery;
use crate::runtime::{NewSchedule, next_times, parse_time};
use crate::store::{Overlap, Role, Schedule};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

/// Due times shown ahead.
const NEXT_SHOWN: usize = 5;

fn view(schedule: &Schedule) -> Value {
    let mut v = json!(schedule);
    v["next_due_ms"] = json!(next_times(schedule, NEXT_SHOWN));
    v
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ScheduleCreate)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    id: String,
    workflow: String,
    #[serde(default)]
    input: Value,
    /// An interval: `30s`, `5m`, `2h`, `1d` (due at its multiples)...
    every: Option<String>,
    /// ...or a cron expression (`0 9 * * mon-fri`), in `time_zone`.
    cron: Option<String>,
    time_zone: Option<String>,
    #[serde(default)]
    overlap: Overlap,
    /// Due times missed by more than this (the server was down) are not
    /// acted on late; default 1 minute.
    catchup_window: Option<String>,
    /// Delay each start by up to this much (`30s`).
    jitter: Option<String>,
    #[serde(default)]
    paused: bool,
    #[serde(default)]
    note: String,
    namespace: Option<String>,
}

/// Create a schedule: start a workflow every interval or on a cron expression.
#[utoipa::path(
    post,
    path = "/v1/schedules",
    operation_id = "createSchedule",
    tag = "schedules",
    request_body = CreateBody,
    responses((status = 201, description = "The schedule", body = Object))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let namespace = caller.namespace_or(body.namespace.as_deref()).to_string();
    super::auth::visible(&state, &caller, &namespace).await?;
    caller.require(Role::Operate, &namespace)?;
    let schedule = state
        .rt
        .create_schedule(NewSchedule {
            namespace: namespace.clone(),
            id: body.id,
            workflow: body.workflow,
            input: body.input,
            every: body.every,
            cron: body.cron,
            time_zone: body.time_zone,
            overlap: body.overlap,
            catchup_window: body.catchup_window,
            jitter: body.jitter,
            paused: body.paused,
            note: body.note,
        })
        .await?;
    let details = json!({ "workflow": schedule.workflow, "spec": schedule.spec });
    super::audit::record(
        &state,
        &caller,
        &namespace,
        "schedule-create",
        &schedule.id,
        details,
    )
    .await;
    Ok((StatusCode::CREATED, Json(view(&schedule))))
}

/// A namespace's schedules.
#[utoipa::path(
    get,
    path = "/v1/schedules",
    operation_id = "listSchedules",
    tag = "schedules",
    params(NamespaceQuery),
    responses((status = 200, description = "A list: `schedules`", body = Object))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<NamespaceQuery>,
) -> Result<Json<Value>, ApiError> {
    let namespace = caller.listing(query.namespace.as_deref())?;
    let schedules = state
        .rt
        .store
        .schedules()
        .schedules(namespace.as_deref())
        .await?;
    let views: Vec<Value> = schedules.iter().map(view).collect();
    Ok(Json(json!({ "schedules": views })))
}

/// A schedule, with its next due time and its recent runs.
#[utoipa::path(
    get,
    path = "/v1/schedules/{id}",
    operation_id = "getSchedule",
    tag = "schedules",
    params(
        ("id" = String, Path, description = "The schedule's id"),
        NamespaceQuery,
    ),
    responses((status = 200, description = "The schedule", body = Object))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<NamespaceQuery>,
) -> Result<Json<Value>, ApiError> {
    let namespace = caller.acting_in(query.namespace.as_deref(), Role::Read)?;
    Ok(Json(view(&state.rt.schedule(&namespace, &id).await?)))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    #[serde(default)]
    note: String,
}

/// Pause a schedule: no due time is acted on (nor caught up later) until it is
/// unpaused.
#[utoipa::path(
    post,
    path = "/v1/schedules/{id}/pause",
    operation_id = "pauseSchedule",
    tag = "schedules",
    params(
        ("id" = String, Path, description = "The schedule's id"),
        NamespaceQuery,
    ),
    request_body(content = Option<NoteBody>),
    responses((status = 200, description = "The schedule", body = Object))
)]
pub async fn pause(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<NamespaceQuery>,
    JsonBody(body): JsonBody<NoteBody>,
) -> Result<Json<Value>, ApiError> {
    set_paused(&state, &caller, &id, &query, body.note, true).await
}

/// Unpause a schedule.
#[utoipa::path(
    post,
    path = "/v1/schedules/{id}/unpause",
    operation_id = "unpauseSchedule",
    tag = "schedules",
    params(
        ("id" = String, Path, description = "The schedule's id"),
        NamespaceQuery,
    ),
    request_body(content = Option<NoteBody>),
    responses((status = 200, description = "The schedule", body = Object))
)]
pub async fn unpause(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<NamespaceQuery>,
    JsonBody(body): JsonBody<NoteBody>,
) -> Result<Json<Value>, ApiError> {
    set_paused(&state, &caller, &id, &query, body.note, false).await
}

async fn set_paused(
    state: &AppState,
    caller: &Caller,
    id: &str,
    query: &NamespaceQuery,
    note: String,
    paused: bool,
) -> Result<Json<Value>, ApiError> {
    let namespace = caller.acting_in(query.namespace.as_deref(), Role::Operate)?;
    let schedule = state
        .rt
        .pause_schedule(&namespace, id, paused, &note)
        .await?;
    let what = if paused {
        "schedule-pause"
    } else {
        "schedule-unpause"
    };
    super::audit::record(state, caller, &namespace, what, id, json!({ "note": note })).await;
    Ok(Json(view(&schedule)))
}

/// Start a schedule's workflow now.
#[utoipa::path(
    post,
    path = "/v1/schedules/{id}/trigger",
    operation_id = "triggerSchedule",
    tag = "schedules",
    params(
        ("id" = String, Path, description = "The schedule's id"),
        NamespaceQuery,
    ),
    responses((status = 200, description = "The run started", body = Object))
)]
pub async fn trigger(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<NamespaceQuery>,
) -> Result<Json<Value>, ApiError> {
    let namespace = caller.acting_in(query.namespace.as_deref(), Role::Operate)?;
    let (schedule, run_id) = state.rt.trigger_schedule(&namespace, &id).await?;
    super::audit::record(
        &state,
        &caller,
        &namespace,
        "schedule-trigger",
        &id,
        json!({ "run_id": run_id }),
    )
    .await;
    Ok(Json(
        json!({ "run_id": run_id, "schedule": view(&schedule) }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackfillBody {
    /// Milliseconds since the epoch or RFC 3339 (`2026-12-01T00:00:00Z`).
    from: Value,
    to: Value,
}

/// Start the runs of the due times in a range that had none.
#[utoipa::path(
    post,
    path = "/v1/schedules/{id}/backfill",
    operation_id = "backfillSchedule",
    tag = "schedules",
    params(
        ("id" = String, Path, description = "The schedule's id"),
        NamespaceQuery,
    ),
    request_body = BackfillBody,
    responses((status = 200, description = "The runs started", body = Object))
)]
pub async fn backfill(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<NamespaceQuery>,
    JsonBody(body): JsonBody<BackfillBody>,
) -> Result<Json<Value>, ApiError> {
    let namespace = caller.acting_in(query.namespace.as_deref(), Role::Operate)?;
    let time = |name: &str, value: &Value| {
        parse_time(value).ok_or_else(|| {
            crate::error::Error::BadRequest(format!(
                "invalid `{name}` {value}: use milliseconds since the epoch or RFC 3339 such as 2026-12-01T00:00:00Z"
            ))
        })
    };
    let (from, to) = (time("from", &body.from)?, time("to", &body.to)?);
    let (schedule, started) = state
        .rt
        .backfill_schedule(&namespace, &id, from, to)
        .await?;
    let details = json!({ "from": from, "to": to, "started": started.len() });
    super::audit::record(
        &state,
        &caller,
        &namespace,
        "schedule-backfill",
        &id,
        details,
    )
    .await;
    Ok(Json(
        json!({ "started": started, "schedule": view(&schedule) }),
    ))
}

/// Delete a schedule: no more runs; those started stay.
#[utoipa::path(
    delete,
    path = "/v1/schedules/{id}",
    operation_id = "deleteSchedule",
    tag = "schedules",
    params(
        ("id" = String, Path, description = "The schedule's id"),
        NamespaceQuery,
    ),
    responses((status = 200, description = "Deleted", body = Object))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<NamespaceQuery>,
) -> Result<Json<Value>, ApiError> {
    let namespace = caller.acting_in(query.namespace.as_deref(), Role::Operate)?;
    state.rt.delete_schedule(&namespace, &id).await?;
    super::audit::record(
        &state,
        &caller,
        &namespace,
        "schedule-delete",
        &id,
        json!(null),
    )
    .await;
    Ok(Json(json!({ "deleted": id, "namespace": namespace })))
}
