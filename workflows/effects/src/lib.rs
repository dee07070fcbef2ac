//! Test activities whose every execution is visible in the server log, so
//! tests can count executions across restarts.
use serde_json::{Value, json};
use std::time::Duration;
use weft_sdk::{ActivityContext, Error, LogLevel};

fn step(ctx: &ActivityContext, input: Value) -> Result<Value, Error> {
    let n = input["n"].as_u64().unwrap_or(0);
    ctx.log(
        LogLevel::Info,
        format!(
            "effect step n={n} key={} attempt={}",
            ctx.idempotency_key(),
            ctx.attempt()
        ),
    );
    if let Some(ms) = input["slow_ms"].as_u64() {
        std::thread::sleep(Duration::from_millis(ms));
    }
    Ok(json!({ "n": n, "done": true }))
}

/// Fails with `kind` on the first `times` attempts, then succeeds.
fn fail(ctx: &ActivityContext, input: Value) -> Result<Value, Error> {
    let times = input["times"].as_u64().unwrap_or(0) as u32;
    let kind = input["kind"].as_str().unwrap_or("flaky");
    ctx.log(
        LogLevel::Info,
        format!(
            "effect fail key={} attempt={}",
            ctx.idempotency_key(),
            ctx.attempt()
        ),
    );
    if ctx.attempt() <= times {
        return Err(Error::new(
            kind,
            format!("attempt {} fails on purpose", ctx.attempt()),
        ));
    }
    Ok(json!({ "attempt": ctx.attempt() }))
}

/// Returns `i` after `slow_ms`; logs each execution.
fn echo(ctx: &ActivityContext, input: Value) -> Result<Value, Error> {
    ctx.log(
        LogLevel::Info,
        format!(
            "effect echo key={} attempt={}",
            ctx.idempotency_key(),
            ctx.attempt()
        ),
    );
    if let Some(ms) = input["slow_ms"].as_u64() {
        std::thread::sleep(Duration::from_millis(ms));
    }
    Ok(input["i"].clone())
}

weft_sdk::activities! {
    "echo" => echo,
    "step" => step,
    "step-renamed" => step,
    "fail" => fail,
}
