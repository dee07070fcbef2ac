//! Hot versioning over HTTP: a workflow's versions with their open runs,
//! deleting drained versions, upgrading runs by replay.

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, Code, JsonBody, QueryParams};
use super::openapi::NamespaceQuery;
use crate::error::Error;
use crate::runtime::{Report, Target};
use crate::store::Role;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

/// `"latest"` (the default) or a version number.
fn target(to: &Option<Value>) -> Result<Target, ApiError> {
    match to {
        None => Ok(Target::Latest),
        Some(Value::String(s)) if s == "latest" => Ok(Target::Latest),
        Some(v) => v
            .as_u64()
            .map(|n| Target::Version(n as u32))
            .ok_or_else(|| {
                Error::BadRequest(format!("a version is a number or `latest`, not {v}")).into()
            }),
    }
}

/// A workflow's versions, each with its count of open runs.
#[utoipa::path(
    get,
    path = "/v1/workflows/{name}",
    operation_id = "listWorkflowVersions",
    tag = "components",
    params(
        ("name" = String, Path, description = "The workflow"),
        NamespaceQuery,
    ),
    responses((status = 200, description = "The versions", body = Object))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<NamespaceQuery>,
) -> Result<Json<Value>, ApiError> {
    let namespace = caller.namespace_or(query.namespace.as_deref());
    caller.require(Role::Read, namespace)?;
    let (versions, counts) = state.rt.versions(namespace, &name).await?;
    let latest = versions.last().map(|v| (v.version, v.kind));
    let versions: Vec<Value> = versions
        .iter()
        .zip(counts)
        .map(|(v, open)| {
            let mut v = serde_json::to_value(v).expect("versions serialize");
            v["open_runs"] = json!(open);
            v
        })
        .collect();
    Ok(Json(json!({
        "name": name,
        "kind": latest.map(|l| l.1),
        "latest": latest.map(|l| l.0),
        "versions": versions,
    })))
}

/// `?namespace=&run_id=`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CheckQuery {
    /// Default: the token's, else `default`.
    namespace: Option<String>,
    /// Check only this open run.
    run_id: Option<String>,
}

/// Check a version against the open runs of its workflow: replay each
/// open run on another version on it, deploying and upgrading nothing.
///
/// The same report as a deploy with `check=true`, as of now: which runs
/// could be upgraded to this version, and where the others diverge.
#[utoipa::path(
    get,
    path = "/v1/workflows/{name}/versions/{version}/check",
    operation_id = "checkWorkflowVersion",
    tag = "components",
    params(
        ("name" = String, Path, description = "The workflow"),
        ("version" = u32, Path, description = "The version"),
        CheckQuery,
    ),
    responses((status = 200, description = "`check`: a report per open run", body = Object))
)]
pub async fn check(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, version)): Path<(String, u32)>,
    QueryParams(query): QueryParams<CheckQuery>,
) -> Result<Json<Value>, ApiError> {
    let namespace = caller.namespace_or(query.namespace.as_deref());
    caller.require(Role::Read, namespace)?;
    let check = state
        .rt
        .check_version(namespace, &name, version, query.run_id.as_deref())
        .await?;
    Ok(Json(
        json!({ "name": name, "version": version, "check": check }),
    ))
}

/// Delete a workflow's version: refused while open runs are pinned to it.
#[utoipa::path(
    delete,
    path = "/v1/workflows/{name}/versions/{version}",
    operation_id = "deleteWorkflowVersion",
    tag = "components",
    params(
        ("name" = String, Path, description = "The workflow"),
        ("version" = u32, Path, description = "The version"),
        NamespaceQuery,
    ),
    responses((status = 200, description = "Deleted", body = Object))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, version)): Path<(String, u32)>,
    QueryParams(query): QueryParams<NamespaceQuery>,
) -> Result<Json<Value>, ApiError> {
    let namespace = caller.namespace_or(query.namespace.as_deref());
    caller.require(Role::Deploy, namespace)?;
    state.rt.delete_version(namespace, &name, version).await?;
    let target = format!("{name} v{version}");
    super::audit::record(
        &state,
        &caller,
        namespace,
        "delete-version",
        &target,
        Value::Null,
    )
    .await;
    Ok(Json(
        json!({ "name": name, "version": version, "deleted": true }),
    ))
}

