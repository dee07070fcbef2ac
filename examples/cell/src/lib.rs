//! Request/response over signals, the entity side: a cell receives
//! `upgrade` requests (signal-with-start makes sure it runs), performs them
//! one at a time and answers each caller with a signal. It ends when idle.
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;
use weft_sdk::{Context, Error, Workflow};

#[derive(Deserialize)]
struct Cell {
    name: String,
    #[serde(default)]
    version: String,
    /// How long an upgrade takes (a durable sleep), in ms.
    #[serde(default)]
    upgrade_ms: u64,
    /// End after this long without a request, in ms.
    #[serde(default = "default_idle")]
    idle_ms: u64,
}

fn default_idle() -> u64 {
    2000
}

#[derive(Serialize, Deserialize)]
pub struct Request {
    pub request_id: String,
    pub reply_to: String,
    pub version: String,
}

struct CellEntity;

impl Workflow for CellEntity {
    type Input = Cell;
    type Output = serde_json::Value;

    fn run(ctx: &Context, mut cell: Cell) -> Result<serde_json::Value, Error> {
        let requests = ctx.signal::<Request>("upgrade");
        let mut served = Vec::new();
        while let Some(req) = requests.recv_timeout(Duration::from_millis(cell.idle_ms))? {
            ctx.set_status(&json!({ "cell": cell.name, "upgrading_to": req.version }));
            ctx.sleep(Duration::from_millis(cell.upgrade_ms))?;
            let from = std::mem::replace(&mut cell.version, req.version.clone());
            let reply = json!({ "ok": true, "cell": cell.name, "from": from, "to": req.version });
            ctx.signal_workflow(&req.reply_to, &format!("reply-{}", req.request_id), &reply)?;
            served.push(req.request_id);
            ctx.set_status(&json!({ "cell": cell.name, "version": cell.version }));
        }
        Ok(json!({ "cell": cell.name, "version": cell.version, "served": served }))
    }
}

weft_sdk::workflow!(CellEntity);
