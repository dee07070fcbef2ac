//! Host-side bindings generated from the contract: `wit/` (0.2, what the
//! SDK builds against) and `wit/0.1` (components built before 0.2, whose
//! imports `contract_v0_1` answers through the 0.2 implementation).

/// The `workflow` world: context imports are async (awaiting an activity or
/// a timer suspends the guest) and trappable (a divergence stops it).
pub mod workflow {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "workflow",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

/// The `activity` world; it shares the `types` interface with `workflow`.
pub mod activity {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "activity",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "weft:workflow/types": super::workflow::weft::workflow::types,
        },
    });
}

/// Both worlds of contract 0.1.
pub mod v0_1 {
    pub mod workflow {
        wasmtime::component::bindgen!({
            path: "../wit/0.1",
            world: "workflow",
            imports: { default: async | trappable },
            exports: { default: async },
        });
    }

    pub mod activity {
        wasmtime::component::bindgen!({
            path: "../wit/0.1",
            world: "activity",
            imports: { default: trappable },
            exports: { default: async },
            with: {
                "weft:workflow/types": super::workflow::weft::workflow::types,
            },
        });
    }
}

pub use workflow::weft::workflow::types::{
    ActivityOptions as WitActivityOptions, CancellationMode as WitCancellationMode,
    Cause as WitCause, ErrorInfo as WitErrorInfo, LogLevel, RetryPolicy as WitRetryPolicy,
    TimeoutKind as WitTimeoutKind,
};

use crate::journal::{
    ActivityOptions, CancellationMode, ErrorInfo, Failure, RetryPolicy, TimeoutKind, payload_value,
};

impl From<WitRetryPolicy> for RetryPolicy {
    fn from(r: WitRetryPolicy) -> Self {
        RetryPolicy {
            initial_interval_ms: r.initial_interval_ms,
            backoff_coefficient: r.backoff_coefficient,
            max_interval_ms: r.max_interval_ms,
            max_attempts: r.max_attempts,
            non_retryable: r.non_retryable,
        }
    }
}

impl From<WitActivityOptions> for ActivityOptions {
    fn from(o: WitActivityOptions) -> Self {
        ActivityOptions {
            retry: o.retry.map(Into::into),
            start_to_close_ms: o.start_to_close_ms,
            schedule_to_close_ms: o.schedule_to_close_ms,
            schedule_to_start_ms: o.schedule_to_start_ms,
            heartbeat_timeout_ms: o.heartbeat_timeout_ms,
            cancellation: match o.cancellation {
                WitCancellationMode::TryCancel => CancellationMode::TryCancel,
                WitCancellationMode::WaitCancellationCompleted => {
                    CancellationMode::WaitCancellationCompleted
                }
                WitCancellationMode::Abandon => CancellationMode::Abandon,
            },
        }
    }
}

impl From<WitTimeoutKind> for TimeoutKind {
    fn from(t: WitTimeoutKind) -> Self {
        match t {
            WitTimeoutKind::ScheduleToStart => TimeoutKind::ScheduleToStart,
            WitTimeoutKind::StartToClose => TimeoutKind::StartToClose,
            WitTimeoutKind::ScheduleToClose => TimeoutKind::ScheduleToClose,
            WitTimeoutKind::Heartbeat => TimeoutKind::Heartbeat,
            WitTimeoutKind::RunDeadline => TimeoutKind::RunDeadline,
        }
    }
}

impl From<TimeoutKind> for WitTimeoutKind {
    fn from(t: TimeoutKind) -> Self {
        match t {
            TimeoutKind::ScheduleToStart => WitTimeoutKind::ScheduleToStart,
            TimeoutKind::StartToClose => WitTimeoutKind::StartToClose,
            TimeoutKind::ScheduleToClose => WitTimeoutKind::ScheduleToClose,
            TimeoutKind::Heartbeat => WitTimeoutKind::Heartbeat,
            TimeoutKind::RunDeadline => WitTimeoutKind::RunDeadline,
        }
    }
}

/// One level of a chain, without its causes.
fn level(kind: String, message: String, details: Option<String>) -> ErrorInfo {
    ErrorInfo {
        details: details.as_deref().map(payload_value),
        ..ErrorInfo::new(kind, message)
    }
}

/// The WIT's flat list of causes is the host's chain, nearest first.
impl From<WitErrorInfo> for ErrorInfo {
    fn from(e: WitErrorInfo) -> Self {
        let cause = e.causes.into_iter().rev().fold(None, |inner, c: WitCause| {
            Some(Box::new(ErrorInfo {
                non_retryable: c.non_retryable,
                timeout: c.timeout.map(Into::into),
                cause: inner,
                ..level(c.kind, c.message, c.details)
            }))
        });
        ErrorInfo {
            non_retryable: e.non_retryable,
            timeout: e.timeout.map(Into::into),
            cause,
            ..level(e.kind, e.message, e.details)
        }
    }
}

impl From<ErrorInfo> for WitErrorInfo {
    fn from(e: ErrorInfo) -> Self {
        let causes = e
            .chain()
            .skip(1)
            .map(|c| WitCause {
                kind: c.kind.clone(),
                message: c.message.clone(),
                details: c.details.as_ref().map(|d| d.to_string()),
                non_retryable: c.non_retryable,
                timeout: c.timeout.map(Into::into),
            })
            .collect();
        WitErrorInfo {
            details: e.details.map(|d| d.to_string()),
            non_retryable: e.non_retryable,
            timeout: e.timeout.map(Into::into),
            causes,
            kind: e.kind,
            message: e.message,
        }
    }
}

impl From<Failure> for WitErrorInfo {
    fn from(f: Failure) -> Self {
        f.into_error().into()
    }
}

pub fn log_level(level: LogLevel) -> tracing::Level {
    match level {
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Warn => tracing::Level::WARN,
        LogLevel::Error => tracing::Level::ERROR,
    }
}
