//! `weft bench`: start a server on a temporary SQLite file (or nodes on a
//! temporary Postgres database) and measure durable steps end to end over
//! HTTP.

mod meter;
mod noisy;
mod phases;

use crate::cli::Client;
use crate::server_process::ServerProcess;
use crate::store::Durability;
use anyhow::{Context as _, bail};
use meter::Meter;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// `chain10` (latency, throughput, fan-out, replay) or
    /// `noisy-neighbour` (namespace b's chain10 latency, idle and while
    /// namespace a floods the server with 10,000 fan-out starts).
    #[arg(default_value = "chain10", value_parser = ["chain10", "noisy-neighbour"])]
    pub case: String,
    /// Starts of namespace a's flood (noisy-neighbour).
    #[arg(long, default_value_t = 10_000)]
    pub flood: usize,
    /// Directory with `chain10.wasm`, `step.wasm`, `fanout.wasm`,
    /// `effects.wasm`, `steps.wasm` and `deadline.wasm` (see
    /// scripts/bench.sh).
    #[arg(long)]
    pub wasm_dir: PathBuf,
    /// Sequential runs for the latency figures.
    #[arg(long, default_value_t = 200)]
    pub sequential: usize,
    /// Runs for the throughput figure.
    #[arg(long, default_value_t = 1000)]
    pub total: usize,
    /// Runs in flight at once for the throughput figure (also measured
    /// at four times as many).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Runs started and left sleeping for the memory and start-rate
    /// figures (0: none).
    #[arg(long, default_value_t = 10_000)]
    pub suspended: usize,
    #[arg(long, value_enum, default_value = "full")]
    pub durability: Durability,
    /// Bench on Postgres: a server this URL reaches, where the bench makes
    /// a database of its own (dropped after). Without it, a SQLite file.
    #[arg(long)]
    pub db: Option<String>,
    /// Nodes sharing the Postgres database; requests go to them in turn.
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
}

/// A `weft serve` child on a fresh database in a directory of its own.
struct Server {
    /// `None` once stopped, so the directory goes after the process.
    process: Option<ServerProcess>,
    dir: PathBuf,
}

impl Server {
    /// Node `n` on `postgres` (a URL), or a server on a SQLite file.
    fn start(durability: Durability, postgres: Option<&str>, n: usize) -> anyhow::Result<Server> {
        let dir = std::env::temp_dir().join(format!("weft-bench-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let durability = match durability {
            Durability::Full => "full",
            Durability::Normal => "normal",
        };
        let mut args = vec!["--durability".to_string(), durability.to_string()];
        let db = match postgres {
            Some(url) => {
                let cache = dir.join("cache").display().to_string();
                args.extend(["--node-id".into(), format!("bench-{n}")]);
                args.extend(["--cache-dir".into(), cache]);
                url.into()
            }
            None => dir.join("bench.db").into_os_string(),
        };
        let process = ServerProcess::start(
            &std::env::current_exe()?,
            &db,
            &args,
            "warn",
            Stdio::inherit(),
        )?;
        Ok(Server {
            process: Some(process),
            dir,
        })
    }
}

impl Server {
    fn addr(&self) -> &str {
        self.process.as_ref().map_or("", |p| p.addr.as_str())
    }

