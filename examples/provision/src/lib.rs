//! Provision a tenant namespace: place it in a cell, create its record,
//! request a certificate and poll (with durable sleeps) until it is issued,
//! publish DNS, then check connectivity. Happy-path code: retries are the
//! host's job, configured per activity.
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;
use weft_sdk::{Context, Error, LogLevel, RetryPolicy, Workflow};

#[derive(Deserialize)]
struct Request {
    namespace: String,
    region: String,
    /// How long the certificate authority takes (simulated), in ms.
    #[serde(default = "default_cert_delay")]
    cert_delay_ms: u64,
    /// Pause between certificate polls, in ms.
    #[serde(default = "default_poll")]
    poll_ms: u64,
}

fn default_cert_delay() -> u64 {
    1500
}

fn default_poll() -> u64 {
    500
}

#[derive(Serialize, Deserialize)]
struct Cert {
    id: String,
    ready: bool,
}

#[derive(Serialize)]
struct Provisioned {
    namespace: String,
    cell: String,
    record: String,
    certificate: String,
    dns: String,
    polls: u32,
    connectivity: Value,
}

struct Provision;

fn quick_retries() -> RetryPolicy {
    RetryPolicy::default()
        .initial_interval(Duration::from_millis(100))
        .max_interval(Duration::from_secs(2))
        .max_attempts(10)
}

impl Workflow for Provision {
    type Input = Request;
    type Output = Provisioned;

    fn run(ctx: &Context, req: Request) -> Result<Provisioned, Error> {
        let cell: String = ctx
            .activity("cloud/place")
            .input(&json!({ "namespace": req.namespace, "region": req.region }))
            .call()?;
        // `create-record` is flaky on purpose: its first attempts fail.
        let record: String = ctx
            .activity("cloud/create-record")
            .input(&json!({ "namespace": req.namespace, "cell": cell }))
            .retry(quick_retries())
            .call()?;
        let mut cert: Cert = ctx
            .activity("cloud/request-cert")
            .input(&json!({ "namespace": req.namespace, "delay_ms": req.cert_delay_ms }))
            .call()?;
        let mut polls = 0;
        while !cert.ready {
            ctx.sleep(Duration::from_millis(req.poll_ms))?;
            polls += 1;
            cert = ctx.activity("cloud/cert-status").input(&cert.id).call()?;
        }
        ctx.log(LogLevel::Info, format!("certificate {} issued", cert.id));
        let dns: String = ctx
            .activity("cloud/publish-dns")
            .input(&json!({ "namespace": req.namespace, "cell": cell }))
            .call()?;
        let connectivity: Value = ctx
            .activity("cloud/check-connectivity")
            .input(&dns)
            .retry(quick_retries())
            .timeout(Duration::from_secs(10))
            .call()?;
        Ok(Provisioned {
            namespace: req.namespace,
            cell,
            record,
            certificate: cert.id,
            dns,
            polls,
            connectivity,
        })
    }
}

weft_sdk::workflow!(Provision);
