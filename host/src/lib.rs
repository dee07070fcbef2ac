//! weft: a durable-execution host for workflows compiled to WebAssembly
//! components.
//!
//! Data flows one way: [`api`] (HTTP) → [`runtime`] (which runs are
//! resident, timers, activities) → [`engine`] (wasmtime; where host calls
//! are journaled and runs resumed) → [`writes`] (what each write means,
//! group commit, a run's sink) → [`store`] (storage primitives; SQLite)
//! and [`journal`] (event kinds, replay: pure).

/// Write a client command's output to stdout. When the reader went away
/// (`weft runs | head`), the command ends quietly, as Unix tools do,
/// instead of panicking on the write.
pub fn emit(text: std::fmt::Arguments) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(text).and_then(|_| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        panic!("cannot write to stdout: {e}");
    }
}

/// `println!` through [`emit`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::emit(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub mod api;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod engine;
pub mod error;
pub mod journal;
#[cfg(test)]
mod layers;
pub mod metrics;
pub mod offline;
pub mod profiles;
pub mod query;
pub mod runtime;
pub mod server;
pub mod server_process;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod writes;

/// Where `weft serve` listens unless told otherwise, and where the client
/// commands look for it.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7411";
