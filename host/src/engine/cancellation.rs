//! A scheduled activity's cancellation, shared by the workflow that asks
//! for it, the executor that stops retrying, and the attempt that is told.

use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

#[derive(Default)]
pub struct Cancellation {
    /// The activity is told (try-cancel, wait-cancellation-completed).
    told: AtomicBool,
    /// Its outcome is ignored; it is not told (abandon).
    abandoned: AtomicBool,
    changed: Notify,
}

impl std::fmt::Debug for Cancellation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancellation")
            .field("told", &self.told())
            .field("abandoned", &self.abandoned())
            .finish()
    }
}

impl Cancellation {
    pub fn tell(&self) {
        self.told.store(true, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    pub fn abandon(&self) {
        self.abandoned.store(true, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    pub fn told(&self) -> bool {
        self.told.load(Ordering::SeqCst)
    }

    pub fn abandoned(&self) -> bool {
        self.abandoned.load(Ordering::SeqCst)
    }

    /// Whether the activity is cancelled either way.
    pub fn requested_now(&self) -> bool {
        self.told() || self.abandoned()
    }

    /// Resolves once the activity is cancelled either way.
    pub async fn requested(&self) {
        loop {
            let mut changed = pin!(self.changed.notified());
            changed.as_mut().enable();
            if self.requested_now() {
                return;
            }
            changed.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn requested_resolves_on_either_kind_and_at_once_after() {
        for abandon in [false, true] {
            let c = Arc::new(Cancellation::default());
            let waiting = tokio::spawn({
                let c = c.clone();
                async move { c.requested().await }
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(!waiting.is_finished());
            if abandon {
                c.abandon()
            } else {
                c.tell()
            }
            waiting.await.unwrap();
            c.requested().await;
            assert_eq!((c.told(), c.abandoned()), (!abandon, abandon));
        }
    }
}
