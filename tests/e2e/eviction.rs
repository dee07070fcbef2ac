//! When an idle run gives its memory back: at once when only the clock can
//! end its wait, after lingering when a signal or update may come soon,
//! and early when another execution waits for its slot.

use crate::support::Server;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Poll the run until it reads `evicted` (failing after `secs`); answers
/// how long that took.
async fn until_evicted(server: &Server, run_id: &str, secs: u64) -> Duration {
    let began = Instant::now();
    loop {
        let (_, run) = server.get(&format!("/v1/runs/{run_id}")).await;
        if run["evicted"] == true {
            return began.elapsed();
        }
        assert!(
            began.elapsed() < Duration::from_secs(secs),
            "still resident after {secs} s: {run}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The run's `evicted` flag now.
async fn evicted(server: &Server, run_id: &str) -> Value {
    server.get(&format!("/v1/runs/{run_id}")).await.1["evicted"].clone()
}

/// A counter (it waits for `add` updates) under `workflow_id`.
async fn counter(server: &Server, workflow_id: &str) -> String {
    server
        .start_run_with_id("counter", workflow_id, json!({ "total": 0 }))
        .await
}

/// Add to a counter; answers its new total.
async fn add(server: &Server, workflow_id: &str, amount: u64) -> Value {
    let (status, answer) = server
        .post(
            &format!("/v1/workflow-ids/{workflow_id}/updates/add"),
            &json!({ "input": { "amount": amount } }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    answer["output"]["total"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_asleep_for_an_hour_leaves_memory_at_once_and_one_awaiting_updates_lingers() {
    // Idle runs linger up to a minute here: only one a notice may wake does.
    let server = Server::start(&["--resident-timer-ms", "60000", "--idle-linger-ms", "60000"]);
    server.deploy("deadline", "deadline").await;
    server.deploy("step", "step").await;
    server.deploy("counter", "counter").await;
    let sleeper = server.start_run("deadline", json!("sleep")).await;
    let took = until_evicted(&server, &sleeper, 10).await;
    assert!(took < Duration::from_secs(10), "{took:?}");

    let run = counter(&server, "lingers").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(evicted(&server, &run).await, false, "lingering");
    assert_eq!(add(&server, "lingers", 2).await, json!(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lingering_run_gives_its_slot_to_a_start_waiting_for_one() {
    // Four run slots, three for one namespace: three idle counters hold
    // all of the default namespace's, and would for a minute.
    let server = Server::start(&[
        "--resident-timer-ms",
        "60000",
        "--idle-linger-ms",
        "60000",
        "--max-resident-runs",
        "4",
    ]);
    server.deploy("step", "step").await;
    server.deploy("chain10", "chain10").await;
    server.deploy("counter", "counter").await;
    let mut counters = Vec::new();
    for i in 0..3 {
        let id = format!("counter-{i}");
        counters.push((counter(&server, &id).await, id));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (run, _) in &counters {
        assert_eq!(evicted(&server, run).await, false, "lingering");
    }
    let began = Instant::now();
    let chain = server.start_run("chain10", json!(5)).await;
    let run = server.wait(&chain, 20).await;
    assert_eq!(run["output"], json!(15), "{run}");
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "{:?}",
        began.elapsed()
    );
    // One counter gave its slot up, and still answers (resumed by replay).
    let mut gave_up = None;
    for (run, id) in &counters {
        if evicted(&server, run).await == true {
            gave_up = Some(id.clone());
        }
    }
    let gave_up = gave_up.expect("a counter left memory for the start");
    assert_eq!(add(&server, &gave_up, 3).await, json!(4));
}

#[tokio::test(flavor = "multi_thread")]
async fn by_default_an_idle_run_awaiting_updates_leaves_memory_within_a_second_or_so() {
    let server = Server::start(&[]);
    server.deploy("step", "step").await;
    server.deploy("counter", "counter").await;
    let run = counter(&server, "idle").await;
    // It lingers --idle-linger-ms (1 s) for an update, then is evicted;
    // the bound leaves room for a loaded machine, and is below the 5 s it
    // lingered before (--resident-timer-ms).
    let took = until_evicted(&server, &run, 4).await;
    assert!(
        took >= Duration::from_millis(500),
        "{took:?}: it did not linger"
    );
    // Evicted, it is resumed by replay for the next update.
    assert_eq!(add(&server, "idle", 1).await, json!(2));
}
