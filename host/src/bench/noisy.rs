//! `weft bench noisy-neighbour`: namespace b runs chain10 sequentially,
//! first alone, then while namespace a floods the server with fan-out
//! starts; b's p50/p99 side by side show what a's flood costs b.

use super::{Server, percentile, timed_in};
use crate::cli::Client;
use anyhow::Context as _;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Starters of the flood at once.
const FLOODERS: usize = 64;

async fn chain10_latencies(client: &Client, runs: usize) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(runs);
    for i in 0..runs {
        let n = i as u64;
        latencies.push(timed_in(client, "b", "chain10", json!(n), json!(n + 10)).await?);
    }
    latencies.sort();
    Ok(latencies)
}

/// [`chain10_latencies`] from a client of its own on a thread of its own:
/// b's client is another program than a's, and here it would otherwise
/// wait in this process's run queue behind the 64 flooding clients.
async fn chain10_latencies_apart(addr: &str, runs: usize) -> anyhow::Result<Vec<Duration>> {
    let addr = addr.to_string();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async { chain10_latencies(&Client::new(&addr)?, runs).await })
    });
    tokio::task::spawn_blocking(move || thread.join())
        .await?
        .map_err(|_| anyhow::anyhow!("b's client thread panicked"))?
}

/// What namespace b's journals show about where its runs waited.
struct Findings {
    /// Failed (and retried) activity attempts, with the first one.
    failed: usize,
    first_failure: Option<serde_json::Value>,
    /// Each run's first event to its last, in ms, slowest first.
    spans: Vec<i64>,
    /// The slowest run's gaps over 50 ms between consecutive events.
    slowest_gaps: Vec<String>,
    /// Under the flood, the gaps between consecutive events by their
    /// kinds (an activity's turn, a workflow's), in ms.
    gaps: std::collections::BTreeMap<String, Vec<i64>>,
}

/// b's journals of the runs that began in `window` (ms): its sequential
/// runs under the flood, not the idle ones nor the starts timed after.
async fn read_b_journals(
    client: &Client,
    window: std::ops::Range<i64>,
) -> anyhow::Result<Findings> {
    let runs = client.get("/v1/runs?namespace=b&limit=1000").await?;
    let mut found = Findings {
        failed: 0,
        first_failure: None,
        spans: Vec::new(),
        slowest_gaps: Vec::new(),
        gaps: Default::default(),
    };
    let at = |e: &serde_json::Value| e["at_ms"].as_i64().unwrap_or(0);
    for run in runs["runs"].as_array().into_iter().flatten() {
        let id = run["run_id"].as_str().unwrap_or_default();
        let journal = client.get(&format!("/v1/runs/{id}/journal")).await?;
        let events = journal["events"].as_array().cloned().unwrap_or_default();
        if !events.first().is_some_and(|e| window.contains(&at(e))) {
            continue;
        }
        let span = events.last().map_or(0, at) - events.first().map_or(0, at);
        if found.spans.iter().all(|s| *s < span) {
            found.slowest_gaps = events
                .windows(2)
                .filter(|w| at(&w[1]) - at(&w[0]) > 50)
                .map(|w| {
                    format!(
                        "{}→{} {} ms",
                        w[0]["kind"],
                        w[1]["kind"],
                        at(&w[1]) - at(&w[0])
                    )
                })
                .collect();
        }
        found.spans.push(span);
        for w in events.windows(2) {
            let pair = format!("{}→{}", w[0]["kind"], w[1]["kind"]).replace('"', "");
            found
                .gaps
                .entry(pair)
                .or_default()
                .push(at(&w[1]) - at(&w[0]));
        }
        for e in &events {
            if e["kind"] == "activity-attempt-failed" || e["kind"] == "activity-failed" {
                found.failed += 1;
                found.first_failure.get_or_insert_with(|| e.clone());
            }
        }
    }
    found.spans.sort_unstable_by(|a, b| b.cmp(a));
    Ok(found)
}

/// The slowest start answers (the POST alone) of `runs` chain10 starts.
async fn start_latencies(client: &Client, runs: usize) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(runs);
    for i in 0..runs {
        let t = Instant::now();
        let body = json!({ "workflow": "chain10", "input": i, "namespace": "b" });
        client.post("/v1/runs", &body).await?;
        latencies.push(t.elapsed());
    }
    latencies.sort();
    Ok(latencies)
}

