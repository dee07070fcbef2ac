//! simcloud: a small simulated cloud that weft's control-plane examples
//! talk to over real HTTP. Cells per region with capacity and service
//! versions, namespace records and roles, a certificate authority and DNS
//! that take their time, ingress routes, endpoints that answer only once all
//! of that is in place, a canary per cell, and a chat/pager sink. Faults
//! (a failure rate, latency, failing canaries, dead regions) are injected
//! over `/admin`, which never fails.

mod state;

pub use state::{Cell, Faults, Message, Upgrade};

use axum::extract::{Path, Request, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use state::{Certificate, DnsRecord, Namespace, State, now_ms};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The whole cloud.
#[derive(Default)]
pub struct Cloud {
    state: Mutex<State>,
}

type Shared = Arc<Cloud>;
type Answer = Result<Json<Value>, (StatusCode, Json<Value>)>;

fn fail(status: StatusCode, message: impl Into<String>) -> (StatusCode, Json<Value>) {
    (status, Json(json!({ "error": message.into() })))
}

impl Cloud {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    pub fn set_faults(&self, faults: Faults) {
        self.with(|s| s.faults = faults);
    }

    pub fn add_cell(&self, name: &str, region: &str, capacity: u32, load: u32) {
        self.with(|s| {
            s.cells.insert(
                name.to_string(),
                Cell {
                    name: name.to_string(),
                    region: region.to_string(),
                    capacity,
                    load,
                    versions: ["frontend", "matching", "history", "worker"]
                        .iter()
                        .map(|svc| (svc.to_string(), "v1".to_string()))
                        .collect(),
                    state: Value::Null,
                },
            );
        });
    }

    pub fn messages(&self) -> Vec<Message> {
        self.with(|s| s.messages.clone())
    }

    pub fn upgrades(&self) -> Vec<Upgrade> {
        self.with(|s| s.upgrades.clone())
    }

    pub fn cells(&self) -> Vec<Cell> {
        self.with(|s| s.cells.values().cloned().collect())
    }

    /// (API calls served, failures injected).
    pub fn stats(&self) -> (u64, u64) {
        self.with(|s| (s.calls, s.injected_failures))
    }
}

/// Latency and injected failures, for the API (not `/admin`).
async fn faults(Extract(cloud): Extract<Shared>, req: Request, next: Next) -> Response {
    let (latency, fails) = cloud.with(|s| {
        s.calls += 1;
        let fails = s.roll() < s.faults.failure_rate;
        if fails {
            s.injected_failures += 1;
        }
        (s.faults.latency_ms, fails)
    });
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    if fails {
        return fail(StatusCode::SERVICE_UNAVAILABLE, "injected failure").into_response();
    }
    next.run(req).await
}

async fn cells_of(Extract(cloud): Extract<Shared>, Path(region): Path<String>) -> Answer {
    let cells: Vec<Cell> = cloud.with(|s| {
        s.cells
            .values()
            .filter(|c| c.region == region)
            .cloned()
            .collect()
    });
    Ok(Json(json!(cells)))
}

#[derive(Deserialize)]
struct NewNamespace {
    region: String,
    cell: String,
}

async fn put_namespace(
    Extract(cloud): Extract<Shared>,
    Path(name): Path<String>,
    Json(body): Json<NewNamespace>,
) -> Answer {
    cloud.with(|s| {
        if let Some(ns) = s.namespaces.get(&name) {
            return Ok(Json(json!(ns)));
        }
        let cell = s
            .cells
            .get_mut(&body.cell)
            .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("no cell {}", body.cell)))?;
        cell.load += 1;
        let ns = Namespace {
            name: name.clone(),
            region: body.region,
            cell: body.cell,
            roles: Vec::new(),
            routed: false,
        };
        s.namespaces.insert(name, ns.clone());
        Ok(Json(json!(ns)))
    })
}

fn namespace_mut<'a>(
    s: &'a mut State,
    name: &str,
) -> Result<&'a mut Namespace, (StatusCode, Json<Value>)> {
    s.namespaces
        .get_mut(name)
        .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("no namespace {name}")))
}

#[derive(Deserialize)]
struct Roles {
    roles: Vec<String>,
}

async fn put_roles(
    Extract(cloud): Extract<Shared>,
    Path(name): Path<String>,
    Json(body): Json<Roles>,
) -> Answer {
    cloud.with(|s| {
        let ns = namespace_mut(s, &name)?;
        ns.roles = body.roles;
        Ok(Json(json!(ns)))
    })
}

