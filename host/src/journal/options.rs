//! What a workflow asks an activity or a child to run with: retries,
//! timeouts, cancellation, and what the child does when its parent ends.

use super::failure::Failure;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub initial_interval_ms: u64,
    pub backoff_coefficient: f64,
    pub max_interval_ms: u64,
    pub max_attempts: u32,
    #[serde(default)]
    pub non_retryable: Vec<String>,
}

impl RetryPolicy {
    /// The wait after attempt `failed_attempt` (1 for the first) failed.
    pub fn backoff_ms(&self, failed_attempt: u32) -> u64 {
        let exp = self
            .backoff_coefficient
            .max(1.0)
            .powi(failed_attempt.saturating_sub(1).min(64) as i32);
        let ms = (self.initial_interval_ms as f64 * exp).min(self.max_interval_ms as f64);
        ms.max(0.0) as u64
    }

    /// Whether attempt `attempt`, failed with `failure`, gets another: not
    /// for a non-retryable error or kind, nor past the last attempt.
    pub fn retries(&self, failure: &Failure, attempt: u32) -> bool {
        let kind = failure.kind();
        !failure.non_retryable()
            && !self.non_retryable.iter().any(|k| k == kind)
            && (self.max_attempts == 0 || attempt < self.max_attempts)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        use weft_contract::retry;
        RetryPolicy {
            initial_interval_ms: retry::INITIAL_INTERVAL_MS,
            backoff_coefficient: retry::BACKOFF_COEFFICIENT,
            max_interval_ms: retry::MAX_INTERVAL_MS,
            max_attempts: retry::MAX_ATTEMPTS,
            non_retryable: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActivityOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_to_close_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_to_close_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_to_start_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_timeout_ms: Option<u64>,
    /// Absent (the default, try-cancel) in journals written before it.
    #[serde(default, skip_serializing_if = "CancellationMode::is_default")]
    pub cancellation: CancellationMode,
}

/// What happens to a child run when its parent ends first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParentClose {
    #[default]
    Abandon,
    Cancel,
    Terminate,
}

impl ParentClose {
    pub fn as_str(self) -> &'static str {
        match self {
            ParentClose::Abandon => "abandon",
            ParentClose::Cancel => "cancel",
            ParentClose::Terminate => "terminate",
        }
    }
}

/// What an activity's await answers once the workflow cancels it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CancellationMode {
    /// `cancelled` at once; the activity is told.
    #[default]
    TryCancel,
    /// The activity is told; the await answers once it has ended.
    WaitCancellationCompleted,
    /// `cancelled` at once; the activity is not told.
    Abandon,
}

impl CancellationMode {
    fn is_default(&self) -> bool {
        *self == CancellationMode::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::ErrorInfo;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            initial_interval_ms: 100,
            backoff_coefficient: 2.0,
            max_interval_ms: 1000,
            max_attempts: 0,
            non_retryable: vec![],
        };
        assert_eq!(p.backoff_ms(1), 100);
        assert_eq!(p.backoff_ms(2), 200);
        assert_eq!(p.backoff_ms(4), 800);
        assert_eq!(p.backoff_ms(5), 1000);
        assert_eq!(p.backoff_ms(60), 1000);
    }

    #[test]
    fn retries_stop_at_the_last_attempt_and_at_non_retryable_errors() {
        let p = RetryPolicy {
            max_attempts: 3,
            non_retryable: vec!["fatal".into()],
            ..RetryPolicy::default()
        };
        let flaky = Failure::Application(ErrorInfo::new("flaky", "again"));
        assert!(p.retries(&flaky, 2));
        assert!(!p.retries(&flaky, 3));
        assert!(!p.retries(&Failure::Application(ErrorInfo::new("fatal", "no")), 1));
        let flagged = ErrorInfo {
            non_retryable: true,
            ..ErrorInfo::new("flaky", "said no")
        };
        assert!(!p.retries(&Failure::Application(flagged), 1));
    }
}
