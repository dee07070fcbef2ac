//! Namespaces and their tokens over HTTP: the cluster admin creates and
//! deletes namespaces; a namespace's admin issues, lists and revokes its
//! tokens (a token's value is shown once, in the answer that issues it).

use super::AppState;
use super::auth::{Caller, new_token, token_hash, visible};
use super::error::{ApiError, Code, JsonBody};
use crate::clock::now_ms;
use crate::error::check_name;
use crate::store::{DEFAULT_NAMESPACE, DeleteNamespace, Limits, Role, TokenRecord};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NamespaceCreate)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: String,
    #[serde(default)]
    limits: Limits,
}

/// Create a namespace, with its limits (cluster admin).
#[utoipa::path(
    post,
    path = "/v1/namespaces",
    operation_id = "createNamespace",
    tag = "namespaces",
    request_body = CreateBody,
    responses((status = 201, description = "The namespace", body = Object))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_cluster_admin()?;
    check_name("namespace", &body.name)?;
    check_limits(&body.limits)?;
    let access = state.rt.store.access();
    if !access
        .create_namespace(&body.name, &body.limits, now_ms())
        .await?
    {
        return Err(ApiError::new(
            Code::Conflict,
            format!("namespace `{}` exists", body.name),
        ));
    }
    tracing::info!(namespace = body.name, by = caller.id(), "namespace created");
    let details = json!({ "limits": body.limits });
    super::audit::record(
        &state,
        &caller,
        &body.name,
        "create-namespace",
        &body.name,
        details,
    )
    .await;
    let ns = access.namespace(&body.name).await?;
    Ok((StatusCode::CREATED, Json(json!(ns))))
}

/// The namespaces the caller sees.
#[utoipa::path(
    get,
    path = "/v1/namespaces",
    operation_id = "listNamespaces",
    tag = "namespaces",
    responses((status = 200, description = "A list: `namespaces`", body = Object))
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let all = state.rt.store.access().namespaces().await?;
    let seen: Vec<_> = all.into_iter().filter(|n| caller.sees(&n.name)).collect();
    Ok(Json(json!({ "namespaces": seen })))
}

/// A namespace and its limits.
#[utoipa::path(
    get,
    path = "/v1/namespaces/{name}",
    operation_id = "getNamespace",
    tag = "namespaces",
    params(("name" = String, Path, description = "The namespace")),
    responses((status = 200, description = "The namespace", body = Object))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(visible(&state, &caller, &name).await?))
}

/// 400 for limits that cannot apply.
fn check_limits(limits: &Limits) -> Result<(), ApiError> {
    match limits.invalid() {
        Some(why) => Err(ApiError::new(Code::BadRequest, why)),
        None => Ok(()),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NamespaceLimits)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    limits: Limits,
}

/// Replace a namespace's limits (cluster admin: a namespace does not raise its
/// own).
#[utoipa::path(
    patch,
    path = "/v1/namespaces/{name}",
    operation_id = "setNamespaceLimits",
    tag = "namespaces",
    params(("name" = String, Path, description = "The namespace")),
    request_body = UpdateBody,
    responses((status = 200, description = "The namespace", body = Object))
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require_cluster_admin()?;
    check_limits(&body.limits)?;
    let access = state.rt.store.access();
    if !access.set_limits(&name, &body.limits).await? {
        return Err(ApiError::new(
            Code::NotFound,
            format!("no namespace `{name}`"),
        ));
    }
    state.rt.forget_limits(&name);
    tracing::info!(namespace = name, by = caller.id(), limits = ?body.limits, "limits changed");
    let details = json!({ "limits": body.limits });
    super::audit::record(&state, &caller, &name, "limits", &name, details).await;
    Ok(Json(json!(access.namespace(&name).await?)))
}

/// Delete a namespace (cluster admin).
///
/// Refused while it holds open runs; its tokens are revoked with it.
#[utoipa::path(
    delete,
    path = "/v1/namespaces/{name}",
    operation_id = "deleteNamespace",
    tag = "namespaces",
    params(("name" = String, Path, description = "The namespace")),
    responses((status = 200, description = "Deleted", body = Object))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_cluster_admin()?;
    if name == DEFAULT_NAMESPACE {
        return Err(ApiError::new(
            Code::Conflict,
            "the default namespace cannot be deleted",
        ));
    }
    match state
        .rt
        .store
        .access()
        .delete_namespace(&name, now_ms())
        .await?
    {
        DeleteNamespace::Deleted => {
            tracing::info!(namespace = name, by = caller.id(), "namespace deleted");
            Ok(Json(json!({ "name": name, "deleted": true })))
        }
        DeleteNamespace::NotFound => Err(ApiError::new(
            Code::NotFound,
            format!("no namespace `{name}`"),
        )),
        DeleteNamespace::InUse(n) => Err(ApiError::new(
            Code::Conflict,
            format!("namespace `{name}` holds {n} open run(s); end them first"),
        )),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    role: String,
    #[serde(default)]
    description: String,
    /// Instead of a secret: map the client certificate (mTLS) with this
    /// subject common name to the namespace and role. Cluster admin only:
    /// the client CA is the operator's, and a name maps to one namespace.
    #[serde(default)]
    client_cert: Option<String>,
}

