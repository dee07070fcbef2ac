//! The simulated cloud's state: cells, namespaces, certificates, DNS,
//! ingress, and the log of everything that happened (messages, upgrades).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What the tests and the demo inject.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Share of API calls answered 503 before doing anything.
    pub failure_rate: f64,
    /// Added to every API call.
    pub latency_ms: u64,
    /// How long a certificate takes to be issued.
    pub cert_delay_ms: u64,
    /// How long a DNS record takes to become visible.
    pub dns_delay_ms: u64,
    /// Cells whose canary fails.
    pub failing_canaries: BTreeSet<String>,
    /// Regions whose endpoints never answer.
    pub dead_regions: BTreeSet<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    pub name: String,
    pub region: String,
    pub capacity: u32,
    pub load: u32,
    /// Service → version.
    pub versions: BTreeMap<String, String>,
    /// Whatever the cell's entity workflow keeps here.
    pub state: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct Namespace {
    pub name: String,
    pub region: String,
    pub cell: String,
    pub roles: Vec<String>,
    pub routed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Certificate {
    pub id: String,
    pub namespace: String,
    pub ready_at_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DnsRecord {
    pub name: String,
    pub target: String,
    pub visible_at_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    /// `chat` or `page`.
    pub kind: String,
    pub channel: String,
    pub text: String,
    #[serde(default)]
    pub at_ms: i64,
}

/// One service actually moved to another version.
#[derive(Debug, Clone, Serialize)]
pub struct Upgrade {
    pub cell: String,
    pub service: String,
    pub from: String,
    pub to: String,
    pub at_ms: i64,
}

#[derive(Default)]
pub struct State {
    pub faults: Faults,
    pub cells: BTreeMap<String, Cell>,
    pub namespaces: BTreeMap<String, Namespace>,
    pub certs: BTreeMap<String, Certificate>,
    pub dns: BTreeMap<String, DnsRecord>,
    pub messages: Vec<Message>,
    pub upgrades: Vec<Upgrade>,
    /// Idempotency keys of requests already applied.
    pub applied: HashSet<String>,
    pub calls: u64,
    pub injected_failures: u64,
    rng: u64,
}

impl State {
    /// xorshift: enough randomness to fail a share of calls.
    pub fn roll(&mut self) -> f64 {
        if self.rng == 0 {
            self.rng = (now_ms() as u64) | 1;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Whether a namespace's endpoints answer: DNS visible, certificate
    /// issued, route configured, region alive.
    pub fn endpoint_ready(&self, namespace: &str) -> Result<(), String> {
        let now = now_ms();
        let ns = self
            .namespaces
            .get(namespace)
            .ok_or_else(|| format!("no namespace {namespace}"))?;
        if self.faults.dead_regions.contains(&ns.region) {
            return Err(format!("region {} does not answer", ns.region));
        }
        if !ns.routed {
            return Err("no ingress route".into());
        }
        let issued = self
            .certs
            .values()
            .any(|c| c.namespace == namespace && c.ready_at_ms <= now);
        if !issued {
            return Err("no issued certificate".into());
        }
        let visible = self
            .dns
            .values()
            .any(|d| d.name.starts_with(&format!("{namespace}.")) && d.visible_at_ms <= now);
        if !visible {
            return Err("DNS has not propagated".into());
        }
        Ok(())
    }
}
