//! The host's own wall clock (journal timestamps, wake-up times, the live
//! answers to a workflow's clock reads): in one place.

use std::time::{SystemTime, UNIX_EPOCH};

fn since_epoch() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    since_epoch().as_millis() as i64
}

/// Nanoseconds since the Unix epoch.
pub fn now_nanos() -> u64 {
    since_epoch().as_nanos() as u64
}
