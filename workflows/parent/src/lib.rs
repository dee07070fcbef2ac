//! A parent that starts a child run (the `sleeper` workflow) and waits for
//! its result.
use serde_json::{Value, json};
use weft_sdk::{Context, Error, ParentClose, Workflow};

struct Parent;

impl Workflow for Parent {
    type Input = Value;
    type Output = Value;

    fn run(ctx: &Context, input: Value) -> Result<Value, Error> {
        let child: Value = ctx
            .child("sleeper")
            .workflow_id(format!("{}-child", ctx.info().workflow_id))
            .input(&input)
            .parent_close(ParentClose::Cancel)
            .call()?;
        Ok(json!({ "child": child }))
    }
}

weft_sdk::workflow!(Parent);
