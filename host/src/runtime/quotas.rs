//! A namespace's limits, applied where its work enters: starts (open runs,
//! the start rate, shared by the live nodes; the input's size) and signals (the payload's size). The
//! limits are read from the store and cached briefly, so a change made on
//! any node applies everywhere within a few seconds.

use super::Runtime;
use crate::error::{Error, Result};
use crate::store::Limits;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a namespace's limits are used before they are read again.
const FRESH_FOR: Duration = Duration::from_secs(2);

/// Limits as last read, and each namespace's start bucket.
#[derive(Default)]
pub(super) struct Quotas {
    read: Mutex<HashMap<String, (Instant, Limits)>>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// A token bucket: `tokens` refill at the rate up to the burst.
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Runtime {
    /// The limits of `namespace` (none for one that does not exist).
    pub async fn limits(&self, namespace: &str) -> Result<Limits> {
        if let Some((at, limits)) = self.quotas.read.lock().unwrap().get(namespace)
            && at.elapsed() < FRESH_FOR
        {
            return Ok(limits.clone());
        }
        let limits = self
            .store
            .access()
            .namespace(namespace)
            .await?
            .map(|n| n.limits)
            .unwrap_or_default();
        self.quotas
            .read
            .lock()
            .unwrap()
            .insert(namespace.to_string(), (Instant::now(), limits.clone()));
        Ok(limits)
    }

    /// A changed namespace's limits apply here at once.
    pub fn forget_limits(&self, namespace: &str) {
        self.quotas.read.lock().unwrap().remove(namespace);
    }

    /// 413 if `payload` is larger than `namespace` allows.
    pub(super) fn check_payload(
        &self,
        limits: &Limits,
        namespace: &str,
        what: &str,
        payload: &Value,
    ) -> Result<()> {
        if let Some(max) = limits.max_payload_bytes {
            let size = payload.to_string().len() as u64;
            if size > max {
                return Err(Error::TooLarge(format!(
                    "the {what} is {size} bytes; namespace `{namespace}` allows {max} (max_payload_bytes)"
                )));
            }
        }
        Ok(())
    }

    /// Whether `namespace` may hold one more open run (a start's, a child's).
    pub(super) async fn open_runs_left(&self, limits: &Limits, namespace: &str) -> Result<()> {
        if let Some(max) = limits.max_open_runs {
            let open = self.store.open_run_count(namespace).await?;
            if open >= max {
                return Err(Error::QuotaExceeded(format!(
                    "namespace `{namespace}` has {open} open runs, its limit (max_open_runs {max}); \
                     end some first"
                )));
            }
        }
        Ok(())
    }

    /// Admit one start in `namespace`: its open runs and its start rate.
    /// (Children count against the open runs only: the rate is of
    /// requests.)
    pub(super) async fn admit_start(&self, limits: &Limits, namespace: &str) -> Result<()> {
        self.open_runs_left(limits, namespace).await?;
        if let Some(limit) = limits.starts_per_second.filter(|r| *r > 0.0) {
            // The rate is the cluster's: each of n nodes admits an n-th
            // (exact when requests are spread evenly, as a balancer does).
            let nodes = self.membership.nodes_alive() as f64;
            let rate = limit / nodes;
            let burst = limits.start_burst.map_or(limit.max(1.0), |b| b as f64);
            let burst = (burst / nodes).max(1.0);
            let mut buckets = self.quotas.buckets.lock().unwrap();
            let bucket = buckets.entry(namespace.to_string()).or_insert(Bucket {
                tokens: burst,
                at: Instant::now(),
            });
            let now = Instant::now();
            bucket.tokens =
                (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(burst);
            bucket.at = now;
            if bucket.tokens < 1.0 {
                let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / rate);
                return Err(Error::RateLimited {
                    message: format!(
                        "namespace `{namespace}` starts at most {limit} runs a second (starts_per_second){}; retry in {} ms",
                        if nodes > 1.0 {
                            format!(", {rate:.2} through each of {nodes} nodes")
                        } else {
                            String::new()
                        },
                        wait.as_millis()
                    ),
                    retry_after: wait,
                });
            }
            bucket.tokens -= 1.0;
        }
        Ok(())
    }
}
