//! Records who asked for a rollout and why, runs the rollout as a child,
//! and keeps the answer: query it later with GET /v1/runs/{id}.
use serde::Deserialize;
use serde_json::{Value, json};
use weft_sdk::{Context, Error, Workflow};

#[derive(Deserialize)]
struct Ask {
    requested_by: String,
    reason: String,
    /// The rollout's plan (see the `rollout` workflow).
    plan: Value,
}

struct RolloutRequest;

impl Workflow for RolloutRequest {
    type Input = Ask;
    type Output = Value;

    fn run(ctx: &Context, ask: Ask) -> Result<Value, Error> {
        let version = ask.plan["version"].as_str().unwrap_or("?").to_string();
        let asked = json!({
            "requested_by": ask.requested_by,
            "reason": ask.reason,
            "version": version,
            "requested_at_ms": ctx.now_ms(),
        });
        ctx.set_status(&json!({ "request": asked, "state": "rolling out" }));
        let outcome: Result<Value, Error> = ctx
            .child("rollout")
            .workflow_id(format!("rollout-{version}"))
            .input(&ask.plan)
            .call();
        let state = if outcome.is_ok() { "done" } else { "failed" };
        ctx.set_status(&json!({ "request": asked, "state": state }));
        Ok(json!({
            "request": asked,
            "state": state,
            "rollout": outcome.as_ref().ok(),
            "error": outcome.as_ref().err().map(|e| e.message.clone()),
        }))
    }
}

weft_sdk::workflow!(RolloutRequest);