#[derive(Deserialize)]
struct CertRequest {
    namespace: String,
}

async fn request_cert(Extract(cloud): Extract<Shared>, Json(body): Json<CertRequest>) -> Answer {
    cloud.with(|s| {
        namespace_mut(s, &body.namespace)?;
        if let Some(cert) = s.certs.values().find(|c| c.namespace == body.namespace) {
            return Ok(Json(json!(cert)));
        }
        let cert = Certificate {
            id: format!("cert-{}-{}", body.namespace, s.certs.len() + 1),
            namespace: body.namespace,
            ready_at_ms: now_ms() + s.faults.cert_delay_ms as i64,
        };
        s.certs.insert(cert.id.clone(), cert.clone());
        Ok(Json(json!(cert)))
    })
}

async fn cert_status(Extract(cloud): Extract<Shared>, Path(id): Path<String>) -> Answer {
    cloud.with(|s| {
        let cert = s
            .certs
            .get(&id)
            .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("no certificate {id}")))?;
        Ok(Json(
            json!({ "id": id, "issued": cert.ready_at_ms <= now_ms() }),
        ))
    })
}

#[derive(Deserialize)]
struct DnsBody {
    target: String,
}

async fn put_dns(
    Extract(cloud): Extract<Shared>,
    Path(name): Path<String>,
    Json(body): Json<DnsBody>,
) -> Answer {
    cloud.with(|s| {
        let delay = s.faults.dns_delay_ms as i64;
        let record = s
            .dns
            .entry(name.clone())
            .and_modify(|r| {
                if r.target != body.target {
                    r.target = body.target.clone();
                    r.visible_at_ms = now_ms() + delay;
                }
            })
            .or_insert_with(|| DnsRecord {
                name,
                target: body.target,
                visible_at_ms: now_ms() + delay,
            });
        Ok(Json(json!(record)))
    })
}

async fn dns_status(Extract(cloud): Extract<Shared>, Path(name): Path<String>) -> Answer {
    cloud.with(|s| {
        let visible = s
            .dns
            .get(&name)
            .is_some_and(|r| r.visible_at_ms <= now_ms());
        Ok(Json(json!({ "name": name, "visible": visible })))
    })
}

#[derive(Deserialize)]
struct Route {
    cell: String,
}

async fn put_ingress(
    Extract(cloud): Extract<Shared>,
    Path(name): Path<String>,
    Json(body): Json<Route>,
) -> Answer {
    cloud.with(|s| {
        let ns = namespace_mut(s, &name)?;
        if ns.cell != body.cell {
            return Err(fail(
                StatusCode::CONFLICT,
                format!("namespace {name} lives in {}, not {}", ns.cell, body.cell),
            ));
        }
        ns.routed = true;
        Ok(Json(json!(ns)))
    })
}

async fn endpoint(
    Extract(cloud): Extract<Shared>,
    Path((namespace, kind)): Path<(String, String)>,
) -> Answer {
    cloud.with(|s| match s.endpoint_ready(&namespace) {
        Ok(()) if kind == "grpc" => Ok(Json(json!({ "status": "SERVING" }))),
        Ok(()) => Ok(Json(json!({ "http": 200, "namespace": namespace }))),
        Err(why) => Err(fail(StatusCode::SERVICE_UNAVAILABLE, why)),
    })
}

fn cell_mut<'a>(s: &'a mut State, name: &str) -> Result<&'a mut Cell, (StatusCode, Json<Value>)> {
    s.cells
        .get_mut(name)
        .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("no cell {name}")))
}

async fn get_cell(Extract(cloud): Extract<Shared>, Path(name): Path<String>) -> Answer {
    cloud.with(|s| Ok(Json(json!(cell_mut(s, &name)?))))
}

#[derive(Deserialize)]
struct Version {
    version: String,
}

/// Idempotent: moving a service to the version it runs is a no-op.
async fn upgrade_service(
    Extract(cloud): Extract<Shared>,
    Path((name, service)): Path<(String, String)>,
    Json(body): Json<Version>,
) -> Answer {
    cloud.with(|s| {
        let cell = cell_mut(s, &name)?;
        let from = cell.versions.get(&service).cloned().unwrap_or_default();
        if from == body.version {
            return Ok(Json(
                json!({ "cell": name, "service": service, "version": from, "changed": false }),
            ));
        }
        cell.versions.insert(service.clone(), body.version.clone());
        s.upgrades.push(Upgrade {
            cell: name.clone(),
            service: service.clone(),
            from,
            to: body.version.clone(),
            at_ms: now_ms(),
        });
        Ok(Json(
            json!({ "cell": name, "service": service, "version": body.version, "changed": true }),
        ))
    })
}

