//! The HTTP API: every route in one table, thin handlers, one error shape.

mod audit;
mod auth;
mod batch;
mod components;
mod error;
mod metrics;
mod namespaces;
mod openapi;
mod runs;
mod schedules;
mod signals;
mod updates;
mod versions;

pub use auth::token_hash;
pub use error::ApiError;

use crate::runtime::{FORWARDED, Route, Runtime};
use crate::store::Durability;
use axum::Extension;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use error::{BodyLimit, Code};
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest component upload.
pub const MAX_COMPONENT_BYTES: usize = 64 << 20;
/// Largest JSON body of any other request (run input, for one).
pub const MAX_JSON_BYTES: usize = 1 << 20;

#[derive(Clone)]
pub struct AppState {
    pub rt: Arc<Runtime>,
    pub durability: Durability,
    /// Which backend: `sqlite` or `postgres`.
    pub store: &'static str,
    /// Requests need a token (the cluster admin's was given to `weft serve`).
    pub auth: bool,
}

/// Every route with its description: each is registered through `routes!`
/// from its handler's `#[utoipa::path]`, which the OpenAPI document at
/// `/v1/openapi.json` is generated from (a route added with `.route` would
/// be missing from it: the `openapi` test refuses that).
pub fn router(state: AppState) -> Router {
    let uploads = OpenApiRouter::new()
        .routes(routes!(components::upload, components::get))
        .routes(routes!(components::wasm))
        .routes(routes!(versions::delete_component_version))
        .layer(Extension(BodyLimit(MAX_COMPONENT_BYTES)));
    let (api, mut document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(ui))
        .routes(routes!(health))
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi_json))
        .routes(routes!(components::list))
        .routes(routes!(namespaces::list, namespaces::create))
        .routes(routes!(
            namespaces::get,
            namespaces::update,
            namespaces::delete
        ))
        .routes(routes!(namespaces::tokens, namespaces::create_token))
        .routes(routes!(namespaces::revoke))
        .routes(routes!(audit::list))
        .routes(routes!(runs::list, runs::start))
        .routes(routes!(batch::run))
        .routes(routes!(batch::job))
        .routes(routes!(schedules::list, schedules::create))
        .routes(routes!(schedules::get, schedules::delete))
        .routes(routes!(schedules::pause))
        .routes(routes!(schedules::unpause))
        .routes(routes!(schedules::trigger))
        .routes(routes!(schedules::backfill))
        .routes(routes!(runs::get))
        .routes(routes!(runs::journal))
        .routes(routes!(runs::cancel))
        .routes(routes!(runs::terminate))
        .routes(routes!(runs::pause))
        .routes(routes!(runs::unpause))
        .routes(routes!(versions::upgrade_run))
        .routes(routes!(runs::reset))
        .routes(routes!(versions::list))
        .routes(routes!(versions::upgrade_all))
        .routes(routes!(versions::delete))
        .routes(routes!(versions::check))
        .routes(routes!(signals::to_run))
        .routes(routes!(runs::by_workflow_id))
        .routes(routes!(signals::to_workflow))
        .routes(routes!(signals::with_start))
        .routes(routes!(updates::send, updates::attach))
        .layer(Extension(BodyLimit(MAX_JSON_BYTES)))
        .merge(uploads)
        .split_for_parts();
    openapi::complete(&mut document);
    let document = OpenApiJson(
        serde_json::to_string(&document)
            .expect("the document serializes")
            .into(),
    );
    api.layer(Extension(document))
        .route_layer(axum::middleware::from_fn(metrics::measured))
        .layer(axum::middleware::from_fn(traced))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Limits are the `Body` extractor's (it answers 413 gracefully).
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Each request in a span of its own (traced only when an exporter is
/// configured), continuing the caller's trace: a run it starts continues
/// it in turn.
async fn traced(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use tracing::Instrument as _;
    let span =
        tracing::debug_span!("request", method = %request.method(), path = %request.uri().path());
    let parent = request.headers().get(crate::telemetry::TRACEPARENT);
    if let Some(parent) = parent.and_then(|v| v.to_str().ok()) {
        crate::telemetry::continue_trace(&span, parent);
    }
    next.run(request).instrument(span).await
}

/// A per-run request another node forwarded is served here; any other
/// goes to the node driving the run.
fn route(headers: &HeaderMap) -> Route {
    if headers.contains_key(FORWARDED) {
        Route::HereOnly
    } else {
        Route::ToDriver
    }
}

/// The server is up: its version, backend, durability, whether it needs
/// tokens, its resident runs and its cluster (no token needed).
#[utoipa::path(get, operation_id = "health", path = "/healthz", tag = "server", security(()),
    responses((status = 200, description = "The server's state", body = Object)))]
async fn health(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "store": state.store,
        "durability": state.durability,
        "auth": state.auth,
        "resident_runs": state.rt.resident_count(),
        "cluster": state.rt.cluster_status(),
    }))
}

/// This document: the API described by OpenAPI 3.1, generated from the
/// routes and their types (no token needed).
#[utoipa::path(get, operation_id = "openapi", path = "/v1/openapi.json", tag = "server", security(()),
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
async fn openapi_json(Extension(document): Extension<OpenApiJson>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], document.0.to_string())
}

/// The OpenAPI document, serialized once.
#[derive(Clone)]
struct OpenApiJson(Arc<str>);

/// The web UI: one page over this API (runs, a run's timeline, stuck
/// runs with their diagnostic); it asks for a token when one is needed.
#[utoipa::path(
    get,
    path = "/",
    operation_id = "ui",
    tag = "server",
    security(()),
    responses((status = 200, description = "The page", content_type = "text/html", body = String))
)]
async fn ui() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("ui.html"))
}

async fn not_found() -> ApiError {
    ApiError::new(Code::NotFound, "no such route (the API is under /v1)")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        Code::MethodNotAllowed,
        "this route does not take that method",
    )
}
