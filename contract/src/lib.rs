//! What the weft host and the guest SDK agree on besides the WIT interfaces
//! (`wit/`): the retry policy of an activity that sets none, and the error
//! kinds that one side produces and the other acts on. Both depend on this
//! crate, so they agree by construction, not by copies.
#![no_std]

/// The default retry policy: 1 s, doubling, at most 100 s apart,
/// unlimited attempts.
pub mod retry {
    pub const INITIAL_INTERVAL_MS: u64 = 1_000;
    pub const BACKOFF_COEFFICIENT: f64 = 2.0;
    pub const MAX_INTERVAL_MS: u64 = 100_000;
    /// 0: until the schedule-to-close timeout (or forever).
    pub const MAX_ATTEMPTS: u32 = 0;
}

/// Error kinds with a meaning on both sides of the boundary.
pub mod kind {
    /// An activity's (or workflow's) input did not decode.
    pub const BAD_INPUT: &str = "bad-input";
    /// An activity's (or workflow's) output did not encode.
    pub const BAD_OUTPUT: &str = "bad-output";
    /// The activity component has no function of that name.
    pub const UNKNOWN_FUNCTION: &str = "unknown-function";
    /// The name is a workflow's.
    pub const NOT_AN_ACTIVITY: &str = "not-an-activity";
    /// Outbound HTTP to a host the deployment did not allow.
    pub const HTTP_DENIED: &str = "http-denied";
    /// An operation or the run passed a timeout.
    pub const TIMED_OUT: &str = "timed-out";
    /// An operation or the run was cancelled.
    pub const CANCELLED: &str = "cancelled";
    /// The run (a child, say) was terminated: ended without its cleanup.
    pub const TERMINATED: &str = "terminated";
    /// An activity failed (after its retries): the boundary error a
    /// workflow's await answers, caused by the activity's own.
    pub const ACTIVITY_FAILED: &str = "activity-failed";
    /// A child run failed, timed out, was cancelled or terminated: the
    /// boundary error a parent's await answers, caused by the child's.
    pub const CHILD_FAILED: &str = "child-failed";
    /// An output over the namespace's `max_payload_bytes`.
    pub const PAYLOAD_LIMIT: &str = "payload-limit";

    /// Kinds no retry can fix: an attempt failing with one is the last.
    pub const NEVER_RETRY: &[&str] = &[
        UNKNOWN_FUNCTION,
        NOT_AN_ACTIVITY,
        BAD_INPUT,
        HTTP_DENIED,
        PAYLOAD_LIMIT,
    ];
}
