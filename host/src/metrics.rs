//! The server's metrics, in one registry of the `prometheus` crate and
//! rendered in its text format at `GET /metrics`. The figures are counted
//! where they happen (the engine, the runtime, the writer, the HTTP layer);
//! this module only holds them, so every layer may count.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::LazyLock;
use std::time::Duration;

pub struct Metrics {
    registry: Registry,
    /// One execution of a run, from its resumption to its suspension or end.
    pub executions: HistogramVec,
    /// Replaying a journal before the execution goes live.
    pub replays: HistogramVec,
    /// A run's life, from its creation to its end.
    pub run_durations: HistogramVec,
    pub activity_attempts: IntCounterVec,
    pub activity_failures: IntCounterVec,
    /// How late a timer fired: fired − due.
    pub timer_lag: HistogramVec,
    /// Writes per journal transaction.
    pub commit_writes: Histogram,
    pub commit_seconds: Histogram,
    pub commits: IntCounter,
    pub writes: IntCounter,
    pub write_failures: IntCounter,
    pub evictions: IntCounterVec,
    pub resident_runs: IntGauge,
    pub runs: IntGaugeVec,
    pub shards_held: IntGauge,
    pub node: IntGaugeVec,
    pub http_requests: IntCounterVec,
    pub http_seconds: HistogramVec,
}

/// Seconds, from 1 ms to about 1 min.
fn latency_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.001, 2.0, 17).expect("valid buckets")
}

/// `metric`, registered in `registry`.
fn single<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(latency_buckets());
    single(
        registry,
        HistogramVec::new(opts, labels).expect("a valid histogram"),
    )
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let opts = Opts::new(name, help);
    single(
        registry,
        IntCounterVec::new(opts, labels).expect("a valid counter"),
    )
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let opts = Opts::new(name, help);
    single(
        registry,
        IntGaugeVec::new(opts, labels).expect("a valid gauge"),
    )
}

impl Metrics {
    fn new() -> Self {
        let r = Registry::new();
        let ns = &["namespace"];
        Metrics {
            executions: histogram(
                &r,
                "weft_execution_seconds",
                "One execution of a run: resumed until it suspends or ends (ending: suspended, ended, continued, retry).",
                &["namespace", "ending"],
            ),
            replays: histogram(
                &r,
                "weft_replay_seconds",
                "Replaying a run's journal before its execution goes live.",
                ns,
            ),
            run_durations: histogram(
                &r,
                "weft_run_duration_seconds",
                "A run's life, from its creation to its end, by final status.",
                &["namespace", "status"],
            ),
            activity_attempts: counter(
                &r,
                "weft_activity_attempts_total",
                "Activity attempts by component, function and outcome (completed, failed).",
                &["namespace", "component", "function", "outcome"],
            ),
            activity_failures: counter(
                &r,
                "weft_activity_failures_total",
                "Failed activity attempts by component, function and error kind.",
                &["namespace", "component", "function", "kind"],
            ),
            timer_lag: histogram(
                &r,
                "weft_timer_lag_seconds",
                "How late durable timers fired (fired - due).",
                ns,
            ),
            commit_writes: single(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "weft_commit_writes",
                        "Writes (appends, run creations, signals) per journal transaction.",
                    )
                    .buckets(prometheus::exponential_buckets(1.0, 2.0, 10).expect("valid")),
                )
                .expect("a valid histogram"),
            ),
            commit_seconds: single(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "weft_commit_seconds",
                        "Journal transactions: from the first write taken to the commit.",
                    )
                    .buckets(latency_buckets()),
                )
                .expect("a valid histogram"),
            ),
            commits: single(
                &r,
                IntCounter::new("weft_commits_total", "Journal transactions committed.")
                    .expect("valid"),
            ),
            writes: single(
                &r,
                IntCounter::new(
                    "weft_writes_total",
                    "Writes (appends, run creations, signals) committed.",
                )
                .expect("valid"),
            ),
            write_failures: single(
                &r,
                IntCounter::new(
                    "weft_write_failures_total",
                    "Writes refused (fenced or failed).",
                )
                .expect("valid"),
            ),
            evictions: counter(
                &r,
                "weft_evictions_total",
                "Executions that left memory to wait (a timer, a signal, an update).",
                ns,
            ),
            resident_runs: single(
                &r,
                IntGauge::new("weft_resident_runs", "Runs executing (in memory) now.")
                    .expect("valid"),
            ),
            runs: gauge(
                &r,
                "weft_runs",
                "Runs in the store by namespace and status.",
                &["namespace", "status"],
            ),
            shards_held: single(
                &r,
                IntGauge::new(
                    "weft_shards_held",
                    "Shards this node drives (0 alone: it drives every run).",
                )
                .expect("valid"),
            ),
            node: gauge(
                &r,
                "weft_node",
                "This node's id among the nodes sharing the database.",
                &["node"],
            ),
            http_requests: counter(
                &r,
                "weft_http_requests_total",
                "HTTP requests by route, method and status.",
                &["route", "method", "status"],
            ),
            http_seconds: histogram(
                &r,
                "weft_http_request_seconds",
                "HTTP request latency by route and method.",
                &["route", "method"],
            ),
            registry: r,
        }
    }

    /// Everything, in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding of gathered metrics");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

/// The process's metrics (one server per process).
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// Observe `elapsed` on `histogram` with `labels`.
pub fn observe(histogram: &HistogramVec, labels: &[&str], elapsed: Duration) {
    histogram
        .with_label_values(labels)
        .observe(elapsed.as_secs_f64());
}
