//! `GET /metrics`: Prometheus text format.

use super::AppState;
use super::error::ApiError;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

pub async fn metrics(
    State(state): State<AppState>,
    caller: super::auth::Caller,
) -> Result<impl IntoResponse, ApiError> {
    // Figures of every namespace.
    caller.require_cluster_admin()?;
    let mut out = String::new();
    let counts = state.rt.store.status_counts().await?;
    out.push_str("# HELP weft_runs Runs by namespace and status.\n# TYPE weft_runs gauge\n");
    for (namespace, status, n) in counts {
        let _ = writeln!(
            out,
            "weft_runs{{namespace=\"{namespace}\",status=\"{status}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP weft_resident_runs Runs executing (in memory) now.\n\
         # TYPE weft_resident_runs gauge\nweft_resident_runs {}",
        state.rt.resident_count()
    );
    if let Some(node) = state.rt.cluster_status()["node"].as_str() {
        let _ = writeln!(
            out,
            "# HELP weft_node This node's id among the nodes sharing the database.\n\
             # TYPE weft_node gauge\nweft_node{{node=\"{node}\"}} 1"
        );
    }
    let _ = writeln!(
        out,
        "# HELP weft_shards_held Shards this node drives (0 alone: it drives every run).\n\
         # TYPE weft_shards_held gauge\nweft_shards_held {}",
        state.rt.shards_held()
    );
    let stats = state.rt.writer.stats();
    for (name, help, value) in [
        (
            "weft_commits_total",
            "Journal transactions committed.",
            &stats.batches,
        ),
        (
            "weft_writes_total",
            "Writes (appends, run creations, signals) committed.",
            &stats.ops,
        ),
        (
            "weft_write_failures_total",
            "Writes refused (fenced or failed).",
            &stats.failed,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
            value.load(Ordering::Relaxed)
        );
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}
