//! An activity attempt's heartbeats: the guest's call notes the details and
//! hands them to the executor's store at most every few seconds; with a
//! heartbeat timeout, the executor also watches for silence.

use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// At most this often is an attempt's progress stored without a heartbeat
/// timeout (with one: four fifths of it, at most this).
const STORE_EVERY: Duration = Duration::from_secs(30);

/// Where stored details go (the executor journals them).
type Store = Box<dyn Fn(String) + Send + Sync>;

/// The heartbeats of one attempt, shared by its guest and its executor.
pub struct Heartbeats {
    state: Mutex<Beats>,
    beat: Notify,
    every: Duration,
    store: Store,
}

#[derive(Default)]
struct Beats {
    latest: Option<String>,
    /// Whether `latest` was handed to the store.
    stored: bool,
    /// Not before then is the next beat stored (`None`: the first is).
    next_store: Option<Instant>,
}

impl std::fmt::Debug for Heartbeats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Heartbeats").finish_non_exhaustive()
    }
}

impl Heartbeats {
    /// Heartbeats of an attempt with `timeout`, stored through `store`.
    pub fn new(timeout: Option<Duration>, store: impl Fn(String) + Send + Sync + 'static) -> Self {
        Heartbeats {
            state: Mutex::default(),
            beat: Notify::new(),
            every: timeout.map_or(STORE_EVERY, |t| (t * 4 / 5).min(STORE_EVERY)),
            store: Box::new(store),
        }
    }

    /// The guest's `heartbeat` call: stored at once if the last store was
    /// long enough ago (the first always), else kept for the next.
    pub fn beat(&self, details: String) {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap();
        let due = state.next_store.is_none_or(|at| now >= at);
        state.latest = Some(details);
        state.stored = due;
        if due {
            state.next_store = Some(now + self.every);
            let details = state.latest.clone().unwrap_or_default();
            drop(state);
            (self.store)(details);
        } else {
            drop(state);
        }
        self.beat.notify_one();
    }

    /// Hand the latest details to the store if they were not yet.
    pub fn flush(&self) {
        if let Some(details) = self.unstored() {
            (self.store)(details);
        }
    }

    /// The latest details not yet handed to the store.
    pub fn unstored(&self) -> Option<String> {
        let mut state = self.state.lock().unwrap();
        if state.stored {
            return None;
        }
        state.stored = true;
        state.latest.clone()
    }

    /// The latest details of the attempt.
    pub fn latest(&self) -> Option<String> {
        self.state.lock().unwrap().latest.clone()
    }

    /// Returns once `timeout` passes without a beat.
    pub async fn silent_for(&self, timeout: Duration) {
        let mut last_beat = Instant::now();
        loop {
            tokio::select! {
                () = self.beat.notified() => last_beat = Instant::now(),
                () = tokio::time::sleep_until(last_beat + timeout) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn stores_at_most_every_interval_and_a_silence_ends_the_watch() {
        let stored = Arc::new(Mutex::new(Vec::new()));
        let beats = Arc::new(Heartbeats::new(Some(Duration::from_secs(10)), {
            let stored = stored.clone();
            move |d| stored.lock().unwrap().push(d)
        }));
        let watch = tokio::spawn({
            let beats = beats.clone();
            async move { beats.silent_for(Duration::from_secs(10)).await }
        });
        for i in 0..20 {
            beats.beat(i.to_string());
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        // Beats every second for 20 s: stored at once, then every 8 s.
        assert_eq!(*stored.lock().unwrap(), ["0", "8", "16"]);
        assert!(!watch.is_finished());
        // The last details wait for the next store (or the attempt's end).
        assert_eq!(beats.unstored().as_deref(), Some("19"));
        assert_eq!(beats.unstored(), None);
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert!(watch.is_finished(), "ten silent seconds end the watch");
    }
}
