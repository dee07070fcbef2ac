//! The entity workflow of one cell (workflow id `cell-NAME`, started by
//! signal-with-start). On "upgrade to V" it upgrades the cell's services
//! one by one with a pause between, watches the cell's canary for a window,
//! and answers the caller. Requests queue up: the entity is the funnel that
//! serialises work on its cell. Its state lives in the cloud (loaded, acted
//! on, stored); it ends when idle.
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;
use weft_sdk::{Context, Error, RetryPolicy, Workflow};

const SERVICES: [&str; 4] = ["frontend", "matching", "history", "worker"];

#[derive(Deserialize)]
struct Cell {
    cell: String,
    cloud: String,
    /// Pause between two services, in ms.
    #[serde(default)]
    pause_ms: u64,
    /// How long the canary is watched after the upgrade, in ms.
    #[serde(default)]
    canary_window_ms: u64,
    #[serde(default = "default_interval")]
    canary_interval_ms: u64,
    /// End after this long without a request, in ms.
    #[serde(default = "default_idle")]
    idle_ms: u64,
}

fn default_interval() -> u64 {
    1000
}

fn default_idle() -> u64 {
    60_000
}

#[derive(Serialize, Deserialize)]
pub struct Request {
    pub request_id: String,
    pub reply_to: String,
    pub version: String,
}

struct CellEntity;

fn call<T: serde::de::DeserializeOwned>(
    ctx: &Context,
    cell: &Cell,
    name: &str,
    mut input: Value,
) -> Result<T, Error> {
    input["cloud"] = json!(cell.cloud);
    input["cell"] = json!(cell.cell);
    ctx.activity(format!("sim/{name}"))
        .input(&input)
        .retry(
            RetryPolicy::default()
                .initial_interval(Duration::from_millis(100))
                .max_interval(Duration::from_secs(5))
                .max_attempts(50),
        )
        .call()
}

fn upgrade(ctx: &Context, cell: &Cell, version: &str) -> Result<(), Error> {
    for (i, service) in SERVICES.iter().enumerate() {
        if i > 0 {
            ctx.sleep(Duration::from_millis(cell.pause_ms))?;
        }
        ctx.set_status(&json!({ "cell": cell.cell, "upgrading": service, "to": version }));
        call::<Value>(
            ctx,
            cell,
            "upgrade-service",
            json!({ "service": service, "version": version }),
        )?;
    }
    // Watch the canary: one check and one durable sleep per round.
    let watch_until = ctx.now_ms() + cell.canary_window_ms;
    loop {
        let canary: Value = call(ctx, cell, "canary", json!({}))?;
        if canary["ok"] != json!(true) {
            return Err(Error::new(
                "canary-failed",
                format!(
                    "the canary of {} failed after the upgrade to {version}",
                    cell.cell
                ),
            ));
        }
        if ctx.now_ms() >= watch_until {
            return Ok(());
        }
        ctx.sleep(Duration::from_millis(cell.canary_interval_ms))?;
    }
}

impl Workflow for CellEntity {
    type Input = Cell;
    type Output = Value;

    fn run(ctx: &Context, cell: Cell) -> Result<Value, Error> {
        let requests = ctx.signal::<Request>("upgrade");
        let mut served = 0;
        while let Some(req) = requests.recv_timeout(Duration::from_millis(cell.idle_ms))? {
            let mut state: Value = call(ctx, &cell, "cell-state", json!({}))?;
            let outcome = upgrade(ctx, &cell, &req.version);
            let reply = match &outcome {
                Ok(()) => json!({ "ok": true, "cell": cell.cell, "version": req.version }),
                Err(e) => {
                    json!({ "ok": false, "cell": cell.cell, "version": req.version, "error": e.message })
                }
            };
            state["last"] = reply.clone();
            state["served"] = json!(state["served"].as_u64().unwrap_or(0) + 1);
            call::<Value>(ctx, &cell, "save-cell-state", json!({ "state": state }))?;
            ctx.signal_workflow(&req.reply_to, &format!("reply-{}", req.request_id), &reply)?;
            ctx.set_status(&json!({ "cell": cell.cell, "idle": true, "last": reply }));
            served += 1;
        }
        Ok(json!({ "cell": cell.cell, "served": served }))
    }
}

weft_sdk::workflow!(CellEntity);
