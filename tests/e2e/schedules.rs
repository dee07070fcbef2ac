//! Schedules over real HTTP and the CLI: one run per due time across a
//! kill -9, catch-up within the window and missed past it, the skip
//! overlap policy, pause, trigger, delete and bad input.

use crate::support::Server;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn create(server: &Server, body: Value) -> Value {
    let (status, created) = server.post("/v1/schedules", &body).await;
    assert_eq!(status, 201, "{body}: {created}");
    created
}

/// The runs a schedule started: (due time, run) in due order.
async fn runs_of(server: &Server, schedule: &str) -> Vec<(i64, Value)> {
    let (status, listed) = server.get("/v1/runs?limit=1000").await;
    assert_eq!(status, 200, "{listed}");
    let prefix = format!("{schedule}-");
    let mut runs: Vec<(i64, Value)> = listed["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| {
            let due = r["workflow_id"]
                .as_str()?
                .strip_prefix(&prefix)?
                .parse()
                .ok()?;
            Some((due, r.clone()))
        })
        .collect();
    runs.sort_by_key(|(due, _)| *due);
    runs
}

/// The due times of the runs a schedule started, in order.
pub async fn due_times(server: &Server, schedule: &str) -> Vec<i64> {
    let runs = runs_of(server, schedule).await;
    runs.into_iter().map(|(due, _)| due).collect()
}

