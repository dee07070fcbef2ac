//! weft: a durable-execution host for workflows compiled to WebAssembly
//! components.
//!
//! Data flows one way: [`api`] (HTTP) → [`scheduler`] (which runs are
//! resident, timers, activities) → [`engine`] (wasmtime; where host calls
//! are journaled and runs resumed) → [`writes`] (what each write means,
//! group commit, a run's sink) → [`store`] (storage primitives; SQLite)
//! and [`journal`] (event kinds, replay: pure).

pub mod api;
pub mod bench;
pub mod cli;
pub mod engine;
pub mod error;
pub mod journal;
pub mod replay;
pub mod scheduler;
pub mod server;
pub mod store;
pub mod writes;

/// Where `weft serve` listens unless told otherwise, and where the client
/// commands look for it.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7411";
