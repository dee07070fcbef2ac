//! An entity workflow: consumes `item` signals one at a time, in arrival
//! order, until it has `expect` of them; continues as new every `batch`
//! signals so its journal stays bounded.
use serde::{Deserialize, Serialize};
use serde_json::Value;
use weft_sdk::{Context, Error, Workflow};

#[derive(Serialize, Deserialize)]
struct State {
    expect: usize,
    #[serde(default = "default_batch")]
    batch: usize,
    #[serde(default)]
    seen: Vec<Value>,
    #[serde(default)]
    generation: u32,
}

fn default_batch() -> usize {
    usize::MAX
}

struct Entity;

impl Workflow for Entity {
    type Input = State;
    type Output = State;

    fn run(ctx: &Context, mut state: State) -> Result<State, Error> {
        let items = ctx.signal::<Value>("item");
        let mut this_run = 0;
        while state.seen.len() < state.expect {
            if this_run == state.batch {
                state.generation += 1;
                ctx.continue_as_new(&state);
            }
            state.seen.push(items.recv()?);
            this_run += 1;
            ctx.set_status(&serde_json::json!({ "seen": state.seen.len() }));
        }
        Ok(state)
    }
}

weft_sdk::workflow!(Entity);
