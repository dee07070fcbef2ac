//! `weft reset RUN --to EVENT`: carry a run on from an earlier event.

use super::{Client, cell};
use serde_json::json;

#[derive(clap::Args)]
pub struct ResetOptions {
    /// The run to reset (ended, stuck or running: a running one is
    /// terminated first).
    pub run_id: String,
    /// The first event the new run does not keep (`weft show RUN` numbers
    /// them): it replays the events before it and goes live there.
    #[arg(long = "to")]
    pub event: u64,
    #[arg(long)]
    pub reason: Option<String>,
    /// Do not deliver again the signals the run consumed from EVENT on.
    #[arg(long)]
    pub no_reapply_signals: bool,
    /// Pin the new run to this version of the workflow (default: the run's).
    #[arg(long)]
    pub version: Option<u32>,
}

pub async fn reset(client: &Client, opts: ResetOptions) -> anyhow::Result<()> {
    let mut body = json!({
        "event": opts.event,
        "reapply_signals": !opts.no_reapply_signals,
    });
    if let Some(reason) = opts.reason {
        body["reason"] = json!(reason);
    }
    if let Some(version) = opts.version {
        body["version"] = json!(version);
    }
    let run = client
        .post(&format!("/v1/runs/{}/reset", opts.run_id), &body)
        .await?;
    out!(
        "run {} reset to event {}: run {} carries on (v{})",
        opts.run_id,
        opts.event,
        cell(&run["run_id"]),
        run["version"]
    );
    Ok(())
}
