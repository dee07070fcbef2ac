//! The `weft:workflow/context` imports, on top of the journaling primitives
//! of [`WorkflowState`].

use super::bindings::workflow::weft::workflow::{context, types};
use super::bindings::{WitActivityOptions, log_level};
use super::host::{ActivityJob, ActivityOutcome};
use super::limits::{Interrupt, storage};
use super::ops::{ChildRetry, Op};
use super::workflow::{Answer, Durable, Step, WorkflowState, corrupt};
use crate::clock::now_ms;
use crate::journal::{
    ActivityOptions, CancellationMode, ErrorInfo, Event, ParentClose, RetryPolicy, Source,
    StartSpec, calls, payload_value,
};
use crate::store::{ComponentKind, NewRun};
use crate::writes::Effect;

impl WorkflowState {
    /// A workflow's newest version, for children and signal-with-start.
    async fn latest_workflow(
        &mut self,
        workflow: &str,
    ) -> wasmtime::Result<Result<crate::store::ComponentVersion, ErrorInfo>> {
        let host = self.host.clone();
        let namespace = self.run.namespace.clone();
        let version = host
            .latest_version(&namespace, workflow)
            .await
            .map_err(storage)?;
        Ok(match version {
            Some(v) if v.kind == ComponentKind::Workflow => Ok(v),
            _ => Err(ErrorInfo::new(
                "unknown-workflow",
                format!("no workflow named `{workflow}` is deployed"),
            )),
        })
    }

    /// Send a signal (with `start`: signal-with-start), exactly once.
    async fn send_signal(
        &mut self,
        workflow_id: String,
        name: String,
        payload: String,
        start: Option<StartSpec>,
    ) -> wasmtime::Result<Result<(), types::ErrorInfo>> {
        let payload = payload_value(&payload);
        let call = calls::signal_out(&workflow_id, &name, &payload, start.as_ref());
        let answer = self
            .journaled(&call, async |s| {
                let error = s
                    .signal_effect(&workflow_id, &name, &payload, &start)
                    .await?;
                let event = Event::SignalSent {
                    workflow_id,
                    name,
                    payload,
                    start,
                    error,
                };
                Ok(Step::new(event, Durable::Now))
            })
            .await?;
        let recorded = answer.recorded()?;
        match &recorded.event {
            Event::SignalSent { error: None, .. } => Ok(Ok(())),
            Event::SignalSent { error: Some(e), .. } => Ok(Err(e.clone().into())),
            _ => Err(corrupt(recorded)),
        }
    }

    /// Attach to the sink the effect that delivers a signal (creating the
    /// target first with `start`); answers why it cannot be, if it cannot.
    async fn signal_effect(
        &mut self,
        workflow_id: &str,
        name: &str,
        payload: &serde_json::Value,
        start: &Option<StartSpec>,
    ) -> wasmtime::Result<Option<ErrorInfo>> {
        let effect = match start {
            Some(spec) => match self.latest_workflow(&spec.workflow).await? {
                Ok(version) => {
                    let new = NewRun::of(
                        &version,
                        &self.run.namespace,
                        Some(workflow_id.to_string()),
                        spec.input.clone(),
                    );
                    Ok(Effect::SignalWithStart {
                        start: new,
                        name: name.to_string(),
                        payload: payload.clone(),
                    })
                }
                Err(e) => Err(e),
            },
            None => match self
                .host
                .open_run(&self.run.namespace, workflow_id)
                .await
                .map_err(storage)?
            {
                Some(target) => Ok(Effect::Signal {
                    run_id: target.run_id,
                    name: name.to_string(),
                    payload: payload.clone(),
                }),
                None => Err(ErrorInfo::new(
                    "not-found",
                    format!("no open run with workflow id `{workflow_id}`"),
                )),
            },
        };
        Ok(match effect {
            Ok(effect) => {
                self.sink.effect(effect);
                None
            }
            Err(e) => Some(e),
        })
    }

