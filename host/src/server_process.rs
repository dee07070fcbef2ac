//! A `weft serve` child process on a free loopback port: what `weft bench`
//! and the end-to-end tests both start.

use anyhow::{Context as _, bail};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a server may take to print where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct ServerProcess {
    child: Child,
    /// `host:port` it listens on.
    pub addr: String,
}

impl ServerProcess {
    /// Start `exe serve` on `db` (a SQLite path or a Postgres URL) with
    /// `args`, logging at `log_filter` to `stderr`; answers once it listens.
    pub fn start(
        exe: &Path,
        db: &OsStr,
        args: &[String],
        log_filter: &str,
        stderr: Stdio,
    ) -> anyhow::Result<ServerProcess> {
        let mut child = Command::new(exe)
            .arg("serve")
            .arg("--db")
            .arg(db)
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", log_filter)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {} serve", exe.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        // The first line says where it listens; the rest is drained so the
        // server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = rx.recv_timeout(START_TIMEOUT).ok();
        match line
            .as_deref()
            .and_then(|l| l.strip_prefix("weft listening on "))
            .and_then(|url| {
                url.strip_prefix("http://")
                    .or_else(|| url.strip_prefix("https://"))
            }) {
            Some(addr) => Ok(ServerProcess {
                addr: addr.to_string(),
                child,
            }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the server did not start (its first line: {line:?})")
            }
        }
    }
}

impl ServerProcess {
    /// The process id, for signals.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has exited (reaping it if so).
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ServerProcess {
    /// SIGKILL: no shutdown code runs (a test's kill -9).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
