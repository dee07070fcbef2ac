//! `weft serve`: open the store, resume what was in flight, serve HTTP.

use crate::api::{self, AppState};
use crate::engine::{Engine, EngineConfig};
use crate::runtime::{ClusterConfig, Runtime, RuntimeConfig};
use crate::store::{Durability, PostgresStore, SqliteStore, Store};
use crate::tls::{Peer, TlsListener};
use anyhow::Context as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How the server writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeOptions {
    /// The database: a SQLite file (created if missing; `sqlite:PATH` too),
    /// or `postgres://USER@HOST:PORT/DB`, which several nodes can share.
    #[arg(long, env = "WEFT_DB", default_value = "weft.db")]
    pub db: String,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = crate::DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// `full` fsyncs every commit; `normal` survives a crash of weft but may
    /// lose the last commits on power loss.
    #[arg(long, value_enum, default_value = "full")]
    pub durability: Durability,
    /// `text` for people, `json` (one object per line, with the run id and
    /// namespace of the run a line is about) for log shippers.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Export traces (a span per run execution, host call and activity
    /// attempt) to this OTLP/HTTP collector, e.g. `http://127.0.0.1:4318`.
    /// Off when not given.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Compiled-component cache (default: next to a SQLite file; for
    /// Postgres, `weft.cache` in the working directory: each node has its own).
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
    /// An idle run a signal, update or child may wake stays in memory this
    /// long (at most --resident-timer-ms) before it is evicted, in ms.
    #[arg(long, default_value_t = 1_000)]
    pub idle_linger_ms: u64,
    /// Default start-to-close timeout of an activity attempt, in ms.
    #[arg(long, default_value_t = 300_000)]
    pub activity_timeout_ms: u64,
    /// After a run's deadline, how long it may clean up before it is ended.
    #[arg(long, default_value_t = 30_000)]
    pub deadline_grace_ms: u64,
    /// Runs executing at once.
    #[arg(long, default_value_t = 1000)]
    pub max_resident_runs: usize,
    /// Guest executions (workflow steps, activity attempts) running at
    /// once, on threads of their own, given to the namespaces in turn
    /// (0: one per core).
    #[arg(long, env = "WEFT_GUEST_CORES", default_value_t = 0)]
    pub guest_cores: usize,
    /// This node's name among the nodes sharing a Postgres database
    /// (default: the host name and port). Unique and stable across restarts.
    #[arg(long, env = "WEFT_NODE_ID")]
    pub node_id: Option<String>,
    /// With Postgres: a node not heard from for this long loses its runs to
    /// the other nodes, in ms.
    #[arg(long, default_value_t = 10_000)]
    pub lease_ms: u64,
    /// The URL other nodes and clients reach this node's API at (default:
    /// http:// and the address it listens on).
    #[arg(long)]
    pub advertise_url: Option<String>,
    /// The cluster admin's token: with it every request needs a token (this
    /// one, or one issued per namespace). Prefer the environment or a file:
    /// a flag's value shows in the process list. Without one (dev mode),
    /// weft serves on loopback addresses only.
    #[arg(long, env = "WEFT_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Read the cluster admin's token from this file.
    #[arg(long, conflicts_with = "admin_token")]
    pub admin_token_file: Option<PathBuf>,
    /// Serve HTTPS only, with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Accept client certificates (mTLS) issued by this PEM CA; a
    /// certificate's subject common name, mapped by the cluster admin
    /// (`weft token create --client-cert NAME`), acts for a namespace and
    /// role without a token. Needs --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// With TLS among several nodes: PEM CA certificates this node trusts
    /// when it forwards a request to another node (besides the system's).
    #[arg(long)]
    pub tls_peer_ca: Option<PathBuf>,
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
    let admin_token = admin_token(&opts)?;
    if admin_token.is_none() && !opts.addr.ip().is_loopback() {
        anyhow::bail!(
            "refusing to serve on {} without authentication: give the cluster admin's token \
             (--admin-token-file FILE, or WEFT_ADMIN_TOKEN), or listen on a loopback address \
             such as 127.0.0.1",
            opts.addr
        );
    }
    if opts.tls_client_ca.is_some() && admin_token.is_none() {
        anyhow::bail!(
            "client certificates are mapped to namespaces by the cluster admin: \
             --tls-client-ca needs an admin token (--admin-token-file FILE, or WEFT_ADMIN_TOKEN)"
        );
    }
    let tls = match (&opts.tls_cert, &opts.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::server_config(
            cert,
            key,
            opts.tls_client_ca.as_deref(),
        )?),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(opts.addr)
        .await
        .with_context(|| format!("cannot listen on {}", opts.addr))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let (store, backend, default_cache): (Arc<dyn Store>, _, _) =
        if opts.db.starts_with("postgres://") || opts.db.starts_with("postgresql://") {
            let store = PostgresStore::open(&opts.db).await?;
            (Arc::new(store), "postgres", PathBuf::from("weft.cache"))
        } else {
            let path = PathBuf::from(opts.db.strip_prefix("sqlite:").unwrap_or(&opts.db));
            let store = SqliteStore::open(&path, opts.durability).await?;
            let mut cache = path.into_os_string();
            cache.push(".cache");
            (Arc::new(store), "sqlite", PathBuf::from(cache))
        };
    let cache_dir = opts.cache_dir.clone().unwrap_or(default_cache);
    let max_activities = 256;
    let engine = Engine::new(EngineConfig {
        memory_limit: opts.memory_limit_mb << 20,
        spin_limit: Duration::from_millis(opts.spin_limit_ms),
        cache_dir: Some(cache_dir),
        max_instances: (opts.max_resident_runs + max_activities + 16) as u32,
        guest_cores: opts.guest_cores,
    })?;
    let rt = Runtime::new(
        store,
        engine,
        RuntimeConfig {
            resident_timer_ms: opts.resident_timer_ms,
            idle_linger_ms: opts.idle_linger_ms,
            activity_timeout: Duration::from_millis(opts.activity_timeout_ms),
            max_resident_runs: opts.max_resident_runs,
            max_concurrent_activities: max_activities,
            deadline_grace_ms: opts.deadline_grace_ms,
            send_when_parked: false,
            cluster: (backend == "postgres").then(|| ClusterConfig {
                node_id: opts
                    .node_id
                    .clone()
                    .unwrap_or_else(|| default_node_id(addr)),
                lease_ms: opts.lease_ms,
            }),
            peer_token: admin_token.clone(),
            peer_client: crate::tls::client(opts.tls_peer_ca.as_deref(), None)?
                .build()
                .context("the HTTP client for other nodes")?,
        },
    );
    for path in &opts.deploy {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let name = name_from_path(path);
        let (v, _) = rt
            .deploy(crate::store::DEFAULT_NAMESPACE, &name, bytes, None)
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
    match &admin_token {
        Some(token) => {
            let hash = crate::api::token_hash(token);
            rt.store
                .access()
                .set_cluster_admin(&hash, crate::clock::now_ms())
                .await?;
            tracing::info!("authentication on: every request needs a token");
        }
        None => tracing::warn!(
            "no authentication (dev mode): anyone who reaches {addr} may do anything; serving on loopback only"
        ),
    }
    let url = opts
        .advertise_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{addr}"));
    let resumed = rt.start(url).await?;
    tracing::info!("resumed {resumed} run(s)");
    // Scripts and tests read this line to find the port.
    println!("weft listening on {scheme}://{addr}");
    let app = api::router(AppState {
        rt: rt.clone(),
        durability: opts.durability,
        store: backend,
        auth: admin_token.is_some(),
    })
    .into_make_service_with_connect_info::<Peer>();
    let stopped = async move {
        stop_requested().await;
        // Among others, runs move to them now rather than at lease expiry.
        rt.leave().await;
    };
    match tls {
        Some(config) => {
            let listener = TlsListener::new(listener, config)?;
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await?
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await?
        }
    }
    Ok(())
}

/// The cluster admin's token, from the flag, the environment or a file.
fn admin_token(opts: &ServeOptions) -> anyhow::Result<Option<String>> {
    let token = match (&opts.admin_token, &opts.admin_token_file) {
        (Some(t), _) => t.trim().to_string(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the admin token from {}", path.display()))?
            .trim()
            .to_string(),
        (None, None) => return Ok(None),
    };
    if token.len() < 16 {
        anyhow::bail!("the admin token must be at least 16 characters (use a long random one)");
    }
    Ok(Some(token))
}

/// SIGTERM (a rolling restart, a service manager) or Ctrl-C.
async fn stop_requested() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM can be handled");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: handing runs over and stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: stopping"),
    }
}

/// A node id for a node that names none: the host's name and the port.
fn default_node_id(addr: SocketAddr) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "weft".into());
    format!("{host}:{}", addr.port())
}
