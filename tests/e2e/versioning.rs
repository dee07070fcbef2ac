//! Hot versioning: pinned runs, upgrade by replay, patch markers, the
//! deploy-time compatibility report, stuck runs recovering, offline replay.

use crate::support::{Server, log_lines, of_kind, wasm};
use serde_json::{Value, json};

/// A server with `effects` and v1 of `versioned` deployed.
async fn server() -> Server {
    let server = Server::start(&["--resident-timer-ms", "100"]);
    server.deploy("effects", "effects").await;
    let v1 = server.deploy("versioned", "versioned").await;
    assert_eq!(v1["version"], 1);
    server
}

/// Deploy a variant of `versioned` as its next version.
async fn next_version(server: &Server, guest: &str) -> u64 {
    let v = server.deploy("versioned", guest).await;
    v["version"].as_u64().unwrap()
}

async fn start(server: &Server, sleep1_ms: u64, sleep2_ms: u64) -> String {
    server
        .start_run(
            "versioned",
            json!({ "sleep1_ms": sleep1_ms, "sleep2_ms": sleep2_ms }),
        )
        .await
}

/// Wait until the run has started `n` timers (and so sleeps in the n-th).
async fn asleep_in(server: &Server, run_id: &str, n: usize) {
    server
        .until_journal(run_id, "the timer", |e| {
            of_kind(e, "timer-started").len() >= n
        })
        .await;
}

async fn finished(server: &Server, run_id: &str) -> Value {
    let run = server.wait(run_id, 60).await;
    assert_eq!(run["status"], "completed", "{run}");
    run["output"].clone()
}

