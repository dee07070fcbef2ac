//! The store's guarantees that tests over HTTP cannot reach directly.

use super::*;
use crate::journal::{Event, Source};

async fn store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db"), Durability::Normal)
        .await
        .unwrap();
    (store, dir)
}

fn new_run(id: &str, workflow_id: &str) -> NewRun {
    NewRun {
        run_id: id.into(),
        namespace: "default".into(),
        workflow_id: workflow_id.into(),
        workflow: "w".into(),
        version: 1,
        digest: "d".into(),
        input: serde_json::json!(null),
        at_ms: 1,
        parent: None,
        deadline_at_ms: None,
    }
}

fn clock(seq: u64) -> Recorded {
    Recorded {
        seq,
        at_ms: 1,
        event: Event::Clock {
            source: Source::Context,
            nanos: seq,
        },
    }
}

fn append(run_id: &str, events: Vec<Recorded>) -> WriteOp {
    WriteOp::Append {
        run_id: run_id.into(),
        events,
        effects: Vec::new(),
        update: None,
    }
}

#[tokio::test]
async fn an_append_that_finds_its_sequence_number_taken_is_refused_alone() {
    let (store, _dir) = store().await;
    let created = store
        .write_batch(&[
            WriteOp::CreateRun(new_run("a", "a")),
            WriteOp::CreateRun(new_run("b", "b")),
        ])
        .await;
    assert!(created.iter().all(|r| r.is_ok()));
    assert!(store.write_batch(&[append("a", vec![clock(1)])]).await[0].is_ok());

    // A second writer of run `a` tries seq 1 again, in a batch with a
    // legitimate append of run `b`: only the fenced one fails.
    let results = store
        .write_batch(&[append("a", vec![clock(1)]), append("b", vec![clock(1)])])
        .await;
    let err = results[0].as_ref().unwrap_err().to_string();
    assert!(err.contains("another writer advanced this run"), "{err}");
    assert!(results[1].is_ok());
    assert_eq!(store.journal("a").await.unwrap().len(), 2);
    assert_eq!(store.journal("b").await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_workflow_id_names_one_open_run() {
    let (store, _dir) = store().await;
    let first = store
        .write_batch(&[WriteOp::CreateRun(new_run("a", "entity"))])
        .await;
    assert!(matches!(first[0], Ok(WriteOutcome::Created(_))));
    let again = store
        .write_batch(&[WriteOp::CreateRun(new_run("b", "entity"))])
        .await;
    match &again[0] {
        Ok(WriteOutcome::Existing(run)) => assert_eq!(run.run_id, "a"),
        other => panic!("{other:?}"),
    }
    // Once it ended, the id is free.
    let end = WriteOp::Append {
        run_id: "a".into(),
        events: Vec::new(),
        effects: Vec::new(),
        update: Some(RunUpdate::Ended {
            status: RunStatus::Completed,
            output: None,
            error: None,
        }),
    };
    assert!(store.write_batch(&[end]).await[0].is_ok());
    let third = store
        .write_batch(&[WriteOp::CreateRun(new_run("c", "entity"))])
        .await;
    assert!(matches!(third[0], Ok(WriteOutcome::Created(_))));
}
