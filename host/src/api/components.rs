use super::AppState;
use super::error::{ApiError, Body, QueryParams};
use crate::error::Error;
use crate::store::ComponentVersion;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// Comma-separated hosts the activity may reach over HTTP.
    allow_http: Option<String>,
}

/// `PUT /v1/components/{name}[?allow_http=host,host:port]`: the raw `.wasm`
/// as body.
pub async fn upload(
    State(state): State<AppState>,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<UploadQuery>,
    Body(bytes): Body,
) -> Result<(StatusCode, Json<ComponentVersion>), ApiError> {
    let allow = query.allow_http.map(|list| {
        list.split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .collect()
    });
    let (version, created) = state.rt.deploy(&name, bytes.to_vec(), allow).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(version)))
}

fn grouped(versions: Vec<ComponentVersion>) -> Vec<Value> {
    let mut by_name: BTreeMap<String, Vec<ComponentVersion>> = BTreeMap::new();
    for v in versions {
        by_name.entry(v.name.clone()).or_default().push(v);
    }
    by_name
        .into_iter()
        .map(|(name, versions)| {
            let latest = versions.last().expect("at least one version");
            json!({
                "name": name,
                "kind": latest.kind,
                "latest": latest.version,
                "versions": versions,
            })
        })
        .collect()
}

/// `GET /v1/components/{name}/versions/{version}/wasm`: the stored bytes.
pub async fn wasm(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, u32)>,
) -> Result<impl IntoResponse, ApiError> {
    let versions = state.rt.store.component_versions(Some(&name)).await?;
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

pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let versions = state.rt.store.component_versions(None).await?;
    Ok(Json(json!({ "components": grouped(versions) })))
}

pub async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let versions = state.rt.store.component_versions(Some(&name)).await?;
    match grouped(versions).pop() {
        Some(component) => Ok(Json(component)),
        None => Err(Error::NotFound(format!("no component named `{name}`")).into()),
    }
}