pub async fn sitting(opts: &super::BenchOptions, postgres: Option<&str>) -> anyhow::Result<()> {
    let server = Server::start(opts.durability, postgres, 0)?;
    let client = Arc::new(Client::new(server.addr())?);
    for ns in ["a", "b"] {
        client
            .post("/v1/namespaces", &json!({ "name": ns }))
            .await
            .context("creating the namespaces")?;
        for name in ["step", "chain10", "effects", "fanout"] {
            let path = opts.wasm_dir.join(format!("{name}.wasm"));
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            client
                .put_bytes(&format!("/v1/components/{name}?namespace={ns}"), bytes)
                .await?;
        }
    }
    chain10_latencies(&client, 5).await?;
    let idle = chain10_latencies_apart(server.addr(), opts.sequential).await?;

    // a floods: starts of a 10-activity fan-out, as fast as 64 clients can.
    let started = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let flood_began = Instant::now();
    let flood_began_ms = crate::clock::now_ms();
    let mut flooders = Vec::new();
    for _ in 0..FLOODERS {
        let (client, started, refused) = (client.clone(), started.clone(), refused.clone());
        let total = opts.flood;
        flooders.push(tokio::spawn(async move {
            let body = json!({ "workflow": "fanout", "input": { "n": 10 }, "namespace": "a" });
            while started.fetch_add(1, Ordering::Relaxed) < total {
                if client.post("/v1/runs", &body).await.is_err() {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // Let the flood build a backlog before b measures.
    while started.load(Ordering::Relaxed) < opts.flood.min(1000) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let flooded = chain10_latencies_apart(server.addr(), opts.sequential).await?;
    let flooded_ms = flood_began_ms..crate::clock::now_ms();
    let starts = start_latencies(&client, 50).await?;
    let mut found = read_b_journals(&client, flooded_ms).await?;
    let b_done = flood_began.elapsed();
    let backlog = client
        .get("/v1/runs?namespace=a&status=running&limit=1000")
        .await?;
    for f in flooders {
        f.await?;
    }
    let starts_took = flood_began.elapsed();

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (idle50, idle99) = (percentile(&idle, 0.5), percentile(&idle, 0.99));
    let (flood50, flood99) = (percentile(&flooded, 0.5), percentile(&flooded, 0.99));
    out!(
        "weft bench noisy-neighbour: namespace b runs chain10 ({} sequential runs); namespace a starts {} fan-outs of 10 activities from {FLOODERS} clients",
        opts.sequential,
        opts.flood
    );
    out!(
        "  b idle:             p50 {:.2} ms, p99 {:.2} ms",
        ms(idle50),
        ms(idle99)
    );
    out!(
        "  b under a's flood:  p50 {:.2} ms, p99 {:.2} ms  (p99 {:.2}x idle)",
        ms(flood50),
        ms(flood99),
        flood99.as_secs_f64() / idle99.as_secs_f64()
    );
    let slowest: Vec<String> = flooded
        .iter()
        .rev()
        .take(5)
        .map(|d| format!("{:.0}", ms(*d)))
        .collect();
    out!("  b's slowest under the flood: {} ms", slowest.join(", "));
    out!(
        "  b's start answers alone under the flood: p50 {:.2} ms, max {:.2} ms",
        ms(percentile(&starts, 0.5)),
        ms(*starts.last().expect("50 starts"))
    );
    let first = found
        .first_failure
        .map_or(String::new(), |e| format!(" (first: {e})"));
    out!(
        "  b's failed activity attempts (retried): {}{first}",
        found.failed
    );
    let top: Vec<String> = found.spans.iter().take(5).map(i64::to_string).collect();
    let span_at = |q: f64| {
        let n = found.spans.len();
        let i = ((n as f64 * (1.0 - q)) as usize).min(n.saturating_sub(1));
        found.spans.get(i).copied().unwrap_or(0)
    };
    out!(
        "  b's journals under the flood (the server's side), first event to last: p50 {} ms, p99 {} ms; slowest {} ms",
        span_at(0.5),
        span_at(0.99),
        top.join(", ")
    );
    out!(
        "  the slowest one's gaps: {}",
        found.slowest_gaps.join("; ")
    );
    for (pair, gaps) in &mut found.gaps {
        gaps.sort_unstable();
        let mean = gaps.iter().sum::<i64>() as f64 / gaps.len() as f64;
        out!(
            "  b's {pair} under the flood: mean {mean:.1} ms, p50 {} ms, p99 {} ms ({} steps)",
            gaps[gaps.len() / 2],
            gaps[(gaps.len() * 99 / 100).min(gaps.len() - 1)],
            gaps.len()
        );
    }
    out!(
        "  a: {} starts in {:.1} s ({} refused); {}{} of its runs open when b finished ({:.1} s in)",
        opts.flood,
        starts_took.as_secs_f64(),
        refused.load(Ordering::Relaxed),
        backlog["runs"].as_array().map_or(0, Vec::len),
        if backlog["runs"].as_array().map_or(0, Vec::len) == 1000 {
            "+"
        } else {
            ""
        },
        b_done.as_secs_f64()
    );
    let summary = json!({
        "case": "noisy-neighbour",
        "b_idle_p50_ms": ms(idle50),
        "b_idle_p99_ms": ms(idle99),
        "b_flood_p50_ms": ms(flood50),
        "b_flood_p99_ms": ms(flood99),
        "p99_ratio": flood99.as_secs_f64() / idle99.as_secs_f64(),
        "flood_starts": opts.flood,
    });
    out!("{summary}");
    Ok(())
}
