use serde::{Serialize, de::DeserializeOwned};

use crate::Error;
use crate::bindings::activity::weft::workflow::activity_context as host;
use crate::bindings::activity::weft::workflow::types::{ErrorInfo, LogLevel};

/// What an activity attempt knows about itself; every activity function
/// receives it first.
///
/// ```no_run
/// use weft_sdk::{ActivityContext, Error, LogLevel};
///
/// fn create_vm(ctx: &ActivityContext, cell: String) -> Result<String, Error> {
///     ctx.log(LogLevel::Info, format!("attempt {} for {cell}", ctx.attempt()));
///     Ok(format!("vm-{}", ctx.idempotency_key()))
/// }
///
/// weft_sdk::activities! { "create-vm" => create_vm }
/// ```
pub struct ActivityContext {
    idempotency_key: String,
}

impl ActivityContext {
    #[doc(hidden)]
    pub fn new(idempotency_key: String) -> Self {
        ActivityContext { idempotency_key }
    }

    /// The same for every attempt of one scheduled activity (run id + event
    /// sequence number): hand it to external systems so they deduplicate.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::ActivityContext) -> Result<(), weft_sdk::Error> {
    /// let order = serde_json::json!({ "item": "cell", "request_id": ctx.idempotency_key() });
    /// weft_sdk::http::post_json("http://127.0.0.1:8080/orders", &order)?.error_for_status()?;
    /// # Ok(()) }
    /// ```
    pub fn idempotency_key(&self) -> &str {
        &self.idempotency_key
    }

    /// 1 for the first attempt.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::ActivityContext) -> Result<(), weft_sdk::Error> {
    /// if ctx.attempt() > 3 {
    ///     // Later attempts take the slower, safer path.
    /// }
    /// # Ok(()) }
    /// ```
    pub fn attempt(&self) -> u32 {
        host::info().attempt
    }

    /// The id of the run that scheduled this activity.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::ActivityContext) {
    /// let tag = format!("weft-run={}", ctx.run_id());
    /// # }
    /// ```
    pub fn run_id(&self) -> String {
        host::info().run_id
    }

    /// The workflow id of the run that scheduled this activity.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::ActivityContext) {
    /// let owner = format!("managed-by={}", ctx.workflow_id());
    /// # }
    /// ```
    pub fn workflow_id(&self) -> String {
        host::info().workflow_id
    }

    /// Tell the host this attempt is alive, with its progress: with a
    /// heartbeat timeout, an attempt that stops calling this fails and is
    /// retried, and the next attempt reads `details` from
    /// [`heartbeat_details`](Self::heartbeat_details). Cheap to call often:
    /// the host stores the details at most every few seconds.
    ///
    /// ```no_run
    /// # fn copy_block(_: u64) {}
    /// # fn example(ctx: &weft_sdk::ActivityContext) -> Result<(), weft_sdk::Error> {
    /// let start: u64 = ctx.heartbeat_details().unwrap_or(0);
    /// for block in start..1_000 {
    ///     copy_block(block);
    ///     ctx.heartbeat(&(block + 1))?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Answers `Err` (kind `cancelled`) once the workflow has cancelled the
    /// activity, so `ctx.heartbeat(&progress)?` winds it down.
    pub fn heartbeat(&self, details: &impl Serialize) -> Result<(), Error> {
        let details = serde_json::to_string(details).unwrap_or_else(|_| "null".into());
        if host::heartbeat(&details) {
            Ok(())
        } else {
            Err(Error::new(
                weft_contract::kind::CANCELLED,
                "the workflow cancelled this activity",
            ))
        }
    }

    /// Whether the workflow has cancelled this activity (it learns of it
    /// here or through [`heartbeat`](Self::heartbeat)).
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::ActivityContext) -> Result<(), weft_sdk::Error> {
    /// while !ctx.is_cancelled() {
    ///     // poll the cloud for the next change
    /// #   break;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_cancelled(&self) -> bool {
        host::is_cancelled()
    }

    /// The details of an earlier attempt's last heartbeat (`None` on the
    /// first attempt, or if they do not decode as `T`).
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::ActivityContext) {
    /// #[derive(serde::Deserialize)]
    /// struct Progress { copied: u64 }
    /// let from = ctx.heartbeat_details::<Progress>().map_or(0, |p| p.copied);
    /// # }
    /// ```
    pub fn heartbeat_details<T: DeserializeOwned>(&self) -> Option<T> {
        let details = host::info().heartbeat_details?;
        serde_json::from_str(&details).ok()
    }

    /// A log line in the server's log, tagged with the run and activity.
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::ActivityContext) {
    /// ctx.log(weft_sdk::LogLevel::Warn, "quota at 90%");
    /// # }
    /// ```
    pub fn log(&self, level: crate::LogLevel, message: impl AsRef<str>) {
        let level = match level {
            crate::LogLevel::Debug => LogLevel::Debug,
            crate::LogLevel::Info => LogLevel::Info,
            crate::LogLevel::Warn => LogLevel::Warn,
            crate::LogLevel::Error => LogLevel::Error,
        };
        host::log(level, message.as_ref());
    }
}

#[doc(hidden)]
pub fn __invoke_activity<I: DeserializeOwned, O: Serialize>(
    ctx: &ActivityContext,
    input: &str,
    function: fn(&ActivityContext, I) -> Result<O, Error>,
) -> Result<String, ErrorInfo> {
    let input: I = serde_json::from_str(input).map_err(|e| {
        Error::new(
            weft_contract::kind::BAD_INPUT,
            format!("cannot decode the input: {e}"),
        )
    })?;
    let output = function(ctx, input)?;
    serde_json::to_string(&output)
        .map_err(|e| Error::new(weft_contract::kind::BAD_OUTPUT, e.to_string()).into())
}

#[doc(hidden)]
pub fn __unknown_function(name: &str, known: &[&str]) -> ErrorInfo {
    Error::new(
        weft_contract::kind::UNKNOWN_FUNCTION,
        format!(
            "this component has no activity `{name}`; it has: {}",
            known.join(", ")
        ),
    )
    .into()
}
