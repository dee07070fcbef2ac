//! `GET /metrics`: the server's metrics (`crate::metrics`) in Prometheus'
//! text format, with the gauges read at scrape time set first.

use super::AppState;
use super::error::ApiError;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;

/// Count every routed request by its route (the pattern, not the path:
/// run ids stay out of the labels), method and status, and time it.
pub async fn measured(route: MatchedPath, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let m = crate::metrics::metrics();
    let (route, method) = (route.as_str(), method.as_str());
    m.http_requests
        .with_label_values(&[route, method, response.status().as_str()])
        .inc();
    crate::metrics::observe(&m.http_seconds, &[route, method], started.elapsed());
    response
}

/// Prometheus metrics (text exposition format), labelled by namespace where
/// they concern one.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "server",
    responses((status = 200, description = "The metrics", content_type = "text/plain", body = String))
)]
pub async fn metrics(
    State(state): State<AppState>,
    caller: super::auth::Caller,
) -> Result<impl IntoResponse, ApiError> {
    // Figures of every namespace.
    caller.require_cluster_admin()?;
    let m = crate::metrics::metrics();
    let counts = state.rt.store.status_counts().await?;
    m.runs.reset();
    for (namespace, status, n) in counts {
        m.runs
            .with_label_values(&[namespace.as_str(), status.as_str()])
            .set(n as i64);
    }
    m.resident_runs.set(state.rt.resident_count() as i64);
    m.shards_held.set(state.rt.shards_held() as i64);
    m.node.reset();
    if let Some(node) = state.rt.cluster_status()["node"].as_str() {
        m.node.with_label_values(&[node]).set(1);
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m.render(),
    ))
}
