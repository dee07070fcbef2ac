//! Why operations fail: an error with its cause chain, and the timeout that
//! ended one. Journaled in completion events and a run's end.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why an awaited operation did not produce a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Failure {
    Application(ErrorInfo),
    TimedOut {
        message: String,
        /// Which timeout (journals before 0.2 of the contract lack it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout: Option<TimeoutKind>,
    },
    Cancelled,
}

impl Failure {
    pub fn timed_out(timeout: TimeoutKind, message: impl Into<String>) -> Self {
        Failure::TimedOut {
            message: message.into(),
            timeout: Some(timeout),
        }
    }

    pub fn kind(&self) -> &str {
        match self {
            Failure::Application(e) => &e.kind,
            Failure::TimedOut { .. } => weft_contract::kind::TIMED_OUT,
            Failure::Cancelled => weft_contract::kind::CANCELLED,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Failure::Application(e) => e.message.clone(),
            Failure::TimedOut { message, .. } => message.clone(),
            Failure::Cancelled => "cancelled".into(),
        }
    }

    /// Whether the error itself forbids another attempt.
    pub fn non_retryable(&self) -> bool {
        matches!(self, Failure::Application(e) if e.non_retryable)
    }

    /// The failure as one error, the way a 0.2 guest reads it.
    pub fn into_error(self) -> ErrorInfo {
        match self {
            Failure::Application(e) => e,
            Failure::TimedOut { message, timeout } => ErrorInfo {
                timeout,
                ..ErrorInfo::new(weft_contract::kind::TIMED_OUT, message)
            },
            Failure::Cancelled => ErrorInfo::new(
                weft_contract::kind::CANCELLED,
                "the operation was cancelled",
            ),
        }
    }

    /// `self` as the cause of a boundary error (`activity-failed`,
    /// `child-failed`) that says what failed.
    pub fn across(self, kind: &str, message: String) -> Self {
        Failure::Application(ErrorInfo {
            cause: Some(Box::new(self.into_error())),
            ..ErrorInfo::new(kind, message)
        })
    }
}

/// Which limit ended an operation that timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimeoutKind {
    ScheduleToStart,
    StartToClose,
    ScheduleToClose,
    Heartbeat,
    RunDeadline,
}

impl TimeoutKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeoutKind::ScheduleToStart => "schedule-to-start",
            TimeoutKind::StartToClose => "start-to-close",
            TimeoutKind::ScheduleToClose => "schedule-to-close",
            TimeoutKind::Heartbeat => "heartbeat",
            TimeoutKind::RunDeadline => "run-deadline",
        }
    }
}

/// An error with its cause chain: what a workflow or activity returned, or
/// why an operation failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub kind: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// Raised by an activity: no further attempt.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub non_retryable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<TimeoutKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Box<ErrorInfo>>,
}

impl ErrorInfo {
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorInfo {
            kind: kind.into(),
            message: message.into(),
            details: None,
            non_retryable: false,
            timeout: None,
            cause: None,
        }
    }

    /// This error and its causes, outermost first.
    pub fn chain(&self) -> impl Iterator<Item = &ErrorInfo> {
        std::iter::successors(Some(self), |e| e.cause.as_deref())
    }
}
