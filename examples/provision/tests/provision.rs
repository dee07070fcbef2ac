//! Provisioning, tested in-process with weft-testing: the real component,
//! the cloud (`cloud/*`) mocked, on virtual time.

use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use weft_testing::{ErrorInfo, TestEnv, build_guest};

#[tokio::test(flavor = "multi_thread")]
async fn the_certificate_is_polled_until_it_is_issued() {
    let wasm = build_guest("provision").unwrap();
    let env = TestEnv::new().await.unwrap();
    env.deploy("provision", wasm).await.unwrap();
    // The certificate is ready at the fourth look; the record's first two
    // attempts fail (retried with backoff, in virtual time).
    let looks = Arc::new(AtomicU32::new(0));
    let seen = looks.clone();
    let cloud = env.mock_activity("cloud", move |call| match call.name.as_str() {
        "cloud/place" => Ok(json!("cell-7")),
        "cloud/create-record" if call.attempt <= 2 => {
            Err(ErrorInfo::new("unavailable", "the registry is busy"))
        }
        "cloud/create-record" => Ok(json!(format!(
            "rec-{}",
            call.input["namespace"].as_str().unwrap()
        ))),
        "cloud/request-cert" => Ok(json!({ "id": "cert-1", "ready": false })),
        "cloud/cert-status" => {
            let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(json!({ "id": call.input, "ready": n >= 4 }))
        }
        "cloud/publish-dns" => Ok(json!("acme.example.net")),
        "cloud/check-connectivity" => Ok(json!({ "ok": true })),
        other => panic!("unexpected activity {other}"),
    });
    let began = env.now_ms();
    let run = env
        .start(
            "provision",
            json!({ "namespace": "acme", "region": "eu", "poll_ms": 300_000 }),
        )
        .await
        .unwrap();
    let out = run.result().await.unwrap();
    assert_eq!(out["polls"], 4, "{out}");
    assert_eq!(out["record"], "rec-acme");
    assert_eq!(out["certificate"], "cert-1");
    assert_eq!(out["cell"], "cell-7");
    assert!(
        env.now_ms() - began >= 4 * 300_000,
        "four polls five minutes apart"
    );
    let names: Vec<String> = cloud.calls().into_iter().map(|c| c.name).collect();
    assert_eq!(
        names.iter().filter(|n| *n == "cloud/create-record").count(),
        3
    );
    assert_eq!(looks.load(Ordering::SeqCst), 4);
    assert_eq!(names.last().unwrap(), "cloud/check-connectivity");
}
