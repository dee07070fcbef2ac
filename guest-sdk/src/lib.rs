//! `weft-sdk`: write durable workflows and their activities in plain Rust.
//!
//! A workflow is straight-line code. Everything nondeterministic — the clock,
//! randomness, activities, timers — goes through [`Context`], which the weft
//! host journals; after a crash or an eviction the host replays the journal
//! and the code continues where it was. `std::time::SystemTime::now()` and
//! random numbers drawn through WASI (a `HashMap` seed, `getrandom`) are
//! journaled too, so they are replay-safe inside a workflow.
//!
//! Activities are the side-effecting steps: the host executes them with a
//! retry policy and records their results exactly once.
//!
//! # A workflow
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//! use std::time::Duration;
//! use weft_sdk::{Context, Error, RetryPolicy, Workflow};
//!
//! #[derive(Deserialize)]
//! struct Request { tenant: String }
//!
//! #[derive(Serialize, Deserialize)]
//! struct Cert { id: String, ready: bool }
//!
//! struct Provision;
//!
//! impl Workflow for Provision {
//!     type Input = Request;
//!     type Output = String;
//!
//!     fn run(ctx: &Context, req: Request) -> Result<String, Error> {
//!         let mut cert: Cert = ctx
//!             .activity("cloud/request-cert")
//!             .input(&req.tenant)
//!             .retry(RetryPolicy::default().max_attempts(5))
//!             .timeout(Duration::from_secs(30))
//!             .call()?;
//!         while !cert.ready {
//!             ctx.sleep(Duration::from_secs(10))?; // durable: costs a row, not memory
//!             cert = ctx.activity("cloud/cert-status").input(&cert.id).call()?;
//!         }
//!         Ok(cert.id)
//!     }
//! }
//!
//! weft_sdk::workflow!(Provision);
//! ```
//!
//! # Activities
//!
//! One component holds any number of activity functions; a workflow calls
//! them as `"component/function"` (a bare `"component"` calls the function
//! named like the component).
//!
//! ```no_run
//! use weft_sdk::{ActivityContext, Error};
//!
//! fn request_cert(ctx: &ActivityContext, tenant: String) -> Result<serde_json::Value, Error> {
//!     // `idempotency_key` is the same for every attempt: pass it on so the
//!     // external system can deduplicate retries.
//!     let key = ctx.idempotency_key();
//!     Ok(serde_json::json!({ "id": format!("cert-{tenant}-{key}"), "ready": false }))
//! }
//!
//! weft_sdk::activities! {
//!     "request-cert" => request_cert,
//! }
//! ```
//!
//! # Determinism: what a workflow may do, and what weft enforces
//!
//! This is the one statement of the rules (the README links here). A
//! workflow's code runs again from the top whenever its run is resumed —
//! after a crash, an eviction, an upgrade — and every call it makes to the
//! host must then match the journal.
//!
//! A workflow **may**:
//! - read the clock ([`Context::now_ms`], `std::time::SystemTime::now()`)
//!   and draw randomness ([`Context::random_bytes`], `getrandom`, `rand`):
//!   `wasi:clocks` and `wasi:random` are answered from the journal, so
//!   replay sees the same values. A `std::collections::HashMap` draws its
//!   seed this way too (one journaled `insecure-seed` event per run): use a
//!   `BTreeMap` if you would rather not;
//! - compute freely, keep any state in local variables, and branch on
//!   anything the host answered (activity results, signals, the clock);
//! - wait: [`Context::sleep`], timers, signals, updates, children — a long
//!   wait costs a database row, not memory.
//!
//! A workflow **may not** (and weft enforces it):
//! - touch the filesystem, sockets, environment variables or the network:
//!   a workflow component that imports them is refused at deploy, naming
//!   the imports. Side effects belong in activities;
//! - compute without calling the host for longer than the server's spin
//!   limit, or grow past its memory limit: the run fails saying which;
//! - change what it asks of the host for a run already under way: on
//!   replay, each call is matched by kind and by a digest of its arguments;
//!   a different activity, input, timer or order is a *divergence* and the
//!   run stops `stuck` (never retried in a loop) with a diagnostic such as
//!   ``event 1: journal has activity `effects/echo` with input {"i":"A"},
//!   code asked for activity `effects/echo` with input {"i":"B"}``, until
//!   compatible code is deployed. Use [`Context::patched`] or a new version
//!   for such changes, and check them with `weft replay` or
//!   `weft_testing::TestEnv::replay` before deploying.
//!
//! Threads are not compiled in, and floats give the same results on every
//! machine (NaNs are canonicalised), so the same code and the same answers
//! produce the same calls.
//!
//! # Testing
//!
//! `weft-testing` runs a workflow component in a `cargo test`, with the real
//! engine, mocked activities and a virtual clock that skips over waits:
//! see its crate docs, and `weft new workflow NAME` for a crate that has
//! such a test from the start.
//!
//! # Changing a workflow that has runs in flight
//!
//! Runs stay on the version they started on. To move them, weft replays
//! their journals on the new code and switches only if every recorded call
//! matches. Inside one version, [`Context::patched`] branches between old
//! and new behaviour. Before deploying, check the new build against real
//! journals, offline:
//!
//! ```text
//! weft show RUN --json > journal.json            # or GET /v1/runs/RUN/journal
//! weft replay --journal journal.json --wasm target/wasm32-wasip2/release/my_flow.wasm
//! ```
//!
//! It exits 1 with the first divergence ("event 17: journal has activity
//! `issue-cert`, code asked for sleep 30s") when the code is incompatible.
//!
//! # Building
//!
//! A guest crate is a `cdylib` depending on `weft-sdk`; build it with
//! `cargo build --release --target wasm32-wasip2` (or `cargo component build`)
//! and deploy the `.wasm` with `weft deploy`.

