//! The client commands of `weft`: thin wrappers over the HTTP API.

mod batch;
mod namespaces;
mod reset;
pub mod scaffold;
mod schedule;
mod update;

pub use batch::{BatchOptions, batch};
pub use namespaces::{NewToken, namespace, token_create, token_list, token_revoke};
pub use reset::{ResetOptions, reset};
pub use schedule::{ScheduleOptions, schedule};
pub use update::{UpdateOptions, update};

use crate::journal::Recorded;
use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use std::path::PathBuf;

pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// A client of `server`; over `https://` it trusts the system's CAs and
    /// `WEFT_CA_CERT`'s, and presents `WEFT_CLIENT_CERT`/`WEFT_CLIENT_KEY`
    /// if the server asks for a client certificate.
    pub fn new(server: &str) -> anyhow::Result<Self> {
        let base = if server.starts_with("http://") || server.starts_with("https://") {
            server.trim_end_matches('/').to_string()
        } else {
            format!("http://{}", server.trim_end_matches('/'))
        };
        // A token for servers that need one: `WEFT_TOKEN`.
        let mut headers = reqwest::header::HeaderMap::new();
        if let Ok(token) = std::env::var("WEFT_TOKEN")
            && let Ok(mut value) =
                format!("Bearer {}", token.trim()).parse::<reqwest::header::HeaderValue>()
        {
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let path = |var| std::env::var_os(var).map(PathBuf::from);
        let (cert, key) = (path("WEFT_CLIENT_CERT"), path("WEFT_CLIENT_KEY"));
        let identity = match (&cert, &key) {
            (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
            (None, None) => None,
            _ => bail!("WEFT_CLIENT_CERT and WEFT_CLIENT_KEY go together"),
        };
        let http = crate::tls::client(path("WEFT_CA_CERT").as_deref(), identity)?
            .default_headers(headers)
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Client { base, http })
    }

    async fn answer(&self, resp: reqwest::Response) -> anyhow::Result<Value> {
        let status = resp.status();
        let body: Value = resp
            .json()
            .await
            .with_context(|| format!("the server answered {status} without JSON"))?;
        if !status.is_success() {
            let code = body["error"]["code"].as_str().unwrap_or("error");
            let message = body["error"]["message"].as_str().unwrap_or("");
            bail!("{code}: {message} (HTTP {status})");
        }
        Ok(body)
    }

    fn unreachable(&self, e: reqwest::Error) -> anyhow::Error {
        anyhow::anyhow!(
            "cannot reach weft at {} ({e}); start it with `weft serve` or pass --server",
            self.base
        )
    }

    async fn send_get(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| self.unreachable(e))
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let resp = self.send_get(path).await?;
        self.answer(resp).await
    }

    /// A GET whose answer is text (`/metrics`).
    pub async fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let resp = self.send_get(path).await?;
        let status = resp.status();
        if !status.is_success() {
            bail!("GET {path}: HTTP {status}");
        }
        Ok(resp.text().await?)
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.post_keyed(path, body, None).await
    }

    /// POST with an `Idempotency-Key`, so a retry is safe.
    pub async fn post_keyed(
        &self,
        path: &str,
        body: &Value,
        key: Option<&str>,
    ) -> anyhow::Result<Value> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(key) = key {
            req = req.header("idempotency-key", key);
        }
        let resp = req.send().await.map_err(|e| self.unreachable(e))?;
        self.answer(resp).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        let resp = self
            .http
            .delete(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        self.answer(resp).await
    }

    pub async fn put_bytes(&self, path: &str, bytes: Vec<u8>) -> anyhow::Result<Value> {
        let resp = self
            .http
            .put(format!("{}{path}", self.base))
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        self.answer(resp).await
    }
}

pub struct DeployOptions {
    pub name: Option<String>,
    pub allow_http: Vec<String>,
    pub check: bool,
    pub upgrade_compatible: bool,
    pub dry_run: bool,
    pub namespace: Option<String>,
}

