//! Components built against contract 0.1 keep running: each of their
//! imports is answered by the 0.2 implementation, its types converted. A
//! 0.1 guest sees failures as it always did — an activity's or a child's
//! own error, not the boundary error 0.2 wraps it in.

use super::activity::ActivityState;
use super::bindings::activity::weft::workflow::activity_context;
use super::bindings::v0_1::activity::weft::workflow::activity_context as activity_v0_1;
use super::bindings::v0_1::workflow::weft::workflow::{context as v0_1, types as t0_1};
use super::bindings::workflow::weft::workflow::{context, types};
use super::workflow::WorkflowState;
use crate::journal::ErrorInfo;
use weft_contract::kind;

impl From<t0_1::ErrorInfo> for ErrorInfo {
    fn from(e: t0_1::ErrorInfo) -> Self {
        types::ErrorInfo::from(e).into()
    }
}

impl From<t0_1::ErrorInfo> for types::ErrorInfo {
    fn from(e: t0_1::ErrorInfo) -> Self {
        types::ErrorInfo {
            kind: e.kind,
            message: e.message,
            details: e.details,
            non_retryable: false,
            timeout: None,
            causes: Vec::new(),
        }
    }
}

impl From<types::ErrorInfo> for t0_1::ErrorInfo {
    fn from(e: types::ErrorInfo) -> Self {
        t0_1::ErrorInfo {
            kind: e.kind,
            message: e.message,
            details: e.details,
        }
    }
}

/// A 0.2 error as the 0.1 `failure` it was before boundaries were wrapped.
fn failure(mut e: types::ErrorInfo) -> t0_1::Failure {
    if matches!(e.kind.as_str(), kind::ACTIVITY_FAILED | kind::CHILD_FAILED) && !e.causes.is_empty()
    {
        let cause = e.causes.remove(0);
        e = types::ErrorInfo {
            kind: cause.kind,
            message: cause.message,
            details: cause.details,
            non_retryable: cause.non_retryable,
            timeout: cause.timeout,
            causes: e.causes,
        };
    }
    match e.kind.as_str() {
        kind::TIMED_OUT => t0_1::Failure::TimedOut(e.message),
        kind::CANCELLED => t0_1::Failure::Cancelled,
        _ => t0_1::Failure::Application(e.into()),
    }
}

fn log_level(level: t0_1::LogLevel) -> types::LogLevel {
    match level {
        t0_1::LogLevel::Debug => types::LogLevel::Debug,
        t0_1::LogLevel::Info => types::LogLevel::Info,
        t0_1::LogLevel::Warn => types::LogLevel::Warn,
        t0_1::LogLevel::Error => types::LogLevel::Error,
    }
}

fn answer(
    result: wasmtime::Result<Result<(), types::ErrorInfo>>,
) -> wasmtime::Result<Result<(), t0_1::ErrorInfo>> {
    Ok(result?.map_err(Into::into))
}

impl t0_1::Host for WorkflowState {}

impl v0_1::Host for WorkflowState {
    async fn info(&mut self) -> wasmtime::Result<t0_1::RunInfo> {
        let i = context::Host::info(self).await?;
        Ok(t0_1::RunInfo {
            run_id: i.run_id,
            workflow_id: i.workflow_id,
            workflow: i.workflow,
            version: i.version,
        })
    }

    async fn now_ms(&mut self) -> wasmtime::Result<u64> {
        context::Host::now_ms(self).await
    }

    async fn random_bytes(&mut self, len: u32) -> wasmtime::Result<Vec<u8>> {
        context::Host::random_bytes(self, len).await
    }

    async fn log(&mut self, level: t0_1::LogLevel, message: String) -> wasmtime::Result<()> {
        context::Host::log(self, log_level(level), message).await
    }

    async fn schedule_activity(
        &mut self,
        name: String,
        input: String,
        options: t0_1::ActivityOptions,
    ) -> wasmtime::Result<u32> {
        let options = types::ActivityOptions {
            retry: options.retry.map(|r| types::RetryPolicy {
                initial_interval_ms: r.initial_interval_ms,
                backoff_coefficient: r.backoff_coefficient,
                max_interval_ms: r.max_interval_ms,
                max_attempts: r.max_attempts,
                non_retryable: r.non_retryable,
            }),
            start_to_close_ms: options.start_to_close_ms,
            schedule_to_close_ms: options.schedule_to_close_ms,
            schedule_to_start_ms: None,
            heartbeat_timeout_ms: None,
            cancellation: types::CancellationMode::TryCancel,
        };
        context::Host::schedule_activity(self, name, input, options).await
    }

