//! The seed's control plane end to end: provisioning, ring rollouts and
//! cell entities against the simulated cloud, over real HTTP between every
//! part (test → weft → activities → simcloud).

use crate::support::{Server, of_kind, wasm};
use serde_json::{Value, json};
use simcloud::{Cloud, Faults};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Plane {
    server: Server,
    cloud: Arc<Cloud>,
    url: String,
}

/// A simulated cloud and a weft server with the control-plane guests.
async fn plane() -> Plane {
    let (addr, cloud) = simcloud::start("127.0.0.1:0").await.unwrap();
    let server = Server::start(&["--resident-timer-ms", "300", "--deadline-grace-ms", "15000"]);
    let (s, b) = server
        .put(
            &format!("/v1/components/sim?allow_http={addr}"),
            wasm("sim"),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    for guest in [
        "provision-namespace",
        "cell-entity",
        "rollout",
        "rollout-request",
    ] {
        server.deploy(guest, guest).await;
    }
    Plane {
        server,
        cloud,
        url: format!("http://{addr}"),
    }
}

async fn until(what: &str, secs: u64, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Start `provision-namespace` for `namespace` in `region` with an
/// execution timeout; answers the run id.
async fn provision(p: &Plane, namespace: &str, region: &str, timeout_ms: u64) -> String {
    let (s, b) = p
        .server
        .post(
            "/v1/runs",
            &json!({
                "workflow": "provision-namespace",
                "input": { "namespace": namespace, "region": region, "cloud": p.url, "poll_ms": 200 },
                "execution_timeout_ms": timeout_ms,
            }),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    b["run_id"].as_str().unwrap().to_string()
}

/// The messages sent to the pager.
fn pages(cloud: &Cloud) -> Vec<simcloud::Message> {
    cloud
        .messages()
        .into_iter()
        .filter(|m| m.kind == "page")
        .collect()
}

/// 3 rings x 2 batches x 2 cells, named r{ring}b{batch}c{i}.
fn fleet(cloud: &Cloud) -> Vec<Value> {
    let mut batches = Vec::new();
    for ring in 0..3 {
        for batch in 0..2 {
            let cells: Vec<String> = (0..2).map(|i| format!("r{ring}b{batch}c{i}")).collect();
            for c in &cells {
                cloud.add_cell(c, "global", 100, 0);
            }
            batches.push(json!({ "ring": ring, "cells": cells, "wait_ms": 200 }));
        }
    }
    batches
}

fn plan(p: &Plane, version: &str, batches: Vec<Value>) -> Value {
    json!({
        "version": version,
        "cloud": p.url,
        "batches": batches,
        "cell": { "pause_ms": 50, "canary_window_ms": 300, "canary_interval_ms": 100, "idle_ms": 3000 },
    })
}

async fn start(p: &Plane, workflow: &str, workflow_id: &str, input: Value) -> String {
    let (s, b) = p
        .server
        .post(
            "/v1/runs",
            &json!({ "workflow": workflow, "workflow_id": workflow_id, "input": input }),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    b["run_id"].as_str().unwrap().to_string()
}

/// The open (else latest) run of a workflow id.
async fn by_id(p: &Plane, workflow_id: &str) -> Value {
    p.server
        .get(&format!("/v1/workflow-ids/{workflow_id}"))
        .await
        .1
}

/// First and last upgrade time of a cell's services to `version`.
fn window(cloud: &Cloud, cell: &str, version: &str) -> (i64, i64) {
    let at: Vec<i64> = cloud
        .upgrades()
        .iter()
        .filter(|u| u.cell == cell && u.to == version)
        .map(|u| u.at_ms)
        .collect();
    (*at.iter().min().unwrap(), *at.iter().max().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn provisioning_completes_while_the_cloud_is_slow_and_flaky() {
    let p = plane().await;
    for (cell, load) in [("eu-1", 40), ("eu-2", 10), ("eu-3", 25)] {
        p.cloud.add_cell(cell, "eu", 100, load);
    }
    p.cloud.set_faults(Faults {
        failure_rate: 0.3,
        cert_delay_ms: 1500,
        dns_delay_ms: 1500,
        ..Faults::default()
    });
    let run_id = provision(&p, "acme", "eu", 1_800_000).await;
    let run_id = run_id.as_str();
    let run = p.server.wait(run_id, 120).await;
    assert_eq!(run["status"], "completed", "{run}");
    let out = &run["output"];
    assert_eq!(out["cell"], "eu-2", "the least loaded cell");
    assert_eq!(out["http"]["http"], 200);
    assert_eq!(out["grpc"]["status"], "SERVING");

    // The journal shows the retries: injected failures and waiting steps.
    let events = p.server.journal(run_id).await;
    let failures = of_kind(&events, "activity-attempt-failed");
    let kinds: Vec<&str> = failures
        .iter()
        .map(|f| f["failure"]["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"unavailable"), "{kinds:?}");
    assert!(kinds.contains(&"not-ready"), "{kinds:?}");
    assert!(p.cloud.stats().1 > 0);

    // The endpoints answer at the end.
    p.cloud.set_faults(Faults::default());
    for kind in ["http", "grpc"] {
        let resp = reqwest::get(format!("{}/endpoints/acme/{kind}", p.url))
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn provisioning_in_a_dead_region_ends_at_the_deadline_with_a_page() {
    let p = plane().await;
    p.cloud.add_cell("ap-1", "ap", 100, 0);
    p.cloud.set_faults(Faults {
        dead_regions: ["ap".to_string()].into(),
        ..Faults::default()
    });
    let run_id = provision(&p, "zeta", "ap", 3000).await;
    let run = p.server.wait(&run_id, 60).await;
    assert_eq!(run["status"], "timed-out", "{run}");
    let pages = pages(&p.cloud);
    assert_eq!(pages.len(), 1, "{pages:?}");
    assert!(
        pages[0]
            .text
            .contains("provisioning zeta in ap missed its deadline")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_goes_ring_by_ring_halts_on_a_failing_canary_and_resumes() {
    let p = plane().await;
    let batches = fleet(&p.cloud);
    p.cloud.set_faults(Faults {
        failing_canaries: ["r1b0c1".to_string()].into(),
        ..Faults::default()
    });
    let request = start(
        &p,
        "rollout-request",
        "req-v2",
        json!({ "requested_by": "alice", "reason": "CVE-2026-1234", "plan": plan(&p, "v2", batches) }),
    )
    .await;

    until("the rollout to halt", 60, async || {
        by_id(&p, "rollout-v2").await["custom_status"]["state"] == "halted"
    })
    .await;
    let halted = by_id(&p, "rollout-v2").await;
    assert_eq!(halted["custom_status"]["at"]["ring"], 1, "{halted}");
    // An operator finds it by query: the halted rollouts touching ring 1's
    // cells, and none touching ring 2's.
    let (ok, out, err) = p.server.cli(&[
        "runs",
        "--query",
        "workflow = 'rollout' AND state = 'halted' AND cells STARTS_WITH 'r1'",
    ]);
    assert!(ok && out.contains("rollout-v2"), "{out}{err}");
    let (_, none) = p
        .server
        .get("/v1/runs?q=cells%20STARTS_WITH%20%27r2%27")
        .await;
    assert_eq!(none["runs"], json!([]), "{none}");
    let pages = pages(&p.cloud);
    assert_eq!(pages.len(), 1);
    assert!(
        pages[0].text.contains("halted in ring 1"),
        "{}",
        pages[0].text
    );
    assert!(pages[0].text.contains("r1b0c1"));
    // Nothing of ring 2 happened meanwhile.
    assert!(!p.cloud.upgrades().iter().any(|u| u.cell.starts_with("r2")));

    // The operator fixes the cell and resumes.
    p.cloud.set_faults(Faults::default());
    let (s, b) = p
        .server
        .post(
            "/v1/workflow-ids/rollout-v2/signals/operator",
            &json!({ "action": "resume" }),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let run = p.server.wait(&request, 120).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"]["state"], "done");
    assert_eq!(run["output"]["request"]["requested_by"], "alice");
    assert_eq!(
        run["output"]["rollout"]["upgraded"]
            .as_array()
            .unwrap()
            .len(),
        12
    );

    // Every cell on the new version.
    for cell in p.cloud.cells() {
        assert!(cell.versions.values().all(|v| v == "v2"), "{cell:?}");
    }
    // In ring order.
    let upgrades = p.cloud.upgrades();
    let ring = |u: &simcloud::Upgrade| u.cell[1..2].parse::<u32>().unwrap();
    for pair in upgrades.windows(2) {
        assert!(ring(&pair[0]) <= ring(&pair[1]), "{pair:?}");
    }
    // A message before each batch, sent before that batch's first upgrade.
    let next: Vec<_> = p
        .cloud
        .messages()
        .into_iter()
        .filter(|m| m.kind == "chat" && m.text.contains(" next: "))
        .collect();
    assert_eq!(next.len(), 6);
    for (i, message) in next.iter().enumerate() {
        let (ring, batch) = (i / 2, i % 2);
        let first = window(&p.cloud, &format!("r{ring}b{batch}c0"), "v2").0;
        assert!(message.at_ms <= first, "{message:?}");
        assert!(message.text.contains(&format!("r{ring}b{batch}c0")));
    }
    // The two cells of a batch upgrade in parallel.
    let (a, b) = (
        window(&p.cloud, "r0b0c0", "v2"),
        window(&p.cloud, "r0b0c1", "v2"),
    );
    assert!(a.0 < b.1 && b.0 < a.1, "{a:?} {b:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill9_in_the_middle_of_a_rollout_upgrades_no_cell_twice() {
    let mut p = plane().await;
    let batches = fleet(&p.cloud);
    start(&p, "rollout", "rollout-v3", plan(&p, "v3", batches)).await;
    until("ring 1 to start", 60, async || {
        p.cloud.upgrades().iter().any(|u| u.cell.starts_with("r1"))
    })
    .await;
    p.server.restart();
    until("the rollout to finish", 120, async || {
        by_id(&p, "rollout-v3").await["status"] == "completed"
    })
    .await;
    let mut per_service: HashMap<(String, String), usize> = HashMap::new();
    for u in p.cloud.upgrades() {
        *per_service.entry((u.cell, u.service)).or_default() += 1;
    }
    assert_eq!(per_service.len(), 12 * 4);
    assert!(per_service.values().all(|n| *n == 1), "{per_service:?}");
    for cell in p.cloud.cells() {
        assert!(cell.versions.values().all(|v| v == "v3"), "{cell:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_rollout_upgraded_to_v2_runs_the_new_step_for_the_remaining_batches() {
    let p = plane().await;
    let batches: Vec<Value> = (0..4)
        .map(|i| {
            let cell = format!("h{i}");
            p.cloud.add_cell(&cell, "global", 100, 0);
            json!({ "ring": i, "cells": [cell], "wait_ms": if i >= 2 { 2000 } else { 100 } })
        })
        .collect();
    let run_id = start(&p, "rollout", "rollout-v4", plan(&p, "v4", batches)).await;
    // v2 is deployed first: compiling it on a busy machine may take longer
    // than the sleep the upgrade is to happen in.
    let v2 = p.server.deploy("rollout", "rollout-v2").await;
    assert_eq!(v2["version"], 2);
    // Asleep (evicted) before batch 3: batches 1 and 2 are done.
    until("batch 3 to be next", 60, async || {
        let run = by_id(&p, "rollout-v4").await;
        let status = &run["custom_status"];
        // Evicted for this very sleep: its wake-up is the announced one.
        let evicted = match (
            run["wake_at_ms"].as_i64(),
            status["next_wake_at_ms"].as_i64(),
        ) {
            (Some(at), Some(next)) => (at - next).abs() < 1000,
            _ => false,
        };
        status["state"] == "waiting" && status["at"]["batch"] == 3 && evicted
    })
    .await;
    let before = p.server.journal(&run_id).await;
    let (s, report) = p
        .server
        .post(
            &format!("/v1/runs/{run_id}/upgrade"),
            &json!({ "version": "latest" }),
        )
        .await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["upgraded"], true);

    let run = p.server.wait(&run_id, 60).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["version"], 2);
    let after = p.server.journal(&run_id).await;
    assert_eq!(
        after[..before.len()],
        before[..],
        "the done batches' journal is untouched"
    );
    assert_eq!(after[before.len()]["kind"], "upgraded");
    let done: Vec<String> = p
        .cloud
        .messages()
        .into_iter()
        .filter(|m| m.text.ends_with(" done") && m.text.contains("batch"))
        .map(|m| m.text)
        .collect();
    assert_eq!(
        done,
        vec![
            "rollout v4: ring 2 batch 3/4 done".to_string(),
            "rollout v4: ring 3 batch 4/4 done".to_string(),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_cell_serves_a_second_upgrade_after_the_first() {
    let p = plane().await;
    p.cloud.add_cell("solo", "global", 100, 0);
    let one = json!([{ "ring": 0, "cells": ["solo"], "wait_ms": 0 }]);
    let first = start(
        &p,
        "rollout",
        "rollout-v5",
        plan(&p, "v5", serde_json::from_value(one.clone()).unwrap()),
    )
    .await;
    let second = start(
        &p,
        "rollout",
        "rollout-v6",
        plan(&p, "v6", serde_json::from_value(one).unwrap()),
    )
    .await;
    for run in [&first, &second] {
        let run = p.server.wait(run, 60).await;
        assert_eq!(run["status"], "completed", "{run}");
    }
    let (v5, v6) = (
        window(&p.cloud, "solo", "v5"),
        window(&p.cloud, "solo", "v6"),
    );
    // Each rollout asked the cell by update; the cell, busy with one,
    // refused the other, which asked again until it was accepted.
    let mut refused = 0;
    for run in [&first, &second] {
        let events = p.server.journal(run).await;
        let answers = of_kind(&events, "update-answered");
        assert!(!of_kind(&events, "update-sent").is_empty(), "{events:?}");
        assert_eq!(answers.last().unwrap()["output"]["accepted"], true);
        refused += answers
            .iter()
            .filter(|a| a["error"]["kind"] == "upgrade-in-progress")
            .count();
    }
    assert!(refused >= 1, "the busy cell refused no request");
    // One request at a time: the later one's upgrades start after the
    // earlier one's canary window.
    let (earlier, later) = if v5.0 < v6.0 { (v5, v6) } else { (v6, v5) };
    assert!(later.0 >= earlier.1 + 300, "{earlier:?} then {later:?}");
    // The entity keeps its state in the cloud: it served both, in turn.
    let state = p
        .cloud
        .cells()
        .into_iter()
        .find(|c| c.name == "solo")
        .unwrap()
        .state;
    assert_eq!(state["served"], 2, "{state}");
    assert_eq!(state["last"]["ok"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operators_upgrade_update_is_answered_at_once_accepted_or_refused_while_busy() {
    let p = plane().await;
    p.cloud.add_cell("op", "global", 100, 0);
    let entity = json!({
        "cell": "op", "cloud": p.url, "pause_ms": 300,
        "canary_window_ms": 1000, "canary_interval_ms": 200, "idle_ms": 60000,
    });
    let ask = async |version: &str, start: bool| {
        let mut body = json!({ "input": { "version": version } });
        if start {
            body["start"] = json!({ "workflow": "cell-entity", "input": entity });
        }
        p.server
            .post("/v1/workflow-ids/cell-op/updates/upgrade", &body)
            .await
    };
    // Update-with-start: the entity starts, accepts, and starts upgrading.
    let (status, accepted) = ask("v7", true).await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(
        (&accepted["status"], &accepted["output"]["accepted"]),
        (&json!("completed"), &json!(true)),
        "{accepted}"
    );
    let run_id = accepted["run_id"].as_str().unwrap().to_string();
    // Busy: refused at once, and the journal never hears of it.
    let (status, refused) = ask("v8", false).await;
    assert_eq!(status, 200, "{refused}");
    assert_eq!(
        (&refused["status"], &refused["error"]["kind"]),
        (&json!("rejected"), &json!("upgrade-in-progress")),
        "{refused}"
    );
    let (_, invalid) = ask("", false).await;
    assert_eq!(invalid["status"], "rejected", "{invalid}");
    until("the upgrade to v7", 60, async || {
        by_id(&p, "cell-op").await["custom_status"]["idle"] == true
    })
    .await;
    let journal = p.server.journal(&run_id).await;
    assert!(
        journal.iter().all(|e| !e.to_string().contains("v8")),
        "{journal:?}"
    );
    assert_eq!(of_kind(&journal, "update-accepted").len(), 1);
    let (v7_from, _) = window(&p.cloud, "op", "v7");
    // Idle again: the next upgrade is accepted, by the same run.
    let (_, next) = ask("v8", false).await;
    assert_eq!(
        (&next["output"]["accepted"], &next["run_id"]),
        (&json!(true), &json!(run_id)),
        "{next}"
    );
    until("the upgrade to v8", 60, async || {
        p.cloud
            .upgrades()
            .iter()
            .filter(|u| u.cell == "op" && u.to == "v8")
            .count()
            == 4
    })
    .await;
    assert!(window(&p.cloud, "op", "v8").0 > v7_from);
}