/// Issue a token of a namespace with a role.
///
/// The answer holds the token's value, which is never shown again; with
/// `client_cert`, maps a client certificate instead.
#[utoipa::path(
    post,
    path = "/v1/namespaces/{name}/tokens",
    operation_id = "createToken",
    tag = "namespaces",
    params(("name" = String, Path, description = "The namespace")),
    request_body = TokenBody,
    responses((status = 201, description = "The token, with its value (shown once)", body = Object))
)]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<TokenBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    visible(&state, &caller, &name).await?;
    caller.require(Role::Admin, &name)?;
    let role: Role = body
        .role
        .parse()
        .map_err(|e: anyhow::Error| ApiError::new(Code::BadRequest, e.to_string()))?;
    if role == Role::ClusterAdmin {
        return Err(ApiError::new(
            Code::BadRequest,
            "the cluster admin's token is given to `weft serve`, not issued",
        ));
    }
    if body.description.len() > 256 {
        return Err(ApiError::new(
            Code::BadRequest,
            "a description is at most 256 characters",
        ));
    }
    let access = state.rt.store.access();
    if let Some(common_name) = &body.client_cert {
        caller.require_cluster_admin()?;
        if common_name.is_empty() || common_name.len() > 256 {
            return Err(ApiError::new(
                Code::BadRequest,
                "a client certificate's common name is 1 to 256 characters",
            ));
        }
        // Looked up without marking it used (the unique index is the
        // guarantee; this names the mapping that stands in the way).
        let live = access.tokens(None).await?.into_iter().find(|t| {
            t.revoked_at_ms.is_none() && t.client_cert.as_deref() == Some(common_name.as_str())
        });
        if let Some(t) = live {
            return Err(ApiError::new(
                Code::Conflict,
                format!(
                    "client certificate `{common_name}` is already mapped (credential {} of `{}`); \
                     revoke that first",
                    t.id,
                    t.namespace.unwrap_or_default()
                ),
            ));
        }
    }
    let record = TokenRecord {
        id: format!("tok_{}", &uuid::Uuid::now_v7().simple().to_string()[16..]),
        namespace: Some(name.clone()),
        role,
        description: body.description,
        client_cert: body.client_cert,
        created_at_ms: now_ms(),
        last_used_at_ms: None,
        revoked_at_ms: None,
    };
    // A client certificate's credential gets a hash no token value can have.
    let value = record.client_cert.is_none().then(new_token);
    let hash = match &value {
        Some(value) => token_hash(value),
        None => format!("client-cert:{}", record.id),
    };
    access.insert_token(&record, &hash).await?;
    tracing::info!(namespace = name, token = record.id, role = %role, by = caller.id(), "token issued");
    let details = json!({
        "role": role,
        "description": record.description,
        "client_cert": record.client_cert,
    });
    super::audit::record(&state, &caller, &name, "issue-token", &record.id, details).await;
    let mut answer = json!(record);
    if let Some(value) = value {
        answer["token"] = json!(value);
    }
    Ok((StatusCode::CREATED, Json(answer)))
}

/// A namespace's tokens: id, role, description, creation and last use (never a
/// value).
#[utoipa::path(
    get,
    path = "/v1/namespaces/{name}/tokens",
    operation_id = "listTokens",
    tag = "namespaces",
    params(("name" = String, Path, description = "The namespace")),
    responses((status = 200, description = "A list: `tokens`", body = Object))
)]
pub async fn tokens(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    visible(&state, &caller, &name).await?;
    caller.require(Role::Admin, &name)?;
    let tokens = state.rt.store.access().tokens(Some(&name)).await?;
    Ok(Json(json!({ "tokens": tokens })))
}

/// Revoke a token: refused at once, on every node.
#[utoipa::path(
    delete,
    path = "/v1/namespaces/{name}/tokens/{id}",
    operation_id = "revokeToken",
    tag = "namespaces",
    params(
        ("name" = String, Path, description = "The namespace"),
        ("id" = String, Path, description = "The token id"),
    ),
    responses((status = 200, description = "Revoked", body = Object))
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    visible(&state, &caller, &name).await?;
    caller.require(Role::Admin, &name)?;
    let access = state.rt.store.access();
    let ours = access
        .tokens(Some(&name))
        .await?
        .into_iter()
        .any(|t| t.id == id && t.revoked_at_ms.is_none());
    if !ours || !access.revoke_token(&id, now_ms()).await? {
        return Err(ApiError::new(
            Code::NotFound,
            format!("no live token `{id}` in namespace `{name}`"),
        ));
    }
    tracing::info!(
        namespace = name,
        token = id,
        by = caller.id(),
        "token revoked"
    );
    super::audit::record(&state, &caller, &name, "revoke-token", &id, Value::Null).await;
    Ok(Json(json!({ "id": id, "revoked": true })))
}
