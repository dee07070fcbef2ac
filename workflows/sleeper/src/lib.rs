//! Test workflow: reads the clock and randomness through plain std (WASI),
//! calls an activity, sleeps durably, calls another. Replay must reproduce
//! the clock and random values exactly (they travel in the first activity's
//! input, which the journal holds).
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use weft_sdk::{Context, Error, Workflow};

#[cfg(not(feature = "v2"))]
const STEP: &str = "effects/step";
/// v2 renamed the activity: replaying a v1 journal on it is a divergence.
#[cfg(feature = "v2")]
const STEP: &str = "effects/step-renamed";

#[derive(Deserialize)]
struct Input {
    tag: String,
    sleep_ms: u64,
    #[serde(default)]
    slow_ms: u64,
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

struct Sleeper;

impl Workflow for Sleeper {
    type Input = Input;
    type Output = Value;

    fn run(ctx: &Context, input: Input) -> Result<Value, Error> {
        let t0 = wall_ms();
        let hashed = RandomState::new().hash_one(&input.tag);
        let lucky = ctx.random_u64();
        let first: Value = ctx
            .activity(STEP)
            .input(&json!({ "tag": input.tag, "n": 1, "t0": t0, "hashed": hashed, "lucky": lucky }))
            .call()?;
        ctx.sleep(Duration::from_millis(input.sleep_ms))?;
        let second: Value = ctx
            .activity(STEP)
            .input(&json!({ "tag": input.tag, "n": 2, "slow_ms": input.slow_ms }))
            .call()?;
        let t1 = wall_ms();
        Ok(json!({
            "tag": input.tag,
            "t0": t0,
            "hashed": hashed,
            "lucky": lucky,
            "first": first,
            "second": second,
            "slept_enough": t1 >= t0 + input.sleep_ms,
        }))
    }
}

weft_sdk::workflow!(Sleeper);
