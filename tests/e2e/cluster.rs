//! Several `weft serve` nodes on one Postgres database (one of the test's
//! own): any node answers any request, a killed or paused node's runs move
//! to the others, and SIGTERM hands runs over without waiting for a lease.

use crate::schedules::due_times;
use crate::support::test_database::TestDatabase;
use crate::support::{Server, of_kind};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Nodes named `names` on `db`, each with `args`, once they share every
/// shard.
async fn cluster(db: &TestDatabase, names: &[&str], args: &[&str]) -> Vec<Server> {
    let nodes: Vec<Server> = names
        .iter()
        .map(|name| {
            let mut all = vec!["--node-id", name];
            if !args.contains(&"--resident-timer-ms") {
                all.extend(["--resident-timer-ms", "100"]);
            }
            all.extend_from_slice(args);
            Server::start_on_postgres(&db.url, &all)
        })
        .collect();
    balanced(&nodes.iter().collect::<Vec<_>>()).await;
    nodes
}

/// Wait until `nodes` hold every shard between them, each some.
async fn balanced(nodes: &[&Server]) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let held = shards(nodes).await;
        if held.iter().sum::<u64>() == 1024 && held.iter().all(|&n| n > 0) {
            return held;
        }
        assert!(Instant::now() < deadline, "shards never balanced: {held:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The shards each node says it holds.
async fn shards(nodes: &[&Server]) -> Vec<u64> {
    let mut held = Vec::new();
    for node in nodes {
        let (_, health) = node.get("/healthz").await;
        held.push(health["cluster"]["shards"].as_u64().unwrap_or(0));
    }
    held
}

/// Sequence numbers are 0, 1, 2, … with no gap and no duplicate.
fn assert_dense(journal: &[Value]) {
    let seqs: Vec<u64> = journal.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (0..journal.len() as u64).collect::<Vec<_>>(),
        "{journal:?}"
    );
}

async fn signal(node: &Server, run_id: &str, item: Value) {
    let (status, body) = node
        .post(&format!("/v1/runs/{run_id}/signals/item"), &item)
        .await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn any_node_answers_any_request() {
    let db = TestDatabase::create().await;
    // The entity stays in memory on b between signals.
    let nodes = cluster(
        &db,
        &["a", "b", "c"],
        &["--resident-timer-ms", "60000", "--idle-linger-ms", "60000"],
    )
    .await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let (_, health) = a.get("/healthz").await;
    assert_eq!(health["cluster"]["node"], "a", "{health}");
    assert_eq!(
        health["cluster"]["nodes"].as_array().unwrap().len(),
        3,
        "{health}"
    );
    a.deploy("entity", "entity").await;
    let run = b.start_run("entity", json!({ "expect": 3 })).await;
    for i in 0..2 {
        signal(c, &run, json!(i)).await;
    }
    a.until_journal(&run, "two items", |e| {
        of_kind(e, "signal-received").len() == 2
    })
    .await;
    let sent = Instant::now();
    signal(c, &run, json!(2)).await;
    let done = a.wait(&run, 30).await;
    let latency = sent.elapsed();
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["output"]["seen"], json!([0, 1, 2]));
    // Messages, not the fallback sweep (every 6 leases), carried the
    // signal to the driving node and its end back to the reader.
    println!("signal on c → result on a: {latency:?}");
    assert!(latency < Duration::from_secs(2), "{latency:?}");
    let journal = c.journal(&run).await;
    assert_dense(&journal);
    assert_eq!(of_kind(&journal, "signal-received").len(), 3);
}