/// Delete a component's version (a workflow's or an activity's): refused
/// while open runs are pinned to it.
#[utoipa::path(
    delete,
    path = "/v1/components/{name}/versions/{version}",
    operation_id = "deleteComponentVersion",
    tag = "components",
    params(
        ("name" = String, Path, description = "The component"),
        ("version" = u32, Path, description = "The version"),
        NamespaceQuery,
    ),
    responses((status = 200, description = "Deleted", body = Object))
)]
pub async fn delete_component_version(
    state: State<AppState>,
    caller: Caller,
    path: Path<(String, u32)>,
    query: QueryParams<NamespaceQuery>,
) -> Result<Json<Value>, ApiError> {
    delete(state, caller, path, query).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpgradeBody {
    /// `"latest"` (default) or a version number.
    #[serde(alias = "to")]
    version: Option<Value>,
    /// Switch even if the journal does not replay on the target.
    #[serde(default)]
    force: bool,
}

/// The refusal of an upgrade whose replay diverged: 409 with the report.
fn refused(report: &Report) -> ApiError {
    let message = match &report.verdict {
        crate::engine::check::Verdict::Diverged { divergence } => divergence.to_string(),
        crate::engine::check::Verdict::Failed { message } => message.clone(),
        _ => "incompatible".into(),
    };
    ApiError::new(
        Code::Divergence,
        format!(
            "run {} cannot move to v{}: {message}",
            report.run_id, report.to_version
        ),
    )
    .with_details(serde_json::to_value(report).expect("reports serialize"))
}

/// Move a run to another version of its workflow, if its journal replays there.
///
/// Refused (409, `divergence`, with the report) when it does not, unless
/// `force`; a forced answer says so.
#[utoipa::path(
    post,
    path = "/v1/runs/{run_id}/upgrade",
    operation_id = "upgradeRun",
    tag = "runs",
    params(("run_id" = String, Path, description = "The run's id")),
    request_body = UpgradeBody,
    responses((status = 200, description = "The upgrade report", body = Object))
)]
pub async fn upgrade_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(run_id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<UpgradeBody>,
) -> Result<Json<Report>, ApiError> {
    let run = super::runs::load(&state, &caller, &run_id, Role::Deploy).await?;
    let to = target(&body.version)?;
    let route = super::route(&headers);
    let report = state.rt.upgrade_run(&run_id, to, body.force, route).await?;
    if route == crate::runtime::Route::ToDriver {
        let details = json!({ "to_version": report.to_version, "upgraded": report.upgraded, "forced": report.forced });
        super::audit::record(&state, &caller, &run.namespace, "upgrade", &run_id, details).await;
    }
    if !report.upgraded && !report.verdict.is_compatible() {
        return Err(refused(&report));
    }
    Ok(Json(report))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpgradeAllBody {
    #[serde(alias = "version")]
    to: Option<Value>,
    /// Only runs on this version.
    from: Option<u32>,
    #[serde(default)]
    force: bool,
}

/// Upgrade every open run of a workflow, reported per run.
#[utoipa::path(
    post,
    path = "/v1/workflows/{name}/upgrade",
    operation_id = "upgradeWorkflow",
    tag = "components",
    params(
        ("name" = String, Path, description = "The workflow"),
        NamespaceQuery,
    ),
    request_body = UpgradeAllBody,
    responses((status = 200, description = "A report per run", body = Object))
)]
pub async fn upgrade_all(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<NamespaceQuery>,
    JsonBody(body): JsonBody<UpgradeAllBody>,
) -> Result<Json<Value>, ApiError> {
    let namespace = caller.namespace_or(query.namespace.as_deref()).to_string();
    caller.require(Role::Deploy, &namespace)?;
    let to = target(&body.to)?;
    let reports = state
        .rt
        .upgrade_all(&namespace, &name, to, body.from, body.force)
        .await?;
    let upgraded = reports.iter().filter(|r| r.upgraded).count();
    let details = json!({ "runs": reports.len(), "upgraded": upgraded, "forced": body.force });
    super::audit::record(&state, &caller, &namespace, "upgrade-all", &name, details).await;
    Ok(Json(json!({ "runs": reports })))
}
