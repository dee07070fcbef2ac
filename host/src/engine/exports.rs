//! A component's export (`run` or `invoke`), whichever contract version it
//! was built against, behind one call that answers the host's types.

use super::activity::ActivityState;
use super::bindings::v0_1;
use super::bindings::{activity::ActivityPre, workflow::WorkflowPre};
use super::workflow::WorkflowState;
use crate::journal::ErrorInfo;
use wasmtime::Store;
use wasmtime::component::InstancePre;

/// What running a workflow's `run` export returned.
pub(super) type Returned = wasmtime::Result<Result<String, ErrorInfo>>;

/// A linked workflow, ready to instantiate.
#[derive(Clone)]
pub enum WorkflowCode {
    V0_2(WorkflowPre<WorkflowState>),
    V0_1(v0_1::workflow::WorkflowPre<WorkflowState>),
}

/// An instantiated workflow.
pub(super) enum WorkflowInstance {
    V0_2(super::bindings::workflow::Workflow),
    V0_1(v0_1::workflow::Workflow),
}

impl WorkflowCode {
    /// The export of the newest contract the component matches; the error
    /// is the newest contract's complaint.
    pub(super) fn new(pre: InstancePre<WorkflowState>) -> wasmtime::Result<Self> {
        match WorkflowPre::new(pre.clone()) {
            Ok(pre) => Ok(WorkflowCode::V0_2(pre)),
            Err(e) => v0_1::workflow::WorkflowPre::new(pre)
                .map(WorkflowCode::V0_1)
                .map_err(|_| e),
        }
    }

    pub(super) async fn instantiate(
        &self,
        store: &mut Store<WorkflowState>,
    ) -> wasmtime::Result<WorkflowInstance> {
        Ok(match self {
            WorkflowCode::V0_2(pre) => WorkflowInstance::V0_2(pre.instantiate_async(store).await?),
            WorkflowCode::V0_1(pre) => WorkflowInstance::V0_1(pre.instantiate_async(store).await?),
        })
    }
}

impl WorkflowInstance {
    pub(super) async fn run(&self, store: &mut Store<WorkflowState>, input: String) -> Returned {
        let input = &input;
        Ok(match self {
            WorkflowInstance::V0_2(i) => i.call_run(store, input).await?.map_err(Into::into),
            WorkflowInstance::V0_1(i) => i.call_run(store, input).await?.map_err(Into::into),
        })
    }
}

/// A linked activity, ready to instantiate.
#[derive(Clone)]
pub enum ActivityCode {
    V0_2(ActivityPre<ActivityState>),
    V0_1(v0_1::activity::ActivityPre<ActivityState>),
}

impl ActivityCode {
    pub(super) fn new(pre: InstancePre<ActivityState>) -> wasmtime::Result<Self> {
        match ActivityPre::new(pre.clone()) {
            Ok(pre) => Ok(ActivityCode::V0_2(pre)),
            Err(e) => v0_1::activity::ActivityPre::new(pre)
                .map(ActivityCode::V0_1)
                .map_err(|_| e),
        }
    }

    /// Instantiate and call `invoke` once.
    pub(super) async fn invoke(
        &self,
        store: &mut Store<ActivityState>,
        function: String,
        input: String,
        key: String,
    ) -> wasmtime::Result<Result<String, ErrorInfo>> {
        let (function, input, key) = (&function, &input, &key);
        Ok(match self {
            ActivityCode::V0_2(pre) => {
                let instance = pre.instantiate_async(&mut *store).await?;
                let result = instance.call_invoke(store, function, input, key).await?;
                result.map_err(Into::into)
            }
            ActivityCode::V0_1(pre) => {
                let instance = pre.instantiate_async(&mut *store).await?;
                let result = instance.call_invoke(store, function, input, key).await?;
                result.map_err(Into::into)
            }
        })
    }
}
