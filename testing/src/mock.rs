//! A mocked activity: what it was asked, for assertions.

use crate::{ErrorInfo, NativeCall};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use weft::runtime::NativeActivity;

/// The calls a mocked activity received, in order (every attempt counts).
#[derive(Clone, Default)]
pub struct Mock {
    calls: Arc<Mutex<Vec<NativeCall>>>,
}

impl Mock {
    /// Record each call, then answer it with `f`.
    pub(crate) fn wrap<F>(&self, f: F) -> NativeActivity
    where
        F: Fn(&NativeCall) -> Result<Value, ErrorInfo> + Send + Sync + 'static,
    {
        let calls = self.calls.clone();
        Arc::new(move |call: NativeCall| {
            let answer = f(&call);
            calls.lock().unwrap().push(call);
            answer
        })
    }

    /// How many attempts it answered.
    pub fn count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    /// Every attempt, in order.
    pub fn calls(&self) -> Vec<NativeCall> {
        self.calls.lock().unwrap().clone()
    }

    /// The input of every attempt, in order.
    pub fn inputs(&self) -> Vec<Value> {
        self.calls().into_iter().map(|c| c.input).collect()
    }
}
