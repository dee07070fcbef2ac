//! The kinds of journal events. One run's journal is an ordered list of these;
//! the guest-visible ones ("commands" and "completions") are matched on
//! replay, the informational ones are skipped.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::failure::{ErrorInfo, Failure};
use super::options::{ActivityOptions, ParentClose, RetryPolicy};

/// Which guest call drew a clock reading or random bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// `weft:workflow/context`
    Context,
    /// `wasi:clocks/wall-clock`
    WallClock,
    /// `wasi:clocks/monotonic-clock`
    MonotonicClock,
    /// `wasi:random/random`
    Random,
    /// `wasi:random/insecure`
    Insecure,
    /// `wasi:random/insecure-seed`
    InsecureSeed,
}

/// One journal event. Serialized as `{"kind": "...", ...fields}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Event {
    /// Always event 0 of a run.
    Started {
        workflow: String,
        version: u32,
        digest: String,
        workflow_id: String,
        input: Value,
        /// The W3C trace context the run's spans continue (the start
        /// request's, or its parent run's), when it was traced.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        traceparent: Option<String>,
    },
    /// A clock reading, in nanoseconds (wall: since the Unix epoch).
    Clock {
        source: Source,
        nanos: u64,
    },
    /// Random bytes, hex-encoded.
    Random {
        source: Source,
        hex: String,
    },
    ActivityScheduled {
        handle: u32,
        name: String,
        input: Value,
        options: ActivityOptions,
    },
    /// Informational: one failed attempt, and when the next one is due.
    ActivityAttemptFailed {
        handle: u32,
        attempt: u32,
        failure: Failure,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_in_ms: Option<u64>,
    },
    /// Informational: the newest heartbeat details of activity `handle`'s
    /// attempt (stored at most every few seconds, and before a failed
    /// attempt's retry), which its next attempt resumes from.
    ActivityHeartbeat {
        handle: u32,
        attempt: u32,
        details: Value,
    },
    /// The workflow asked for the activity or child run of `handle` to be
    /// cancelled.
    CancelRequested {
        handle: u32,
    },
    /// Informational: child run `child_run_id` of `handle` failed with
    /// `failure` and its retry policy started `next_run_id` (attempt
    /// `attempt` + 1) under the same workflow id.
    ChildAttemptFailed {
        handle: u32,
        attempt: u32,
        child_run_id: String,
        failure: Failure,
        next_run_id: String,
    },
    /// Informational: activity `handle`, told of its cancellation, ended.
    ActivityCancelled {
        handle: u32,
    },
    /// Informational: no activity component of that name is deployed; the
    /// activity waits for one (within its schedule-to-close timeout and the
    /// run's deadline), so workflows and activities deploy in any order.
    ActivityAwaitingDeployment {
        handle: u32,
        component: String,
    },
    /// Informational: activity `handle` finished before its await took it
    /// (while the run was paused, or beside another activity's result in
    /// one commit). Its outcome (`output` or `failure`) is kept for that
    /// await: the activity is not run again, and the await needs no
    /// commit of its own.
    ActivityHeld {
        handle: u32,
        attempts: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure: Option<Failure>,
    },
    /// Informational: an operator paused the run; it takes no step until
    /// `unpaused`.
    Paused {
        reason: String,
    },
    /// Informational: an operator unpaused the run.
    Unpaused {
        reason: String,
    },
    /// Informational, the last event of a run that was reset: run
    /// `new_run_id` carries on from before its event `event`.
    Reset {
        event: u64,
        new_run_id: String,
        reason: String,
    },
    /// Informational: this run was made by resetting `run_id` to its event
    /// `event`; the events before this one are that run's (before `event`),
    /// replayed, and it continues live from here.
    ResetFrom {
        run_id: String,
        event: u64,
        reason: String,
    },
    ActivityCompleted {
        handle: u32,
        attempts: u32,
        output: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        select: Option<Vec<u32>>,
    },
    ActivityFailed {
        handle: u32,
        attempts: u32,
        failure: Failure,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        select: Option<Vec<u32>>,
    },
    TimerStarted {
        handle: u32,
        duration_ms: u64,
        fire_at_ms: u64,
    },
    TimerFired {
        handle: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        select: Option<Vec<u32>>,
    },
    /// A signal consumed by awaiting a `receive-signal` handle.
    SignalReceived {
        handle: u32,
        name: String,
        signal_id: i64,
        payload: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        select: Option<Vec<u32>>,
    },
    /// An update consumed by awaiting a `receive-update` handle, and
    /// accepted: the workflow went on with it (one it refused at once was
    /// never journaled).
    UpdateAccepted {
        handle: u32,
        name: String,
        update_id: String,
        input: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        select: Option<Vec<u32>>,
    },
    /// The answer to the update accepted through `handle`: `output`, or
    /// the handler's `error`.
    UpdateCompleted {
        handle: u32,
        update_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<ErrorInfo>,
    },
    /// An update asked of the open run of `workflow_id` (with `start`:
    /// started under that id first if none was open), as `update_id`.
    UpdateSent {
        handle: u32,
        workflow_id: String,
        name: String,
        update_id: String,
        payload: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start: Option<StartSpec>,
    },
    /// The answer to the update sent through `handle`: the handler's
    /// `output`, or an `error` (its own, a rejection, or no run to take it).
    UpdateAnswered {
        handle: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<ErrorInfo>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        select: Option<Vec<u32>>,
    },
    /// A child run started (`child_run_id`), or could not be (`error`).
    ChildStarted {
        handle: u32,
        workflow: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workflow_id: Option<String>,
        input: Value,
        parent_close: ParentClose,
        /// The child run's deadline, from its start.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_timeout_ms: Option<u64>,
        /// Failed child runs are started again as this says.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry: Option<RetryPolicy>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        child_run_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<ErrorInfo>,
    },
    ChildCompleted {
        handle: u32,
        child_run_id: String,
        output: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        select: Option<Vec<u32>>,
    },
    ChildFailed {
        handle: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        child_run_id: Option<String>,
        failure: Failure,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        select: Option<Vec<u32>>,
    },
    /// An await answered `cancelled` or `timed-out` because the run was
    /// cancelled or passed its deadline.
    Interrupted {
        handle: u32,
        failure: Failure,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        select: Option<Vec<u32>>,
    },
    /// A signal sent to another workflow (with `start`: signal-with-start),
    /// and whether it was delivered.
    SignalSent {
        workflow_id: String,
        name: String,
        payload: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start: Option<StartSpec>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<ErrorInfo>,
    },
    /// Informational: the status the workflow published.
    StatusSet {
        status: Value,
    },
    /// Informational: search attributes the workflow set (`null` removes).
    SearchAttributesSet {
        attributes: Value,
    },
    Completed {
        output: Value,
    },
    Failed {
        error: ErrorInfo,
    },
    /// The run ended by continuing as a new run with `input`.
    ContinuedAsNew {
        input: Value,
        next_run_id: String,
    },
    /// `patched(change_id)` answered true here. Soft on replay: code that
    /// no longer asks (a removed patch) skips it.
    PatchMarker {
        change_id: String,
    },
    /// Informational: the run was re-pinned to another version, its journal
    /// having replayed on it.
    Upgraded {
        from_version: u32,
        to_version: u32,
        from_digest: String,
        to_digest: String,
        forced: bool,
    },
}