    /// The child run to start, or why it cannot be.
    pub(super) async fn child_run(
        &mut self,
        workflow: &str,
        workflow_id: Option<String>,
        input: &serde_json::Value,
        parent_close: ParentClose,
        run_timeout_ms: Option<u64>,
    ) -> wasmtime::Result<Result<NewRun, ErrorInfo>> {
        let version = match self.latest_workflow(workflow).await? {
            Ok(version) => version,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(quota) = self
            .host
            .admit_child(&self.run.namespace)
            .await
            .map_err(storage)?
        {
            return Ok(Err(ErrorInfo::new("quota-exceeded", quota)));
        }
        let mut new = NewRun::of(&version, &self.run.namespace, workflow_id, input.clone());
        new.parent = Some((self.run.run_id.clone(), parent_close));
        new.deadline_at_ms = run_timeout_ms.map(|ms| new.at_ms + ms as i64);
        let held = self
            .host
            .open_run(&new.namespace, &new.workflow_id)
            .await
            .map_err(storage)?;
        Ok(match held {
            Some(_) => Err(ErrorInfo::new(
                "workflow-id-in-use",
                format!("an open run already has workflow id `{}`", new.workflow_id),
            )),
            None => Ok(new),
        })
    }
}

impl types::Host for WorkflowState {}

impl context::Host for WorkflowState {
    async fn info(&mut self) -> wasmtime::Result<types::RunInfo> {
        Ok(types::RunInfo {
            run_id: self.run.run_id.clone(),
            workflow_id: self.run.workflow_id.clone(),
            workflow: self.run.workflow.clone(),
            version: self.run.version,
        })
    }

    async fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(self.clock(Source::Context)? / 1_000_000)
    }

    async fn random_bytes(&mut self, len: u32) -> wasmtime::Result<Vec<u8>> {
        self.random(Source::Context, len as u64)
    }

    async fn log(&mut self, level: types::LogLevel, message: String) -> wasmtime::Result<()> {
        if !self.cursor.replaying() {
            let run = &self.run.run_id;
            match log_level(level) {
                tracing::Level::ERROR => tracing::error!(run, "{message}"),
                tracing::Level::WARN => tracing::warn!(run, "{message}"),
                tracing::Level::INFO => tracing::info!(run, "{message}"),
                _ => tracing::debug!(run, "{message}"),
            }
        }
        Ok(())
    }

    async fn schedule_activity(
        &mut self,
        name: String,
        input: String,
        options: WitActivityOptions,
    ) -> wasmtime::Result<u32> {
        let handle = self.ops.len() as u32;
        let input_value = payload_value(&input);
        let options = ActivityOptions::from(options);
        let call = calls::activity(&name, &input_value, &options);
        let answer = self
            .journaled(&call, async |_| {
                let event = Event::ActivityScheduled {
                    handle,
                    name: name.clone(),
                    input: input_value.clone(),
                    options: options.clone(),
                };
                Ok(Step::new(event, Durable::Later))
            })
            .await?;
        let live = matches!(answer, Answer::Live(_));
        let recorded = answer.recorded()?;
        let (prior_attempts, next_attempt_at_ms) = self.cursor.failed_attempts(handle);
        let job = ActivityJob {
            run_id: self.run.run_id.clone(),
            namespace: self.run.namespace.clone(),
            workflow_id: self.run.workflow_id.clone(),
            handle,
            name,
            input,
            options,
            idempotency_key: format!("{}:{}", self.run.run_id, recorded.seq),
            scheduled_at_ms: recorded.at_ms,
            prior_attempts,
            heartbeat_details: self.cursor.heartbeat_details(handle),
            cancel: Default::default(),
            next_attempt_at_ms,
            scheduled_in: if live && !self.call_span.is_disabled() {
                self.call_span.clone()
            } else {
                tracing::Span::current()
            },
        };
        let task = live.then(|| {
            self.host
                .clone()
                .spawn_activity(job.clone(), self.sink.clone())
        });
        // Finished while the run was paused: taken as it was, not run again.
        let held = self.cursor.held_outcome(handle);
        Ok(self.new_handle(Op::Activity {
            job: Box::new(job),
            task,
            held: held.is_some(),
            outcome: held.map(|(attempts, result)| ActivityOutcome { attempts, result }),
        }))
    }

    async fn start_timer(&mut self, duration_ms: u64) -> wasmtime::Result<u32> {
        let handle = self.ops.len() as u32;
        let call = calls::timer(duration_ms);
        let answer = self
            .journaled(&call, async |_| {
                let fire_at_ms = now_ms().saturating_add(duration_ms.min(i64::MAX as u64) as i64);
                let event = Event::TimerStarted {
                    handle,
                    duration_ms,
                    fire_at_ms: fire_at_ms as u64,
                };
                Ok(Step::new(event, Durable::Later))
            })
            .await?;
        let recorded = answer.recorded()?;
        let Event::TimerStarted { fire_at_ms, .. } = recorded.event else {
            return Err(corrupt(recorded));
        };
        let fire_at_ms = fire_at_ms as i64;
        Ok(self.new_handle(Op::Timer { fire_at_ms }))
    }

    async fn receive_signal(&mut self, name: String) -> wasmtime::Result<u32> {
        Ok(self.new_handle(Op::Signal { name }))
    }

    async fn receive_update(&mut self, name: String) -> wasmtime::Result<u32> {
        Ok(self.new_handle(Op::Update { name }))
    }

    async fn reject_update(&mut self, h: u32, error: types::ErrorInfo) -> wasmtime::Result<()> {
        self.reject_undecided(h, error.into()).await
    }

