//! Operations started and not yet awaited, and the select over them.

use serde::de::DeserializeOwned;
use std::marker::PhantomData;

use crate::Error;
use crate::bindings::workflow::weft::workflow::context as host;

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

/// A pending operation, erased, for [`Context::select`](crate::Context::select).
///
/// ```no_run
/// # fn example(ctx: &weft_sdk::Context) {
/// use std::time::Duration;
/// let pending = [ctx.timer(Duration::from_secs(1)), ctx.timer(Duration::from_secs(2))];
/// let handles: Vec<weft_sdk::Handle> = pending.iter().map(|p| p.handle()).collect();
/// let first = ctx.select(&handles); // index 0: the 1 s timer
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handle(pub(crate) u32);

/// What [`Context::select`](crate::Context::select) picked: `index` into the handles given, and
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
    /// The selected operation's outcome, its output decoded as `T`.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// let a = ctx.activity("cloud/probe").input(&"eu-1").start::<u32>()?;
    /// let b = ctx.activity("cloud/probe").input(&"eu-2").start::<u32>()?;
    /// let picked = ctx.select(&[a.handle(), b.handle()]);
    /// let fastest_latency: u32 = picked.decode()?;
    /// # Ok(()) }
    /// ```
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

    /// Cancel the activity or child run: the activity's await answers as
    /// its [`Cancellation`](crate::Cancellation) mode says, a child is asked
    /// to cancel and its await answers once it has ended. Only activities
    /// and children can be cancelled (anything else traps the workflow).
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// use std::time::Duration;
    /// let watch = ctx.child("watch-cell").input(&"eu-1").start::<()>()?;
    /// ctx.sleep(Duration::from_secs(3600))?;
    /// watch.cancel();
    /// let ended = watch.wait(); // Err: child-failed, caused by cancelled
    /// # Ok(()) }
    /// ```
    pub fn cancel(&self) {
        host::cancel(self.handle);
    }

    /// For [`Context::select`](crate::Context::select); once selected, do not wait on it again.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// let cert = ctx.activity("cloud/request-cert").start::<String>()?;
    /// let cancel = ctx.signal::<()>("cancel").pending();
    /// if ctx.select(&[cert.handle(), cancel.handle()]).index == 1 {
    ///     return Err(weft_sdk::Error::new("cancelled", "an operator cancelled"));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn handle(&self) -> Handle {
        Handle(self.handle)
    }

    /// Block until the operation ends (durably: the run may be evicted and
    /// resumed meanwhile).
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// let pending = ctx.activity("cloud/create-vm").input(&"eu-1").start::<String>()?;
    /// let vm_id = pending.wait()?;
    /// # Ok(()) }
    /// ```
    pub fn wait(self) -> Result<T, Error> {
        let payload = host::await_(self.handle).map_err(Error::from)?;
        serde_json::from_str(&payload).map_err(|e| Error::decode("the result", e))
    }
}