/// The run signal-with-start creates when none is open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartSpec {
    pub workflow: String,
    pub input: Value,
}

/// What a guest asked for, reduced to what replay must match: a kind and
/// the request's arguments, compared as JSON values (object keys in any
/// order). Its digest (kept beside the recorded event) and its human
/// description are made only when asked for: replaying a call hashes and
/// formats nothing, and a recorded event's call borrows the event.
#[derive(Clone)]
pub struct Call<'a> {
    pub kind: &'static str,
    request: Request<'a>,
    describe: fn(&Value) -> String,
}

/// A call's arguments: typed and borrowed for the calls replay compares
/// most (an activity, an await), as JSON for the rest.
#[derive(Clone, PartialEq)]
pub(super) enum Request<'a> {
    Activity {
        name: &'a str,
        input: &'a Value,
        options: &'a ActivityOptions,
    },
    Await(u32),
    AwaitAny(&'a [u32]),
    Json(Value),
}

impl Request<'_> {
    /// As JSON: what the digest hashes and the description reads.
    fn json(&self) -> std::borrow::Cow<'_, Value> {
        use serde_json::json;
        std::borrow::Cow::Owned(match self {
            Request::Activity {
                name,
                input,
                options,
            } => json!({ "name": name, "input": input, "options": options }),
            Request::Await(handle) => json!({ "handle": handle }),
            Request::AwaitAny(handles) => json!({ "handles": handles }),
            Request::Json(request) => return std::borrow::Cow::Borrowed(request),
        })
    }
}

