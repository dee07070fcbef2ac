//! `weft new`: the crate it makes passes its own `cargo test` (the
//! workflow in-process on virtual time), and the workflow it holds deploys
//! and completes on a real server. A test binary of its own: the nested
//! `cargo test` compiles for minutes on a cold cache and must not starve
//! the end-to-end suite's servers.

#[path = "../e2e/support.rs"]
#[allow(dead_code)]
mod support;

/// The end-to-end support also builds the cargo-component guests of that
/// suite after its own; this test needs none of them.
mod component_builds {
    pub fn build_all() {}
}

use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{Server, run_cli, target_dir};

/// `weft new KIND NAME --dir DIR`: (success, stdout, stderr).
fn weft_new(kind: &str, name: &str, dir: &Path) -> (bool, String, String) {
    run_cli(
        Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["new", kind, name, "--dir"])
            .arg(dir),
    )
}

/// Where the new crates build: kept between runs of this suite, so only
/// the crates of this checkout rebuild.
fn scaffold_target() -> PathBuf {
    target_dir().join("scaffold")
}

/// `cargo test` in a new crate, as a newcomer runs it; its stdout.
fn cargo_test_in(dir: &Path) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let (ok, out, err) = run_cli(
        Command::new(cargo)
            .arg("test")
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", scaffold_target()),
    );
    assert!(ok, "cargo test in the new crate failed:\n{out}\n{err}");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_workflow_crate_passes_its_test_and_runs_on_a_server() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hello2");
    let (ok, out, err) = weft_new("workflow", "hello2", &dir);
    assert!(ok, "{out}{err}");
    assert!(out.contains("cargo test"), "{out}");
    for file in [
        "Cargo.toml",
        "Cargo.lock",
        "src/lib.rs",
        "tests/workflow.rs",
        "README.md",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    // Made again over a crate that is there: refused, nothing touched.
    let (ok, _, err) = weft_new("workflow", "hello2", &dir);
    assert!(!ok && err.contains("not empty"), "{err}");

    // Its own test, as a newcomer runs it.
    let out = cargo_test_in(&dir);
    assert!(out.contains("greets_then_waits_a_day ... ok"), "{out}");

    // The component that test built deploys (as its README says) and runs
    // to the end on a server, with the greeter activity deployed.
    let wasm = scaffold_target().join("guests/wasm32-wasip2/release/hello2.wasm");
    assert!(wasm.is_file(), "{} missing", wasm.display());
    let server = Server::start(&[]);
    server.deploy("greeter", "greeter").await;
    let (ok, out, err) = server.cli(&["deploy", "--name", "hello2", wasm.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let run = server
        .start_run("hello2", json!({ "name": "Grace", "wait_ms": 50 }))
        .await;
    let done = server.wait(&run, 60).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["output"]["greeting"], "Hello, Grace!", "{done}");
    assert!(
        done["output"]["waited_ms"].as_u64().unwrap() >= 50,
        "{done}"
    );
}

#[test]
fn a_new_activity_crate_is_made_with_its_unit_test() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cloud2");
    let (ok, out, err) = weft_new("activity", "cloud2", &dir);
    assert!(ok, "{out}{err}");
    let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    assert!(lib.contains("weft_sdk::activities!"), "{lib}");
    let out = cargo_test_in(&dir);
    assert!(
        out.contains("greets_and_refuses_an_empty_name ... ok"),
        "{out}"
    );
    let (ok, _, err) =
        run_cli(Command::new(env!("CARGO_BIN_EXE_weft")).args(["new", "activity", "Bad_Name"]));
    assert!(!ok && err.contains("not a crate name"), "{err}");
}