    /// Journaled, and durable before the guest goes on: the caller is
    /// answered once the answer cannot be lost.
    async fn complete_update(
        &mut self,
        h: u32,
        result: Result<String, types::ErrorInfo>,
    ) -> wasmtime::Result<()> {
        // An update handed over just before is accepted first (a no-op
        // while replaying: nothing is undecided then).
        self.accept_undecided();
        let Some(update_id) = self.accepted_updates.get(&h).cloned() else {
            wasmtime::bail!("complete-update of #{h}, which accepted no update (or was answered)");
        };
        let (output, error) = match result {
            Ok(text) => (Some(payload_value(&text)), None),
            Err(e) => (None, Some(ErrorInfo::from(e))),
        };
        let outcome = match (&output, &error) {
            (_, Some(e)) => serde_json::json!({ "error": e }),
            (output, None) => serde_json::json!({ "output": output }),
        };
        let key = crate::store::UpdateKey {
            namespace: self.run.namespace.clone(),
            workflow_id: self.run.workflow_id.clone(),
            update_id: update_id.clone(),
        };
        let event = Event::UpdateCompleted {
            handle: h,
            update_id,
            output,
            error,
        };
        self.journaled(&calls::update_reply(h), async |_| {
            let effect = Effect::DecideUpdate {
                key,
                from: crate::store::UpdateState::Accepted,
                to: crate::store::UpdateState::Completed,
                outcome: Some(outcome),
            };
            Ok(Step::new(event, Durable::Now).with_effect(effect))
        })
        .await?;
        self.accepted_updates.remove(&h);
        Ok(())
    }

    async fn start_child(
        &mut self,
        workflow: String,
        input: String,
        options: types::ChildOptions,
    ) -> wasmtime::Result<u32> {
        let handle = self.ops.len() as u32;
        let input = payload_value(&input);
        let parent_close = match options.parent_close {
            types::ParentClosePolicy::Abandon => ParentClose::Abandon,
            types::ParentClosePolicy::Cancel => ParentClose::Cancel,
            types::ParentClosePolicy::Terminate => ParentClose::Terminate,
        };
        let run_timeout_ms = options.run_timeout_ms;
        let retry: Option<RetryPolicy> = options.retry.map(Into::into);
        let call = calls::child(
            &workflow,
            options.workflow_id.as_deref(),
            &input,
            parent_close,
            run_timeout_ms,
            retry.as_ref(),
        );
        let answer = self
            .journaled(&call, async |s| {
                let started = s
                    .child_run(
                        &workflow,
                        options.workflow_id.clone(),
                        &input,
                        parent_close,
                        run_timeout_ms,
                    )
                    .await?;
                let (child_run_id, error) = match started {
                    Ok(new) => {
                        let id = new.run_id.clone();
                        s.sink.effect(Effect::CreateRun(new));
                        (Some(id), None)
                    }
                    Err(e) => (None, Some(e)),
                };
                let event = Event::ChildStarted {
                    handle,
                    workflow: workflow.clone(),
                    workflow_id: options.workflow_id,
                    input: input.clone(),
                    parent_close,
                    run_timeout_ms,
                    retry: retry.clone(),
                    child_run_id,
                    error,
                };
                Ok(Step::new(event, Durable::Now))
            })
            .await?;
        let recorded = answer.recorded()?;
        let Event::ChildStarted {
            child_run_id,
            error,
            ..
        } = &recorded.event
        else {
            return Err(corrupt(recorded));
        };
        // A child retried before a restart goes on with its latest run.
        let (retried, latest) = self.cursor.child_retries(handle);
        let op = Op::Child {
            workflow,
            run_id: latest.or_else(|| child_run_id.clone()),
            error: error.clone(),
            stale: true,
            retry: retry.map(|policy| {
                Box::new(ChildRetry {
                    policy,
                    input,
                    parent_close,
                    run_timeout_ms,
                    attempt: retried + 1,
                    due_at_ms: None,
                })
            }),
        };
        Ok(self.new_handle(op))
    }

    /// Journaled; what it does is done live only (a replayed request was
    /// made already): a child is asked to cancel in the same commit.
    async fn cancel(&mut self, h: u32) -> wasmtime::Result<()> {
        let child = match self.ops.get(h as usize) {
            Some(Op::Activity { .. }) => None,
            Some(Op::Child { run_id, .. }) => Some(run_id.clone()),
            Some(op) => wasmtime::bail!(
                "cancel of #{h}, {}: only an activity or a child can be cancelled",
                op.describe()
            ),
            None => wasmtime::bail!("cancel of handle #{h}, which the workflow never created"),
        };
        self.journaled(&calls::cancel(h), async |s| {
            if let Some(Some(run_id)) = child {
                s.sink.effect(Effect::RequestCancel { run_id });
            }
            Ok(Step::new(
                Event::CancelRequested { handle: h },
                Durable::Later,
            ))
        })
        .await?;
        if let Op::Activity { job, .. } = &self.ops[h as usize] {
            match job.options.cancellation {
                CancellationMode::Abandon => job.cancel.abandon(),
                _ => job.cancel.tell(),
            }
        }
        Ok(())
    }

