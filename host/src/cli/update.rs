//! `weft update WORKFLOW_ID NAME [--input JSON]`: send an update and print
//! the workflow's answer; `--attach UPDATE_ID` waits for one sent before.

use super::{Client, cell, json_arg};
use anyhow::bail;
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct UpdateOptions {
    /// The workflow id whose open run takes the update.
    pub workflow_id: String,
    /// The update's name (omit with --attach).
    pub name: Option<String>,
    /// The update's input, JSON.
    #[arg(long)]
    pub input: Option<String>,
    /// Your id for the update: sending it again answers the same update.
    #[arg(long)]
    pub id: Option<String>,
    /// Wait for the answer to the update of this id, sent before.
    #[arg(long, conflicts_with_all = ["name", "input", "start_workflow"])]
    pub attach: Option<String>,
    /// Update-with-start: start this workflow under the id if no run is open.
    #[arg(long)]
    pub start_workflow: Option<String>,
    /// The started run's input, JSON (with --start-workflow).
    #[arg(long, requires = "start_workflow")]
    pub start_input: Option<String>,
    /// How long to wait for the answer, in seconds (at most 600).
    #[arg(long, default_value_t = 60)]
    pub wait: u64,
    #[arg(long, env = "WEFT_NAMESPACE")]
    pub namespace: Option<String>,
}

pub async fn update(client: &Client, opts: UpdateOptions) -> anyhow::Result<()> {
    let wait_ms = opts.wait.saturating_mul(1000);
    let workflow_id = &opts.workflow_id;
    let answer = if let Some(update_id) = &opts.attach {
        let mut path =
            format!("/v1/workflow-ids/{workflow_id}/updates/{update_id}?wait_ms={wait_ms}");
        if let Some(ns) = &opts.namespace {
            path.push_str(&format!("&namespace={ns}"));
        }
        client.get(&path).await?
    } else {
        let Some(name) = &opts.name else {
            bail!("name the update (or --attach UPDATE_ID)");
        };
        let mut body = json!({
            "input": json_arg("--input", opts.input)?,
            "wait_ms": wait_ms,
        });
        if let Some(id) = opts.id {
            body["update_id"] = json!(id);
        }
        if let Some(ns) = opts.namespace {
            body["namespace"] = json!(ns);
        }
        if let Some(workflow) = opts.start_workflow {
            body["start"] = json!({
                "workflow": workflow,
                "input": json_arg("--start-input", opts.start_input)?,
            });
        }
        client
            .post(
                &format!("/v1/workflow-ids/{workflow_id}/updates/{name}"),
                &body,
            )
            .await?
    };
    print_answer(&answer)
}

/// The answer, or the error; pending and refused updates exit non-zero.
fn print_answer(answer: &Value) -> anyhow::Result<()> {
    let id = cell(&answer["update_id"]);
    match answer["status"].as_str() {
        Some("completed") => {
            out!("{}", answer["output"]);
            Ok(())
        }
        Some(status @ ("failed" | "rejected")) => bail!(
            "update {id} {status}: {}: {}",
            cell(&answer["error"]["kind"]),
            cell(&answer["error"]["message"])
        ),
        Some(status) => bail!(
            "update {id} is {status}, not answered yet: `weft update {} --attach {id}` waits for it",
            cell(&answer["workflow_id"])
        ),
        None => bail!("the server answered {answer}"),
    }
}
