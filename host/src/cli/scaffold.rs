//! `weft new workflow NAME` and `weft new activity NAME`: a crate that
//! builds for `wasm32-wasip2` as it is, with a test, and a README that
//! says how to build, test and deploy it.

use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};

/// What kind of crate to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Workflow,
    Activity,
}

/// Where the SDK (and the testing crate) come from: a weft checkout by
/// path, or crates.io by version.
enum Source {
    Checkout(PathBuf),
    Registry,
}

impl Source {
    /// The checkout given, else the one this `weft` was built from if it is
    /// still there, else crates.io.
    fn find(checkout: Option<&Path>) -> anyhow::Result<Source> {
        if let Some(dir) = checkout {
            let dir = dir
                .canonicalize()
                .with_context(|| format!("no weft checkout at {}", dir.display()))?;
            if !dir.join("guest-sdk").join("Cargo.toml").is_file() {
                bail!("{} is not a weft checkout (no guest-sdk/)", dir.display());
            }
            return Ok(Source::Checkout(dir));
        }
        let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).parent();
        match built_from {
            Some(dir) if dir.join("guest-sdk").join("Cargo.toml").is_file() => {
                Ok(Source::Checkout(dir.to_path_buf()))
            }
            _ => Ok(Source::Registry),
        }
    }

    fn dependency(&self, krate: &str, dir: &str) -> String {
        match self {
            Source::Checkout(root) => {
                format!(
                    "{krate} = {{ path = {:?} }}",
                    root.join(dir).display().to_string()
                )
            }
            Source::Registry => format!("{krate} = \"{}\"", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// A crate name: lowercase letters, digits and `-`, starting with a letter.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        bail!(
            "`{name}` is not a crate name weft takes: use lowercase letters, digits and `-`, starting with a letter"
        );
    }
    Ok(())
}

/// `hello-world` → `HelloWorld`.
fn type_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or(String::new(), |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// Make the crate `name` in `dir` (default `./NAME`); answers where.
pub fn create(
    kind: Kind,
    name: &str,
    dir: Option<&Path>,
    checkout: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    check_name(name)?;
    let dir = dir.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
    if dir.exists() && dir.read_dir()?.next().is_some() {
        bail!("{} exists and is not empty", dir.display());
    }
    let source = Source::find(checkout)?;
    let files = match kind {
        Kind::Workflow => workflow_files(name, &source),
        Kind::Activity => activity_files(name, &source),
    };
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("files are in a directory"))?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    // The versions the SDK is tested with, and builds that share what the
    // checkout's already compiled.
    if let Source::Checkout(root) = &source
        && root.join("Cargo.lock").is_file()
    {
        std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))?;
    }
    Ok(dir)
}

fn manifest(name: &str, source: &Source, dev: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
{sdk}
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"
{dev}
# A workspace of its own (move it into yours by deleting this).
[workspace]

# Compiling components in tests is dominated by cranelift; optimise it.
[profile.dev.package.cranelift-codegen]
opt-level = 3
[profile.dev.package.regalloc2]
opt-level = 3
"#,
        sdk = source.dependency("weft-sdk", "guest-sdk"),
    )
}

