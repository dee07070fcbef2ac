use serde::{Deserialize, Serialize};
use std::fmt;

use crate::bindings::activity::weft::workflow::types::{
    Cause as ActivityCause, ErrorInfo as ActivityErrorInfo, TimeoutKind as ActivityTimeoutKind,
};
use crate::bindings::workflow::weft::workflow::types::{Cause, ErrorInfo, TimeoutKind};

/// The one error type of workflows and activities.
///
/// `kind` is a stable, machine-matchable word (`"not-found"`, `"timed-out"`);
/// retry policies name the kinds that must not be retried. An error keeps
/// what caused it: a failed activity's await answers `activity-failed`
/// caused by the activity's own error, a failed child's `child-failed`
/// caused by the child's, and [`Error::is`] looks through the whole chain.
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
    /// Raised by an activity: the host makes no further attempt.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub non_retryable: bool,
    /// Which timeout, when `kind` is `timed-out`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Timeout>,
    /// What caused this error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Box<Error>>,
}

/// Which limit ended an operation that timed out.
///
/// ```no_run
/// # fn example(ctx: &weft_sdk::Context) {
/// use std::time::Duration;
/// use weft_sdk::Timeout;
/// let scan = ctx.activity("disk/scan").heartbeat_timeout(Duration::from_secs(30)).call::<()>();
/// if let Err(e) = scan {
///     let stalled = e.chain().any(|e| e.timeout == Some(Timeout::Heartbeat));
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Timeout {
    /// An activity's first attempt did not start in time (its component
    /// not deployed, no free slot).
    ScheduleToStart,
    /// One attempt ran too long.
    StartToClose,
    /// All attempts together ran too long.
    ScheduleToClose,
    /// An attempt stopped heartbeating.
    Heartbeat,
    /// A run passed its deadline.
    RunDeadline,
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
            non_retryable: false,
            timeout: None,
            cause: None,
        }
    }

    /// An activity's error that no retry can fix: the host stops at this
    /// attempt whatever the retry policy says.
    ///
    /// ```
    /// let e = weft_sdk::Error::new("invalid-region", "no region mars-1").non_retryable();
    /// assert!(e.non_retryable);
    /// ```
    pub fn non_retryable(mut self) -> Self {
        self.non_retryable = true;
        self
    }

    /// This error, caused by `cause` (which keeps its own causes).
    ///
    /// ```
    /// use weft_sdk::Error;
    /// let quota = Error::new("quota-exceeded", "10 cells already");
    /// let e = Error::new("provision-failed", "tenant acme").caused_by(quota);
    /// assert_eq!(e.root_cause().kind, "quota-exceeded");
    /// ```
    pub fn caused_by(mut self, cause: Error) -> Self {
        self.cause = Some(Box::new(cause));
        self
    }

    /// This error, then its cause, and so on to the root.
    ///
    /// ```
    /// use weft_sdk::Error;
    /// let e = Error::new("child-failed", "provision")
    ///     .caused_by(Error::new("activity-failed", "cloud/create").caused_by(Error::new("quota-exceeded", "full")));
    /// let kinds: Vec<&str> = e.chain().map(|e| e.kind.as_str()).collect();
    /// assert_eq!(kinds, ["child-failed", "activity-failed", "quota-exceeded"]);
    /// ```
    pub fn chain(&self) -> impl Iterator<Item = &Error> {
        std::iter::successors(Some(self), |e| e.cause.as_deref())
    }

    /// The innermost cause (the error itself when it has none).
    ///
    /// ```
    /// let e = weft_sdk::Error::new("not-found", "no cell eu-9");
    /// assert_eq!(e.root_cause().kind, "not-found");
    /// ```
    pub fn root_cause(&self) -> &Error {
        self.chain().last().unwrap_or(self)
    }

    /// The first error of `kind` in the chain.
    ///
    /// ```
    /// use weft_sdk::Error;
    /// let e = Error::new("activity-failed", "cloud/create")
    ///     .caused_by(Error::new("quota-exceeded", "full").with_details(serde_json::json!({ "limit": 10 })));
    /// assert_eq!(e.find("quota-exceeded").unwrap().details.as_ref().unwrap()["limit"], 10);
    /// ```
    pub fn find(&self, kind: &str) -> Option<&Error> {
        self.chain().find(|e| e.kind == kind)
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

    /// Whether this error or one of its causes is of `kind`: a parent
    /// matches a child's or an activity's own error through the boundary
    /// errors around it.
    ///
    /// ```
    /// use weft_sdk::Error;
    /// let e = Error::new("activity-failed", "cloud/create").caused_by(Error::new("not-found", "no cell eu-9"));
    /// assert!(e.is("not-found") && e.is("activity-failed") && !e.is("quota-exceeded"));
    /// ```
    pub fn is(&self, kind: &str) -> bool {
        self.find(kind).is_some()
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
        self.is(weft_contract::kind::CANCELLED)
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
        self.is(weft_contract::kind::TIMED_OUT)
    }

    pub(crate) fn decode(what: &str, err: serde_json::Error) -> Self {
        Error::new("decode", format!("cannot decode {what}: {err}"))
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

/// The two worlds' bindings have their own copies of the contract's
/// types: one conversion, written once for both.
macro_rules! convert {
    ($info:ident, $cause:ident, $timeout:ident) => {
        impl From<$timeout> for Timeout {
            fn from(t: $timeout) -> Self {
                match t {
                    $timeout::ScheduleToStart => Timeout::ScheduleToStart,
                    $timeout::StartToClose => Timeout::StartToClose,
                    $timeout::ScheduleToClose => Timeout::ScheduleToClose,
                    $timeout::Heartbeat => Timeout::Heartbeat,
                    $timeout::RunDeadline => Timeout::RunDeadline,
                }
            }
        }

        impl From<Timeout> for $timeout {
            fn from(t: Timeout) -> Self {
                match t {
                    Timeout::ScheduleToStart => $timeout::ScheduleToStart,
                    Timeout::StartToClose => $timeout::StartToClose,
                    Timeout::ScheduleToClose => $timeout::ScheduleToClose,
                    Timeout::Heartbeat => $timeout::Heartbeat,
                    Timeout::RunDeadline => $timeout::RunDeadline,
                }
            }
        }

        /// The WIT lists causes nearest first; the SDK nests them.
        impl From<$info> for Error {
            fn from(info: $info) -> Self {
                let cause = info
                    .causes
                    .into_iter()
                    .rev()
                    .fold(None, |inner, c: $cause| {
                        Some(Box::new(Error {
                            kind: c.kind,
                            message: c.message,
                            details: parse_details(c.details),
                            non_retryable: c.non_retryable,
                            timeout: c.timeout.map(Into::into),
                            cause: inner,
                        }))
                    });
                Error {
                    kind: info.kind,
                    message: info.message,
                    details: parse_details(info.details),
                    non_retryable: info.non_retryable,
                    timeout: info.timeout.map(Into::into),
                    cause,
                }
            }
        }

        impl From<Error> for $info {
            fn from(err: Error) -> Self {
                let causes = err
                    .chain()
                    .skip(1)
                    .map(|c| $cause {
                        kind: c.kind.clone(),
                        message: c.message.clone(),
                        details: details_text(&c.details),
                        non_retryable: c.non_retryable,
                        timeout: c.timeout.map(Into::into),
                    })
                    .collect();
                $info {
                    details: details_text(&err.details),
                    non_retryable: err.non_retryable,
                    timeout: err.timeout.map(Into::into),
                    causes,
                    kind: err.kind,
                    message: err.message,
                }
            }
        }
    };
}

convert!(ErrorInfo, Cause, TimeoutKind);
convert!(ActivityErrorInfo, ActivityCause, ActivityTimeoutKind);
