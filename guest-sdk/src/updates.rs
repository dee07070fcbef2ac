//! Updates: requests into a running workflow whose callers wait for the
//! answer (`POST /v1/workflow-ids/{id}/updates/{name}`, `weft update`).
//!
//! A workflow takes an update, validates it — a rejected update is answered
//! to its caller at once and leaves nothing in the journal — and handles it
//! as ordinary durable code (activities, timers, …), then replies:
//!
//! ```no_run
//! use serde::Deserialize;
//! use weft_sdk::{Context, Error};
//!
//! #[derive(Deserialize)]
//! struct Upgrade { version: String }
//!
//! fn serve(ctx: &Context) -> Result<(), Error> {
//!     let upgrades = ctx.updates::<Upgrade>("upgrade");
//!     loop {
//!         let update = upgrades.recv(|u| {
//!             if u.version.is_empty() {
//!                 return Err(Error::new("invalid", "no version"));
//!             }
//!             Ok(())
//!         })?;
//!         let done: String = ctx.activity("cloud/upgrade").input(&update.input().version).call()?;
//!         update.reply(Ok(done));
//!     }
//! }
//! ```
//!
//! The validator must be deterministic and must not call the host: it runs
//! again when the run replays. To take updates while waiting on something
//! else, select over [`PendingUpdate::handle`] and decide with
//! [`PendingUpdate::take`].

use serde::{Serialize, de::DeserializeOwned};
use std::marker::PhantomData;

use crate::Error;
use crate::bindings::workflow::weft::workflow::context as host;
use crate::bindings::workflow::weft::workflow::types as wit;
use crate::{Context, Handle, Selected};

impl Context {
    /// Receive updates named `name`: requests whose callers wait for the
    /// answer (`POST /v1/workflow-ids/{id}/updates/{name}`). See
    /// [`UpdateReceiver`].
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// let update = ctx.updates::<u32>("resize").recv(|_| Ok(()))?;
    /// let size = *update.input();
    /// update.reply(Ok(size));
    /// # Ok(()) }
    /// ```
    pub fn updates<I: DeserializeOwned>(&self, name: &str) -> UpdateReceiver<I> {
        UpdateReceiver::new(name)
    }
}

/// Receives updates named `name`, one at a time, in arrival order.
///
/// ```no_run
/// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
/// let resizes = ctx.updates::<u32>("resize");
/// let update = resizes.recv(|n| match n {
///     1..=64 => Ok(()),
///     _ => Err(weft_sdk::Error::new("invalid", "between 1 and 64 replicas")),
/// })?;
/// update.reply(Ok("resized"));
/// # Ok(()) }
/// ```
pub struct UpdateReceiver<I> {
    name: String,
    _input: PhantomData<I>,
}

impl<I: DeserializeOwned> UpdateReceiver<I> {
    pub(crate) fn new(name: &str) -> Self {
        UpdateReceiver {
            name: name.to_string(),
            _input: PhantomData,
        }
    }

    /// Start waiting for the next update without blocking (to select over
    /// it with other operations).
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// let next = ctx.updates::<String>("note").pending();
    /// let tick = ctx.timer(std::time::Duration::from_secs(60));
    /// let picked = ctx.select(&[next.handle(), tick.handle()]);
    /// if picked.index == 0 {
    ///     if let Some(update) = next.take(picked, |_| Ok(()))? {
    ///         update.reply(Ok(()));
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn pending(&self) -> PendingUpdate<I> {
        PendingUpdate {
            handle: host::receive_update(&self.name),
            _input: PhantomData,
        }
    }

    /// Wait (durably) for the next update that `validate` accepts; the ones
    /// it refuses are answered to their callers with its error.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// let update = ctx.updates::<String>("rename").recv(|name| {
    ///     if name.is_empty() {
    ///         return Err(weft_sdk::Error::new("invalid", "an empty name"));
    ///     }
    ///     Ok(())
    /// })?;
    /// let answer = format!("renamed to {}", update.input());
    /// update.reply(Ok(answer));
    /// # Ok(()) }
    /// ```
    pub fn recv(&self, validate: impl Fn(&I) -> Result<(), Error>) -> Result<Update<I>, Error> {
        let pending = self.pending();
        loop {
            let payload = host::await_(pending.handle).map_err(Error::from);
            if let Some(update) = pending.decide(payload, &validate)? {
                return Ok(update);
            }
        }
    }
}

