//! Durable timers, in memory: the database holds each evicted run's wake-up
//! time (so a restart rebuilds this queue); this only decides when to wake.

use super::Runtime;
use crate::store::now_ms;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Default)]
pub struct Timers {
    heap: Mutex<BinaryHeap<Reverse<(i64, String)>>>,
    changed: Notify,
}

impl Timers {
    pub fn push(&self, at_ms: i64, run_id: String) {
        self.heap.lock().unwrap().push(Reverse((at_ms, run_id)));
        self.changed.notify_one();
    }

    fn pop_due(&self, now: i64) -> (Vec<String>, Option<i64>) {
        let mut heap = self.heap.lock().unwrap();
        let mut due = Vec::new();
        while let Some(Reverse((at, _))) = heap.peek() {
            if *at > now {
                break;
            }
            let Reverse((_, run_id)) = heap.pop().expect("peeked");
            due.push(run_id);
        }
        (due, heap.peek().map(|Reverse((at, _))| *at))
    }
}

pub async fn run(rt: Arc<Runtime>) {
    loop {
        let (due, next) = rt.timers.pop_due(now_ms());
        for run_id in due {
            rt.wake(run_id, None);
        }
        let notified = rt.timers.changed.notified();
        match next {
            Some(at) => {
                let wait = Duration::from_millis((at - now_ms()).max(0) as u64);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = notified => {}
                }
            }
            None => notified.await,
        }
    }
}
