use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, Body, QueryParams};
use super::openapi::NamespaceQuery;
use crate::error::Error;
use crate::store::{ComponentVersion, Role};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// Comma-separated hosts the activity may reach over HTTP.
    allow_http: Option<String>,
    /// Replay the journals of the workflow's open runs on the new version
    /// and report, per run, whether they are compatible.
    #[serde(default)]
    check: bool,
    /// Only check: compile and report, deploy nothing.
    #[serde(default)]
    dry_run: bool,
    /// With `check`: `compatible` upgrades the runs that are.
    upgrade: Option<String>,
    /// The namespace (default: the token's, else `default`).
    namespace: Option<String>,
}

/// Deploy a component: the raw `.wasm` as the body.
///
/// A workflow or an activity, by the world it exports; a new version unless
/// the bytes are those of the latest. With `check`, the open runs are
/// replayed on it and the report says which are compatible.
#[utoipa::path(
    put,
    path = "/v1/components/{name}",
    operation_id = "deployComponent",
    tag = "components",
    params(
        ("name" = String, Path, description = "The component"),
        UploadQuery,
    ),
    request_body(content = Vec<u8>, content_type = "application/wasm"),
    responses(
        (status = 201, description = "A new version, with the compatibility report if asked", body = Object),
        (status = 200, description = "The same bytes as the latest version, or a dry run", body = Object),
    )
)]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<UploadQuery>,
    Body(bytes): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let namespace = caller.acting_in(query.namespace.as_deref(), Role::Deploy)?;
    let upgrade = match query.upgrade.as_deref() {
        None | Some("none") => false,
        Some("compatible") => true,
        Some(other) => {
            return Err(Error::BadRequest(format!(
                "upgrade={other}: the policies are `none` and `compatible`"
            ))
            .into());
        }
    };
    if query.dry_run {
        let (digest, check) = state.rt.dry_run(&namespace, &name, bytes.to_vec()).await?;
        let body = json!({ "name": name, "digest": digest, "dry_run": true, "check": check });
        return Ok((StatusCode::OK, Json(body)));
    }
    let allow = query.allow_http.map(|list| {
        list.split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .collect()
    });
    let (version, created) = state
        .rt
        .deploy(&namespace, &name, bytes.to_vec(), allow)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let target = format!("{name} v{}", version.version);
    let details = json!({ "digest": version.digest, "kind": version.kind, "new": created });
    super::audit::record(&state, &caller, &namespace, "deploy", &target, details).await;
    let mut body = serde_json::to_value(&version).expect("versions serialize");
    if query.check || upgrade {
        let loaded = state.rt.workflow_component(&version.digest).await?;
        let mut check = state
            .rt
            .check_open_runs(&namespace, &name, &loaded, version.version, None)
            .await?;
        if upgrade {
            for report in check.iter_mut().filter(|r| r.verdict.is_compatible()) {
                let target = crate::runtime::Target::Version(version.version);
                let route = crate::runtime::Route::ToDriver;
                *report = state
                    .rt
                    .upgrade_run(&report.run_id, target, false, route)
                    .await?;
            }
        }
        body["check"] = json!(check);
    }
    Ok((status, Json(body)))
}

fn grouped(versions: Vec<ComponentVersion>) -> Vec<Value> {
    let mut by_name: BTreeMap<(String, String), Vec<ComponentVersion>> = BTreeMap::new();
    for v in versions {
        let key = (v.namespace.clone(), v.name.clone());
        by_name.entry(key).or_default().push(v);
    }
    by_name
        .into_iter()
        .map(|((namespace, name), versions)| {
            let latest = versions.last().expect("at least one version");
            json!({
                "namespace": namespace,
                "name": name,
                "kind": latest.kind,
                "latest": latest.version,
                "versions": versions,
            })
        })
        .collect()
}

/// A component version's stored bytes.
#[utoipa::path(
    get,
    path = "/v1/components/{name}/versions/{version}/wasm",
    operation_id = "getComponentWasm",
    tag = "components",
    params(
        ("name" = String, Path, description = "The component"),
        ("version" = u32, Path, description = "The version"),
        NamespaceQuery,
    ),
    responses((status = 200, description = "The `.wasm`", content_type = "application/wasm", body = Vec<u8>))
)]
pub async fn wasm(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, version)): Path<(String, u32)>,
    QueryParams(query): QueryParams<NamespaceQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let namespace = &caller.acting_in(query.namespace.as_deref(), Role::Read)?;
    let versions = state
        .rt
        .store
        .component_versions(Some(namespace), Some(&name))
        .await?;
    let Some(v) = versions.into_iter().find(|v| v.version == version) else {
        return Err(Error::NotFound(format!("no version {version} of `{name}`")).into());
    };
    let bytes = state
        .rt
        .store
        .component_bytes(&v.digest)
        .await?
        .ok_or_else(|| Error::NotFound(format!("component {} is not stored", v.digest)))?;
    Ok(([(header::CONTENT_TYPE, "application/wasm")], bytes))
}

/// A namespace's components (every namespace's for a caller who sees all and
/// names none).
#[utoipa::path(
    get,
    path = "/v1/components",
    operation_id = "listComponents",
    tag = "components",
    params(NamespaceQuery),
    responses((status = 200, description = "A list: `components`", body = Object))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<NamespaceQuery>,
) -> Result<Json<Value>, ApiError> {
    let namespace = caller.listing(query.namespace.as_deref())?;
    let versions = state
        .rt
        .store
        .component_versions(namespace.as_deref(), None)
        .await?;
    Ok(Json(json!({ "components": grouped(versions) })))
}

/// A component and its versions.
#[utoipa::path(
    get,
    path = "/v1/components/{name}",
    operation_id = "getComponent",
    tag = "components",
    params(
        ("name" = String, Path, description = "The component"),
        NamespaceQuery,
    ),
    responses((status = 200, description = "The component", body = Object))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<NamespaceQuery>,
) -> Result<Json<Value>, ApiError> {
    let namespace = &caller.acting_in(query.namespace.as_deref(), Role::Read)?;
    let versions = state
        .rt
        .store
        .component_versions(Some(namespace), Some(&name))
        .await?;
    match grouped(versions).pop() {
        Some(component) => Ok(Json(component)),
        None => Err(Error::NotFound(format!("no component named `{name}`")).into()),
    }
}
