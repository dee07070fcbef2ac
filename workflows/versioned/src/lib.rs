//! A workflow in several versions, for the hot-versioning tests:
//! A, sleep, B, sleep, D — and variants that add a step after D (`add`),
//! swap A and B (`reorder`), add X behind a patch marker (`patched`),
//! rename B (`rename-b`), or continue as new once at the end (`continue`).
//! With `signal`, the first wait is for a signal `go` instead of a sleep.
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use weft_sdk::{Context, Error, Workflow};

#[derive(Deserialize)]
struct Input {
    sleep1_ms: u64,
    sleep2_ms: u64,
    #[serde(default)]
    signal: bool,
    #[serde(default)]
    continued: bool,
}

fn step(ctx: &Context, label: &str) -> Result<String, Error> {
    ctx.activity("effects/echo")
        .input(&json!({ "i": label }))
        .call()
}

const FIRST: &str = if cfg!(feature = "reorder") { "B" } else { "A" };
const SECOND: &str = if cfg!(feature = "reorder") {
    "A"
} else if cfg!(feature = "rename-b") {
    "B2"
} else {
    "B"
};

struct Versioned;

impl Workflow for Versioned {
    type Input = Input;
    type Output = Value;

    fn run(ctx: &Context, input: Input) -> Result<Value, Error> {
        let mut steps = vec![step(ctx, FIRST)?];
        if input.signal {
            ctx.signal::<Value>("go").recv()?;
        } else {
            ctx.sleep(Duration::from_millis(input.sleep1_ms))?;
        }
        if cfg!(feature = "patched") && ctx.patched("extra-step") {
            steps.push(step(ctx, "X")?);
        }
        steps.push(step(ctx, SECOND)?);
        ctx.sleep(Duration::from_millis(input.sleep2_ms))?;
        steps.push(step(ctx, "D")?);
        if cfg!(feature = "add") {
            steps.push(step(ctx, "C")?);
        }
        if cfg!(feature = "continue") && !input.continued {
            ctx.continue_as_new(&json!({
                "sleep1_ms": 0, "sleep2_ms": 0, "continued": true
            }));
        }
        Ok(json!({ "steps": steps, "version": ctx.info().version }))
    }
}

weft_sdk::workflow!(Versioned);
