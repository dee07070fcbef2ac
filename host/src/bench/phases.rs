//! The phases of `weft bench chain10` beyond latency: runs in flight at
//! once, fsync-family calls per run, and runs left suspended.

use super::meter::{MemoryMap, Meter, SyncCounter};
use super::one_run;
use crate::cli::Client;
use anyhow::bail;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The servers' clients, taken in turn.
pub type Nodes = Vec<Arc<Client>>;

/// `total` chain10 runs, `concurrency` at a time; answers how long they took.
pub async fn chain10_in_flight(
    nodes: &Nodes,
    total: usize,
    concurrency: usize,
) -> anyhow::Result<Duration> {
    in_flight(nodes, total, concurrency, |client, i| async move {
        one_run(&client, i as u64).await.map(|_| ())
    })
    .await
}

/// `total` calls of `each`, `concurrency` at a time, the clients in turn.
async fn in_flight<F, Fut>(
    nodes: &Nodes,
    total: usize,
    concurrency: usize,
    each: F,
) -> anyhow::Result<Duration>
where
    F: Fn(Arc<Client>, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let t = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let (client, next, each) = (nodes[w % nodes.len()].clone(), next.clone(), each.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return anyhow::Ok(());
                }
                each(client.clone(), i).await?;
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok(t.elapsed())
}

/// fsync-family calls per chain10 run at `concurrency` in flight, counted
/// by strace on the (one) server; `Err` says why there is no figure.
pub async fn syncs_per_run(
    pid: u32,
    nodes: &Nodes,
    runs: usize,
    concurrency: usize,
) -> anyhow::Result<Result<f64, String>> {
    let counter = match SyncCounter::attach(pid)? {
        Ok(counter) => counter,
        Err(why) => return Ok(Err(why)),
    };
    chain10_in_flight(nodes, runs, concurrency).await?;
    Ok(Ok(counter.finish()? as f64 / runs as f64))
}

/// What runs left sleeping cost.
pub struct Suspended {
    pub runs: usize,
    /// Starts answered per second (32 in flight).
    pub starts_per_sec: f64,
    /// From the last start's answer until no run is resident.
    pub evicted_after: Duration,
    /// The servers' resident memory once every run is evicted.
    pub rss_kib: u64,
    /// Its growth over the servers' before the starts, per run.
    pub kib_per_run: f64,
    /// The servers' resident memory then, by what it maps.
    pub memory: MemoryMap,
}

/// Start `runs` runs that sleep an hour (`deadline` "sleep"), 32 in
/// flight; wait until none is resident, then read the servers' memory.
pub async fn suspended(nodes: &Nodes, meters: &[Meter], runs: usize) -> anyhow::Result<Suspended> {
    let rss = || -> anyhow::Result<u64> { meters.iter().map(Meter::rss_kib).sum() };
    let before = rss()?;
    let took = in_flight(nodes, runs, 32, |client, _| async move {
        let body = json!({ "workflow": "deadline", "input": "sleep" });
        client.post("/v1/runs", &body).await.map(|_| ())
    })
    .await?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    loop {
        let mut resident = 0;
        for node in nodes {
            resident += resident_runs(node).await?;
        }
        if resident == 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("{resident} runs still resident 5 minutes after the last start");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let evicted_after = started.elapsed();
    let after = rss()?;
    let mut memory = MemoryMap::default();
    for meter in meters {
        memory += meter.memory_map()?;
    }
    Ok(Suspended {
        runs,
        starts_per_sec: runs as f64 / took.as_secs_f64(),
        evicted_after,
        rss_kib: after,
        kib_per_run: after.saturating_sub(before) as f64 / runs as f64,
        memory,
    })
}

/// The `weft_resident_runs` gauge of one server's `/metrics`.
async fn resident_runs(client: &Client) -> anyhow::Result<u64> {
    let metrics = client.get_text("/metrics").await?;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("weft_resident_runs "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .ok_or_else(|| anyhow::anyhow!("/metrics has no weft_resident_runs"))
}
