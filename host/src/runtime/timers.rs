//! Durable timers, in memory: the database holds each evicted run's wake-up
//! time (so a restart rebuilds this queue); this only decides when to wake.

use super::Runtime;
use crate::clock::now_ms;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

#[derive(Default)]
pub struct Timers {
    queue: Mutex<Queue>,
    changed: Notify,
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<(i64, String)>>,
    /// Each run's current wake-up: an entry it replaced is stale.
    current: HashMap<String, i64>,
}

impl Timers {
    /// Wake `run_id` at `at_ms`, instead of any earlier request.
    pub fn push(&self, at_ms: i64, run_id: String) {
        let mut q = self.queue.lock().unwrap();
        q.current.insert(run_id.clone(), at_ms);
        q.heap.push(Reverse((at_ms, run_id)));
        drop(q);
        self.changed.notify_one();
    }

    /// The run ended: nothing to wake.
    pub fn forget(&self, run_id: &str) {
        self.queue.lock().unwrap().current.remove(run_id);
    }

    /// Forget the wake-ups of the runs `gone` picks (shards handed over).
    pub fn forget_where(&self, gone: impl Fn(&str) -> bool) {
        self.queue
            .lock()
            .unwrap()
            .current
            .retain(|run_id, _| !gone(run_id));
    }

    /// Whether `run_id` has a wake-up pending.
    pub fn contains(&self, run_id: &str) -> bool {
        self.queue.lock().unwrap().current.contains_key(run_id)
    }

    fn pop_due(&self, now: i64) -> (Vec<String>, Option<i64>) {
        let mut q = self.queue.lock().unwrap();
        let mut due = Vec::new();
        while let Some(Reverse((at, _))) = q.heap.peek() {
            if *at > now {
                break;
            }
            let Reverse((at, run_id)) = q.heap.pop().expect("peeked");
            if q.current.get(&run_id) == Some(&at) {
                q.current.remove(&run_id);
                due.push(run_id);
            }
        }
        (due, q.heap.peek().map(|Reverse((at, _))| *at))
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
                tokio::select! {
                    _ = crate::clock::sleep_until_ms(at) => {}
                    _ = notified => {}
                }
            }
            None => notified.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_or_forgotten_wake_up_does_not_fire() {
        let timers = Timers::default();
        timers.push(10, "a".into());
        timers.push(20, "a".into()); // re-suspended with a later timer
        timers.push(15, "b".into());
        timers.push(12, "c".into());
        timers.forget("c"); // ended
        assert_eq!(timers.pop_due(16), (vec!["b".to_string()], Some(20)));
        assert_eq!(timers.pop_due(20), (vec!["a".to_string()], None));
    }
}
