//! Test workflow exercising the activity retry policy: attempt limits,
//! non-retryable kinds, start-to-close and schedule-to-close timeouts.
use serde_json::{Value, json};
use std::time::Duration;
use weft_sdk::{Context, Error, RetryPolicy, Workflow};

fn outcome(result: Result<Value, Error>) -> Value {
    match result {
        Ok(v) => json!({ "ok": v }),
        Err(e) => json!({ "err": e.kind, "message": e.message }),
    }
}

fn fast() -> RetryPolicy {
    RetryPolicy::default()
        .initial_interval(Duration::from_millis(50))
        .backoff(2.0)
        .max_interval(Duration::from_millis(400))
}

struct Retries;

impl Workflow for Retries {
    type Input = Value;
    type Output = Value;

    fn run(ctx: &Context, _input: Value) -> Result<Value, Error> {
        let exhausted = ctx
            .activity("effects/fail")
            .input(&json!({ "kind": "flaky", "times": 5 }))
            .retry(fast().max_attempts(3))
            .call();
        let fatal = ctx
            .activity("effects/fail")
            .input(&json!({ "kind": "fatal", "times": 5 }))
            .retry(fast().non_retryable("fatal"))
            .call();
        let slow = ctx
            .activity("effects/step")
            .input(&json!({ "n": 3, "slow_ms": 3000 }))
            .timeout(Duration::from_millis(200))
            .retry(fast().max_attempts(2))
            .call();
        let recovered = ctx
            .activity("effects/fail")
            .input(&json!({ "kind": "flaky", "times": 2 }))
            .retry(fast())
            .call();
        let deadline = ctx
            .activity("effects/fail")
            .input(&json!({ "kind": "flaky", "times": 1000 }))
            .retry(fast())
            .schedule_to_close(Duration::from_millis(600))
            .call();
        Ok(json!({
            "exhausted": outcome(exhausted),
            "fatal": outcome(fatal),
            "slow": outcome(slow),
            "recovered": outcome(recovered),
            "deadline": outcome(deadline),
        }))
    }
}

weft_sdk::workflow!(Retries);
