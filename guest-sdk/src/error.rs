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
    /// A stable, machine-matchable word.
    pub kind: String,
    /// For people.
    pub message: String,
    /// Anything structured the caller may want (any JSON value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl Error {
    /// An error of `kind` with `message` and no details.
    ///
    /// ```
    /// let e = weft_sdk::Error::new("not-found", "no cell eu-9");
    /// assert_eq!(e.to_string(), "not-found: no cell eu-9");
    /// ```
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Error {
            kind: kind.into(),
            message: message.into(),
            details: None,
        }
    }

    /// Attach structured details (any serializable value).
    ///
    /// ```
    /// use serde_json::json;
    /// let e = weft_sdk::Error::new("quota-exceeded", "too many cells")
    ///     .with_details(json!({ "limit": 10, "used": 10 }));
    /// assert_eq!(e.details, Some(json!({ "limit": 10, "used": 10 })));
    /// ```
    pub fn with_details(mut self, details: impl Serialize) -> Self {
        self.details = serde_json::to_value(details).ok();
        self
    }

    /// Whether this error is of `kind`.
    ///
    /// ```
    /// let e = weft_sdk::Error::new("not-found", "no cell eu-9");
    /// assert!(e.is("not-found"));
    /// ```
    pub fn is(&self, kind: &str) -> bool {
        self.kind == kind
    }

    /// The run was cancelled (or the awaited operation was).
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// if let Err(e) = ctx.activity("cloud/migrate").call::<()>() {
    ///     if e.is_cancelled() {
    ///         ctx.activity("cloud/rollback").call::<()>()?; // clean up, then end
    ///     }
    ///     return Err(e);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.kind == weft_contract::kind::CANCELLED
    }

    /// A timeout ended the operation (an activity's, a child's, the run's).
    ///
    /// ```no_run
    /// # fn example(ctx: &weft_sdk::Context) -> Result<(), weft_sdk::Error> {
    /// use std::time::Duration;
    /// let probe = ctx.activity("cloud/probe").timeout(Duration::from_secs(2)).call::<()>();
    /// let reachable = !matches!(&probe, Err(e) if e.is_timed_out());
    /// # Ok(()) }
    /// ```
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
