//! Updates over real HTTP and the CLI: an update that calls an activity
//! answers its caller, a rejected one leaves the journal as it was, an
//! update id answers the first answer again, update-with-start, an update
//! accepted before a kill -9 completes after the restart and its caller
//! re-attaches, and bad requests.

use crate::support::{Server, of_kind};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn counter(server: &Server, workflow_id: &str, total: u64) -> String {
    server
        .start_run_with_id("counter", workflow_id, json!({ "total": total }))
        .await
}

async fn update(server: &Server, workflow_id: &str, body: Value) -> (u16, Value) {
    server
        .post(
            &format!("/v1/workflow-ids/{workflow_id}/updates/add"),
            &body,
        )
        .await
}

async fn deployed() -> Server {
    let server = Server::start(&[]);
    server.deploy("step", "step").await;
    server.deploy("counter", "counter").await;
    server
}

#[tokio::test]
async fn an_update_runs_an_activity_and_answers_its_caller_once_per_update_id() {
    let server = deployed().await;
    let run_id = counter(&server, "c1", 0).await;

    // Handled with an activity; the answer comes back in the same call.
    let (status, answer) = update(
        &server,
        "c1",
        json!({ "input": { "amount": 5 }, "update_id": "u1" }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (&answer["status"], &answer["output"], &answer["run_id"]),
        (&json!("completed"), &json!({ "total": 6 }), &json!(run_id)),
        "{answer}"
    );
    // The answer is durable before the caller has it; the status the
    // workflow publishes after it is sent without waiting.
    server
        .until_journal(&run_id, "the status", |events| {
            !of_kind(events, "status-set").is_empty()
        })
        .await;
    let events = server.journal(&run_id).await;
    let accepted = of_kind(&events, "update-accepted");
    assert_eq!(accepted.len(), 1, "{events:?}");
    assert_eq!(
        (&accepted[0]["update_id"], &accepted[0]["input"]),
        (&json!("u1"), &json!({ "amount": 5 }))
    );
    assert_eq!(of_kind(&events, "activity-completed").len(), 1);
    let completed = of_kind(&events, "update-completed");
    assert_eq!(completed[0]["output"], json!({ "total": 6 }), "{events:?}");

    // Rejected by the validator: the caller has the error, the journal
    // is exactly as it was.
    let (status, answer) = update(&server, "c1", json!({ "input": { "amount": -3 } })).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "rejected", "{answer}");
    assert_eq!(answer["error"]["kind"], "negative-amount", "{answer}");
    assert_eq!(server.journal(&run_id).await, events);

    // The same update id is the same update: the first answer, nothing new.
    let (status, again) = update(
        &server,
        "c1",
        json!({ "input": { "amount": 100 }, "update_id": "u1" }),
    )
    .await;
    assert_eq!((status, &again["output"]), (200, &json!({ "total": 6 })));
    assert_eq!(server.journal(&run_id).await, events);
    let (status, attached) = server.get("/v1/workflow-ids/c1/updates/u1").await;
    assert_eq!((status, &attached["output"]), (200, &json!({ "total": 6 })));

    // The handler's own error is the answer.
    let (_, failed) = update(
        &server,
        "c1",
        json!({ "input": { "amount": 1, "fail": true } }),
    )
    .await;
    assert_eq!(
        (&failed["status"], &failed["error"]["kind"]),
        (&json!("failed"), &json!("handler-refused")),
        "{failed}"
    );

    // The CLI: the answer on stdout; a rejection exits non-zero.
    let (ok, out, err) = server.cli(&["update", "c1", "add", "--input", r#"{"amount": 2}"#]);
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), r#"{"total":9}"#);
    let (ok, out, err) = server.cli(&["update", "c1", "add", "--input", r#"{"amount": -1}"#]);
    assert!(
        !ok && err.contains("rejected") && err.contains("negative-amount"),
        "{out}{err}"
    );

    // Bad requests are clear 4xx errors.
    let (status, body) = update(&server, "nobody", json!({ "input": { "amount": 1 } })).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = update(&server, "c1", json!({ "input": 1, "colour": "red" })).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = server
        .post(
            "/v1/workflow-ids/c1/updates/other",
            &json!({ "update_id": "u1" }),
        )
        .await;
    assert_eq!(status, 409, "an update id names one update: {body}");
    let (status, body) = server.get("/v1/workflow-ids/c1/updates/unknown").await;
    assert_eq!(status, 404, "{body}");

    server
        .post("/v1/workflow-ids/c1/signals/stop", &json!(null))
        .await;
    let run = server.wait(&run_id, 30).await;
    assert_eq!(run["output"], json!({ "total": 9 }), "{run}");
}

#[tokio::test]
async fn update_with_start_starts_the_entity_and_a_run_that_ends_first_refuses_the_update() {
    let server = deployed().await;
    let (status, answer) = update(
        &server,
        "c3",
        json!({
            "input": { "amount": 2 },
            "start": { "workflow": "counter", "input": { "total": 10 } },
        }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["output"], json!({ "total": 13 }), "{answer}");
    // With a run open, the start is not needed and nothing new starts.
    let (_, again) = update(
        &server,
        "c3",
        json!({
            "input": { "amount": 0 },
            "start": { "workflow": "counter", "input": { "total": 0 } },
        }),
    )
    .await;
    assert_eq!(
        (&again["output"], &again["run_id"]),
        (&json!({ "total": 14 }), &answer["run_id"]),
        "{again}"
    );

    // A run that takes no updates: the request waits, then is refused
    // once the run has ended without taking it.
    server.deploy("entity", "entity").await;
    let (status, body) = server
        .post(
            "/v1/runs",
            &json!({ "workflow": "entity", "input": { "expect": 1 }, "workflow_id": "e1" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, waiting) = update(
        &server,
        "e1",
        json!({ "input": {}, "update_id": "w", "wait_ms": 300 }),
    )
    .await;
    assert_eq!(
        (status, &waiting["status"]),
        (202, &json!("requested")),
        "{waiting}"
    );
    server
        .post("/v1/workflow-ids/e1/signals/item", &json!(1))
        .await;
    server.wait(body["run_id"].as_str().unwrap(), 30).await;
    let (status, refused) = server
        .get("/v1/workflow-ids/e1/updates/w?wait_ms=5000")
        .await;
    assert_eq!(status, 200, "{refused}");
    assert_eq!(
        (&refused["status"], &refused["error"]["kind"]),
        (&json!("rejected"), &json!("run-ended")),
        "{refused}"
    );
}

#[tokio::test]
async fn an_update_accepted_before_a_kill_completes_after_the_restart_and_its_caller_reattaches() {
    let mut server = deployed().await;
    let run_id = counter(&server, "c2", 1).await;
    let (status, pending) = update(
        &server,
        "c2",
        json!({ "input": { "amount": 1, "wait_ms": 1500 }, "update_id": "slow", "wait_ms": 200 }),
    )
    .await;
    assert_eq!(status, 202, "{pending}");
    // Accepted: journaled before the handler's durable sleep.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, seen) = server.get("/v1/workflow-ids/c2/updates/slow").await;
        if seen["status"] == "accepted" {
            break;
        }
        assert!(Instant::now() < deadline, "never accepted: {seen}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events = server.journal(&run_id).await;
    assert_eq!(of_kind(&events, "update-accepted").len(), 1, "{events:?}");
    assert!(of_kind(&events, "update-completed").is_empty());

    server.kill9();
    server.restart();
    let (status, answer) = server
        .get("/v1/workflow-ids/c2/updates/slow?wait_ms=60000")
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (&answer["status"], &answer["output"]),
        (&json!("completed"), &json!({ "total": 3 })),
        "{answer}"
    );
    let events = server.journal(&run_id).await;
    assert_eq!(of_kind(&events, "update-accepted").len(), 1, "{events:?}");
    assert_eq!(of_kind(&events, "update-completed").len(), 1, "{events:?}");
    let _: Value = server
        .post("/v1/workflow-ids/c2/signals/stop", &json!(null))
        .await
        .1;
    let run = server.wait(&run_id, 30).await;
    assert_eq!(run["output"], json!({ "total": 3 }), "{run}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_asks_entities_for_updates_and_waits_for_their_answers_across_a_kill() {
    let mut server = deployed().await;
    server.deploy("asker", "asker").await;
    let with_start = json!({ "workflow": "counter", "input": { "total": 10 } });
    let asker = server
        .start_run(
            "asker",
            json!({ "asks": [
                // Started by the update, answered after a durable sleep.
                { "workflow_id": "cell-a", "name": "add",
                  "payload": { "amount": 2, "wait_ms": 1500 }, "start": with_start },
                // Rejected by the validator.
                { "workflow_id": "cell-a", "name": "add", "payload": { "amount": -1 } },
                // No run to take it.
                { "workflow_id": "nobody", "name": "add", "payload": { "amount": 1 } },
                // Never taken: the entity ends first.
                { "workflow_id": "cell-b", "name": "unknown",
                  "start": { "workflow": "counter", "input": {} } },
            ] }),
        )
        .await;
    server
        .until_journal(&asker, "the updates sent", |events| {
            of_kind(events, "update-sent").len() == 4
        })
        .await;
    // The asker waits (out of memory: nothing of its own is due) while
    // cell-a's handler sleeps; a kill -9 loses nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill9();
    server.restart();
    let (status, body) = server
        .post("/v1/workflow-ids/cell-b/signals/stop", &json!(null))
        .await;
    assert!(status < 300, "{status} {body}");

    let run = server.wait(&asker, 60).await;
    assert_eq!(run["status"], "completed", "{run}");
    let answers = &run["output"]["answers"];
    assert_eq!(answers[0], json!({ "ok": { "total": 13 } }), "{run}");
    assert_eq!(answers[1]["err"], "negative-amount", "{run}");
    assert_eq!(answers[2]["err"], "not-found", "{run}");
    assert_eq!(answers[3]["err"], "run-ended", "{run}");

    let events = server.journal(&asker).await;
    assert_eq!(of_kind(&events, "update-answered").len(), 4, "{events:?}");
    let sent = of_kind(&events, "update-sent");
    // Each is an update of the target, readable by its id over HTTP.
    let id = sent[0]["update_id"].as_str().unwrap();
    let (status, body) = server
        .get(&format!("/v1/workflow-ids/cell-a/updates/{id}"))
        .await;
    assert_eq!(
        (status, &body["status"], &body["output"]),
        (200, &json!("completed"), &json!({ "total": 13 })),
        "{body}"
    );
}
