//! Who waits for which run to end (`GET /v1/runs/{id}?wait=`): a run's
//! end wakes only its own waiters. (A broadcast of every end to every
//! waiter cost each end one wake-up per client waiting on any run.)

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::sync::oneshot;

/// One waiter: its number (to leave the list) and how to wake it.
type Waiter = (u64, oneshot::Sender<()>);

/// The waiters of each run, by run id.
#[derive(Default)]
pub(super) struct EndWaiters {
    next_id: AtomicU64,
    by_run: Mutex<HashMap<String, Vec<Waiter>>>,
}

impl EndWaiters {
    /// Wait for `run_id`'s end from now on: register first, then read the
    /// run, so an end between the two is not missed.
    pub(super) fn watch(self: &Arc<Self>, run_id: &str) -> RunEnd {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.by_run
            .lock()
            .unwrap()
            .entry(run_id.to_string())
            .or_default()
            .push((id, tx));
        RunEnd {
            waiters: self.clone(),
            run_id: run_id.to_string(),
            id,
            rx,
        }
    }

    /// `run_id` ended (or is stuck): wake whoever waits for it.
    pub(super) fn ended(&self, run_id: &str) {
        let waiting = self.by_run.lock().unwrap().remove(run_id);
        for (_, tx) in waiting.into_iter().flatten() {
            let _ = tx.send(());
        }
    }

    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.by_run.lock().unwrap().values().map(Vec::len).sum()
    }
}

/// Resolves once the run it watches ends; dropped before, it leaves the
/// list of waiters.
pub struct RunEnd {
    waiters: Arc<EndWaiters>,
    run_id: String,
    id: u64,
    rx: oneshot::Receiver<()>,
}

impl Future for RunEnd {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.rx).poll(cx).map(|_| ())
    }
}

impl Drop for RunEnd {
    fn drop(&mut self) {
        let mut by_run = self.waiters.by_run.lock().unwrap();
        if let Some(list) = by_run.get_mut(&self.run_id) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                by_run.remove(&self.run_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn an_end_wakes_only_its_runs_waiters_and_a_dropped_wait_leaves() {
        let waiters = Arc::new(EndWaiters::default());
        let a1 = waiters.watch("a");
        let a2 = waiters.watch("a");
        let b = waiters.watch("b");
        assert_eq!(waiters.waiting(), 3);
        waiters.ended("a");
        a1.await;
        a2.await;
        let short = tokio::time::timeout(Duration::from_millis(20), b).await;
        assert!(short.is_err(), "b did not end");
        assert_eq!(waiters.waiting(), 0, "the timed-out wait left the list");
        // An end before anyone waits wakes nobody later.
        waiters.ended("c");
        let c = waiters.watch("c");
        assert!(
            tokio::time::timeout(Duration::from_millis(20), c)
                .await
                .is_err()
        );
    }
}
