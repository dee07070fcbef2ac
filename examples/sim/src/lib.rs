//! Activities against the simulated cloud (`simcloud/`), over HTTP. Every
//! input carries `cloud`, the cloud's base URL. Calls are idempotent on the
//! cloud's side (PUTs of desired state, messages deduplicated by the
//! activity's idempotency key), so a retried attempt is safe.
use serde::Deserialize;
use serde_json::{Value, json};
use weft_sdk::http::{self, Response};
use weft_sdk::{ActivityContext, Error};

/// A 503 (or an injected failure) is worth retrying; other refusals say why.
fn checked(response: Response) -> Result<Value, Error> {
    match response.status {
        200..=299 => response.json(),
        503 => Err(Error::new("unavailable", response.text())),
        status => Err(Error::new(
            "rejected",
            format!("HTTP {status}: {}", response.text()),
        )),
    }
}

fn get(cloud: &str, path: &str) -> Result<Value, Error> {
    checked(http::get(&format!("{cloud}{path}"))?)
}

fn put(cloud: &str, path: &str, body: &Value) -> Result<Value, Error> {
    checked(http::put_json(&format!("{cloud}{path}"), body)?)
}

#[derive(Deserialize)]
struct Region {
    cloud: String,
    region: String,
}

fn cells(_ctx: &ActivityContext, r: Region) -> Result<Value, Error> {
    get(&r.cloud, &format!("/regions/{}/cells", r.region))
}

#[derive(Deserialize)]
struct Record {
    cloud: String,
    namespace: String,
    region: String,
    cell: String,
}

fn create_record(_ctx: &ActivityContext, r: Record) -> Result<Value, Error> {
    let body = json!({ "region": r.region, "cell": r.cell });
    put(&r.cloud, &format!("/namespaces/{}", r.namespace), &body)
}

#[derive(Deserialize)]
struct Roles {
    cloud: String,
    namespace: String,
    roles: Vec<String>,
}

fn create_roles(_ctx: &ActivityContext, r: Roles) -> Result<Value, Error> {
    let body = json!({ "roles": r.roles });
    put(
        &r.cloud,
        &format!("/namespaces/{}/roles", r.namespace),
        &body,
    )
}

#[derive(Deserialize)]
struct Namespaced {
    cloud: String,
    namespace: String,
}

fn request_cert(_ctx: &ActivityContext, r: Namespaced) -> Result<Value, Error> {
    let url = format!("{}/certificates", r.cloud);
    checked(http::post_json(&url, &json!({ "namespace": r.namespace }))?)
}

#[derive(Deserialize)]
struct Id {
    cloud: String,
    id: String,
}

/// Fails (retryably, kind `not-ready`) until the certificate is issued.
fn cert_issued(_ctx: &ActivityContext, r: Id) -> Result<String, Error> {
    let status = get(&r.cloud, &format!("/certificates/{}", r.id))?;
    match status["issued"].as_bool() {
        Some(true) => Ok(r.id),
        _ => Err(Error::new(
            "not-ready",
            format!("certificate {} is not issued yet", r.id),
        )),
    }
}

#[derive(Deserialize)]
struct Dns {
    cloud: String,
    name: String,
    #[serde(default)]
    target: String,
}

fn publish_dns(_ctx: &ActivityContext, r: Dns) -> Result<Value, Error> {
    put(
        &r.cloud,
        &format!("/dns/{}", r.name),
        &json!({ "target": r.target }),
    )
}

/// Fails (retryably, kind `not-ready`) until the record has propagated.
fn dns_visible(_ctx: &ActivityContext, r: Dns) -> Result<String, Error> {
    let status = get(&r.cloud, &format!("/dns/{}", r.name))?;
    match status["visible"].as_bool() {
        Some(true) => Ok(r.name),
        _ => Err(Error::new(
            "not-ready",
            format!("{} has not propagated yet", r.name),
        )),
    }
}

#[derive(Deserialize)]
struct Ingress {
    cloud: String,
    namespace: String,
    cell: String,
}

fn configure_ingress(_ctx: &ActivityContext, r: Ingress) -> Result<Value, Error> {
    put(
        &r.cloud,
        &format!("/ingress/{}", r.namespace),
        &json!({ "cell": r.cell }),
    )
}

#[derive(Deserialize)]
struct Probe {
    cloud: String,
    namespace: String,
    /// `http` or `grpc`.
    kind: String,
}

fn probe(_ctx: &ActivityContext, r: Probe) -> Result<Value, Error> {
    get(&r.cloud, &format!("/endpoints/{}/{}", r.namespace, r.kind))
}

#[derive(Deserialize)]
struct Post {
    cloud: String,
    /// `chat` or `page`.
    kind: String,
    channel: String,
    text: String,
}

/// Post to chat or page; retries are deduplicated by the idempotency key.
fn post(ctx: &ActivityContext, r: Post) -> Result<Value, Error> {
    let body =
        serde_json::to_vec(&json!({ "kind": r.kind, "channel": r.channel, "text": r.text }))?;
    let headers = [
        ("content-type", "application/json"),
        ("idempotency-key", ctx.idempotency_key()),
    ];
    checked(http::request(
        "POST",
        &format!("{}/messages", r.cloud),
        &headers,
        Some(&body),
    )?)
}

#[derive(Deserialize)]
struct CellRef {
    cloud: String,
    cell: String,
    #[serde(default)]
    state: Value,
}

fn cell_state(_ctx: &ActivityContext, r: CellRef) -> Result<Value, Error> {
    get(&r.cloud, &format!("/cells/{}/state", r.cell))
}

fn save_cell_state(_ctx: &ActivityContext, r: CellRef) -> Result<Value, Error> {
    put(&r.cloud, &format!("/cells/{}/state", r.cell), &r.state)
}

fn canary(_ctx: &ActivityContext, r: CellRef) -> Result<Value, Error> {
    get(&r.cloud, &format!("/cells/{}/canary", r.cell))
}

#[derive(Deserialize)]
struct ServiceUpgrade {
    cloud: String,
    cell: String,
    service: String,
    version: String,
}

fn upgrade_service(_ctx: &ActivityContext, r: ServiceUpgrade) -> Result<Value, Error> {
    let path = format!("/cells/{}/services/{}", r.cell, r.service);
    put(&r.cloud, &path, &json!({ "version": r.version }))
}

weft_sdk::activities! {
    "cells" => cells,
    "create-record" => create_record,
    "create-roles" => create_roles,
    "request-cert" => request_cert,
    "cert-issued" => cert_issued,
    "publish-dns" => publish_dns,
    "dns-visible" => dns_visible,
    "configure-ingress" => configure_ingress,
    "probe" => probe,
    "post" => post,
    "cell-state" => cell_state,
    "save-cell-state" => save_cell_state,
    "canary" => canary,
    "upgrade-service" => upgrade_service,
}
