//! Fan-out: start `n` activities at once, wait for all, sum the results.
use serde::Deserialize;
use serde_json::json;
use weft_sdk::{Context, Error, Workflow};

#[derive(Deserialize)]
struct Input {
    n: u64,
    /// Activity i takes (i * spread_ms) % 1000 + base_ms.
    #[serde(default)]
    spread_ms: u64,
    #[serde(default)]
    base_ms: u64,
}

struct FanOut;

impl Workflow for FanOut {
    type Input = Input;
    type Output = u64;

    fn run(ctx: &Context, input: Input) -> Result<u64, Error> {
        let mut pending = Vec::new();
        for i in 1..=input.n {
            let slow_ms = (i * input.spread_ms) % 1000 + input.base_ms;
            pending.push(
                ctx.activity("effects/echo")
                    .input(&json!({ "i": i, "slow_ms": slow_ms }))
                    .start::<u64>()?,
            );
        }
        let mut sum = 0;
        for result in ctx.join_all(pending) {
            sum += result?;
        }
        Ok(sum)
    }
}

weft_sdk::workflow!(FanOut);
