//! Batch operations over real HTTP and the CLI: a dry run lists, a signal,
//! a termination and a cancellation reach every matching run and no other,
//! and the audit trail records the batch.

use crate::support::{Server, run_cli};
use serde_json::{Value, json};
use std::process::Command;

async fn batch(server: &Server, body: Value) -> Value {
    let (status, answer) = server.post("/v1/batches", &body).await;
    assert_eq!(status, 200, "{body}: {answer}");
    answer
}

fn ids(answer: &Value, key: &str) -> Vec<String> {
    let mut ids: Vec<String> = answer[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_reaches_every_matching_run_and_no_other() {
    let server = Server::start(&[]);
    server.deploy("entity", "entity").await;
    server.deploy("effects", "effects").await;
    let mut entities = Vec::new();
    for id in ["cell-1", "cell-2", "cell-3"] {
        let start = json!({ "workflow": "entity", "workflow_id": id, "input": { "expect": 1 } });
        let (status, run) = server.post("/v1/runs", &start).await;
        assert_eq!(status, 201, "{run}");
        entities.push(run["run_id"].as_str().unwrap().to_string());
    }
    // Another namespace's entity, which no batch of `default` touches.
    let (status, body) = server
        .post("/v1/namespaces", &json!({ "name": "other" }))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = server
        .put(
            "/v1/components/entity?namespace=other",
            crate::support::wasm("entity"),
        )
        .await;
    assert_eq!(status, 201);
    let start = json!({ "workflow": "entity", "input": { "expect": 1 }, "namespace": "other" });
    let (_, other) = server.post("/v1/runs", &start).await;
    let other = other["run_id"].as_str().unwrap().to_string();

    // A dry run lists the matching runs and touches none.
    let dry = batch(
        &server,
        json!({ "action": "terminate", "workflow": "entity", "dry_run": true }),
    )
    .await;
    let mut all = entities.clone();
    all.sort();
    assert_eq!(ids(&dry, "matched"), all);
    assert!(ids(&dry, "applied").is_empty());
    let (_, run) = server.get(&format!("/v1/runs/{}", entities[0])).await;
    assert_eq!(run["status"], "running");

    // A signal to one workflow id: that entity gets its item and completes.
    let signalled = batch(
        &server,
        json!({ "action": "signal", "signal": "item", "payload": 7, "workflow_id": "cell-1" }),
    )
    .await;
    assert_eq!(ids(&signalled, "applied"), vec![entities[0].clone()]);
    assert_eq!(server.wait(&entities[0], 30).await["status"], "completed");

    // The CLI terminates the rest of the running entities.
    let mut cli = Command::new(env!("CARGO_BIN_EXE_weft"));
    cli.args([
        "batch",
        "terminate",
        "--workflow",
        "entity",
        "--reason",
        "incident 42",
    ])
    .env("WEFT_SERVER", &server.addr)
    .env_remove("WEFT_TOKEN");
    let (ok, out, err) = run_cli(&mut cli);
    assert!(ok, "{out}{err}");
    assert!(out.contains("default: terminate 2 of 2 run(s)"), "{out}");
    for run_id in &entities[1..] {
        let (_, run) = server.get(&format!("/v1/runs/{run_id}")).await;
        assert_eq!(run["status"], "terminated", "{run}");
    }
    let (_, run) = server.get(&format!("/v1/runs/{other}")).await;
    assert_eq!(run["status"], "running", "another namespace's run: {run}");

    // Nothing is left running in `default`; `other`'s entity is cancelled.
    let none = batch(&server, json!({ "action": "cancel" })).await;
    assert!(ids(&none, "matched").is_empty(), "{none}");
    let cancelled = batch(&server, json!({ "action": "cancel", "namespace": "other" })).await;
    assert_eq!(ids(&cancelled, "applied"), vec![other.clone()]);
    assert_eq!(server.wait(&other, 30).await["status"], "cancelled");

    let (_, audit) = server.get("/v1/namespaces/default/audit").await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .take(3)
        .collect();
    assert_eq!(
        actions,
        ["batch-cancel", "batch-terminate", "batch-signal"],
        "{audit}"
    );
    assert_eq!(audit["entries"][1]["details"]["applied"], 2, "{audit}");

    // Bad batches are refused with the reason.
    for (body, says) in [
        (json!({ "action": "explode" }), "unknown batch action"),
        (json!({ "action": "signal" }), "needs `signal`"),
        (
            json!({ "action": "cancel", "reason": "x" }),
            "`reason` does not apply",
        ),
        (
            json!({ "action": "cancel", "status": "sleeping" }),
            "sleeping",
        ),
    ] {
        let (status, answer) = server.post("/v1/batches", &body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_pauses_and_unpauses_the_matching_runs() {
    let server = Server::start(&["--resident-timer-ms", "100"]);
    server.deploy("entity", "entity").await;
    let mut rollouts = Vec::new();
    for id in ["rollout-eu", "rollout-us", "other-1"] {
        let start = json!({ "workflow": "entity", "workflow_id": id, "input": { "expect": 1 } });
        let (status, run) = server.post("/v1/runs", &start).await;
        assert_eq!(status, 201, "{run}");
        rollouts.push(run["run_id"].as_str().unwrap().to_string());
    }
    let paused = |run: &Value| run["paused"] == true;
    for (id, run_id) in ["rollout-eu", "rollout-us"].iter().zip(&rollouts) {
        let answer = batch(
            &server,
            json!({ "action": "pause", "workflow_id": id, "reason": "incident 7" }),
        )
        .await;
        assert_eq!(ids(&answer, "applied"), vec![run_id.clone()], "{answer}");
    }
    for (run_id, expect) in rollouts.iter().zip([true, true, false]) {
        let (_, run) = server.get(&format!("/v1/runs/{run_id}")).await;
        assert_eq!(paused(&run), expect, "{run}");
    }
    // A signal to a paused run waits; unpaused, the run takes it.
    let (status, _) = server
        .post(&format!("/v1/runs/{}/signals/item", rollouts[0]), &json!(1))
        .await;
    assert_eq!(status, 202);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (_, run) = server.get(&format!("/v1/runs/{}", rollouts[0])).await;
    assert_eq!(run["status"], "running", "{run}");

    let mut cli = Command::new(env!("CARGO_BIN_EXE_weft"));
    cli.args([
        "batch",
        "unpause",
        "--workflow",
        "entity",
        "--reason",
        "over",
    ])
    .env("WEFT_SERVER", &server.addr)
    .env_remove("WEFT_TOKEN");
    let (ok, out, err) = run_cli(&mut cli);
    // The unpaused one among the three is refused (it was not paused).
    assert!(!ok, "{out}{err}");
    assert!(out.contains("default: unpause 2 of 3 run(s)"), "{out}");
    assert!(out.contains("is already unpaused"), "{out}");
    assert_eq!(server.wait(&rollouts[0], 30).await["status"], "completed");
    let events = server.journal(&rollouts[0]).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    let unpaused = kinds.iter().position(|k| *k == "unpaused").unwrap();
    let received = kinds.iter().position(|k| *k == "signal-received").unwrap();
    assert!(unpaused < received, "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_cancel_over_500_runs_ends_all_of_them_and_reports_500() {
    let server = Server::start(&["--resident-timer-ms", "50"]);
    server.deploy("entity", "entity").await;
    for i in 0..500 {
        let start = json!({ "workflow": "entity", "workflow_id": format!("e{i}"), "input": { "expect": 1 } });
        let (status, run) = server.post("/v1/runs", &start).await;
        assert_eq!(status, 201, "{run}");
    }
    let done = batch(
        &server,
        json!({ "action": "cancel", "query": "workflow = 'entity' AND workflow_id STARTS_WITH 'e'" }),
    )
    .await;
    assert_eq!(done["applied"].as_array().unwrap().len(), 500, "{done}");
    assert_eq!(done["failed"], json!([]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let (_, ended) = server.get("/v1/runs?status=cancelled&limit=1000").await;
        let n = ended["runs"].as_array().unwrap().len();
        if n == 500 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{n} of 500 cancelled");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (_, open) = server.get("/v1/runs?status=running").await;
    assert_eq!(open["runs"], json!([]), "{open}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_background_batch_job_survives_a_kill_and_reports_its_progress() {
    let mut server = Server::start(&["--resident-timer-ms", "50"]);
    server.deploy("entity", "entity").await;
    for i in 0..300 {
        let start = json!({ "workflow": "entity", "workflow_id": format!("j{i}"), "input": { "expect": 1 } });
        let (status, run) = server.post("/v1/runs", &start).await;
        assert_eq!(status, 201, "{run}");
    }
    let (status, job) = server
        .post(
            "/v1/batches",
            &json!({ "action": "cancel", "query": "workflow_id STARTS_WITH 'j'", "background": true }),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["matched"], 300, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    // The server dies while (or after) the job works: it carries on after
    // the restart, and acts on each run once.
    server.kill9();
    server.restart();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let job = loop {
        let (status, job) = server.get(&format!("/v1/batches/{id}")).await;
        assert_eq!(status, 200, "{job}");
        if job["done"] == true {
            break job;
        }
        assert!(std::time::Instant::now() < deadline, "{job}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        (&job["applied"], &job["failed"]),
        (&json!(300), &json!(0)),
        "{job}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let (_, ended) = server.get("/v1/runs?status=cancelled&limit=1000").await;
        if ended["runs"].as_array().unwrap().len() == 300 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not all cancelled");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (ok, out, err) = server.cli(&["batch", "status", "--job", &id]);
    assert!(
        ok && out.contains("done, 300 of 300 run(s) applied"),
        "{out}{err}"
    );
    let (status, body) = server.get("/v1/batches/nope").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = server
        .post(
            "/v1/batches",
            &json!({ "action": "cancel", "background": true, "dry_run": true }),
        )
        .await;
    assert_eq!(status, 400, "{body}");
}
