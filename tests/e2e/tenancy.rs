//! Namespaces and tokens over real HTTP: each token sees and acts in its
//! own namespace only (another namespace's runs are absent, 404), each
//! role does its verbs and no others, revocation is immediate, token
//! values never reach the log, and without authentication weft serves on
//! loopback only.

use crate::support::{Server, of_kind};
use serde_json::{Value, json};
use std::process::Command;

pub const ADMIN: &str = "cluster-admin-token-for-tests-0123456789";

/// A request with `token` (none: no Authorization header).
pub async fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let url = server.url(path);
    let mut req = match method {
        "GET" => server.http.get(url),
        "POST" => server.http.post(url),
        "PUT" => server.http.put(url),
        "DELETE" => server.http.delete(url),
        other => panic!("{other}"),
    };
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Issue a token of `role` in `namespace` (as the cluster admin).
pub async fn issue(server: &Server, namespace: &str, role: &str) -> String {
    let (status, body) = call(
        server,
        "POST",
        &format!("/v1/namespaces/{namespace}/tokens"),
        Some(ADMIN),
        Some(json!({ "role": role, "description": format!("{role} of {namespace}") })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_string()
}

async fn start(server: &Server, token: &str, namespace: Option<&str>) -> (u16, Value) {
    let mut body = json!({ "workflow": "entity", "input": { "expect": 1 } });
    if let Some(ns) = namespace {
        body["namespace"] = json!(ns);
    }
    call(server, "POST", "/v1/runs", Some(token), Some(body)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn without_authentication_weft_serves_on_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["serve", "--addr", "0.0.0.0:0", "--db"])
        .arg(dir.path().join("w.db"))
        .env_remove("WEFT_ADMIN_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refusing to serve on 0.0.0.0:0 without authentication"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--admin-token-file") && stderr.contains("WEFT_ADMIN_TOKEN"),
        "{stderr}"
    );
    // On loopback, dev mode: no token needed, and it says so.
    let server = Server::start(&[]);
    let (_, health) = server.get("/healthz").await;
    assert_eq!(health["auth"], false);
    assert!(server.log().contains("no authentication (dev mode)"));
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_confine_each_namespace_and_role() {
    let server = Server::start(&["--admin-token", ADMIN, "--resident-timer-ms", "100"]);
    // No token, or a wrong one: 401, as JSON.
    let (status, body) = call(&server, "GET", "/v1/runs", None, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    let (status, _) = call(&server, "GET", "/v1/runs", Some("weft_guess"), None).await;
    assert_eq!(status, 401);
    for ns in ["a", "b"] {
        let (status, body) = call(
            &server,
            "POST",
            "/v1/namespaces",
            Some(ADMIN),
            Some(json!({ "name": ns })),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    for ns in ["a", "b"] {
        for (name, guest) in [("effects", "effects"), ("entity", "entity")] {
            let path = format!("/v1/components/{name}?namespace={ns}");
            let (status, body) = call_put(&server, &path, guest, ADMIN).await;
            assert_eq!(status, 201, "{body}");
        }
    }
    let read = issue(&server, "a", "read").await;
    let operate = issue(&server, "a", "operate").await;
    let deploy = issue(&server, "a", "deploy").await;
    let admin = issue(&server, "a", "admin").await;
    let b_operate = issue(&server, "b", "operate").await;

    let (status, run) = start(&server, &b_operate, None).await;
    assert_eq!(status, 201, "{run}");
    let run_b = run["run_id"].as_str().unwrap().to_string();
    let (_, run) = start(&server, &operate, None).await;
    let run_a = run["run_id"].as_str().unwrap().to_string();
    let (_, shown) = call(
        &server,
        "GET",
        &format!("/v1/runs/{run_a}"),
        Some(&read),
        None,
    )
    .await;
    assert_eq!(
        shown["namespace"], "a",
        "a token's runs land in its namespace"
    );

    // Namespace a's tokens cannot touch b: its runs are absent (404, not
    // 403: their ids do not leak), the namespace itself refused (403).
    for token in [&read, &operate, &deploy, &admin] {
        for (method, path, body) in [
            ("GET", format!("/v1/runs/{run_b}"), None),
            ("GET", format!("/v1/runs/{run_b}/journal"), None),
            (
                "POST",
                format!("/v1/runs/{run_b}/signals/item"),
                Some(json!(1)),
            ),
            ("POST", format!("/v1/runs/{run_b}/cancel"), Some(json!({}))),
            (
                "POST",
                format!("/v1/runs/{run_b}/terminate"),
                Some(json!({})),
            ),
            ("POST", format!("/v1/runs/{run_b}/upgrade"), Some(json!({}))),
            ("POST", format!("/v1/runs/{run_b}/pause"), Some(json!({}))),
            ("GET", "/v1/namespaces/b".to_string(), None),
            (
                "POST",
                "/v1/batches".to_string(),
                Some(json!({ "action": "cancel", "namespace": "b", "dry_run": true })),
            ),
        ] {
            let (status, body) = call(&server, method, &path, Some(token), body).await;
            assert_eq!(status, 404, "{method} {path}: {body}");
        }
        for (method, path) in [
            ("GET", "/v1/schedules?namespace=b"),
            ("GET", "/v1/schedules/x?namespace=b"),
        ] {
            let (status, body) = call(&server, method, path, Some(token), None).await;
            assert_eq!(status, 403, "{method} {path}: {body}");
        }
        let (status, _) = start(&server, token, Some("b")).await;
        assert_eq!(status, 403);
        let (status, _) = call(&server, "GET", "/v1/runs?namespace=b", Some(token), None).await;
        assert_eq!(status, 403);
        let (status, _) = call(&server, "GET", "/v1/namespaces/b/tokens", Some(token), None).await;
        assert_eq!(status, 404);
        let (_, listed) = call(&server, "GET", "/v1/runs", Some(token), None).await;
        let ids: Vec<&str> = listed["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["run_id"].as_str().unwrap())
            .collect();
        assert!(
            ids.contains(&run_a.as_str()) && !ids.contains(&run_b.as_str()),
            "{ids:?}"
        );
        let (_, spaces) = call(&server, "GET", "/v1/namespaces", Some(token), None).await;
        assert_eq!(
            spaces["namespaces"].as_array().unwrap().len(),
            1,
            "{spaces}"
        );
    }

    // Each role does its verbs in its namespace, and no others.
    let (_, cancellable) = start(&server, &operate, None).await;
    let cancellable = cancellable["run_id"].as_str().unwrap().to_string();
    let verbs: Vec<(&str, String, Option<Value>, [bool; 4])> = vec![
        //                                                    read   operate deploy admin
        (
            "GET",
            format!("/v1/runs/{run_a}"),
            None,
            [true, true, true, true],
        ),
        (
            "GET",
            format!("/v1/runs/{run_a}/journal"),
            None,
            [true, true, true, true],
        ),
        ("GET", "/v1/runs".into(), None, [true, true, true, true]),
        (
            "GET",
            "/v1/components".into(),
            None,
            [true, true, true, true],
        ),
        (
            "GET",
            "/v1/namespaces/a".into(),
            None,
            [true, true, true, true],
        ),
        (
            "POST",
            "/v1/runs".into(),
            Some(json!({ "workflow": "entity", "input": { "expect": 1 } })),
            [false, true, false, true],
        ),
        (
            "POST",
            format!("/v1/runs/{run_a}/signals/other"),
            Some(json!(0)),
            [false, true, false, true],
        ),
        (
            "POST",
            "/v1/workflow-ids/w1/signal-with-start".into(),
            Some(json!({ "workflow": "entity", "input": { "expect": 9 }, "signal": "item" })),
            [false, true, false, true],
        ),
        (
            "POST",
            format!("/v1/runs/{run_a}/reset"),
            Some(json!({ "event": 999 })),
            [false, true, false, true],
        ),
        (
            "POST",
            "/v1/workflow-ids/w1/updates/add".into(),
            Some(json!({ "input": 1, "update_id": "role", "wait_ms": 0 })),
            [false, true, false, true],
        ),
        (
            "GET",
            "/v1/workflow-ids/w1/updates/role".into(),
            None,
            [true, true, true, true],
        ),
        (
            "POST",
            format!("/v1/runs/{cancellable}/cancel"),
            Some(json!({})),
            [false, true, false, true],
        ),
        (
            "POST",
            "/v1/batches".into(),
            Some(json!({ "action": "cancel", "workflow": "entity", "dry_run": true })),
            [false, true, false, true],
        ),
        (
            "POST",
            format!("/v1/runs/{run_a}/pause"),
            Some(json!({})),
            [false, true, false, true],
        ),
        (
            "POST",
            format!("/v1/runs/{run_a}/unpause"),
            Some(json!({})),
            [false, true, false, true],
        ),
        (
            "POST",
            "/v1/schedules".into(),
            Some(json!({ "id": "nightly", "workflow": "entity", "every": "1d" })),
            [false, true, false, true],
        ),
        (
            "GET",
            "/v1/schedules".into(),
            None,
            [true, true, true, true],
        ),
        (
            "GET",
            "/v1/schedules/nightly".into(),
            None,
            [true, true, true, true],
        ),
        (
            "POST",
            "/v1/schedules/nightly/pause".into(),
            Some(json!({})),
            [false, true, false, true],
        ),
        (
            "POST",
            format!("/v1/runs/{run_a}/upgrade"),
            Some(json!({})),
            [false, false, true, true],
        ),
        (
            "GET",
            "/v1/namespaces/a/tokens".into(),
            None,
            [false, false, false, true],
        ),
        (
            "POST",
            "/v1/namespaces/a/tokens".into(),
            Some(json!({ "role": "read" })),
            [false, false, false, true],
        ),
        // The cluster admin's alone.
        (
            "POST",
            "/v1/namespaces".into(),
            Some(json!({ "name": "c" })),
            [false, false, false, false],
        ),
        (
            "DELETE",
            "/v1/namespaces/b".into(),
            None,
            [false, false, false, false],
        ),
        ("GET", "/metrics".into(), None, [false, false, false, false]),
        // Components and upgrades: deploy (and admin).
        (
            "PUT",
            "/v1/components/entity".into(),
            None,
            [false, false, true, true],
        ),
        (
            "GET",
            "/v1/workflows/entity".into(),
            None,
            [true, true, true, true],
        ),
        (
            "POST",
            "/v1/workflows/entity/upgrade".into(),
            Some(json!({})),
            [false, false, true, true],
        ),
        (
            "DELETE",
            "/v1/workflows/entity/versions/1".into(),
            None,
            [false, false, true, true],
        ),
    ];
    for (method, path, body, allowed) in &verbs {
        for (token, role, ok) in [
            (&read, "read", allowed[0]),
            (&operate, "operate", allowed[1]),
            (&deploy, "deploy", allowed[2]),
            (&admin, "admin", allowed[3]),
        ] {
            let (status, answer) = if *method == "PUT" {
                call_put(&server, path, "entity", token).await
            } else {
                call(&server, method, path, Some(token), body.clone()).await
            };
            if ok {
                assert!(
                    status != 401 && status != 403,
                    "{role}: {method} {path}: {status} {answer}"
                );
            } else {
                assert_eq!(status, 403, "{role}: {method} {path}: {answer}");
                assert_eq!(answer["error"]["code"], "forbidden", "{answer}");
            }
        }
    }
    // Components are per namespace: a's deployer cannot deploy into b, nor
    // see b's components.
    let into_b = "/v1/components/entity?namespace=b";
    let (status, _) = call_put(&server, into_b, "entity", &deploy).await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &server,
        "GET",
        "/v1/components?namespace=b",
        Some(&deploy),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (_, own) = call(&server, "GET", "/v1/components", Some(&deploy), None).await;
    let own = own["components"].as_array().unwrap();
    assert!(
        !own.is_empty() && own.iter().all(|c| c["namespace"] == "a"),
        "{own:?}"
    );

    // Revoked: refused from the next request on.
    let (_, listed) = call(
        &server,
        "GET",
        "/v1/namespaces/a/tokens",
        Some(&admin),
        None,
    )
    .await;
    let read_id = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "read")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(listed["tokens"][0]["last_used_at_ms"].is_i64(), "{listed}");
    let (status, body) = call(
        &server,
        "DELETE",
        &format!("/v1/namespaces/a/tokens/{read_id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = call(&server, "GET", "/v1/runs", Some(&read), None).await;
    assert_eq!(status, 401);

    // The audit trail: who (a token id) did what, for the namespace admin.
    let (status, _) = call(
        &server,
        "GET",
        "/v1/namespaces/a/audit",
        Some(&operate),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, trail) = call(&server, "GET", "/v1/namespaces/a/audit", Some(&admin), None).await;
    assert_eq!(status, 200, "{trail}");
    let entries = trail["entries"].as_array().unwrap();
    let actions: std::collections::HashSet<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "create-namespace",
        "deploy",
        "issue-token",
        "cancel",
        "upgrade",
        "revoke-token",
    ] {
        assert!(actions.contains(action), "{action} missing: {actions:?}");
    }
    assert!(
        entries.iter().all(|e| {
            let actor = e["actor"].as_str().unwrap();
            actor == "cluster-admin" || actor.starts_with("tok_")
        }),
        "{trail}"
    );
    let cancelled = entries.iter().find(|e| e["action"] == "cancel").unwrap();
    assert_eq!(cancelled["target"], cancellable.as_str());
    assert!(entries.iter().all(|e| e["namespace"] == "a"));

    // A namespace with open runs stays.
    let (status, body) = call(&server, "DELETE", "/v1/namespaces/b", Some(ADMIN), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    let (_, journal) = call(
        &server,
        "GET",
        &format!("/v1/runs/{run_a}/journal"),
        Some(&admin),
        None,
    )
    .await;
    assert!(of_kind(journal["events"].as_array().unwrap(), "started").len() == 1);

    // No token value reached the log.
    let log = server.log();
    for token in [ADMIN, &read, &operate, &deploy, &admin, &b_operate] {
        assert!(!log.contains(token), "a token is in the log");
    }
}

/// PUT a guest's bytes at `path` (`/v1/components/NAME[?…]`).
pub async fn call_put(server: &Server, path: &str, guest: &str, token: &str) -> (u16, Value) {
    let resp = server
        .http
        .put(server.url(path))
        .bearer_auth(token)
        .body(crate::support::wasm(guest))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `weft` against `server` with `token` in WEFT_TOKEN: (success, stdout, stderr).
fn weft(server: &Server, token: Option<&str>, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    cmd.args(args)
        .env("WEFT_SERVER", &server.addr)
        .env_remove("WEFT_TOKEN");
    if let Some(token) = token {
        cmd.env("WEFT_TOKEN", token);
    }
    crate::support::run_cli(&mut cmd)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_manages_namespaces_and_tokens_with_weft_token() {
    let server = Server::start(&["--admin-token", ADMIN]);
    let (ok, _, err) = weft(&server, None, &["namespace", "list"]);
    assert!(!ok && err.contains("unauthorized"), "{err}");
    let (ok, out, err) = weft(&server, Some(ADMIN), &["namespace", "create", "team-a"]);
    assert!(ok, "{err}");
    assert!(out.contains("namespace team-a created"), "{out}");
    let (ok, token, err) = weft(
        &server,
        Some(ADMIN),
        &[
            "token",
            "create",
            "--namespace",
            "team-a",
            "--role",
            "read",
            "--description",
            "ci",
        ],
    );
    assert!(ok && err.contains("shown once"), "{err}");
    let token = token.trim().to_string();
    assert!(token.starts_with("weft_"), "{token}");
    // The new token lists its namespace's runs and sees only its namespace.
    let (ok, out, err) = weft(&server, Some(&token), &["namespace", "list"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "team-a");
    let (ok, out, _) = weft(
        &server,
        Some(ADMIN),
        &["token", "list", "--namespace", "team-a"],
    );
    assert!(ok && out.contains("read") && out.contains("ci"), "{out}");
    assert!(!out.contains(&token), "values are never listed");
    let id = out
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let (ok, _, err) = weft(
        &server,
        Some(ADMIN),
        &["token", "revoke", "--namespace", "team-a", &id],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = weft(&server, Some(&token), &["runs"]);
    assert!(!ok && err.contains("unknown or revoked token"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cli_profile_names_the_server_the_token_and_the_namespace() {
    let server = Server::start(&["--admin-token", ADMIN]);
    let (ok, _, err) = weft(&server, Some(ADMIN), &["namespace", "create", "team-p"]);
    assert!(ok, "{err}");
    let token = issue(&server, "team-p", "operate").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    let profiles = json!({
        "default": "p",
        "profiles": { "p": { "server": server.addr, "token": token, "namespace": "team-p" } }
    });
    std::fs::write(&config, profiles.to_string()).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(args)
            .env("WEFT_CONFIG", &config)
            .env_remove("WEFT_SERVER")
            .env_remove("WEFT_TOKEN")
            .env_remove("WEFT_NAMESPACE")
            .env_remove("WEFT_PROFILE")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    // The default profile, and the same one named: team-p's token and
    // namespace, no environment.
    let (ok, out, err) = run(&["namespace", "list"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "team-p");
    let (ok, _, err) = run(&["runs", "--profile", "p"]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&["runs", "--profile", "nope"]);
    assert!(
        !ok && err.contains("no profile `nope`") && err.contains("p"),
        "{err}"
    );
}
