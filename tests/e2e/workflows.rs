//! Workflows run to completion with the right results and journals.

use crate::support::{Server, log_lines, of_kind};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn provision_over_http_journals_every_call_and_the_retries() {
    let server = Server::start(&["--resident-timer-ms", "200"]);
    let cloud = server.deploy("cloud", "cloud").await;
    assert_eq!(cloud["kind"], "activity");
    assert_eq!(cloud["version"], 1);
    let provision = server.deploy("provision", "provision").await;
    assert_eq!(provision["kind"], "workflow");

    let input =
        json!({ "namespace": "acme", "region": "eu", "cert_delay_ms": 1200, "poll_ms": 400 });
    let run_id = server.start_run("provision", input).await;
    let run = server.wait(&run_id, 60).await;
    assert_eq!(run["status"], "completed", "{run}");
    let out = &run["output"];
    assert_eq!(out["namespace"], "acme");
    assert_eq!(out["cell"], "eu-cell-b");
    assert_eq!(out["record"], "rec-acme-eu-cell-b");
    assert_eq!(out["dns"], "acme.eu-cell-b.example.net");
    assert_eq!(out["connectivity"]["grpc"], "SERVING");
    assert!(
        out["certificate"]
            .as_str()
            .unwrap()
            .starts_with("cert-acme-")
    );
    let polls = out["polls"].as_u64().unwrap();
    assert!(polls >= 2, "the certificate took several polls: {out}");

    let events = server.journal(&run_id).await;
    // Sequence numbers are dense from 0, starting with `started`.
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["seq"], i as u64);
    }
    assert_eq!(events[0]["kind"], "started");
    assert_eq!(events.last().unwrap()["kind"], "completed");

    let scheduled: Vec<&str> = of_kind(&events, "activity-scheduled")
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    let mut expected = vec!["cloud/place", "cloud/create-record", "cloud/request-cert"];
    expected.extend(std::iter::repeat_n("cloud/cert-status", polls as usize));
    expected.extend(["cloud/publish-dns", "cloud/check-connectivity"]);
    assert_eq!(scheduled, expected);
    assert_eq!(of_kind(&events, "activity-completed").len(), expected.len());

    // The flaky step: two failed attempts journaled, then success on the third.
    let failed = of_kind(&events, "activity-attempt-failed");
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(failed[0]["attempt"], 1);
    assert_eq!(failed[0]["failure"]["kind"], "unavailable");
    assert_eq!(failed[0]["retry_in_ms"], 100);
    assert_eq!(failed[1]["attempt"], 2);
    assert_eq!(failed[1]["retry_in_ms"], 200);
    let record_done = events
        .iter()
        .find(|e| e["kind"] == "activity-completed" && e["handle"] == 1)
        .unwrap();
    assert_eq!(record_done["attempts"], 3);
    assert_eq!(record_done["output"], "rec-acme-eu-cell-b");

    // One durable timer per poll, each started then fired.
    assert_eq!(of_kind(&events, "timer-started").len(), polls as usize);
    assert_eq!(of_kind(&events, "timer-fired").len(), polls as usize);

    // The attempts really happened, each once.
    let log = server.log();
    assert_eq!(log_lines(&log, "effect create-record"), 3);
    assert_eq!(log_lines(&log, "effect place"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_policy_limits_attempts_and_honours_timeouts() {
    let server = Server::start(&[]);
    server.deploy("effects", "effects").await;
    server.deploy("retries", "retries").await;
    let run_id = server.start_run("retries", json!(null)).await;
    let run = server.wait(&run_id, 60).await;
    assert_eq!(run["status"], "completed", "{run}");
    let out = &run["output"];
    assert_eq!(out["exhausted"]["err"], "flaky");
    assert_eq!(out["fatal"]["err"], "fatal");
    assert_eq!(out["slow"]["err"], "timed-out");
    assert_eq!(out["slow"]["timeout"], "start-to-close");
    assert_eq!(out["slow"]["outer"], "activity-failed");
    assert_eq!(out["recovered"]["ok"]["attempt"], 3);
    assert_eq!(out["deadline"]["err"], "timed-out");
    assert_eq!(out["deadline"]["timeout"], "schedule-to-close");
    assert!(
        out["deadline"]["message"]
            .as_str()
            .unwrap()
            .contains("schedule-to-close")
    );

    let events = server.journal(&run_id).await;
    let ended = |handle: u64| {
        events
            .iter()
            .find(|e| {
                (e["kind"] == "activity-failed" || e["kind"] == "activity-completed")
                    && e["handle"] == handle
            })
            .unwrap()
            .clone()
    };
    assert_eq!(ended(0)["attempts"], 3, "max attempts");
    assert_eq!(ended(1)["attempts"], 1, "non-retryable kind");
    assert_eq!(
        ended(2)["attempts"],
        2,
        "start-to-close timeout, then one retry"
    );
    assert_eq!(ended(2)["failure"]["type"], "timed-out");
    assert_eq!(ended(3)["attempts"], 3);
    // Exponential backoff: 50 ms then 100 ms.
    let backoffs: Vec<u64> = of_kind(&events, "activity-attempt-failed")
        .iter()
        .filter(|e| e["handle"] == 3)
        .map(|e| e["retry_in_ms"].as_u64().unwrap())
        .collect();
    assert_eq!(backoffs, vec![50, 100]);
    let deadline_attempts = ended(4)["attempts"].as_u64().unwrap();
    assert!((2..=12).contains(&deadline_attempts), "{deadline_attempts}");
}

#[tokio::test(flavor = "multi_thread")]
async fn start_is_idempotent_on_workflow_id_among_open_runs() {
    let server = Server::start(&["--resident-timer-ms", "100"]);
    server.deploy("effects", "effects").await;
    server.deploy("sleeper", "sleeper").await;
    let body = json!({
        "workflow": "sleeper",
        "workflow_id": "tenant-42",
        "input": { "tag": "a", "sleep_ms": 800 },
    });
    let (s1, first) = server.post("/v1/runs", &body).await;
    let (s2, second) = server.post("/v1/runs", &body).await;
    assert_eq!((s1, s2), (201, 200));
    assert_eq!(first["run_id"], second["run_id"]);
    assert_eq!(second["created"], false);
    assert_eq!(first["workflow_id"], "tenant-42");
    let run = server.wait(first["run_id"].as_str().unwrap(), 30).await;
    assert_eq!(run["status"], "completed");
    // Once it ended, the id is free for a new run.
    let (s3, third) = server.post("/v1/runs", &body).await;
    assert_eq!(s3, 201);
    assert_ne!(third["run_id"], first["run_id"]);

    let (_, list) = server
        .get("/v1/runs?workflow=sleeper&status=completed")
        .await;
    assert_eq!(list["runs"].as_array().unwrap().len(), 1);
    let (_, list) = server.get("/v1/runs?workflow=sleeper&limit=10").await;
    assert_eq!(list["runs"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_with_wait_answers_the_run_once_it_ends() {
    let server = Server::start(&[]);
    server.deploy("effects", "effects").await;
    server.deploy("sleeper", "sleeper").await;
    // Ends within the wait: the run as GET gives it, output included.
    let body = json!({ "workflow": "sleeper", "input": { "tag": "a", "sleep_ms": 300 } });
    let (status, run) = server.post("/v1/runs?wait=30", &body).await;
    assert_eq!(status, 201, "{run}");
    assert_eq!(
        (run["status"].as_str(), &run["created"]),
        (Some("completed"), &json!(true))
    );
    let run_id = run["run_id"].as_str().unwrap();
    let (_, got) = server.get(&format!("/v1/runs/{run_id}")).await;
    assert_eq!(run["output"], got["output"]);
    assert_eq!(run["output"]["tag"], "a", "{run}");
    // Still running when the wait is up: answered running, and it goes on.
    let body = json!({ "workflow": "sleeper", "input": { "tag": "b", "sleep_ms": 1500 } });
    let (status, run) = server.post("/v1/runs?wait=0.2", &body).await;
    assert_eq!(
        (status, run["status"].as_str()),
        (201, Some("running")),
        "{run}"
    );
    let run = server.wait(run["run_id"].as_str().unwrap(), 30).await;
    assert_eq!(run["status"], "completed");
    // A wait out of range starts nothing.
    let body = json!({ "workflow": "sleeper", "input": { "tag": "c", "sleep_ms": 1 } });
    for wait in ["601", "-1", "soon"] {
        let (status, err) = server.post(&format!("/v1/runs?wait={wait}"), &body).await;
        assert_eq!(status, 400, "wait={wait}: {err}");
    }
    let (_, list) = server.get("/v1/runs?workflow=sleeper&limit=10").await;
    assert_eq!(list["runs"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_deploys_starts_lists_and_shows() {
    let server = Server::start(&[]);
    let weft = |args: &[&str]| server.cli(args);
    let dir = crate::support::guests();
    let (ok, out, err) = weft(&["deploy", dir.join("greeter.wasm").to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.starts_with("activity greeter v1 "), "{out}");
    let (ok, out, err) = weft(&[
        "deploy",
        dir.join("hello.wasm").to_str().unwrap(),
        "--name",
        "hi",
    ]);
    assert!(ok, "{err}");
    assert!(out.starts_with("workflow hi v1 "), "{out}");

    let (ok, out, err) = weft(&[
        "start",
        "hi",
        "--input",
        r#"{"name":"Grace"}"#,
        "--wait",
        "30",
    ]);
    assert!(ok, "{err}");
    let run: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(run["output"]["greeting"], "Hello, Grace!");
    let run_id = run["run_id"].as_str().unwrap();

    let (ok, out, _) = weft(&["runs"]);
    assert!(ok);
    assert!(out.contains(run_id) && out.contains("completed"), "{out}");

    let (ok, out, _) = weft(&["show", run_id]);
    assert!(ok);
    assert!(out.contains("activity `greeter/greet` scheduled"), "{out}");
    assert!(out.contains("completed after 1 attempt(s)"), "{out}");

    let (ok, _, err) = weft(&["start", "nope", "--wait"]);
    assert!(!ok);
    assert!(err.contains("no workflow named `nope`"), "{err}");
    let (ok, _, err) = weft(&["start", "hi", "--input", "{oops"]);
    assert!(!ok);
    assert!(err.contains("--input is not valid JSON"), "{err}");
}

/// Temporal's workflow-id policies on `POST /v1/runs`: what a start does
/// when an open run holds the id (use it — the default —, fail, terminate
/// it and start anew) and whether a closed run's id may be reused (always —
/// the default —, only after a failure, never). Plus terminate on its own.
#[tokio::test(flavor = "multi_thread")]
async fn workflow_id_policies_decide_what_a_start_does_when_the_id_is_taken() {
    let server = Server::start(&["--resident-timer-ms", "100"]);
    server.deploy("effects", "effects").await;
    server.deploy("sleeper", "sleeper").await;
    let start = |id: &str, sleep_ms: u64, policies: Value| {
        let mut body = json!({
            "workflow": "sleeper",
            "workflow_id": id,
            "input": { "tag": id, "sleep_ms": sleep_ms },
        });
        for (k, v) in policies.as_object().unwrap() {
            body[k] = v.clone();
        }
        let server = &server;
        async move { server.post("/v1/runs", &body).await }
    };

    // Open run, conflict policy `fail`: refused, naming the holder.
    let (s, first) = start("e1", 60_000, json!({})).await;
    assert_eq!(s, 201, "{first}");
    let (s, refused) = start("e1", 10, json!({ "id_conflict_policy": "fail" })).await;
    assert_eq!(s, 409, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(first["run_id"].as_str().unwrap()),
        "{message}"
    );

    // `use-existing` (the default) answers the open run.
    let (s, same) = start("e1", 10, json!({ "id_conflict_policy": "use-existing" })).await;
    assert_eq!((s, &same["run_id"]), (200, &first["run_id"]));

    // `terminate-existing`: the sleeping run ends `terminated` at once (its
    // cleanup does not run) and a new run holds the id.
    let (s, replaced) = start(
        "e1",
        10,
        json!({ "id_conflict_policy": "terminate-existing" }),
    )
    .await;
    assert_eq!(s, 201, "{replaced}");
    assert_ne!(replaced["run_id"], first["run_id"]);
    let old = server.wait(first["run_id"].as_str().unwrap(), 30).await;
    assert_eq!(old["status"], "terminated", "{old}");
    assert_eq!(old["error"]["kind"], "terminated", "{old}");
    let journal = server.journal(first["run_id"].as_str().unwrap()).await;
    assert_eq!(journal.last().unwrap()["kind"], "failed");
    let new = server.wait(replaced["run_id"].as_str().unwrap(), 30).await;
    assert_eq!(new["status"], "completed", "{new}");

    // Reuse: `reject-duplicate` refuses an id any closed run had;
    // `allow-duplicate-failed-only` refuses it after a completion.
    for policy in ["reject-duplicate", "allow-duplicate-failed-only"] {
        let (s, b) = start("e1", 10, json!({ "id_reuse_policy": policy })).await;
        assert_eq!(s, 409, "{policy}: {b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("reuse policy"),
            "{b}"
        );
    }
    // After a run that did not complete (terminated), failed-only allows it.
    let (s, open) = start("e2", 60_000, json!({})).await;
    assert_eq!(s, 201);
    let (s, t) = server
        .post(
            &format!("/v1/runs/{}/terminate", open["run_id"].as_str().unwrap()),
            &json!({ "reason": "operator" }),
        )
        .await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["status"], "terminated");
    assert_eq!(t["error"]["message"], "operator");
    let (s, again) = start(
        "e2",
        10,
        json!({ "id_reuse_policy": "allow-duplicate-failed-only" }),
    )
    .await;
    assert_eq!(s, 201, "{again}");
    // The default reuses freely; an unknown policy is a clear 400.
    let (s, _) = start("e1", 10, json!({})).await;
    assert_eq!(s, 201);
    let (s, bad) = start("e3", 10, json!({ "id_conflict_policy": "sometimes" })).await;
    assert_eq!(s, 400, "{bad}");
    // The CLI: a start refused by its policy, then terminate.
    let (_, held) = start("e5", 60_000, json!({})).await;
    let held = held["run_id"].as_str().unwrap();
    let input = r#"{"tag":"e5","sleep_ms":10}"#;
    let (ok, _, err) = server.cli(&[
        "start",
        "sleeper",
        "--workflow-id",
        "e5",
        "--input",
        input,
        "--id-conflict-policy",
        "fail",
    ]);
    assert!(!ok && err.contains(held), "{err}");
    let (ok, out, err) = server.cli(&["terminate", held, "--reason", "from the cli"]);
    assert!(ok, "{err}");
    assert!(out.contains("is terminated"), "{out}");
    // Terminating what has ended is refused.
    let (s, b) = server
        .post(
            &format!("/v1/runs/{}/terminate", open["run_id"].as_str().unwrap()),
            &json!({}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
}