async fn upgrade(server: &Server, run_id: &str, body: Value) -> (u16, Value) {
    server
        .post(&format!("/v1/runs/{run_id}/upgrade"), &body)
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_stay_pinned_across_restarts_while_new_runs_use_the_newest_version() {
    let mut server = server().await;
    // Sleeps long enough that deploying v2 (a compile of seconds on a busy
    // machine) happens while it sleeps.
    let old = start(&server, 6000, 0).await;
    asleep_in(&server, &old, 1).await;
    assert_eq!(next_version(&server, "versioned-add").await, 2);
    let new = start(&server, 0, 0).await;

    let (_, versions) = server.get("/v1/workflows/versioned").await;
    let open: Vec<&Value> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["open_runs"])
        .collect();
    assert!(open[0] == 1, "{versions}");
    let (s, b) = server.delete("/v1/workflows/versioned/versions/1").await;
    assert_eq!(s, 409, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 open run"),
        "{b}"
    );

    server.restart();
    assert_eq!(
        finished(&server, &old).await,
        json!({ "steps": ["A", "B", "D"], "version": 1 })
    );
    assert_eq!(
        finished(&server, &new).await,
        json!({ "steps": ["A", "B", "D", "C"], "version": 2 })
    );
    // Drained: v1 can go.
    let (s, b) = server.delete("/v1/workflows/versioned/versions/1").await;
    assert_eq!(s, 200, "{b}");
    let (_, versions) = server.get("/v1/workflows/versioned").await;
    assert_eq!(versions["versions"].as_array().unwrap().len(), 1);
    assert_eq!(versions["versions"][0]["version"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_adds_a_step_after_the_current_position_and_refuses_a_reorder() {
    let server = server().await;
    // The new versions first (compiling them takes a while on a busy
    // machine), then runs pinned to v1 that sleep while they are upgraded.
    let reorder = next_version(&server, "versioned-reorder").await;
    let add = next_version(&server, "versioned-add").await;
    let input = json!({ "sleep1_ms": 2500, "sleep2_ms": 0 });
    let mut pinned = Vec::new();
    for _ in 0..2 {
        let body = json!({ "workflow": "versioned", "version": 1, "input": input });
        let (status, run) = server.post("/v1/runs", &body).await;
        assert_eq!(status, 201, "{run}");
        pinned.push(run["run_id"].as_str().unwrap().to_string());
    }
    let (moving, staying) = (pinned[0].clone(), pinned[1].clone());
    asleep_in(&server, &moving, 1).await;
    asleep_in(&server, &staying, 1).await;

    let before = server.journal(&staying).await;
    let (s, refused) = upgrade(&server, &staying, json!({ "version": reorder })).await;
    assert_eq!(s, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "divergence");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.ends_with(
            "event 1: journal has activity `effects/echo` with input {\"i\":\"A\"}, \
             code asked for activity `effects/echo` with input {\"i\":\"B\"}"
        ),
        "{message}"
    );
    let details = &refused["error"]["details"];
    assert_eq!(details["verdict"], "diverged");
    assert_eq!(details["divergence"]["seq"], 1);
    // Untouched: still v1, same journal.
    assert_eq!(server.journal(&staying).await, before);

    let (s, report) = upgrade(&server, &moving, json!({ "version": add })).await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["upgraded"], true);
    assert_eq!(
        (report["from_version"].clone(), report["to_version"].clone()),
        (json!(1), json!(add))
    );

    assert_eq!(
        finished(&server, &moving).await,
        json!({ "steps": ["A", "B", "D", "C"], "version": add })
    );
    assert_eq!(
        finished(&server, &staying).await,
        json!({ "steps": ["A", "B", "D"], "version": 1 })
    );
    let upgraded = of_kind(&server.journal(&moving).await, "upgraded")[0].clone();
    assert_eq!(upgraded["from_version"], 1);
    assert_eq!(upgraded["to_version"], add);
}

#[tokio::test(flavor = "multi_thread")]
async fn patched_takes_the_old_branch_on_old_journals_and_the_new_branch_on_new_runs() {
    let server = server().await;
    // Recorded B before the patch existed: must keep the old behaviour.
    let past = start(&server, 0, 6000).await;
    // Still before the patched point: reaches it on new code.
    let before = start(&server, 6000, 0).await;
    asleep_in(&server, &past, 2).await;
    asleep_in(&server, &before, 1).await;
    let patched = next_version(&server, "versioned-patched").await;
    let (s, r) = server
        .post("/v1/workflows/versioned/upgrade", &json!({ "to": patched }))
        .await;
    assert_eq!(s, 200, "{r}");
    assert!(
        r["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["upgraded"] == true),
        "{r}"
    );
    let new = start(&server, 0, 0).await;

    let steps = |out: Value| out["steps"].clone();
    assert_eq!(
        steps(finished(&server, &past).await),
        json!(["A", "B", "D"])
    );
    assert_eq!(
        steps(finished(&server, &before).await),
        json!(["A", "X", "B", "D"])
    );
    assert_eq!(
        steps(finished(&server, &new).await),
        json!(["A", "X", "B", "D"])
    );
    assert!(of_kind(&server.journal(&past).await, "patch-marker").is_empty());
    assert_eq!(
        of_kind(&server.journal(&new).await, "patch-marker").len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deploying_with_check_reports_which_open_runs_are_compatible() {
    let server = server().await;
    let early = start(&server, 60_000, 0).await; // before B
    let late = start(&server, 0, 60_000).await; // after B
    asleep_in(&server, &early, 1).await;
    asleep_in(&server, &late, 2).await;

    // A dry run deploys nothing.
    let (s, dry) = server
        .put(
            "/v1/components/versioned?dry_run=true",
            wasm("versioned-rename-b"),
        )
        .await;
    assert_eq!(s, 200, "{dry}");
    let verdict = |report: &Value, run: &str| {
        report["check"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["run_id"] == run)
            .unwrap()
            .clone()
    };
    assert_eq!(verdict(&dry, &early)["verdict"], "compatible");
    assert_eq!(verdict(&dry, &late)["verdict"], "diverged");
    let (_, versions) = server.get("/v1/workflows/versioned").await;
    assert_eq!(versions["versions"].as_array().unwrap().len(), 1);

    let (s, deployed) = server
        .put(
            "/v1/components/versioned?check=true&upgrade=compatible",
            wasm("versioned-rename-b"),
        )
        .await;
    assert_eq!(s, 201, "{deployed}");
    assert_eq!(deployed["version"], 2);
    let early_report = verdict(&deployed, &early);
    assert_eq!(early_report["upgraded"], true, "{deployed}");
    let late_report = verdict(&deployed, &late);
    assert_eq!(late_report["upgraded"], false);
    assert!(
        late_report["divergence"]["code"]
            .as_str()
            .unwrap()
            .contains("{\"i\":\"B2\"}")
    );
    let (_, early_run) = server.get(&format!("/v1/runs/{early}")).await;
    let (_, late_run) = server.get(&format!("/v1/runs/{late}")).await;
    assert_eq!(
        (early_run["version"].clone(), late_run["version"].clone()),
        (json!(2), json!(1))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stuck_run_continues_after_upgrading_to_a_fixed_version() {
    let server = server().await;
    let run = start(&server, 6000, 0).await;
    asleep_in(&server, &run, 1).await;
    let broken = next_version(&server, "versioned-reorder").await;
    // An operator forces the switch without the check: the run goes stuck.
    let (s, forced) = upgrade(&server, &run, json!({ "version": broken, "force": true })).await;
    assert_eq!(s, 200, "{forced}");
    // The answer says it was forced and what the check found: never
    // "compatible" for code that diverges.
    assert_eq!(forced["forced"], true, "{forced}");
    assert_eq!(forced["upgraded"], true, "{forced}");
    assert_eq!(forced["verdict"], "diverged", "{forced}");
    assert_eq!(forced["divergence"]["seq"], 1, "{forced}");
    let stuck = server.wait(&run, 30).await;
    assert_eq!(stuck["status"], "stuck", "{stuck}");
    assert_eq!(stuck["error"]["kind"], "nondeterminism");

    let fixed = next_version(&server, "versioned-add").await;
    let (s, report) = upgrade(&server, &run, json!({ "version": fixed })).await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(
        finished(&server, &run).await,
        json!({ "steps": ["A", "B", "D", "C"], "version": fixed })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn weft_replay_checks_a_journal_exported_over_http_offline() {
    let server = server().await;
    let run = start(&server, 0, 0).await;
    finished(&server, &run).await;
    let journal = server
        .http
        .get(server.url(&format!("/v1/runs/{run}/journal")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let file = server.dir.path().join("journal.json");
    std::fs::write(&file, journal).unwrap();
    let guest = |name: &str| {
        crate::support::guests()
            .join(format!("{}.wasm", name.replace('-', "_")))
            .to_string_lossy()
            .to_string()
    };
    let replay = |wasm: String| {
        std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
            .args([
                "replay",
                "--journal",
                file.to_str().unwrap(),
                "--wasm",
                &wasm,
            ])
            .output()
            .unwrap()
    };
    let ok = replay(guest("versioned"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("compatible: "));

    // The recorded end is part of the journal: code that goes on past it,
    // or ends another way, diverges.
    let end =
        "journal has the run's end (completed with {\"steps\":[\"A\",\"B\",\"D\"],\"version\":1})";
    let extra = replay(guest("versioned-add"));
    assert_eq!(extra.status.code(), Some(1));
    let err = String::from_utf8_lossy(&extra.stderr);
    assert!(
        err.contains(&format!(
            "{end}, code asked for activity `effects/echo` with input {{\"i\":\"C\"}}"
        )),
        "{err}"
    );
    let continued = replay(guest("versioned-continue"));
    assert_eq!(continued.status.code(), Some(1));
    let err = String::from_utf8_lossy(&continued.stderr);
    assert!(
        err.contains(&format!(
            "{end}, code asked for the run's end (continue-as-new with input {{"
        )),
        "{err}"
    );

    let bad = replay(guest("versioned-reorder"));
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains(
            "incompatible: event 1: journal has activity `effects/echo` with input {\"i\":\"A\"}"
        ),
        "{err}"
    );
}

/// A run parked on a signal stays in memory (a long resident wait); an
/// upgrade must take it at once, not chase it while it restarts.
#[tokio::test(flavor = "multi_thread")]
async fn upgrading_a_resident_run_parked_on_a_signal_is_prompt_and_replays_once() {
    let server = Server::start(&["--resident-timer-ms", "60000", "--idle-linger-ms", "60000"]);
    server.deploy("effects", "effects").await;
    server.deploy("versioned", "versioned").await;
    let run = server
        .start_run(
            "versioned",
            json!({ "sleep1_ms": 0, "sleep2_ms": 0, "signal": true }),
        )
        .await;
    server
        .until_journal(&run, "step A", |e| {
            of_kind(e, "activity-completed").len() == 1
        })
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, shown) = server.get(&format!("/v1/runs/{run}")).await;
    assert_eq!(shown["evicted"], false, "still resident: {shown}");
    let reorder = next_version(&server, "versioned-reorder").await;
    let add = next_version(&server, "versioned-add").await;
    let replays = || {
        log_lines(
            &server.log(),
            &format!("resuming: replaying the journal run=\"{run}\""),
        )
    };
    let timed = |body: Value| {
        let server = &server;
        let run = &run;
        async move {
            let began = std::time::Instant::now();
            let answer = upgrade(server, run, body).await;
            (answer, began.elapsed())
        }
    };

    // Refused (the reorder diverges), promptly.
    let ((s, refused), took) = timed(json!({ "version": reorder })).await;
    assert_eq!(s, 409, "{refused}");
    assert_eq!(refused["error"]["details"]["verdict"], "diverged");
    assert!(took.as_millis() < 3000, "refused in {took:?}");
    eprintln!("refused upgrade answered in {took:?}");
    // The refusal gave the run back: it is resident again, replayed once.
    server
        .until_journal(&run, "the run back", |_| replays() == 1)
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    // The next upgrade takes it just as fast, and only it replays (check
    // mode logs no resumption): one resumption per upgrade, not hundreds.
    let ((s, report), took) = timed(json!({ "version": add })).await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["verdict"], "compatible", "{report}");
    assert_eq!(report["forced"], false, "{report}");
    assert_eq!(report["upgraded"], true, "{report}");
    assert!(took.as_millis() < 3000, "upgraded in {took:?}");
    eprintln!("upgrade answered in {took:?}");

    let (s, b) = server
        .post(&format!("/v1/runs/{run}/signals/go"), &json!(null))
        .await;
    assert!(s == 200 || s == 202, "{s} {b}");
    assert_eq!(
        finished(&server, &run).await,
        json!({ "steps": ["A", "B", "D", "C"], "version": add })
    );
    assert_eq!(replays(), 2, "{}", server.log());
}

/// `weft replay` is the engine alone: no database file (it works where no
/// file can be created), no writer or timer task left behind.
#[tokio::test(flavor = "multi_thread")]
async fn weft_replay_needs_no_database_and_leaves_no_task_behind() {
    let server = server().await;
    let run = start(&server, 0, 0).await;
    finished(&server, &run).await;
    let (_, doc) = server.get(&format!("/v1/runs/{run}/journal")).await;
    let file = server.dir.path().join("journal.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let wasm_path = crate::support::guests().join("versioned.wasm");

    // No temporary directory can be made (TMPDIR is inside a file) and the
    // working directory stays empty.
    let cwd = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["replay", "--journal", file.to_str().unwrap(), "--wasm"])
        .arg(&wasm_path)
        .env("TMPDIR", file.join("not-a-dir"))
        .current_dir(cwd.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0);

    // In process, on a runtime of its own: once the check is answered,
    // no task is alive.
    let bytes = std::fs::read(&wasm_path).unwrap();
    let (verdict, alive) = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let verdict = rt.block_on(async {
            let offline = weft::offline::Offline::new().unwrap();
            let export = weft::journal::Export::parse(&doc.to_string()).unwrap();
            offline.replay(export, bytes).await.unwrap().0
        });
        (verdict, rt.metrics().num_alive_tasks())
    })
    .join()
    .unwrap();
    assert!(verdict.is_compatible(), "{verdict:?}");
    assert_eq!(alive, 0);
}

/// A team's corpus of exported journals, checked in one command: 0 when
/// every journal replays, 1 naming each one that does not and why.
#[tokio::test(flavor = "multi_thread")]
async fn weft_replay_checks_a_directory_of_journals() {
    let server = server().await;
    let corpus = server.dir.path().join("corpus");
    std::fs::create_dir(&corpus).unwrap();
    for (name, sleep) in [("first.json", 0), ("second.json", 10)] {
        let run = start(&server, sleep, 0).await;
        finished(&server, &run).await;
        let (_, doc) = server.get(&format!("/v1/runs/{run}/journal")).await;
        std::fs::write(corpus.join(name), doc.to_string()).unwrap();
    }
    std::fs::write(corpus.join("notes.txt"), "not a journal").unwrap();
    let replay = |wasm: &str| {
        let wasm = crate::support::guests().join(format!("{wasm}.wasm"));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
            .arg("replay")
            .arg(&corpus)
            .arg("--wasm")
            .arg(&wasm)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, out, err) = replay("versioned");
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("first.json: compatible: "), "{out}");
    assert!(out.contains("2 of 2 journals replay on "), "{out}");

    let (code, out, err) = replay("versioned_reorder");
    assert_eq!(code, Some(1), "{out}{err}");
    for name in ["first.json", "second.json"] {
        assert!(
            err.lines()
                .any(|l| l.contains(name) && l.contains("incompatible: event ")),
            "{err}"
        );
    }
    assert!(out.contains("0 of 2 journals replay on "), "{out}");

    // A file that is no journal is named, and fails the check.
    std::fs::write(corpus.join("broken.json"), "{").unwrap();
    let (code, out, err) = replay("versioned");
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("broken.json: unreadable: "), "{err}");
    assert!(out.contains("2 of 3 journals replay on "), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_upgrades_the_runs_a_query_matches_and_reports_those_that_diverge() {
    let server = server().await;
    let add = next_version(&server, "versioned-add").await;
    let reorder = next_version(&server, "versioned-reorder").await;
    let input = json!({ "sleep1_ms": 3000, "sleep2_ms": 0 });
    let mut pinned = Vec::new();
    for _ in 0..3 {
        let body = json!({ "workflow": "versioned", "version": 1, "input": input });
        let (status, run) = server.post("/v1/runs", &body).await;
        assert_eq!(status, 201, "{run}");
        pinned.push(run["run_id"].as_str().unwrap().to_string());
    }
    for run in &pinned {
        asleep_in(&server, run, 1).await;
    }
    let (status, refused) = server
        .post(
            "/v1/batches",
            &json!({ "action": "upgrade", "query": "workflow = 'versioned'", "version": reorder }),
        )
        .await;
    assert_eq!(status, 200, "{refused}");
    assert_eq!(refused["failed"].as_array().unwrap().len(), 3, "{refused}");
    let (status, done) = server
        .post(
            "/v1/batches",
            &json!({ "action": "upgrade", "query": "workflow = 'versioned'", "version": add }),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["applied"].as_array().unwrap().len(), 3, "{done}");
    for run in &pinned {
        let (_, now) = server.get(&format!("/v1/runs/{run}")).await;
        assert_eq!(now["version"], json!(add), "{now}");
    }
}
