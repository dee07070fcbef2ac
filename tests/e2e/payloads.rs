//! Payloads come back exactly as sent — key order, `1.0`, integers past
//! 2^53 — through a run's input, a signal and the output; and
//! what a workflow or an activity produces is held to the namespace's
//! payload limit.

use crate::support::Server;
use serde_json::json;

/// Keys in no sorted order, a float written `1.0`, integers past 2^53.
const INPUT: &str = r#"{"zeta":9007199254740993,"alpha":1.0,"mid":{"y":[1.0,-2],"x":"é"}}"#;
const SIGNAL: &str = r#"{"b":1.0,"a":18446744073709551615}"#;

/// POST a raw JSON body; the answer as text and as a value.
async fn post_raw(server: &Server, path: &str, body: String) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(server.url(path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn text(server: &Server, path: &str) -> String {
    reqwest::get(server.url(path))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn payloads_round_trip_byte_for_byte() {
    let server = Server::start(&[]);
    server.deploy("effects", "effects").await;
    server.deploy("echo", "echo").await;
    let (s, run) = post_raw(
        &server,
        "/v1/runs",
        format!(r#"{{"workflow":"echo","input":{INPUT}}}"#),
    )
    .await;
    assert_eq!(s, 201, "{run}");
    let run_id = run["run_id"].as_str().unwrap().to_string();
    let (s, sent) = post_raw(
        &server,
        &format!("/v1/runs/{run_id}/signals/payload"),
        SIGNAL.to_string(),
    )
    .await;
    assert!(s < 300, "{sent}");
    assert_eq!(server.wait(&run_id, 30).await["status"], "completed");

    let shown = text(&server, &format!("/v1/runs/{run_id}")).await;
    assert!(shown.contains(&format!(r#""input":{INPUT}"#)), "{shown}");
    // The workflow hands back the payloads it was given, unparsed.
    let output = format!(r#""output":{{"input":{INPUT},"signal":{SIGNAL},"echoed":null}}"#);
    assert!(shown.contains(&output), "{shown}");
    let journal = text(&server, &format!("/v1/runs/{run_id}/journal")).await;
    assert!(
        journal.contains(&format!(r#""input":{INPUT}"#)),
        "{journal}"
    );
    assert!(
        journal.contains(&format!(r#""payload":{SIGNAL}"#)),
        "{journal}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_output_fails_with_the_payload_limit() {
    let server = Server::start(&[]);
    // 60 bytes: the input (37) fits; the run's output, which holds it, does
    // not.
    let (s, ns) = server
        .post(
            "/v1/namespaces",
            &json!({ "name": "small", "limits": { "max_payload_bytes": 60 } }),
        )
        .await;
    assert_eq!(s, 201, "{ns}");
    for guest in ["effects", "echo"] {
        let (s, v) = server
            .put(
                &format!("/v1/components/{guest}?namespace=small"),
                crate::support::wasm(guest),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let input = json!({ "zeta": 9007199254740993_u64, "alpha": 1.5 });
    let run_id = server.start_run_in("small", "echo", input).await;
    let (s, sent) = server
        .post(&format!("/v1/runs/{run_id}/signals/payload"), &json!(1))
        .await;
    assert!(s < 300, "{sent}");
    let ended = server.wait(&run_id, 30).await;
    assert_eq!(ended["status"], "failed", "{ended}");
    assert_eq!(ended["error"]["kind"], "payload-limit", "{ended}");
    let message = ended["error"]["message"].as_str().unwrap();
    assert!(message.contains("max_payload_bytes (60)"), "{message}");

    // An activity whose output is over the limit fails at once, not
    // retried: `effects/echo` answers 100 x's for a 24-byte input.
    let run_id = server
        .start_run_in("small", "echo", json!({ "pad": 100 }))
        .await;
    let ended = server.wait(&run_id, 30).await;
    assert_eq!(ended["status"], "failed", "{ended}");
    let events = server.journal(&run_id).await;
    let failed = crate::support::of_kind(&events, "activity-failed");
    assert_eq!(failed.len(), 1, "{events:?}");
    assert_eq!(failed[0]["attempts"], 1, "{events:?}");
    assert_eq!(failed[0]["failure"]["kind"], "payload-limit", "{events:?}");
    assert!(crate::support::of_kind(&events, "activity-attempt-failed").is_empty());
}
