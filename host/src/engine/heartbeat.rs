//! An activity attempt's heartbeats: the guest's call only notes the
//! details; the executor watches them, stores them at most every few
//! seconds, and fails an attempt that stops beating.

use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// At most this often is an attempt's progress stored without a heartbeat
/// timeout (with one: four fifths of it, at most this).
const STORE_EVERY: Duration = Duration::from_secs(30);

/// The heartbeats of one attempt, shared by its guest and its executor.
#[derive(Default)]
pub struct Heartbeats {
    state: Mutex<Beats>,
    beat: Notify,
}

impl std::fmt::Debug for Heartbeats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Heartbeats").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Beats {
    latest: Option<String>,
    /// Whether `latest` was handed to the writer.
    stored: bool,
}

impl Heartbeats {
    /// The guest's `heartbeat` call.
    pub fn beat(&self, details: String) {
        let mut state = self.state.lock().unwrap();
        state.latest = Some(details);
        state.stored = false;
        drop(state);
        self.beat.notify_one();
    }

    /// The latest details not yet handed to a writer.
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

    /// Hand details to `store` as they come (the first at once, then at
    /// most every few seconds); returns once `timeout` passes without a
    /// beat (never, without one).
    pub async fn watch(&self, timeout: Option<Duration>, mut store: impl FnMut(String)) {
        let every = timeout.map_or(STORE_EVERY, |t| (t * 4 / 5).min(STORE_EVERY));
        let mut last_beat = Instant::now();
        let mut next_store = Instant::now();
        let mut waiting = false;
        loop {
            let silent_until = timeout.map(|t| last_beat + t);
            let store_at = waiting.then_some(next_store);
            let wake_at = match (silent_until, store_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let sleep = async {
                match wake_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.beat.notified() => {
                    last_beat = Instant::now();
                    waiting = true;
                }
                () = sleep => {}
            }
            let now = Instant::now();
            if timeout.is_some_and(|t| now >= last_beat + t) {
                return;
            }
            if waiting && now >= next_store {
                if let Some(details) = self.unstored() {
                    store(details);
                }
                waiting = false;
                next_store = now + every;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn stores_at_most_every_interval_and_times_out_when_silent() {
        let beats = Arc::new(Heartbeats::default());
        let stored = Arc::new(Mutex::new(Vec::new()));
        let watch = {
            let (beats, stored) = (beats.clone(), stored.clone());
            tokio::spawn(async move {
                beats
                    .watch(Some(Duration::from_secs(10)), |d| {
                        stored.lock().unwrap().push(d)
                    })
                    .await
            })
        };
        for i in 0..20 {
            beats.beat(i.to_string());
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        // Beats every second for 20 s: stored at once, then every 8 s.
        assert_eq!(stored.lock().unwrap().len(), 3, "{stored:?}");
        assert_eq!(stored.lock().unwrap()[0], "0");
        assert!(!watch.is_finished());
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert!(watch.is_finished(), "ten silent seconds end the watch");
        // The last details were stored before the silence ended it.
        assert_eq!(*stored.lock().unwrap().last().unwrap(), "19");
    }
}
