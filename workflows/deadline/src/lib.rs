//! Runs into its execution timeout: either asleep, or retrying an activity
//! that always fails ("retry until the deadline").
use serde_json::{Value, json};
use std::time::Duration;
use weft_sdk::{Context, Error, RetryPolicy, Workflow};

struct Deadline;

impl Workflow for Deadline {
    type Input = String;
    type Output = Value;

    fn run(ctx: &Context, mode: String) -> Result<Value, Error> {
        match mode.as_str() {
            "sleep" => ctx.sleep(Duration::from_secs(3600))?,
            _ => {
                let _: Value = ctx
                    .activity("effects/fail")
                    .input(&json!({ "kind": "flaky", "times": 1_000_000 }))
                    .retry(
                        RetryPolicy::default()
                            .initial_interval(Duration::from_millis(100))
                            .max_interval(Duration::from_millis(200)),
                    )
                    .call()?;
            }
        }
        Ok(json!("unreachable: the deadline comes first"))
    }
}

weft_sdk::workflow!(Deadline);
