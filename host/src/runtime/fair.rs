//! Slots shared fairly among namespaces: executions and activity attempts
//! wait for a slot in a queue of their namespace, a freed slot goes to the
//! namespaces with waiters in turn, and no namespace holds more than three
//! quarters of the slots — so one namespace with 10,000 queued runs (each
//! holding its slot while it waits for its activities) delays another's
//! by a turn, not until its backlog drains. A namespace may be held to
//! fewer slots still (its `max_concurrent_activities`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, oneshot};

pub struct FairSlots {
    /// The most slots one namespace holds at once.
    cap: usize,
    state: Mutex<State>,
    /// Told whenever work starts waiting for a slot.
    wanted: Notify,
}

#[derive(Default)]
struct State {
    free: usize,
    /// Slots held, by namespace.
    held: HashMap<String, usize>,
    /// Waiters by namespace, oldest first.
    waiting: HashMap<String, VecDeque<oneshot::Sender<()>>>,
    /// Namespaces with waiters, in the order they are served.
    turns: VecDeque<String>,
    /// Namespaces held to fewer slots than the cap, as their last
    /// acquirer said.
    limits: HashMap<String, usize>,
}

impl State {
    fn held(&self, namespace: &str) -> usize {
        self.held.get(namespace).copied().unwrap_or(0)
    }

    /// Whether `namespace` holds all it may: `cap`, or its own limit.
    fn full(&self, namespace: &str, cap: usize) -> bool {
        let most = self.limits.get(namespace).map_or(cap, |&own| own.min(cap));
        self.held(namespace) >= most
    }

    fn take(&mut self, namespace: &str) {
        self.free -= 1;
        *self.held.entry(namespace.to_string()).or_default() += 1;
    }

    /// Give free slots to waiters, namespaces in turn, skipping those at
    /// their cap.
    fn dispatch(&mut self, cap: usize) {
        let mut passes = self.turns.len();
        while self.free > 0 && passes > 0 {
            let Some(namespace) = self.turns.pop_front() else {
                return;
            };
            if self.full(&namespace, cap) {
                self.turns.push_back(namespace);
                passes -= 1;
                continue;
            }
            let queue = self.waiting.get_mut(&namespace).expect("a queue per turn");
            let waiter = queue.pop_front().expect("a turn has a waiter");
            let more = !queue.is_empty();
            if more {
                self.turns.push_back(namespace.clone());
            } else {
                self.waiting.remove(&namespace);
            }
            // A waiter that gave up (its future dropped) passes its turn on.
            if waiter.send(()).is_ok() {
                self.take(&namespace);
            }
            passes = self.turns.len();
        }
    }
}

/// A slot; dropping it hands the slot on.
pub struct Slot {
    slots: Arc<FairSlots>,
    namespace: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.slots.state.lock().unwrap();
        state.free += 1;
        if let Some(n) = state.held.get_mut(&self.namespace) {
            *n -= 1;
            if *n == 0 {
                state.held.remove(&self.namespace);
                if !state.waiting.contains_key(&self.namespace) {
                    state.limits.remove(&self.namespace);
                }
            }
        }
        state.dispatch(self.slots.cap);
    }
}

impl FairSlots {
    pub fn new(slots: usize) -> Arc<Self> {
        Arc::new(FairSlots {
            cap: (slots * 3 / 4).max(1),
            state: Mutex::new(State {
                free: slots,
                ..State::default()
            }),
            wanted: Notify::new(),
        })
    }

    /// A slot for work of `namespace`, once it is this namespace's turn.
    pub async fn acquire(self: &Arc<Self>, namespace: &str) -> Slot {
        self.acquire_within(namespace, None).await
    }

    /// A slot for work of `namespace`, which holds at most `most` at once.
    pub async fn acquire_within(self: &Arc<Self>, namespace: &str, most: Option<usize>) -> Slot {
        let slot = || Slot {
            slots: self.clone(),
            namespace: namespace.to_string(),
        };
        let turn = {
            let mut state = self.state.lock().unwrap();
            match most {
                Some(most) => state.limits.insert(namespace.to_string(), most.max(1)),
                None => state.limits.remove(namespace),
            };
            let queued = state.waiting.contains_key(namespace);
            if state.free > 0 && !queued && !state.full(namespace, self.cap) {
                state.take(namespace);
                return slot();
            }
            let (tx, rx) = oneshot::channel();
            let queue = state.waiting.entry(namespace.to_string()).or_default();
            queue.push_back(tx);
            if queue.len() == 1 {
                state.turns.push_back(namespace.to_string());
            }
            self.wanted.notify_waiters();
            rx
        };
        // The slot is taken for us before we are told (a sender is only
        // dropped unsent with the slots themselves).
        let _ = turn.await;
        slot()
    }

