//! Sleeps for a long time; when cancelled, runs a cleanup activity, then
//! ends cancelled.
use serde_json::{Value, json};
use std::time::Duration;
use weft_sdk::{Context, Error, Workflow};

struct Cancellable;

impl Workflow for Cancellable {
    type Input = Value;
    type Output = Value;

    fn run(ctx: &Context, _input: Value) -> Result<Value, Error> {
        match ctx.sleep(Duration::from_secs(3600)) {
            Err(e) if e.is_cancelled() => {
                let _: Value = ctx
                    .activity("effects/step")
                    .input(&json!({ "n": 99 }))
                    .call()?;
                Err(e)
            }
            Err(e) => Err(e),
            Ok(()) => Ok(json!("slept an hour")),
        }
    }
}

weft_sdk::workflow!(Cancellable);
