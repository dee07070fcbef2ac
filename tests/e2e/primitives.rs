//! Fan-out, signals, entity workflows, children, cancellation, deadlines.

use crate::support::{Server, log_lines, of_kind};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn until(what: &str, secs: u64, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fanout_of_100_survives_a_kill9_without_rerunning_completed_activities() {
    let mut server = Server::start(&[]);
    server.deploy("effects", "effects").await;
    server.deploy("fanout", "fanout").await;
    let run_id = server
        .start_run(
            "fanout",
            json!({ "n": 100, "spread_ms": 37, "base_ms": 300 }),
        )
        .await;
    server
        .until_journal(&run_id, "30 completions", |e| {
            of_kind(e, "activity-completed").len() >= 30
        })
        .await;
    let killed_at = now_ms();
    server.restart();

    let run = server.wait(&run_id, 60).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"], 5050);
    let events = server.journal(&run_id).await;
    assert_eq!(of_kind(&events, "activity-scheduled").len(), 100);
    let completed = of_kind(&events, "activity-completed");
    assert_eq!(completed.len(), 100);
    let log = server.log();
    let mut before_kill = 0;
    // An outcome is durable once its completion or its held outcome (one
    // that shared another's commit) is journaled.
    let durable_at = |handle: u64| {
        events
            .iter()
            .filter(|e| {
                e["handle"] == handle
                    && (e["kind"] == "activity-completed" || e["kind"] == "activity-held")
            })
            .filter_map(|e| e["at_ms"].as_i64())
            .min()
            .unwrap()
    };
    for done in &completed {
        let handle = done["handle"].as_u64().unwrap();
        let scheduled = events
            .iter()
            .find(|e| e["kind"] == "activity-scheduled" && e["handle"] == handle)
            .unwrap();
        let key = format!("key={run_id}:{} ", scheduled["seq"]);
        let executions = log_lines(&log, &key);
        if durable_at(handle) < killed_at {
            before_kill += 1;
            assert_eq!(executions, 1, "{key} completed before the kill, ran again");
        } else {
            assert!((1..=2).contains(&executions), "{key}: {executions}");
        }
        // Consumed through await-any: the select set is journaled.
        assert!(done["select"].is_array());
    }
    assert!(before_kill >= 30, "{before_kill}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fanouts_results_that_end_together_share_commits() {
    let server = Server::start(&[]);
    server.deploy("effects", "effects").await;
    server.deploy("fanout", "fanout").await;
    // A hundred activities that all end after 300 ms: the first result's
    // commit carries the others that have ended by then, journaled as
    // held, and their awaits answer without a commit each.
    let run_id = server
        .start_run("fanout", json!({ "n": 100, "base_ms": 300 }))
        .await;
    let run = server.wait(&run_id, 60).await;
    assert_eq!(
        (&run["status"], &run["output"]),
        (&json!("completed"), &json!(5050)),
        "{run}"
    );
    let events = server.journal(&run_id).await;
    let held = of_kind(&events, "activity-held");
    assert!(!held.is_empty(), "no outcome shared a commit: {events:?}");
    let completed = of_kind(&events, "activity-completed");
    assert_eq!(completed.len(), 100);
    for h in &held {
        let handle = &h["handle"];
        let done: Vec<_> = completed
            .iter()
            .filter(|c| &c["handle"] == handle)
            .collect();
        assert_eq!(done.len(), 1, "{handle}: {done:?}");
        // Held before its await took it, with the same outcome.
        assert!(
            h["seq"].as_u64() < done[0]["seq"].as_u64(),
            "{h} {}",
            done[0]
        );
        assert_eq!(
            (&h["output"], &h["attempts"]),
            (&done[0]["output"], &done[0]["attempts"])
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_concurrent_signals_are_consumed_once_in_order_across_a_kill9() {
    let mut server = Server::start(&["--resident-timer-ms", "300"]);
    server.deploy("entity", "entity").await;
    let (status, _) = server
        .post(
            "/v1/runs",
            &json!({
                "workflow": "entity",
                "workflow_id": "counter",
                "input": { "expect": 1000, "batch": 250 },
            }),
        )
        .await;
    assert_eq!(status, 201);

    async fn send(server: &Server, range: std::ops::Range<u64>) -> Vec<(i64, u64)> {
        let mut acks = Vec::new();
        let ids: Vec<u64> = range.collect();
        for chunk in ids.chunks(50) {
            let sends = chunk.iter().map(|&i| async move {
                let (status, ack) = server
                    .post("/v1/workflow-ids/counter/signals/item", &json!(i))
                    .await;
                assert_eq!(status, 202, "{ack}");
                (ack["signal_id"].as_i64().unwrap(), i)
            });
            acks.extend(futures::future::join_all(sends).await);
        }
        acks
    }
    // Concurrent senders: 50 requests in flight at a time.
    let first = tokio::join!(send(&server, 0..250), send(&server, 250..500));
    let mut acks = first.0;
    acks.extend(first.1);
    // The entity is busy consuming when the server dies.
    server.kill9();
    server.restart();
    let second = tokio::join!(send(&server, 500..750), send(&server, 750..1000));
    acks.extend(second.0);
    acks.extend(second.1);

    let mut latest = Value::Null;
    until("the entity to finish", 120, async || {
        let (_, run) = server.get("/v1/workflow-ids/counter").await;
        latest = run.clone();
        run["status"] == "completed" && run["output"]["continued_as"].is_null()
    })
    .await;
    let seen: Vec<u64> = latest["output"]["seen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    // Arrival order is the order the server acknowledged (signal ids).
    acks.sort();
    let arrival: Vec<u64> = acks.iter().map(|(_, i)| *i).collect();
    assert_eq!(seen.len(), 1000);
    assert_eq!(
        seen, arrival,
        "consumed exactly once each, in arrival order"
    );
    // Bounded journals: it continued as new every 250 signals.
    assert_eq!(latest["output"]["generation"], 3);
    let (_, runs) = server.get("/v1/runs?workflow=entity&limit=10").await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 4);
    assert_eq!(latest["custom_status"]["seen"], 1000);
}

#[tokio::test(flavor = "multi_thread")]
async fn signal_with_start_starts_an_absent_entity_and_only_signals_a_running_one() {
    let server = Server::start(&[]);
    server.deploy("entity", "entity").await;
    let body = |payload: Value| {
        json!({
            "workflow": "entity",
            "input": { "expect": 2 },
            "signal": "item",
            "payload": payload,
        })
    };
    let with_key = |key: &'static str, payload: Value| {
        let server = &server;
        let body = body(payload);
        async move {
            let resp = server
                .http
                .post(server.url("/v1/workflow-ids/solo/signal-with-start"))
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let (s1, first) = with_key("req-1", json!("a")).await;
    assert_eq!(s1, 202, "{first}");
    assert_eq!(first["created"], true);
    // A client retrying a request whose answer it lost: the same signal.
    let (s, retried) = with_key("req-1", json!("a")).await;
    assert_eq!(s, 202);
    assert_eq!(retried["duplicate"], true);
    assert_eq!(retried["signal_id"], first["signal_id"]);
    let (s2, second) = server
        .post("/v1/workflow-ids/solo/signal-with-start", &body(json!("b")))
        .await;
    assert_eq!(s2, 202);
    assert_eq!(second["created"], false);
    assert_eq!(second["run_id"], first["run_id"]);
    let run = server.wait(first["run_id"].as_str().unwrap(), 30).await;
    assert_eq!(run["output"]["seen"], json!(["a", "b"]));

    // Signals to what is not open are refused clearly.
    let (s, b) = server
        .post(
            &format!(
                "/v1/runs/{}/signals/item",
                first["run_id"].as_str().unwrap()
            ),
            &json!(1),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{b}"
    );
    let (s, b) = server
        .post("/v1/workflow-ids/nobody/signals/item", &json!(1))
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{b}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn request_response_between_workflows_through_a_cell_entity() {
    let server = Server::start(&["--resident-timer-ms", "200"]);
    server.deploy("cell", "cell").await;
    server.deploy("caller", "caller").await;
    let a = server
        .start_run(
            "caller",
            json!({ "cell": "c1", "version": "v2", "upgrade_ms": 400 }),
        )
        .await;
    let b = server
        .start_run(
            "caller",
            json!({ "cell": "c1", "version": "v3", "upgrade_ms": 400 }),
        )
        .await;
    let ra = server.wait(&a, 30).await;
    let rb = server.wait(&b, 30).await;
    assert_eq!(ra["status"], "completed", "{ra}");
    assert_eq!(rb["status"], "completed", "{rb}");
    // The entity funnels the requests: one upgrade after the other.
    let (first, second) = if ra["output"]["from"] == "" {
        (&ra, &rb)
    } else {
        (&rb, &ra)
    };
    assert_eq!(first["output"]["from"], "");
    assert_eq!(second["output"]["from"], first["output"]["to"]);
    let (_, cell) = server.get("/v1/workflow-ids/cell-c1").await;
    let cell = server.wait(cell["run_id"].as_str().unwrap(), 30).await;
    assert_eq!(cell["status"], "completed");
    assert_eq!(cell["output"]["served"].as_array().unwrap().len(), 2);
    assert_eq!(cell["output"]["version"], second["output"]["to"]);
}

/// A server with the parent/child guests, a `parent` run under
/// `workflow_id` whose `sleeper` child sleeps `sleep_ms`; answers the
/// parent's run id and the child once it is asleep.
async fn parent_with_sleeping_child(workflow_id: &str, sleep_ms: u64) -> (Server, String, Value) {
    let server = Server::start(&["--resident-timer-ms", "100"]);
    server.deploy("effects", "effects").await;
    server.deploy("sleeper", "sleeper").await;
    server.deploy("parent", "parent").await;
    let input = json!({ "tag": "kid", "sleep_ms": sleep_ms });
    let (_, started) = server
        .post(
            "/v1/runs",
            &json!({ "workflow": "parent", "workflow_id": workflow_id, "input": input }),
        )
        .await;
    let parent = started["run_id"].as_str().unwrap().to_string();
    let mut child = Value::Null;
    until("the child to sleep", 30, async || {
        let (s, run) = server
            .get(&format!("/v1/workflow-ids/{workflow_id}-child"))
            .await;
        child = run.clone();
        s == 200 && run["wake_at_ms"].is_i64()
    })
    .await;
    assert_eq!(child["parent_run_id"], parent.as_str());
    (server, parent, child)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parent_awaits_a_sleeping_child_and_both_survive_a_restart() {
    let (mut server, parent, child) = parent_with_sleeping_child("mom", 2500).await;
    server.restart();

    let run = server.wait(&parent, 60).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"]["child"]["tag"], "kid");
    assert_eq!(run["output"]["child"]["slept_enough"], true);
    let events = server.journal(&parent).await;
    assert_eq!(of_kind(&events, "child-started").len(), 1);
    assert_eq!(of_kind(&events, "child-completed").len(), 1);
    let child = server.wait(child["run_id"].as_str().unwrap(), 10).await;
    assert_eq!(child["status"], "completed");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_parent_cancels_its_child() {
    let (server, parent, child) = parent_with_sleeping_child("dad", 60_000).await;
    let child = child["run_id"].as_str().unwrap().to_string();
    let (s, _) = server
        .post(&format!("/v1/runs/{parent}/cancel"), &json!(null))
        .await;
    assert_eq!(s, 202);
    assert_eq!(server.wait(&parent, 30).await["status"], "cancelled");
    assert_eq!(server.wait(&child, 30).await["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_during_a_sleep_runs_cleanup_and_the_timer_never_fires_terminate_runs_none() {
    let server = Server::start(&["--resident-timer-ms", "100"]);
    server.deploy("effects", "effects").await;
    server.deploy("cancellable", "cancellable").await;
    let run_id = server.start_run("cancellable", json!(null)).await;
    server
        .until_journal(&run_id, "the timer", |e| {
            !of_kind(e, "timer-started").is_empty()
        })
        .await;
    let (s, answer) = server
        .post(&format!("/v1/runs/{run_id}/cancel"), &json!(null))
        .await;
    assert_eq!(s, 202, "{answer}");
    assert_eq!(answer["cancel_requested"], true);

    let run = server.wait(&run_id, 30).await;
    assert_eq!(run["status"], "cancelled", "{run}");
    let events = server.journal(&run_id).await;
    let interrupted = of_kind(&events, "interrupted");
    assert_eq!(interrupted.len(), 1);
    assert_eq!(interrupted[0]["failure"]["type"], "cancelled");
    let cleanup = of_kind(&events, "activity-scheduled");
    assert_eq!(cleanup.len(), 1);
    assert_eq!(cleanup[0]["input"]["n"], 99);
    assert_eq!(of_kind(&events, "activity-completed").len(), 1);
    assert!(of_kind(&events, "timer-fired").is_empty());
    assert_eq!(log_lines(&server.log(), "effect step n=99"), 1);

    let (s, b) = server
        .post(&format!("/v1/runs/{run_id}/cancel"), &json!(null))
        .await;
    assert_eq!((s, b["error"]["code"].as_str()), (409, Some("conflict")));

    // Terminate, unlike cancel, runs no cleanup: the same workflow ends at
    // once and its cleanup step never runs.
    let run_id = server.start_run("cancellable", json!(null)).await;
    server
        .until_journal(&run_id, "the timer", |e| {
            !of_kind(e, "timer-started").is_empty()
        })
        .await;
    let (s, run) = server
        .post(
            &format!("/v1/runs/{run_id}/terminate"),
            &json!({ "reason": "no cleanup" }),
        )
        .await;
    assert_eq!((s, &run["status"]), (200, &json!("terminated")), "{run}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = server.journal(&run_id).await;
    assert!(
        of_kind(&events, "activity-scheduled").is_empty(),
        "{events:?}"
    );
    assert_eq!(events.last().unwrap()["error"]["message"], "no cleanup");
    assert_eq!(log_lines(&server.log(), "effect step n=99"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_past_their_execution_timeout_end_timed_out() {
    let server = Server::start(&["--resident-timer-ms", "100", "--deadline-grace-ms", "2000"]);
    server.deploy("effects", "effects").await;
    server.deploy("deadline", "deadline").await;
    let start = |mode: &'static str| {
        let server = &server;
        async move {
            let (s, b) = server
                .post(
                    "/v1/runs",
                    &json!({ "workflow": "deadline", "input": mode, "execution_timeout_ms": 1500 }),
                )
                .await;
            assert_eq!(s, 201, "{b}");
            b["run_id"].as_str().unwrap().to_string()
        }
    };
    let asleep = start("sleep").await;
    let retrying = start("retry").await;

    let run = server.wait(&asleep, 30).await;
    assert_eq!(run["status"], "timed-out", "{run}");
    let took = run["ended_at_ms"].as_i64().unwrap() - run["created_at_ms"].as_i64().unwrap();
    assert!((1500..15_000).contains(&took), "{took}");
    let events = server.journal(&asleep).await;
    assert_eq!(
        of_kind(&events, "interrupted")[0]["failure"]["type"],
        "timed-out"
    );
    assert!(of_kind(&events, "timer-fired").is_empty());

    let run = server.wait(&retrying, 30).await;
    assert_eq!(run["status"], "timed-out", "{run}");
    let attempts = |log: &str| log_lines(log, &format!("effect fail key={retrying}:"));
    let before = attempts(&server.log());
    assert!((2..60).contains(&before), "{before} attempts");
    // The activity stopped retrying at the deadline.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(attempts(&server.log()), before);
    let events = server.journal(&retrying).await;
    let failed = events
        .iter()
        .find(|e| e["kind"] == "interrupted" || e["kind"] == "activity-failed")
        .unwrap();
    assert_eq!(failed["failure"]["type"], "timed-out", "{failed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_signal_cancel_and_follow_from_the_cli() {
    let server = Server::start(&["--resident-timer-ms", "100"]);
    server.deploy("entity", "entity").await;
    let (_, started) = server
        .post(
            "/v1/runs",
            &json!({ "workflow": "entity", "workflow_id": "cli-entity", "input": { "expect": 2 } }),
        )
        .await;
    let run_id = started["run_id"].as_str().unwrap().to_string();
    let weft = |args: &[&str]| {
        let (ok, out, err) = server.cli(args);
        (ok, out + &err)
    };
    let follower = {
        let addr = server.addr.clone();
        let run_id = run_id.clone();
        std::thread::spawn(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
                .args(["show", &run_id, "--follow"])
                .env("WEFT_SERVER", addr)
                .output()
                .unwrap()
        })
    };
    let (ok, out) = weft(&["signal", &run_id, "item", "--payload", "\"one\""]);
    assert!(ok, "{out}");
    assert!(out.contains("delivered to run"), "{out}");
    let (ok, out) = weft(&[
        "signal",
        "cli-entity",
        "item",
        "--workflow-id",
        "--payload",
        "2",
    ]);
    assert!(ok, "{out}");
    let run = server.wait(&run_id, 30).await;
    assert_eq!(run["output"]["seen"], json!(["one", 2]));
    let followed = follower.join().unwrap();
    let followed = String::from_utf8_lossy(&followed.stdout);
    assert!(followed.contains("signal `item` received"), "{followed}");
    assert!(followed.contains("status completed"), "{followed}");

    let (ok, out) = weft(&["cancel", &run_id]);
    assert!(!ok);
    assert!(out.contains("already ended"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn activities_reach_allowed_hosts_only() {
    // A real HTTP server on a loopback port.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route(
        "/hello",
        axum::routing::get(|| async { "hi from the test" }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let server = Server::start(&[]);
    let (s, v) = server
        .put(
            &format!("/v1/components/fetcher?allow_http=127.0.0.1:{port}"),
            crate::support::wasm("fetcher"),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["allow_http"], json!([format!("127.0.0.1:{port}")]));
    server.deploy("fetch", "fetch").await;
    let urls = json!([
        format!("http://127.0.0.1:{port}/hello"),
        format!("http://localhost:{port}/hello"),
    ]);
    let run_id = server.start_run("fetch", urls).await;
    let run = server.wait(&run_id, 30).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(
        run["output"][0],
        json!({ "status": 200, "body": "hi from the test" })
    );
    assert_eq!(run["output"][1]["err"], "http-denied");
    let message = run["output"][1]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("`localhost:{port}`")),
        "{message}"
    );
    assert!(message.contains("allow-list"), "{message}");
    // Refused at once, not retried.
    let events = server.journal(&run_id).await;
    assert!(of_kind(&events, "activity-attempt-failed").is_empty());
    assert!(server.log().contains("refused outbound HTTP"));
}

#[tokio::test(flavor = "multi_thread")]
async fn workflows_and_activities_deploy_in_any_order() {
    let mut server = Server::start(&["--resident-timer-ms", "100"]);
    // `steps` calls `step/add-one`, not deployed yet: the run waits.
    server.deploy("steps", "steps").await;
    let run_id = server.start_run("steps", json!(3)).await;
    let awaiting = |events: &[Value]| !of_kind(events, "activity-awaiting-deployment").is_empty();
    server
        .until_journal(&run_id, "the wait for a deployment", awaiting)
        .await;
    let (_, run) = server.get(&format!("/v1/runs/{run_id}")).await;
    assert_eq!(run["status"], "running", "{run}");
    let events = server.journal(&run_id).await;
    assert_eq!(
        of_kind(&events, "activity-awaiting-deployment")[0]["component"],
        "step"
    );
    let (ok, shown, err) = server.cli(&["show", &run_id]);
    assert!(ok, "{err}");
    assert!(
        shown.contains("waits for a deployment of activity component `step`"),
        "{shown}"
    );

    // The wait survives a crash, and the deploy ends it.
    server.kill9();
    server.restart();
    server
        .until_journal(&run_id, "the wait again after the restart", |events| {
            of_kind(events, "activity-awaiting-deployment").len() == 2
        })
        .await;
    server.deploy("step", "step").await;
    let run = server.wait(&run_id, 30).await;
    assert_eq!(
        (run["status"].as_str(), &run["output"]),
        (Some("completed"), &json!(3)),
        "{run}"
    );

    // Bounded by the call's schedule-to-close timeout.
    server.deploy("deadline", "deadline").await;
    let absent = server.start_run("deadline", json!("absent")).await;
    let run = server.wait(&absent, 30).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"]["err"], "timed-out", "{run}");
    let message = run["output"]["message"].as_str().unwrap();
    assert!(
        message.contains("no activity component named `absent` was deployed"),
        "{message}"
    );
}
