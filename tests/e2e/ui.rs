//! The web UI in a real browser: Debian's Chromium, headless, renders the
//! page against a real server and prints the DOM it built (the page's
//! scripts ran, its API calls answered).

use crate::support::Server;
use serde_json::json;
use std::process::Command;

/// Headless Chromium on `url` with `args` (its own profile; scripts given
/// 5 s of virtual time to settle): what it printed.
async fn chromium(url: String, args: Vec<String>) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let dir = profile.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("chromium")
            .args(["--headless", "--no-sandbox", "--disable-gpu"])
            .arg(format!("--user-data-dir={}", dir.display()))
            .arg("--virtual-time-budget=5000")
            .args(args)
            .arg(&url)
            .output()
            .expect("chromium runs (scripts/setup.sh --tests installs it)")
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    output
}

/// The DOM Chromium renders at `url`, once the page is idle.
async fn rendered(url: String) -> String {
    let output = chromium(url, vec!["--dump-dom".into()]).await;
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runs_page_shows_each_namespace_and_switches_between_them() {
    let server = Server::start(&[]);
    let (status, body) = server
        .post("/v1/namespaces", &json!({ "name": "team-a" }))
        .await;
    assert_eq!(status, 201, "{body}");
    let mut runs = Vec::new();
    for ns in ["default", "team-a"] {
        for guest in ["steps", "step"] {
            let path = format!("/v1/components/{guest}?namespace={ns}");
            let (status, body) = server.put(&path, crate::support::wasm(guest)).await;
            assert_eq!(status, 201, "{body}");
        }
        let start = json!({ "workflow": "steps", "input": 2, "namespace": ns });
        let (status, run) = server.post("/v1/runs", &start).await;
        assert_eq!(status, 201, "{run}");
        let id = run["run_id"].as_str().unwrap().to_string();
        assert_eq!(server.wait(&id, 30).await["status"], "completed");
        runs.push(id);
    }
    let (default_run, team_run) = (&runs[0], &runs[1]);

    let all = rendered(server.url("/")).await;
    assert!(all.contains(default_run) && all.contains(team_run), "{all}");
    assert!(
        all.contains(r#"<option value="team-a">team-a</option>"#),
        "{all}"
    );

    let team = rendered(server.url("/#runs?ns=team-a")).await;
    assert!(team.contains(team_run), "{team}");
    assert!(!team.contains(default_run), "{team}");
    assert!(team.contains("1 run(s)"), "{team}");
    assert!(
        team.contains(r#"<option selected="" value="team-a">team-a</option>"#),
        "{team}"
    );

    let page = rendered(server.url(&format!("/#run={team_run}"))).await;
    assert!(page.contains("namespace <code>team-a</code>"), "{page}");
    assert!(page.contains("activity-completed"), "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schedules_page_shows_when_each_fires_and_why_it_is_paused() {
    let server = Server::start(&[]);
    let (status, body) = server
        .put("/v1/components/steps", crate::support::wasm("steps"))
        .await;
    assert_eq!(status, 201, "{body}");
    for schedule in [
        json!({ "id": "nightly", "workflow": "steps", "input": 0, "cron": "0 2 * * *",
                "time_zone": "Europe/Berlin", "paused": true, "note": "incident 7" }),
        json!({ "id": "beat", "workflow": "steps", "input": 0, "every": "1s" }),
    ] {
        let (status, body) = server.post("/v1/schedules", &schedule).await;
        assert_eq!(status, 201, "{body}");
    }
    // Let `beat` start a run.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while server.get("/v1/schedules/beat").await.1["state"]["last_run_id"].is_null() {
        assert!(std::time::Instant::now() < deadline, "beat never fired");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let page = rendered(server.url("/#schedules")).await;
    assert!(page.contains("2 schedule(s)"), "{page}");
    assert!(
        page.contains("cron <code>0 2 * * *</code> Europe/Berlin"),
        "{page}"
    );
    assert!(
        page.contains("paused <span class=\"muted\">incident 7</span>"),
        "{page}"
    );
    assert!(page.contains("every 1 s"), "{page}");
    assert!(page.contains("started"), "{page}");
    assert!(page.contains("href=\"#run="), "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_waiting_for_a_deployment_says_which_component() {
    let server = Server::start(&[]);
    // `steps` calls `step/add-one`, which is not deployed.
    server.deploy("steps", "steps").await;
    let run_id = server.start_run("steps", json!(1)).await;
    server
        .until_journal(&run_id, "the wait for a deployment", |events| {
            !crate::support::of_kind(events, "activity-awaiting-deployment").is_empty()
        })
        .await;
    // What the page shows (the DOM dump holds the script's text too).
    let shown = async || {
        let page = rendered(server.url(&format!("/#run={run_id}"))).await;
        let main = page.split("<main").nth(1).unwrap_or_default();
        main.split("</main>").next().unwrap_or_default().to_string()
    };
    let page = shown().await;
    assert!(page.contains("waiting for a deployment"), "{page}");
    assert!(page.contains("<code>step</code>"), "{page}");

    server.deploy("step", "step").await;
    assert_eq!(server.wait(&run_id, 30).await["status"], "completed");
    let page = shown().await;
    assert!(page.contains("activity-completed"), "{page}");
    assert!(!page.contains("waiting for a deployment"), "{page}");
}

/// A screenshot of `url`, kept as a test artifact under the target
/// directory (`tmp/ui-screenshots/NAME.png`).
async fn screenshot(url: String, name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&path);
    let args = vec![
        "--hide-scrollbars".into(),
        "--window-size=1280,1000".into(),
        format!("--screenshot={}", path.display()),
    ];
    chromium(url, args).await;
    let png = std::fs::read(&path).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{path:?}"
    );
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_page_draws_its_timeline_with_failed_attempts_marked() {
    let server = Server::start(&[]);
    server.deploy("effects", "effects").await;
    server.deploy("sleeper", "sleeper").await;
    server.deploy("retries", "retries").await;
    let sleeper = server
        .start_run("sleeper", json!({ "tag": "t", "sleep_ms": 300 }))
        .await;
    let retries = server.start_run("retries", json!(null)).await;
    for run in [&sleeper, &retries] {
        assert_eq!(server.wait(run, 60).await["status"], "completed");
    }
    let main_of = |page: String| {
        let main = page.split("<main").nth(1).unwrap_or_default();
        main.split("</main>").next().unwrap_or_default().to_string()
    };

    // An activity, a timer, an activity: three bars, all ended well.
    let page = main_of(rendered(server.url(&format!("/#run={sleeper}"))).await);
    assert!(page.contains("3 operation(s)"), "{page}");
    assert_eq!(page.matches(r#"class="bar ok""#).count(), 2, "{page}");
    assert_eq!(page.matches(r#"class="bar timer ok""#).count(), 1, "{page}");

    // Retried activities: each failed attempt is a mark on its bar.
    let page = main_of(rendered(server.url(&format!("/#run={retries}"))).await);
    let events = server.journal(&retries).await;
    let failed_attempts = crate::support::of_kind(&events, "activity-attempt-failed").len();
    assert!(failed_attempts > 0);
    assert_eq!(
        page.matches(r#"class="mark""#).count(),
        failed_attempts,
        "{page}"
    );
    assert!(page.contains("attempt 1 failed: flaky"), "{page}");

    for (name, url) in [
        ("runs", server.url("/")),
        ("run-timeline", server.url(&format!("/#run={retries}"))),
        ("schedules", server.url("/#schedules")),
    ] {
        let path = screenshot(url, name).await;
        eprintln!("screenshot: {}", path.display());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_run_page_says_what_the_run_waits_on() {
    let server = Server::start(&[]);
    server.deploy("effects", "effects").await;
    server.deploy("sleeper", "sleeper").await;
    let run_id = server
        .start_run("sleeper", json!({ "tag": "w", "sleep_ms": 3_600_000 }))
        .await;
    server
        .until_journal(&run_id, "the timer", |events| {
            !crate::support::of_kind(events, "timer-started").is_empty()
        })
        .await;
    // A signal the sleeper never takes stays pending.
    let (status, body) = server
        .post(&format!("/v1/runs/{run_id}/signals/nudge"), &json!(1))
        .await;
    assert!(status < 300, "{status} {body}");
    let (_, run) = server.get(&format!("/v1/runs/{run_id}")).await;
    assert_eq!(run["pending_signals"][0]["name"], "nudge", "{run}");

    let page = rendered(server.url(&format!("/#run={run_id}"))).await;
    let main = page.split("<main").nth(1).unwrap_or_default();
    let main = main.split("</main>").next().unwrap_or_default();
    assert!(main.contains("next timer fires"), "{main}");
    assert!(
        main.contains("signals waiting: <code>nudge</code>"),
        "{main}"
    );
    assert!(!main.contains("activities in flight"), "{main}");
}

/// Copies of the completed run `like` under the name `bulk`, `n` of them,
/// written straight to the store: a store with that many runs in it.
async fn bulk_runs(server: &Server, like: &str, n: u32) {
    let statement = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})
         INSERT INTO runs (run_id, namespace, workflow_id, workflow, version, digest, input,
                           status, output, created_at_ms, updated_at_ms, ended_at_ms)
         SELECT 'bulk-' || i, namespace, 'bulk-' || i, 'bulk', version, digest, input,
                'completed', output, created_at_ms - i, updated_at_ms, ended_at_ms
         FROM runs, n WHERE run_id = ?"
    );
    assert_eq!(server.sql(&statement, &[like]).await, u64::from(n));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_filters_signals_checks_versions_and_upgrades_a_stuck_run_by_clicking() {
    let server = Server::start(&["--resident-timer-ms", "100"]);
    server.deploy("effects", "effects").await;
    server.deploy("sleeper", "sleeper").await;
    assert_eq!(server.deploy("versioned", "versioned").await["version"], 1);
    server.deploy("step", "step").await;
    server.deploy("steps", "steps").await;
    // A run of 1,000 sequential activities: a 2,002-event journal.
    let big = server.start_run("steps", json!(1000)).await;
    let done = server
        .start_run("versioned", json!({ "sleep1_ms": 0, "sleep2_ms": 0 }))
        .await;
    assert_eq!(server.wait(&done, 60).await["status"], "completed");
    let sleeper = server
        .start_run("sleeper", json!({ "tag": "ui", "sleep_ms": 3_600_000 }))
        .await;
    let stuck = server
        .start_run(
            "versioned",
            json!({ "sleep1_ms": 3_600_000, "sleep2_ms": 0 }),
        )
        .await;
    for run in [&sleeper, &stuck] {
        server
            .until_journal(run, "the timer", |events| {
                !crate::support::of_kind(events, "timer-started").is_empty()
            })
            .await;
    }
    // Forced onto code that reorders its steps, the run goes stuck; v3
    // (a step added at the end) replays its journal.
    assert_eq!(
        server.deploy("versioned", "versioned-reorder").await["version"],
        2
    );
    let (s, forced) = server
        .post(
            &format!("/v1/runs/{stuck}/upgrade"),
            &json!({ "version": 2, "force": true }),
        )
        .await;
    assert_eq!(s, 200, "{forced}");
    assert_eq!(server.wait(&stuck, 30).await["status"], "stuck");
    assert_eq!(
        server.deploy("versioned", "versioned-add").await["version"],
        3
    );
    // A version checked against one open run (what the stuck run's page
    // asks): the stuck one, which v3 takes; another run id, none.
    let check = async |run_id: &str| {
        let path = format!("/v1/workflows/versioned/versions/3/check?run_id={run_id}");
        let (s, checked) = server.get(&path).await;
        assert_eq!(s, 200, "{checked}");
        checked["check"].as_array().unwrap().clone()
    };
    let one = check(&stuck).await;
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(one[0]["verdict"], "compatible", "{one:?}");
    assert!(check(&sleeper).await.is_empty());
    assert_eq!(server.wait(&big, 120).await["status"], "completed");
    assert_eq!(server.journal(&big).await.len(), 2002);
    bulk_runs(&server, &done, 10_000).await;

    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let script = crate::support::workspace().join("tests/ui/operator.mjs");
    let ids = json!({ "stuck": stuck, "sleeper": sleeper, "fixed": 3, "big": big }).to_string();
    let (url, dir) = (server.url(""), shots.display().to_string());
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .args([url.trim_end_matches('/'), &dir, &ids])
            .output()
            .expect("node runs (scripts/setup.sh --tests installs playwright-core)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let walked: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    eprintln!(
        "the operator's walk: {walked}; screenshots in {}",
        shots.display()
    );
    // 10,003 runs in the store: the list shows its first page.
    assert_eq!(walked["runs_listed"], 200, "{walked}");
    assert_eq!(walked["filtered_rows"], 1, "{walked}");
    assert_eq!(walked["big_run_events_shown"], 2002, "{walked}");

    // What the clicks did, read back over the API.
    let (_, signalled) = server.get(&format!("/v1/runs/{sleeper}")).await;
    let signals = signalled["pending_signals"].as_array().unwrap();
    assert_eq!(
        signals.len(),
        1,
        "a dismissed confirmation sent nothing: {signalled}"
    );
    assert_eq!(signals[0]["name"], "nudge");
    let (_, upgraded) = server.get(&format!("/v1/runs/{stuck}")).await;
    assert_eq!(upgraded["version"], 3, "{upgraded}");
    assert_eq!(upgraded["status"], "cancelled", "{upgraded}");
    let events = server.journal(&stuck).await;
    let upgrades = crate::support::of_kind(&events, "upgraded");
    let last = upgrades.last().expect("upgrades in the journal");
    assert_eq!(
        (&last["to_version"], &last["forced"]),
        (&json!(3), &json!(false))
    );
    for name in ["runs", "run-signalled", "versions", "stuck-run"] {
        let png = std::fs::read(shots.join(format!("{name}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{name}");
    }
}