/// The `stage/run` answers of a pipeline run of `steps` started on (and
/// so driven by) `node`.
async fn pipeline_on(node: &Server, steps: u64) -> Vec<Value> {
    let run = node.start_run("pipeline", json!(steps)).await;
    let done = node.wait(&run, 30).await;
    assert_eq!(done["status"], "completed", "{done}");
    done["output"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_activity_deployed_through_one_node_runs_on_the_others() {
    let db = TestDatabase::create().await;
    let nodes = cluster(&db, &["a", "b"], &[]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    a.deploy("stage", "stage").await;
    a.deploy("pipeline", "pipeline").await;
    // b runs (and so looks up) the first version of the activity.
    let before = pipeline_on(b, 2).await;
    assert!(
        before.iter().all(|s| s.get("fixed").is_none()),
        "{before:?}"
    );
    a.deploy("stage", "stage-fixed").await;
    let deployed = Instant::now();
    loop {
        let steps = pipeline_on(b, 1).await;
        if steps[0]["fixed"] == true {
            break;
        }
        assert!(
            deployed.elapsed() < Duration::from_secs(10),
            "b still runs the activity's old version: {steps:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "the new version ran on b {:?} after the deploy on a",
        deployed.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_nodes_runs_finish_on_the_others() {
    let db = TestDatabase::create().await;
    let mut nodes = cluster(&db, &["a", "b", "c"], &["--lease-ms", "2000"]).await;
    nodes[0].deploy("effects", "effects").await;
    nodes[0].deploy("sleeper", "sleeper").await;
    let mut runs = Vec::new();
    for i in 0..6 {
        let input = json!({ "tag": format!("r{i}"), "sleep_ms": 3000 });
        runs.push(nodes[0].start_run("sleeper", input).await);
    }
    for run in &runs {
        nodes[1]
            .until_journal(run, "the timer", |e| {
                !of_kind(e, "timer-started").is_empty()
            })
            .await;
    }
    nodes[0].kill9();
    let killed = Instant::now();
    for run in &runs {
        let done = nodes[1].wait(run, 60).await;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(done["output"]["slept_enough"], true);
        let journal = nodes[2].journal(run).await;
        assert_dense(&journal);
        assert_eq!(of_kind(&journal, "activity-completed").len(), 2);
    }
    let moved = killed.elapsed();
    println!("6 runs of a killed node finished on the others {moved:?} after the kill");
    // Lease (2 s) + the rest of the 3 s timer + a wide margin: the whole
    // suite runs beside it on two cores (alone it takes about 6.5 s).
    assert!(moved < Duration::from_secs(25), "{moved:?}");
    let held = balanced(&[&nodes[1], &nodes[2]]).await;
    println!("shards after the kill: {held:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_node_is_fenced_out_and_drops_the_run() {
    let db = TestDatabase::create().await;
    let nodes = cluster(&db, &["a", "b"], &["--lease-ms", "1500"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    a.deploy("effects", "effects").await;
    a.deploy("sleeper", "sleeper").await;
    let input = json!({ "tag": "paused", "sleep_ms": 0, "slow_ms": 3000 });
    let run = a.start_run("sleeper", input).await;
    // The second activity (3 s) is running on a when a stops.
    // (Its scheduling is journaled with its result: a's log tells.)
    let deadline = Instant::now() + Duration::from_secs(30);
    while !a.log().contains("effect step n=2") {
        assert!(
            Instant::now() < deadline,
            "the second activity never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.signal("STOP");
    tokio::time::sleep(Duration::from_millis(4000)).await;
    // b took a's shards and runs the activity again; a wakes up mid-way
    // through its own attempt, whose result it can no longer append.
    a.signal("CONT");
    let done = b.wait(&run, 60).await;
    assert_eq!(done["status"], "completed", "{done}");
    // a notices once its attempt ends: its append is refused.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !a.log().contains("fenced") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let journal = b.journal(&run).await;
    assert_dense(&journal);
    assert_eq!(of_kind(&journal, "activity-completed").len(), 2);
    assert_eq!(of_kind(&journal, "completed").len(), 1);
    let log = a.log();
    for line in log
        .lines()
        .filter(|l| l.contains("fenced") || l.contains("lost"))
    {
        println!("a: {line}");
    }
    assert!(
        log.contains("fenced"),
        "a's log:\n{log}\nb's log:\n{}",
        b.log()
    );
    assert!(log.contains("lost"), "a's log:\n{log}");
    let (_, run_now) = a.get(&format!("/v1/runs/{run}")).await;
    assert_eq!(run_now["status"], "completed");
    // b ran the activity a had in flight again, with the same key.
    let key = |log: String| {
        log.lines()
            .find_map(|l| l.split("effect step n=2 key=").nth(1))
            .and_then(|rest| rest.split(' ').next())
            .map(str::to_string)
    };
    let (on_a, on_b) = (key(a.log()), key(b.log()));
    assert!(on_a.is_some(), "a ran the second activity");
    assert_eq!(on_a, on_b, "the same idempotency key on both nodes");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_hands_runs_over_without_waiting_for_the_lease() {
    let db = TestDatabase::create().await;
    // A lease far longer than the test: only a hand-over can move runs.
    let mut nodes = cluster(&db, &["a", "b"], &["--lease-ms", "60000"]).await;
    nodes[0].deploy("entity", "entity").await;
    let run = nodes[0].start_run("entity", json!({ "expect": 3 })).await;
    signal(&nodes[0], &run, json!("before")).await;
    nodes[0]
        .until_journal(&run, "the first item", |e| {
            !of_kind(e, "signal-received").is_empty()
        })
        .await;
    nodes[0].signal("TERM");
    let term = Instant::now();
    assert!(nodes[0].exits_within(20), "a did not stop on SIGTERM");
    // b takes the shards when a's `free` message reaches it: at once, not
    // at the end of the 60 s lease.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, health) = nodes[1].get("/healthz").await;
        if health["cluster"]["shards"] == 1024 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "b did not take a's shards: {health}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal(&nodes[1], &run, json!("after-1")).await;
    signal(&nodes[1], &run, json!("after-2")).await;
    let done = nodes[1].wait(&run, 30).await;
    let moved = term.elapsed();
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["output"]["seen"],
        json!(["before", "after-1", "after-2"])
    );
    println!("SIGTERM → run completed on b: {moved:?}");
    assert!(moved < Duration::from_secs(20), "{moved:?}");
    assert_dense(&nodes[1].journal(&run).await);
    let log = nodes[0].log();
    assert!(log.contains("handed 512 shard(s) over"), "a's log:\n{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_are_upgraded_and_terminated_through_any_node() {
    let db = TestDatabase::create().await;
    let nodes = cluster(&db, &["a", "b", "c"], &[]).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    a.deploy("effects", "effects").await;
    a.deploy("versioned", "versioned").await;
    let input = json!({ "sleep1_ms": 60_000, "sleep2_ms": 0 });
    // Driven by the nodes that started them: b, b and c.
    let runs = [
        b.start_run("versioned", input.clone()).await,
        b.start_run("versioned", input.clone()).await,
        c.start_run("versioned", input).await,
    ];
    for run in &runs {
        a.until_journal(run, "the first sleep", |e| {
            !of_kind(e, "timer-started").is_empty()
        })
        .await;
    }
    let patched = a.deploy("versioned", "versioned-patched").await["version"].clone();
    // One request on a upgrades every run, each on the node driving it.
    let (status, answer) = a
        .post("/v1/workflows/versioned/upgrade", &json!({ "to": patched }))
        .await;
    assert_eq!(status, 200, "{answer}");
    let reports = answer["runs"].as_array().unwrap();
    assert_eq!(reports.len(), 3, "{answer}");
    assert!(reports.iter().all(|r| r["upgraded"] == true), "{answer}");
    for run in &runs {
        let journal = a.journal(run).await;
        assert_eq!(of_kind(&journal, "upgraded").len(), 1, "{journal:?}");
        assert_dense(&journal);
    }
    // A divergent upgrade asked of c, for a run b drives: b's refusal,
    // with its report.
    let reorder = a.deploy("versioned", "versioned-reorder").await["version"].clone();
    let (status, refused) = c
        .post(
            &format!("/v1/runs/{}/upgrade", runs[0]),
            &json!({ "version": reorder }),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "divergence", "{refused}");
    assert_eq!(refused["error"]["details"]["run_id"], runs[0].as_str());
    // Terminate on a, for a run b drives.
    let (status, ended) = a
        .post(
            &format!("/v1/runs/{}/terminate", runs[1]),
            &json!({ "reason": "through a" }),
        )
        .await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["status"], "terminated", "{ended}");
    let (_, seen) = c.get(&format!("/v1/runs/{}", runs[1])).await;
    assert_eq!(seen["status"], "terminated");
    assert!(b.log().contains("terminated: through a"), "b terminated it");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_revoked_on_one_node_is_refused_by_the_others_at_once() {
    use crate::tenancy::{ADMIN, call, issue};
    // (b drives the run it starts; a forwards the terminate to it.)
    let db = TestDatabase::create().await;
    let nodes = cluster(&db, &["a", "b"], &["--admin-token", ADMIN]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let token = issue(a, "default", "read").await;
    let (status, _) = call(b, "GET", "/v1/runs", Some(&token), None).await;
    assert_eq!(status, 200, "a token issued on a works on b");
    let (_, listed) = call(a, "GET", "/v1/namespaces/default/tokens", Some(ADMIN), None).await;
    let id = listed["tokens"][0]["id"].as_str().unwrap().to_string();
    let (status, _) = call(
        b,
        "DELETE",
        &format!("/v1/namespaces/default/tokens/{id}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(a, "GET", "/v1/runs", Some(&token), None).await;
    assert_eq!(status, 401, "{body}");
    // A request forwarded to the node driving a run authenticates there.
    let (status, _) = crate::tenancy::call_put(a, "/v1/components/entity", "entity", ADMIN).await;
    assert_eq!(status, 201);
    let operate = issue(a, "default", "operate").await;
    let start = json!({ "workflow": "entity", "input": { "expect": 1 } });
    let (status, run) = call(b, "POST", "/v1/runs", Some(&operate), Some(start)).await;
    assert_eq!(status, 201, "{run}");
    let path = format!("/v1/runs/{}/terminate", run["run_id"].as_str().unwrap());
    let (status, ended) = call(a, "POST", &path, Some(&operate), Some(json!({}))).await;
    assert_eq!(
        (status, ended["status"].as_str()),
        (200, Some("terminated")),
        "{ended}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_namespaces_start_rate_is_shared_by_the_nodes() {
    let db = TestDatabase::create().await;
    let nodes = cluster(&db, &["a", "b"], &[]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    // A burst of 4 for the cluster, and almost no refill.
    let limits = json!({ "starts_per_second": 0.001, "start_burst": 4 });
    let (status, body) = a
        .post(
            "/v1/namespaces",
            &json!({ "name": "rated", "limits": limits }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = a
        .put(
            "/v1/components/steps?namespace=rated",
            crate::support::wasm("steps"),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let start = json!({ "workflow": "steps", "input": 0, "namespace": "rated" });
    let mut admitted = Vec::new();
    for node in [a, b] {
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let (status, body) = node.post("/v1/runs", &start).await;
            if status == 429 {
                assert_eq!(body["error"]["code"], "rate_limited", "{body}");
                assert!(
                    body["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("through each of 2 nodes"),
                    "{body}"
                );
            }
            statuses.push(status);
        }
        admitted.push(statuses.iter().filter(|s| **s == 201).count());
    }
    // Each node admits its half of the burst: 4 in all, not 4 per node.
    assert_eq!(admitted, vec![2, 2]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_fires_once_per_due_time_however_many_nodes_look() {
    let db = TestDatabase::create().await;
    let mut nodes = cluster(&db, &["s1", "s2"], &[]).await;
    nodes[0].deploy("steps", "steps").await;
    let schedule = json!({
        "id": "beat", "workflow": "steps", "input": 0, "every": "1s", "overlap": "allow-all"
    });
    let (status, body) = nodes[1].post("/v1/schedules", &schedule).await;
    assert_eq!(status, 201, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while due_times(&nodes[0], "beat").await.len() < 4 {
        assert!(
            Instant::now() < deadline,
            "the schedule never fired 4 times"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // One node dies; the other goes on alone.
    nodes[0].kill9();
    let before = due_times(&nodes[1], "beat").await.len();
    while due_times(&nodes[1], "beat").await.len() < before + 3 {
        assert!(
            Instant::now() < deadline,
            "the schedule stopped with its node"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let due = due_times(&nodes[1], "beat").await;
    let span = ((due[due.len() - 1] - due[0]) / 1000 + 1) as usize;
    assert_eq!(due.len(), span, "one run per due time: {due:?}");
}
