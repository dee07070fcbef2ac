use serde::{Deserialize, Serialize};
use std::fmt;

use crate::bindings::activity::weft::workflow::types::ErrorInfo as ActivityErrorInfo;
use crate::bindings::workflow::weft::workflow::types::{ErrorInfo, Failure};

/// The one error type of workflows and activities.
///
/// `kind` is a stable, machine-matchable word (`"not-found"`, `"timed-out"`);
/// retry policies name the kinds that must not be retried.
///
/// ```
/// use weft_sdk::Error;
/// let e = Error::new("quota-exceeded", "tenant acme has 10 cells already");
/// assert_eq!(e.kind, "quota-exceeded");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Error {
    pub kind: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl Error {
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Error {
            kind: kind.into(),
            message: message.into(),
            details: None,
        }
    }

    /// Attach structured details (any serializable value).
    pub fn with_details(mut self, details: impl Serialize) -> Self {
        self.details = serde_json::to_value(details).ok();
        self
    }

    pub fn is(&self, kind: &str) -> bool {
        self.kind == kind
    }

    /// The run was cancelled (or the awaited operation was).
    pub fn is_cancelled(&self) -> bool {
        self.kind == weft_contract::kind::CANCELLED
    }

    pub fn is_timed_out(&self) -> bool {
        self.kind == weft_contract::kind::TIMED_OUT
    }

    pub(crate) fn decode(what: &str, err: serde_json::Error) -> Self {
        Error::new("decode", format!("cannot decode {what}: {err}"))
    }

    pub(crate) fn from_failure(failure: Failure) -> Self {
        match failure {
            Failure::Application(info) => Error::from(info),
            Failure::TimedOut(message) => Error::new(weft_contract::kind::TIMED_OUT, message),
            Failure::Cancelled => Error::new(
                weft_contract::kind::CANCELLED,
                "the operation was cancelled",
            ),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// Everyday errors convert with kind `"error"`, so `?` works on them.
macro_rules! from_std_error {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(err: $t) -> Self {
                Error::new("error", err.to_string())
            }
        }
    )*};
}

from_std_error!(
    serde_json::Error,
    std::io::Error,
    std::num::ParseIntError,
    std::num::ParseFloatError,
    std::fmt::Error,
    std::string::FromUtf8Error
);

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::new("error", message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error::new("error", message)
    }
}

fn details_text(details: &Option<serde_json::Value>) -> Option<String> {
    details.as_ref().map(|d| d.to_string())
}

fn parse_details(details: Option<String>) -> Option<serde_json::Value> {
    details.map(|d| serde_json::from_str(&d).unwrap_or(serde_json::Value::String(d)))
}

impl From<ErrorInfo> for Error {
    fn from(info: ErrorInfo) -> Self {
        Error {
            kind: info.kind,
            message: info.message,
            details: parse_details(info.details),
        }
    }
}

impl From<Error> for ErrorInfo {
    fn from(err: Error) -> Self {
        ErrorInfo {
            details: details_text(&err.details),
            kind: err.kind,
            message: err.message,
        }
    }
}

impl From<Error> for ActivityErrorInfo {
    fn from(err: Error) -> Self {
        ActivityErrorInfo {
            details: details_text(&err.details),
            kind: err.kind,
            message: err.message,
        }
    }
}