fn print_reports(reports: &Value) {
    for r in reports.as_array().into_iter().flatten() {
        let what = match r["verdict"].as_str() {
            Some(verdict) if r["forced"] == true && r["upgraded"] == true => {
                format!("forced: upgraded although the check found it {verdict}")
            }
            Some("compatible") if r["upgraded"] == true => "compatible, upgraded".to_string(),
            Some("compatible") => "compatible".to_string(),
            Some("diverged") => format!(
                "diverges: event {}: journal has {}, code asked for {}",
                r["divergence"]["seq"],
                cell(&r["divergence"]["journal"]),
                cell(&r["divergence"]["code"])
            ),
            _ => format!("cannot replay: {}", cell(&r["message"])),
        };
        out!(
            "  run {} (v{}): {what}",
            cell(&r["run_id"]),
            r["from_version"]
        );
    }
}

pub async fn deploy(client: &Client, file: &PathBuf, opts: DeployOptions) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let name = opts
        .name
        .unwrap_or_else(|| crate::server::name_from_path(file));
    let mut query = Vec::new();
    if !opts.allow_http.is_empty() {
        query.push(format!("allow_http={}", opts.allow_http.join(",")));
    }
    if opts.dry_run {
        query.push("dry_run=true".into());
    } else if opts.check || opts.upgrade_compatible {
        query.push("check=true".into());
    }
    if opts.upgrade_compatible {
        query.push("upgrade=compatible".into());
    }
    if let Some(ns) = &opts.namespace {
        query.push(format!("namespace={ns}"));
    }
    let mut path = format!("/v1/components/{name}");
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    let v = client.put_bytes(&path, bytes).await?;
    if opts.dry_run {
        out!("dry run of {name} ({}): open runs", cell(&v["digest"]));
        print_reports(&v["check"]);
        return Ok(());
    }
    out!(
        "{} {} v{} {}",
        v["kind"].as_str().unwrap_or("?"),
        v["name"].as_str().unwrap_or("?"),
        v["version"],
        v["digest"].as_str().unwrap_or("?")
    );
    if v["check"].is_array() {
        out!("open runs of {name}:");
        print_reports(&v["check"]);
    }
    Ok(())
}

pub struct StartOptions {
    pub workflow: String,
    pub input: Option<String>,
    pub workflow_id: Option<String>,
    pub wait: Option<f64>,
    pub timeout_ms: Option<u64>,
    pub id_conflict_policy: Option<String>,
    pub id_reuse_policy: Option<String>,
    pub namespace: Option<String>,
}

fn json_arg(flag: &str, text: Option<String>) -> anyhow::Result<Value> {
    match text {
        Some(text) => {
            serde_json::from_str(&text).with_context(|| format!("{flag} is not valid JSON"))
        }
        None => Ok(Value::Null),
    }
}

