//! Updates a workflow sends to other workflows. Sending is journaled
//! (`update-sent`, durable before the guest goes on); the request row is
//! made right after that commit, and again — idempotently, by its update
//! id — by an execution that resumes before the answer, as soon as it is
//! live, so a crash in between loses nothing. The await answers once the
//! row has an answer; the runtime wakes the sender then.

use super::host::UpdateAsk;
use super::limits::storage;
use super::ops::Op;
use super::workflow::{Answer, Durable, Step, WorkflowState, corrupt};
use crate::journal::{Event, StartSpec, calls, payload_value};
use crate::store::UpdateKey;

impl WorkflowState {
    pub(super) async fn send_update(
        &mut self,
        workflow_id: String,
        name: String,
        payload: String,
        start: Option<StartSpec>,
    ) -> wasmtime::Result<u32> {
        let handle = self.ops.len() as u32;
        let payload = payload_value(&payload);
        let call = calls::update_out(&workflow_id, &name, &payload, start.as_ref());
        let event = Event::UpdateSent {
            handle,
            workflow_id: workflow_id.clone(),
            name: name.clone(),
            // Recorded, so the same on replay and after a restart.
            update_id: uuid::Uuid::new_v4().to_string(),
            payload: payload.clone(),
            start: start.clone(),
        };
        let answer = self
            .journaled(&call, async |_| Ok(Step::new(event, Durable::Now)))
            .await?;
        let recorded = answer.recorded()?;
        let Event::UpdateSent { update_id, .. } = &recorded.event else {
            return Err(corrupt(recorded));
        };
        let key = UpdateKey {
            namespace: self.run.namespace.clone(),
            workflow_id,
            update_id: update_id.clone(),
        };
        let ask = UpdateAsk {
            name,
            input: payload,
            start,
        };
        let handle = self.new_handle(Op::UpdateOut {
            key,
            ask: Some(Box::new(ask)),
            refused: None,
            stale: true,
        });
        self.asks_pending = true;
        if matches!(answer, Answer::Live(_)) {
            self.make_asks().await?;
        }
        Ok(handle)
    }

    /// Make the requests of sent updates not made yet by this execution.
    pub(super) async fn make_asks(&mut self) -> wasmtime::Result<()> {
        if !std::mem::take(&mut self.asks_pending) {
            return Ok(());
        }
        for op in &mut self.ops {
            let Op::UpdateOut {
                key, ask, refused, ..
            } = op
            else {
                continue;
            };
            if let Some(request) = ask.take() {
                let asked = self
                    .host
                    .clone()
                    .ask_update(key, &request, &self.run.run_id);
                *refused = asked.await.map_err(storage)?.err();
            }
        }
        Ok(())
    }

    /// The answer to the update sent through `handle`, if it has one.
    pub(super) async fn update_out_ready(
        &mut self,
        handle: u32,
    ) -> wasmtime::Result<Option<Event>> {
        let host = self.host.clone();
        let Op::UpdateOut {
            key,
            refused,
            stale,
            ..
        } = &mut self.ops[handle as usize]
        else {
            return Ok(None);
        };
        let answered = |output, error| Event::UpdateAnswered {
            handle,
            output,
            error,
            select: None,
        };
        if let Some(error) = refused.take() {
            return Ok(Some(answered(None, Some(error))));
        }
        if !std::mem::take(stale) {
            return Ok(None);
        }
        Ok(match host.update_answer(key).await.map_err(storage)? {
            Some(Ok(output)) => Some(answered(Some(output), None)),
            Some(Err(error)) => Some(answered(None, Some(error))),
            None => None,
        })
    }

    /// Something changed that may have answered a sent update.
    pub(super) fn updates_out_stale(&mut self) {
        for op in &mut self.ops {
            if let Op::UpdateOut { stale, .. } = op {
                *stale = true;
            }
        }
    }
}