    async fn await_(&mut self, handle: u32) -> wasmtime::Result<Result<String, types::ErrorInfo>> {
        let (_, result) = self.await_handles(&[handle], false).await?;
        Ok(result.map_err(Into::into))
    }

    async fn await_any(
        &mut self,
        handles: Vec<u32>,
    ) -> wasmtime::Result<(u32, Result<String, types::ErrorInfo>)> {
        let (h, result) = self.await_handles(&handles, true).await?;
        Ok((h, result.map_err(Into::into)))
    }

    async fn signal_workflow(
        &mut self,
        workflow_id: String,
        name: String,
        payload: String,
    ) -> wasmtime::Result<Result<(), types::ErrorInfo>> {
        self.send_signal(workflow_id, name, payload, None).await
    }

    async fn signal_with_start(
        &mut self,
        workflow: String,
        workflow_id: String,
        input: String,
        name: String,
        payload: String,
    ) -> wasmtime::Result<Result<(), types::ErrorInfo>> {
        let start = StartSpec {
            workflow,
            input: payload_value(&input),
        };
        self.send_signal(workflow_id, name, payload, Some(start))
            .await
    }

    async fn update_workflow(
        &mut self,
        workflow_id: String,
        name: String,
        payload: String,
    ) -> wasmtime::Result<u32> {
        self.send_update(workflow_id, name, payload, None).await
    }

    async fn update_with_start(
        &mut self,
        workflow: String,
        workflow_id: String,
        input: String,
        name: String,
        payload: String,
    ) -> wasmtime::Result<u32> {
        let start = StartSpec {
            workflow,
            input: payload_value(&input),
        };
        self.send_update(workflow_id, name, payload, Some(start))
            .await
    }

    /// Informational: replay skips the recorded ones; live, it is visible
    /// to queries right away, without waiting for durability.
    async fn set_status(&mut self, status: String) -> wasmtime::Result<()> {
        self.journaled(&calls::status(), async |s| {
            let status = payload_value(&status);
            s.sink.effect(Effect::SetStatus(status.clone()));
            Ok(Step::new(Event::StatusSet { status }, Durable::Soon))
        })
        .await?;
        Ok(())
    }

    /// Informational like a status: replay skips recorded ones (the store
    /// has them already).
    async fn upsert_search_attributes(&mut self, attributes: String) -> wasmtime::Result<()> {
        let attributes = match payload_value(&attributes) {
            serde_json::Value::Object(map) => map,
            other => wasmtime::bail!("search attributes must be a JSON object, not {other}"),
        };
        for (key, value) in &attributes {
            let named = !key.is_empty()
                && key.len() <= 64
                && key.starts_with(|c: char| c.is_ascii_alphabetic())
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !named {
                wasmtime::bail!(
                    "search attribute `{key}`: names are 1-64 letters, digits, `_`, `-` or `.`, starting with a letter"
                );
            }
            if value.is_array() || value.is_object() {
                wasmtime::bail!(
                    "search attribute `{key}`: values are strings, numbers or booleans (null removes)"
                );
            }
        }
        self.journaled(&calls::search_attributes(), async |s| {
            s.sink.effect(Effect::SetAttributes(attributes.clone()));
            let event = Event::SearchAttributesSet {
                attributes: serde_json::Value::Object(attributes),
            };
            Ok(Step::new(event, Durable::Soon))
        })
        .await?;
        Ok(())
    }

    async fn continue_as_new(&mut self, input: String) -> wasmtime::Result<()> {
        Err(Interrupt::ContinueAsNew {
            input: payload_value(&input),
        }
        .into())
    }

    async fn deadline_ms(&mut self) -> wasmtime::Result<Option<u64>> {
        Ok(self.run.deadline_at_ms.map(|d| d as u64))
    }

    /// Each call is answered on its own (a loop asks once per iteration):
    /// from the journal while replaying, true (and journaled) once live.
    async fn patched(&mut self, change_id: String) -> wasmtime::Result<bool> {
        let call = calls::patch(&change_id);
        let answer = self
            .journaled(&call, async |_| {
                Ok(Step::new(Event::PatchMarker { change_id }, Durable::Later))
            })
            .await?;
        Ok(!matches!(answer, Answer::Skipped))
    }
}
