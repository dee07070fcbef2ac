//! `weft serve`: open the store, resume what was in flight, serve HTTP.

use crate::api::{self, AppState};
use crate::engine::{Engine, EngineConfig};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::store::{Durability, SqliteStore, Store};
use anyhow::Context as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct ServeOptions {
    /// SQLite database file (created if missing).
    #[arg(long, default_value = "weft.db")]
    pub db: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = crate::DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// `full` fsyncs every commit; `normal` survives a crash of weft but may
    /// lose the last commits on power loss.
    #[arg(long, value_enum, default_value = "full")]
    pub durability: Durability,
    /// Compiled-component cache (default: next to the database).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Linear memory limit of one guest instance, in MiB.
    #[arg(long, default_value_t = 256)]
    pub memory_limit_mb: usize,
    /// How long a workflow may compute without calling the host, in ms.
    #[arg(long, default_value_t = 10_000)]
    pub spin_limit_ms: u64,
    /// Timers at most this long keep the run in memory; longer ones evict it.
    #[arg(long, default_value_t = 5_000)]
    pub resident_timer_ms: u64,
    /// Default start-to-close timeout of an activity attempt, in ms.
    #[arg(long, default_value_t = 300_000)]
    pub activity_timeout_ms: u64,
    /// After a run's deadline, how long it may clean up before it is ended.
    #[arg(long, default_value_t = 30_000)]
    pub deadline_grace_ms: u64,
    /// Runs executing at once.
    #[arg(long, default_value_t = 1000)]
    pub max_resident_runs: usize,
    /// Deploy these components at start-up (named after the file).
    #[arg(long = "deploy", value_name = "FILE.wasm")]
    pub deploy: Vec<PathBuf>,
}

/// A component's default name: its file stem, with `_` as `-`.
pub fn name_from_path(path: &std::path::Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().replace('_', "-"))
        .unwrap_or_default()
}

pub async fn serve(opts: ServeOptions) -> anyhow::Result<()> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&opts.db, opts.durability).await?);
    let cache_dir = opts.cache_dir.clone().unwrap_or_else(|| {
        let mut dir = opts.db.clone().into_os_string();
        dir.push(".cache");
        PathBuf::from(dir)
    });
    let max_activities = 256;
    let engine = Engine::new(EngineConfig {
        memory_limit: opts.memory_limit_mb << 20,
        spin_limit: Duration::from_millis(opts.spin_limit_ms),
        cache_dir: Some(cache_dir),
        max_instances: (opts.max_resident_runs + max_activities + 16) as u32,
    })?;
    let rt = Runtime::new(
        store,
        engine,
        RuntimeConfig {
            resident_timer_ms: opts.resident_timer_ms,
            activity_timeout: Duration::from_millis(opts.activity_timeout_ms),
            max_resident_runs: opts.max_resident_runs,
            max_concurrent_activities: max_activities,
            deadline_grace_ms: opts.deadline_grace_ms,
        },
    );
    for path in &opts.deploy {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let name = name_from_path(path);
        let (v, _) = rt
            .deploy(&name, bytes, None)
            .await
            .with_context(|| format!("cannot deploy {}", path.display()))?;
        tracing::info!(
            "deployed {} {} v{} ({})",
            v.kind.as_str(),
            v.name,
            v.version,
            &v.digest[..12]
        );
    }
    let listener = tokio::net::TcpListener::bind(opts.addr)
        .await
        .with_context(|| format!("cannot listen on {}", opts.addr))?;
    let resumed = rt.recover().await?;
    let addr = listener.local_addr()?;
    tracing::info!("resumed {resumed} run(s)");
    // Scripts and tests read this line to find the port.
    println!("weft listening on http://{addr}");
    let app = api::router(AppState {
        rt,
        durability: opts.durability,
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
