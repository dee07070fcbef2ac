//! The Postgres backend end to end: `weft serve --db postgres://…` on a
//! database of the test's own (dropped after), real guests over HTTP, and a
//! kill -9 in the middle.

use crate::support::{Server, of_kind};
use serde_json::json;

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