pub async fn start(client: &Client, opts: StartOptions) -> anyhow::Result<()> {
    let input = json_arg("--input", opts.input)?;
    let mut body = json!({ "workflow": opts.workflow, "input": input });
    if let Some(id) = opts.workflow_id {
        body["workflow_id"] = Value::String(id);
    }
    if let Some(ms) = opts.timeout_ms {
        body["execution_timeout_ms"] = json!(ms);
    }
    if let Some(policy) = opts.id_conflict_policy {
        body["id_conflict_policy"] = Value::String(policy);
    }
    if let Some(policy) = opts.id_reuse_policy {
        body["id_reuse_policy"] = Value::String(policy);
    }
    if let Some(namespace) = opts.namespace {
        body["namespace"] = Value::String(namespace);
    }
    let Some(wait) = opts.wait else {
        let started = client.post("/v1/runs", &body).await?;
        out!("{}", started["run_id"].as_str().unwrap_or_default());
        return Ok(());
    };
    // The start and its result in one request.
    let mut run = client.post(&format!("/v1/runs?wait={wait}"), &body).await?;
    let run_id = run["run_id"].as_str().unwrap_or_default().to_string();
    if let Some(fields) = run.as_object_mut() {
        fields.remove("created");
    }
    out!("{}", serde_json::to_string_pretty(&run)?);
    match run["status"].as_str() {
        Some("completed") => Ok(()),
        Some("running") => bail!("run {run_id} is still running after {wait}s"),
        Some(other) => bail!("run {run_id} ended {other}"),
        None => bail!("unexpected answer"),
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Which runs `weft runs` lists.
pub struct RunsFilter {
    pub status: Option<String>,
    pub workflow: Option<String>,
    pub query: Option<String>,
    pub namespace: Option<String>,
}

/// `text` as a URL query value.
fn url_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn runs(client: &Client, filter: RunsFilter, limit: u32) -> anyhow::Result<()> {
    let mut path = format!("/v1/runs?limit={limit}");
    for (name, value) in [
        ("namespace", filter.namespace),
        ("status", filter.status),
        ("workflow", filter.workflow),
        ("q", filter.query),
    ] {
        if let Some(value) = value {
            path.push_str(&format!("&{name}={}", url_encoded(&value)));
        }
    }
    let list = client.get(&path).await?;
    out!(
        "{:<38} {:<10} {:<20} {:<24}",
        "RUN",
        "STATUS",
        "WORKFLOW",
        "WORKFLOW ID"
    );
    for run in list["runs"].as_array().into_iter().flatten() {
        out!(
            "{:<38} {:<10} {:<20} {:<24}",
            cell(&run["run_id"]),
            cell(&run["status"]),
            format!("{} v{}", cell(&run["workflow"]), cell(&run["version"])),
            cell(&run["workflow_id"]),
        );
    }
    Ok(())
}

fn clock(at_ms: i64) -> String {
    let secs = at_ms.div_euclid(1000);
    let ms = at_ms.rem_euclid(1000);
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    format!("{h:02}:{m:02}:{s:02}.{ms:03}")
}

/// The journal as a readable timeline, one event a line.
pub fn timeline(run: &Value, events: &[Recorded]) -> String {
    let mut out = format!(
        "run {}  {} v{}  workflow id {}\nstatus {}\n",
        cell(&run["run_id"]),
        cell(&run["workflow"]),
        cell(&run["version"]),
        cell(&run["workflow_id"]),
        cell(&run["status"]),
    );
    if !run["output"].is_null() {
        out.push_str(&format!("output {}\n", run["output"]));
    }
    if !run["error"].is_null() {
        out.push_str(&error_lines(&run["error"]));
    }
    if !run["custom_status"].is_null() {
        out.push_str(&format!("state  {}\n", run["custom_status"]));
    }
    let start = events.first().map_or(0, |e| e.at_ms);
    out.push('\n');
    for e in events {
        out.push_str(&line(e, start));
        out.push('\n');
    }
    out
}

/// A run's error and each of its causes, a line each.
fn error_lines(error: &Value) -> String {
    let Ok(error) = serde_json::from_value::<crate::journal::ErrorInfo>(error.clone()) else {
        return format!("error  {error}\n");
    };
    let mut out = String::new();
    for (i, e) in error.chain().enumerate() {
        let lead = if i == 0 { "error " } else { "  caused by" };
        let timeout = e
            .timeout
            .map(|t| format!(" ({})", t.as_str()))
            .unwrap_or_default();
        out.push_str(&format!("{lead} {}{timeout}: {}\n", e.kind, e.message));
    }
    out
}

fn line(e: &Recorded, start: i64) -> String {
    format!(
        "{:>4}  {}  +{:>8.3}s  {}",
        e.seq,
        clock(e.at_ms),
        (e.at_ms - start) as f64 / 1000.0,
        e.event.summary()
    )
}

fn events_of(journal: &Value) -> anyhow::Result<Vec<Recorded>> {
    let export: crate::journal::Export = serde_json::from_value(journal.clone())
        .context("the server sent a journal this weft cannot read")?;
    Ok(export.events)
}

pub async fn show(
    client: &Client,
    run_id: &str,
    json_out: bool,
    follow: bool,
) -> anyhow::Result<()> {
    let run = client.get(&format!("/v1/runs/{run_id}")).await?;
    let journal = client.get(&format!("/v1/runs/{run_id}/journal")).await?;
    if json_out {
        out!("{}", serde_json::to_string_pretty(&journal)?);
        return Ok(());
    }
    let events = events_of(&journal)?;
    crate::emit(format_args!("{}", timeline(&run, &events)));
    if !follow {
        return Ok(());
    }
    let start = events.first().map_or(0, |e| e.at_ms);
    let mut seen = events.len();
    let mut status = run["status"].clone();
    while status == "running" {
        // Long-poll the run so a quiet run costs no busy loop.
        let run = client.get(&format!("/v1/runs/{run_id}?wait=1")).await?;
        let journal = client.get(&format!("/v1/runs/{run_id}/journal")).await?;
        for e in events_of(&journal)?.iter().skip(seen) {
            out!("{}", line(e, start));
            seen += 1;
        }
        status = run["status"].clone();
    }
    out!("status {}", cell(&status));
    Ok(())
}

pub async fn signal(
    client: &Client,
    target: &str,
    name: &str,
    payload: Option<String>,
    by_workflow_id: bool,
    idempotency_key: Option<&str>,
) -> anyhow::Result<()> {
    let payload = json_arg("--payload", payload)?;
    let path = if by_workflow_id {
        format!("/v1/workflow-ids/{target}/signals/{name}")
    } else {
        format!("/v1/runs/{target}/signals/{name}")
    };
    let answer = client.post_keyed(&path, &payload, idempotency_key).await?;
    let how = if answer["duplicate"] == true {
        " (already, for this idempotency key)"
    } else {
        ""
    };
    out!(
        "signal {} delivered to run {}{how}",
        answer["signal_id"],
        cell(&answer["run_id"])
    );
    Ok(())
}

pub async fn upgrade(
    client: &Client,
    run_id: Option<String>,
    workflow: Option<String>,
    to: &str,
    from: Option<u32>,
    force: bool,
) -> anyhow::Result<()> {
    let to: Value = to.parse::<u64>().map(Value::from).unwrap_or(json!(to));
    match (run_id, workflow) {
        (Some(run_id), None) => {
            let body = json!({ "version": to, "force": force });
            let r = client
                .post(&format!("/v1/runs/{run_id}/upgrade"), &body)
                .await?;
            if r["upgraded"] == true && r["forced"] == true && r["verdict"] != "compatible" {
                out!(
                    "run {run_id} upgraded from v{} to v{} by force; the check found it {}",
                    r["from_version"],
                    r["to_version"],
                    r["verdict"]
                );
            } else if r["upgraded"] == true {
                out!(
                    "run {run_id} upgraded from v{} to v{}",
                    r["from_version"],
                    r["to_version"]
                );
            } else {
                out!("run {run_id} is already on v{}", r["to_version"]);
            }
            Ok(())
        }
        (None, Some(workflow)) => {
            let body = json!({ "to": to, "from": from, "force": force });
            let r = client
                .post(&format!("/v1/workflows/{workflow}/upgrade"), &body)
                .await?;
            out!("open runs of {workflow}:");
            print_reports(&r["runs"]);
            Ok(())
        }
        _ => bail!("give a run id or --workflow NAME (not both)"),
    }
}

pub async fn versions(client: &Client, name: &str) -> anyhow::Result<()> {
    let w = client.get(&format!("/v1/workflows/{name}")).await?;
    out!("{:<8} {:<66} {:>9}", "VERSION", "DIGEST", "OPEN RUNS");
    for v in w["versions"].as_array().into_iter().flatten() {
        out!(
            "{:<8} {:<66} {:>9}",
            cell(&v["version"]),
            cell(&v["digest"]),
            cell(&v["open_runs"])
        );
    }
    Ok(())
}

pub async fn terminate(
    client: &Client,
    run_id: &str,
    reason: Option<String>,
) -> anyhow::Result<()> {
    let body = json!({ "reason": reason });
    let run = client
        .post(&format!("/v1/runs/{run_id}/terminate"), &body)
        .await?;
    out!("run {run_id} is {}", cell(&run["status"]));
    Ok(())
}

/// `weft pause RUN` / `weft unpause RUN`.
pub async fn pause(
    client: &Client,
    run_id: &str,
    paused: bool,
    reason: Option<String>,
) -> anyhow::Result<()> {
    let verb = if paused { "pause" } else { "unpause" };
    let body = json!({ "reason": reason });
    let run = client
        .post(&format!("/v1/runs/{run_id}/{verb}"), &body)
        .await?;
    let state = if run["paused"] == true {
        "paused"
    } else {
        "not paused"
    };
    out!("run {run_id} is {} and {state}", cell(&run["status"]));
    Ok(())
}

pub async fn cancel(client: &Client, run_id: &str) -> anyhow::Result<()> {
    let run = client
        .post(&format!("/v1/runs/{run_id}/cancel"), &Value::Null)
        .await?;
    out!(
        "cancellation requested; run {run_id} is {}",
        cell(&run["status"])
    );
    Ok(())
}
