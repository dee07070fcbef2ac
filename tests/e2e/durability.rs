//! Durability: kill -9, eviction and replay, divergence, content addressing.

use crate::support::{Server, log_lines, of_kind, wasm};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The values the first execution drew, as the journal holds them (they
/// travel in the first activity's input).
fn first_draws(events: &[Value]) -> Value {
    of_kind(events, "activity-scheduled")[0]["input"].clone()
}

fn check_sleeper_output(run: &Value, events: &[Value], tag: &str) {
    assert_eq!(run["status"], "completed", "{run}");
    let out = &run["output"];
    assert_eq!(out["tag"], tag);
    assert_eq!(out["first"], json!({ "n": 1, "done": true }));
    assert_eq!(out["second"], json!({ "n": 2, "done": true }));
    assert_eq!(out["slept_enough"], true);
    // The replayed execution saw exactly what the first one drew.
    let draws = first_draws(events);
    assert_eq!(out["t0"], draws["t0"]);
    assert_eq!(out["hashed"], draws["hashed"]);
    assert_eq!(out["lucky"], draws["lucky"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_while_runs_sleep_and_an_activity_is_in_flight() {
    let mut server = Server::start(&["--resident-timer-ms", "100"]);
    server.deploy("effects", "effects").await;
    server.deploy("sleeper", "sleeper").await;

    let mut sleeping = Vec::new();
    for i in 0..4 {
        let tag = format!("sleepy-{i}");
        let input = json!({ "tag": tag, "sleep_ms": 2500 });
        sleeping.push((server.start_run("sleeper", input).await, tag));
    }
    let busy_tag = "busy".to_string();
    let busy = server
        .start_run(
            "sleeper",
            json!({ "tag": busy_tag, "sleep_ms": 0, "slow_ms": 3000 }),
        )
        .await;

    // Every sleeper is evicted (its timer is journaled and the run row has
    // a wake-up time); the busy run's second activity is executing.
    for (run_id, _) in &sleeping {
        server
            .until_journal(run_id, "the timer", |e| {
                !of_kind(e, "timer-started").is_empty()
            })
            .await;
    }
    for (run_id, _) in &sleeping {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (_, run) = server.get(&format!("/v1/runs/{run_id}")).await;
            if run["wake_at_ms"].is_i64() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never suspended: {run}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !server.log().contains("effect step n=2") {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow activity never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    server.restart();

    for (run_id, tag) in &sleeping {
        let run = server.wait(run_id, 60).await;
        let events = server.journal(run_id).await;
        check_sleeper_output(&run, &events, tag);
        // Completed before the kill: executed exactly once.
        let first_key = format!(
            "{run_id}:{}",
            of_kind(&events, "activity-scheduled")[0]["seq"]
        );
        assert_eq!(log_lines(&server.log(), &format!("key={first_key} ")), 1);
    }
    let run = server.wait(&busy, 60).await;
    let events = server.journal(&busy).await;
    check_sleeper_output(&run, &events, &busy_tag);
    let log = server.log();
    let scheduled = of_kind(&events, "activity-scheduled");
    let first_key = format!("{busy}:{}", scheduled[0]["seq"]);
    let second_key = format!("{busy}:{}", scheduled[1]["seq"]);
    assert_eq!(
        log_lines(&log, &format!("key={first_key} ")),
        1,
        "journaled: not re-run"
    );
    // In flight at the kill: at least once, with the same idempotency key.
    assert_eq!(log_lines(&log, &format!("key={second_key} ")), 2);
    assert_eq!(of_kind(&events, "activity-completed").len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_evicted_run_replays_to_the_same_state() {
    let server = Server::start(&["--resident-timer-ms", "50"]);
    server.deploy("effects", "effects").await;
    server.deploy("sleeper", "sleeper").await;
    let run_id = server
        .start_run("sleeper", json!({ "tag": "evicted", "sleep_ms": 700 }))
        .await;
    let run = server.wait(&run_id, 30).await;
    let events = server.journal(&run_id).await;
    check_sleeper_output(&run, &events, "evicted");

    let log = server.log();
    // It was evicted and resumed by replaying its journal...
    assert!(
        log.lines()
            .any(|l| l.contains(&run_id) && l.contains("replaying the journal")),
        "{log}"
    );
    // ...without running the completed activity again.
    let first_key = format!(
        "{run_id}:{}",
        of_kind(&events, "activity-scheduled")[0]["seq"]
    );
    assert_eq!(log_lines(&log, &format!("key={first_key} ")), 1);

    // std's SystemTime::now() and HashMap seed went through the journal.
    let clocks = of_kind(&events, "clock");
    let wall: Vec<&&Value> = clocks
        .iter()
        .filter(|e| e["source"] == "wall-clock")
        .collect();
    assert!(!wall.is_empty(), "{events:?}");
    let t0_ms = wall[0]["nanos"].as_u64().unwrap() / 1_000_000;
    assert_eq!(run["output"]["t0"], t0_ms);
    let random = of_kind(&events, "random");
    assert!(
        random
            .iter()
            .any(|e| e["source"] == "random" || e["source"] == "insecure-seed")
    );
    let context_random = random.iter().find(|e| e["source"] == "context").unwrap();
    let bytes = hex::decode(context_random["hex"].as_str().unwrap()).unwrap();
    let lucky = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    assert_eq!(run["output"]["lucky"], lucky);
}

#[tokio::test(flavor = "multi_thread")]
async fn components_are_content_addressed() {
    let server = Server::start(&[]);
    let v1 = server.deploy("sleeper", "sleeper").await;
    let again = server.deploy("sleeper", "sleeper").await;
    assert_eq!(v1, again, "the same bytes are the same version");
    let digest = hex::encode(Sha256::digest(wasm("sleeper")));
    assert_eq!(v1["digest"], digest);

    // Changed code is a new digest and a new version; v1 stays as it was.
    let v2 = server.deploy("sleeper", "sleeper-v2").await;
    assert_eq!(v2["version"], 2);
    assert_ne!(v2["digest"], v1["digest"]);
    let bytes = server
        .http
        .get(server.url("/v1/components/sleeper/versions/1/wasm"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(hex::encode(Sha256::digest(&bytes)), digest);
    let (_, listed) = server.get("/v1/components/sleeper").await;
    assert_eq!(listed["latest"], 2);
    assert_eq!(listed["versions"][0]["digest"], v1["digest"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_does_not_recompile() {
    let mut server = Server::start(&[]);
    let greeter = server.deploy("greeter", "greeter").await;
    let hello = server.deploy("hello", "hello").await;
    let compiled = |log: &str, v: &Value| {
        log_lines(
            log,
            &format!("compiled component {}", v["digest"].as_str().unwrap()),
        )
    };
    assert_eq!(compiled(&server.log(), &hello), 1);
    server.restart();
    let run_id = server.start_run("hello", json!({ "name": "cached" })).await;
    assert_eq!(server.wait(&run_id, 30).await["status"], "completed");
    let log = server.log();
    assert_eq!(
        compiled(&log, &hello),
        1,
        "the workflow came from the disk cache"
    );
    assert_eq!(
        compiled(&log, &greeter),
        1,
        "the activity came from the disk cache"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_whose_calls_differ_goes_stuck_with_a_diagnostic() {
    let mut server = Server::start(&["--resident-timer-ms", "50"]);
    server.deploy("effects", "effects").await;
    let v1 = server.deploy("sleeper", "sleeper").await;
    let v2 = server.deploy("sleeper-v2", "sleeper-v2").await;
    let run_id = server
        .start_run("sleeper", json!({ "tag": "pinned", "sleep_ms": 3000 }))
        .await;
    server
        .until_journal(&run_id, "the timer", |e| {
            !of_kind(e, "timer-started").is_empty()
        })
        .await;
    server.kill9();

    // Re-pin the sleeping run to code that renamed its first activity, as
    // an upgrade would, then let the server replay it.
    let repinned = server
        .sql(
            "UPDATE runs SET digest = ? WHERE run_id = ? AND digest = ?",
            &[
                v2["digest"].as_str().unwrap(),
                &run_id,
                v1["digest"].as_str().unwrap(),
            ],
        )
        .await;
    assert_eq!(repinned, 1);
    server.restart();

    let run = server.wait(&run_id, 30).await;
    assert_eq!(run["status"], "stuck", "{run}");
    let events = server.journal(&run_id).await;
    let scheduled = of_kind(&events, "activity-scheduled")[0];
    let message = run["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "event {}: journal has activity `effects/step` with input",
            scheduled["seq"]
        )),
        "{message}"
    );
    assert!(
        message.contains("code asked for activity `effects/step-renamed` with input"),
        "{message}"
    );
    assert_eq!(run["error"]["kind"], "nondeterminism");

    // Stuck is not retried: not in a loop, not after a restart.
    let before = server.journal(&run_id).await.len();
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    server.restart();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (_, again) = server.get(&format!("/v1/runs/{run_id}")).await;
    assert_eq!(again["status"], "stuck");
    assert_eq!(server.journal(&run_id).await.len(), before);
    assert_eq!(log_lines(&server.log(), "run stuck"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_journal_that_cannot_be_decoded_leaves_the_run_stuck_not_the_server() {
    let mut server = Server::start(&["--resident-timer-ms", "50"]);
    server.deploy("effects", "effects").await;
    server.deploy("sleeper", "sleeper").await;
    let damaged = server
        .start_run("sleeper", json!({ "tag": "damaged", "sleep_ms": 2000 }))
        .await;
    let healthy = server
        .start_run("sleeper", json!({ "tag": "healthy", "sleep_ms": 2000 }))
        .await;
    for run in [&damaged, &healthy] {
        server
            .until_journal(run, "the timer", |e| {
                !of_kind(e, "timer-started").is_empty()
            })
            .await;
    }
    server.kill9();
    let corrupted = server
        .sql(
            "UPDATE events SET body = '{\"kind\":\"clock\",\"oops\":1}' WHERE run_id = ? AND seq = 1",
            &[&damaged],
        )
        .await;
    assert_eq!(corrupted, 1);
    server.restart();
    let run = server.wait(&damaged, 30).await;
    assert_eq!(run["status"], "stuck", "{run}");
    let message = run["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("the journal cannot be read"),
        "{message}"
    );
    assert!(message.contains("event 1 of run"), "{message}");
    let run = server.wait(&healthy, 30).await;
    assert_eq!(run["status"], "completed", "{run}");
}

/// Each chain10 run's steps as the log shows them executed, in order:
/// (the step's input, the log's byte offset), by run id.
fn add_one_executions(log: &str) -> std::collections::HashMap<String, Vec<(u64, usize)>> {
    let mut runs: std::collections::HashMap<String, Vec<(u64, usize)>> = Default::default();
    let mut offset = 0;
    for line in log.split_inclusive('\n') {
        if let Some(rest) = line.split("effect add-one n=").nth(1) {
            let n: u64 = rest.split_whitespace().next().unwrap().parse().unwrap();
            let key = rest.split("key=").nth(1).unwrap();
            let run_id = key.split(':').next().unwrap().to_string();
            runs.entry(run_id).or_default().push((n, offset));
        }
        offset += line.len();
    }
    runs
}

/// The promise at `--durability full`: a step's result is durable
/// before the workflow sees it. chain10 passes each step's result to the
/// next step, so a step that ran with input n+1 means the workflow saw the
/// step with input n; were that result lost in a kill, the step with input
/// n would run again after the restart. Kills land at random moments
/// (seeded; `WEFT_KILL_SEED` repeats a sitting) while runs are mid-chain.
#[tokio::test(flavor = "multi_thread")]
async fn a_chain10_run_killed_at_random_moments_never_loses_an_acknowledged_step() {
    let seed: u64 = std::env::var("WEFT_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()) * 2_654_435_761 + 1);
    println!("kill seed {seed}");
    let mut state = seed;
    let mut roll = |below: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    };
    let mut server = Server::start(&[]);
    server.deploy("step", "effects").await;
    server.deploy("chain10", "chain10").await;

    let mut runs = Vec::new();
    let mut kills = Vec::new();
    for round in 0..6u64 {
        for i in 0..6u64 {
            let n = round * 1000 + i * 100;
            runs.push((server.start_run("chain10", json!(n)).await, n));
        }
        // A run takes ten steps of 4 ms and more: kill within its span.
        tokio::time::sleep(std::time::Duration::from_millis(5 + roll(45))).await;
        server.kill9();
        kills.push(server.log().len());
        server.restart();
    }

    let mut straddled = 0;
    for (run_id, n) in &runs {
        let run = server.wait(run_id, 60).await;
        assert_eq!(run["status"], "completed", "{run}");
        assert_eq!(run["output"], json!(n + 10), "{run}");
        let events = server.journal(run_id).await;
        assert_eq!(of_kind(&events, "activity-completed").len(), 10);
    }
    let log = server.log();
    let executions = add_one_executions(&log);
    for (run_id, n) in &runs {
        let steps = executions.get(run_id).expect("the run's steps in the log");
        let inputs: Vec<u64> = steps.iter().map(|(input, _)| *input).collect();
        // Once a step ran with n+1, the step with n never runs again.
        assert!(
            inputs.windows(2).all(|w| w[0] <= w[1]),
            "seed {seed}: run {run_id} re-ran a step whose result its workflow had seen: {inputs:?}"
        );
        let distinct: std::collections::BTreeSet<u64> = inputs.iter().copied().collect();
        assert_eq!(distinct, (*n..n + 10).collect(), "run {run_id}: {inputs:?}");
        let (first, last) = (steps[0].1, steps[steps.len() - 1].1);
        if kills.iter().any(|k| first < *k && *k < last) {
            straddled += 1;
        }
    }
    // The kills did land mid-chain: some runs resumed after one.
    assert!(
        straddled > 0,
        "seed {seed}: no kill landed while a run was mid-chain"
    );
    println!(
        "{straddled} of {} runs were killed mid-chain and resumed",
        runs.len()
    );
}
