//! Test support: guests built from source once, a real `weft serve` child
//! process on a free port with its own SQLite file, and an HTTP client.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use weft::server_process::ServerProcess;

#[path = "../../host/src/store/test_database.rs"]
pub mod test_database;
use test_database::TestDatabase;

/// Every guest crate the tests deploy.
const GUESTS: &[&str] = &[
    "hello",
    "greeter",
    "provision",
    "cloud",
    "chain10",
    "counter",
    "asker",
    "echo",
    "pipeline",
    "stage",
    "stage-fixed",
    "tagger",
    "steps",
    "step",
    "sleeper",
    "sleeper-v2",
    "effects",
    "misbehave",
    "netcall",
    "not-weft",
    "retries",
    "failures",
    "fanout",
    "entity",
    "cell",
    "caller",
    "parent",
    "cancellable",
    "deadline",
    "fetcher",
    "fetch",
    "versioned",
    "versioned-add",
    "versioned-reorder",
    "versioned-patched",
    "versioned-rename-b",
    "versioned-continue",
    "sandbox-probe",
    "sim",
    "provision-namespace",
    "cell-entity",
    "rollout",
    "rollout-v2",
    "rollout-request",
];

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// The cargo target directory of this build (guests get folders in it).
pub fn target_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    if target.is_relative() {
        workspace().join(target)
    } else {
        target
    }
}

/// Build all guests for wasm32-wasip2, and those built by cargo component
/// (once per test binary, before any test goes on), and return the
/// directory holding the wasm32-wasip2 `.wasm` files.
pub fn guests() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let guest_target = target_dir().join("guests");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace())
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--target-dir",
            ])
            .arg(&guest_target);
        for g in GUESTS {
            cmd.args(["-p", g]);
        }
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "building the guests failed");
        // The cargo-component builds too, now: compiling while other tests'
        // servers run would starve them on a small machine.
        crate::component_builds::build_all();
        guest_target.join("wasm32-wasip2").join("release")
    })
}