fn workflow_files(name: &str, source: &Source) -> Vec<(&'static str, String)> {
    let ty = type_name(name);
    let dev = format!(
        r#"
[dev-dependencies]
{testing}
tokio = {{ version = "1", features = ["rt-multi-thread", "macros"] }}
"#,
        testing = source.dependency("weft-testing", "testing"),
    );
    let lib = format!(
        r#"//! {name}: a weft workflow. It greets through an activity, waits
//! durably (a day by default: the run leaves memory and wakes from the
//! database), and answers the greeting.

use serde::{{Deserialize, Serialize}};
use std::time::Duration;
use weft_sdk::{{Context, Error, Workflow}};

#[derive(Deserialize)]
pub struct Input {{
    pub name: String,
    /// How long to wait before answering, in ms.
    #[serde(default = "a_day")]
    pub wait_ms: u64,
}}

fn a_day() -> u64 {{
    86_400_000
}}

#[derive(Serialize)]
pub struct Output {{
    pub greeting: String,
    pub waited_ms: u64,
}}

struct {ty};

impl Workflow for {ty} {{
    type Input = Input;
    type Output = Output;

    fn run(ctx: &Context, input: Input) -> Result<Output, Error> {{
        let greeting: String = ctx.activity("greeter/greet").input(&input.name).call()?;
        let before = ctx.now_ms();
        ctx.sleep(Duration::from_millis(input.wait_ms))?;
        Ok(Output {{
            greeting,
            waited_ms: ctx.now_ms() - before,
        }})
    }}
}}

weft_sdk::workflow!({ty});
"#
    );
    let test = format!(
        r#"//! The workflow in-process: the real engine, the activity mocked, a
//! day of waiting in virtual time.

use serde_json::json;
use weft_testing::{{TestEnv, build_guest}};

#[tokio::test(flavor = "multi_thread")]
async fn greets_then_waits_a_day() {{
    let wasm = build_guest("{name}").expect("the workflow builds for wasm32-wasip2");
    let env = TestEnv::new().await.unwrap();
    env.deploy("{name}", wasm).await.unwrap();
    let greeter = env.mock_activity("greeter/greet", |call| {{
        Ok(json!(format!("Hello, {{}}!", call.input.as_str().unwrap_or("stranger"))))
    }});

    let run = env.start("{name}", json!({{ "name": "Ada" }})).await.unwrap();
    let output = run.result().await.unwrap();

    assert_eq!(output["greeting"], "Hello, Ada!");
    assert!(output["waited_ms"].as_u64().unwrap() >= 86_400_000);
    assert_eq!(greeter.inputs(), [json!("Ada")]);
}}
"#
    );
    vec![
        ("Cargo.toml", manifest(name, source, &dev)),
        ("src/lib.rs", lib),
        ("tests/workflow.rs", test),
        ("README.md", readme(name, "workflow")),
        (".gitignore", "/target\n".into()),
    ]
}

fn activity_files(name: &str, source: &Source) -> Vec<(&'static str, String)> {
    let lib = format!(
        r#"//! {name}: weft activities, called from workflows as `{name}/greet`.
//! An activity may fail and be retried: keep it idempotent (the
//! idempotency key is the same for every attempt).

use weft_sdk::{{ActivityContext, Error}};

/// The work itself, apart from the host: a plain function to unit-test.
pub fn greeting(name: &str) -> Result<String, Error> {{
    if name.is_empty() {{
        return Err(Error::new("bad-input", "a name is needed"));
    }}
    Ok(format!("Hello, {{name}}!"))
}}

fn greet(_ctx: &ActivityContext, name: String) -> Result<String, Error> {{
    greeting(&name)
}}

weft_sdk::activities! {{ "greet" => greet }}

#[cfg(test)]
mod tests {{
    use super::*;

    #[test]
    fn greets_and_refuses_an_empty_name() {{
        assert_eq!(greeting("Ada").unwrap(), "Hello, Ada!");
        assert_eq!(greeting("").unwrap_err().kind, "bad-input");
    }}
}}
"#
    );
    vec![
        ("Cargo.toml", manifest(name, source, "")),
        ("src/lib.rs", lib),
        ("README.md", readme(name, "activity")),
        (".gitignore", "/target\n".into()),
    ]
}

fn readme(name: &str, kind: &str) -> String {
    let file = name.replace('-', "_");
    format!(
        r#"# {name}

A weft {kind}, made by `weft new {kind} {name}`.

```sh
cargo test                                        # the tests, in-process
cargo build --release --target wasm32-wasip2      # the component
weft deploy --name {name} target/wasm32-wasip2/release/{file}.wasm
```
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_turned_into_types() {
        assert!(check_name("hello2").is_ok());
        assert!(check_name("cell-rollout").is_ok());
        for bad in ["Hello", "2fast", "a_b", "", "a/b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(type_name("cell-rollout"), "CellRollout");
        assert_eq!(type_name("hello2"), "Hello2");
    }
}
