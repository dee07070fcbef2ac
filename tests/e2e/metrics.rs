//! `GET /metrics` after real work: each metric the server keeps has a
//! sample (labelled by namespace where it is a run's), and every metric
//! the Grafana dashboard in docs/grafana queries exists.

use crate::support::Server;
use serde_json::{Value, json};
use std::collections::BTreeSet;

async fn scrape(server: &Server) -> String {
    reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The metric names the text format declares (`# TYPE name kind`).
fn declared(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Every `weft_…` name in the dashboard's queries, without the series
/// suffixes of a histogram.
fn queried(dashboard: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for (at, _) in expr.match_indices("weft_") {
                let name: String = expr[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(&name);
                names.insert(base.to_string());
            }
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_real_work_and_the_dashboard_queries_only_metrics_that_exist() {
    let server = Server::start(&["--resident-timer-ms", "100"]);
    server.deploy("step", "step").await;
    server.deploy("chain10", "chain10").await;
    server.deploy("effects", "effects").await;
    server.deploy("sleeper", "sleeper").await;
    server.deploy("retries", "retries").await;
    let chain = server.start_run("chain10", json!(0)).await;
    assert_eq!(server.wait(&chain, 30).await["output"], 10);
    // A durable sleep long enough to leave memory: a timer, an eviction,
    // a replay.
    let sleeper = server
        .start_run("sleeper", json!({ "tag": "m", "sleep_ms": 400 }))
        .await;
    assert_eq!(server.wait(&sleeper, 30).await["status"], "completed");
    // Failed attempts, by kind.
    let retries = server.start_run("retries", json!(null)).await;
    assert_eq!(server.wait(&retries, 60).await["status"], "completed");

    let text = scrape(&server).await;
    let sample = |prefix: &str| {
        assert!(
            text.lines().any(|l| l.starts_with(prefix)),
            "no sample `{prefix}…` in:\n{text}"
        );
    };
    sample(r#"weft_runs{namespace="default",status="completed"} 3"#);
    sample("weft_resident_runs ");
    sample(r#"weft_execution_seconds_count{ending="ended",namespace="default"}"#);
    sample(r#"weft_execution_seconds_count{ending="suspended",namespace="default"}"#);
    sample(r#"weft_evictions_total{namespace="default"}"#);
    sample(r#"weft_replay_seconds_count{namespace="default"}"#);
    sample(r#"weft_run_duration_seconds_count{namespace="default",status="completed"} 3"#);
    sample(
        r#"weft_activity_attempts_total{component="step",function="add-one",namespace="default",outcome="completed"} 10"#,
    );
    sample(
        r#"weft_activity_failures_total{component="effects",function="fail",kind="flaky",namespace="default"}"#,
    );
    sample(r#"weft_timer_lag_seconds_count{namespace="default"}"#);
    sample("weft_commit_writes_count ");
    sample("weft_commit_seconds_bucket{le=");
    sample("weft_commits_total ");
    sample("weft_writes_total ");
    sample(r#"weft_http_requests_total{method="POST",route="/v1/runs",status="201"} 3"#);
    sample(r#"weft_http_request_seconds_count{method="GET",route="/v1/runs/{run_id}"}"#);
    // Routes are labelled by their pattern: no run id in a label.
    assert!(!text.contains(&chain), "a run id in the metrics");

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/grafana/weft-dashboard.json"
    );
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let missing: Vec<String> = queried(&dashboard)
        .difference(&declared(&text))
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries unknown metrics: {missing:?}"
    );
    assert!(queried(&dashboard).len() >= 15, "{:?}", queried(&dashboard));
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_name_the_run_and_namespace_of_the_lines_about_a_run() {
    let server = Server::start(&["--log-format", "json", "--resident-timer-ms", "100"]);
    server.deploy("effects", "effects").await;
    server.deploy("sleeper", "sleeper").await;
    let run_id = server
        .start_run("sleeper", json!({ "tag": "logs", "sleep_ms": 400 }))
        .await;
    assert_eq!(server.wait(&run_id, 30).await["status"], "completed");

    let log = server.log();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let about = |needle: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|l| {
                l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(needle))
            })
            .collect()
    };
    // The activity's own lines, and the engine's replay after the sleep.
    for needle in ["effect step n=1", "effect step n=2", "resuming: replaying"] {
        let found = about(needle);
        assert!(!found.is_empty(), "no line with `{needle}` in:\n{log}");
        for line in found {
            assert_eq!(line["span"]["run_id"], json!(run_id), "{line}");
            assert_eq!(line["span"]["namespace"], "default", "{line}");
        }
    }
}
