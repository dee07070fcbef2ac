//! What an embedder (a test harness) adds to the runtime: activities
//! written as Rust functions in this process, and a reading of what is
//! under way, so a harness with virtual time moves the clock only when
//! nothing could progress without it.

use super::Runtime;
use crate::journal::ErrorInfo;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One call of a native activity: an attempt, as a component would see it.
#[derive(Debug, Clone)]
pub struct NativeCall {
    /// The name the workflow scheduled, e.g. `cloud/create-record`.
    pub name: String,
    pub input: Value,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub run_id: String,
    pub workflow_id: String,
    /// Identical for every attempt of one scheduled activity.
    pub idempotency_key: String,
}

/// An activity implemented in Rust in this process, in place of a deployed
/// component: its retries, backoff and journal are the executor's as for
/// any activity.
pub type NativeActivity = Arc<dyn Fn(NativeCall) -> Result<Value, ErrorInfo> + Send + Sync>;

/// What is under way in a runtime. Equal readings a few milliseconds apart,
/// with nothing executing, mean every run waits on the clock or on
/// someone outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnderWay {
    /// Executions not waiting (resident runs minus those parked in an await).
    pub executing: usize,
    /// Runtime tasks under way: activities not waiting for their backoff
    /// or a deploy, what follows an execution, an update's caller woken.
    pub tasks: usize,
    /// Guest work woken or running (a parked run its activity's end just
    /// woke counts here before it leaves its await).
    pub guests: usize,
    /// Writes queued and not yet committed.
    pub unwritten: u64,
    /// Writes committed so far (it moves while anything progresses).
    pub written: u64,
}

impl UnderWay {
    /// Nothing executing, attempting or waiting to be written.
    pub fn still(&self) -> bool {
        self.executing == 0 && self.tasks == 0 && self.guests == 0 && self.unwritten == 0
    }
}

/// Counts a runtime task as under way while it lives (an activity's is
/// dropped around its waits on the clock).
pub(super) struct Busy(Arc<AtomicUsize>);

impl Busy {
    pub(super) fn new(count: &Arc<AtomicUsize>) -> Busy {
        count.fetch_add(1, Ordering::SeqCst);
        Busy(count.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Runtime {
    /// Run activity `name` in this process with `f`: a full name
    /// (`cloud/create-record`) or a component's (`cloud`: every function of
    /// it). It takes precedence over a deployed component of that name.
    pub fn register_native_activity(&self, name: &str, f: NativeActivity) {
        self.native.lock().unwrap().insert(name.to_string(), f);
    }

    /// The native activity that runs `name`, if one is registered.
    pub(super) fn native_activity(&self, name: &str) -> Option<NativeActivity> {
        let native = self.native.lock().unwrap();
        let component = name.split_once('/').map_or(name, |(c, _)| c);
        native.get(name).or_else(|| native.get(component)).cloned()
    }

    /// What is under way now.
    pub fn under_way(&self) -> UnderWay {
        let stats = self.writer.stats();
        let written = stats.ops.load(Ordering::SeqCst);
        let parked = self.engine.parked.load(Ordering::SeqCst);
        UnderWay {
            executing: self.resident_count().saturating_sub(parked),
            tasks: self.tasks.load(Ordering::SeqCst),
            guests: self.engine.cpu.busy(),
            unwritten: stats.queued.load(Ordering::SeqCst).saturating_sub(written),
            written,
        }
    }
}
