//! Host-side bindings generated from `wit/weft.wit`.

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

pub use workflow::weft::workflow::types::{
    ActivityOptions as WitActivityOptions, ErrorInfo as WitErrorInfo, Failure as WitFailure,
    LogLevel, RetryPolicy as WitRetryPolicy,
};

use crate::journal::{ActivityOptions, ErrorInfo, Failure, RetryPolicy, payload_value};

impl From<WitActivityOptions> for ActivityOptions {
    fn from(o: WitActivityOptions) -> Self {
        ActivityOptions {
            retry: o.retry.map(|r: WitRetryPolicy| RetryPolicy {
                initial_interval_ms: r.initial_interval_ms,
                backoff_coefficient: r.backoff_coefficient,
                max_interval_ms: r.max_interval_ms,
                max_attempts: r.max_attempts,
                non_retryable: r.non_retryable,
            }),
            start_to_close_ms: o.start_to_close_ms,
            schedule_to_close_ms: o.schedule_to_close_ms,
        }
    }
}

impl From<WitErrorInfo> for ErrorInfo {
    fn from(e: WitErrorInfo) -> Self {
        ErrorInfo {
            kind: e.kind,
            message: e.message,
            details: e.details.as_deref().map(payload_value),
        }
    }
}

impl From<ErrorInfo> for WitErrorInfo {
    fn from(e: ErrorInfo) -> Self {
        WitErrorInfo {
            kind: e.kind,
            message: e.message,
            details: e.details.map(|d| d.to_string()),
        }
    }
}

impl From<Failure> for WitFailure {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Application(e) => WitFailure::Application(e.into()),
            Failure::TimedOut { message } => WitFailure::TimedOut(message),
            Failure::Cancelled => WitFailure::Cancelled,
        }
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
