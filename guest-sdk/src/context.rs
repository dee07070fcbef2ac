use serde::{Serialize, de::DeserializeOwned};
use std::marker::PhantomData;
use std::time::{Duration, SystemTime};

use crate::Error;
use crate::bindings::workflow::weft::workflow::context as host;
use crate::bindings::workflow::weft::workflow::types as wit;

pub use wit::{LogLevel, ParentClosePolicy as ParentClose};

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
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// ctx.sleep(std::time::Duration::from_secs(7 * 24 * 3600))?; // a week
    /// # Ok(()) }
    /// ```
    pub fn sleep(&self, duration: Duration) -> Result<(), Error> {
        self.timer(duration).wait()
    }

    /// Start a durable timer without waiting for it.
    pub fn timer(&self, duration: Duration) -> Pending<()> {
        Pending::new(host::start_timer(duration.as_millis() as u64))
    }

    /// Wait for the first of several pending operations (see
    /// [`Pending::handle`]); the others stay pending. Which one finished
    /// first is journaled, so replay picks the same one.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// use std::time::Duration;
    /// let approval = ctx.signal::<bool>("approve").pending();
    /// let timeout = ctx.timer(Duration::from_secs(3600));
    /// let first = ctx.select(&[approval.handle(), timeout.handle()]);
    /// let approved = first.index == 0 && first.decode::<bool>()?;
    /// # Ok(()) }
    /// ```
    pub fn select(&self, handles: &[Handle]) -> Selected {
        let raw: Vec<u32> = handles.iter().map(|h| h.0).collect();
        let (done, result) = host::await_any(&raw);
        let index = raw.iter().position(|h| *h == done).unwrap_or(0);
        Selected {
            index,
            result: result.map_err(Error::from_failure),
        }
    }

    /// Wait for all of `pending`. Results are journaled in the order the
    /// operations finish (so each is recorded as early as possible) and
    /// returned in the order given.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// let cells = ["eu-1", "eu-2", "us-1"];
    /// let pending = cells
    ///     .iter()
    ///     .map(|cell| ctx.activity("cloud/drain").input(cell).start::<u32>())
    ///     .collect::<Result<Vec<_>, _>>()?;
    /// let drained: Vec<Result<u32, weft_sdk::Error>> = ctx.join_all(pending);
    /// # Ok(()) }
    /// ```
    pub fn join_all<T: DeserializeOwned>(&self, pending: Vec<Pending<T>>) -> Vec<Result<T, Error>> {
        let mut results: Vec<Option<Result<T, Error>>> = pending.iter().map(|_| None).collect();
        let mut waiting: Vec<(usize, Handle)> =
            pending.iter().map(|p| p.handle()).enumerate().collect();
        while !waiting.is_empty() {
            let handles: Vec<Handle> = waiting.iter().map(|(_, h)| *h).collect();
            let selected = self.select(&handles);
            let (slot, _) = waiting.remove(selected.index);
            results[slot] = Some(selected.decode());
        }
        results
            .into_iter()
            .map(|r| r.expect("every slot is filled"))
            .collect()
    }

    /// Receive signals named `name` (in arrival order, each exactly once).
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// #[derive(serde::Deserialize)]
    /// struct Operator { action: String }
    /// let operator = ctx.signal::<Operator>("operator");
    /// match operator.recv()?.action.as_str() {
    ///     "resume" => {}
    ///     _ => return Err(weft_sdk::Error::new("aborted", "an operator said so")),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn signal<T: DeserializeOwned>(&self, name: &str) -> SignalReceiver<T> {
        SignalReceiver {
            name: name.to_string(),
            _payload: PhantomData,
        }
    }

    /// Signal the open run with `workflow_id`.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// ctx.signal_workflow("cell-eu-1", "upgrade", &serde_json::json!({ "version": "2.0" }))?;
    /// # Ok(()) }
    /// ```
    pub fn signal_workflow(
        &self,
        workflow_id: &str,
        name: &str,
        payload: &impl Serialize,
    ) -> Result<(), Error> {
        let payload =
            serde_json::to_string(payload).map_err(|e| Error::decode("the payload", e))?;
        host::signal_workflow(workflow_id, name, &payload).map_err(Error::from)
    }

    /// Signal the open run with `workflow_id`, starting `workflow` with
    /// `input` under that id first if none is open (entity workflows).
    pub fn signal_with_start(
        &self,
        workflow: &str,
        workflow_id: &str,
        input: &impl Serialize,
        name: &str,
        payload: &impl Serialize,
    ) -> Result<(), Error> {
        let input = serde_json::to_string(input).map_err(|e| Error::decode("the input", e))?;
        let payload =
            serde_json::to_string(payload).map_err(|e| Error::decode("the payload", e))?;
        host::signal_with_start(workflow, workflow_id, &input, name, &payload).map_err(Error::from)
    }

    /// Publish a small status for queries (`GET /v1/runs/{id}` shows it).
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// ctx.set_status(&serde_json::json!({ "state": "waiting", "ring": 1 }));
    /// # Ok(()) }
    /// ```
    pub fn set_status(&self, status: &impl Serialize) {
        if let Ok(text) = serde_json::to_string(status) {
            host::set_status(&text);
        }
    }

    /// Set search attributes of this run — strings, numbers, booleans;
    /// `null` removes one — which list queries filter on:
    /// `ctx.upsert_search_attributes(&json!({ "region": "eu-west", "ring": 1 }))`,
    /// then `GET /v1/runs?q=region = 'eu-west' AND ring >= 1`.
    pub fn upsert_search_attributes(&self, attributes: &impl Serialize) {
        if let Ok(text) = serde_json::to_string(attributes) {
            host::upsert_search_attributes(&text);
        }
    }

    /// End this run and continue as a fresh run (same workflow id, new
    /// journal) with `input`. Unconsumed signals move to the new run.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// let served = 1000;
    /// if served >= 1000 {
    ///     // Keep the journal short: carry the state over instead.
    ///     ctx.continue_as_new(&serde_json::json!({ "served": served }));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn continue_as_new(&self, input: &impl Serialize) -> ! {
        let input = serde_json::to_string(input).unwrap_or_else(|_| "null".into());
        host::continue_as_new(&input);
        unreachable!("the host ends the run at continue-as-new")
    }

    /// Branch between old and new behaviour inside one version:
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context, owner: &str) -> Result<(), weft_sdk::Error> {
    /// if ctx.patched("notify-owner") {
    ///     ctx.activity("mail/notify").input(&owner).call::<()>()?; // new behaviour
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// True for a run that reaches this point on code with the change (a
    /// marker is journaled), false while replaying a journal recorded before
    /// it — so runs that started on the old code keep the old behaviour after
    /// an upgrade. Each call is answered on its own: in a loop, iterations
    /// replayed from an old journal answer false and the ones that run on the
    /// new code answer true. Once no run from before the change remains, drop
    /// the call and keep the new branch: recorded markers no code asks for
    /// are skipped.
    pub fn patched(&self, change_id: &str) -> bool {
        host::patched(change_id)
    }

    /// The run's deadline (its execution timeout), if it has one.
    pub fn deadline(&self) -> Option<SystemTime> {
        host::deadline_ms().map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
    }

    /// Build the start of a child run of `workflow`.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// let cert: String = ctx
    ///     .child("issue-cert")
    ///     .input(&"acme.example.net")
    ///     .workflow_id("cert-acme")
    ///     .parent_close(weft_sdk::ParentClose::Cancel)
    ///     .call()?;
    /// # Ok(()) }
    /// ```
    pub fn child(&self, workflow: impl Into<String>) -> ChildCall {
        ChildCall {
            workflow: workflow.into(),
            input: Ok("null".to_string()),
            options: wit::ChildOptions {
                workflow_id: None,
                parent_close: ParentClose::Abandon,
            },
        }
    }

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
            },
        }
    }
}