    fn pid(&self) -> u32 {
        self.process.as_ref().map_or(0, ServerProcess::id)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.process.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn deploy(client: &Client, dir: &Path, name: &str) -> anyhow::Result<()> {
    let path = dir.join(format!("{name}.wasm"));
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    client
        .put_bytes(&format!("/v1/components/{name}"), bytes)
        .await?;
    Ok(())
}

/// A Postgres database made for one sitting, dropped after it.
struct BenchDatabase {
    admin: String,
    name: String,
    url: String,
}

impl BenchDatabase {
    async fn create(admin: &str) -> anyhow::Result<BenchDatabase> {
        use sqlx::Connection;
        let name = format!("weft_bench_{}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .with_context(|| format!("cannot connect to {admin}"))?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
        Ok(BenchDatabase {
            url: format!("{base}/{name}"),
            admin: admin.to_string(),
            name,
        })
    }

    async fn drop_now(self) -> anyhow::Result<()> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.admin).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await?;
        Ok(())
    }
}

/// Start one run and wait for its result; checks the answer.
async fn timed(
    client: &Client,
    workflow: &str,
    input: Value,
    expect: Value,
) -> anyhow::Result<Duration> {
    timed_in(
        client,
        crate::store::DEFAULT_NAMESPACE,
        workflow,
        input,
        expect,
    )
    .await
}

/// [`timed`], in `namespace`.
async fn timed_in(
    client: &Client,
    namespace: &str,
    workflow: &str,
    input: Value,
    expect: Value,
) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let body = json!({ "workflow": workflow, "input": input, "namespace": namespace });
    // The start and its result in one request, as a client waiting for a
    // result would (Restate's side of the sitting calls it so too).
    let run = client.post("/v1/runs?wait=120", &body).await?;
    let elapsed = t.elapsed();
    let run_id = run["run_id"].as_str().unwrap_or_default();
    if run["status"] != "completed" || run["output"] != expect {
        bail!("run {run_id} ended wrong: {run}");
    }
    Ok(elapsed)
}

/// One chain10 run: ten sequential activities, each adding one.
async fn one_run(client: &Client, n: u64) -> anyhow::Result<Duration> {
    timed(client, "chain10", json!(n), json!(n + 10)).await
}

/// One fanout100 run: 100 activities at once, joined.
async fn fanout100(client: &Client) -> anyhow::Result<Duration> {
    timed(client, "fanout", json!({ "n": 100 }), json!(5050)).await
}

/// Record a 10,002-event journal (5,000 sequential activities), export it
/// over HTTP and replay it offline; answers the events and the best rate
/// of three replays.
async fn replay10k(client: &Client, dir: &Path) -> anyhow::Result<(usize, f64)> {
    timed(client, "steps", json!(5000), json!(5000)).await?;
    let runs = client.get("/v1/runs?workflow=steps&limit=1").await?;
    let run_id = runs["runs"][0]["run_id"].as_str().unwrap_or_default();
    let journal: crate::journal::Export =
        serde_json::from_value(client.get(&format!("/v1/runs/{run_id}/journal")).await?)?;
    let events = journal.events.len();
    let wasm = std::fs::read(dir.join("steps.wasm"))?;
    let offline = crate::offline::Offline::new()?;
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let (verdict, took) = offline.replay(journal.clone(), wasm.clone()).await?;
        if !verdict.is_compatible() {
            bail!("the journal did not replay: {verdict:?}");
        }
        best = best.min(took);
    }
    Ok((events, events as f64 / best.as_secs_f64()))
}

