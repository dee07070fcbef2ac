//! The HTTP API: every route in one table, thin handlers, one error shape.

mod audit;
mod auth;
mod batch;
mod components;
mod error;
mod metrics;
mod namespaces;
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
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use error::{BodyLimit, Code};
use serde_json::{Value, json};
use std::sync::Arc;

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

pub fn router(state: AppState) -> Router {
    let uploads = Router::new()
        .route(
            "/v1/components/{name}",
            put(components::upload).get(components::get),
        )
        .route(
            "/v1/components/{name}/versions/{version}/wasm",
            get(components::wasm),
        )
        .route(
            "/v1/components/{name}/versions/{version}",
            delete(versions::delete),
        )
        .layer(Extension(BodyLimit(MAX_COMPONENT_BYTES)));
    Router::new()
        .route("/", get(ui))
        .route("/healthz", get(health))
        .route("/metrics", get(metrics::metrics))
        .route("/v1/components", get(components::list))
        .route(
            "/v1/namespaces",
            get(namespaces::list).post(namespaces::create),
        )
        .route(
            "/v1/namespaces/{name}",
            get(namespaces::get)
                .patch(namespaces::update)
                .delete(namespaces::delete),
        )
        .route(
            "/v1/namespaces/{name}/tokens",
            get(namespaces::tokens).post(namespaces::create_token),
        )
        .route(
            "/v1/namespaces/{name}/tokens/{id}",
            delete(namespaces::revoke),
        )
        .route("/v1/namespaces/{name}/audit", get(audit::list))
        .route("/v1/runs", get(runs::list).post(runs::start))
        .route("/v1/batches", post(batch::run))
        .route("/v1/batches/{id}", get(batch::job))
        .route(
            "/v1/schedules",
            get(schedules::list).post(schedules::create),
        )
        .route(
            "/v1/schedules/{id}",
            get(schedules::get).delete(schedules::delete),
        )
        .route("/v1/schedules/{id}/pause", post(schedules::pause))
        .route("/v1/schedules/{id}/unpause", post(schedules::unpause))
        .route("/v1/schedules/{id}/trigger", post(schedules::trigger))
        .route("/v1/schedules/{id}/backfill", post(schedules::backfill))
        .route("/v1/runs/{run_id}", get(runs::get))
        .route("/v1/runs/{run_id}/journal", get(runs::journal))
        .route("/v1/runs/{run_id}/cancel", post(runs::cancel))
        .route("/v1/runs/{run_id}/terminate", post(runs::terminate))
        .route("/v1/runs/{run_id}/pause", post(runs::pause))
        .route("/v1/runs/{run_id}/unpause", post(runs::unpause))
        .route("/v1/runs/{run_id}/upgrade", post(versions::upgrade_run))
        .route("/v1/runs/{run_id}/reset", post(runs::reset))
        .route("/v1/workflows/{name}", get(versions::list))
        .route("/v1/workflows/{name}/upgrade", post(versions::upgrade_all))
        .route(
            "/v1/workflows/{name}/versions/{version}",
            delete(versions::delete),
        )
        .route("/v1/runs/{run_id}/signals/{name}", post(signals::to_run))
        .route("/v1/workflow-ids/{workflow_id}", get(runs::by_workflow_id))
        .route(
            "/v1/workflow-ids/{workflow_id}/signals/{name}",
            post(signals::to_workflow),
        )
        .route(
            "/v1/workflow-ids/{workflow_id}/signal-with-start",
            post(signals::with_start),
        )
        .route(
            "/v1/workflow-ids/{workflow_id}/updates/{name}",
            post(updates::send).get(updates::attach),
        )
        .layer(Extension(BodyLimit(MAX_JSON_BYTES)))
        .merge(uploads)
        .route_layer(axum::middleware::from_fn(metrics::measured))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Limits are the `Body` extractor's (it answers 413 gracefully).
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
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

/// The web UI: one page over the JSON API (runs, a run's timeline, stuck
/// runs with their diagnostic).
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
