//! The benchmark workflow: ten sequential activities, each adding one.
use weft_sdk::{Context, Error, Workflow};

struct Chain10;

impl Workflow for Chain10 {
    type Input = u64;
    type Output = u64;

    fn run(ctx: &Context, mut n: u64) -> Result<u64, Error> {
        for _ in 0..10 {
            n = ctx.activity("step/add-one").input(&n).call()?;
        }
        Ok(n)
    }
}

weft_sdk::workflow!(Chain10);
