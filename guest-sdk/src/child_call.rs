//! Starting a child workflow from a workflow.

use serde::{Serialize, de::DeserializeOwned};

use crate::bindings::workflow::weft::workflow::context as host;
use crate::bindings::workflow::weft::workflow::types as wit;
use crate::{Context, Error, ParentClose, Pending};

impl Context {
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
                run_timeout_ms: None,
                retry: None,
            },
        }
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
    /// The child's input, any serializable value (default `null`).
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// use serde_json::json;
    /// ctx.child("provision").input(&json!({ "tenant": "acme", "cells": 3 })).call::<()>()?;
    /// # Ok(()) }
    /// ```
    pub fn input(mut self, input: &impl Serialize) -> Self {
        self.input = serde_json::to_string(input).map_err(|e| Error::decode("the input", e));
        self
    }

    /// The child's workflow id (default: its run id).
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// // A stable id: a second start while this child is open is refused.
    /// ctx.child("provision").workflow_id("tenant-acme").call::<()>()?;
    /// # Ok(()) }
    /// ```
    pub fn workflow_id(mut self, id: impl Into<String>) -> Self {
        self.options.workflow_id = Some(id.into());
        self
    }

    /// What happens to the child if this run ends first (default: it runs on).
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// use weft_sdk::ParentClose;
    /// let watcher = ctx.child("watch-cell").parent_close(ParentClose::Cancel).start::<()>()?;
    /// # Ok(()) }
    /// ```
    pub fn parent_close(mut self, policy: ParentClose) -> Self {
        self.options.parent_close = policy;
        self
    }

    /// The child run's deadline (execution timeout), from its start: a
    /// child that passes it fails the parent's await with `child-failed`
    /// caused by `timed-out` (timeout `run-deadline`).
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// use std::time::Duration;
    /// let drained = ctx.child("drain-cell").run_timeout(Duration::from_secs(600)).call::<()>();
    /// if matches!(&drained, Err(e) if e.is_timed_out()) {
    ///     // the drain took too long: force it
    /// }
    /// # Ok(()) }
    /// ```
    pub fn run_timeout(mut self, d: std::time::Duration) -> Self {
        self.options.run_timeout_ms = Some(d.as_millis() as u64);
        self
    }

    /// Start the child again (a new run under the same workflow id) when a
    /// run fails or passes its deadline, as `policy` says (default: one
    /// run). Cancelled and terminated runs are not retried.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// use std::time::Duration;
    /// use weft_sdk::RetryPolicy;
    /// ctx.child("provision")
    ///     .retry(RetryPolicy::default().max_attempts(3).non_retryable("quota-exceeded"))
    ///     .run_timeout(Duration::from_secs(900))
    ///     .call::<()>()?;
    /// # Ok(()) }
    /// ```
    pub fn retry(mut self, policy: crate::RetryPolicy) -> Self {
        self.options.retry = Some(policy.into());
        self
    }

    /// Start the child without waiting for it.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// let children = ["eu-1", "eu-2"]
    ///     .iter()
    ///     .map(|cell| ctx.child("upgrade-cell").input(cell).start::<()>())
    ///     .collect::<Result<Vec<_>, _>>()?;
    /// for outcome in ctx.join_all(children) {
    ///     outcome?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn start<T: DeserializeOwned>(self) -> Result<Pending<T>, Error> {
        let input = self.input?;
        Ok(Pending::new(host::start_child(
            &self.workflow,
            &input,
            &self.options,
        )))
    }

    /// Start the child and wait for its output (or its failure).
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// let cert: String = ctx.child("issue-cert").input(&"acme.example.net").call()?;
    /// # Ok(()) }
    /// ```
    pub fn call<T: DeserializeOwned>(self) -> Result<T, Error> {
        self.start()?.wait()
    }
}
