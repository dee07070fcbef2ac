//! The contract of the tables beside the runs and journals: updates,
//! batch jobs, namespaces and tokens.

use super::*;

pub(super) async fn an_update_is_requested_once_and_taken_once(b: Backend) {
    use crate::store::{UpdateKey, UpdateRecord, UpdateState};
    let store = &*b.store;
    write(store, create(new_run("a", "wa"))).await;
    let request = |id: &str, input: Value| UpdateRecord {
        namespace: "default".into(),
        workflow_id: "wa".into(),
        update_id: id.into(),
        name: "add".into(),
        input,
        state: UpdateState::Requested,
        run_id: None,
        outcome: None,
        requested_at_ms: 1,
        decided_at_ms: None,
        caller_run_id: None,
    };
    let updates = store.updates();
    let (first, created) = updates
        .request_update(&request("u1", json!(1)))
        .await
        .unwrap();
    assert!(created && first.state == UpdateState::Requested);
    // The same id again is the same update, input and all.
    let (again, created) = updates
        .request_update(&request("u1", json!(2)))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again.input, json!(1));
    updates
        .request_update(&request("u2", json!(3)))
        .await
        .unwrap();
    let ids: Vec<String> = updates
        .requested_updates("default", "wa")
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.update_id)
        .collect();
    assert_eq!(ids, ["u1", "u2"]);
    let key = |id: &str| UpdateKey {
        namespace: "default".into(),
        workflow_id: "wa".into(),
        update_id: id.into(),
    };
    // Accepted beside the event that journals it, once.
    let decide = |seq: u64, from, to, outcome: Option<Value>| WriteOp::Append {
        run_id: "a".into(),
        lease: None,
        events: rows(&[clock(seq)]),
        effects: vec![Effect::DecideUpdate {
            key: key("u1"),
            from,
            to,
            outcome,
        }],
        update: None,
    };
    write(
        store,
        decide(1, UpdateState::Requested, UpdateState::Accepted, None),
    )
    .await;
    let twice = write_batch(
        store,
        &[decide(
            2,
            UpdateState::Requested,
            UpdateState::Accepted,
            None,
        )],
    )
    .await
    .remove(0);
    assert!(twice.is_err(), "taken twice");
    assert_eq!(store.journal("a").await.unwrap().len(), 2);
    let answer = json!({ "output": 7 });
    write(
        store,
        decide(
            2,
            UpdateState::Accepted,
            UpdateState::Completed,
            Some(answer.clone()),
        ),
    )
    .await;
    let done = updates.update(&key("u1")).await.unwrap().unwrap();
    assert_eq!(
        (done.state, done.run_id.as_deref(), done.outcome),
        (UpdateState::Completed, Some("a"), Some(answer))
    );
    // A rejection is the row's alone, and only of a requested update.
    assert!(
        updates
            .reject_update(&key("u2"), &json!({ "kind": "no" }))
            .await
            .unwrap()
    );
    assert!(
        !updates
            .reject_update(&key("u2"), &json!({ "kind": "no" }))
            .await
            .unwrap()
    );
    assert!(
        !updates
            .reject_update(&key("u1"), &json!({ "kind": "no" }))
            .await
            .unwrap()
    );
    assert!(
        updates
            .requested_updates("default", "wa")
            .await
            .unwrap()
            .is_empty()
    );
}

