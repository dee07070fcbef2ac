//! Search attributes and list queries over real HTTP and the CLI: a query
//! over attributes and run fields returns exactly the matching runs, an
//! attribute changed or removed later is what queries see, a batch acts on
//! a query's runs, and a bad query is a 400 naming the position.

use crate::support::{Server, of_kind};
use serde_json::{Value, json};
use std::collections::BTreeSet;

async fn tagged(server: &Server, id: &str, attributes: Value, later: Option<Value>) -> String {
    let (status, body) = server
        .post(
            "/v1/runs",
            &json!({
                "workflow": "tagger",
                "workflow_id": id,
                "input": { "attributes": attributes, "later": later },
            }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let run_id = body["run_id"].as_str().unwrap().to_string();
    server
        .until_journal(&run_id, "the attributes", |events| {
            !of_kind(events, "search-attributes-set").is_empty()
        })
        .await;
    run_id
}

/// The workflow ids of the runs a query lists.
async fn matching(server: &Server, query: &str) -> BTreeSet<String> {
    let (status, body) = server
        .get(&format!("/v1/runs?q={}", urlencode(query)))
        .await;
    assert_eq!(status, 200, "{query}: {body}");
    body["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["workflow_id"].as_str().unwrap().to_string())
        .collect()
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn a_query_over_search_attributes_returns_exactly_the_matching_runs() {
    let server = Server::start(&[]);
    server.deploy("tagger", "tagger").await;
    tagged(
        &server,
        "r1",
        json!({ "region": "eu-west", "ring": 1, "kind": "rollout" }),
        None,
    )
    .await;
    tagged(
        &server,
        "r2",
        json!({ "region": "eu-central", "ring": 2, "kind": "rollout" }),
        None,
    )
    .await;
    tagged(
        &server,
        "r3",
        json!({ "region": "us-east", "ring": 2, "kind": "rollout" }),
        None,
    )
    .await;
    let r4 = tagged(
        &server,
        "r4",
        json!({ "region": "eu-west", "ring": 3, "kind": "reconcile", "urgent": true }),
        Some(json!({ "region": "ap-south", "urgent": null })),
    )
    .await;

    for (query, expected) in [
        ("region = 'eu-west'", ids(&["r1", "r4"])),
        ("region STARTS_WITH 'eu-' AND ring >= 2", ids(&["r2", "r4"])),
        (
            "kind = 'rollout' AND (ring = 1 OR region = 'us-east')",
            ids(&["r1", "r3"]),
        ),
        (
            "region IN ('us-east', 'eu-central') AND NOT ring > 2",
            ids(&["r2", "r3"]),
        ),
        ("urgent = true", ids(&["r4"])),
        ("ring != 2", ids(&["r1", "r4"])),
        (
            "workflow = 'tagger' AND status = 'running' AND ring < 2",
            ids(&["r1"]),
        ),
        (
            "start_time > '2000-01-01T00:00:00Z' AND region = 'nowhere'",
            ids(&[]),
        ),
    ] {
        assert_eq!(matching(&server, query).await, expected, "{query}");
    }

    // Changed and removed later: queries see the run's attributes now.
    server
        .post("/v1/workflow-ids/r4/signals/next", &json!(null))
        .await;
    server
        .until_journal(&r4, "the later attributes", |events| {
            of_kind(events, "search-attributes-set").len() == 2
        })
        .await;
    assert_eq!(matching(&server, "region = 'eu-west'").await, ids(&["r1"]));
    assert_eq!(matching(&server, "urgent = true").await, ids(&[]));
    assert_eq!(
        matching(&server, "region = 'ap-south' AND ring = 3").await,
        ids(&["r4"])
    );

    // A run reads back with its attributes as set (types kept: the
    // string "true" is not the boolean).
    let (_, run) = server.get(&format!("/v1/runs/{r4}")).await;
    assert_eq!(
        run["search_attributes"],
        json!({ "region": "ap-south", "ring": 3, "kind": "reconcile" }),
        "{run}"
    );
    let typed = tagged(
        &server,
        "r5",
        json!({ "flag": "true", "on": true, "ratio": 0.5, "count": 7 }),
        None,
    )
    .await;
    let (_, run) = server.get(&format!("/v1/runs/{typed}")).await;
    assert_eq!(
        run["search_attributes"],
        json!({ "flag": "true", "on": true, "ratio": 0.5, "count": 7 }),
        "{run}"
    );
    server
        .post("/v1/workflow-ids/r5/signals/stop", &json!(null))
        .await;
    assert_eq!(server.wait(&typed, 30).await["status"], "completed");

    // The CLI: the same query.
    let (ok, out, err) = server.cli(&["runs", "--query", "region STARTS_WITH 'eu-'"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("r1") && out.contains("r2") && !out.contains("r3"),
        "{out}"
    );

    // A bad query: 400, naming where it stops making sense.
    let (status, body) = server
        .get(&format!("/v1/runs?q={}", urlencode("region = 'eu' AND")))
        .await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("at 18: expected a field name"),
        "{message}"
    );
    let (ok, _, err) = server.cli(&["runs", "--query", "ring >"]);
    assert!(!ok && err.contains("expected a value"), "{err}");

    // A batch over a query touches exactly its runs.
    let (status, done) = server
        .post(
            "/v1/batches",
            &json!({ "action": "cancel", "query": "kind = 'rollout' AND ring = 2" }),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["applied"].as_array().unwrap().len(), 2, "{done}");
    // Cancelling is a request: the runs end as they take it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while matching(&server, "status = 'running'").await != ids(&["r1", "r4"]) {
        assert!(
            std::time::Instant::now() < deadline,
            "the batch's runs did not end"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        matching(&server, "status = 'cancelled'").await,
        ids(&["r2", "r3"])
    );
}