impl<'a> Call<'a> {
    pub fn new(kind: &'static str, request: Value, describe: fn(&Value) -> String) -> Self {
        Call::typed(kind, Request::Json(request), describe)
    }

    pub(super) fn typed(
        kind: &'static str,
        request: Request<'a>,
        describe: fn(&Value) -> String,
    ) -> Self {
        Call {
            kind,
            request,
            describe,
        }
    }

    /// The digest of the call (kind and canonical request), as stored.
    pub fn digest(&self) -> String {
        digest_value(self.kind, &self.request.json())
    }

    /// What the call asked for, for people ("activity `x` with input 3").
    pub fn describe(&self) -> String {
        (self.describe)(&self.request.json())
    }
}

/// Same kind and same request: what the digests compare, without hashing
/// (a JSON object's equality does not depend on its keys' order).
impl PartialEq for Call<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && match (&self.request, &other.request) {
                (Request::Json(_), _) | (_, Request::Json(_)) => {
                    self.request.json() == other.request.json()
                }
                (a, b) => a == b,
            }
    }
}

impl std::fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.kind, self.describe())
    }
}

/// sha-256 over the kind and the canonical JSON of the request (object keys
/// sorted), so field order in a guest's serializer is not a divergence.
pub fn digest_value(kind: &str, request: &Value) -> String {
    let mut h = Hashing(Sha256::new());
    h.0.update(kind.as_bytes());
    h.0.update([0]);
    write_sorted(request, &mut h);
    hex::encode(&h.0.finalize()[..16])
}

/// Canonical JSON is fed to the hash as it is written, never held whole.
struct Hashing(Sha256);

impl std::io::Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Compact JSON with every object's keys sorted. Payloads keep the order
/// they were written in; a digest must not depend on it.
fn write_sorted(value: &Value, out: &mut Hashing) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.0.update(b"{");
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.0.update(b",");
                }
                write_json(out, key);
                out.0.update(b":");
                write_sorted(value, out);
            }
            out.0.update(b"}");
        }
        Value::Array(items) => {
            out.0.update(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.0.update(b",");
                }
                write_sorted(item, out);
            }
            out.0.update(b"]");
        }
        scalar => write_json(out, scalar),
    }
}

/// A string or scalar as compact JSON.
fn write_json(out: &mut Hashing, value: &(impl Serialize + ?Sized)) {
    // Writing to a hash cannot fail, and strings and scalars serialize.
    serde_json::to_writer(out, value).expect("JSON written into a hash");
}

/// A guest payload as JSON; text that is not JSON is kept as a JSON string.
pub fn payload_value(payload: &str) -> Value {
    serde_json::from_str(payload).unwrap_or_else(|_| Value::String(payload.to_string()))
}

pub(super) fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}...")
    } else {
        text
    }
}