pub(super) async fn a_batch_jobs_runs_are_claimed_once_and_again_when_stale(b: Backend) {
    use crate::store::BatchJob;
    let jobs = b.store.batch_jobs();
    let job = BatchJob {
        id: "j".into(),
        namespace: "default".into(),
        spec: json!({ "action": "cancel" }),
        done: false,
        matched: 3,
        applied: 0,
        failed: 0,
        errors: Vec::new(),
        created_at_ms: 1,
        finished_at_ms: None,
    };
    let runs: Vec<String> = ["a", "b", "c"].map(String::from).into();
    jobs.create_job(&job, &runs).await.unwrap();
    // A node claims two and dies; another claims what is left.
    assert_eq!(jobs.claim_runs("j", 1000, 0, 2).await.unwrap(), ["a", "b"]);
    assert_eq!(jobs.claim_runs("j", 1001, 0, 10).await.unwrap(), ["c"]);
    jobs.finish_run("j", "c", Some("not open")).await.unwrap();
    assert!(!jobs.finish_job_if_done("j", 1002).await.unwrap());
    assert_eq!(jobs.open_jobs().await.unwrap().len(), 1);
    // Claims older than the stale mark are taken again, once.
    assert_eq!(
        jobs.claim_runs("j", 20_000, 5000, 10).await.unwrap(),
        ["a", "b"]
    );
    assert!(
        jobs.claim_runs("j", 20_001, 5000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    for run in ["a", "b"] {
        jobs.finish_run("j", run, None).await.unwrap();
    }
    assert!(jobs.finish_job_if_done("j", 20_002).await.unwrap());
    let done = jobs.job("j").await.unwrap().unwrap();
    assert_eq!(
        (done.done, done.applied, done.failed, done.finished_at_ms),
        (true, 2, 1, Some(20_002))
    );
    assert_eq!(done.errors, [json!({ "run_id": "c", "error": "not open" })]);
    assert!(jobs.open_jobs().await.unwrap().is_empty());
}

/// Namespaces (one with open runs cannot go) and tokens (found by hash
/// while not revoked, marked used, revoked with their namespace).
pub(super) async fn namespaces_and_tokens_are_kept_and_revoked(b: Backend) {
    use crate::store::{DeleteNamespace, Role, TokenRecord};
    let access = b.store.access();
    let names =
        |ns: Vec<crate::store::Namespace>| ns.into_iter().map(|n| n.name).collect::<Vec<_>>();
    assert_eq!(names(access.namespaces().await.unwrap()), ["default"]);
    assert!(
        access
            .create_namespace("a", &Default::default(), 1)
            .await
            .unwrap()
    );
    assert!(
        !access
            .create_namespace("a", &Default::default(), 2)
            .await
            .unwrap(),
        "exists"
    );
    assert_eq!(
        access.namespace("a").await.unwrap().unwrap().created_at_ms,
        1
    );
    let token = |id: &str, ns: &str, role| TokenRecord {
        id: id.into(),
        namespace: Some(ns.into()),
        role,
        description: "test".into(),
        client_cert: None,
        created_at_ms: 1,
        last_used_at_ms: None,
        revoked_at_ms: None,
    };
    access
        .insert_token(&token("t1", "a", Role::Deploy), "h1")
        .await
        .unwrap();
    access
        .insert_token(&token("t2", "default", Role::Read), "h2")
        .await
        .unwrap();
    let found = access.token_by_hash("h1", 100_000).await.unwrap().unwrap();
    assert_eq!((found.id.as_str(), found.role), ("t1", Role::Deploy));
    assert!(access.token_by_hash("nope", 1).await.unwrap().is_none());
    let listed = access.tokens(Some("a")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_used_at_ms, Some(100_000));
    assert_eq!(access.tokens(None).await.unwrap().len(), 2);
    assert!(access.revoke_token("t2", 5).await.unwrap());
    assert!(
        !access.revoke_token("t2", 6).await.unwrap(),
        "already revoked"
    );
    assert!(access.token_by_hash("h2", 7).await.unwrap().is_none());
    // A client certificate's credential is found by its common name; one
    // live credential per name, a new one once the old is revoked.
    let cert = |id: &str| TokenRecord {
        client_cert: Some("bot".into()),
        ..token(id, "default", Role::Operate)
    };
    access.insert_token(&cert("c1"), "cert:c1").await.unwrap();
    assert!(
        access.insert_token(&cert("c2"), "cert:c2").await.is_err(),
        "a second live credential for one common name"
    );
    let found = access
        .token_by_client_cert("bot", 7)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.id.as_str(), found.client_cert.as_deref()),
        ("c1", Some("bot"))
    );
    assert!(
        access
            .token_by_client_cert("other", 7)
            .await
            .unwrap()
            .is_none()
    );
    assert!(access.revoke_token("c1", 7).await.unwrap());
    assert!(
        access
            .token_by_client_cert("bot", 7)
            .await
            .unwrap()
            .is_none()
    );
    access.insert_token(&cert("c2"), "cert:c2").await.unwrap();
    assert_eq!(
        access
            .token_by_client_cert("bot", 7)
            .await
            .unwrap()
            .unwrap()
            .id,
        "c2"
    );
    // A namespace with an open run stays; without, it goes with its tokens.
    let mut run = new_run("r", "r");
    run.namespace = "a".into();
    write(&*b.store, create(run)).await;
    assert_eq!(
        access.delete_namespace("a", 8).await.unwrap(),
        DeleteNamespace::InUse(1)
    );
    assert!(
        access
            .create_namespace("b", &Default::default(), 9)
            .await
            .unwrap()
    );
    access
        .insert_token(&token("t3", "b", Role::Admin), "h3")
        .await
        .unwrap();
    assert_eq!(
        access.delete_namespace("b", 10).await.unwrap(),
        DeleteNamespace::Deleted
    );
    assert!(access.token_by_hash("h3", 11).await.unwrap().is_none());
    assert_eq!(
        access.delete_namespace("b", 12).await.unwrap(),
        DeleteNamespace::NotFound
    );
    // The cluster admin's token is replaced, not added to.
    access.set_cluster_admin("c1", 13).await.unwrap();
    access.set_cluster_admin("c2", 14).await.unwrap();
    assert!(access.token_by_hash("c1", 15).await.unwrap().is_none());
    let admin = access.token_by_hash("c2", 16).await.unwrap().unwrap();
    assert_eq!((admin.role, admin.namespace), (Role::ClusterAdmin, None));
}
