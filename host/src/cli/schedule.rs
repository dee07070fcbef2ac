//! `weft schedule create|list|show|pause|unpause|trigger|delete`.

use super::{Client, cell, json_arg};
use anyhow::bail;
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct ScheduleOptions {
    #[arg(value_parser = ["create", "list", "show", "pause", "unpause", "trigger", "backfill", "delete"])]
    pub action: String,
    /// The schedule (every action but list).
    pub id: Option<String>,
    /// The workflow it starts (create).
    #[arg(long)]
    pub workflow: Option<String>,
    /// Its interval, such as 30s, 5m, 2h or 1d (create)...
    #[arg(long)]
    pub every: Option<String>,
    /// ...or its cron expression, such as "0 9 * * mon-fri" (create).
    #[arg(long)]
    pub cron: Option<String>,
    /// The cron expression's time zone, such as Europe/Berlin (default UTC).
    #[arg(long)]
    pub time_zone: Option<String>,
    /// The workflow's input, JSON (create).
    #[arg(long)]
    pub input: Option<String>,
    /// At a due time while the last run is open: skip (default),
    /// buffer-one, cancel-previous or allow-all.
    #[arg(long, value_parser = ["skip", "buffer-one", "cancel-previous", "allow-all"])]
    pub overlap: Option<String>,
    /// Delay each start by up to this much, such as 30s (create).
    #[arg(long)]
    pub jitter: Option<String>,
    /// The start of the range to backfill: RFC 3339 or ms since the epoch.
    #[arg(long)]
    pub from: Option<String>,
    /// The end of the range to backfill (inclusive).
    #[arg(long)]
    pub to: Option<String>,
    /// Due times missed by more than this are not acted on late (default 1m).
    #[arg(long)]
    pub catchup_window: Option<String>,
    /// Create it paused.
    #[arg(long)]
    pub paused: bool,
    /// Why (create, pause, unpause).
    #[arg(long)]
    pub note: Option<String>,
    #[arg(long, env = "WEFT_NAMESPACE")]
    pub namespace: Option<String>,
}

/// One line per schedule.
fn line(s: &Value) -> String {
    let state = &s["state"];
    let status = if state["paused"] == true {
        "paused"
    } else {
        "active"
    };
    let spec = &s["spec"];
    let when = match spec["every_ms"].as_u64() {
        Some(ms) => format!("every {ms} ms"),
        None => format!(
            "cron '{}' {}",
            cell(&spec["cron"]),
            spec["time_zone"].as_str().unwrap_or("UTC")
        ),
    };
    format!(
        "{}  {}  {when}  {status}  next {}  last run {}",
        cell(&s["id"]),
        cell(&s["workflow"]),
        cell(&s["next_due_ms"][0]),
        cell(&state["last_run_id"]),
    )
}

pub async fn schedule(client: &Client, opts: ScheduleOptions) -> anyhow::Result<()> {
    let query = opts
        .namespace
        .as_ref()
        .map(|ns| format!("?namespace={ns}"))
        .unwrap_or_default();
    if opts.action == "list" {
        let listed = client.get(&format!("/v1/schedules{query}")).await?;
        for s in listed["schedules"].as_array().into_iter().flatten() {
            out!("{}", line(s));
        }
        return Ok(());
    }
    let Some(id) = opts.id.as_deref() else {
        bail!("`weft schedule {}` needs the schedule's id", opts.action);
    };
    let path = format!("/v1/schedules/{id}");
    let note = json!({ "note": opts.note.clone().unwrap_or_default() });
    match opts.action.as_str() {
        "create" => {
            let Some(workflow) = &opts.workflow else {
                bail!("`weft schedule create` needs --workflow, and --every or --cron");
            };
            let mut body = json!({
                "id": id,
                "workflow": workflow,
                "input": json_arg("--input", opts.input)?,
                "paused": opts.paused,
                "note": opts.note.unwrap_or_default(),
            });
            for (field, value) in [
                ("every", opts.every),
                ("cron", opts.cron),
                ("time_zone", opts.time_zone),
                ("overlap", opts.overlap),
                ("catchup_window", opts.catchup_window),
                ("jitter", opts.jitter),
                ("namespace", opts.namespace),
            ] {
                if let Some(value) = value {
                    body[field] = Value::String(value);
                }
            }
            let created = client.post("/v1/schedules", &body).await?;
            out!("created {}", line(&created));
        }
        "show" => {
            let s = client.get(&format!("{path}{query}")).await?;
            out!("{}", line(&s));
            if s["state"]["note"] != "" {
                out!("note: {}", cell(&s["state"]["note"]));
            }
            out!("next due (ms since the epoch): {}", s["next_due_ms"]);
            for action in s["state"]["recent"].as_array().into_iter().flatten() {
                out!(
                    "  due {}  at {}  {}  {}",
                    cell(&action["due_ms"]),
                    cell(&action["at_ms"]),
                    cell(&action["outcome"]),
                    cell(&action["run_id"]),
                );
            }
        }
        "pause" | "unpause" => {
            let s = client
                .post(&format!("{path}/{}{query}", opts.action), &note)
                .await?;
            out!("{}", line(&s));
        }
        "trigger" => {
            let done = client
                .post(&format!("{path}/trigger{query}"), &json!(null))
                .await?;
            out!("started run {}", cell(&done["run_id"]));
        }
        "backfill" => {
            let (Some(from), Some(to)) = (opts.from, opts.to) else {
                bail!("`weft schedule backfill` needs --from and --to");
            };
            // A number is milliseconds, anything else RFC 3339 text.
            let time = |t: String| t.parse::<i64>().map_or(Value::String(t), |ms| json!(ms));
            let body = json!({ "from": time(from), "to": time(to) });
            let done = client
                .post(&format!("{path}/backfill{query}"), &body)
                .await?;
            let started = done["started"].as_array().map_or(0, Vec::len);
            out!("backfilled {started} run(s)");
        }
        "delete" => {
            client.delete(&format!("{path}{query}")).await?;
            out!("deleted schedule {id}");
        }
        other => bail!("unknown schedule action `{other}`"),
    }
    Ok(())
}
