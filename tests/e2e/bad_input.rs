//! Bad input gets a clear 4xx, misbehaving guests fail cleanly, and the
//! server keeps serving other runs meanwhile.

use crate::support::{Server, wasm};
use serde_json::{Value, json};

fn error_of(status: u16, body: &Value, want_status: u16, want_code: &str) -> String {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    body["error"]["message"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_clear_errors_and_the_server_keeps_serving() {
    let server = Server::start(&["--resident-timer-ms", "100"]);
    server.deploy("effects", "effects").await;
    server.deploy("sleeper", "sleeper").await;
    // A run in progress throughout.
    let run_id = server
        .start_run("sleeper", json!({ "tag": "meanwhile", "sleep_ms": 1500 }))
        .await;

    let (s, b) = server
        .put("/v1/components/junk", b"this is not wasm at all".to_vec())
        .await;
    let m = error_of(s, &b, 400, "invalid_component");
    assert!(m.contains("not a WebAssembly binary"), "{m}");

    let core = b"\0asm\x01\0\0\0".to_vec();
    let (s, b) = server.put("/v1/components/core", core).await;
    let m = error_of(s, &b, 400, "invalid_component");
    assert!(
        m.contains("core WebAssembly module, not a component"),
        "{m}"
    );

    let mut truncated = wasm("hello");
    truncated.truncate(truncated.len() / 2);
    let (s, b) = server.put("/v1/components/truncated", truncated).await;
    let m = error_of(s, &b, 400, "invalid_component");
    assert!(m.starts_with("invalid component"), "{m}");

    let (s, b) = server.put("/v1/components/command", wasm("not-weft")).await;
    let m = error_of(s, &b, 422, "wrong_world");
    assert!(m.contains("exports wasi:cli/run"), "{m}");
    assert!(m.contains("`run`") && m.contains("`invoke`"), "{m}");

    let (s, b) = server.put("/v1/components/netcall", wasm("netcall")).await;
    let m = error_of(s, &b, 422, "wrong_world");
    assert!(m.contains("`wasi:sockets/"), "{m}");
    assert!(
        m.contains("no filesystem, network or environment access"),
        "{m}"
    );

    let (s, b) = server.put("/v1/components/sleeper", wasm("effects")).await;
    let m = error_of(s, &b, 409, "conflict");
    assert!(m.contains("deployed as a workflow"), "{m}");

    let (s, b) = server
        .put("/v1/components/bad%20name", wasm("effects"))
        .await;
    error_of(s, &b, 400, "bad_request");

    let resp = server
        .http
        .post(server.url("/v1/runs"))
        .body("{\"workflow\": \"sleeper\", ")
        .send()
        .await
        .unwrap();
    let s = resp.status().as_u16();
    let b: Value = resp.json().await.unwrap();
    let m = error_of(s, &b, 400, "malformed_json");
    assert!(m.contains("line 1"), "{m}");

    let (s, b) = server
        .post("/v1/runs", &json!({ "workflo": "sleeper" }))
        .await;
    error_of(s, &b, 400, "malformed_json");

    let big_input = "x".repeat(2 << 20);
    let (s, b) = server
        .post(
            "/v1/runs",
            &json!({ "workflow": "sleeper", "input": big_input }),
        )
        .await;
    error_of(s, &b, 413, "payload_too_large");

    let (s, b) = server
        .post("/v1/runs", &json!({ "workflow": "nope" }))
        .await;
    let m = error_of(s, &b, 404, "not_found");
    assert!(m.contains("no workflow named `nope`"), "{m}");
    let (s, b) = server
        .post("/v1/runs", &json!({ "workflow": "effects" }))
        .await;
    error_of(s, &b, 400, "bad_request");
    let (s, b) = server
        .post("/v1/runs", &json!({ "workflow": "sleeper", "version": 9 }))
        .await;
    let m = error_of(s, &b, 404, "not_found");
    assert!(m.contains("workflow `sleeper` has no version 9"), "{m}");
    let (s, b) = server
        .post("/v1/runs", &json!({ "workflow": "nope", "version": 1 }))
        .await;
    let m = error_of(s, &b, 404, "not_found");
    assert!(m.contains("no workflow named `nope`"), "{m}");

    let (s, b) = server.get("/v1/runs/no-such-run").await;
    error_of(s, &b, 404, "not_found");
    let (s, b) = server.get("/v1/runs/no-such-run/journal").await;
    error_of(s, &b, 404, "not_found");
    let (s, b) = server.get(&format!("/v1/runs/{run_id}?wait=abc")).await;
    error_of(s, &b, 400, "bad_request");
    let (s, b) = server.get("/v1/runs?status=sleeping").await;
    error_of(s, &b, 400, "bad_request");
    let (s, b) = server.get("/v1/components/nope").await;
    error_of(s, &b, 404, "not_found");
    let (s, b) = server.get("/v2/whatever").await;
    error_of(s, &b, 404, "not_found");
    let (s, b) = server.post("/v1/components", &json!({})).await;
    error_of(s, &b, 405, "method_not_allowed");

    // The server answers 413 before reading the whole body and closes the
    // connection: send it on a connection of its own.
    let resp = reqwest::Client::new()
        .put(server.url("/v1/components/huge"))
        .body(vec![0u8; 65 << 20])
        .send()
        .await
        .unwrap();
    let s = resp.status().as_u16();
    let b: Value = resp.json().await.unwrap_or(Value::Null);
    error_of(s, &b, 413, "payload_too_large");

    // None of that disturbed the run in progress.
    let run = server.wait(&run_id, 30).await;
    assert_eq!(run["status"], "completed", "{run}");
    let (s, health) = server.get("/healthz").await;
    assert_eq!((s, health["status"].as_str()), (200, Some("ok")));
    let metrics = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("weft_runs{namespace=\"default\",status=\"completed\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("weft_commits_total "), "{metrics}");
    let ui = reqwest::get(server.url("/")).await.unwrap();
    assert_eq!(ui.status().as_u16(), 200);
    assert!(
        ui.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(ui.text().await.unwrap().contains("/v1/runs/${id}/journal"));
}

#[tokio::test(flavor = "multi_thread")]
async fn spinning_hungry_and_trapping_guests_fail_cleanly() {
    let server = Server::start(&["--spin-limit-ms", "1000", "--memory-limit-mb", "48"]);
    server.deploy("greeter", "greeter").await;
    server.deploy("hello", "hello").await;
    server.deploy("misbehave", "misbehave").await;

    let spin = server.start_run("misbehave", json!({ "do": "spin" })).await;
    let hog = server.start_run("misbehave", json!({ "do": "hog" })).await;
    let panic = server
        .start_run("misbehave", json!({ "do": "panic" }))
        .await;
    let fail = server.start_run("misbehave", json!({ "do": "fail" })).await;
    // Healthy work alongside.
    let hello = server.start_run("hello", json!({ "name": "Ada" })).await;
    let run = server.wait(&hello, 30).await;
    assert_eq!(run["output"]["greeting"], "Hello, Ada!", "{run}");

    let run = server.wait(&spin, 30).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(run["error"]["kind"], "spin-limit");
    assert!(
        run["error"]["message"]
            .as_str()
            .unwrap()
            .contains("epoch interruption")
    );

    let run = server.wait(&hog, 30).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(run["error"]["kind"], "memory-limit");
    assert!(
        run["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit of 48 MiB"),
        "{run}"
    );

    let run = server.wait(&panic, 30).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(run["error"]["kind"], "trap");
    assert_eq!(
        run["error"]["message"],
        "the workflow panicked: the workflow panicked on purpose"
    );

    let run = server.wait(&fail, 30).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(
        run["error"],
        json!({ "kind": "refused", "message": "the workflow failed on purpose" })
    );
    let events = server.journal(&fail).await;
    assert_eq!(events.last().unwrap()["kind"], "failed");

    // Still healthy afterwards.
    let hello = server.start_run("hello", json!({ "name": "Bob" })).await;
    assert_eq!(server.wait(&hello, 30).await["status"], "completed");
}

/// `weft runs | head`: a client whose reader goes away ends quietly, with
/// success, instead of panicking on "Broken pipe".
#[tokio::test(flavor = "multi_thread")]
async fn a_client_whose_output_closes_early_exits_quietly() {
    let server = Server::start(&[]);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .arg("runs")
        .env("WEFT_SERVER", &server.addr)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader is gone before the client writes its first line.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
