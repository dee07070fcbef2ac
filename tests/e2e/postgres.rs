//! The Postgres backend end to end: `weft serve --db postgres://…` on a
//! database of the test's own (dropped after), real guests over HTTP, and a
//! kill -9 in the middle.

use crate::proxy::Proxy;
use crate::support::{Server, of_kind};
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::test_database::TestDatabase;

#[tokio::test(flavor = "multi_thread")]
async fn a_server_on_postgres_runs_workflows_and_survives_a_kill9() {
    let db = TestDatabase::create().await;
    let mut server = Server::start_on_postgres(&db.url, &["--resident-timer-ms", "100"]);
    let (_, health) = server.get("/healthz").await;
    assert_eq!(health["store"], "postgres", "{health}");
    server.deploy("effects", "effects").await;
    server.deploy("versioned", "versioned").await;
    let run = server
        .start_run("versioned", json!({ "sleep1_ms": 1500, "sleep2_ms": 0 }))
        .await;
    server
        .until_journal(&run, "the first sleep", |e| {
            !of_kind(e, "timer-started").is_empty()
        })
        .await;
    let before = server.journal(&run).await;
    server.restart();
    let done = server.wait(&run, 60).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["output"],
        json!({ "steps": ["A", "B", "D"], "version": 1 })
    );
    let after = server.journal(&run).await;
    assert_eq!(after[..before.len()], before[..]);
    // Each activity ran once: three completions, dense sequence numbers.
    assert_eq!(of_kind(&after, "activity-completed").len(), 3);
    let seqs: Vec<u64> = after.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..after.len() as u64).collect::<Vec<_>>());
    drop(server);
}

/// `weft serve --db URL` that must fail at start: its stderr.
fn serve_fails(url: &str) -> String {
    let out = Command::new("timeout")
        .args([
            "60",
            env!("CARGO_BIN_EXE_weft"),
            "serve",
            "--addr",
            "127.0.0.1:0",
        ])
        .args(["--db", url])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{url}: {stderr}");
    stderr
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_or_unreachable_database_is_a_clear_error_at_start() {
    // Nothing listens on port 1.
    let refused = serve_fails("postgres://postgres@127.0.0.1:1/weft");
    assert!(
        refused.contains("cannot connect to Postgres at postgres://postgres@127.0.0.1:1/weft"),
        "{refused}"
    );
    // The password never appears in messages.
    let secret = serve_fails("postgres://postgres:hunter2@127.0.0.1:1/weft");
    assert!(!secret.contains("hunter2"), "{secret}");
    let missing = serve_fails("postgres://postgres@127.0.0.1:5432/weft_no_such_database");
    assert!(missing.contains("does not exist"), "{missing}");
    let garbled = serve_fails("postgres://postgres@127.0.0.1:notaport/weft");
    assert!(garbled.contains("cannot connect to Postgres"), "{garbled}");
    // A database that is down (its address answers, then hangs up).
    let proxy = Proxy::start("127.0.0.1:5432").await;
    proxy.cut();
    let down = serve_fails(&format!(
        "postgres://postgres@127.0.0.1:{}/test",
        proxy.port
    ));
    assert!(down.contains("cannot connect to Postgres"), "{down}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_that_goes_away_while_serving_answers_503_and_loses_nothing() {
    let db = TestDatabase::create().await;
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let url = db.url.replace(":5432/", &format!(":{}/", proxy.port));
    let server = Server::start_on_postgres(&url, &["--resident-timer-ms", "100"]);
    server.deploy("effects", "effects").await;
    server.deploy("sleeper", "sleeper").await;
    let run = server
        .start_run("sleeper", json!({ "tag": "outage", "sleep_ms": 1500 }))
        .await;
    server
        .until_journal(&run, "the timer", |e| {
            !of_kind(e, "timer-started").is_empty()
        })
        .await;
    proxy.cut();
    let cut = Instant::now();
    // Requests get a clear 503 while it is away, reads and writes alike.
    let (status, body) = server.get(&format!("/v1/runs/{run}")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    let (status, body) = server
        .post("/v1/runs", &json!({ "workflow": "sleeper", "input": {} }))
        .await;
    assert_eq!(status, 503, "{body}");
    println!("503 answered {:?} after the cut", cut.elapsed());
    // The timer falls due while the database is away.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    proxy.restore();
    let done = server.wait(&run, 120).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["output"]["slept_enough"], true);
    let journal = server.journal(&run).await;
    assert_eq!(of_kind(&journal, "activity-completed").len(), 2);
    let seqs: Vec<u64> = journal.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..journal.len() as u64).collect::<Vec<_>>());
    println!(
        "run completed {:?} after the cut (the database was away 2.5 s)",
        cut.elapsed()
    );
    drop(server);
}
