//! Request/response over signals, the caller side: "cell entity, upgrade to
//! version X" and wait for the answer, however long it takes.
use serde::Deserialize;
use serde_json::{Value, json};
use weft_sdk::{Context, Error, Workflow};

#[derive(Deserialize)]
struct Input {
    cell: String,
    version: String,
    #[serde(default)]
    upgrade_ms: u64,
}

struct Caller;

impl Workflow for Caller {
    type Input = Input;
    type Output = Value;

    fn run(ctx: &Context, input: Input) -> Result<Value, Error> {
        let me = ctx.info();
        let request_id = format!("{}-{}", me.run_id, input.version);
        ctx.signal_with_start(
            "cell",
            &format!("cell-{}", input.cell),
            &json!({ "name": input.cell, "upgrade_ms": input.upgrade_ms }),
            "upgrade",
            &json!({ "request_id": request_id, "reply_to": me.workflow_id, "version": input.version }),
        )?;
        ctx.signal::<Value>(&format!("reply-{request_id}")).recv()
    }
}

weft_sdk::workflow!(Caller);
