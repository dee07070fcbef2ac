//! `weft batch cancel|terminate|signal|pause|unpause|upgrade`: one command for every run of a
//! namespace a filter matches.

use super::{Client, cell, json_arg};
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct BatchOptions {
    #[arg(value_parser = ["cancel", "terminate", "signal", "pause", "unpause", "upgrade", "status"])]
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
    /// Write the batch down as a job worked off in the background (every
    /// matching run, across restarts); `weft batch status --job ID` follows it.
    #[arg(long)]
    pub background: bool,
    /// The background job `status` shows.
    #[arg(long)]
    pub job: Option<String>,
}

/// A background job's progress, one line.
fn progress(job: &Value) -> String {
    let state = if job["done"] == true {
        "done"
    } else {
        "working"
    };
    format!(
        "batch job {} ({}): {state}, {} of {} run(s) applied, {} failed",
        cell(&job["id"]),
        cell(&job["spec"]["action"]),
        job["applied"],
        job["matched"],
        job["failed"]
    )
}

pub async fn batch(client: &Client, opts: BatchOptions) -> anyhow::Result<()> {
    if opts.action == "status" {
        let Some(id) = &opts.job else {
            anyhow::bail!("`weft batch status` needs --job ID");
        };
        let job = client.get(&format!("/v1/batches/{id}")).await?;
        out!("{}", progress(&job));
        for error in job["errors"].as_array().into_iter().flatten() {
            out!("  {}: {}", cell(&error["run_id"]), cell(&error["error"]));
        }
        return Ok(());
    }
    let payload = match opts.payload {
        Some(text) => Some(json_arg("--payload", Some(text))?),
        None => None,
    };
    let mut body = json!({
        "action": opts.action,
        "dry_run": opts.dry_run,
        "background": opts.background,
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
    if opts.background {
        out!("{}", progress(&done));
        out!("follow it: weft batch status --job {}", cell(&done["id"]));
        return Ok(());
    }
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
