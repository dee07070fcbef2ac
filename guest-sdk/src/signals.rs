//! Receiving signals: one named stream of payloads per name.

use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::time::Duration;

use crate::bindings::workflow::weft::workflow::context as host;
use crate::{Context, Error, Pending};

impl Context {
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
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// let scale = ctx.signal::<u32>("scale");
    /// loop {
    ///     let replicas = scale.recv()?;
    ///     ctx.activity("cloud/scale").input(&replicas).call::<()>()?;
    /// }
    /// # }
    /// ```
    pub fn recv(&self) -> Result<T, Error> {
        Pending::<T>::new(host::receive_signal(&self.name)).wait()
    }

    /// Start waiting for the next signal without blocking (to select over
    /// it with other operations).
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// let abort = ctx.signal::<String>("abort").pending();
    /// let work = ctx.activity("cloud/migrate").start::<()>()?;
    /// let picked = ctx.select(&[work.handle(), abort.handle()]);
    /// if picked.index == 1 {
    ///     let reason: String = picked.decode()?;
    ///     return Err(weft_sdk::Error::new("aborted", reason));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn pending(&self) -> Pending<T> {
        Pending::new(host::receive_signal(&self.name))
    }

    /// Wait at most `timeout`: `Ok(None)` if no signal came.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// use std::time::Duration;
    /// let ack = ctx.signal::<()>("ack").recv_timeout(Duration::from_secs(300))?;
    /// if ack.is_none() {
    ///     ctx.activity("pager/escalate").call::<()>()?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<T>, Error> {
        let signal = host::receive_signal(&self.name);
        let timer = host::start_timer(timeout.as_millis() as u64);
        let (done, result) = host::await_any(&[signal, timer]);
        let payload = result.map_err(Error::from)?;
        if done == timer {
            return Ok(None);
        }
        serde_json::from_str(&payload)
            .map(Some)
            .map_err(|e| Error::decode("the signal", e))
    }
}
