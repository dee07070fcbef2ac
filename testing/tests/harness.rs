//! The harness itself, on the fixtures: virtual time, explicit advances,
//! mocks, signals, cancellation, and replay checks.

use serde_json::json;
use std::time::{Duration, Instant};
use weft_testing::{ErrorInfo, RunError, RunStatus, TestEnv, build_guest};

const DAY_MS: u64 = 86_400_000;

/// `effects/echo` answers the label it was given.
fn echo(env: &TestEnv) -> weft_testing::Mock {
    env.mock_activity("effects/echo", |call| Ok(call.input["i"].clone()))
}

#[tokio::test(flavor = "multi_thread")]
async fn four_weeks_of_sleeps_pass_in_virtual_time() {
    let wasm = build_guest("versioned").unwrap();
    let env = TestEnv::new().await.unwrap();
    env.deploy("versioned", &wasm).await.unwrap();
    let steps = echo(&env);
    let began = env.now_ms();
    let real = Instant::now();
    let run = env
        .start(
            "versioned",
            json!({ "sleep1_ms": 14 * DAY_MS, "sleep2_ms": 14 * DAY_MS }),
        )
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap()["steps"], json!(["A", "B", "D"]));
    let took = real.elapsed();
    let passed = env.now_ms() - began;
    println!("28 days of virtual time ({passed} ms) in {took:?} of real time");
    assert!(passed >= 28 * DAY_MS as i64, "{passed}");
    assert!(took < Duration::from_secs(60), "{took:?}");
    assert_eq!(
        steps.inputs(),
        [json!({"i": "A"}), json!({"i": "B"}), json!({"i": "D"})]
    );
    let journal = run.journal().await.unwrap();
    let fired: Vec<i64> = journal
        .iter()
        .filter(|e| e.event.kind() == "timer-fired")
        .map(|e| e.at_ms)
        .collect();
    assert_eq!(fired.len(), 2, "{journal:?}");
    assert!(fired[1] - fired[0] >= 14 * DAY_MS as i64, "{fired:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn advancing_the_clock_shows_the_run_between_its_timers() {
    let wasm = build_guest("versioned").unwrap();
    let env = TestEnv::new().await.unwrap();
    env.deploy("versioned", &wasm).await.unwrap();
    let steps = echo(&env);
    let run = env
        .start(
            "versioned",
            json!({ "sleep1_ms": DAY_MS, "sleep2_ms": 7 * DAY_MS }),
        )
        .await
        .unwrap();
    let began = env.now_ms();

    env.advance(Duration::from_secs(3600)).await;
    let row = run.record().await.unwrap();
    assert_eq!(row.status, RunStatus::Running);
    assert_eq!(steps.count(), 1);
    let timers = run.pending_timers().await.unwrap();
    assert_eq!(timers.len(), 1, "{timers:?}");
    let due = timers[0] - began;
    assert!((due - DAY_MS as i64).abs() < 1000, "{timers:?} {began}");

    env.advance(Duration::from_millis(DAY_MS)).await;
    assert_eq!(steps.count(), 2, "the first sleep is over");
    assert_eq!(run.record().await.unwrap().status, RunStatus::Running);

    env.advance(Duration::from_millis(7 * DAY_MS)).await;
    assert_eq!(steps.count(), 3);
    assert_eq!(run.record().await.unwrap().status, RunStatus::Completed);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_waiting_for_a_signal_says_so_and_goes_on_when_it_comes() {
    let wasm = build_guest("versioned").unwrap();
    let env = TestEnv::new().await.unwrap();
    env.deploy("versioned", &wasm).await.unwrap();
    echo(&env);
    let run = env
        .start(
            "versioned",
            json!({ "sleep1_ms": 0, "sleep2_ms": DAY_MS, "signal": true }),
        )
        .await
        .unwrap();
    let waiting = run.result().await.unwrap_err();
    assert!(
        matches!(waiting.downcast_ref(), Some(RunError::Waiting { .. })),
        "{waiting}"
    );
    run.signal("go", json!({})).await.unwrap();
    assert_eq!(run.result().await.unwrap()["steps"], json!(["A", "B", "D"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_mock_is_retried_with_backoff_in_virtual_time() {
    let wasm = build_guest("versioned").unwrap();
    let env = TestEnv::new().await.unwrap();
    env.deploy("versioned", &wasm).await.unwrap();
    // B fails three times, then works; the default policy backs off
    // 1 s, 2 s, 4 s (virtual).
    let steps = env.mock_activity("effects", |call| {
        if call.input["i"] == "B" && call.attempt <= 3 {
            return Err(ErrorInfo::new("flaky", format!("attempt {}", call.attempt)));
        }
        Ok(call.input["i"].clone())
    });
    let run = env
        .start("versioned", json!({ "sleep1_ms": 0, "sleep2_ms": 0 }))
        .await
        .unwrap();
    let began = env.now_ms();
    assert_eq!(run.result().await.unwrap()["steps"], json!(["A", "B", "D"]));
    assert_eq!(steps.count(), 6, "A, B four times, D");
    assert!(env.now_ms() - began >= 7000, "the backoff passed");
    let failed = run
        .journal()
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event.kind() == "activity-attempt-failed")
        .count();
    assert_eq!(failed, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_retryable_failure_fails_the_run_with_its_kind() {
    let wasm = build_guest("versioned").unwrap();
    let env = TestEnv::new().await.unwrap();
    env.deploy("versioned", &wasm).await.unwrap();
    env.mock_activity("effects/echo", |_| {
        Err(ErrorInfo::new(
            "payload-limit",
            "too big, and never retried",
        ))
    });
    let run = env
        .start("versioned", json!({ "sleep1_ms": 0, "sleep2_ms": 0 }))
        .await
        .unwrap();
    let err = run.result().await.unwrap_err();
    match err.downcast_ref() {
        Some(RunError::Ended { status, error }) => {
            assert_eq!(*status, RunStatus::Failed);
            // The activity's own error, under the boundary error the
            // workflow propagated.
            assert_eq!(error["kind"], "activity-failed", "{error}");
            assert_eq!(error["cause"]["kind"], "payload-limit", "{error}");
        }
        _ => panic!("{err}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_run_cleans_up() {
    let wasm = build_guest("cancellable").unwrap();
    let env = TestEnv::new().await.unwrap();
    env.deploy("cancellable", &wasm).await.unwrap();
    let cleanup = env.mock_activity("effects/step", |call| Ok(call.input.clone()));
    let run = env.start("cancellable", json!({})).await.unwrap();
    env.settle().await;
    run.cancel().await.unwrap();
    let err = run.result().await.unwrap_err();
    match err.downcast_ref() {
        Some(RunError::Ended { status, .. }) => assert_eq!(*status, RunStatus::Cancelled),
        _ => panic!("{err}"),
    }
    assert_eq!(cleanup.count(), 1);
}

/// The divergence a reordered change gives is the server's, word for word
/// (tests/e2e/versioning.rs checks the same text from an upgrade).
#[tokio::test(flavor = "multi_thread")]
async fn a_reordered_change_fails_replay_with_the_servers_divergence() {
    let v1 = build_guest("versioned").unwrap();
    let reordered = build_guest("versioned-reorder").unwrap();
    let journal = {
        let env = TestEnv::new().await.unwrap();
        env.deploy("versioned", &v1).await.unwrap();
        echo(&env);
        let run = env
            .start(
                "versioned",
                json!({ "sleep1_ms": DAY_MS, "sleep2_ms": DAY_MS }),
            )
            .await
            .unwrap();
        run.result().await.unwrap();
        run.export().await.unwrap()
    };
    let events = TestEnv::replay(&v1, journal.clone()).await.unwrap();
    assert_eq!(events, journal.events.len());
    let divergence = TestEnv::replay(&reordered, journal)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        divergence.ends_with(
            "event 1: journal has activity `effects/echo` with input {\"i\":\"A\"}, \
             code asked for activity `effects/echo` with input {\"i\":\"B\"}"
        ),
        "{divergence}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn updates_are_answered_rejected_or_refused_through_the_run() {
    let wasm = build_guest("counter").unwrap();
    let env = TestEnv::new().await.unwrap();
    env.deploy("counter", &wasm).await.unwrap();
    env.mock_activity("step/add-one", |call| {
        Ok(json!(call.input.as_u64().unwrap() + 1))
    });
    let run = env.start("counter", json!({ "total": 10 })).await.unwrap();
    // A handler that sleeps a week: the update's answer waits in virtual time.
    let added = run
        .update("add", json!({ "amount": 5, "wait_ms": 7 * DAY_MS }))
        .await
        .unwrap();
    assert_eq!(added, Ok(json!({ "total": 16 })));
    let refused = run.update("add", json!({ "amount": -1 })).await.unwrap();
    assert_eq!(refused.unwrap_err().kind, "negative-amount");
    let failed = run
        .update("add", json!({ "amount": 1, "fail": true }))
        .await
        .unwrap();
    assert_eq!(failed.unwrap_err().kind, "handler-refused");
    assert_eq!(run.status().await.unwrap(), Some(json!({ "total": 16 })));
    run.signal("stop", json!({})).await.unwrap();
    assert_eq!(run.result().await.unwrap(), json!({ "total": 16 }));
}

/// A corpus of exported journals, as a team keeps from production: the
/// same code replays them all; a reordered change names each journal.
#[tokio::test(flavor = "multi_thread")]
async fn a_corpus_of_journals_replays_or_names_each_divergence() {
    let v1 = build_guest("versioned").unwrap();
    let reordered = build_guest("versioned-reorder").unwrap();
    let corpus = tempfile_dir();
    {
        let env = TestEnv::new().await.unwrap();
        env.deploy("versioned", &v1).await.unwrap();
        echo(&env);
        for (i, sleep) in [DAY_MS, 7 * DAY_MS].into_iter().enumerate() {
            let run = env
                .start(
                    "versioned",
                    json!({ "sleep1_ms": sleep, "sleep2_ms": sleep }),
                )
                .await
                .unwrap();
            run.result().await.unwrap();
            let export = serde_json::to_string(&run.export().await.unwrap()).unwrap();
            std::fs::write(corpus.join(format!("run{i}.json")), export).unwrap();
        }
    }
    assert_eq!(weft_testing::replay_corpus(&v1, &corpus).await.unwrap(), 2);
    let report = weft_testing::replay_corpus(&reordered, &corpus)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        report.starts_with("2 of 2 journals do not replay"),
        "{report}"
    );
    for name in ["run0.json", "run1.json"] {
        assert!(
            report
                .lines()
                .any(|l| l.contains(name) && l.contains("event 1: journal has activity")),
            "{report}"
        );
    }
    std::fs::remove_dir_all(&corpus).unwrap();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "weft-corpus-{}-{}",
        std::process::id(),
        weft_testing::now_ms()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Activities can be the real components too: deployed like workflows.
#[tokio::test(flavor = "multi_thread")]
async fn a_real_activity_component_runs_beside_mocks() {
    let hello = build_guest("hello").unwrap();
    let greeter = build_guest("greeter").unwrap();
    let env = TestEnv::new().await.unwrap();
    env.deploy("hello", &hello).await.unwrap();
    env.deploy("greeter", &greeter).await.unwrap();
    let run = env.start("hello", json!({ "name": "Ada" })).await.unwrap();
    let out = run.result().await.unwrap();
    assert_eq!(out["greeting"], "Hello, Ada!", "{out}");
}
