//! Test workflow that reaches for ambient authority — a file, the
//! directory tree, the environment, its arguments — before and after a
//! sleep (so the second look is replayed after an eviction). It must get
//! empty answers or errors, the same each time.
use serde_json::{Value, json};
use std::time::Duration;
use weft_sdk::{Context, Error, Workflow};

fn err(e: std::io::Error) -> Value {
    json!({ "error": e.kind().to_string() })
}

fn look() -> Value {
    json!({
        "read": std::fs::read_to_string("/etc/hostname").map_or_else(err, |t| json!({ "text": t })),
        "list": std::fs::read_dir("/").map_or_else(err, |d| json!({ "entries": d.count() })),
        "write": std::fs::write("probe.txt", "x").map_or_else(err, |_| json!("written")),
        "cwd": std::env::current_dir().map_or_else(err, |p| json!({ "cwd": p })),
        "home": std::env::var("HOME").ok(),
        "vars": std::env::vars().count(),
        "args": std::env::args().collect::<Vec<_>>(),
    })
}

struct SandboxProbe;

impl Workflow for SandboxProbe {
    type Input = u64;
    type Output = Value;

    fn run(ctx: &Context, sleep_ms: u64) -> Result<Value, Error> {
        let before = look();
        // Journaled: what the first execution saw, to compare on replay.
        ctx.set_status(&before);
        ctx.sleep(Duration::from_millis(sleep_ms))?;
        Ok(json!({ "before": before, "after": look() }))
    }
}

weft_sdk::workflow!(SandboxProbe);
