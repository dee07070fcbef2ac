use clap::{Parser, Subcommand};
use std::path::PathBuf;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use weft::cli::{self, Client};

/// weft: durable execution for workflows compiled to WebAssembly components.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Remote {
    /// The weft server to talk to.
    #[arg(long, env = "WEFT_SERVER", default_value = weft::DEFAULT_ADDR, global = true)]
    server: String,
    /// A profile of the config file (server, token, namespace).
    #[arg(long, env = "WEFT_PROFILE", global = true)]
    profile: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (SQLite by default: ./weft.db).
    Serve(weft::server::ServeOptions),
    /// Upload a workflow or activity component.
    Deploy {
        file: PathBuf,
        /// Name to deploy under (default: the file name without `.wasm`).
        #[arg(long)]
        name: Option<String>,
        /// A host (`host`, `host:port`, `*.domain`) the activity may reach
        /// over HTTP; repeat for several.
        #[arg(long = "allow-http", value_name = "HOST")]
        allow_http: Vec<String>,
        /// Replay the workflow's open runs on the new version and report.
        #[arg(long)]
        check: bool,
        /// With --check: upgrade the runs that are compatible.
        #[arg(long)]
        upgrade_compatible: bool,
        /// Only report (compile and check), deploy nothing.
        #[arg(long)]
        dry_run: bool,
        /// The namespace (default: the token's, else `default`).
        #[arg(long, env = "WEFT_NAMESPACE")]
        namespace: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Start a run of a workflow.
    Start {
        workflow: String,
        /// The input, as JSON.
        #[arg(long)]
        input: Option<String>,
        /// A workflow id (starting one that is open answers that run).
        #[arg(long)]
        workflow_id: Option<String>,
        /// Wait up to this many seconds for the result and print it.
        #[arg(long, num_args = 0..=1, default_missing_value = "600")]
        wait: Option<f64>,
        /// Execution timeout: the run ends `timed-out` after this many ms.
        #[arg(long)]
        timeout_ms: Option<u64>,
        /// When an open run holds the workflow id: use-existing (default),
        /// fail, terminate-existing.
        #[arg(long)]
        id_conflict_policy: Option<String>,
        /// When closed runs had it: allow-duplicate (default),
        /// allow-duplicate-failed-only, reject-duplicate.
        #[arg(long)]
        id_reuse_policy: Option<String>,
        /// The namespace (default: the token's, else `default`).
        #[arg(long, env = "WEFT_NAMESPACE")]
        namespace: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// List runs, newest first.
    Runs {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        workflow: Option<String>,
        /// A list query over the runs' fields and search attributes:
        /// "region = 'eu-west' AND (ring > 1 OR workflow IN ('rollout'))".
        #[arg(long)]
        query: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long, env = "WEFT_NAMESPACE")]
        namespace: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show a run and its journal as a timeline.
    Show {
        run_id: String,
        /// Print the journal as JSON instead.
        #[arg(long)]
        json: bool,
        /// Keep printing events as they are journaled, until the run ends.
        #[arg(long, short)]
        follow: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Send a signal to a run (or, with --workflow-id, to the open run of a
    /// workflow id).
    Signal {
        /// A run id, or a workflow id with --workflow-id.
        target: String,
        name: String,
        /// The payload, as JSON.
        #[arg(long)]
        payload: Option<String>,
        #[arg(long)]
        workflow_id: bool,
        /// Your id for this request: sending it again delivers nothing new.
        #[arg(long)]
        idempotency_key: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Ask a run to cancel: its next await answers `cancelled`.
    Cancel {
        run_id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// End a run at once, without its cleanup (it ends `terminated`).
    Terminate {
        run_id: String,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Pause a run: it takes no step (timers that fall due wait) until
    /// `weft unpause`.
    Pause {
        run_id: String,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Let a paused run go on.
    Unpause {
        run_id: String,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Cancel, terminate or signal every run of a namespace that matches
    /// (by default every running one; --dry-run lists them).
    Batch {
        #[command(flatten)]
        opts: cli::BatchOptions,
        #[command(flatten)]
        remote: Remote,
    },
    /// Schedules that start a workflow at fixed intervals: `create ID
    /// --workflow W --every 30s`, `list`, `show ID`, `pause ID`, `unpause ID`,
    /// `trigger ID` (start it now), `delete ID`.
    Schedule {
        #[command(flatten)]
        opts: cli::ScheduleOptions,
        #[command(flatten)]
        remote: Remote,
    },
    /// Carry a run on from an earlier event: a new run under its workflow
    /// id replays the journal before EVENT and continues live there (after
    /// fixing an activity, from the step that failed).
    Reset {
        #[command(flatten)]
        opts: cli::ResetOptions,
        #[command(flatten)]
        remote: Remote,
    },
    /// Send an update to the open run of a workflow id and wait for its
    /// answer (`weft update ID add --input '{"amount": 2}'`); `--attach
    /// UPDATE_ID` waits for one sent before.
    Update {
        #[command(flatten)]
        opts: cli::UpdateOptions,
        #[command(flatten)]
        remote: Remote,
    },
    /// Move an open run (or, with --workflow, every open run of a workflow)
    /// to another version, if its journal replays on it.
    Upgrade {
        /// The run (omit with --workflow).
        run_id: Option<String>,
        /// Upgrade every open run of this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Target version: a number or `latest`.
        #[arg(long, default_value = "latest")]
        to: String,
        /// With --workflow: only the runs on this version.
        #[arg(long)]
        from: Option<u32>,
        /// Switch without checking the journal first.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// A workflow's versions and how many open runs each has.
    Versions {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Replay an exported journal (`weft show RUN --json`, or
    /// GET /v1/runs/{id}/journal), or each journal of a directory, against
    /// a local .wasm, offline; exits 1, naming each incompatible journal
    /// and its divergence, if any is.
    Replay {
        /// An exported journal, or a directory of them (each `.json`).
        #[arg(required_unless_present = "journal", conflicts_with = "journal")]
        path: Option<PathBuf>,
        /// The same as PATH.
        #[arg(long)]
        journal: Option<PathBuf>,
        #[arg(long)]
        wasm: PathBuf,
    },
    /// Make a workflow or activity crate that builds for wasm32-wasip2,
    /// with a test (`cargo test` runs it in-process) and a README.
    New {
        #[arg(value_enum)]
        kind: weft::cli::scaffold::Kind,
        /// The crate's name (lowercase letters, digits, `-`).
        name: String,
        /// Where to make it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// A weft checkout to take the SDK and the testing crate from, by
        /// path (default: the one this weft was built from, if it is still
        /// there, else crates.io by version).
        #[arg(long)]
        weft: Option<PathBuf>,
    },
    /// Namespaces: `create NAME`, `list`, `show NAME`, `delete NAME`.
    Namespace {
        #[arg(value_parser = ["create", "list", "show", "delete"])]
        action: String,
        name: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// API tokens of a namespace: `create --role ROLE`, `list`, `revoke ID`;
    /// `create --client-cert NAME` maps the client certificates (mTLS) with
    /// that subject common name instead (cluster admin).
    Token {
        #[arg(value_parser = ["create", "list", "revoke"])]
        action: String,
        /// The token to revoke.
        id: Option<String>,
        #[arg(long, env = "WEFT_NAMESPACE", default_value = "default")]
        namespace: String,
        /// read, operate, deploy or admin.
        #[arg(long, default_value = "read")]
        role: String,
        #[arg(long)]
        description: Option<String>,
        /// With `create`: map this client certificate common name.
        #[arg(long)]
        client_cert: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Measure start→result latency and throughput on a temporary server.
    Bench(weft::bench::BenchOptions),
}

/// The profile named by `--profile NAME` (or `--profile=NAME`) anywhere
/// on the command line, else `WEFT_PROFILE`.
fn profile_name() -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--profile")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| {
            args.iter()
                .find_map(|a| a.strip_prefix("--profile=").map(str::to_string))
        })
        .or_else(|| std::env::var("WEFT_PROFILE").ok())
}

fn main() {
    // A profile fills in what the environment does not say, before the
    // runtime starts threads (setting variables is only sound before).
    match weft::profiles::load(profile_name().as_deref()) {
        Ok(profile) => {
            for (var, value) in [
                ("WEFT_SERVER", profile.server),
                ("WEFT_TOKEN", profile.token),
                ("WEFT_NAMESPACE", profile.namespace),
                ("WEFT_CA_CERT", profile.ca_cert),
                ("WEFT_CLIENT_CERT", profile.client_cert),
                ("WEFT_CLIENT_KEY", profile.client_key),
            ] {
                if let Some(value) = value
                    && std::env::var_os(var).is_none()
                {
                    // SAFETY: no other thread exists yet.
                    unsafe { std::env::set_var(var, value) };
                }
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(run());
}

async fn run() {
    let args = Args::parse();
    // The server logs what it does; client commands only what goes wrong.
    let default_filter = match args.command {
        Command::Serve(_) => "info,sqlx=warn,wasmtime=warn,cranelift=warn",
        _ => "warn",
    };
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match &args.command {
        Command::Serve(opts) if opts.log_format == weft::server::LogFormat::Json => {
            logs.json().boxed()
        }
        _ => logs.boxed(),
    };
    let traces = match &args.command {
        Command::Serve(weft::server::ServeOptions {
            otlp_endpoint: Some(endpoint),
            ..
        }) => match weft::telemetry::provider(endpoint) {
            Ok(provider) => Some(provider),
            Err(e) => {
                eprintln!("error: cannot export traces to {endpoint}: {e:#}");
                std::process::exit(1);
            }
        },
        _ => None,
    };
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_filter.into());
    if traces.is_some() {
        // Traced: weft's spans down to its host calls (debug), and so its
        // few debug lines too. One filter for both layers: a filter per
        // layer can be left a stale answer by `enabled!` checks (sqlx's) on
        // the thread, and then drops the next span.
        filter = filter.add_directive("weft=debug".parse().expect("a directive"));
    }
    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(traces.as_ref().map(weft::telemetry::layer))
        .init();
    let outcome = dispatch(args.command).await;
    if let Some(provider) = traces {
        // Send the spans still batched.
        let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
    }
    if let Err(e) = outcome {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(opts) => weft::server::serve(opts).await,
        Command::Deploy {
            file,
            name,
            allow_http,
            check,
            upgrade_compatible,
            dry_run,
            namespace,
            remote,
        } => {
            let opts = cli::DeployOptions {
                name,
                allow_http,
                check,
                upgrade_compatible,
                dry_run,
                namespace,
            };
            cli::deploy(&Client::new(&remote.server)?, &file, opts).await
        }
        Command::Start {
            workflow,
            input,
            workflow_id,
            wait,
            timeout_ms,
            id_conflict_policy,
            id_reuse_policy,
            namespace,
            remote,
        } => {
            let opts = cli::StartOptions {
                workflow,
                input,
                workflow_id,
                wait,
                timeout_ms,
                id_conflict_policy,
                id_reuse_policy,
                namespace,
            };
            cli::start(&Client::new(&remote.server)?, opts).await
        }
        Command::Runs {
            status,
            workflow,
            query,
            limit,
            namespace,
            remote,
        } => {
            let filter = cli::RunsFilter {
                status,
                workflow,
                query,
                namespace,
            };
            cli::runs(&Client::new(&remote.server)?, filter, limit).await
        }
        Command::Namespace {
            action,
            name,
            remote,
        } => cli::namespace(&Client::new(&remote.server)?, &action, name.as_deref()).await,
        Command::Token {
            action,
            id,
            namespace,
            role,
            description,
            client_cert,
            remote,
        } => {
            let client = Client::new(&remote.server)?;
            match (action.as_str(), id) {
                ("create", _) => {
                    let credential = cli::NewToken {
                        role,
                        description,
                        client_cert,
                    };
                    cli::token_create(&client, &namespace, credential).await
                }
                ("revoke", Some(id)) => cli::token_revoke(&client, &namespace, &id).await,
                ("revoke", None) => Err(anyhow::anyhow!("name the token to revoke")),
                _ => cli::token_list(&client, &namespace).await,
            }
        }
        Command::Show {
            run_id,
            json,
            follow,
            remote,
        } => cli::show(&Client::new(&remote.server)?, &run_id, json, follow).await,
        Command::Signal {
            target,
            name,
            payload,
            workflow_id,
            idempotency_key,
            remote,
        } => {
            let client = Client::new(&remote.server)?;
            let key = idempotency_key.as_deref();
            cli::signal(&client, &target, &name, payload, workflow_id, key).await
        }
        Command::Cancel { run_id, remote } => {
            cli::cancel(&Client::new(&remote.server)?, &run_id).await
        }
        Command::Terminate {
            run_id,
            reason,
            remote,
        } => cli::terminate(&Client::new(&remote.server)?, &run_id, reason).await,
        Command::Pause {
            run_id,
            reason,
            remote,
        } => cli::pause(&Client::new(&remote.server)?, &run_id, true, reason).await,
        Command::Unpause {
            run_id,
            reason,
            remote,
        } => cli::pause(&Client::new(&remote.server)?, &run_id, false, reason).await,
        Command::Batch { opts, remote } => cli::batch(&Client::new(&remote.server)?, opts).await,
        Command::Reset { opts, remote } => cli::reset(&Client::new(&remote.server)?, opts).await,
        Command::Update { opts, remote } => cli::update(&Client::new(&remote.server)?, opts).await,
        Command::Schedule { opts, remote } => {
            cli::schedule(&Client::new(&remote.server)?, opts).await
        }
        Command::Upgrade {
            run_id,
            workflow,
            to,
            from,
            force,
            remote,
        } => {
            let client = Client::new(&remote.server)?;
            cli::upgrade(&client, run_id, workflow, &to, from, force).await
        }
        Command::Versions { name, remote } => {
            cli::versions(&Client::new(&remote.server)?, &name).await
        }
        Command::New {
            kind,
            name,
            dir,
            weft,
        } => {
            let dir = weft::cli::scaffold::create(kind, &name, dir.as_deref(), weft.as_deref())?;
            println!("made {}: cd {} && cargo test", dir.display(), dir.display());
            Ok(())
        }
        Command::Replay {
            path,
            journal,
            wasm,
        } => match weft::offline::run(&path.or(journal).expect("clap requires one"), &wasm).await {
            Ok(true) => Ok(()),
            Ok(false) => std::process::exit(1),
            Err(e) => Err(e),
        },
        Command::Bench(opts) => weft::bench::run(opts).await,
    }
}

/// mimalloc: under many threads it costs less processor time than glibc's
/// allocator (whose per-thread arenas also keep what a burst allocated).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Memory freed goes back to the system at once, and arenas are committed
/// as they are used: a server's resident memory follows what it holds.
/// Unless the environment sets them (`MIMALLOC_ARENA_EAGER_COMMIT`,
/// `MIMALLOC_PURGE_DELAY`), and not for the offline commands (`weft
/// replay`, `weft bench`, whose replay figure is an offline replay): short
/// lived, they gain nothing from it, and purging each large block as it is
/// freed cost an offline replay a fifth of its speed.
///
/// Run by the loader before `main` (and before the first allocation, which
/// reserves mimalloc's first arena as the options say at that moment),
/// with the process's arguments, as glibc passes them to `.init_array`.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static ALLOCATOR_OPTIONS: extern "C" fn(
    libc::c_int,
    *const *const libc::c_char,
    *const *const libc::c_char,
) = allocator_options;

#[cfg(target_os = "linux")]
extern "C" fn allocator_options(
    argc: libc::c_int,
    argv: *const *const libc::c_char,
    _envp: *const *const libc::c_char,
) {
    if argc > 1 && !argv.is_null() {
        // SAFETY: glibc passes `main`'s argc and argv, argv[1] a C string.
        let command = unsafe { std::ffi::CStr::from_ptr(*argv.add(1)) };
        if command == c"replay" || command == c"bench" {
            return;
        }
    }
    // mimalloc v3's `mi_option_e` (libmimalloc-sys 0.1.49, pinned): its
    // Rust bindings do not name these two.
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    for (option, variable) in [
        (ARENA_EAGER_COMMIT, c"MIMALLOC_ARENA_EAGER_COMMIT"),
        (PURGE_DELAY, c"MIMALLOC_PURGE_DELAY"),
    ] {
        // SAFETY: getenv reads the environment the loader set up (no
        // thread runs yet, and it allocates nothing); setting an option
        // is sound at any time.
        unsafe {
            if libc::getenv(variable.as_ptr()).is_null() {
                libmimalloc_sys::mi_option_set(option, 0);
            }
        }
    }
}
