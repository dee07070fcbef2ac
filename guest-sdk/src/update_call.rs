//! Asking another workflow for an update: a request into the open run of a
//! workflow id whose answer this workflow waits for durably.
//!
//! ```no_run
//! use serde_json::{Value, json};
//! use weft_sdk::{Context, Error};
//!
//! fn ask_cell(ctx: &Context) -> Result<Value, Error> {
//!     ctx.update_workflow("cell-eu-1", "upgrade")
//!         .payload(&json!({ "version": "1.32" }))
//!         .with_start("cell-entity", &json!({ "cell": "eu-1" }))
//!         .call()
//! }
//! ```
//!
//! The answer is the handler's output. Its error, a validator's rejection,
//! or no run to take the update (kinds `not-found`, `run-ended`) fail the
//! call with that error.

use serde::{Serialize, de::DeserializeOwned};

use crate::Error;
use crate::bindings::workflow::weft::workflow::context as host;
use crate::{Context, Pending};

impl Context {
    /// Ask the open run of `workflow_id` for update `name`. See
    /// [`UpdateCall`].
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// let weight: u32 = ctx.update_workflow("cell-eu-1", "get-weight").call()?;
    /// # Ok(()) }
    /// ```
    pub fn update_workflow(&self, workflow_id: &str, name: &str) -> UpdateCall {
        UpdateCall {
            workflow_id: workflow_id.to_string(),
            name: name.to_string(),
            payload: Ok("null".to_string()),
            start: None,
        }
    }
}

/// Builder of an update to another workflow:
/// `ctx.update_workflow(id, name).payload(&x).call()`.
///
/// ```no_run
/// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
/// let accepted: bool = ctx.update_workflow("quota-acme", "reserve").payload(&3).call()?;
/// # Ok(()) }
/// ```
pub struct UpdateCall {
    workflow_id: String,
    name: String,
    payload: Result<String, Error>,
    /// Workflow and input to start under the id if no run is open.
    start: Option<(String, Result<String, Error>)>,
}

impl UpdateCall {
    /// The update's input, any serializable value (default `null`).
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// use serde_json::json;
    /// ctx.update_workflow("cell-eu-1", "set-weight").payload(&json!({ "weight": 20 })).call::<()>()?;
    /// # Ok(()) }
    /// ```
    pub fn payload(mut self, payload: &impl Serialize) -> Self {
        self.payload = serde_json::to_string(payload).map_err(|e| Error::decode("the payload", e));
        self
    }

    /// Start `workflow` with `input` under the workflow id first if no run
    /// is open (entity workflows).
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// use serde_json::json;
    /// let slot: u32 = ctx
    ///     .update_workflow("quota-acme", "reserve")
    ///     .with_start("quota-entity", &json!({ "tenant": "acme", "limit": 10 }))
    ///     .call()?;
    /// # Ok(()) }
    /// ```
    pub fn with_start(mut self, workflow: &str, input: &impl Serialize) -> Self {
        let input = serde_json::to_string(input).map_err(|e| Error::decode("the input", e));
        self.start = Some((workflow.to_string(), input));
        self
    }

    /// Send the update without waiting for its answer.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// let answer = ctx.update_workflow("cell-eu-1", "drain").start::<()>()?;
    /// ctx.activity("pager/notify").input(&"draining eu-1").call::<()>()?;
    /// answer.wait()?;
    /// # Ok(()) }
    /// ```
    pub fn start<T: DeserializeOwned>(self) -> Result<Pending<T>, Error> {
        let payload = self.payload?;
        let handle = match self.start {
            None => host::update_workflow(&self.workflow_id, &self.name, &payload),
            Some((workflow, input)) => {
                host::update_with_start(&workflow, &self.workflow_id, &input?, &self.name, &payload)
            }
        };
        Ok(Pending::new(handle))
    }

    /// Send the update and wait (durably) for its answer.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// match ctx.update_workflow("cell-eu-1", "drain").call::<()>() {
    ///     Err(e) if e.is("not-found") => { /* no open run under that id */ }
    ///     other => other?,
    /// }
    /// # Ok(()) }
    /// ```
    pub fn call<T: DeserializeOwned>(self) -> Result<T, Error> {
        self.start()?.wait()
    }
}
