use serde::{Serialize, de::DeserializeOwned};
use std::marker::PhantomData;
use std::time::{Duration, SystemTime};

use crate::Error;
use crate::bindings::workflow::weft::workflow::context as host;
use crate::bindings::workflow::weft::workflow::types as wit;

pub use wit::LogLevel;

/// Facts about the current run; fixed for its whole life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    pub run_id: String,
    pub workflow_id: String,
    pub workflow: String,
    pub version: u32,
}

/// The workflow's handle on the host. Every call is journaled (or, for
/// `log` and `info`, needs no journal), so the code stays replay-safe.
pub struct Context {
    _private: (),
}

impl Context {
    pub(crate) fn new() -> Self {
        Context { _private: () }
    }

    pub fn info(&self) -> RunInfo {
        let info = host::info();
        RunInfo {
            run_id: info.run_id,
            workflow_id: info.workflow_id,
            workflow: info.workflow,
            version: info.version,
        }
    }

    /// The journaled wall-clock time.
    pub fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(host::now_ms())
    }

    pub fn now_ms(&self) -> u64 {
        host::now_ms()
    }

    /// Journaled random bytes.
    pub fn random_bytes(&self, len: u32) -> Vec<u8> {
        host::random_bytes(len)
    }

    pub fn random_u64(&self) -> u64 {
        let bytes = host::random_bytes(8);
        let mut buf = [0u8; 8];
        buf.copy_from_slice(&bytes[..8]);
        u64::from_le_bytes(buf)
    }

    /// A log line in the server's log; muted while the run replays.
    pub fn log(&self, level: LogLevel, message: impl AsRef<str>) {
        host::log(level, message.as_ref());
    }

    /// Sleep durably: a sleeping run costs a database row, not memory.
    pub fn sleep(&self, duration: Duration) -> Result<(), Error> {
        self.timer(duration).wait()
    }

    /// Start a durable timer without waiting for it.
    pub fn timer(&self, duration: Duration) -> Pending<()> {
        Pending::new(host::start_timer(duration.as_millis() as u64))
    }

    /// Build a call to an activity, `"component/function"` or `"component"`.
    pub fn activity(&self, name: impl Into<String>) -> ActivityCall {
        ActivityCall {
            name: name.into(),
            input: Ok("null".to_string()),
            options: wit::ActivityOptions {
                retry: None,
                start_to_close_ms: None,
                schedule_to_close_ms: None,
            },
        }
    }
}

/// An operation started but not yet awaited.
#[must_use = "a pending operation does nothing observable until it is awaited"]
pub struct Pending<T> {
    handle: u32,
    _output: PhantomData<T>,
}

impl<T: DeserializeOwned> Pending<T> {
    fn new(handle: u32) -> Self {
        Pending {
            handle,
            _output: PhantomData,
        }
    }

    /// Block until the operation ends.
    pub fn wait(self) -> Result<T, Error> {
        let payload = host::await_(self.handle).map_err(Error::from_failure)?;
        serde_json::from_str(&payload).map_err(|e| Error::decode("the result", e))
    }
}

/// Retry policy of an activity: exponential backoff between attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub initial_interval: Duration,
    pub backoff_coefficient: f64,
    pub max_interval: Duration,
    /// 0 = until the schedule-to-close timeout (or forever).
    pub max_attempts: u32,
    pub non_retryable: Vec<String>,
}

impl Default for RetryPolicy {
    /// 1 s, doubling, at most 100 s apart, unlimited attempts — the host's
    /// default too.
    fn default() -> Self {
        RetryPolicy {
            initial_interval: Duration::from_secs(1),
            backoff_coefficient: 2.0,
            max_interval: Duration::from_secs(100),
            max_attempts: 0,
            non_retryable: Vec::new(),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        RetryPolicy::default().max_attempts(1)
    }
    pub fn initial_interval(mut self, d: Duration) -> Self {
        self.initial_interval = d;
        self
    }
    pub fn backoff(mut self, coefficient: f64) -> Self {
        self.backoff_coefficient = coefficient;
        self
    }
    pub fn max_interval(mut self, d: Duration) -> Self {
        self.max_interval = d;
        self
    }
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }
    pub fn non_retryable(mut self, kind: impl Into<String>) -> Self {
        self.non_retryable.push(kind.into());
        self
    }
}

/// Builder of one activity call: `ctx.activity("x").input(&v).call()`.
pub struct ActivityCall {
    name: String,
    input: Result<String, Error>,
    options: wit::ActivityOptions,
}

impl ActivityCall {
    pub fn input(mut self, input: &impl Serialize) -> Self {
        self.input = serde_json::to_string(input).map_err(|e| Error::decode("the input", e));
        self
    }

    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.options.retry = Some(wit::RetryPolicy {
            initial_interval_ms: policy.initial_interval.as_millis() as u64,
            backoff_coefficient: policy.backoff_coefficient,
            max_interval_ms: policy.max_interval.as_millis() as u64,
            max_attempts: policy.max_attempts,
            non_retryable: policy.non_retryable,
        });
        self
    }

    /// Limit on each attempt (start-to-close).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.options.start_to_close_ms = Some(d.as_millis() as u64);
        self
    }

    /// Limit on all attempts together, backoff included.
    pub fn schedule_to_close(mut self, d: Duration) -> Self {
        self.options.schedule_to_close_ms = Some(d.as_millis() as u64);
        self
    }

    /// Schedule the activity and wait for its result.
    pub fn call<T: DeserializeOwned>(self) -> Result<T, Error> {
        self.start()?.wait()
    }

    /// Schedule the activity without waiting for it.
    pub fn start<T: DeserializeOwned>(self) -> Result<Pending<T>, Error> {
        let input = self.input?;
        Ok(Pending::new(host::schedule_activity(
            &self.name,
            &input,
            &self.options,
        )))
    }
}
