//! What the server process costs while the bench drives it: processor time
//! and resident memory read from `/proc`, and fsync-family system calls
//! counted by `strace` attached to it for one phase.

use anyhow::{Context as _, bail};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Clock ticks per second in `/proc/PID/stat` (USER_HZ: 100 on Linux,
/// whatever the kernel's own tick rate).
const TICKS_PER_SEC: f64 = 100.0;

/// The server process, read from `/proc`.
pub struct Meter {
    pid: u32,
}

impl Meter {
    pub fn new(pid: u32) -> Meter {
        Meter { pid }
    }

    /// User plus system processor time of all its threads so far, in ms
    /// (10 ms resolution).
    pub fn cpu_ms(&self) -> anyhow::Result<f64> {
        let path = format!("/proc/{}/stat", self.pid);
        let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        // The command name may hold spaces: the fields start after its `)`.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        // Fields 14 and 15 of stat(5) (utime, stime), counted from `state` (3).
        let ticks = |i: usize| -> anyhow::Result<f64> {
            Ok(fields
                .get(i)
                .with_context(|| format!("{path} is shorter than expected"))?
                .parse::<f64>()?)
        };
        Ok((ticks(11)? + ticks(12)?) * 1000.0 / TICKS_PER_SEC)
    }

    /// Resident memory now, in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let path = format!("/proc/{}/status", self.pid);
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .with_context(|| format!("no VmRSS in {path}"))
    }

    /// Its resident memory by what the pages map.
    pub fn memory_map(&self) -> anyhow::Result<MemoryMap> {
        let path = format!("/proc/{}/smaps", self.pid);
        let smaps =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        let exe = std::fs::read_link(format!("/proc/{}/exe", self.pid))?;
        Ok(MemoryMap::parse(&smaps, &exe.to_string_lossy()))
    }
}

/// Where a process's resident memory is, from `/proc/PID/smaps`, in KiB.
#[derive(Debug, Default, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MemoryMap {
    /// The executable's own pages (its code, mostly).
    pub binary: u64,
    /// Other files mapped: shared libraries, SQLite's shared-memory index.
    pub files: u64,
    /// wasmtime's copy-on-write images of the modules' initial memories.
    pub wasm_images: u64,
    /// Everything else: the heap, thread stacks, instance slots.
    pub anonymous: u64,
    /// The proportional set size: a page mapped n times (a memory image
    /// in each instance slot that used it, code shared with another
    /// process) counts 1/n each time, where RSS counts it n times.
    pub proportional: u64,
}

/// Several servers' maps, summed part by part.
impl std::ops::AddAssign for MemoryMap {
    fn add_assign(&mut self, other: MemoryMap) {
        self.binary += other.binary;
        self.files += other.files;
        self.wasm_images += other.wasm_images;
        self.anonymous += other.anonymous;
        self.proportional += other.proportional;
    }
}

impl MemoryMap {
    /// Sum the `Rss:` of each mapping by what it maps; `exe` is the
    /// executable's path.
    fn parse(smaps: &str, exe: &str) -> MemoryMap {
        let mut map = MemoryMap::default();
        let mut kind: Option<&str> = None;
        // A field's value: `Rss:    20000 kB`.
        let kib = |value: &str| -> u64 {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(0)
        };
        for line in smaps.lines() {
            if let Some(value) = line.strip_prefix("Pss:") {
                map.proportional += kib(value);
                continue;
            }
            if let Some(value) = line.strip_prefix("Rss:") {
                *match kind {
                    Some(path) if path == exe => &mut map.binary,
                    Some(path) if path.starts_with("/memfd:wasm-memory-image") => {
                        &mut map.wasm_images
                    }
                    Some(path) if path.starts_with('/') => &mut map.files,
                    _ => &mut map.anonymous,
                } += kib(value);
                continue;
            }
            // A mapping's header: range, perms, offset, device, inode, path.
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() >= 5 && !fields[0].ends_with(':') && fields[0].contains('-') {
                kind = fields.get(5).copied();
            }
        }
        map
    }
}

