//! Calling an activity from a workflow: the call's builder and its retry
//! policy.

use serde::{Serialize, de::DeserializeOwned};
use std::time::Duration;

use crate::bindings::workflow::weft::workflow::context as host;
use crate::bindings::workflow::weft::workflow::types as wit;
use crate::{Context, Error, Pending};

impl Context {
    /// Build a call to an activity, `"component/function"` or `"component"`.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// use std::time::Duration;
    /// use weft_sdk::RetryPolicy;
    /// let record: String = ctx
    ///     .activity("cloud/create-record")
    ///     .input(&("acme", "eu-1"))
    ///     .retry(RetryPolicy::default().max_attempts(5).non_retryable("quota-exceeded"))
    ///     .timeout(Duration::from_secs(30))
    ///     .call()?;
    /// # Ok(()) }
    /// ```
    pub fn activity(&self, name: impl Into<String>) -> ActivityCall {
        ActivityCall {
            name: name.into(),
            input: Ok("null".to_string()),
            options: wit::ActivityOptions {
                retry: None,
                start_to_close_ms: None,
                schedule_to_close_ms: None,
                schedule_to_start_ms: None,
                heartbeat_timeout_ms: None,
                cancellation: Cancellation::TryCancel,
            },
        }
    }
}

impl From<RetryPolicy> for wit::RetryPolicy {
    fn from(policy: RetryPolicy) -> Self {
        wit::RetryPolicy {
            initial_interval_ms: policy.initial_interval.as_millis() as u64,
            backoff_coefficient: policy.backoff_coefficient,
            max_interval_ms: policy.max_interval.as_millis() as u64,
            max_attempts: policy.max_attempts,
            non_retryable: policy.non_retryable,
        }
    }
}

/// What an activity's await answers once the workflow cancels it.
///
/// ```
/// assert_eq!(weft_sdk::Cancellation::TryCancel, weft_sdk::Cancellation::TryCancel);
/// ```
pub use wit::CancellationMode as Cancellation;

/// Retry policy of an activity: exponential backoff between attempts.
/// The default: 1 s initial interval, coefficient 2, at most 100 s apart,
/// unlimited attempts.
///
/// ```no_run
/// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
/// use std::time::Duration;
/// use weft_sdk::RetryPolicy;
/// let policy = RetryPolicy::default()
///     .initial_interval(Duration::from_millis(200))
///     .backoff(3.0)
///     .max_interval(Duration::from_secs(30))
///     .max_attempts(10)
///     .non_retryable("invalid-request");
/// let once = RetryPolicy::none(); // a single attempt
/// ctx.activity("cloud/charge").retry(once).call::<()>()?;
/// ctx.activity("cloud/place").retry(policy).call::<String>()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Wait before the second attempt.
    pub initial_interval: Duration,
    /// Each wait is this many times the previous one.
    pub backoff_coefficient: f64,
    /// The longest wait between two attempts.
    pub max_interval: Duration,
    /// 0 = until the schedule-to-close timeout (or forever).
    pub max_attempts: u32,
    /// Error kinds that end the activity at once, without a retry.
    pub non_retryable: Vec<String>,
}

impl Default for RetryPolicy {
    /// 1 s, doubling, at most 100 s apart, unlimited attempts — the host's
    /// default too.
    fn default() -> Self {
        use weft_contract::retry;
        RetryPolicy {
            initial_interval: Duration::from_millis(retry::INITIAL_INTERVAL_MS),
            backoff_coefficient: retry::BACKOFF_COEFFICIENT,
            max_interval: Duration::from_millis(retry::MAX_INTERVAL_MS),
            max_attempts: retry::MAX_ATTEMPTS,
            non_retryable: Vec::new(),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    ///
    /// ```
    /// let once = weft_sdk::RetryPolicy::none();
    /// assert_eq!(once.max_attempts, 1);
    /// ```
    pub fn none() -> Self {
        RetryPolicy::default().max_attempts(1)
    }

    /// Wait before the second attempt.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = weft_sdk::RetryPolicy::default().initial_interval(Duration::from_millis(200));
    /// assert_eq!(p.initial_interval, Duration::from_millis(200));
    /// ```
    pub fn initial_interval(mut self, d: Duration) -> Self {
        self.initial_interval = d;
        self
    }

    /// Multiply each wait by `coefficient` (1.0: a constant interval).
    ///
    /// ```
    /// let constant = weft_sdk::RetryPolicy::default().backoff(1.0);
    /// assert_eq!(constant.backoff_coefficient, 1.0);
    /// ```
    pub fn backoff(mut self, coefficient: f64) -> Self {
        self.backoff_coefficient = coefficient;
        self
    }

    /// Never wait longer than `d` between attempts.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = weft_sdk::RetryPolicy::default().max_interval(Duration::from_secs(10));
    /// assert_eq!(p.max_interval, Duration::from_secs(10));
    /// ```
    pub fn max_interval(mut self, d: Duration) -> Self {
        self.max_interval = d;
        self
    }

    /// At most `n` attempts in all (0: no limit).
    ///
    /// ```
    /// let p = weft_sdk::RetryPolicy::default().max_attempts(3);
    /// assert_eq!(p.max_attempts, 3);
    /// ```
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }

    /// An error of `kind` ends the activity at once; may be given several
    /// times.
    ///
    /// ```
    /// let p = weft_sdk::RetryPolicy::default()
    ///     .non_retryable("invalid-request")
    ///     .non_retryable("quota-exceeded");
    /// assert_eq!(p.non_retryable, ["invalid-request", "quota-exceeded"]);
    /// ```
    pub fn non_retryable(mut self, kind: impl Into<String>) -> Self {
        self.non_retryable.push(kind.into());
        self
    }
}

/// Builder of one activity call: `ctx.activity("x").input(&v).call()`.
///
/// ```no_run
/// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
/// use std::time::Duration;
/// let record: String = ctx
///     .activity("cloud/create-record")
///     .input(&serde_json::json!({ "tenant": "acme" }))
///     .timeout(Duration::from_secs(30))             // each attempt
///     .schedule_to_close(Duration::from_secs(600))  // all attempts together
///     .call()?;
/// # Ok(()) }
/// ```
pub struct ActivityCall {
    name: String,
    input: Result<String, Error>,
    options: wit::ActivityOptions,
}

impl ActivityCall {
    /// The activity's input, any serializable value (default `null`).
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// #[derive(serde::Serialize)]
    /// struct Vm<'a> { cell: &'a str, size: u32 }
    /// let id: String = ctx.activity("cloud/create-vm").input(&Vm { cell: "eu-1", size: 4 }).call()?;
    /// # Ok(()) }
    /// ```
    pub fn input(mut self, input: &impl Serialize) -> Self {
        self.input = serde_json::to_string(input).map_err(|e| Error::decode("the input", e));
        self
    }

