//! Chaos: three nodes on one Postgres database drive a mix of runs —
//! sequential activities, fan-outs, timers, signals to entity workflows,
//! children — while nodes are killed with -9 and restarted at random
//! moments. At the end every run has completed with the right result,
//! every activity step is completed once in its journal, no journal has a
//! gap or a duplicate, and nothing is stuck. Bounded to run in CI; the
//! seed is printed (`WEFT_CHAOS_SEED` repeats a sitting).

#[path = "../e2e/support.rs"]
#[allow(dead_code)]
mod support;

/// The end-to-end support also builds the cargo-component guests of that
/// suite after its own; the chaos test needs none of them.
mod component_builds {
    pub fn build_all() {}
}

use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use support::Server;
use support::test_database::TestDatabase;

const CHAINS: usize = 60;
const FANOUTS: usize = 40;
const SLEEPERS: usize = 50;
const ENTITIES: usize = 30;
const PARENTS: usize = 20;
/// Signals each entity waits for.
const ITEMS: usize = 4;
const KILLS: usize = 24;
const LEASE_MS: u64 = 1500;

/// A small deterministic generator (xorshift), so a seed repeats a sitting.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What a run must end with.
enum Expect {
    Chain,
    Fanout,
    Sleeper(String),
    Entity,
    Parent(String),
}

/// The nodes, reached through whichever answers: a node may be down.
struct Cluster {
    nodes: Vec<Server>,
    http: reqwest::Client,
}

