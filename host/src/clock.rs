//! The host's own wall clock (journal timestamps, wake-up times, the live
//! answers to a workflow's clock reads) and its waits: in one place, so a
//! test harness can move time forward (`skip_to`) and every wait on it —
//! durable timers, a resident run's timer, an activity's backoff — ends as
//! if that time had passed. A server never skips: its clock is the system's.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// How far this process's clock is ahead of the system's, in ms (0 unless
/// a test harness skipped time).
static SKIPPED_MS: AtomicI64 = AtomicI64::new(0);

/// Bumped on every skip: waits look at the clock again.
static SKIPS: LazyLock<watch::Sender<u64>> = LazyLock::new(|| watch::Sender::new(0));

/// When each wait under way ends (ms since the epoch → how many end then).
static WAITS: LazyLock<Mutex<BTreeMap<i64, usize>>> = LazyLock::new(Mutex::default);

fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    since_epoch().as_millis() as i64 + SKIPPED_MS.load(Ordering::Relaxed)
}

/// Nanoseconds since the Unix epoch.
pub fn now_nanos() -> u64 {
    let skipped = SKIPPED_MS.load(Ordering::Relaxed).max(0) as u64;
    since_epoch().as_nanos() as u64 + skipped * 1_000_000
}

/// A wait's place in [`WAITS`] while it lasts.
struct Waiting(i64);

impl Waiting {
    fn new(at_ms: i64) -> Waiting {
        *WAITS.lock().unwrap().entry(at_ms).or_default() += 1;
        Waiting(at_ms)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut waits = WAITS.lock().unwrap();
        if let Some(n) = waits.get_mut(&self.0) {
            *n -= 1;
            if *n == 0 {
                waits.remove(&self.0);
            }
        }
    }
}

/// Wait until the clock reads `at_ms` (at once if it is past).
pub async fn sleep_until_ms(at_ms: i64) {
    let _waiting = Waiting::new(at_ms);
    let mut skips = SKIPS.subscribe();
    loop {
        let left = at_ms - now_ms();
        if left <= 0 {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(left as u64)) => {}
            _ = skips.changed() => {}
        }
    }
}

/// Wait for `d` on this clock.
pub async fn sleep(d: Duration) {
    sleep_until_ms(now_ms().saturating_add(d.as_millis() as i64)).await
}

/// When the earliest wait under way ends, if any wait is under way.
pub fn next_wait_end_ms() -> Option<i64> {
    WAITS.lock().unwrap().keys().next().copied()
}

/// Move this process's clock forward to `at_ms` (never back): every wait
/// that ends by then ends now. For test harnesses (virtual time); a server
/// never calls it.
pub fn skip_to(at_ms: i64) {
    let ahead = at_ms - now_ms();
    if ahead > 0 {
        SKIPPED_MS.fetch_add(ahead, Ordering::Relaxed);
    }
    SKIPS.send_modify(|n| *n += 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No skip here: the clock is the process's, shared with other unit
    /// tests (the harness's own tests skip, in a process of their own).
    #[tokio::test]
    async fn a_wait_is_listed_while_it_lasts() {
        let at = now_ms() + 86_400_000 * 365;
        let wait = tokio::spawn(sleep_until_ms(at));
        while !WAITS.lock().unwrap().contains_key(&at) {
            tokio::task::yield_now().await;
        }
        wait.abort();
        let _ = wait.await;
        assert!(!WAITS.lock().unwrap().contains_key(&at));
    }
}
