//! Activities of the `provision` example against a tiny, self-contained
//! "cloud": deterministic answers derived from the inputs and the clock, and
//! one deliberately flaky step so retries are visible.
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};
use weft_sdk::{ActivityContext, Error, LogLevel};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Every execution leaves this line in the server log: tests count them.
fn effect(ctx: &ActivityContext, what: &str) {
    ctx.log(
        LogLevel::Info,
        format!(
            "effect {what} key={} attempt={}",
            ctx.idempotency_key(),
            ctx.attempt()
        ),
    );
}

#[derive(Deserialize)]
struct Placement {
    namespace: String,
    region: String,
}

fn place(ctx: &ActivityContext, p: Placement) -> Result<String, Error> {
    effect(ctx, "place");
    let cells = ["cell-a", "cell-b", "cell-c"];
    let pick = p.namespace.bytes().map(u64::from).sum::<u64>() as usize % cells.len();
    Ok(format!("{}-{}", p.region, cells[pick]))
}

#[derive(Deserialize)]
struct Record {
    namespace: String,
    cell: String,
}

fn create_record(ctx: &ActivityContext, r: Record) -> Result<String, Error> {
    effect(ctx, "create-record");
    if ctx.attempt() < 3 {
        return Err(Error::new(
            "unavailable",
            format!("record service busy (attempt {})", ctx.attempt()),
        ));
    }
    Ok(format!("rec-{}-{}", r.namespace, r.cell))
}

#[derive(Deserialize)]
struct CertRequest {
    namespace: String,
    delay_ms: u64,
}

fn request_cert(ctx: &ActivityContext, r: CertRequest) -> Result<Value, Error> {
    effect(ctx, "request-cert");
    let ready_at = now_ms() + r.delay_ms;
    Ok(json!({ "id": format!("cert-{}-{ready_at}", r.namespace), "ready": r.delay_ms == 0 }))
}

fn cert_status(ctx: &ActivityContext, id: String) -> Result<Value, Error> {
    effect(ctx, "cert-status");
    let ready_at: u64 = id
        .rsplit('-')
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::new("bad-input", format!("not a certificate id: {id}")))?;
    Ok(json!({ "id": id, "ready": now_ms() >= ready_at }))
}

fn publish_dns(ctx: &ActivityContext, r: Record) -> Result<String, Error> {
    effect(ctx, "publish-dns");
    Ok(format!("{}.{}.example.net", r.namespace, r.cell))
}

fn check_connectivity(ctx: &ActivityContext, dns: String) -> Result<Value, Error> {
    effect(ctx, "check-connectivity");
    Ok(json!({ "host": dns, "http": 200, "grpc": "SERVING" }))
}

weft_sdk::activities! {
    "place" => place,
    "create-record" => create_record,
    "request-cert" => request_cert,
    "cert-status" => cert_status,
    "publish-dns" => publish_dns,
    "check-connectivity" => check_connectivity,
}