/// An operation started but not yet awaited.
///
/// ```no_run
/// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
/// let cert = ctx.activity("cloud/request-cert").input(&"acme").start::<String>()?;
/// ctx.sleep(std::time::Duration::from_secs(60))?; // the activity runs meanwhile
/// let id = cert.wait()?;
/// # Ok(()) }
/// ```
#[must_use = "a pending operation does nothing observable until it is awaited"]
pub struct Pending<T> {
    handle: u32,
    _output: PhantomData<T>,
}

/// A pending operation, erased, for [`Context::select`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handle(pub(crate) u32);

/// What [`Context::select`] picked: `index` into the handles given, and
/// the outcome, decoded with [`Selected::decode`].
///
/// ```no_run
/// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
/// let stop = ctx.signal::<()>("stop").pending();
/// let tick = ctx.timer(std::time::Duration::from_secs(60));
/// let picked = ctx.select(&[stop.handle(), tick.handle()]);
/// if picked.index == 0 {
///     picked.decode::<()>()?;
/// }
/// # Ok(()) }
/// ```
pub struct Selected {
    /// Position, in the slice given, of the operation that finished.
    pub index: usize,
    pub(crate) result: Result<String, Error>,
}

impl Selected {
    pub fn decode<T: DeserializeOwned>(self) -> Result<T, Error> {
        let payload = self.result?;
        serde_json::from_str(&payload).map_err(|e| Error::decode("the result", e))
    }
}

