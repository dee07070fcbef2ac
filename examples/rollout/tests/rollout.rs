//! The rollout, tested in-process with weft-testing: the real rollout and
//! cell-entity components, the cloud (`sim/*`) mocked, on virtual time.
//! Copy this file to test your own workflow.

use serde_json::{Value, json};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use weft_testing::{Mock, RunError, TestEnv, build_guest};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// The rollout and the cell entity it drives, deployed.
async fn env() -> TestEnv {
    let rollout = build_guest("rollout").unwrap();
    let cell = build_guest("cell-entity").unwrap();
    let env = TestEnv::new().await.unwrap();
    env.deploy("rollout", rollout).await.unwrap();
    env.deploy("cell-entity", cell).await.unwrap();
    env
}

/// The simulated cloud: chat posts and service upgrades are recorded with
/// the virtual time they happened at; canaries of the cells in `failing`
/// fail while `failing_now` is set.
struct Cloud {
    sim: Mock,
    posts: Arc<Mutex<Vec<(i64, Value)>>>,
    upgrades: Arc<Mutex<Vec<(i64, String)>>>,
}

fn cloud(env: &TestEnv, failing: &'static [&'static str], failing_now: Arc<AtomicBool>) -> Cloud {
    let posts = Arc::new(Mutex::new(Vec::new()));
    let upgrades = Arc::new(Mutex::new(Vec::new()));
    let (p, u) = (posts.clone(), upgrades.clone());
    let sim = env.mock_activity("sim", move |call| {
        let now = weft_testing::now_ms();
        let cell = call.input["cell"].as_str().unwrap_or_default().to_string();
        Ok(match call.name.as_str() {
            "sim/post" => {
                p.lock().unwrap().push((now, call.input.clone()));
                json!({})
            }
            "sim/upgrade-service" => {
                u.lock().unwrap().push((now, cell));
                json!({ "upgraded": true })
            }
            "sim/canary" => {
                let ok = !(failing.contains(&cell.as_str()) && failing_now.load(Ordering::SeqCst));
                json!({ "ok": ok })
            }
            "sim/cell-state" => json!({}),
            "sim/save-cell-state" => json!({}),
            other => panic!("unexpected activity {other}"),
        })
    });
    Cloud {
        sim,
        posts,
        upgrades,
    }
}

/// Three rings: a canary cell, then two batches a day apart, then two
/// batches a week apart; business hours 9–17 on weekdays; each cell
/// pauses a minute between services and watches its canary for an hour.
fn plan() -> Value {
    json!({
        "version": "2.0",
        "cloud": "test",
        "business_hours": { "start_hour": 9, "end_hour": 17 },
        "cell": { "pause_ms": MINUTE, "canary_window_ms": HOUR, "canary_interval_ms": 10 * MINUTE },
        "batches": [
            { "ring": 0, "cells": ["c1"] },
            { "ring": 1, "cells": ["c2", "c3"], "wait_ms": DAY },
            { "ring": 1, "cells": ["c4"], "wait_ms": DAY },
            { "ring": 2, "cells": ["c5", "c6"], "wait_ms": 7 * DAY },
            { "ring": 2, "cells": ["c7"], "wait_ms": 7 * DAY },
        ]
    })
}

fn in_business_hours(at_ms: i64) -> bool {
    let day = at_ms.div_euclid(DAY);
    let hour = at_ms.rem_euclid(DAY) / HOUR;
    let weekday = (day + 3).rem_euclid(7); // Monday = 0
    weekday < 5 && (9..17).contains(&hour)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_over_three_rings_takes_weeks_of_virtual_time_and_milliseconds_of_real() {
    let env = env().await;
    let cloud = cloud(&env, &[], Arc::default());
    let began = env.now_ms();
    let real = Instant::now();
    let run = env.start("rollout", plan()).await.unwrap();
    let output = run.result().await.unwrap();
    let took = real.elapsed();
    let passed = env.now_ms() - began;
    // Straight to stderr, past the test harness's capture: CI's log shows it.
    let _ = writeln!(
        std::io::stderr(),
        "rollout: {:.1} days of virtual time in {took:?} of real time ({} activity calls)",
        passed as f64 / DAY as f64,
        cloud.sim.count()
    );
    assert_eq!(
        output,
        json!({ "version": "2.0", "upgraded": ["c1", "c2", "c3", "c4", "c5", "c6", "c7"], "skipped": [] })
    );
    assert!(passed >= 16 * DAY, "{passed}");

    // Four services per cell, each upgrade inside business hours, the
    // rings in order.
    let upgrades = cloud.upgrades.lock().unwrap().clone();
    assert_eq!(upgrades.len(), 7 * 4);
    for (at, cell) in &upgrades {
        assert!(in_business_hours(*at), "{cell} upgraded at {at}");
    }
    let first_of = |cell: &str| upgrades.iter().find(|(_, c)| c == cell).unwrap().0;
    assert!(first_of("c2") - first_of("c1") >= DAY);
    assert!(first_of("c5") - first_of("c4") >= 7 * DAY);

    // A chat line before each batch, and one at the end; no page.
    let posts = cloud.posts.lock().unwrap().clone();
    let kinds: Vec<&str> = posts
        .iter()
        .map(|(_, p)| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["chat"; 6]);
    assert!(
        posts[5].1["text"]
            .as_str()
            .unwrap()
            .contains("done: 7 cells")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_canary_halts_the_rollout_until_an_operator_resumes_it() {
    let env = env().await;
    let failing_now = Arc::new(AtomicBool::new(true));
    let cloud = cloud(&env, &["c3"], failing_now.clone());
    let run = env.start("rollout", plan()).await.unwrap();

    // It halts in ring 1 and waits for an operator: nothing else is due.
    let halted = run.result().await.unwrap_err();
    assert!(
        matches!(halted.downcast_ref(), Some(RunError::Waiting { .. })),
        "{halted}"
    );
    let status = run.status().await.unwrap().unwrap();
    assert_eq!(status["state"], "halted", "{status}");
    assert_eq!(status["at"]["ring"], 1);
    let pages = || {
        cloud
            .posts
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, p)| p["kind"] == "page")
            .count()
    };
    assert_eq!(pages(), 1);
    let upgraded_cells = |cells: &[&str]| {
        let upgrades = cloud.upgrades.lock().unwrap();
        cells.iter().all(|c| upgrades.iter().any(|(_, u)| u == c))
    };
    assert!(!upgraded_cells(&["c4"]), "the next batch waits");

    // The canary is fixed; the operator resumes: c3 is tried again, and
    // the rollout goes on to the end.
    failing_now.store(false, Ordering::SeqCst);
    run.signal("operator", json!({ "action": "resume" }))
        .await
        .unwrap();
    let output = run.result().await.unwrap();
    assert_eq!(
        output["upgraded"],
        json!(["c1", "c2", "c3", "c4", "c5", "c6", "c7"])
    );
    assert_eq!(pages(), 1);
}
