//! Build the component under test from source, so `cargo test` in a
//! workflow crate tests what it would deploy.

use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Build package `package` of the current workspace (the crate under
/// test, or any other in its workspace) for `wasm32-wasip2`, release, and
/// answer the `.wasm` file. Guests get a target directory of their own
/// (`<target>/guests`), so this does not wait on the build running the
/// test).
///
/// ```no_run
/// # async fn example() -> anyhow::Result<()> {
/// // In the workflow crate's tests/: build the crate itself, as deployed.
/// let wasm = weft_testing::build_guest(env!("CARGO_PKG_NAME"))?;
/// let env = weft_testing::TestEnv::new().await?;
/// env.deploy("my-flow", &wasm).await?;
/// # Ok(()) }
/// ```
pub fn build_guest(package: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .context("CARGO_MANIFEST_DIR is not set: run under cargo test, or use build_guest_in")?;
    build_guest_in(&dir, package)
}

/// [`build_guest`] for the workspace holding `dir`.
///
/// ```no_run
/// # fn example() -> anyhow::Result<()> {
/// use std::path::Path;
/// let wasm = weft_testing::build_guest_in(Path::new("../workflows/rollout"), "rollout")?;
/// # Ok(()) }
/// ```
pub fn build_guest_in(dir: &Path, package: &str) -> anyhow::Result<PathBuf> {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => PathBuf::from(t),
        None => workspace_target(dir)?,
    };
    let target = target.join("guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(dir)
        .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"])
        .args(["-p", package, "--target-dir"])
        .arg(&target)
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!(
            "building {package} for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`)"
        );
    }
    let release = target.join("wasm32-wasip2").join("release");
    for file in [package.replace('-', "_"), package.to_string()] {
        let path = release.join(format!("{file}.wasm"));
        if path.exists() {
            return Ok(path);
        }
    }
    bail!("{package} built no .wasm in {}", release.display())
}

/// The workspace's target directory, as cargo reports it.
fn workspace_target(dir: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(dir)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("cannot run cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    meta["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("cargo metadata names no target directory")
}
