//! Compatibility checks: replay a run's journal on a component, without
//! side effects, and say whether every recorded call matches. Upgrades,
//! deploy-time reports and `weft replay` are all this one check.

use super::host::Host;
use super::limits::Interrupt;
use super::runner::{code_end, run_guest};
use super::workflow::{RunFacts, WorkflowState};
use super::{Loaded, Prepared};
use crate::journal::{Cursor, Divergence, Event, Recorded, RunEnd};
use crate::writes::Sink;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// Every recorded call matched; the code can continue from there.
    Compatible { events: usize },
    /// The code asked for something else than the journal holds.
    Diverged { divergence: Divergence },
    /// The code could not replay at all (it trapped, or is no workflow).
    Failed { message: String },
}

impl Verdict {
    pub fn is_compatible(&self) -> bool {
        matches!(self, Verdict::Compatible { .. })
    }
}

/// What a check needs to know about the run, read off its journal (an
/// exported journal carries nothing else): the `started` event.
pub fn facts_of(run_id: &str, journal: &[Recorded]) -> Result<(RunFacts, Value), String> {
    match journal.first().map(|r| &r.event) {
        Some(Event::Started {
            workflow,
            version,
            workflow_id,
            input,
            ..
        }) => Ok((
            RunFacts {
                run_id: run_id.to_string(),
                namespace: crate::store::DEFAULT_NAMESPACE.to_string(),
                workflow_id: workflow_id.clone(),
                workflow: workflow.clone(),
                version: *version,
                deadline_at_ms: None,
                cancel_requested: false,
                limits: Default::default(),
            },
            input.clone(),
        )),
        _ => Err("the journal does not begin with a `started` event".into()),
    }
}

/// Replay `journal` on `loaded` and judge it.
pub async fn check(
    host: Arc<dyn Host>,
    loaded: &Loaded,
    facts: RunFacts,
    input: &Value,
    journal: Vec<Recorded>,
) -> Verdict {
    let Prepared::Workflow(pre) = &loaded.pre else {
        return Verdict::Failed {
            message: "the component is not a workflow".into(),
        };
    };
    let events = journal.len();
    let cursor = Cursor::new(journal);
    // A check stops before anything would be recorded: nothing to commit.
    let sink = Sink::detached(&facts.run_id, cursor.next_seq());
    let (_keep, inbox) = mpsc::unbounded_channel();
    let engine = host.engine().clone();
    let state = WorkflowState::new(host, facts, cursor, sink, Vec::new(), inbox).checking();
    let (mut store, result) = match run_guest(&engine, pre, state, input).await {
        Ok(ran) => ran,
        Err(e) => {
            return Verdict::Failed {
                message: format!("cannot instantiate: {e:#}"),
            };
        }
    };
    let mut ended = |end: RunEnd| match store.data_mut().cursor.finish(&end) {
        Ok(()) => Verdict::Compatible { events },
        Err(divergence) => Verdict::Diverged { divergence },
    };
    match result {
        Ok(returned) => ended(code_end(&returned)),
        Err(trap) => match Interrupt::of(&trap) {
            Some(Interrupt::ReplayComplete) => Verdict::Compatible { events },
            Some(Interrupt::Diverged(divergence)) => Verdict::Diverged {
                divergence: divergence.clone(),
            },
            Some(Interrupt::ContinueAsNew { input }) => ended(RunEnd::ContinuedAsNew {
                input: input.clone(),
            }),
            _ => Verdict::Failed {
                message: format!("the code trapped while replaying: {}", trap.root_cause()),
            },
        },
    }
}