/// An update being waited for; see [`UpdateReceiver::pending`] for the
/// select that takes it.
///
/// ```no_run
/// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
/// let next = ctx.updates::<u32>("resize").pending();
/// let done = ctx.activity("cloud/migrate").start::<()>()?;
/// loop {
///     let picked = ctx.select(&[next.handle(), done.handle()]);
///     if picked.index == 1 {
///         break picked.decode::<()>()?;
///     }
///     if let Some(update) = next.take(picked, |_| Ok(()))? {
///         update.reply(Ok("resizing after the migration"));
///     }
/// }
/// # Ok(()) }
/// ```
#[must_use = "a pending update does nothing until it is awaited"]
pub struct PendingUpdate<I> {
    handle: u32,
    _input: PhantomData<I>,
}

impl<I: DeserializeOwned> PendingUpdate<I> {
    /// For [`crate::Context::select`].
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) {
    /// let next = ctx.updates::<u32>("resize").pending();
    /// let picked = ctx.select(&[next.handle()]);
    /// # }
    /// ```
    pub fn handle(&self) -> Handle {
        Handle(self.handle)
    }

    /// The select picked this update: validate it. `Ok(None)` if
    /// `validate` refused it (its caller has the error); this pending
    /// update then waits for the next one and may be selected again.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// let next = ctx.updates::<u32>("resize").pending();
    /// let picked = ctx.select(&[next.handle()]);
    /// match next.take(picked, |n| if *n > 0 { Ok(()) } else { Err("zero".into()) })? {
    ///     Some(update) => update.reply(Ok(())),
    ///     None => { /* refused; `next` waits for the following one */ }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn take(
        &self,
        selected: Selected,
        validate: impl Fn(&I) -> Result<(), Error>,
    ) -> Result<Option<Update<I>>, Error> {
        self.decide(selected.result, &validate)
    }

    fn decide(
        &self,
        payload: Result<String, Error>,
        validate: &impl Fn(&I) -> Result<(), Error>,
    ) -> Result<Option<Update<I>>, Error> {
        let payload = payload?;
        let refused = match serde_json::from_str::<I>(&payload) {
            Err(e) => Error::new("invalid-input", format!("cannot decode the update: {e}")),
            Ok(input) => match validate(&input) {
                Ok(()) => {
                    return Ok(Some(Update {
                        handle: self.handle,
                        input,
                    }));
                }
                Err(e) => e,
            },
        };
        host::reject_update(self.handle, &wit::ErrorInfo::from(refused));
        Ok(None)
    }
}

/// An accepted update: handle it, then [`Update::reply`]. Until it is
/// answered its caller waits (an update the run ends without answering is
/// answered with the error `update-unanswered`).
///
/// ```no_run
/// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
/// let update = ctx.updates::<String>("add-cell").recv(|_| Ok(()))?;
/// let added = ctx.activity("cloud/add-cell").input(update.input()).call::<u32>();
/// update.reply(added); // the caller sees the activity's result or its error
/// # Ok(()) }
/// ```
#[must_use = "an update's caller waits until it is replied to"]
pub struct Update<I> {
    handle: u32,
    input: I,
}

impl<I> Update<I> {
    /// What the caller sent.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// let update = ctx.updates::<u32>("resize").recv(|_| Ok(()))?;
    /// let replicas: u32 = *update.input();
    /// update.reply(Ok(replicas));
    /// # Ok(()) }
    /// ```
    pub fn input(&self) -> &I {
        &self.input
    }

    /// Answer the caller: journaled, and durable before this returns.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// let update = ctx.updates::<u32>("resize").recv(|_| Ok(()))?;
    /// if *update.input() > 64 {
    ///     update.reply::<()>(Err(weft_sdk::Error::new("too-large", "at most 64")));
    /// } else {
    ///     update.reply(Ok("resized"));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn reply<O: Serialize>(self, result: Result<O, Error>) {
        let result = result.and_then(|o| {
            serde_json::to_string(&o).map_err(|e| Error::decode("the update's answer", e))
        });
        let answer = result.map_err(wit::ErrorInfo::from);
        host::complete_update(self.handle, answer.as_deref());
    }
}