/// `strace -c` attached to the server for one phase, counting the calls
/// that reach the disk's cache flush.
pub struct SyncCounter {
    strace: Child,
    summary: PathBuf,
}

impl SyncCounter {
    /// Attach to every thread of `pid`; `None` (and why) when strace is
    /// not installed or may not attach.
    pub fn attach(pid: u32) -> anyhow::Result<Result<SyncCounter, String>> {
        let summary = std::env::temp_dir().join(format!("weft-bench-strace-{pid}.txt"));
        let spawned = Command::new("strace")
            .args(["-f", "-qq", "-c", "-e"])
            .arg("trace=fsync,fdatasync,sync_file_range,syncfs")
            .arg("-o")
            .arg(&summary)
            .args(["-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut strace = match spawned {
            Ok(child) => child,
            Err(e) => return Ok(Err(format!("strace: {e}"))),
        };
        // Attaching to each thread takes a moment; calls before it are missed.
        std::thread::sleep(Duration::from_millis(300));
        if let Some(status) = strace.try_wait()? {
            return Ok(Err(format!("strace could not attach ({status})")));
        }
        Ok(Ok(SyncCounter { strace, summary }))
    }

    /// Detach and answer how many fsync-family calls the phase made.
    pub fn finish(mut self) -> anyhow::Result<u64> {
        // SIGINT makes strace detach and write its summary.
        let pid = self.strace.id().to_string();
        Command::new("kill").args(["-INT", &pid]).status()?;
        self.strace.wait()?;
        let text = std::fs::read_to_string(&self.summary)
            .with_context(|| format!("strace wrote no {}", self.summary.display()))?;
        let _ = std::fs::remove_file(&self.summary);
        parse_calls(&text)
    }
}

/// The `calls` column of `strace -c`'s `total` line (no line: no calls).
fn parse_calls(summary: &str) -> anyhow::Result<u64> {
    let Some(total) = summary
        .lines()
        .find(|l| l.split_whitespace().last() == Some("total"))
    else {
        return Ok(0);
    };
    let columns: Vec<&str> = total.split_whitespace().collect();
    match columns.as_slice() {
        [_, _, _, calls, ..] => Ok(calls.parse()?),
        _ => bail!("strace's summary has an unexpected total line: {total}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_total_line_of_strace_c() {
        let summary = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 97.10    0.120000          50      2400           fdatasync
  2.90    0.003580          35       102           fsync
------ ----------- ----------- --------- --------- ----------------
100.00    0.123580          49      2502           total
";
        assert_eq!(parse_calls(summary).unwrap(), 2502);
        assert_eq!(parse_calls("").unwrap(), 0);
    }

    #[test]
    fn sums_smaps_by_what_is_mapped() {
        let smaps = "\
55d0c0000000-55d0c2000000 r-xp 00000000 fe:01 1234 /opt/weft/bin/weft
Size:              32768 kB
Rss:               20000 kB
Pss:               20000 kB
7f0000000000-7f0000100000 rw-s 00000000 00:01 99 /memfd:wasm-memory-image (deleted)
Rss:                 512 kB
7f0000200000-7f0000300000 r--p 00000000 fe:01 77 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                 900 kB
7f0000400000-7f0000600000 rw-p 00000000 00:00 0
Rss:                2048 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
Rss:                  32 kB
VmFlags: rd wr mr mw me gd ac
";
        let map = MemoryMap::parse(smaps, "/opt/weft/bin/weft");
        assert_eq!(
            map,
            MemoryMap {
                binary: 20000,
                files: 900,
                wasm_images: 512,
                anonymous: 2080,
                proportional: 20000,
            }
        );
    }

    #[test]
    fn reads_this_process() {
        let me = Meter::new(std::process::id());
        assert!(me.rss_kib().unwrap() > 0);
        let map = me.memory_map().unwrap();
        assert!(map.binary > 0 && map.anonymous > 0, "{map:?}");
        assert!(me.cpu_ms().unwrap() >= 0.0);
    }
}