    /// The retry policy (default: [`RetryPolicy::default`]).
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// use weft_sdk::RetryPolicy;
    /// ctx.activity("billing/charge").retry(RetryPolicy::none()).call::<()>()?;
    /// # Ok(()) }
    /// ```
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.options.retry = Some(policy.into());
        self
    }

    /// Limit on each attempt (start-to-close).
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// use std::time::Duration;
    /// match ctx.activity("cloud/probe").timeout(Duration::from_secs(5)).call::<bool>() {
    ///     Err(e) if e.is_timed_out() => { /* every attempt ran out of time */ }
    ///     other => { other?; }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn timeout(mut self, d: Duration) -> Self {
        self.options.start_to_close_ms = Some(d.as_millis() as u64);
        self
    }

    /// Limit on all attempts together, backoff included.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// use std::time::Duration;
    /// // Retry as often as the policy says, but give up after ten minutes.
    /// ctx.activity("dns/propagate").schedule_to_close(Duration::from_secs(600)).call::<()>()?;
    /// # Ok(()) }
    /// ```
    pub fn schedule_to_close(mut self, d: Duration) -> Self {
        self.options.schedule_to_close_ms = Some(d.as_millis() as u64);
        self
    }

    /// Limit on the wait before the first attempt starts (for the
    /// activity's component to be deployed, for a free slot); not retried.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// use std::time::Duration;
    /// use weft_sdk::Timeout;
    /// let sync = ctx.activity("billing/sync").schedule_to_start(Duration::from_secs(60)).call::<()>();
    /// if let Err(e) = &sync && e.chain().any(|e| e.timeout == Some(Timeout::ScheduleToStart)) {
    ///     // billing is not deployed in this cell: skip it
    /// }
    /// # Ok(()) }
    /// ```
    pub fn schedule_to_start(mut self, d: Duration) -> Self {
        self.options.schedule_to_start_ms = Some(d.as_millis() as u64);
        self
    }

    /// An attempt that sends no heartbeat ([`ActivityContext::heartbeat`](crate::ActivityContext::heartbeat))
    /// for this long fails with a heartbeat timeout and is retried by the
    /// policy; the next attempt starts from the last heartbeat's details.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// use std::time::Duration;
    /// ctx.activity("disk/copy")
    ///     .heartbeat_timeout(Duration::from_secs(10))
    ///     .timeout(Duration::from_secs(3600))
    ///     .call::<()>()?;
    /// # Ok(()) }
    /// ```
    pub fn heartbeat_timeout(mut self, d: Duration) -> Self {
        self.options.heartbeat_timeout_ms = Some(d.as_millis() as u64);
        self
    }

    /// What the await answers once the workflow cancels the activity with
    /// [`Pending::cancel`](crate::Pending::cancel) (default
    /// [`Cancellation::TryCancel`]).
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// use std::time::Duration;
    /// use weft_sdk::Cancellation;
    /// let copy = ctx
    ///     .activity("disk/copy")
    ///     .heartbeat_timeout(Duration::from_secs(10))
    ///     .cancellation(Cancellation::WaitCancellationCompleted)
    ///     .start::<()>()?;
    /// copy.cancel(); // the activity is told at its next heartbeat
    /// let stopped = copy.wait(); // once it has stopped
    /// # Ok(()) }
    /// ```
    pub fn cancellation(mut self, mode: Cancellation) -> Self {
        self.options.cancellation = mode;
        self
    }

    /// Schedule the activity and wait for its result.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// let healthy: bool = ctx.activity("cloud/health").input(&"eu-1").call()?;
    /// # Ok(()) }
    /// ```
    pub fn call<T: DeserializeOwned>(self) -> Result<T, Error> {
        self.start()?.wait()
    }

    /// Schedule the activity without waiting for it.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// let a = ctx.activity("cloud/drain").input(&"eu-1").start::<()>()?;
    /// let b = ctx.activity("cloud/drain").input(&"eu-2").start::<()>()?;
    /// a.wait()?; // both run at the same time
    /// b.wait()?;
    /// # Ok(()) }
    /// ```
    pub fn start<T: DeserializeOwned>(self) -> Result<Pending<T>, Error> {
        let input = self.input?;
        Ok(Pending::new(host::schedule_activity(
            &self.name,
            &input,
            &self.options,
        )))
    }
}
