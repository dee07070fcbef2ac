//! `weft batch cancel|terminate|signal|pause|unpause|upgrade`: one command for every run of a
//! namespace a filter matches.

use super::{Client, cell, json_arg};
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct BatchOptions {
    #[arg(value_parser = ["cancel", "terminate", "signal", "pause", "unpause", "upgrade"])]
    pub action: String,
    /// The signal's name (signal).
    #[arg(long)]
    pub signal: Option<String>,
    /// The signal's payload, JSON (signal).
    #[arg(long)]
    pub payload: Option<String>,
    /// Why (terminate, pause, unpause).
    #[arg(long)]
    pub reason: Option<String>,
    #[arg(long, env = "WEFT_NAMESPACE")]
    pub namespace: Option<String>,
    #[arg(long)]
    pub workflow: Option<String>,
    #[arg(long)]
    pub workflow_id: Option<String>,
    /// Runs of this status (default: running).
    #[arg(long)]
    pub status: Option<String>,
    /// Runs matching this list query (as `weft runs --query`).
    #[arg(long)]
    pub query: Option<String>,
    /// The version an upgrade moves runs to: a number or `latest` (default).
    #[arg(long)]
    pub version: Option<String>,
    /// List what would be touched; touch nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn batch(client: &Client, opts: BatchOptions) -> anyhow::Result<()> {
    let payload = match opts.payload {
        Some(text) => Some(json_arg("--payload", Some(text))?),
        None => None,
    };
    let mut body = json!({
        "action": opts.action,
        "dry_run": opts.dry_run,
    });
    for (field, value) in [
        ("signal", opts.signal.map(Value::String)),
        ("payload", payload),
        ("reason", opts.reason.map(Value::String)),
        ("namespace", opts.namespace.map(Value::String)),
        ("workflow", opts.workflow.map(Value::String)),
        ("workflow_id", opts.workflow_id.map(Value::String)),
        ("status", opts.status.map(Value::String)),
        ("query", opts.query.map(Value::String)),
        (
            "version",
            opts.version
                .map(|v| v.parse::<u64>().map_or(Value::String(v), Value::from)),
        ),
    ] {
        if let Some(value) = value {
            body[field] = value;
        }
    }
    let done = client.post("/v1/batches", &body).await?;
    let count = |key: &str| done[key].as_array().map_or(0, Vec::len);
    let more = if done["more"] == true {
        " (more matched: run it again)"
    } else {
        ""
    };
    if done["dry_run"] == true {
        out!(
            "dry run: {} would {} {} run(s){more}",
            cell(&done["namespace"]),
            cell(&done["action"]),
            count("matched")
        );
        for id in done["matched"].as_array().into_iter().flatten() {
            out!("  {}", cell(id));
        }
        return Ok(());
    }
    out!(
        "{}: {} {} of {} run(s){more}",
        cell(&done["namespace"]),
        cell(&done["action"]),
        count("applied"),
        count("matched")
    );
    for failed in done["failed"].as_array().into_iter().flatten() {
        out!(
            "  {} failed: {}",
            cell(&failed["run_id"]),
            cell(&failed["error"])
        );
    }
    if count("failed") > 0 {
        anyhow::bail!("{} run(s) could not be changed", count("failed"));
    }
    Ok(())
}