    async fn start_timer(&mut self, duration_ms: u64) -> wasmtime::Result<u32> {
        context::Host::start_timer(self, duration_ms).await
    }

    async fn receive_signal(&mut self, name: String) -> wasmtime::Result<u32> {
        context::Host::receive_signal(self, name).await
    }

    async fn start_child(
        &mut self,
        workflow: String,
        input: String,
        options: t0_1::ChildOptions,
    ) -> wasmtime::Result<u32> {
        let options = types::ChildOptions {
            workflow_id: options.workflow_id,
            parent_close: match options.parent_close {
                t0_1::ParentClosePolicy::Abandon => types::ParentClosePolicy::Abandon,
                t0_1::ParentClosePolicy::Cancel => types::ParentClosePolicy::Cancel,
            },
            run_timeout_ms: None,
            retry: None,
        };
        context::Host::start_child(self, workflow, input, options).await
    }

    async fn receive_update(&mut self, name: String) -> wasmtime::Result<u32> {
        context::Host::receive_update(self, name).await
    }

    async fn reject_update(&mut self, h: u32, error: t0_1::ErrorInfo) -> wasmtime::Result<()> {
        context::Host::reject_update(self, h, error.into()).await
    }

    async fn complete_update(
        &mut self,
        h: u32,
        answer: Result<String, t0_1::ErrorInfo>,
    ) -> wasmtime::Result<()> {
        context::Host::complete_update(self, h, answer.map_err(Into::into)).await
    }

    async fn await_(&mut self, h: u32) -> wasmtime::Result<Result<String, t0_1::Failure>> {
        Ok(context::Host::await_(self, h).await?.map_err(failure))
    }

    async fn await_any(
        &mut self,
        hs: Vec<u32>,
    ) -> wasmtime::Result<(u32, Result<String, t0_1::Failure>)> {
        let (h, result) = context::Host::await_any(self, hs).await?;
        Ok((h, result.map_err(failure)))
    }

    async fn signal_workflow(
        &mut self,
        workflow_id: String,
        name: String,
        payload: String,
    ) -> wasmtime::Result<Result<(), t0_1::ErrorInfo>> {
        answer(context::Host::signal_workflow(self, workflow_id, name, payload).await)
    }

    async fn signal_with_start(
        &mut self,
        workflow: String,
        workflow_id: String,
        input: String,
        name: String,
        payload: String,
    ) -> wasmtime::Result<Result<(), t0_1::ErrorInfo>> {
        answer(
            context::Host::signal_with_start(self, workflow, workflow_id, input, name, payload)
                .await,
        )
    }

    async fn update_workflow(
        &mut self,
        workflow_id: String,
        name: String,
        payload: String,
    ) -> wasmtime::Result<u32> {
        context::Host::update_workflow(self, workflow_id, name, payload).await
    }

    async fn update_with_start(
        &mut self,
        workflow: String,
        workflow_id: String,
        input: String,
        name: String,
        payload: String,
    ) -> wasmtime::Result<u32> {
        context::Host::update_with_start(self, workflow, workflow_id, input, name, payload).await
    }

    async fn set_status(&mut self, status: String) -> wasmtime::Result<()> {
        context::Host::set_status(self, status).await
    }

    async fn upsert_search_attributes(&mut self, attributes: String) -> wasmtime::Result<()> {
        context::Host::upsert_search_attributes(self, attributes).await
    }

    async fn continue_as_new(&mut self, input: String) -> wasmtime::Result<()> {
        context::Host::continue_as_new(self, input).await
    }

    async fn deadline_ms(&mut self) -> wasmtime::Result<Option<u64>> {
        context::Host::deadline_ms(self).await
    }

    async fn patched(&mut self, change_id: String) -> wasmtime::Result<bool> {
        context::Host::patched(self, change_id).await
    }
}

impl t0_1::Host for ActivityState {}

impl activity_v0_1::Host for ActivityState {
    fn info(&mut self) -> wasmtime::Result<activity_v0_1::ActivityInfo> {
        let i = activity_context::Host::info(self)?;
        Ok(activity_v0_1::ActivityInfo {
            run_id: i.run_id,
            workflow_id: i.workflow_id,
            activity: i.activity,
            attempt: i.attempt,
            idempotency_key: i.idempotency_key,
        })
    }

    fn log(&mut self, level: t0_1::LogLevel, message: String) -> wasmtime::Result<()> {
        activity_context::Host::log(self, log_level(level), message)
    }
}