pub fn describe_duration(ms: u64) -> String {
    if ms.is_multiple_of(3_600_000) && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

impl Event {
    /// `paused` or `unpaused`, with the operator's reason.
    pub fn pause_changed(paused: bool, reason: &str) -> Event {
        let reason = reason.to_string();
        if paused {
            Event::Paused { reason }
        } else {
            Event::Unpaused { reason }
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Event::Started { .. } => "started",
            Event::Clock { .. } => "clock",
            Event::Random { .. } => "random",
            Event::ActivityScheduled { .. } => "activity-scheduled",
            Event::ActivityAttemptFailed { .. } => "activity-attempt-failed",
            Event::ActivityAwaitingDeployment { .. } => "activity-awaiting-deployment",
            Event::ActivityHeartbeat { .. } => "activity-heartbeat",
            Event::CancelRequested { .. } => "cancel-requested",
            Event::ActivityCancelled { .. } => "activity-cancelled",
            Event::ChildAttemptFailed { .. } => "child-attempt-failed",
            Event::ActivityHeld { .. } => "activity-held",
            Event::Paused { .. } => "paused",
            Event::Unpaused { .. } => "unpaused",
            Event::Reset { .. } => "reset",
            Event::ResetFrom { .. } => "reset-from",
            Event::ActivityCompleted { .. } => "activity-completed",
            Event::ActivityFailed { .. } => "activity-failed",
            Event::TimerStarted { .. } => "timer-started",
            Event::TimerFired { .. } => "timer-fired",
            Event::SignalReceived { .. } => "signal-received",
            Event::UpdateAccepted { .. } => "update-accepted",
            Event::UpdateCompleted { .. } => "update-completed",
            Event::UpdateSent { .. } => "update-sent",
            Event::UpdateAnswered { .. } => "update-answered",
            Event::ChildStarted { .. } => "child-started",
            Event::ChildCompleted { .. } => "child-completed",
            Event::ChildFailed { .. } => "child-failed",
            Event::Interrupted { .. } => "interrupted",
            Event::SignalSent { .. } => "signal-sent",
            Event::StatusSet { .. } => "status-set",
            Event::SearchAttributesSet { .. } => "search-attributes-set",
            Event::Completed { .. } => "completed",
            Event::Failed { .. } => "failed",
            Event::ContinuedAsNew { .. } => "continued-as-new",
            Event::PatchMarker { .. } => "patch-marker",
            Event::Upgraded { .. } => "upgraded",
        }
    }

    /// For an event that ends an await: the handle it answers and the
    /// select set it was consumed through.
    pub fn completion(&self) -> Option<(u32, Option<&[u32]>)> {
        match self {
            Event::ActivityCompleted { handle, select, .. }
            | Event::ActivityFailed { handle, select, .. }
            | Event::TimerFired { handle, select }
            | Event::SignalReceived { handle, select, .. }
            | Event::UpdateAccepted { handle, select, .. }
            | Event::UpdateAnswered { handle, select, .. }
            | Event::ChildCompleted { handle, select, .. }
            | Event::ChildFailed { handle, select, .. }
            | Event::Interrupted { handle, select, .. } => Some((*handle, select.as_deref())),
            _ => None,
        }
    }

    /// Mark a completion event as consumed through `await-any` over `set`.
    pub fn selected(mut self, set: Option<Vec<u32>>) -> Self {
        match &mut self {
            Event::ActivityCompleted { select, .. }
            | Event::ActivityFailed { select, .. }
            | Event::TimerFired { select, .. }
            | Event::SignalReceived { select, .. }
            | Event::UpdateAccepted { select, .. }
            | Event::UpdateAnswered { select, .. }
            | Event::ChildCompleted { select, .. }
            | Event::ChildFailed { select, .. }
            | Event::Interrupted { select, .. } => *select = set,
            _ => {}
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call's digest is what journals recorded: it must not change with
    /// how payloads are kept (key order, number spelling) or it would
    /// call every open run's journal divergent.
    #[test]
    fn a_digest_is_over_sorted_keys_and_stays_what_journals_hold() {
        let request: Value =
            serde_json::from_str(r#"{"b":"é\n","a":{"d":[1.0,{"z":1,"y":2}],"c":2}}"#).unwrap();
        // sha-256 of `activity\0{"a":{"c":2,"d":[1.0,{"y":2,"z":1}]},"b":"é\n"}`.
        assert_eq!(
            digest_value("activity", &request),
            "35a98f8532ab4a4d016e90d8b2c8875f"
        );
        let reordered: Value =
            serde_json::from_str(r#"{"a":{"c":2,"d":[1.0,{"y":2,"z":1}]},"b":"é\n"}"#).unwrap();
        assert_eq!(
            digest_value("activity", &reordered),
            digest_value("activity", &request)
        );
    }
}
