//! The WASI a workflow gets: stdio (captured), an empty environment and no
//! arguments, a filesystem with nothing preopened (so no file can be
//! opened: the preview-1 adapter of `cargo component` imports it whether
//! or not the code uses it), and clocks and randomness answered from the
//! journal. Nothing else is linked, so a workflow that imports sockets or
//! HTTP is refused.

use super::workflow::WorkflowState;
use crate::journal::Source;
use wasmtime::component::{HasSelf, Linker, Resource};
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemCtxView, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random};
use wasmtime_wasi_io::poll::DynPollable;

pub fn workflow_linker(engine: &wasmtime::Engine) -> anyhow::Result<Linker<WorkflowState>> {
    let mut l = Linker::new(engine);
    wasmtime_wasi_io::add_to_linker_async(&mut l)?;
    fn g(t: &mut WorkflowState) -> wasmtime_wasi::cli::WasiCliCtxView<'_> {
        t.cli()
    }
    cli::exit::add_to_linker::<_, WasiCli>(&mut l, g)?;
    cli::environment::add_to_linker::<_, WasiCli>(&mut l, g)?;
    cli::stdin::add_to_linker::<_, WasiCli>(&mut l, g)?;
    cli::stdout::add_to_linker::<_, WasiCli>(&mut l, g)?;
    cli::stderr::add_to_linker::<_, WasiCli>(&mut l, g)?;
    cli::terminal_input::add_to_linker::<_, WasiCli>(&mut l, g)?;
    cli::terminal_output::add_to_linker::<_, WasiCli>(&mut l, g)?;
    cli::terminal_stdin::add_to_linker::<_, WasiCli>(&mut l, g)?;
    cli::terminal_stdout::add_to_linker::<_, WasiCli>(&mut l, g)?;
    cli::terminal_stderr::add_to_linker::<_, WasiCli>(&mut l, g)?;
    fn fs(t: &mut WorkflowState) -> WasiFilesystemCtxView<'_> {
        t.filesystem()
    }
    filesystem::types::add_to_linker::<_, WasiFilesystem>(&mut l, fs)?;
    filesystem::preopens::add_to_linker::<_, WasiFilesystem>(&mut l, fs)?;
    fn me(t: &mut WorkflowState) -> &mut WorkflowState {
        t
    }
    clocks::wall_clock::add_to_linker::<_, HasSelf<_>>(&mut l, me)?;
    clocks::monotonic_clock::add_to_linker::<_, HasSelf<_>>(&mut l, me)?;
    random::random::add_to_linker::<_, HasSelf<_>>(&mut l, me)?;
    random::insecure::add_to_linker::<_, HasSelf<_>>(&mut l, me)?;
    random::insecure_seed::add_to_linker::<_, HasSelf<_>>(&mut l, me)?;
    super::bindings::workflow::Workflow::add_to_linker::<_, HasSelf<_>>(&mut l, me)?;
    super::bindings::v0_1::workflow::Workflow::add_to_linker::<_, HasSelf<_>>(&mut l, me)?;
    Ok(l)
}

const NANOS: u64 = 1_000_000_000;

fn not_durable() -> wasmtime::Error {
    wasmtime::Error::msg(
        "a workflow cannot block on a WASI clock (std::thread::sleep and the like are not \
         durable): use ctx.sleep",
    )
}

impl clocks::wall_clock::Host for WorkflowState {
    fn now(&mut self) -> wasmtime::Result<clocks::wall_clock::Datetime> {
        let nanos = self.clock(Source::WallClock)?;
        Ok(clocks::wall_clock::Datetime {
            seconds: nanos / NANOS,
            nanoseconds: (nanos % NANOS) as u32,
        })
    }

    fn resolution(&mut self) -> wasmtime::Result<clocks::wall_clock::Datetime> {
        Ok(clocks::wall_clock::Datetime {
            seconds: 0,
            nanoseconds: 1,
        })
    }
}

impl clocks::monotonic_clock::Host for WorkflowState {
    fn now(&mut self) -> wasmtime::Result<u64> {
        self.clock(Source::MonotonicClock)
    }

    fn resolution(&mut self) -> wasmtime::Result<u64> {
        Ok(1)
    }

    fn subscribe_instant(&mut self, _when: u64) -> wasmtime::Result<Resource<DynPollable>> {
        Err(not_durable())
    }

    fn subscribe_duration(&mut self, _duration: u64) -> wasmtime::Result<Resource<DynPollable>> {
        Err(not_durable())
    }
}

fn u64_of(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(buf)
}

impl random::random::Host for WorkflowState {
    fn get_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        self.random(Source::Random, len)
    }

    fn get_random_u64(&mut self) -> wasmtime::Result<u64> {
        Ok(u64_of(&self.random(Source::Random, 8)?))
    }
}

impl random::insecure::Host for WorkflowState {
    fn get_insecure_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        self.random(Source::Insecure, len)
    }

    fn get_insecure_random_u64(&mut self) -> wasmtime::Result<u64> {
        Ok(u64_of(&self.random(Source::Insecure, 8)?))
    }
}

impl random::insecure_seed::Host for WorkflowState {
    fn insecure_seed(&mut self) -> wasmtime::Result<(u64, u64)> {
        let bytes = self.random(Source::InsecureSeed, 16)?;
        Ok((u64_of(&bytes[..8]), u64_of(&bytes[8..])))
    }
}
