//! Per-namespace limits, each crossed over real HTTP: open runs and the
//! start rate (429, with `Retry-After` for the rate), payload size (413),
//! journal events (the run fails `journal-limit`, naming continue-as-new);
//! a namespace without limits beside it is unaffected.

use crate::support::Server;
use serde_json::{Value, json};

async fn namespace(server: &Server, name: &str, limits: Value) {
    let (status, body) = server
        .post("/v1/namespaces", &json!({ "name": name, "limits": limits }))
        .await;
    assert_eq!(status, 201, "{body}");
    for (component, guest) in [("entity", "entity"), ("steps", "steps"), ("step", "step")] {
        let path = format!("/v1/components/{component}?namespace={name}");
        let (status, body) = server.put(&path, crate::support::wasm(guest)).await;
        assert_eq!(status, 201, "{body}");
    }
}

async fn start(server: &Server, ns: &str, workflow: &str, input: Value) -> (u16, Value) {
    let body = json!({ "workflow": workflow, "input": input, "namespace": ns });
    server.post("/v1/runs", &body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn each_namespace_limit_is_enforced_and_the_others_are_unaffected() {
    let server = Server::start(&["--resident-timer-ms", "100"]);
    namespace(&server, "free", json!({})).await;
    namespace(
        &server,
        "tight",
        json!({ "max_open_runs": 2, "max_payload_bytes": 100, "max_journal_events": 12 }),
    )
    .await;
    namespace(
        &server,
        "rate",
        json!({ "starts_per_second": 0.5, "start_burst": 2 }),
    )
    .await;

    // Open runs: the third waiting entity is refused in `tight` only.
    let entity = json!({ "expect": 1 });
    let mut open = Vec::new();
    for _ in 0..2 {
        let (status, run) = start(&server, "tight", "entity", entity.clone()).await;
        assert_eq!(status, 201, "{run}");
        open.push(run["run_id"].as_str().unwrap().to_string());
    }
    let (status, body) = start(&server, "tight", "entity", entity.clone()).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_open_runs 2"),
        "{body}"
    );
    for _ in 0..3 {
        assert_eq!(
            start(&server, "free", "entity", entity.clone()).await.0,
            201
        );
    }

    // Payloads: an input or a signal over 100 bytes.
    let big = json!({ "expect": 1, "pad": "x".repeat(200) });
    let (status, body) = start(&server, "tight", "entity", big.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("payload_too_large")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_payload_bytes"),
        "{body}"
    );
    let (status, body) = server
        .post(&format!("/v1/runs/{}/signals/item", open[0]), &big)
        .await;
    assert_eq!(status, 413, "{body}");
    // A small signal ends one run, which frees a place.
    let (status, _) = server
        .post(&format!("/v1/runs/{}/signals/item", open[0]), &json!(1))
        .await;
    assert_eq!(status, 202);
    assert_eq!(server.wait(&open[0], 30).await["status"], "completed");
    assert_eq!(start(&server, "free", "entity", big).await.0, 201);

    // Journal events: 20 sequential activities need 42 events; `tight`
    // allows 12, so the run fails naming continue-as-new. In `free` it
    // completes.
    let (_, run) = start(&server, "tight", "steps", json!(20)).await;
    let failed = server.wait(run["run_id"].as_str().unwrap(), 30).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"]["kind"], "journal-limit", "{failed}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("continue as new"),
        "{failed}"
    );
    let (_, run) = start(&server, "free", "steps", json!(20)).await;
    assert_eq!(
        server.wait(run["run_id"].as_str().unwrap(), 30).await["output"],
        20
    );

    // The start rate: a burst of 2, then 429 with Retry-After.
    for _ in 0..2 {
        assert_eq!(start(&server, "rate", "steps", json!(1)).await.0, 201);
    }
    let resp = server
        .http
        .post(server.url("/v1/runs"))
        .json(&json!({ "workflow": "steps", "input": 1, "namespace": "rate" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert_eq!(start(&server, "free", "steps", json!(1)).await.0, 201);

    // Limits change at once: `tight` may hold three open runs now.
    let resp = server
        .http
        .patch(server.url("/v1/namespaces/tight"))
        .json(&json!({ "limits": { "max_open_runs": 3 } }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        start(&server, "tight", "entity", entity.clone()).await.0,
        201
    );
    assert_eq!(start(&server, "tight", "entity", entity).await.0, 201);
}

/// How long a completed run took, from its start to its end.
fn took_ms(run: &Value) -> i64 {
    run["ended_at_ms"].as_i64().unwrap() - run["created_at_ms"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_activities_memory_and_cpu_per_namespace() {
    // Guest work through the per-namespace turns for the cores, too.
    let server = Server::start(&["--guest-cores", "2"]);
    let small =
        json!({ "max_concurrent_activities": 2, "max_memory_mb": 24, "spin_limit_ms": 300 });
    for (name, limits) in [("free", json!({})), ("small", small)] {
        let (status, body) = server
            .post("/v1/namespaces", &json!({ "name": name, "limits": limits }))
            .await;
        assert_eq!(status, 201, "{body}");
        for guest in ["fanout", "effects", "misbehave"] {
            let path = format!("/v1/components/{guest}?namespace={name}");
            let (status, body) = server.put(&path, crate::support::wasm(guest)).await;
            assert_eq!(status, 201, "{body}");
        }
    }
    let (status, body) = server
        .post(
            "/v1/namespaces",
            &json!({ "name": "zero", "limits": { "max_memory_mb": 0 } }),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    // Six 400 ms activities at once: `small` runs two at a time, so its
    // fan-out takes three rounds; `free`'s, started beside it, one.
    let fan = json!({ "n": 6, "base_ms": 400 });
    let (_, limited) = start(&server, "small", "fanout", fan.clone()).await;
    let (_, unlimited) = start(&server, "free", "fanout", fan).await;
    let limited = server.wait(limited["run_id"].as_str().unwrap(), 60).await;
    let unlimited = server.wait(unlimited["run_id"].as_str().unwrap(), 60).await;
    assert_eq!(
        (limited["output"].clone(), unlimited["output"].clone()),
        (json!(21), json!(21))
    );
    assert!(
        took_ms(&limited) >= 1200,
        "two at a time: {} ms",
        took_ms(&limited)
    );
    assert!(
        took_ms(&unlimited) < 1200,
        "`free` was held to `small`'s limit: {} ms",
        took_ms(&unlimited)
    );

    // 48 MiB: past `small`'s 24 MiB (the run fails `memory-limit`), well
    // within the server's 256 MiB for `free`.
    let eat = json!({ "do": "eat", "mib": 48 });
    let (_, run) = start(&server, "small", "misbehave", eat.clone()).await;
    let failed = server.wait(run["run_id"].as_str().unwrap(), 60).await;
    assert_eq!(failed["error"]["kind"], "memory-limit", "{failed}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("24 MiB"),
        "{failed}"
    );
    let (_, run) = start(&server, "free", "misbehave", eat).await;
    assert_eq!(
        server.wait(run["run_id"].as_str().unwrap(), 60).await["output"],
        48
    );

    // A spinning workflow is stopped after `small`'s 300 ms, not the
    // server's 10 s.
    let (_, run) = start(&server, "small", "misbehave", json!({ "do": "spin" })).await;
    let failed = server.wait(run["run_id"].as_str().unwrap(), 60).await;
    assert_eq!(failed["error"]["kind"], "spin-limit", "{failed}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("300ms"),
        "{failed}"
    );
    assert!(
        took_ms(&failed) < 5_000,
        "stopped after {} ms",
        took_ms(&failed)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_child_past_the_open_runs_limit_is_refused_to_its_parent() {
    let server = Server::start(&[]);
    for (name, limits) in [("one", json!({ "max_open_runs": 1 })), ("two", json!({}))] {
        let (status, body) = server
            .post("/v1/namespaces", &json!({ "name": name, "limits": limits }))
            .await;
        assert_eq!(status, 201, "{body}");
        for guest in ["parent", "sleeper", "effects"] {
            let path = format!("/v1/components/{guest}?namespace={name}");
            let (status, body) = server.put(&path, crate::support::wasm(guest)).await;
            assert_eq!(status, 201, "{body}");
        }
    }
    // The parent is `one`'s one open run: its child would be a second.
    let (status, run) = start(
        &server,
        "one",
        "parent",
        json!({ "tag": "t", "sleep_ms": 10 }),
    )
    .await;
    assert_eq!(status, 201, "{run}");
    let ended = server.wait(run["run_id"].as_str().unwrap(), 30).await;
    assert_eq!(ended["status"], "failed", "{ended}");
    let error = ended["error"].to_string();
    assert!(
        error.contains("quota-exceeded") && error.contains("max_open_runs 1"),
        "{ended}"
    );
    let (_, run) = start(
        &server,
        "two",
        "parent",
        json!({ "tag": "t", "sleep_ms": 10 }),
    )
    .await;
    let ended = server.wait(run["run_id"].as_str().unwrap(), 30).await;
    assert_eq!(ended["status"], "completed", "{ended}");
}