async fn canary(Extract(cloud): Extract<Shared>, Path(name): Path<String>) -> Answer {
    cloud.with(|s| {
        cell_mut(s, &name)?;
        let ok = !s.faults.failing_canaries.contains(&name);
        Ok(Json(json!({ "cell": name, "ok": ok })))
    })
}

async fn get_state(Extract(cloud): Extract<Shared>, Path(name): Path<String>) -> Answer {
    cloud.with(|s| Ok(Json(cell_mut(s, &name)?.state.clone())))
}

async fn put_state(
    Extract(cloud): Extract<Shared>,
    Path(name): Path<String>,
    Json(state): Json<Value>,
) -> Answer {
    cloud.with(|s| {
        cell_mut(s, &name)?.state = state.clone();
        Ok(Json(state))
    })
}

/// Chat and pager messages; an `Idempotency-Key` makes a retry a no-op.
async fn post_message(
    Extract(cloud): Extract<Shared>,
    headers: HeaderMap,
    Json(mut message): Json<Message>,
) -> Answer {
    cloud.with(|s| {
        if let Some(key) = headers.get("idempotency-key").and_then(|k| k.to_str().ok())
            && !s.applied.insert(format!("message:{key}"))
        {
            return Ok(Json(json!({ "duplicate": true })));
        }
        message.at_ms = now_ms();
        s.messages.push(message);
        Ok(Json(json!({ "posted": s.messages.len() })))
    })
}

async fn admin_faults(Extract(cloud): Extract<Shared>, Json(faults): Json<Faults>) -> Json<Faults> {
    cloud.set_faults(faults.clone());
    Json(faults)
}

#[derive(Deserialize)]
struct SeedCell {
    name: String,
    region: String,
    #[serde(default = "default_capacity")]
    capacity: u32,
    #[serde(default)]
    load: u32,
}

fn default_capacity() -> u32 {
    100
}

async fn admin_cells(
    Extract(cloud): Extract<Shared>,
    Json(cells): Json<Vec<SeedCell>>,
) -> Json<Value> {
    for c in &cells {
        cloud.add_cell(&c.name, &c.region, c.capacity, c.load);
    }
    Json(json!(cloud.cells()))
}

async fn admin_state(Extract(cloud): Extract<Shared>) -> Json<Value> {
    let (calls, injected) = cloud.stats();
    cloud.with(|s| {
        Json(json!({
            "faults": s.faults,
            "cells": s.cells.values().collect::<Vec<_>>(),
            "namespaces": s.namespaces.values().collect::<Vec<_>>(),
            "messages": s.messages,
            "upgrades": s.upgrades,
            "calls": calls,
            "injected_failures": injected,
        }))
    })
}

pub fn router(cloud: Shared) -> Router {
    let api = Router::new()
        .route("/regions/{region}/cells", get(cells_of))
        .route("/namespaces/{name}", put(put_namespace))
        .route("/namespaces/{name}/roles", put(put_roles))
        .route("/certificates", post(request_cert))
        .route("/certificates/{id}", get(cert_status))
        .route("/dns/{name}", put(put_dns).get(dns_status))
        .route("/ingress/{name}", put(put_ingress))
        .route("/endpoints/{name}/{kind}", get(endpoint))
        .route("/cells/{name}", get(get_cell))
        .route("/cells/{name}/services/{service}", put(upgrade_service))
        .route("/cells/{name}/canary", get(canary))
        .route("/cells/{name}/state", get(get_state).put(put_state))
        .route("/messages", post(post_message))
        .route_layer(middleware::from_fn_with_state(cloud.clone(), faults));
    let admin = Router::new()
        .route("/admin/faults", put(admin_faults))
        .route("/admin/cells", post(admin_cells))
        .route("/admin/state", get(admin_state));
    api.merge(admin).with_state(cloud)
}

/// Serve a new cloud on `addr` (port 0: any free port) in the background.
pub async fn start(addr: &str) -> std::io::Result<(SocketAddr, Shared)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let cloud = Shared::default();
    let app = router(cloud.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((local, cloud))
}
