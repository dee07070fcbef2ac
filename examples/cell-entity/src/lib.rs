//! The entity workflow of one cell (workflow id `cell-NAME`, started by
//! signal-with-start or update-with-start). On "upgrade to V" it upgrades
//! the cell's services one by one with a pause between, watches the cell's
//! canary for a window, and answers. Two ways to ask:
//!
//! - the update `upgrade` ({"version", "request_id"?, "reply_to"?}), from
//!   an operator or a rollout, is answered at once: accepted (the upgrade
//!   starts) or rejected, with `upgrade-in-progress` while the cell is
//!   busy; with `reply_to`, that workflow is signalled
//!   `reply-REQUEST_ID` with the outcome when the upgrade is done;
//! - a workflow signals `upgrade` with a reply address and is answered by
//!   signal when the upgrade is done; such requests queue up, the entity
//!   is the funnel that serialises work on its cell.
//!
//! Its state lives in the cloud (loaded, acted on, stored); it ends when
//! idle.
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;
use weft_sdk::{Context, Error, Pending, PendingUpdate, RetryPolicy, Workflow};

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

/// An upgrade asked by update: by an operator, or by a rollout, which
/// names where the upgrade's end is signalled.
#[derive(Deserialize)]
struct OperatorUpgrade {
    version: String,
    #[serde(default)]
    request_id: String,
    /// The workflow id told `reply-REQUEST_ID` once the upgrade ended.
    #[serde(default)]
    reply_to: Option<String>,
}

/// The entity at work on `doing`: every wait also takes operators' upgrade
/// updates, and refuses them.
struct Busy<'a> {
    ctx: &'a Context,
    cell: &'a Cell,
    updates: &'a PendingUpdate<OperatorUpgrade>,
    doing: String,
}

impl Busy<'_> {
    fn wait<T: DeserializeOwned>(&self, op: Pending<T>) -> Result<T, Error> {
        loop {
            let selected = self.ctx.select(&[op.handle(), self.updates.handle()]);
            if selected.index == 0 {
                return selected.decode();
            }
            let refused = self.updates.take(selected, |asked| {
                Err(Error::new(
                    "upgrade-in-progress",
                    format!(
                        "cell {} is {}; cannot start an upgrade to {}",
                        self.cell.cell, self.doing, asked.version
                    ),
                ))
            })?;
            debug_assert!(refused.is_none(), "a busy cell refuses every upgrade");
        }
    }

    fn call<T: DeserializeOwned>(&self, name: &str, mut input: Value) -> Result<T, Error> {
        input["cloud"] = json!(self.cell.cloud);
        input["cell"] = json!(self.cell.cell);
        let pending = self
            .ctx
            .activity(format!("sim/{name}"))
            .input(&input)
            .retry(
                RetryPolicy::default()
                    .initial_interval(Duration::from_millis(100))
                    .max_interval(Duration::from_secs(5))
                    .max_attempts(50),
            )
            .start()?;
        self.wait(pending)
    }

    fn sleep(&self, ms: u64) -> Result<(), Error> {
        self.wait(self.ctx.timer(Duration::from_millis(ms)))
    }
}

fn upgrade(busy: &Busy, version: &str) -> Result<(), Error> {
    let cell = busy.cell;
    for (i, service) in SERVICES.iter().enumerate() {
        if i > 0 {
            busy.sleep(cell.pause_ms)?;
        }
        busy.ctx
            .set_status(&json!({ "cell": cell.cell, "upgrading": service, "to": version }));
        busy.call::<Value>(
            "upgrade-service",
            json!({ "service": service, "version": version }),
        )?;
    }
    // Watch the canary: one check and one durable sleep per round.
    let watch_until = busy.ctx.now_ms() + cell.canary_window_ms;
    loop {
        let canary: Value = busy.call("canary", json!({}))?;
        if canary["ok"] != json!(true) {
            return Err(Error::new(
                "canary-failed",
                format!(
                    "the canary of {} failed after the upgrade to {version}",
                    cell.cell
                ),
            ));
        }
        if busy.ctx.now_ms() >= watch_until {
            return Ok(());
        }
        busy.sleep(cell.canary_interval_ms)?;
    }
}

/// Upgrade the cell to `version`, with its state loaded and saved around
/// it; answers the reply.
fn serve(busy: &Busy, version: &str) -> Result<Value, Error> {
    let cell = busy.cell;
    let mut state: Value = busy.call("cell-state", json!({}))?;
    let outcome = upgrade(busy, version);
    let reply = match &outcome {
        Ok(()) => json!({ "ok": true, "cell": cell.cell, "version": version }),
        Err(e) => {
            json!({ "ok": false, "cell": cell.cell, "version": version, "error": e.message })
        }
    };
    state["last"] = reply.clone();
    state["served"] = json!(state["served"].as_u64().unwrap_or(0) + 1);
    busy.call::<Value>("save-cell-state", json!({ "state": state }))?;
    busy.ctx
        .set_status(&json!({ "cell": cell.cell, "idle": true, "last": reply }));
    Ok(reply)
}

fn valid(asked: &OperatorUpgrade) -> Result<(), Error> {
    if asked.version.is_empty() {
        return Err(Error::new(
            "invalid-version",
            "name the version to upgrade to",
        ));
    }
    Ok(())
}

impl Workflow for CellEntity {
    type Input = Cell;
    type Output = Value;

    fn run(ctx: &Context, cell: Cell) -> Result<Value, Error> {
        let requests = ctx.signal::<Request>("upgrade");
        let operators = ctx.updates::<OperatorUpgrade>("upgrade");
        let mut request = requests.pending();
        let mut update = operators.pending();
        let mut served = 0;
        loop {
            let idle = ctx.timer(Duration::from_millis(cell.idle_ms));
            let selected = ctx.select(&[request.handle(), update.handle(), idle.handle()]);
            match selected.index {
                0 => {
                    let req: Request = selected.decode()?;
                    request = requests.pending();
                    let next = operators.pending();
                    let busy = Busy {
                        ctx,
                        cell: &cell,
                        updates: &next,
                        doing: format!("upgrading to {} for {}", req.version, req.reply_to),
                    };
                    let reply = serve(&busy, &req.version)?;
                    update = next;
                    ctx.signal_workflow(
                        &req.reply_to,
                        &format!("reply-{}", req.request_id),
                        &reply,
                    )?;
                }
                1 => {
                    let Some(asked) = update.take(selected, valid)? else {
                        continue;
                    };
                    let version = asked.input().version.clone();
                    let reply_to = asked.input().reply_to.clone();
                    let request_id = asked.input().request_id.clone();
                    asked.reply(Ok(
                        json!({ "accepted": true, "cell": cell.cell, "version": version }),
                    ));
                    let next = operators.pending();
                    let busy = Busy {
                        ctx,
                        cell: &cell,
                        updates: &next,
                        doing: format!(
                            "upgrading to {version} for {}",
                            reply_to.as_deref().unwrap_or("an operator")
                        ),
                    };
                    let reply = serve(&busy, &version)?;
                    update = next;
                    if let Some(reply_to) = reply_to {
                        ctx.signal_workflow(&reply_to, &format!("reply-{request_id}"), &reply)?;
                    }
                }
                _ => break,
            }
            served += 1;
        }
        Ok(json!({ "cell": cell.cell, "served": served }))
    }
}

weft_sdk::workflow!(CellEntity);