/// A built guest: libraries are named with `_`, binaries keep their `-`.
pub fn wasm(name: &str) -> Vec<u8> {
    let mut path = guests().join(format!("{}.wasm", name.replace('-', "_")));
    if !path.exists() {
        path = guests().join(format!("{name}.wasm"));
    }
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

pub struct Server {
    process: Option<ServerProcess>,
    /// A Postgres URL to serve from instead of the SQLite file in `dir`.
    database_url: Option<String>,
    pub addr: String,
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    pub http: reqwest::Client,
    /// `http`, or `https` for a server started with TLS.
    scheme: &'static str,
    /// The database made for this server when the suite runs on Postgres
    /// (dropped after the server).
    _database: Option<TestDatabase>,
}

/// Which backend `Server::start` serves from: `WEFT_TEST_BACKEND=postgres`
/// runs the whole suite on Postgres (a database per server), anything
/// else on SQLite.
fn on_postgres() -> bool {
    std::env::var("WEFT_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

impl Server {
    /// A server on a fresh database, with extra `weft serve` flags.
    pub fn start(args: &[&str]) -> Server {
        Server::start_on(None, args)
    }

    /// A server on the Postgres database at `url`.
    pub fn start_on_postgres(url: &str, args: &[&str]) -> Server {
        Server::start_on(Some(url.to_string()), args)
    }

    /// A server with TLS flags in `args`, reached over HTTPS with `http`.
    pub fn start_tls(args: &[&str], http: reqwest::Client) -> Server {
        Server::start_with(None, args, "https", http)
    }

    fn start_on(database_url: Option<String>, args: &[&str]) -> Server {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        Server::start_with(database_url, args, "http", http)
    }

    fn start_with(
        database_url: Option<String>,
        args: &[&str],
        scheme: &'static str,
        http: reqwest::Client,
    ) -> Server {
        let database =
            (database_url.is_none() && on_postgres()).then(TestDatabase::create_blocking);
        let database_url = database_url.or_else(|| database.as_ref().map(|d| d.url.clone()));
        let mut server = Server {
            process: None,
            database_url,
            addr: String::new(),
            dir: tempfile::tempdir().expect("temp dir"),
            args: args.iter().map(|s| s.to_string()).collect(),
            http,
            scheme,
            _database: database,
        };
        server.spawn();
        server
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("weft.db")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Everything the server (all its incarnations) logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let exe = Path::new(env!("CARGO_BIN_EXE_weft"));
        let mut args = self.args.clone();
        let db = match &self.database_url {
            Some(url) => {
                // Each node compiles into a cache of its own.
                let cache = self.dir.path().join("cache");
                args.extend(["--cache-dir".into(), cache.display().to_string()]);
                url.into()
            }
            None => self.db().into_os_string(),
        };
        let process = ServerProcess::start(exe, &db, &args, "info", Stdio::from(log))
            .unwrap_or_else(|e| panic!("{e:#}; log:\n{}", self.log()));
        self.addr = process.addr.clone();
        self.process = Some(process);
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        drop(self.process.take());
    }

    /// Send `signal` (`STOP`, `CONT`, `TERM`) to the server process.
    pub fn signal(&self, signal: &str) {
        let pid = self.process.as_ref().expect("running").id();
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal} {pid}");
    }

    /// Wait up to `secs` for the server to exit on its own.
    pub fn exits_within(&mut self, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.process.as_mut().is_none_or(|p| p.exited()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// kill -9, then start again on the same database.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Change the database behind the server's back (stop it first):
    /// `statement` with `binds` (`?`), answering the rows affected.
    pub async fn sql(&self, statement: &str, binds: &[&str]) -> u64 {
        use sqlx::Connection;
        if let Some(url) = &self.database_url {
            let mut numbered = String::new();
            for (i, part) in statement.split('?').enumerate() {
                if i > 0 {
                    numbered.push_str(&format!("${i}"));
                }
                numbered.push_str(part);
            }
            let mut db = sqlx::PgConnection::connect(url).await.unwrap();
            let mut query = sqlx::query(&numbered);
            for b in binds {
                query = query.bind(*b);
            }
            let done = query.execute(&mut db).await.unwrap();
            db.close().await.unwrap();
            return done.rows_affected();
        }
        let url = format!("sqlite://{}", self.db().display());
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let mut query = sqlx::query(statement);
        for b in binds {
            query = query.bind(*b);
        }
        let done = query.execute(&mut db).await.unwrap();
        db.close().await.unwrap();
        done.rows_affected()
    }

    /// Run the `weft` CLI against this server: (success, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        run_cli(
            Command::new(env!("CARGO_BIN_EXE_weft"))
                .args(args)
                .env("WEFT_SERVER", self.url("")),
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.http.get(self.url(path)).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let resp = self.http.delete(self.url(path)).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn put(&self, path: &str, bytes: Vec<u8>) -> (u16, Value) {
        let resp = self
            .http
            .put(self.url(path))
            .body(bytes)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Deploy a guest built from source under `name`.
    pub async fn deploy(&self, name: &str, guest: &str) -> Value {
        let (status, body) = self
            .put(&format!("/v1/components/{name}"), wasm(guest))
            .await;
        assert!(
            status == 200 || status == 201,
            "deploy {name}: {status} {body}"
        );
        body
    }

    pub async fn start_run(&self, workflow: &str, input: Value) -> String {
        let (status, body) = self
            .post("/v1/runs", &json!({ "workflow": workflow, "input": input }))
            .await;
        assert_eq!(status, 201, "start {workflow}: {body}");
        body["run_id"].as_str().unwrap().to_string()
    }

    /// [`Server::start_run`] under `workflow_id`.
    pub async fn start_run_with_id(
        &self,
        workflow: &str,
        workflow_id: &str,
        input: Value,
    ) -> String {
        let body = json!({ "workflow": workflow, "input": input, "workflow_id": workflow_id });
        let (status, body) = self.post("/v1/runs", &body).await;
        assert_eq!(status, 201, "start {workflow} as {workflow_id}: {body}");
        body["run_id"].as_str().unwrap().to_string()
    }

    /// [`Server::start_run`] in `namespace`.
    pub async fn start_run_in(&self, namespace: &str, workflow: &str, input: Value) -> String {
        let body = json!({ "workflow": workflow, "input": input, "namespace": namespace });
        let (status, body) = self.post("/v1/runs", &body).await;
        assert_eq!(status, 201, "start {workflow} in {namespace}: {body}");
        body["run_id"].as_str().unwrap().to_string()
    }

    /// Long-poll until the run is no longer `running`.
    pub async fn wait(&self, run_id: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let (status, run) = self.get(&format!("/v1/runs/{run_id}?wait=5")).await;
            assert_eq!(status, 200, "{run}");
            if run["status"] != "running" {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "run {run_id} still running: {run}"
            );
        }
    }

    pub async fn journal(&self, run_id: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/v1/runs/{run_id}/journal")).await;
        assert_eq!(status, 200, "{body}");
        body["events"].as_array().unwrap().clone()
    }

    /// Poll `check` on the run's journal until it holds.
    pub async fn until_journal(&self, run_id: &str, what: &str, check: impl Fn(&[Value]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if check(&self.journal(run_id).await) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what} in {run_id}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Events of `kind` in a journal.
/// Run a `weft` CLI command: (success, stdout, stderr).
pub fn run_cli(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

pub fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

/// Lines of the server log mentioning `needle`.
pub fn log_lines(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}
