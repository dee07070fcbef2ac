//! The backend contract: one suite of store tests, written once over
//! `dyn Store` (with the rules on top, as the writer applies them) and run
//! against every backend. Adding a backend is one `contract!` line and a
//! function that opens it.

use super::*;
use crate::journal::{Event, Source};
use crate::store::{
    ComponentKind, ComponentVersion, DeleteVersion, Lease, Namespace, PutComponent, SqliteStore,
    Store, shard_of,
};
use futures::future::BoxFuture;
use serde_json::json;
use std::sync::Arc;
use tables::{
    a_batch_jobs_runs_are_claimed_once_and_again_when_stale,
    an_update_is_requested_once_and_taken_once, namespaces_and_tokens_are_kept_and_revoked,
};

/// The tables beside the runs and journals: updates, batch jobs,
/// namespaces and tokens.
mod tables;

/// A backend under test: its store, a way to damage its rows as a bad disk
/// or an old bug would (plain SQL, valid on every backend), and whatever
/// must live as long as the test.
struct Backend {
    store: Arc<dyn Store>,
    damage: Box<dyn Fn(&'static str) -> BoxFuture<'static, ()> + Send + Sync>,
    _keep: Box<dyn std::any::Any + Send>,
}

async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = SqliteStore::open(&path, crate::store::Durability::Normal)
        .await
        .unwrap();
    let url = format!("sqlite://{}", path.display());
    Backend {
        store: Arc::new(store),
        damage: Box::new(move |sql| {
            let url = url.clone();
            Box::pin(async move {
                use sqlx::Connection;
                let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query(sql).execute(&mut db).await.unwrap();
                db.close().await.unwrap();
            })
        }),
        _keep: Box::new(dir),
    }
}

async fn postgres() -> Backend {
    let db = crate::store::test_database::TestDatabase::create().await;
    let url = db.url.clone();
    let store = crate::store::PostgresStore::open(&url).await.unwrap();
    Backend {
        store: Arc::new(store),
        damage: Box::new(move |sql| {
            let url = url.clone();
            Box::pin(async move {
                use sqlx::Connection;
                let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
                sqlx::query(sql).execute(&mut db).await.unwrap();
                db.close().await.unwrap();
            })
        }),
        _keep: Box::new(db),
    }
}

/// Every test of the contract, for one backend.
macro_rules! contract {
    ($backend:ident) => {
        mod $backend {
            contract!(@tests $backend:
                an_append_that_finds_its_sequence_number_taken_is_refused_alone,
                a_workflow_id_names_one_open_run,
                a_repeated_request_id_answers_the_signal_it_delivered,
                signals_are_pending_in_arrival_order_and_consumed_once,
                an_update_is_requested_once_and_taken_once,
                a_batch_jobs_runs_are_claimed_once_and_again_when_stale,
                suspended_runs_resume_at_their_wake_up_time,
                components_are_content_addressed,
                an_undecodable_event_leaves_only_its_run_unreadable,
                a_shard_changes_hands_in_a_new_epoch_and_fences_the_old_one,
                namespaces_and_tokens_are_kept_and_revoked,
            );
        }
    };
    (@tests $backend:ident: $($test:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                super::$test(super::$backend().await).await
            }
        )+
    };
}

contract!(sqlite);
contract!(postgres);

fn new_run(id: &str, workflow_id: &str) -> NewRun {
    NewRun {
        run_id: id.into(),
        namespace: "default".into(),
        workflow_id: workflow_id.into(),
        workflow: "w".into(),
        version: 1,
        digest: "d".into(),
        input: json!(null),
        at_ms: 1,
        parent: None,
        deadline_at_ms: None,
        traceparent: None,
    }
}