async fn until_runs(server: &Server, schedule: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while due_times(server, schedule).await.len() < n {
        assert!(
            Instant::now() < deadline,
            "{schedule} never started {n} runs"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn show(server: &Server, id: &str) -> Value {
    let (status, schedule) = server.get(&format!("/v1/schedules/{id}")).await;
    assert_eq!(status, 200, "{schedule}");
    schedule
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_starts_one_run_per_due_time_across_a_crash() {
    let mut server = Server::start(&[]);
    server.deploy("steps", "steps").await;
    let base = json!({ "workflow": "steps", "input": 0, "every": "1s", "overlap": "allow-all" });
    let mut tick = base.clone();
    tick["id"] = json!("tick");
    tick["catchup_window"] = json!("1m");
    create(&server, tick).await;
    let mut short = base.clone();
    short["id"] = json!("short");
    short["catchup_window"] = json!("500ms");
    create(&server, short).await;
    until_runs(&server, "tick", 2).await;

    // Down for 3 s: `tick` catches the due times up, `short` misses them.
    server.kill9();
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.restart();
    let before = due_times(&server, "tick").await.len();
    until_runs(&server, "tick", before + 5).await;

    let due = due_times(&server, "tick").await;
    let span = ((due[due.len() - 1] - due[0]) / 1000 + 1) as usize;
    assert_eq!(
        due.len(),
        span,
        "one run per due time, none missed: {due:?}"
    );
    assert!(due.iter().all(|d| d % 1000 == 0), "{due:?}");
    let runs = server.get("/v1/runs?limit=1000").await.1;
    for run in runs["runs"].as_array().unwrap() {
        if run["workflow_id"].as_str().unwrap().starts_with("tick-") {
            let run = server.wait(run["run_id"].as_str().unwrap(), 30).await;
            assert_eq!(run["status"], "completed", "{run}");
        }
    }

    let short = show(&server, "short").await;
    let missed: Vec<&Value> = short["state"]["recent"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["outcome"] == "missed")
        .collect();
    assert_eq!(missed.len(), 1, "{short}");
    assert!(missed[0]["count"].as_u64().unwrap() >= 2, "{short}");
    let due = due_times(&server, "short").await;
    assert!(
        due.windows(2).any(|w| w[1] - w[0] >= 3000),
        "a gap where the due times were missed: {due:?}"
    );
    let mut distinct = due.clone();
    distinct.dedup();
    assert_eq!(distinct, due);
}

#[tokio::test(flavor = "multi_thread")]
async fn skip_pause_trigger_delete_and_bad_input() {
    let server = Server::start(&[]);
    server.deploy("entity", "entity").await;
    // An entity waits for 1000 signals: its runs stay open.
    let held =
        json!({ "id": "held", "workflow": "entity", "input": { "expect": 1000 }, "every": "1s" });
    let created = create(&server, held.clone()).await;
    assert_eq!(created["spec"]["overlap"], "skip");
    assert_eq!(created["next_due_ms"].as_array().unwrap().len(), 5);

    // Skip: the open run holds the next due times.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = show(&server, "held").await;
        let recent = s["state"]["recent"].as_array().unwrap();
        if recent.iter().any(|a| a["outcome"] == "skipped") {
            break;
        }
        assert!(Instant::now() < deadline, "nothing skipped: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(due_times(&server, "held").await.len(), 1);

    // Paused: no due time is acted on.
    let (status, paused) = server
        .post(
            "/v1/schedules/held/pause",
            &json!({ "note": "incident 42" }),
        )
        .await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(
        (&paused["state"]["paused"], &paused["state"]["note"]),
        (&json!(true), &json!("incident 42"))
    );
    assert_eq!(paused["next_due_ms"], json!([]));
    let recent = paused["state"]["recent"].as_array().unwrap().len();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let after = show(&server, "held").await;
    assert_eq!(after["state"]["recent"].as_array().unwrap().len(), recent);

    // Trigger starts a run now, paused or not.
    let (status, triggered) = server
        .post("/v1/schedules/held/trigger", &json!(null))
        .await;
    assert_eq!(status, 200, "{triggered}");
    let run_id = triggered["run_id"].as_str().unwrap();
    let (_, run) = server.get(&format!("/v1/runs/{run_id}")).await;
    assert!(
        run["workflow_id"]
            .as_str()
            .unwrap()
            .starts_with("held-manual-"),
        "{run}"
    );

    // The CLI lists, shows and unpauses.
    let (ok, out, err) = server.cli(&["schedule", "list"]);
    assert!(
        ok && out.contains("held") && out.contains("paused"),
        "{out}{err}"
    );
    let (ok, out, err) = server.cli(&["schedule", "unpause", "held", "--note", "over"]);
    assert!(ok && out.contains("active"), "{out}{err}");
    let (ok, out, err) = server.cli(&["schedule", "show", "held"]);
    assert!(
        ok && out.contains("skipped") && out.contains("note: over"),
        "{out}{err}"
    );

    // Bad input: clear 4xx errors.
    for (body, status, says) in [
        (json!({ "every": "0s" }), 400, "invalid interval"),
        (json!({ "every": "soon" }), 400, "invalid interval"),
        (
            json!({ "catchup_window": "a while" }),
            400,
            "invalid catch-up window",
        ),
        (json!({ "id": "bad id!" }), 400, "invalid schedule name"),
        (
            json!({ "workflow": "nowhere" }),
            404,
            "no workflow named `nowhere`",
        ),
        (json!({}), 409, "already has a schedule `held`"),
        (
            json!({ "every": null, "cron": "61 * * * *" }),
            400,
            "invalid cron expression `61 * * * *`: field 1 (minute)",
        ),
        (
            json!({ "every": null, "cron": "0 0 30 feb *" }),
            400,
            "never due",
        ),
        (
            json!({ "every": null, "cron": "@daily", "time_zone": "Mars/Olympus" }),
            400,
            "unknown time zone",
        ),
        (json!({ "cron": "@daily" }), 400, "not both"),
        (
            json!({ "time_zone": "UTC" }),
            400,
            "applies to a cron schedule",
        ),
    ] {
        let mut request = held.clone();
        for (k, v) in body.as_object().unwrap() {
            request[k] = v.clone();
        }
        let (s, answer) = server.post("/v1/schedules", &request).await;
        assert_eq!(s, status, "{request}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    // Cron schedules: due times in their time zone.
    let cron = json!({
        "id": "standup", "workflow": "entity", "input": { "expect": 1 },
        "cron": "30 9 * * *", "time_zone": "Asia/Kolkata", "paused": true
    });
    let created = create(&server, cron).await;
    assert_eq!(created["next_due_ms"], json!([]), "paused: {created}");
    let (_, created) = server
        .post("/v1/schedules/standup/unpause", &json!({}))
        .await;
    let due: Vec<i64> = created["next_due_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect();
    assert_eq!(due.len(), 5, "{created}");
    // 09:30 in Kolkata (UTC+05:30) is 04:00 UTC, every day.
    assert!(
        due.iter().all(|t| t % 86_400_000 == 4 * 3_600_000),
        "{due:?}"
    );
    assert!(due.windows(2).all(|w| w[1] - w[0] == 86_400_000), "{due:?}");
    let (ok, out, err) = server.cli(&[
        "schedule",
        "create",
        "quarter",
        "--workflow",
        "entity",
        "--cron",
        "*/15 * * * *",
        "--time-zone",
        "Europe/Berlin",
        "--input",
        r#"{"expect": 1}"#,
    ]);
    assert!(
        ok && out.contains("cron '*/15 * * * *' Europe/Berlin"),
        "{out}{err}"
    );

    let (s, answer) = server.post("/v1/schedules", &json!({ "id": "x" })).await;
    assert_eq!(s, 400, "{answer}");
    let (s, _) = server.post("/v1/schedules/nope/pause", &json!({})).await;
    assert_eq!(s, 404);

    let (s, _) = server.delete("/v1/schedules/held").await;
    assert_eq!(s, 200);
    let (s, answer) = server.get("/v1/schedules/held").await;
    assert_eq!(s, 404, "{answer}");
    let (ok, _, err) = server.cli(&["schedule", "show", "held"]);
    assert!(!ok && err.contains("no schedule `held`"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn buffer_one_cancel_previous_jitter_and_backfill() {
    let server = Server::start(&["--resident-timer-ms", "100"]);
    server.deploy("entity", "entity").await;
    let entity = |id: &str, overlap: &str| {
        json!({ "id": id, "workflow": "entity", "input": { "expect": 1 }, "every": "1s",
                "overlap": overlap })
    };

    // cancel-previous: each due time cancels the open run.
    create(&server, entity("fresh", "cancel-previous")).await;
    until_runs(&server, "fresh", 3).await;
    server.post("/v1/schedules/fresh/pause", &json!({})).await;
    let runs = runs_of(&server, "fresh").await;
    let (_, newest) = runs.last().unwrap();
    for (_, run) in &runs[..runs.len() - 1] {
        let run = server.wait(run["run_id"].as_str().unwrap(), 30).await;
        assert_eq!(run["status"], "cancelled", "{run}");
    }
    let (_, newest) = server
        .get(&format!("/v1/runs/{}", newest["run_id"].as_str().unwrap()))
        .await;
    assert_eq!(newest["status"], "running", "{newest}");

    // buffer-one: the newest due time waits for the open run to end.
    create(&server, entity("queued", "buffer-one")).await;
    until_runs(&server, "queued", 1).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let runs = runs_of(&server, "queued").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let first = runs[0].1["run_id"].as_str().unwrap().to_string();
    let signalled_at = now_ms();
    let (status, _) = server
        .post(&format!("/v1/runs/{first}/signals/item"), &json!("done"))
        .await;
    assert_eq!(status, 202);
    assert_eq!(server.wait(&first, 30).await["status"], "completed");
    until_runs(&server, "queued", 2).await;
    let runs = runs_of(&server, "queued").await;
    let (buffered_due, buffered) = &runs[1];
    assert!(
        *buffered_due < signalled_at,
        "the buffered due time passed while the first run was open: {runs:?}"
    );
    assert!(
        buffered["created_at_ms"].as_i64().unwrap() >= signalled_at,
        "{buffered}"
    );
    let queued = show(&server, "queued").await;
    let skipped = queued["state"]["recent"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["outcome"] == "skipped")
        .count();
    assert!(
        skipped >= 1,
        "older due times were skipped, one buffered: {queued}"
    );
    server.post("/v1/schedules/queued/pause", &json!({})).await;

    // Jitter: each start waits its own share of up to 900 ms.
    let mut spread = entity("spread", "allow-all");
    spread["jitter"] = json!("900ms");
    create(&server, spread).await;
    until_runs(&server, "spread", 4).await;
    let delays: Vec<i64> = runs_of(&server, "spread")
        .await
        .iter()
        .map(|(due, run)| run["created_at_ms"].as_i64().unwrap() - due)
        .collect();
    assert!(delays.iter().all(|d| (0..2000).contains(d)), "{delays:?}");
    assert!(delays.iter().any(|d| *d > 100), "{delays:?}");
    server.post("/v1/schedules/spread/pause", &json!({})).await;

    // Backfill: the due times of a past range that had no run, once.
    let mut daily = entity("daily", "allow-all");
    daily["every"] = json!("1d");
    create(&server, daily).await;
    let day = 86_400_000;
    let today = now_ms() / day * day;
    let range = json!({ "from": today - 3 * day, "to": "2099-01-01T00:00:00Z" });
    let (status, body) = server
        .post(
            "/v1/schedules/daily/backfill",
            &json!({ "from": today - 3 * day, "to": today - 1 }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["started"].as_array().unwrap().len(), 3, "{body}");
    let due: Vec<i64> = runs_of(&server, "daily")
        .await
        .iter()
        .map(|(d, _)| *d)
        .collect();
    assert_eq!(due, vec![today - 3 * day, today - 2 * day, today - day]);
    let (ok, out, err) = server.cli(&[
        "schedule",
        "backfill",
        "daily",
        "--from",
        &(today - 3 * day).to_string(),
        "--to",
        &(today - 1).to_string(),
    ]);
    assert!(ok && out.contains("backfilled 0 run(s)"), "{out}{err}");
    let (status, body) = server.post("/v1/schedules/daily/backfill", &range).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than 1000"),
        "{body}"
    );
    assert_eq!(
        runs_of(&server, "daily").await.len(),
        3,
        "a refused backfill starts nothing"
    );
    let (status, body) = server
        .post(
            "/v1/schedules/daily/backfill",
            &json!({ "from": "yesterday", "to": 0 }),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid `from`"),
        "{body}"
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread")]
async fn a_due_time_whose_run_cannot_start_is_recorded_failed() {
    let server = Server::start(&[]);
    server.deploy("steps", "steps").await;
    let orphan = json!({ "id": "orphan", "workflow": "steps", "input": 0, "every": "1s",
                         "paused": true });
    create(&server, orphan).await;
    let (status, body) = server.delete("/v1/workflows/steps/versions/1").await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = server
        .post("/v1/schedules/orphan/unpause", &json!({}))
        .await;
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = show(&server, "orphan").await;
        let failed: Vec<&Value> = s["state"]["recent"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["outcome"] == "failed")
            .collect();
        if failed.len() >= 2 {
            let message = failed[0]["message"].as_str().unwrap();
            assert!(message.contains("steps"), "{message}");
            break;
        }
        assert!(Instant::now() < deadline, "no failed due time: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(due_times(&server, "orphan").await.is_empty());
}
