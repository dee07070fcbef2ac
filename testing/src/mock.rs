//! A mocked activity: what it was asked, for assertions.

use crate::{ErrorInfo, NativeCall};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use weft::runtime::NativeActivity;

/// The calls a mocked activity received, in order (every attempt counts).
///
/// ```no_run
/// # async fn example(env: &weft_testing::TestEnv) -> anyhow::Result<()> {
/// use serde_json::json;
/// let deploy = env.mock_activity("cloud/deploy", |_| Ok(json!("ok")));
/// env.start("rollout", json!({ "rings": 3 })).await?.result().await?;
/// assert_eq!(deploy.inputs(), [json!("ring-1"), json!("ring-2"), json!("ring-3")]);
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct Mock {
    calls: Arc<Mutex<Vec<NativeCall>>>,
}

impl Mock {
    /// Record each call, then answer it with `f`.
    pub(crate) fn wrap<F>(&self, f: F) -> NativeActivity
    where
        F: Fn(&NativeCall) -> Result<Value, ErrorInfo> + Send + Sync + 'static,
    {
        let calls = self.calls.clone();
        Arc::new(move |call: NativeCall| {
            let answer = f(&call);
            calls.lock().unwrap().push(call);
            answer
        })
    }

    /// How many attempts it answered.
    ///
    /// ```no_run
    /// # async fn example(env: &weft_testing::TestEnv) -> anyhow::Result<()> {
    /// let notify = env.mock_activity("mail/notify", |_| Ok(serde_json::Value::Null));
    /// env.start("onboarding", "ada").await?.result().await?;
    /// assert_eq!(notify.count(), 2); // welcome, then a reminder a week later
    /// # Ok(()) }
    /// ```
    pub fn count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    /// Every attempt, in order.
    ///
    /// ```no_run
    /// # async fn example(env: &weft_testing::TestEnv) -> anyhow::Result<()> {
    /// use weft_testing::ErrorInfo;
    /// let flaky = env.mock_activity("cloud/probe", |call| match call.attempt {
    ///     1 => Err(ErrorInfo::new("unavailable", "once")),
    ///     _ => Ok(serde_json::json!(true)),
    /// });
    /// env.start("health", "eu-1").await?.result().await?;
    /// let calls = flaky.calls();
    /// assert_eq!(calls.len(), 2);
    /// assert_eq!(calls[0].idempotency_key, calls[1].idempotency_key); // one activity
    /// # Ok(()) }
    /// ```
    pub fn calls(&self) -> Vec<NativeCall> {
        self.calls.lock().unwrap().clone()
    }

    /// The input of every attempt, in order.
    ///
    /// ```no_run
    /// # async fn example(env: &weft_testing::TestEnv) -> anyhow::Result<()> {
    /// use serde_json::json;
    /// let create = env.mock_activity("dns/create", |call| Ok(call.input.clone()));
    /// env.start("provision", json!({ "tenant": "acme" })).await?.result().await?;
    /// assert_eq!(create.inputs(), [json!("acme.example.net")]);
    /// # Ok(()) }
    /// ```
    pub fn inputs(&self) -> Vec<Value> {
        self.calls().into_iter().map(|c| c.input).collect()
    }
}