impl Cluster {
    async fn send(&self, post: bool, path: &str, body: &Value, key: Option<&str>) -> (u16, Value) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut i = 0;
        loop {
            let node = &self.nodes[i % self.nodes.len()];
            i += 1;
            let url = node.url(path);
            let request = if post {
                let mut r = self.http.post(&url).json(body);
                if let Some(key) = key {
                    r = r.header("Idempotency-Key", key);
                }
                r
            } else {
                self.http.get(&url)
            };
            match request.send().await {
                Ok(resp) if resp.status().as_u16() < 500 => {
                    let status = resp.status().as_u16();
                    return (status, resp.json().await.unwrap_or(Value::Null));
                }
                // Down, restarting, or its database connection cut: another.
                _ => {
                    assert!(Instant::now() < deadline, "no node answered {path}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn start(&self, workflow: &str, input: Value) -> String {
        let body = json!({ "workflow": workflow, "input": input });
        let (status, run) = self.send(true, "/v1/runs", &body, None).await;
        assert_eq!(status, 201, "{run}");
        run["run_id"].as_str().unwrap().to_string()
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.send(false, path, &Value::Null, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }
}

/// Send each entity up to `n` more of the items it is owed, in order.
async fn send_items(cluster: &Cluster, entities: &mut [(String, usize)], n: usize) {
    for (e, (run, next)) in entities.iter_mut().enumerate() {
        for _ in 0..n {
            if *next == ITEMS {
                break;
            }
            let key = format!("chaos-{e}-{next}");
            let path = format!("/v1/runs/{run}/signals/item");
            let (status, body) = cluster.send(true, &path, &json!(*next), Some(&key)).await;
            assert_eq!(status, 202, "{body}");
            *next += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_lose_none_of_200_runs_to_20_kills() {
    let seed = std::env::var("WEFT_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::process::id() as u64 * 2_654_435_761 + 1);
    println!("chaos seed {seed}");
    let mut dice = Dice(seed);
    let db = TestDatabase::create().await;
    let lease = LEASE_MS.to_string();
    let nodes: Vec<Server> = ["a", "b", "c"]
        .iter()
        .map(|name| {
            Server::start_on_postgres(
                &db.url,
                &[
                    "--node-id",
                    name,
                    "--lease-ms",
                    &lease,
                    "--resident-timer-ms",
                    "100",
                ],
            )
        })
        .collect();
    let mut cluster = Cluster {
        nodes,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
    };
    for (name, guest) in [
        ("step", "step"),
        ("effects", "effects"),
        ("steps", "steps"),
        ("fanout", "fanout"),
        ("sleeper", "sleeper"),
        ("entity", "entity"),
        ("parent", "parent"),
    ] {
        cluster.nodes[0].deploy(name, guest).await;
    }

    // The runs to start, shuffled, started in waves between kills so that
    // kills land while runs are in flight.
    let mut specs: Vec<(&str, Value, Expect)> = Vec::new();
    for _ in 0..CHAINS {
        specs.push(("steps", json!(20), Expect::Chain));
    }
    for _ in 0..FANOUTS {
        let input = json!({ "n": 10, "spread_ms": 37, "base_ms": 100 });
        specs.push(("fanout", input, Expect::Fanout));
    }
    for i in 0..SLEEPERS {
        let tag = format!("s{i}");
        let input = json!({ "tag": tag, "sleep_ms": 1000 + dice.roll(8000) });
        specs.push(("sleeper", input, Expect::Sleeper(tag)));
    }
    for _ in 0..ENTITIES {
        specs.push(("entity", json!({ "expect": ITEMS }), Expect::Entity));
    }
    for i in 0..PARENTS {
        let tag = format!("p{i}");
        let input = json!({ "tag": tag, "sleep_ms": 1000 + dice.roll(3000) });
        specs.push(("parent", input, Expect::Parent(tag)));
    }
    for i in (1..specs.len()).rev() {
        specs.swap(i, dice.roll(i as u64 + 1) as usize);
    }
    let waves = 12;
    let per_wave = specs.len().div_ceil(waves);

    // Kill nodes at random moments. Before each of the first kills a wave
    // of runs starts, and entities get their next item, through whichever
    // node answers (a retried request carries its idempotency key, so it
    // is not a second signal).
    let began = Instant::now();
    let mut runs: Vec<(String, Expect)> = Vec::new();
    // Each entity's run and the next item it is owed.
    let mut entities: Vec<(String, usize)> = Vec::new();
    let mut kills = Vec::new();
    let mut in_flight = Vec::new();
    for k in 0..KILLS {
        for (workflow, input, expect) in specs.drain(..per_wave.min(specs.len())) {
            let run = cluster.start(workflow, input).await;
            if matches!(expect, Expect::Entity) {
                entities.push((run.clone(), 0));
            }
            runs.push((run, expect));
        }
        if k % 2 == 1 {
            send_items(&cluster, &mut entities, 1).await;
        }
        tokio::time::sleep(Duration::from_millis(200 + dice.roll(800))).await;
        let running = cluster.get("/v1/runs?status=running&limit=1000").await;
        in_flight.push(running["runs"].as_array().map_or(0, Vec::len));
        let victim = dice.roll(3) as usize;
        // Now and then the node stays down past its lease (the others take
        // its shards over); otherwise it comes back at once.
        let down_ms = if dice.roll(3) == 0 { LEASE_MS + 500 } else { 0 };
        let node = &mut cluster.nodes[victim];
        node.kill9();
        if down_ms > 0 {
            tokio::time::sleep(Duration::from_millis(down_ms)).await;
        }
        node.restart();
        kills.push((victim, down_ms));
    }
    send_items(&cluster, &mut entities, ITEMS).await;
    println!(
        "{} runs started; {} kill -9s ({} kept down past the lease) over {:?}; runs in flight at each kill: {in_flight:?}",
        runs.len(),
        kills.len(),
        kills.iter().filter(|(_, d)| *d > 0).count(),
        began.elapsed()
    );

    // Every run completes, with its result.
    let drained = Instant::now();
    for (run, expect) in &runs {
        let done = loop {
            let run_now = cluster.get(&format!("/v1/runs/{run}?wait=5")).await;
            if run_now["status"] != "running" {
                break run_now;
            }
            assert!(
                drained.elapsed() < Duration::from_secs(180),
                "run {run} is stuck running: {run_now}"
            );
        };
        assert_eq!(done["status"], "completed", "{done}");
        let output = &done["output"];
        match expect {
            Expect::Chain => assert_eq!(*output, json!(20), "{done}"),
            Expect::Fanout => assert_eq!(*output, json!(55), "{done}"),
            Expect::Sleeper(tag) => {
                assert_eq!(output["tag"], tag.as_str(), "{done}");
                assert_eq!(output["slept_enough"], true, "{done}");
            }
            Expect::Entity => assert_eq!(output["seen"], json!([0, 1, 2, 3]), "{done}"),
            Expect::Parent(tag) => assert_eq!(output["child"]["tag"], tag.as_str(), "{done}"),
        }
    }
    println!(
        "all runs completed {:?} after the last kill",
        drained.elapsed()
    );

    // Every journal: dense sequence numbers, each activity completed once.
    let listed = cluster.get("/v1/runs?limit=1000").await;
    let all = listed["runs"].as_array().expect("a list of runs");
    assert_eq!(
        all.len(),
        runs.len() + PARENTS,
        "runs and the parents' children"
    );
    let expected: HashMap<&str, usize> = [
        ("steps", 20),
        ("fanout", 10),
        ("sleeper", 2),
        ("entity", 0),
        ("parent", 0),
    ]
    .into();
    let mut events = 0;
    for run in all {
        assert_eq!(run["status"], "completed", "{run}");
        let id = run["run_id"].as_str().unwrap();
        let journal = cluster.get(&format!("/v1/runs/{id}/journal")).await;
        let journal = journal["events"].as_array().unwrap();
        events += journal.len();
        let seqs: Vec<u64> = journal.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, (0..journal.len() as u64).collect::<Vec<_>>(), "{id}");
        let completed: Vec<u64> = journal
            .iter()
            .filter(|e| e["kind"] == "activity-completed")
            .map(|e| e["handle"].as_u64().unwrap())
            .collect();
        let distinct: HashSet<&u64> = completed.iter().collect();
        assert_eq!(
            distinct.len(),
            completed.len(),
            "an activity completed twice in {id}"
        );
        let workflow = run["workflow"].as_str().unwrap();
        assert_eq!(completed.len(), expected[workflow], "{workflow} {id}");
        assert_eq!(
            journal.iter().filter(|e| e["kind"] == "completed").count(),
            1,
            "{id}"
        );
    }
    println!(
        "{} runs, {events} journal events checked: no gap, no duplicate, every activity once",
        all.len()
    );
}
