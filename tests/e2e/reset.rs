//! Reset over real HTTP and the CLI: a run failed by a buggy activity is
//! reset to the failed step once the fix is deployed, and completes
//! without running the steps before it again; bad input.

use crate::support::{Server, of_kind};
use serde_json::json;

#[tokio::test]
async fn a_run_failed_by_a_buggy_activity_is_reset_to_the_failed_step_and_completes() {
    let server = Server::start(&[]);
    server.deploy("stage", "stage").await;
    server.deploy("pipeline", "pipeline").await;
    let (status, started) = server
        .post(
            "/v1/runs",
            &json!({ "workflow": "pipeline", "input": 4, "workflow_id": "p1" }),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    let old = started["run_id"].as_str().unwrap().to_string();
    let run = server.wait(&old, 30).await;
    // The workflow propagated the activity's failure: its own error is the
    // cause of the boundary error.
    assert_eq!(
        (
            &run["status"],
            &run["error"]["kind"],
            &run["error"]["cause"]["kind"]
        ),
        (&json!("failed"), &json!("activity-failed"), &json!("bug")),
        "{run}"
    );
    let events = server.journal(&old).await;
    let failed_at = of_kind(&events, "activity-failed")[0]["seq"]
        .as_u64()
        .unwrap();

    // Bad input: an event the run does not have, a run that does not exist.
    let (status, body) = server
        .post(&format!("/v1/runs/{old}/reset"), &json!({ "event": 999 }))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("events 0 to")
    );
    let (status, body) = server
        .post("/v1/runs/nobody/reset", &json!({ "event": 1 }))
        .await;
    assert_eq!(status, 404, "{body}");

    // The fix, then the reset to the failed step.
    server.deploy("stage", "stage-fixed").await;
    let to = failed_at.to_string();
    let (ok, out, err) = server.cli(&["reset", &old, "--to", &to, "--reason", "stage fixed"]);
    assert!(ok && out.contains("carries on"), "{out}{err}");
    let (_, latest) = server.get("/v1/workflow-ids/p1").await;
    let new = latest["run_id"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let done = server.wait(&new, 30).await;
    assert_eq!(done["status"], "completed", "{done}");
    let steps = done["output"].as_array().unwrap();
    assert_eq!(steps.len(), 4, "{done}");
    // Steps 0 and 1 were replayed from the old journal, not run again;
    // 2 and 3 ran on the fixed activity, for the new run.
    for (i, step) in steps.iter().enumerate() {
        let by = step["by"].as_str().unwrap();
        let (run, fixed) = if i < 2 { (&old, false) } else { (&new, true) };
        assert!(by.starts_with(run.as_str()), "step {i}: {step}");
        assert_eq!(step["fixed"].as_bool().unwrap_or(false), fixed, "{step}");
    }
    let journal = server.journal(&new).await;
    let from = of_kind(&journal, "reset-from");
    assert_eq!(
        (&from[0]["run_id"], &from[0]["event"]),
        (&json!(old), &json!(failed_at)),
        "{journal:?}"
    );
    assert_eq!(
        from[0]["seq"],
        json!(failed_at),
        "the kept events, then the marker"
    );
    let events = server.journal(&old).await;
    let last = events.last().unwrap();
    assert_eq!(
        (&last["kind"], &last["new_run_id"]),
        (&json!("reset"), &json!(new)),
        "{last}"
    );
}

#[tokio::test]
async fn a_running_run_reset_before_a_signal_gets_that_signal_again() {
    let server = Server::start(&[]);
    server.deploy("entity", "entity").await;
    let (_, started) = server
        .post(
            "/v1/runs",
            &json!({ "workflow": "entity", "input": { "expect": 3 }, "workflow_id": "e1" }),
        )
        .await;
    let old = started["run_id"].as_str().unwrap().to_string();
    for item in ["a", "b"] {
        server
            .post("/v1/workflow-ids/e1/signals/item", &json!(item))
            .await;
    }
    server
        .until_journal(&old, "two signals", |events| {
            of_kind(events, "signal-received").len() == 2
        })
        .await;
    let events = server.journal(&old).await;
    let second = of_kind(&events, "signal-received")[1]["seq"].clone();
    let (status, new) = server
        .post(
            &format!("/v1/runs/{old}/reset"),
            &json!({ "event": second, "reason": "replay b" }),
        )
        .await;
    assert_eq!(status, 201, "{new}");
    let new = new["run_id"].as_str().unwrap().to_string();
    let (_, was) = server.get(&format!("/v1/runs/{old}")).await;
    assert_eq!(was["status"], "terminated", "{was}");
    server
        .post("/v1/workflow-ids/e1/signals/item", &json!("c"))
        .await;
    let done = server.wait(&new, 30).await;
    assert_eq!(done["output"]["seen"], json!(["a", "b", "c"]), "{done}");
}
