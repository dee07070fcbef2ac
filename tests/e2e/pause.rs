//! Pausing a run: it answers no await while paused (timers that fall due
//! wait), and the activities it was running finish and are journaled, then
//! taken without running again once it is unpaused.

use crate::support::{Server, log_lines, of_kind};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Unpause, waiting out (on Postgres) a dead node's lease on the run: the
/// verb answers 409 until it lapses.
async fn unpause(server: &Server, run_id: &str, reason: &str) -> (u16, Value) {
    let path = format!("/v1/runs/{run_id}/unpause");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, run) = server.post(&path, &json!({ "reason": reason })).await;
        if status != 409 || Instant::now() >= deadline {
            return (status, run);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["kind"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_run_holds_its_timer_across_a_crash_until_unpaused() {
    let mut server = Server::start(&["--resident-timer-ms", "100"]);
    server.deploy("effects", "effects").await;
    server.deploy("sleeper", "sleeper").await;
    let run_id = server
        .start_run("sleeper", json!({ "tag": "p", "sleep_ms": 1500 }))
        .await;
    server
        .until_journal(&run_id, "the timer", |events| {
            !of_kind(events, "timer-started").is_empty()
        })
        .await;
    let (ok, out, err) = server.cli(&["pause", &run_id, "--reason", "incident 9"]);
    assert!(ok && out.contains("paused"), "{out}{err}");
    let (status, again) = server
        .post(&format!("/v1/runs/{run_id}/pause"), &json!({}))
        .await;
    assert_eq!(status, 409, "{again}");
    assert!(
        again["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already paused")
    );

    // The timer falls due while paused, across a kill -9: it waits.
    server.kill9();
    server.restart();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, run) = server.get(&format!("/v1/runs/{run_id}")).await;
    assert_eq!(
        (&run["status"], &run["paused"]),
        (&json!("running"), &json!(true)),
        "{run}"
    );
    let events = server.journal(&run_id).await;
    assert!(of_kind(&events, "timer-fired").is_empty(), "{events:?}");
    assert_eq!(of_kind(&events, "paused")[0]["reason"], "incident 9");

    let (status, run) = unpause(&server, &run_id, "all clear").await;
    assert_eq!((status, &run["paused"]), (200, &json!(false)), "{run}");
    let run = server.wait(&run_id, 30).await;
    assert_eq!(run["status"], "completed", "{run}");
    let events = server.journal(&run_id).await;
    let kinds = kinds(&events);
    let unpaused = kinds.iter().position(|k| *k == "unpaused").unwrap();
    let fired = kinds.iter().position(|k| *k == "timer-fired").unwrap();
    assert!(unpaused < fired, "{kinds:?}");

    // Only open runs pause; unknown ones are 404.
    let (status, _) = server
        .post(&format!("/v1/runs/{run_id}/pause"), &json!({}))
        .await;
    assert_eq!(status, 409);
    let (status, _) = server.post("/v1/runs/nope/pause", &json!({})).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_runs_running_activity_finishes_is_journaled_and_is_not_run_again() {
    let mut server = Server::start(&[]);
    server.deploy("effects", "effects").await;
    server.deploy("sleeper", "sleeper").await;
    // The slow step has started when it logs (its scheduling is journaled
    // only with its outcome).
    let slow_steps_started = async |server: &Server, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while log_lines(&server.log(), "effect step n=2") < n {
            assert!(Instant::now() < deadline, "the slow step did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };

    // Paused and unpaused while its activity runs: the activity is not
    // disturbed and the run takes its result as usual.
    let brief = server
        .start_run(
            "sleeper",
            json!({ "tag": "brief", "sleep_ms": 10, "slow_ms": 1500 }),
        )
        .await;
    slow_steps_started(&server, 1).await;
    let (status, run) = server
        .post(
            &format!("/v1/runs/{brief}/pause"),
            &json!({ "reason": "look" }),
        )
        .await;
    assert_eq!((status, &run["paused"]), (200, &json!(true)), "{run}");
    let (status, again) = server
        .post(&format!("/v1/runs/{brief}/pause"), &json!({}))
        .await;
    assert_eq!(status, 409, "{again}");
    let (status, run) = unpause(&server, &brief, "seen").await;
    assert_eq!((status, &run["paused"]), (200, &json!(false)), "{run}");
    let run = server.wait(&brief, 30).await;
    assert_eq!(run["status"], "completed", "{run}");
    let events = server.journal(&brief).await;
    assert!(of_kind(&events, "activity-held").is_empty(), "{events:?}");

    // Paused while its activity runs, for longer: the activity finishes,
    // its outcome is journaled at once (and survives a kill -9), nothing
    // is delivered until the run is unpaused, and it is not run again.
    let run_id = server
        .start_run(
            "sleeper",
            json!({ "tag": "held", "sleep_ms": 10, "slow_ms": 1500 }),
        )
        .await;
    slow_steps_started(&server, 2).await;
    let (ok, out, err) = server.cli(&["pause", &run_id, "--reason", "incident 10"]);
    assert!(ok && out.contains("paused"), "{out}{err}");
    server
        .until_journal(&run_id, "the held outcome", |events| {
            !of_kind(events, "activity-held").is_empty()
        })
        .await;
    let events = server.journal(&run_id).await;
    let held = &of_kind(&events, "activity-held")[0];
    assert_eq!(
        (&held["handle"], &held["attempts"], &held["output"]),
        (&json!(2), &json!(1), &json!({ "n": 2, "done": true })),
        "{held}"
    );
    assert_eq!(
        of_kind(&events, "activity-completed").len(),
        1,
        "{events:?}"
    );
    let (_, run) = server.get(&format!("/v1/runs/{run_id}")).await;
    assert_eq!(
        (&run["status"], &run["paused"]),
        (&json!("running"), &json!(true)),
        "{run}"
    );

    server.kill9();
    server.restart();
    let (status, run) = unpause(&server, &run_id, "all clear").await;
    assert_eq!((status, &run["paused"]), (200, &json!(false)), "{run}");
    let run = server.wait(&run_id, 30).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"]["second"], json!({ "n": 2, "done": true }));
    let events = server.journal(&run_id).await;
    let order = kinds(&events);
    let at = |kind: &str| order.iter().rposition(|k| *k == kind).unwrap();
    assert!(
        at("paused") < at("activity-held")
            && at("activity-held") < at("unpaused")
            && at("unpaused") < at("activity-completed"),
        "{order:?}"
    );
    let completed = of_kind(&events, "activity-completed");
    assert_eq!(
        (&completed[1]["handle"], &completed[1]["attempts"]),
        (&json!(2), &json!(1))
    );
    // Each run's slow step ran once (the brief run's and this one's).
    assert_eq!(log_lines(&server.log(), "effect step n=2"), 2);
}
