use serde::{Serialize, de::DeserializeOwned};

use crate::Error;
use crate::bindings::activity::weft::workflow::activity_context as host;
use crate::bindings::activity::weft::workflow::types::{ErrorInfo, LogLevel};

/// What an activity attempt knows about itself.
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
    pub fn idempotency_key(&self) -> &str {
        &self.idempotency_key
    }

    /// 1 for the first attempt.
    pub fn attempt(&self) -> u32 {
        host::info().attempt
    }

    pub fn run_id(&self) -> String {
        host::info().run_id
    }

    pub fn workflow_id(&self) -> String {
        host::info().workflow_id
    }

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
