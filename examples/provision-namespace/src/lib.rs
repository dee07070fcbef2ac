//! Provision a tenant namespace in the simulated cloud: place it in the
//! least-loaded cell of its region, create its record and roles, get a
//! certificate issued, publish DNS, route ingress, then probe its HTTP and
//! gRPC endpoints — all inside the run's deadline (its execution timeout,
//! 30 minutes in production). Waiting is retrying: every step retries until
//! the deadline, so there is no retry loop here. On the deadline, page.
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use weft_sdk::{Context, Error, RetryPolicy, Workflow};

#[derive(Deserialize)]
struct Request {
    namespace: String,
    region: String,
    /// The cloud's base URL.
    cloud: String,
    #[serde(default = "default_roles")]
    roles: Vec<String>,
    /// First pause between attempts of a waiting step, in ms.
    #[serde(default = "default_poll")]
    poll_ms: u64,
}

fn default_roles() -> Vec<String> {
    vec!["admin".into(), "reader".into()]
}

fn default_poll() -> u64 {
    1000
}

#[derive(Deserialize)]
struct Cell {
    name: String,
    capacity: u32,
    load: u32,
}

struct Provision;

impl Provision {
    fn steps(ctx: &Context, req: &Request) -> Result<Value, Error> {
        // Unlimited attempts: each step retries until the run's deadline.
        let until_deadline = RetryPolicy::default()
            .initial_interval(Duration::from_millis(req.poll_ms))
            .backoff(1.5)
            .max_interval(Duration::from_secs(10))
            .non_retryable("rejected");
        let step = |name: &str, mut input: Value| {
            input["cloud"] = json!(req.cloud);
            ctx.activity(format!("sim/{name}"))
                .input(&input)
                .retry(until_deadline.clone())
        };
        let ns = &req.namespace;
        ctx.set_status(&json!({ "namespace": ns, "step": "placing" }));
        let cells: Vec<Cell> = step("cells", json!({ "region": req.region })).call()?;
        let cell = cells
            .iter()
            .min_by_key(|c| (c.load * 1000 / c.capacity.max(1), c.name.clone()))
            .ok_or_else(|| {
                Error::new("no-capacity", format!("region {} has no cells", req.region))
            })?
            .name
            .clone();

        ctx.set_status(&json!({ "namespace": ns, "cell": cell, "step": "record" }));
        step(
            "create-record",
            json!({ "namespace": ns, "region": req.region, "cell": cell }),
        )
        .call::<Value>()?;
        step(
            "create-roles",
            json!({ "namespace": ns, "roles": req.roles }),
        )
        .call::<Value>()?;

        ctx.set_status(&json!({ "namespace": ns, "cell": cell, "step": "certificate" }));
        let cert: Value = step("request-cert", json!({ "namespace": ns })).call()?;
        let cert_id: String = step("cert-issued", json!({ "id": cert["id"] })).call()?;

        ctx.set_status(&json!({ "namespace": ns, "cell": cell, "step": "dns" }));
        let dns = format!("{ns}.{}.sim.test", req.region);
        step("publish-dns", json!({ "name": dns, "target": cell })).call::<Value>()?;
        step("dns-visible", json!({ "name": dns })).call::<String>()?;
        step(
            "configure-ingress",
            json!({ "namespace": ns, "cell": cell }),
        )
        .call::<Value>()?;

        ctx.set_status(&json!({ "namespace": ns, "cell": cell, "step": "probing" }));
        let http = step("probe", json!({ "namespace": ns, "kind": "http" })).start::<Value>()?;
        let grpc = step("probe", json!({ "namespace": ns, "kind": "grpc" })).start::<Value>()?;
        let mut probes = ctx.join_all(vec![http, grpc]).into_iter();
        let (http, grpc) = (probes.next().unwrap()?, probes.next().unwrap()?);
        ctx.set_status(&json!({ "namespace": ns, "cell": cell, "step": "done" }));
        Ok(json!({
            "namespace": ns,
            "cell": cell,
            "certificate": cert_id,
            "dns": dns,
            "http": http,
            "grpc": grpc,
        }))
    }
}

impl Workflow for Provision {
    type Input = Request;
    type Output = Value;

    fn run(ctx: &Context, req: Request) -> Result<Value, Error> {
        match Provision::steps(ctx, &req) {
            Err(e) if e.is_timed_out() => {
                let text = format!(
                    "provisioning {} in {} missed its deadline: {}",
                    req.namespace, req.region, e.message
                );
                ctx.activity("sim/post")
                    .input(&json!({ "cloud": req.cloud, "kind": "page", "channel": "oncall", "text": text }))
                    .call::<Value>()?;
                Err(e)
            }
            other => other,
        }
    }
}

weft_sdk::workflow!(Provision);
