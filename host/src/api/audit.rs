//! The audit trail: who (a token id) deployed, upgraded, cancelled,
//! terminated, or changed a namespace's limits or tokens; readable by the
//! namespace's admin.

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, QueryParams};
use crate::clock::now_ms;
use crate::store::{AuditEntry, Role};
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

/// Record what `caller` did. The action has happened: a failure to record
/// it is logged, not answered.
pub async fn record(
    state: &AppState,
    caller: &Caller,
    namespace: &str,
    action: &str,
    target: &str,
    details: Value,
) {
    let entry = AuditEntry {
        namespace: namespace.to_string(),
        at_ms: now_ms(),
        actor: caller.id().to_string(),
        action: action.to_string(),
        target: target.to_string(),
        details,
    };
    if let Err(e) = state.rt.store.access().record_audit(&entry).await {
        tracing::error!(
            namespace,
            action,
            target,
            "cannot record the audit entry: {e:#}"
        );
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// The most entries to answer.
    limit: Option<u32>,
}

/// A namespace's audit trail, newest first: who (token id) deployed, upgraded,
/// cancelled or changed limits.
#[utoipa::path(
    get,
    path = "/v1/namespaces/{name}/audit",
    operation_id = "listAudit",
    tag = "namespaces",
    params(
        ("name" = String, Path, description = "The namespace"),
        AuditQuery,
    ),
    responses((status = 200, description = "A list: `entries`", body = Object))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    super::auth::visible(&state, &caller, &name).await?;
    caller.require(Role::Admin, &name)?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let entries = state.rt.store.access().audit(&name, limit).await?;
    Ok(Json(json!({ "entries": entries })))
}
