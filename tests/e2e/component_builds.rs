//! Guests built by `cargo component build` (wasm32-wasip1 wrapped with the
//! preview-1 adapter, which imports the filesystem and the environment
//! whatever the code uses) next to the same source built for wasm32-wasip2:
//! the README's example pasted as written, and a workflow that reaches for
//! files, the environment and its arguments.

use crate::support::{Server, log_lines, of_kind, target_dir, wasm, workspace};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `cargo component` (pinned by scripts/setup.sh): a missing one fails the
/// test with what to do, never skips it.
fn cargo_component(dir: &Path, args: &[&str], target: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let version = Command::new(&cargo)
        .args(["component", "--version"])
        .output();
    assert!(
        version.is_ok_and(|v| v.status.success()),
        "`cargo component` is not installed: run scripts/setup.sh (it installs \
         cargo-component 0.21.1)"
    );
    let status = Command::new(&cargo)
        .current_dir(dir)
        .args(["component", "build", "--release", "--target-dir"])
        .arg(target)
        .args(args)
        .status()
        .expect("cargo component runs");
    assert!(status.success(), "cargo component build {args:?} failed");
}

/// The fenced blocks of the README's "Writing a workflow" section, as
/// (language, text).
fn readme_blocks() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let start = readme
        .find("## Writing a workflow")
        .expect("the README has a `Writing a workflow` section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut blocks = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if let Some(lang) = line.strip_prefix("```").filter(|l| !l.is_empty()) {
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            blocks.push((lang.to_string(), body.join("\n") + "\n"));
        }
    }
    blocks
}

/// Write `text` unless the file already holds it (keeps cargo's
/// fingerprints, so a warm run rebuilds nothing).
fn write(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// The README's two crates, pasted into a scratch workspace as a newcomer
/// would (only the SDK path is made absolute), built both ways; answers
/// the workspace's target directory.
fn readme_example() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = target_dir().join("readme-example");
        let blocks = readme_blocks();
        let of = |lang: &str| -> Vec<&String> {
            blocks
                .iter()
                .filter(|(l, _)| l == lang)
                .map(|(_, t)| t)
                .collect()
        };
        let (toml, rust) = (of("toml"), of("rust"));
        assert_eq!((toml.len(), rust.len()), (1, 2), "{blocks:?}");
        let sdk = format!("path = {:?}", workspace().join("guest-sdk"));
        for (name, source) in [("provision", rust[0]), ("cloud", rust[1])] {
            let manifest = format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n{}",
                toml[0].replace("path = \"../guest-sdk\"", &sdk)
            );
            write(&dir.join(name).join("Cargo.toml"), &manifest);
            write(&dir.join(name).join("src/lib.rs"), source);
        }
        write(
            &dir.join("Cargo.toml"),
            "[workspace]\nresolver = \"3\"\nmembers = [\"provision\", \"cloud\"]\n",
        );
        // The project's lock file pins the same dependency versions.
        if !dir.join("Cargo.lock").exists() {
            std::fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
        }
        let target = dir.join("target");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(&dir)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--target-dir",
            ])
            .arg(&target)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo build of the README example failed");
        cargo_component(&dir, &[], &target);
        target
    })
}

/// `sandbox-probe` built by `cargo component build`: its path.
fn probe_by_cargo_component() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        let target = target_dir().join("component-guests");
        cargo_component(&workspace(), &["-p", "sandbox-probe"], &target);
        target.join("wasm32-wasip1/release/sandbox_probe.wasm")
    })
}

/// Every build this module needs (the support's guest build calls it, so
/// no compiler runs while servers do).
pub fn build_all() {
    readme_example();
    probe_by_cargo_component();
}

const BUILDS: [(&str, &str); 2] = [
    ("cargo build --target wasm32-wasip2", "wasm32-wasip2"),
    ("cargo component build", "wasm32-wasip1"),
];

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_example_built_either_way_completes_and_survives_a_kill9() {
    crate::support::guests();
    let target = readme_example();
    let mut server = Server::start(&["--resident-timer-ms", "100"]);
    let mut runs = Vec::new();
    for (build, triple) in BUILDS {
        for name in ["cloud", "provision"] {
            let bytes = std::fs::read(
                target
                    .join(triple)
                    .join("release")
                    .join(format!("{name}.wasm")),
            )
            .unwrap();
            let (s, b) = server.put(&format!("/v1/components/{name}"), bytes).await;
            assert_eq!(s, 201, "{build}: deploying {name}: {b}");
        }
        let run = server.start_run("provision", json!("acme")).await;
        server
            .until_journal(&run, "the sleep", |e| {
                !of_kind(e, "timer-started").is_empty()
            })
            .await;
        let before = server.journal(&run).await;
        server.restart();
        let done = server.wait(&run, 60).await;
        assert_eq!(done["status"], "completed", "{build}: {done}");
        assert_eq!(done["output"], "acme@eu-cell-1", "{build}: {done}");
        let after = server.journal(&run).await;
        assert_eq!(
            after[..before.len()],
            before[..],
            "{build}: the replay after kill -9 kept the journal"
        );
        let resumed = format!("resuming: replaying the journal run=\"{run}\"");
        assert_eq!(log_lines(&server.log(), &resumed), 1, "{build}");
        runs.push(after);
    }
    // The same calls either way: the adapter adds nothing to the journal.
    let kinds =
        |events: &[Value]| -> Vec<Value> { events.iter().map(|e| e["kind"].clone()).collect() };
    assert_eq!(kinds(&runs[0]), kinds(&runs[1]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_gets_no_files_environment_or_arguments_either_way() {
    let server = Server::start(&["--resident-timer-ms", "100"]);
    let builds = [
        wasm("sandbox-probe"),
        std::fs::read(probe_by_cargo_component()).unwrap(),
    ];
    for ((build, _), bytes) in BUILDS.into_iter().zip(builds) {
        let (s, b) = server.put("/v1/components/probe", bytes).await;
        assert_eq!(s, 201, "{build}: {b}");
        // Sleeps long enough to be evicted: the second look is replayed.
        let run = server.start_run("probe", json!(400)).await;
        let done = server.wait(&run, 60).await;
        assert_eq!(done["status"], "completed", "{build}: {done}");
        let resumed = format!("resuming: replaying the journal run=\"{run}\"");
        assert_eq!(log_lines(&server.log(), &resumed), 1, "{build}: evicted");
        let out = &done["output"];
        assert_eq!(out["before"], out["after"], "{build}");
        // What the first execution saw, journaled before the eviction.
        let journal = server.journal(&run).await;
        let first = &of_kind(&journal, "status-set")[0]["status"];
        assert_eq!(first, &out["before"], "{build}: replayed identically");
        for access in ["read", "list", "write"] {
            assert!(
                out["before"][access]["error"].is_string(),
                "{build}: {access}: {out}"
            );
        }
        assert_eq!(out["before"]["home"], Value::Null, "{build}: {out}");
        assert_eq!(out["before"]["vars"], 0, "{build}: {out}");
        assert_eq!(out["before"]["args"], json!([]), "{build}: {out}");
    }
}
