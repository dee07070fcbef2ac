//! The workflow's handle on the host, and the calls on it that need no
//! builder: clock, randomness, timers, select, status, signals to others.

use serde::{Serialize, de::DeserializeOwned};
use std::time::{Duration, SystemTime};

use crate::bindings::workflow::weft::workflow::context as host;
use crate::bindings::workflow::weft::workflow::types as wit;
use crate::{Error, Handle, Pending, Selected};

pub use wit::{LogLevel, ParentClosePolicy as ParentClose};

/// Facts about the current run; fixed for its whole life.
///
/// ```no_run
/// # fn example(ctx: &weft_sdk::Context) {
/// let info = ctx.info();
/// let label = format!("{} v{} ({})", info.workflow, info.version, info.workflow_id);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// This run's id (a new one after continue-as-new).
    pub run_id: String,
    /// The workflow id: the entity the run serves, kept across
    /// continue-as-new.
    pub workflow_id: String,
    /// The deployed component's name.
    pub workflow: String,
    /// The component version the run executes on (changes on upgrade).
    pub version: u32,
}

/// The workflow's handle on the host. Every call is journaled (or, for
/// `log` and `info`, needs no journal), so the code stays replay-safe.
/// A workflow receives it in [`crate::Workflow::run`]:
///
/// ```no_run
/// use weft_sdk::{Context, Error, Workflow};
///
/// struct Hello;
///
/// impl Workflow for Hello {
///     type Input = String;
///     type Output = String;
///     fn run(ctx: &Context, name: String) -> Result<String, Error> {
///         ctx.activity("greeter").input(&name).call()
///     }
/// }
/// ```
pub struct Context {
    _private: (),
}

impl Context {
    pub(crate) fn new() -> Self {
        Context { _private: () }
    }

    /// Facts about this run (ids, component, version); not journaled: they
    /// are the same on every replay.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// let cell_id = format!("cell-of-{}", ctx.info().workflow_id);
    /// ctx.child("cell").workflow_id(cell_id).call::<()>()?;
    /// # Ok(()) }
    /// ```
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
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) {
    /// let started = ctx.now();
    /// // ... later in the same run, replay-safe:
    /// let took = ctx.now().duration_since(started).unwrap_or_default();
    /// # }
    /// ```
    pub fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(host::now_ms())
    }

    /// The journaled wall-clock time in milliseconds since the Unix epoch.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) {
    /// let hour_utc = (ctx.now_ms() / 3_600_000) % 24;
    /// let business_hours = (9..17).contains(&hour_utc);
    /// # }
    /// ```
    pub fn now_ms(&self) -> u64 {
        host::now_ms()
    }

    /// Journaled random bytes.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) {
    /// let salt: String = ctx.random_bytes(8).iter().map(|b| format!("{b:02x}")).collect();
    /// # }
    /// ```
    pub fn random_bytes(&self, len: u32) -> Vec<u8> {
        host::random_bytes(len)
    }

    /// A journaled random number (replay draws the same one).
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) {
    /// let cells = ["eu-1", "eu-2", "us-1"];
    /// let canary = cells[(ctx.random_u64() % cells.len() as u64) as usize];
    /// # }
    /// ```
    pub fn random_u64(&self) -> u64 {
        let bytes = host::random_bytes(8);
        let mut buf = [0u8; 8];
        buf.copy_from_slice(&bytes[..8]);
        u64::from_le_bytes(buf)
    }

    /// A log line in the server's log; muted while the run replays.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) {
    /// use weft_sdk::LogLevel;
    /// ctx.log(LogLevel::Info, format!("ring {} done", 2));
    /// # }
    /// ```
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
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// use std::time::Duration;
    /// let soak = ctx.timer(Duration::from_secs(24 * 3600));
    /// ctx.activity("cloud/report").input(&"soak started").call::<()>()?;
    /// soak.wait()?; // a day after the timer was started, not after the report
    /// # Ok(()) }
    /// ```
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
            result: result.map_err(Error::from),
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
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// use serde_json::json;
    /// // One entity run per cell: started by the first event, fed by the rest.
    /// ctx.signal_with_start("cell-entity", "cell-eu-1", &json!({ "cell": "eu-1" }),
    ///     "drain", &json!({ "reason": "maintenance" }))?;
    /// # Ok(()) }
    /// ```
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
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) {
    /// use serde_json::json;
    /// ctx.upsert_search_attributes(&json!({ "region": "eu-west", "ring": 1 }));
    /// // then: GET /v1/runs?q=region = 'eu-west' AND ring >= 1
    /// ctx.upsert_search_attributes(&json!({ "ring": null })); // removes `ring`
    /// # }
    /// ```
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
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// use std::time::Duration;
    /// // Leave an hour before the deadline for the cleanup.
    /// if let Some(deadline) = ctx.deadline() {
    ///     let left = deadline.duration_since(ctx.now()).unwrap_or_default();
    ///     if left < Duration::from_secs(3600) {
    ///         ctx.activity("cloud/cleanup").call::<()>()?;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn deadline(&self) -> Option<SystemTime> {
        host::deadline_ms().map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
    }
}
