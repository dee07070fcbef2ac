//! OpenTelemetry traces over OTLP/HTTP (JSON), received by a collector in
//! the test: a run started with a `traceparent` continues that trace, with
//! the request, the run's execution, its host calls, the activity and its
//! attempt as parent and children, and the activity's outgoing HTTP request
//! carries the trace on.

use crate::support::Server;
use axum::http::HeaderMap;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[derive(Default)]
struct Received {
    spans: Vec<Value>,
    /// The `traceparent` header of each request activities made.
    outgoing: Vec<Option<String>>,
}

/// A collector (`POST /v1/traces`) and a service activities call
/// (`GET /hello`), on one loopback port.
async fn collector() -> (u16, Arc<Mutex<Received>>) {
    let received = Arc::new(Mutex::new(Received::default()));
    let (spans, calls) = (received.clone(), received.clone());
    let app = axum::Router::new()
        .route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| async move {
                let export: Value = serde_json::from_slice(&body).expect("OTLP JSON");
                let mut got = spans.lock().unwrap();
                for resource in export["resourceSpans"].as_array().into_iter().flatten() {
                    assert_eq!(
                        resource["resource"]["attributes"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .find(|a| a["key"] == "service.name")
                            .map(|a| a["value"]["stringValue"].clone()),
                        Some(json!("weft"))
                    );
                    for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                        got.spans
                            .extend(scope["spans"].as_array().into_iter().flatten().cloned());
                    }
                }
                "{}"
            }),
        )
        .route(
            "/hello",
            axum::routing::get(move |headers: HeaderMap| async move {
                let parent = headers
                    .get("traceparent")
                    .map(|v| v.to_str().unwrap().to_string());
                calls.lock().unwrap().outgoing.push(parent);
                "hi"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, received)
}

fn attribute<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_traced_start_continues_into_the_run_its_host_calls_and_its_activities() {
    let (port, received) = collector().await;
    let endpoint = format!("http://127.0.0.1:{port}");
    let server = Server::start(&["--otlp-endpoint", &endpoint]);
    let (s, v) = server
        .put(
            &format!("/v1/components/fetcher?allow_http=127.0.0.1:{port}"),
            crate::support::wasm("fetcher"),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    server.deploy("fetch", "fetch").await;

    let start = json!({ "workflow": "fetch", "input": [format!("{endpoint}/hello")] });
    let started: Value = reqwest::Client::new()
        .post(server.url("/v1/runs"))
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .json(&start)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run_id = started["run_id"].as_str().unwrap().to_string();
    let run = server.wait(&run_id, 30).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"][0]["status"], 200, "{run}");

    // The spans arrive in batches: wait for the attempt's.
    let deadline = Instant::now() + Duration::from_secs(30);
    let spans = loop {
        let spans: Vec<Value> = received
            .lock()
            .unwrap()
            .spans
            .iter()
            .filter(|s| s["traceId"] == TRACE_ID)
            .cloned()
            .collect();
        let named = |n: &str| spans.iter().any(|s| s["name"] == n);
        if ["request", "run", "host-call", "activity", "attempt"]
            .iter()
            .all(|n| named(n))
        {
            break spans;
        }
        assert!(Instant::now() < deadline, "spans so far: {spans:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let by_id = |id: &Value| spans.iter().find(|s| &s["spanId"] == id);
    let parent_of = |span: &Value| by_id(&span["parentSpanId"]).map(|p| p["name"].clone());

    let request = spans
        .iter()
        .find(|s| s["name"] == "request" && s["parentSpanId"] == CALLER_SPAN)
        .expect("the start request continues the caller's span");
    let runs: Vec<&Value> = spans.iter().filter(|s| s["name"] == "run").collect();
    assert!(!runs.is_empty());
    for run_span in &runs {
        // Every execution of the run, also one after an eviction, continues
        // the start request's span.
        assert_eq!(run_span["parentSpanId"], request["spanId"], "{run_span}");
        assert_eq!(
            attribute(run_span, "run_id"),
            Some(&json!({ "stringValue": run_id }))
        );
    }
    let calls: Vec<&Value> = spans.iter().filter(|s| s["name"] == "host-call").collect();
    for call in &calls {
        assert_eq!(parent_of(call), Some(json!("run")), "{call}");
    }
    // The activity is a child of the host call that scheduled it.
    let activity = spans.iter().find(|s| s["name"] == "activity").unwrap();
    let scheduled_by = by_id(&activity["parentSpanId"]).expect("the activity's parent");
    assert_eq!(scheduled_by["name"], "host-call", "{activity}");
    assert_eq!(
        attribute(scheduled_by, "kind"),
        Some(&json!({ "stringValue": "activity" }))
    );
    let attempt = spans.iter().find(|s| s["name"] == "attempt").unwrap();
    assert_eq!(attempt["parentSpanId"], activity["spanId"]);

    // The activity's HTTP request carried the trace, from its attempt.
    let outgoing = received.lock().unwrap().outgoing.clone();
    assert_eq!(outgoing.len(), 1, "{outgoing:?}");
    let traceparent = outgoing[0].as_deref().expect("a traceparent header");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts[1], TRACE_ID, "{outgoing:?}");
    assert_eq!(json!(parts[2]), attempt["spanId"], "{outgoing:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_endpoint_no_trace_context_is_sent_on() {
    let (port, received) = collector().await;
    let endpoint = format!("http://127.0.0.1:{port}");
    let server = Server::start(&[]);
    let path = format!("/v1/components/fetcher?allow_http=127.0.0.1:{port}");
    let (s, v) = server.put(&path, crate::support::wasm("fetcher")).await;
    assert_eq!(s, 201, "{v}");
    server.deploy("fetch", "fetch").await;
    let run_id = server
        .start_run("fetch", json!([format!("{endpoint}/hello")]))
        .await;
    assert_eq!(server.wait(&run_id, 30).await["status"], "completed");
    let received = received.lock().unwrap();
    assert!(received.spans.is_empty());
    assert_eq!(received.outgoing, [None], "one request, without a trace");
}
