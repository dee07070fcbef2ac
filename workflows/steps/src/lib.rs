//! The replay benchmark's workflow: `n` sequential activities (a journal of
//! 2n + 2 events).
use weft_sdk::{Context, Error, Workflow};

struct Steps;

impl Workflow for Steps {
    type Input = u64;
    type Output = u64;

    fn run(ctx: &Context, n: u64) -> Result<u64, Error> {
        let mut total = 0;
        for _ in 0..n {
            total = ctx.activity("step/add-one").input(&total).call()?;
        }
        Ok(total)
    }
}

weft_sdk::workflow!(Steps);
