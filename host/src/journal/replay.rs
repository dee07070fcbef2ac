//! The replay cursor: answers guest calls from a loaded journal, in memory,
//! and detects divergence between the journal and the code.

use super::event::{Call, Event};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An event as stored: its per-run sequence number and the event itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    pub seq: u64,
    pub at_ms: i64,
    #[serde(flatten)]
    pub event: Event,
}

/// The code and the journal disagree. The run stops in `stuck` with this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    /// Sequence number of the journal event that did not match.
    pub seq: u64,
    /// What the journal holds at that point.
    pub journal: String,
    /// What the code asked for instead.
    pub code: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "event {}: journal has {}, code asked for {}",
            self.seq, self.journal, self.code
        )
    }
}

impl std::error::Error for Divergence {}

/// Walks a journal in order. Informational events are skipped; every other
/// event must be matched by the guest's next call, by kind and digest.
pub struct Cursor {
    events: Vec<Recorded>,
    pos: usize,
}

impl Cursor {
    pub fn new(events: Vec<Recorded>) -> Self {
        Cursor { events, pos: 0 }
    }

    /// Sequence number the next appended event gets.
    pub fn next_seq(&self) -> u64 {
        self.events.last().map_or(0, |e| e.seq + 1)
    }

    fn skip_informational(&mut self) {
        while self
            .events
            .get(self.pos)
            .is_some_and(|r| r.event.call().is_none())
        {
            self.pos += 1;
        }
    }

    /// True while recorded calls remain to be matched.
    pub fn replaying(&mut self) -> bool {
        self.skip_informational();
        self.pos < self.events.len()
    }

    /// Skip informational events and patch markers: a marker only counts
    /// for the `patched` call that asks for it.
    fn skip_soft(&mut self) {
        loop {
            self.skip_informational();
            match self.events.get(self.pos) {
                Some(r) if matches!(r.event, Event::PatchMarker { .. }) => self.pos += 1,
                _ => return,
            }
        }
    }

    /// Match the guest's `call` against the next recorded call. `Ok(None)`
    /// means the journal is exhausted: the call runs live.
    pub fn expect(&mut self, call: &Call) -> Result<Option<&Recorded>, Divergence> {
        self.skip_soft();
        if self.pos >= self.events.len() {
            return Ok(None);
        }
        let recorded = &self.events[self.pos];
        let expected = recorded.event.call().expect("skipped informational events");
        if expected.kind != call.kind || expected.digest != call.digest {
            return Err(Divergence {
                seq: recorded.seq,
                journal: expected.describe,
                code: call.describe.clone(),
            });
        }
        self.pos += 1;
        Ok(Some(&self.events[self.pos - 1]))
    }

    /// At the end of the run: recorded calls the code never made (trimmed
    /// code) are a divergence too.
    pub fn finish(&mut self, what: &str) -> Result<(), Divergence> {
        self.skip_soft();
        if self.pos >= self.events.len() {
            return Ok(());
        }
        let recorded = &self.events[self.pos];
        Err(Divergence {
            seq: recorded.seq,
            journal: recorded.event.call().expect("a call").describe,
            code: what.to_string(),
        })
    }

    /// Answer `patched(change_id)` from the journal: `Some(true)` where the
    /// journal has its marker (consumed), `Some(false)` where the journal
    /// goes on without it (recorded before the change), `None` once the
    /// journal is exhausted (live).
    pub fn patch(&mut self, change_id: &str) -> Option<bool> {
        let mut i = self.pos;
        while let Some(r) = self.events.get(i) {
            match &r.event {
                Event::PatchMarker { change_id: id } if id == change_id => {
                    self.pos = i + 1;
                    return Some(true);
                }
                Event::PatchMarker { .. } => i += 1,
                e if e.call().is_none() => i += 1,
                _ => return Some(false),
            }
        }
        None
    }