impl<T: DeserializeOwned> Pending<T> {
    pub(crate) fn new(handle: u32) -> Self {
        Pending {
            handle,
            _output: PhantomData,
        }
    }

    /// For [`Context::select`]; once selected, do not wait on it again.
    pub fn handle(&self) -> Handle {
        Handle(self.handle)
    }

    /// Block until the operation ends.
    pub fn wait(self) -> Result<T, Error> {
        let payload = host::await_(self.handle).map_err(Error::from_failure)?;
        serde_json::from_str(&payload).map_err(|e| Error::decode("the result", e))
    }
}

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

/// Receives one named signal at a time: `ctx.signal::<T>("name").recv()`.
///
/// ```no_run
/// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
/// use std::time::Duration;
/// let approvals = ctx.signal::<String>("approve");
/// match approvals.recv_timeout(Duration::from_secs(24 * 3600))? {
///     Some(approver) => ctx.set_status(&serde_json::json!({ "approved_by": approver })),
///     None => return Err(weft_sdk::Error::new("not-approved", "no approval within a day")),
/// }
/// # Ok(()) }
/// ```
pub struct SignalReceiver<T> {
    name: String,
    _payload: PhantomData<T>,
}

impl<T: DeserializeOwned> SignalReceiver<T> {
    /// Wait for the next signal (durably: the run may be evicted meanwhile).
    pub fn recv(&self) -> Result<T, Error> {
        Pending::<T>::new(host::receive_signal(&self.name)).wait()
    }

    /// Start waiting for the next signal without blocking (to select over
    /// it with other operations).
    pub fn pending(&self) -> Pending<T> {
        Pending::new(host::receive_signal(&self.name))
    }

    /// Wait at most `timeout`: `Ok(None)` if no signal came.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<T>, Error> {
        let signal = host::receive_signal(&self.name);
        let timer = host::start_timer(timeout.as_millis() as u64);
        let (done, result) = host::await_any(&[signal, timer]);
        let payload = result.map_err(Error::from_failure)?;
        if done == timer {
            return Ok(None);
        }
        serde_json::from_str(&payload)
            .map(Some)
            .map_err(|e| Error::decode("the signal", e))
    }
}

/// Builder of a child run: `ctx.child("provision").input(&x).call()`.
///
/// ```no_run
/// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
/// let child = ctx.child("provision").input(&"acme").start::<serde_json::Value>()?;
/// // ... the parent goes on; the child's output when it is needed:
/// let provisioned = child.wait()?;
/// # Ok(()) }
/// ```
pub struct ChildCall {
    workflow: String,
    input: Result<String, Error>,
    options: wit::ChildOptions,
}

impl ChildCall {
    pub fn input(mut self, input: &impl Serialize) -> Self {
        self.input = serde_json::to_string(input).map_err(|e| Error::decode("the input", e));
        self
    }

    /// The child's workflow id (default: its run id).
    pub fn workflow_id(mut self, id: impl Into<String>) -> Self {
        self.options.workflow_id = Some(id.into());
        self
    }

    /// What happens to the child if this run ends first (default: it runs on).
    pub fn parent_close(mut self, policy: ParentClose) -> Self {
        self.options.parent_close = policy;
        self
    }

    pub fn start<T: DeserializeOwned>(self) -> Result<Pending<T>, Error> {
        let input = self.input?;
        Ok(Pending::new(host::start_child(
            &self.workflow,
            &input,
            &self.options,
        )))
    }

    pub fn call<T: DeserializeOwned>(self) -> Result<T, Error> {
        self.start()?.wait()
    }
}