    /// Until some work waits for a slot (at once if some does): what
    /// holds one and could give it back (a run lingering idle) should.
    pub async fn until_wanted(&self) {
        let notified = self.wanted.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !self.state.lock().unwrap().turns.is_empty() {
            return;
        }
        notified.await;
    }

    /// Slots free now.
    #[cfg(test)]
    fn available(&self) -> usize {
        self.state.lock().unwrap().free
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_freed_slot_goes_to_the_namespaces_in_turn() {
        let slots = FairSlots::new(1);
        let held = slots.acquire("a").await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Ten of `a` queue first, then one of `b`.
        for (i, ns) in (0..10).map(|i| (i, "a")).chain([(10, "b")]) {
            let (slots, order) = (slots.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = slots.acquire(ns).await;
                order.lock().unwrap().push(format!("{ns}{i}"));
                tokio::time::sleep(Duration::from_millis(1)).await;
            }));
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        // `b` is served second, not eleventh.
        assert_eq!(
            order[..2],
            ["a0".to_string(), "b10".to_string()],
            "{order:?}"
        );
        assert_eq!(order.len(), 11);
        assert_eq!(slots.available(), 1);
    }

    #[tokio::test]
    async fn a_holder_learns_when_its_slot_is_wanted() {
        let slots = FairSlots::new(1);
        let held = slots.acquire("a").await;
        let quiet = tokio::time::timeout(Duration::from_millis(10), slots.until_wanted()).await;
        assert!(quiet.is_err(), "nobody waits yet");
        let told = tokio::spawn({
            let slots = slots.clone();
            async move { slots.until_wanted().await }
        });
        tokio::task::yield_now().await;
        let waiter = tokio::spawn({
            let slots = slots.clone();
            async move { drop(slots.acquire("b").await) }
        });
        tokio::time::timeout(Duration::from_secs(5), told)
            .await
            .expect("told when b queued")
            .unwrap();
        // Asked again while b still waits: at once.
        tokio::time::timeout(Duration::from_secs(5), slots.until_wanted())
            .await
            .expect("b still waits");
        drop(held);
        waiter.await.unwrap();
        assert_eq!(slots.available(), 1);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_passes_its_turn() {
        let slots = FairSlots::new(1);
        let held = slots.acquire("a").await;
        let gave_up = tokio::time::timeout(Duration::from_millis(10), slots.acquire("b")).await;
        assert!(gave_up.is_err());
        let next = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.acquire("c").await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(held);
        let slot = tokio::time::timeout(Duration::from_secs(1), next)
            .await
            .unwrap()
            .unwrap();
        drop(slot);
        assert_eq!(slots.available(), 1);
    }
}

#[cfg(test)]
mod cap_tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_namespace_holds_at_most_three_quarters() {
        let slots = FairSlots::new(4);
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(slots.acquire("a").await);
        }
        // The fourth of `a` waits although a slot is free; `b` gets it.
        let fourth = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.acquire("a").await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!fourth.is_finished());
        let b = tokio::time::timeout(Duration::from_millis(100), slots.acquire("b")).await;
        assert!(b.is_ok(), "b got the reserved slot");
        drop(held.pop());
        let fourth = tokio::time::timeout(Duration::from_secs(1), fourth).await;
        assert!(fourth.is_ok(), "a's waiter got a's freed slot");
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_namespace_limit_holds_it_below_the_cap_and_others_use_the_rest() {
        let slots = FairSlots::new(8);
        let a1 = slots.acquire_within("a", Some(2)).await;
        let _a2 = slots.acquire_within("a", Some(2)).await;
        let third = tokio::time::timeout(
            Duration::from_millis(20),
            slots.acquire_within("a", Some(2)),
        )
        .await;
        assert!(third.is_err(), "a third slot for a namespace limited to 2");
        // `b` takes the slots `a` may not.
        let mut b = Vec::new();
        for _ in 0..6 {
            b.push(slots.acquire("b").await);
        }
        let waiting = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.acquire_within("a", Some(2)).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(b);
        assert!(
            !waiting.is_finished(),
            "freed slots of `b` went to `a` past its limit"
        );
        drop(a1);
        let slot = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .unwrap()
            .unwrap();
        drop(slot);
    }
}
