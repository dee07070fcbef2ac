//! A workflow's updates: queued as they are requested, handed to the guest
//! by an await without a journal event, then rejected (the row only) or
//! gone on with, which journals them as accepted.

use super::limits::{Interrupt, storage};
use super::ops::Op;
use super::workflow::WorkflowState;
use crate::journal::{Divergence, ErrorInfo, Event};
use crate::store::{UpdateKey, UpdateRecord, UpdateState};
use crate::writes::Effect;

impl WorkflowState {
    pub(super) fn queue_update(&mut self, update: UpdateRecord) {
        let known = self.taken_updates.contains(&update.update_id)
            || self.updates.iter().any(|u| u.update_id == update.update_id);
        if !known && update.state == UpdateState::Requested {
            self.updates.push(update);
        }
    }

    /// The oldest requested update named `name`, taken.
    pub(super) fn take_update(&mut self, name: &str) -> Option<UpdateRecord> {
        let at = self.updates.iter().position(|u| u.name == name)?;
        let update = self.updates.remove(at);
        self.taken_updates.insert(update.update_id.clone());
        Some(update)
    }

    fn update_key(&self, update_id: &str) -> UpdateKey {
        UpdateKey {
            namespace: self.run.namespace.clone(),
            workflow_id: self.run.workflow_id.clone(),
            update_id: update_id.to_string(),
        }
    }

    /// The guest went on with the update it was handed: journal it as
    /// accepted, its row beside it, sent to the writer at once. Should the
    /// server die before that commit, the update is still requested and
    /// taken again on replay.
    pub(super) fn accept_undecided(&mut self) {
        let Some(event) = self.undecided.take() else {
            return;
        };
        let Event::UpdateAccepted {
            handle, update_id, ..
        } = &event
        else {
            return;
        };
        let effect = Effect::DecideUpdate {
            key: self.update_key(update_id),
            from: UpdateState::Requested,
            to: UpdateState::Accepted,
            outcome: None,
        };
        self.accepted_updates.insert(*handle, update_id.clone());
        let digest = event.call().map(|c| c.digest()).unwrap_or_default();
        self.sink.record_call_with(event, digest, effect);
        // Sent at once, not waited for: the caller sees it accepted soon.
        self.sink.send();
    }

    /// The guest refuses the update awaiting `handle` just handed it: the
    /// row says so (nothing is journaled) and `handle` waits for the next.
    pub(super) async fn reject_undecided(
        &mut self,
        handle: u32,
        error: ErrorInfo,
    ) -> wasmtime::Result<()> {
        let update = match &self.undecided {
            Some(Event::UpdateAccepted {
                handle: h,
                name,
                update_id,
                ..
            }) if *h == handle => Some((name.clone(), update_id.clone())),
            _ => None,
        };
        let Some((name, update_id)) = update else {
            if self.accepted_updates.contains_key(&handle) && self.cursor.replaying() {
                return Err(Interrupt::Diverged(Divergence {
                    seq: self.cursor.next_seq(),
                    journal: format!("the update of #{handle} accepted"),
                    code: format!("the update of #{handle} rejected"),
                })
                .into());
            }
            wasmtime::bail!("reject-update of #{handle}, which was not just handed an update");
        };
        self.undecided = None;
        let error = serde_json::to_value(&error)?;
        self.host
            .clone()
            .reject_update(&self.update_key(&update_id), &error)
            .await
            .map_err(storage)?;
        self.ops[handle as usize] = Op::Update { name };
        Ok(())
    }
}
