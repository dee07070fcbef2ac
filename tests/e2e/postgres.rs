//! The Postgres backend end to end: `weft serve --db postgres://…` on a
//! database of the test's own (dropped after), real guests over HTTP, and a
//! kill -9 in the middle.

use crate::support::{Server, of_kind};
use serde_json::json;

/// A database created for one test, dropped after it.
struct Database {
    admin: String,
    name: String,
    pub url: String,
}

impl Database {
    async fn create() -> Database {
        use sqlx::Connection;
        let admin = std::env::var("WEFT_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("weft_e2e_{}", uuid::Uuid::now_v7().simple());
        let mut db = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!("Postgres at {admin} (scripts/setup.sh --tests starts it): {e}")
            });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut db)
            .await
            .unwrap();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        Database { admin, name, url }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut db) = sqlx::PgConnection::connect(&admin).await {
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(&drop).execute(&mut db).await;
                }
            });
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_on_postgres_runs_workflows_and_survives_a_kill9() {
    let db = Database::create().await;
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
