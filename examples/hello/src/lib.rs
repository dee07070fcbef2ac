//! The smallest workflow: greet through an activity, with the journaled
//! clock and a random number along the way.
use serde::{Deserialize, Serialize};
use weft_sdk::{Context, Error, LogLevel, Workflow};

#[derive(Deserialize)]
struct Input {
    name: String,
}

#[derive(Serialize)]
struct Output {
    greeting: String,
    started_at_ms: u64,
    lucky: u64,
}

struct Hello;

impl Workflow for Hello {
    type Input = Input;
    type Output = Output;

    fn run(ctx: &Context, input: Input) -> Result<Output, Error> {
        let started_at_ms = ctx.now_ms();
        ctx.log(LogLevel::Info, format!("greeting {}", input.name));
        let greeting: String = ctx.activity("greeter/greet").input(&input.name).call()?;
        Ok(Output {
            greeting,
            started_at_ms,
            lucky: ctx.random_u64() % 100,
        })
    }
}

weft_sdk::workflow!(Hello);