    /// Failed attempts of the activity `handle` recorded so far, and when
    /// the next attempt is due, so a resumed activity continues its count
    /// and its backoff.
    pub fn failed_attempts(&self, handle: u32) -> (u32, Option<i64>) {
        let mut count = 0;
        let mut due = None;
        for r in &self.events {
            if let Event::ActivityAttemptFailed {
                handle: h,
                retry_in_ms,
                ..
            } = &r.event
                && *h == handle
            {
                count += 1;
                due = retry_in_ms.map(|ms| r.at_ms + ms as i64);
            }
        }
        (count, due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::calls;
    use crate::journal::event::{ActivityOptions, Source};
    use serde_json::json;

    fn rec(seq: u64, event: Event) -> Recorded {
        Recorded {
            seq,
            at_ms: 0,
            event,
        }
    }

    fn journal() -> Vec<Recorded> {
        vec![
            rec(
                0,
                Event::Started {
                    workflow: "w".into(),
                    version: 1,
                    digest: "d".into(),
                    workflow_id: "id".into(),
                    input: json!(null),
                },
            ),
            rec(
                1,
                Event::Clock {
                    source: Source::Context,
                    nanos: 5,
                },
            ),
            rec(
                2,
                Event::ActivityScheduled {
                    handle: 0,
                    name: "issue-cert".into(),
                    input: json!({"a": 1, "b": 2}),
                    options: ActivityOptions::default(),
                },
            ),
            rec(
                3,
                Event::ActivityAttemptFailed {
                    handle: 0,
                    attempt: 1,
                    failure: crate::journal::Failure::Cancelled,
                    retry_in_ms: Some(10),
                },
            ),
            rec(
                4,
                Event::ActivityCompleted {
                    handle: 0,
                    attempts: 2,
                    output: json!("ok"),
                    select: None,
                },
            ),
        ]
    }

    #[test]
    fn matching_calls_replay_and_then_go_live() {
        let mut c = Cursor::new(journal());
        assert!(matches!(
            c.expect(&calls::clock(Source::Context))
                .unwrap()
                .map(|r| &r.event),
            Some(Event::Clock { nanos: 5, .. })
        ));
        // Key order in the input does not matter: the digest is canonical.
        let input: serde_json::Value = serde_json::from_str(r#"{"b":2,"a":1}"#).unwrap();
        c.expect(&calls::activity(
            "issue-cert",
            &input,
            &ActivityOptions::default(),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(c.failed_attempts(0), (1, Some(10)));
        c.expect(&calls::await_handle(0)).unwrap().unwrap();
        assert!(c.expect(&calls::timer(1000)).unwrap().is_none());
        assert_eq!(c.next_seq(), 5);
        c.finish("the end").unwrap();
    }

    #[test]
    fn a_different_call_is_a_divergence_naming_both_sides() {
        let mut c = Cursor::new(journal());
        c.expect(&calls::clock(Source::Context)).unwrap();
        let err = c.expect(&calls::timer(30_000)).unwrap_err();
        assert_eq!(err.seq, 2);
        assert_eq!(
            err.to_string(),
            "event 2: journal has activity `issue-cert` with input {\"a\":1,\"b\":2}, code asked for sleep 30s"
        );
    }

    #[test]
    fn a_renamed_activity_or_other_input_is_a_divergence() {
        let mut c = Cursor::new(journal());
        c.expect(&calls::clock(Source::Context)).unwrap();
        let input = json!({"a": 1, "b": 2});
        assert!(
            c.expect(&calls::activity(
                "issue-certificate",
                &input,
                &ActivityOptions::default()
            ))
            .is_err()
        );
        assert!(
            c.expect(&calls::activity(
                "issue-cert",
                &json!({"a": 2}),
                &ActivityOptions::default()
            ))
            .is_err()
        );
    }

    #[test]
    fn patch_markers_answer_patched_and_are_skipped_by_other_calls() {
        let marker = |seq, id: &str| {
            rec(
                seq,
                Event::PatchMarker {
                    change_id: id.into(),
                },
            )
        };
        let clock = |seq| {
            rec(
                seq,
                Event::Clock {
                    source: Source::Context,
                    nanos: 1,
                },
            )
        };
        // New code on a journal with the marker: true, then the calls match.
        let mut c = Cursor::new(vec![marker(0, "x"), clock(1)]);
        assert_eq!(c.patch("x"), Some(true));
        c.expect(&calls::clock(Source::Context)).unwrap().unwrap();
        // New code on a journal recorded before the change: false.
        let mut c = Cursor::new(vec![clock(0)]);
        assert_eq!(c.patch("x"), Some(false));
        c.expect(&calls::clock(Source::Context)).unwrap().unwrap();
        assert_eq!(c.patch("x"), None, "exhausted: live");
        // Code that dropped the patch skips the old marker.
        let mut c = Cursor::new(vec![marker(0, "x"), clock(1)]);
        c.expect(&calls::clock(Source::Context)).unwrap().unwrap();
        c.finish("the end").unwrap();
    }

    #[test]
    fn trimmed_code_is_a_divergence() {
        let mut c = Cursor::new(journal());
        c.expect(&calls::clock(Source::Context)).unwrap();
        let err = c.finish("the run's end").unwrap_err();
        assert_eq!(err.seq, 2);
        assert!(err.to_string().contains("code asked for the run's end"));
    }
}