fn create(run: NewRun) -> WriteOp {
    WriteOp::CreateRun {
        run,
        policy: IdPolicy::default(),
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

/// Events as a run's sink prepares them.
fn rows(events: &[Recorded]) -> Vec<crate::store::EventRow> {
    super::event_rows(events).unwrap()
}

fn append(run_id: &str, events: Vec<Recorded>, update: Option<RunUpdate>) -> WriteOp {
    WriteOp::Append {
        run_id: run_id.into(),
        lease: None,
        events: rows(&events),
        effects: Vec::new(),
        update,
    }
}

async fn write(store: &dyn Store, op: WriteOp) -> WriteOutcome {
    write_batch(store, &[op]).await.remove(0).unwrap()
}

fn signal_op(run_id: &str, payload: i64, request_id: Option<&str>) -> WriteOp {
    WriteOp::Signal {
        target: SignalTarget::Run(run_id.into()),
        name: "item".into(),
        payload: json!(payload),
        start: None,
        request_id: request_id.map(String::from),
    }
}

async fn an_append_that_finds_its_sequence_number_taken_is_refused_alone(b: Backend) {
    let store = &*b.store;
    let created = write_batch(
        store,
        &[create(new_run("a", "a")), create(new_run("b", "b"))],
    )
    .await;
    assert!(created.iter().all(|r| r.is_ok()));
    write(store, append("a", vec![clock(1)], None)).await;

    // A second writer of run `a` tries seq 1 again, in a batch with a
    // legitimate append of run `b`: only the fenced one fails.
    let results = write_batch(
        store,
        &[
            append("a", vec![clock(1)], None),
            append("b", vec![clock(1)], None),
        ],
    )
    .await;
    let err = results[0].as_ref().unwrap_err().to_string();
    assert!(err.contains("another writer advanced this run"), "{err}");
    assert!(results[1].is_ok());
    assert_eq!(store.journal("a").await.unwrap().len(), 2);
    assert_eq!(store.journal("b").await.unwrap().len(), 2);
}

async fn a_workflow_id_names_one_open_run(b: Backend) {
    let store = &*b.store;
    let first = write(store, create(new_run("a", "entity"))).await;
    assert!(matches!(first, WriteOutcome::Created(_)));
    match write(store, create(new_run("b", "entity"))).await {
        WriteOutcome::Existing(run) => assert_eq!(run.run_id, "a"),
        other => panic!("{other:?}"),
    }
    // Once it ended, the id is free.
    let end = RunUpdate::Ended {
        status: RunStatus::Completed,
        output: None,
        error: None,
    };
    write(store, append("a", Vec::new(), Some(end))).await;
    let third = write(store, create(new_run("c", "entity"))).await;
    assert!(matches!(third, WriteOutcome::Created(_)));
    let open = store.open_run("default", "entity").await.unwrap().unwrap();
    assert_eq!(open.run_id, "c");
}

async fn a_repeated_request_id_answers_the_signal_it_delivered(b: Backend) {
    let store = &*b.store;
    write(store, create(new_run("a", "a"))).await;
    let first = write(store, signal_op("a", 1, Some("req-1"))).await;
    let again = write(store, signal_op("a", 1, Some("req-1"))).await;
    match (first, again) {
        (
            WriteOutcome::Signalled {
                signal: s1,
                duplicate: false,
                ..
            },
            WriteOutcome::Signalled {
                signal: s2,
                duplicate: true,
                ..
            },
        ) => assert_eq!(s1, s2),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.pending_signals("a").await.unwrap().len(), 1);
}

async fn signals_are_pending_in_arrival_order_and_consumed_once(b: Backend) {
    let store = &*b.store;
    write(store, create(new_run("a", "a"))).await;
    for i in 0..5 {
        write(store, signal_op("a", i, None)).await;
    }
    let pending = store.pending_signals("a").await.unwrap();
    let payloads: Vec<Value> = pending.iter().map(|s| s.payload.clone()).collect();
    assert_eq!(payloads, (0..5).map(|i| json!(i)).collect::<Vec<_>>());
    let consume = |seq: u64| WriteOp::Append {
        run_id: "a".into(),
        lease: None,
        events: rows(&[clock(seq)]),
        effects: vec![Effect::Consume {
            signal_id: pending[0].id,
            seq,
        }],
        update: None,
    };
    write(store, consume(1)).await;
    assert_eq!(store.pending_signals("a").await.unwrap().len(), 4);
    // Consumed once: a second consumption fails, and its event with it.
    let twice = write_batch(store, &[consume(2)]).await.remove(0);
    assert!(twice.is_err());
    assert_eq!(store.journal("a").await.unwrap().len(), 2);
    // A signal to an ended run is refused.
    let end = RunUpdate::Ended {
        status: RunStatus::Completed,
        output: None,
        error: None,
    };
    write(store, append("a", Vec::new(), Some(end))).await;
    assert!(matches!(
        write(store, signal_op("a", 9, None)).await,
        WriteOutcome::Refused(Refusal::NotOpen(_))
    ));
}

async fn suspended_runs_resume_at_their_wake_up_time(b: Backend) {
    let store = &*b.store;
    for id in ["busy", "timer", "waits", "signalled"] {
        write(store, create(new_run(id, id))).await;
    }
    let suspend = |at| RunUpdate::Suspended { wake_at_ms: at };
    write(store, append("timer", vec![], Some(suspend(Some(5000))))).await;
    write(store, append("waits", vec![], Some(suspend(None)))).await;
    write(store, append("signalled", vec![], Some(suspend(None)))).await;
    write(store, signal_op("signalled", 1, None)).await;
    let timer_shard = shard_of("timer");
    let of_shard = store.runnable_runs(Some(&[timer_shard])).await.unwrap();
    assert!(of_shard.contains(&("timer".to_string(), Some(5000))));
    assert!(of_shard.iter().all(|(id, _)| shard_of(id) == timer_shard));
    let mut runnable = store.runnable_runs(None).await.unwrap();
    runnable.sort();
    assert_eq!(
        runnable,
        vec![
            ("busy".to_string(), None),
            ("signalled".to_string(), None),
            ("timer".to_string(), Some(5000)),
        ]
    );
    let timer = store.get_run("timer").await.unwrap().unwrap();
    assert!(timer.idle);
    assert_eq!(timer.wake_at_ms, Some(5000));
}

async fn components_are_content_addressed(b: Backend) {
    let store = &*b.store;
    let put = |digest: &'static str, bytes: &'static [u8]| {
        store.put_component(
            "default",
            "w",
            ComponentKind::Workflow,
            digest,
            bytes,
            None,
            1,
        )
    };
    let v1 = match put("d1", b"one").await.unwrap() {
        PutComponent::Created(v) => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(v1.version, 1);
    assert!(matches!(put("d1", b"one").await.unwrap(), PutComponent::Existing(v) if v == v1));
    match put("d2", b"two").await.unwrap() {
        PutComponent::Created(v) => assert_eq!(v.version, 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.component_bytes("d1").await.unwrap().unwrap(), b"one");
    assert_eq!(
        store
            .latest_version("default", "w")
            .await
            .unwrap()
            .unwrap()
            .digest,
        "d2"
    );
    let conflict = store
        .put_component(
            "default",
            "w",
            ComponentKind::Activity,
            "d3",
            b"three",
            None,
            1,
        )
        .await
        .unwrap();
    assert!(matches!(conflict, PutComponent::KindConflict { .. }));
    // Names are per namespace; the same bytes are stored once.
    match store
        .put_component("other", "w", ComponentKind::Activity, "d1", b"one", None, 2)
        .await
        .unwrap()
    {
        PutComponent::Created(v) => assert_eq!((v.namespace.as_str(), v.version), ("other", 1)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store
            .component_versions(Some("default"), Some("w"))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(store.component_versions(None, None).await.unwrap().len(), 3);
    let second = store.component_version("default", "w", 2).await.unwrap();
    assert_eq!(second.map(|v| v.version), Some(2));
    let third = store.component_version("default", "w", 3).await.unwrap();
    assert!(third.is_none(), "no third version");
    let elsewhere = store.component_version("other", "w", 2).await.unwrap();
    assert!(elsewhere.is_none(), "versions are per namespace");
    // A start's lookup: the namespace, then the version it names.
    let version_of = |found: (Option<Namespace>, Option<ComponentVersion>)| {
        (found.0.map(|n| n.name), found.1.map(|v| v.version))
    };
    let lookup = |ns: &'static str, name: &'static str, v: Option<u32>| async move {
        version_of(store.start_lookup(ns, name, v).await.unwrap())
    };
    assert_eq!(
        lookup("default", "w", None).await,
        (Some("default".into()), Some(2))
    );
    assert_eq!(
        lookup("default", "w", Some(1)).await,
        (Some("default".into()), Some(1))
    );
    assert_eq!(
        lookup("default", "w", Some(3)).await,
        (Some("default".into()), None)
    );
    assert_eq!(
        lookup("default", "v", None).await,
        (Some("default".into()), None)
    );
    assert_eq!(
        lookup("other", "w", None).await,
        (None, None),
        "no namespace `other`"
    );
    assert_eq!(
        store.delete_version("other", "w", 1).await.unwrap(),
        DeleteVersion::Deleted
    );
    assert_eq!(
        store.component_bytes("d1").await.unwrap().unwrap(),
        b"one",
        "still default's"
    );
}

async fn an_undecodable_event_leaves_only_its_run_unreadable(b: Backend) {
    let store = &*b.store;
    write(store, create(new_run("a", "a"))).await;
    write(store, create(new_run("b", "b"))).await;
    (b.damage)("UPDATE events SET body = 'not json' WHERE run_id = 'a'").await;
    assert!(store.journal("a").await.is_err());
    assert_eq!(store.journal("b").await.unwrap().len(), 1);
    assert!(store.get_run("a").await.unwrap().is_some());
}

/// Leases: a shard is held by one node in one epoch; a node that is not
/// alive loses its shards to the next one, in a new epoch, and appends
/// under the old epoch are refused. A store for one node has no leases and
/// fences nothing.
async fn a_shard_changes_hands_in_a_new_epoch_and_fences_the_old_one(b: Backend) {
    let store = &*b.store;
    write(store, create(new_run("a", "a"))).await;
    let shard = shard_of("a");
    let fenced_append = |seq, epoch| WriteOp::Append {
        run_id: "a".into(),
        lease: Some(Lease { shard, epoch }),
        events: rows(&[clock(seq)]),
        effects: Vec::new(),
        update: None,
    };
    let Some(c) = store.coordination() else {
        // SQLite: one node, and its appends pass whatever lease they carry.
        assert!(matches!(
            write_batch(store, &[fenced_append(1, 7)]).await.remove(0),
            Ok(WriteOutcome::Appended(_))
        ));
        return;
    };
    let ttl = 60_000;
    assert_eq!(c.heartbeat("n1", "http://n1", ttl).await.unwrap().len(), 1);
    let taken = c.acquire("n1", crate::store::SHARDS, ttl).await.unwrap();
    assert_eq!(
        taken.len() as u32,
        crate::store::SHARDS,
        "a lone node takes every shard"
    );
    let first = *taken.iter().find(|l| l.shard == shard).unwrap();
    assert_eq!(c.held("n1").await.unwrap().len(), taken.len());
    assert_eq!(c.owner(shard).await.unwrap().unwrap().node_id, "n1");
    // A second node finds nothing free while n1 is alive.
    let nodes = c.heartbeat("n2", "http://n2", ttl).await.unwrap();
    assert_eq!(
        nodes.iter().map(|n| n.shards).collect::<Vec<_>>(),
        vec![1024, 0]
    );
    assert!(c.acquire("n2", 10, ttl).await.unwrap().is_empty());
    // Appends under the current epoch pass.
    assert!(
        write_batch(store, &[fenced_append(1, first.epoch)])
            .await
            .remove(0)
            .is_ok()
    );
    // n1 hands the shard over; n2 takes it in a new epoch.
    c.release("n1", &[shard]).await.unwrap();
    let second = c.acquire("n2", 1, ttl).await.unwrap();
    assert_eq!(
        second,
        vec![Lease {
            shard,
            epoch: first.epoch + 1
        }]
    );
    let refused = write_batch(store, &[fenced_append(2, first.epoch)])
        .await
        .remove(0);
    let message = format!("{:#}", refused.unwrap_err());
    assert!(message.contains("fenced"), "{message}");
    assert!(
        write_batch(store, &[fenced_append(2, second[0].epoch)])
            .await
            .remove(0)
            .is_ok()
    );
    assert_eq!(
        store.journal("a").await.unwrap().len(),
        3,
        "no gap, no duplicate"
    );
    // n1 stops beating: its shards are free to take once its lease is over.
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    let alive = c.heartbeat("n2", "http://n2", 50).await.unwrap();
    assert_eq!(
        alive.iter().map(|n| n.node_id.as_str()).collect::<Vec<_>>(),
        ["n2"]
    );
    let rest = c.acquire("n2", crate::store::SHARDS, 50).await.unwrap();
    assert_eq!(rest.len() as u32, crate::store::SHARDS - 1);
    assert!(c.held("n1").await.unwrap().is_empty());
    c.leave("n2").await.unwrap();
    assert!(c.owner(shard).await.unwrap().is_none());
}
