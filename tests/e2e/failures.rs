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

/// Run `case` of the failures fixture: its output and journal.
async fn run_case(server: &Server, case: &str) -> (Value, Vec<Value>) {
    let run_id = server.start_run("failures", json!(case)).await;
    let run = server.wait(&run_id, 60).await;
    assert_eq!(run["status"], "completed", "{case}: {run}");
    (run["output"].clone(), server.journal(&run_id).await)
}

/// Where in `journal` the first event of `kind` for `handle` is.
fn at(journal: &[Value], kind: &str, handle: u64) -> Option<usize> {
    journal
        .iter()
        .position(|e| e["kind"] == kind && e["handle"] == handle)
}

#[tokio::test(flavor = "multi_thread")]
async fn each_activity_cancellation_mode_answers_and_tells_in_its_order() {
    let server = Server::start(&[]);
    server.deploy("effects", "effects").await;
    server.deploy("failures", "failures").await;
    // Handles: 0 the ticking activity, 1 the timer before the cancel, 2 the
    // marker step after its await.
    for case in ["cancel-try", "cancel-wait", "cancel-abandon"] {
        let (output, journal) = run_case(&server, case).await;
        let answer = json!({ "err": "cancelled", "outer": "activity-failed" });
        assert_eq!(output, answer, "{case}");
        let requested = at(&journal, "cancel-requested", 0).expect("journaled");
        let answered = at(&journal, "activity-failed", 0).unwrap();
        assert_eq!(journal[answered]["failure"]["type"], "cancelled");
        let marker = at(&journal, "activity-scheduled", 2).unwrap();
        let told = at(&journal, "activity-cancelled", 0);
        assert!(
            requested < answered && answered < marker,
            "{case}: {journal:?}"
        );
        match case {
            // Answered at once; the activity, told, stops afterwards.
            "cancel-try" => assert!(told.unwrap() > answered, "{journal:?}"),
            // The activity stops first; then the await answers.
            "cancel-wait" => {
                let told = told.unwrap();
                assert!(requested < told && told < answered, "{journal:?}");
            }
            // Answered at once; never told, it ticks to its end.
            _ => assert_eq!(told, None, "{journal:?}"),
        }
    }
    let log = server.log();
    assert_eq!(
        log_lines(&log, "effect ticker cancelled at"),
        2,
        "try and wait were told"
    );
    assert_eq!(
        log_lines(&log, "effect ticker done"),
        1,
        "the abandoned one ran on"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parent_cancels_a_child_by_its_handle_and_a_childs_deadline_fails_its_await() {
    let server = Server::start(&[]);
    server.deploy("failures", "failures").await;
    let child_status = async |parent: &str| {
        let (_, run) = server
            .get(&format!("/v1/workflow-ids/{parent}-child"))
            .await;
        run["status"].clone()
    };

    let run_id = server
        .start_run_with_id("failures", "cancels", json!("cancel-child"))
        .await;
    let run = server.wait(&run_id, 60).await;
    assert_eq!(
        kinds(&run["output"]["error"]),
        ["child-failed", "cancelled"],
        "{run}"
    );
    assert_eq!(child_status("cancels").await, "cancelled");
    assert!(at(&server.journal(&run_id).await, "cancel-requested", 0).is_some());

    // A child with no retry policy (one attempt) and a short deadline.
    let run_id = server
        .start_run_with_id("failures", "times-out", json!("child-timeout"))
        .await;
    let run = server.wait(&run_id, 60).await;
    let error = &run["output"]["error"];
    assert_eq!(kinds(error), ["child-failed", "timed-out"], "{run}");
    assert_eq!(error["cause"]["timeout"], "run-deadline");
    assert_eq!(child_status("times-out").await, "timed-out");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parent_close_policy_of_terminate_ends_the_child_without_cleanup() {
    let server = Server::start(&[]);
    server.deploy("failures", "failures").await;
    let run_id = server
        .start_run_with_id("failures", "closes", json!("close-terminate"))
        .await;
    assert_eq!(server.wait(&run_id, 60).await["status"], "completed");
    let mut status = Value::Null;
    for _ in 0..100 {
        let (_, child) = server.get("/v1/workflow-ids/closes-child").await;
        status = child["status"].clone();
        if status == "terminated" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, "terminated");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_child_retry_policy_starts_failed_runs_again_under_its_workflow_id() {
    let server = Server::start(&[]);
    server.deploy("effects", "effects").await;
    server.deploy("failures", "failures").await;
    let run_id = server
        .start_run_with_id("failures", "retries", json!("child-retry"))
        .await;
    let run = server.wait(&run_id, 60).await;
    assert_eq!(run["status"], "completed", "{run}");
    // Three runs failed; the last one's failure is the await's.
    let error = &run["output"]["error"];
    assert_eq!(
        kinds(error),
        ["child-failed", "activity-failed", "flaky"],
        "{error}"
    );
    let journal = server.journal(&run_id).await;
    let retried = of_kind(&journal, "child-attempt-failed");
    assert_eq!(retried.len(), 2, "{journal:?}");
    assert_eq!(retried[0]["attempt"], 1);
    assert_eq!(retried[1]["attempt"], 2);
    let (_, runs) = server.get("/v1/runs?workflow_id=retries-child").await;
    let runs = runs["runs"].as_array().expect("a list");
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert!(runs.iter().all(|r| r["status"] == "failed"), "{runs:?}");
    // Each retry waited out its backoff (100 ms, then 200 ms) after the
    // failed run ended.
    let ended = |id: &Value| {
        let run = runs.iter().find(|r| &r["run_id"] == id).unwrap();
        run["ended_at_ms"].as_i64().unwrap()
    };
    let created = |id: &Value| {
        let run = runs.iter().find(|r| &r["run_id"] == id).unwrap();
        run["created_at_ms"].as_i64().unwrap()
    };
    for (event, backoff) in retried.iter().zip([100, 200]) {
        let waited = created(&event["next_run_id"]) - ended(&event["child_run_id"]);
        assert!(waited >= backoff, "{waited} ms < {backoff} ms");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_child_retried_after_its_parent_left_memory_is_started_when_due() {
    // Waits longer than 500 ms leave memory.
    let server = Server::start(&["--resident-timer-ms", "500"]);
    server.deploy("effects", "effects").await;
    server.deploy("failures", "failures").await;
    let run_id = server
        .start_run_with_id("failures", "slow-retries", json!("child-retry-slow"))
        .await;
    let run = server.wait(&run_id, 60).await;
    assert_eq!(
        kinds(&run["output"]["error"]),
        ["child-failed", "activity-failed", "flaky"]
    );
    let journal = server.journal(&run_id).await;
    assert_eq!(
        of_kind(&journal, "child-attempt-failed").len(),
        1,
        "{journal:?}"
    );
    let (_, runs) = server.get("/v1/runs?workflow_id=slow-retries-child").await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 2, "{runs}");
    // The 2 s backoff is longer than the resident timer: the parent was
    // evicted and came back for the retry.
    let resumed = format!("resuming: replaying the journal run=\"{run_id}\"");
    assert!(log_lines(&server.log(), &resumed) >= 1, "{}", server.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_attempt_that_cannot_start_in_time_fails_with_schedule_to_start() {
    let server = Server::start(&[]);
    server.deploy("failures", "failures").await;
    let (output, journal) = run_case(&server, "not-started").await;
    let error = &output["error"];
    assert_eq!(kinds(error), ["activity-failed", "timed-out"], "{error}");
    assert_eq!(error["cause"]["timeout"], "schedule-to-start");
    // It never ran: no attempt was made.
    assert_eq!(of_kind(&journal, "activity-failed")[0]["attempts"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminated_child_fails_its_parents_await_with_terminated() {
    let server = Server::start(&[]);
    server.deploy("failures", "failures").await;
    let run_id = server
        .start_run_with_id("failures", "waits", json!("child-waits"))
        .await;
    let mut child = Value::Null;
    for _ in 0..100 {
        let (status, run) = server.get("/v1/workflow-ids/waits-child").await;
        if status == 200 {
            child = run;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let child_id = child["run_id"].as_str().expect("the child started");
    let (status, body) = server
        .post(
            &format!("/v1/runs/{child_id}/terminate"),
            &json!({ "reason": "operator says so" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let run = server.wait(&run_id, 60).await;
    let error = &run["output"]["error"];
    assert_eq!(kinds(error), ["child-failed", "terminated"], "{run}");
    assert_eq!(error["cause"]["message"], "operator says so");
}
