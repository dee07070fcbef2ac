//! Structured failures over real HTTP: cause chains, the non-retryable
//! flag, heartbeat timeouts with resumption, and components built against
//! contract 0.1 running beside 0.2.

use crate::support::{Server, log_lines, of_kind, workspace};
use serde_json::{Value, json};

/// Kinds of an error's chain, outermost first.
fn kinds(error: &Value) -> Vec<String> {
    std::iter::successors(Some(error), |e| e.get("cause"))
        .map(|e| e["kind"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cause_chain_reads_back_from_http_four_levels_deep() {
    let server = Server::start(&[]);
    server.deploy("effects", "effects").await;
    server.deploy("failures", "failures").await;
    let run_id = server.start_run("failures", json!("parent")).await;
    let run = server.wait(&run_id, 60).await;
    assert_eq!(run["status"], "failed", "{run}");
    let error = &run["error"];
    // The parent matched the activity's kind through the child's failure.
    assert_eq!(
        kinds(error),
        [
            "provision-failed",
            "child-failed",
            "activity-failed",
            "quota-exceeded"
        ],
        "{error:#}"
    );
    let child = &error["cause"];
    assert!(
        child["message"]
            .as_str()
            .unwrap()
            .contains("child workflow `failures`")
    );
    let activity = &child["cause"];
    assert!(
        activity["message"]
            .as_str()
            .unwrap()
            .contains("activity `effects/fail` failed after 2 attempt(s)"),
        "{activity}"
    );
    assert_eq!(activity["cause"]["message"], "attempt 2 fails on purpose");

    // The child's run holds the lower levels as its own error, and the
    // parent's journal the child's failure as its completion.
    let journal = server.journal(&run_id).await;
    let child_id = of_kind(&journal, "child-started")[0]["child_run_id"].clone();
    let (_, child_run) = server
        .get(&format!("/v1/runs/{}", child_id.as_str().unwrap()))
        .await;
    assert_eq!(
        kinds(&child_run["error"]),
        ["activity-failed", "quota-exceeded"]
    );
    let failed = of_kind(&journal, "child-failed");
    assert_eq!(
        kinds(&failed[0]["failure"]),
        ["activity-failed", "quota-exceeded"],
        "{failed:?}"
    );
    let ended = journal.last().unwrap();
    assert_eq!(ended["kind"], "failed");
    assert_eq!(kinds(&ended["error"]).len(), 4, "{ended}");

    // `weft show` prints every level.
    let (ok, out, err) = server.cli(&["show", &run_id]);
    assert!(ok, "{err}");
    for kind in [
        "provision-failed",
        "child-failed",
        "activity-failed",
        "quota-exceeded",
    ] {
        assert!(out.contains(kind), "weft show lacks {kind}:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_retryable_application_error_stops_retries_after_one_attempt() {
    let server = Server::start(&[]);
    server.deploy("effects", "effects").await;
    server.deploy("failures", "failures").await;
    let run_id = server.start_run("failures", json!("non-retryable")).await;
    let run = server.wait(&run_id, 60).await;
    assert_eq!(run["status"], "completed", "{run}");
    // The policy allows unlimited attempts; the error's flag stops them.
    let error = &run["output"]["error"];
    assert_eq!(
        kinds(error),
        ["activity-failed", "invalid-region"],
        "{error}"
    );
    assert_eq!(error["cause"]["non_retryable"], true);
    let journal = server.journal(&run_id).await;
    assert_eq!(of_kind(&journal, "activity-failed")[0]["attempts"], 1);
    assert!(of_kind(&journal, "activity-attempt-failed").is_empty());
    assert_eq!(log_lines(&server.log(), "effect fail key="), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_heartbeat_timeout_fails_the_attempt_and_the_retry_resumes_from_its_details() {
    let server = Server::start(&[]);
    server.deploy("effects", "effects").await;
    server.deploy("failures", "failures").await;
    let run_id = server.start_run("failures", json!("heartbeat")).await;
    let run = server.wait(&run_id, 60).await;
    assert_eq!(run["status"], "completed", "{run}");
    // The first attempt did three items and hung; the second started at 3.
    assert_eq!(run["output"], json!({ "resumed_from": 3, "attempt": 2 }));
    let journal = server.journal(&run_id).await;
    let failed = of_kind(&journal, "activity-attempt-failed");
    assert_eq!(failed.len(), 1, "{journal:?}");
    assert_eq!(failed[0]["failure"]["type"], "timed-out");
    assert_eq!(failed[0]["failure"]["timeout"], "heartbeat");
    // Its progress was stored (throttled: not one event per heartbeat)
    // before the retry, and the last one is where the retry began.
    let beats = of_kind(&journal, "activity-heartbeat");
    let first: Vec<_> = beats.iter().filter(|b| b["attempt"] == 1).collect();
    assert!((1..=2).contains(&first.len()), "{beats:?}");
    assert_eq!(first.last().unwrap()["details"], 3);
    assert_eq!(
        log_lines(&server.log(), "effect progress attempt=2 from=3"),
        1
    );
}

/// The workflow and activity here were built against contract 0.1 (before
/// cause chains): they deploy, run and see failures as they always did.
#[tokio::test(flavor = "multi_thread")]
async fn components_built_against_contract_0_1_still_run() {
    let server = Server::start(&[]);
    let old = |name: &str| {
        std::fs::read(workspace().join(format!("tests/data/wit-0.1/{name}.wasm"))).unwrap()
    };
    for name in ["effects", "retries"] {
        let (status, body) = server
            .put(&format!("/v1/components/{name}"), old(name))
            .await;
        assert!(
            status == 200 || status == 201,
            "deploy {name}: {status} {body}"
        );
    }
    let run_id = server.start_run("retries", json!(null)).await;
    let run = server.wait(&run_id, 60).await;
    assert_eq!(run["status"], "completed", "{run}");
    let out = &run["output"];
    // An activity's own error, not the 0.2 boundary error around it.
    assert_eq!(out["exhausted"]["err"], "flaky", "{out}");
    assert_eq!(out["fatal"]["err"], "fatal");
    assert_eq!(out["slow"]["err"], "timed-out");
    assert_eq!(out["recovered"]["ok"]["attempt"], 3);
    assert_eq!(out["deadline"]["err"], "timed-out");
}