#[doc(hidden)]
pub mod bindings;

mod activity;
mod activity_call;
mod child_call;
mod context;
mod error;
pub mod http;
mod pending;
mod signals;
mod update_call;
mod updates;

pub use activity::{__invoke_activity, __unknown_function, ActivityContext};
pub use activity_call::{ActivityCall, Cancellation, RetryPolicy};
pub use child_call::ChildCall;
pub use context::{Context, LogLevel, ParentClose, RunInfo};
pub use error::{Error, Timeout};
pub use pending::{Handle, Pending, Selected};
pub use signals::SignalReceiver;
pub use update_call::UpdateCall;
pub use updates::{PendingUpdate, Update, UpdateReceiver};

/// A workflow: deterministic code from a typed input to a typed output.
///
/// ```no_run
/// use weft_sdk::{Context, Error, Workflow};
///
/// struct Countdown;
///
/// impl Workflow for Countdown {
///     type Input = u32;
///     type Output = String;
///     fn run(ctx: &Context, seconds: u32) -> Result<String, Error> {
///         ctx.sleep(std::time::Duration::from_secs(seconds.into()))?;
///         Ok("lift-off".to_string())
///     }
/// }
///
/// weft_sdk::workflow!(Countdown);
/// ```
pub trait Workflow {
    /// What a start gives the run (JSON, decoded; kind `bad-input` if it
    /// does not decode).
    type Input: serde::de::DeserializeOwned;
    /// The run's result, encoded as JSON.
    type Output: serde::Serialize;

    /// The workflow's code: run from the top on every resume, so it must
    /// be deterministic (see the crate docs).
    fn run(ctx: &Context, input: Self::Input) -> Result<Self::Output, Error>;
}

#[doc(hidden)]
pub fn __run_workflow<W: Workflow>(
    input: String,
) -> Result<String, bindings::workflow::weft::workflow::types::ErrorInfo> {
    let input: W::Input = serde_json::from_str(&input)
        .map_err(|e| Error::new(weft_contract::kind::BAD_INPUT, e.to_string()))?;
    let output = W::run(&Context::new(), input)?;
    serde_json::to_string(&output)
        .map_err(|e| Error::new(weft_contract::kind::BAD_OUTPUT, e.to_string()).into())
}

/// Export a [`Workflow`] implementation as this component's `run` (one
/// per component).
///
/// ```no_run
/// struct Hello;
/// impl weft_sdk::Workflow for Hello {
///     type Input = String;
///     type Output = String;
///     fn run(_: &weft_sdk::Context, name: String) -> Result<String, weft_sdk::Error> {
///         Ok(format!("hello, {name}"))
///     }
/// }
/// weft_sdk::workflow!(Hello);
/// ```
#[macro_export]
macro_rules! workflow {
    ($workflow:ty) => {
        #[doc(hidden)]
        pub struct __WeftWorkflowExport;

        impl $crate::bindings::workflow::Guest for __WeftWorkflowExport {
            fn run(
                input: ::std::string::String,
            ) -> ::core::result::Result<
                ::std::string::String,
                $crate::bindings::workflow::weft::workflow::types::ErrorInfo,
            > {
                $crate::__run_workflow::<$workflow>(input)
            }
        }

        $crate::bindings::workflow::export_workflow!(
            __WeftWorkflowExport with_types_in $crate::bindings::workflow
        );
    };
}

/// Export activity functions, each `fn(&ActivityContext, In) -> Result<Out, Error>`
/// with serde `In`/`Out`, under the names a workflow calls them by.
///
/// ```no_run
/// use weft_sdk::{ActivityContext, Error};
///
/// fn create(_: &ActivityContext, name: String) -> Result<String, Error> {
///     Ok(format!("record-{name}"))
/// }
/// fn delete(_: &ActivityContext, id: String) -> Result<(), Error> {
///     Ok(())
/// }
///
/// // In a component named `dns`: workflows call "dns/create" and "dns/delete".
/// weft_sdk::activities! {
///     "create" => create,
///     "delete" => delete,
/// }
/// ```
#[macro_export]
macro_rules! activities {
    ($($name:literal => $function:path),+ $(,)?) => {
        #[doc(hidden)]
        pub struct __WeftActivityExport;

        impl $crate::bindings::activity::Guest for __WeftActivityExport {
            fn invoke(
                function: ::std::string::String,
                input: ::std::string::String,
                idempotency_key: ::std::string::String,
            ) -> ::core::result::Result<
                ::std::string::String,
                $crate::bindings::activity::weft::workflow::types::ErrorInfo,
            > {
                let ctx = $crate::ActivityContext::new(idempotency_key);
                match function.as_str() {
                    $($name => $crate::__invoke_activity(&ctx, &input, $function),)+
                    other => ::core::result::Result::Err(
                        $crate::__unknown_function(other, &[$($name),+]),
                    ),
                }
            }
        }

        $crate::bindings::activity::export_activity!(
            __WeftActivityExport with_types_in $crate::bindings::activity
        );
    };
}