/// Wait until the nodes share every shard (each holds some), so that the
/// figures are of the cluster, not of one node holding everything.
async fn wait_balanced(clients: &[Arc<Client>]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut held = Vec::new();
        for c in clients {
            let health = c.get("/healthz").await?;
            held.push(health["cluster"]["shards"].as_u64().unwrap_or(0));
        }
        if held.iter().all(|&n| n > 0) && held.iter().sum::<u64>() == crate::store::SHARDS as u64 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the nodes did not share the shards: {held:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub async fn run(opts: BenchOptions) -> anyhow::Result<()> {
    let database = match &opts.db {
        Some(admin) => Some(BenchDatabase::create(admin).await?),
        None if opts.nodes > 1 => bail!("several nodes need --db postgres://…"),
        None => None,
    };
    let postgres = database.as_ref().map(|d| d.url.as_str());
    let result = match opts.case.as_str() {
        "noisy-neighbour" => noisy::sitting(&opts, postgres).await,
        _ => sitting(&opts, postgres).await,
    };
    if let Some(database) = database {
        database.drop_now().await?;
    }
    result
}

async fn sitting(opts: &BenchOptions, postgres: Option<&str>) -> anyhow::Result<()> {
    let servers = (0..opts.nodes.max(1))
        .map(|n| Server::start(opts.durability, postgres, n))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let meters: Vec<Meter> = servers.iter().map(|s| Meter::new(s.pid())).collect();
    let cpu_ms = || -> anyhow::Result<f64> { meters.iter().map(Meter::cpu_ms).sum() };
    let nodes: phases::Nodes = servers
        .iter()
        .map(|s| Client::new(s.addr()).map(Arc::new))
        .collect::<anyhow::Result<_>>()?;
    let client = nodes[0].clone();
    // Requests go to the nodes in turn.
    let node = |i: usize| nodes[i % nodes.len()].clone();
    for name in ["step", "chain10", "effects", "fanout", "steps", "deadline"] {
        deploy(&client, &opts.wasm_dir, name).await?;
    }
    let health = client.get("/healthz").await?;
    if nodes.len() > 1 {
        wait_balanced(&nodes).await?;
    }
    for i in 0..5 {
        one_run(&node(i), i as u64).await?;
    }

    let mut latencies = Vec::with_capacity(opts.sequential);
    for i in 0..opts.sequential {
        latencies.push(one_run(&node(i), i as u64).await?);
    }
    latencies.sort();
    let p50 = percentile(&latencies, 0.50);
    let p99 = percentile(&latencies, 0.99);

    let cpu_before = cpu_ms()?;
    let elapsed = phases::chain10_in_flight(&nodes, opts.total, opts.concurrency).await?;
    let cpu_per_run = (cpu_ms()? - cpu_before) / opts.total as f64;
    let per_sec = opts.total as f64 / elapsed.as_secs_f64();
    let wide = opts.concurrency * 4;
    let elapsed_wide = phases::chain10_in_flight(&nodes, opts.total, wide).await?;
    let per_sec_wide = opts.total as f64 / elapsed_wide.as_secs_f64();

    fanout100(&client).await?;
    let mut fanouts = Vec::with_capacity(20);
    for i in 0..20 {
        fanouts.push(fanout100(&node(i)).await?);
    }
    fanouts.sort();
    let fanout_p50 = percentile(&fanouts, 0.50);

    // The disk's flushes are the database server's own on Postgres.
    let syncs = |concurrency: usize, runs: usize| {
        let (nodes, pid) = (&nodes, servers[0].pid());
        async move {
            match postgres {
                Some(_) => Ok(Err("on Postgres the database server syncs".to_string())),
                None => phases::syncs_per_run(pid, nodes, runs, concurrency).await,
            }
        }
    };
    let syncs_1 = syncs(1, 20).await?;
    let syncs_wide = syncs(opts.concurrency, 10 * opts.concurrency).await?;

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let backend = match postgres {
        Some(_) => format!("Postgres, {} node(s)", nodes.len()),
        None => "SQLite".to_string(),
    };
    out!(
        "weft bench: chain10 (10 sequential activities a run), {backend}, durability {}",
        health["durability"].as_str().unwrap_or("?")
    );
    out!(
        "  start→result latency over {} sequential runs: p50 {:.2} ms, p99 {:.2} ms",
        opts.sequential,
        ms(p50),
        ms(p99)
    );
    out!(
        "  throughput: {} runs at concurrency {} in {:.2} s = {:.1} runs/s ({:.0} durable steps/s), server CPU {cpu_per_run:.2} ms a run",
        opts.total,
        opts.concurrency,
        elapsed.as_secs_f64(),
        per_sec,
        per_sec * 11.0
    );
    out!(
        "  throughput: {} runs at concurrency {wide} in {:.2} s = {per_sec_wide:.1} runs/s",
        opts.total,
        elapsed_wide.as_secs_f64(),
    );
    out!(
        "  fanout100 (100 parallel activities, joined) start→result over 20 runs: p50 {:.2} ms",
        ms(fanout_p50)
    );
    let shown = |s: &Result<f64, String>| match s {
        Ok(n) => format!("{n:.2}"),
        Err(why) => format!("n/a ({why})"),
    };
    out!(
        "  fsync-family calls a run (strace): {} at 1 in flight, {} at {} in flight",
        shown(&syncs_1),
        shown(&syncs_wide),
        opts.concurrency
    );
    let suspended = match opts.suspended {
        0 => None,
        n => Some(phases::suspended(&nodes, &meters, n).await?),
    };
    if let Some(s) = &suspended {
        out!(
            "  {} sleeping runs: started at {:.0} runs/s (32 in flight), all evicted {:.2} s after the last start; server RSS then {:.1} MB ({:.2} KiB a run over the RSS before)",
            s.runs,
            s.starts_per_sec,
            s.evicted_after.as_secs_f64(),
            s.rss_kib as f64 / 1024.0,
            s.kib_per_run
        );
        let mb = |kib: u64| kib as f64 / 1024.0;
        out!(
            "    of it: the binary {:.1} MB, other files {:.1} MB, modules' memory images {:.1} MB, anonymous {:.1} MB; proportional set size {:.1} MB",
            mb(s.memory.binary),
            mb(s.memory.files),
            mb(s.memory.wasm_images),
            mb(s.memory.anonymous),
            mb(s.memory.proportional)
        );
    }
    let (events, events_per_sec) = replay10k(&client, &opts.wasm_dir).await?;
    out!("  replay of a {events}-event journal (offline, in memory): {events_per_sec:.0} events/s");
    let summary: Value = json!({
        "case": "chain10",
        "store": health["store"],
        "nodes": nodes.len(),
        "durability": health["durability"],
        "p50_ms": ms(p50),
        "p99_ms": ms(p99),
        "runs_per_sec": per_sec,
        "concurrency": opts.concurrency,
        "runs_per_sec_wide": per_sec_wide,
        "concurrency_wide": wide,
        "cpu_ms_per_run": cpu_per_run,
        "fanout100_p50_ms": ms(fanout_p50),
        "syncs_per_run_1": syncs_1.as_ref().ok(),
        "syncs_per_run_wide": syncs_wide.as_ref().ok(),
        "suspended_runs": suspended.as_ref().map(|s| s.runs),
        "starts_per_sec": suspended.as_ref().map(|s| s.starts_per_sec),
        "evicted_after_s": suspended.as_ref().map(|s| s.evicted_after.as_secs_f64()),
        "suspended_rss_mb": suspended.as_ref().map(|s| s.rss_kib as f64 / 1024.0),
        "suspended_kib_per_run": suspended.as_ref().map(|s| s.kib_per_run),
        "suspended_memory_kib": suspended.as_ref().map(|s| s.memory),
        "replay_events_per_sec": events_per_sec,
    });
    out!("{summary}");
    Ok(())
}
