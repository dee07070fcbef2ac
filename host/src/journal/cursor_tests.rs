//! The replay cursor's tests: matching, divergence, ends, old journals.

use super::*;
use crate::journal::calls;
use crate::journal::{ActivityOptions, Source};
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
                traceparent: None,
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
    c.finish(&completed(json!(1))).unwrap();
}

fn completed(output: serde_json::Value) -> RunEnd {
    RunEnd::Completed { output }
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
fn calls_compare_by_value_whatever_the_order_of_their_keys() {
    let options = ActivityOptions::default();
    let inputs = [
        json!({"x": 1, "y": [1, {"p": 2, "q": 3}]}),
        json!({"y": [1, {"q": 3, "p": 2}], "x": 1}),
        json!({"x": 1, "y": [1, {"p": 2, "q": 4}]}),
        // An integer and a float are different requests, as their JSON is.
        json!({"x": 1.0, "y": [1, {"p": 2, "q": 3}]}),
    ];
    let [one, other, changed, float] =
        [0, 1, 2, 3].map(|i| calls::activity("a", &inputs[i], &options));
    assert_eq!(one, other);
    assert_eq!(one.digest(), other.digest());
    for different in [&changed, &float] {
        assert_ne!(&one, different);
        assert_ne!(one.digest(), different.digest());
    }
    // Calls compared as JSON (a child's) likewise.
    let child = |i: usize| calls::child("c", None, &inputs[i], Default::default(), None, None);
    assert_eq!(child(0), child(1));
    assert_ne!(child(0), child(2));
    // The digest kept with a recorded event is the call's.
    let mut c = Cursor::new(journal());
    c.expect(&calls::clock(Source::Context)).unwrap();
    let recorded = c
        .expect(&calls::activity(
            "issue-cert",
            &json!({"b": 2, "a": 1}),
            &options,
        ))
        .unwrap()
        .unwrap();
    let digest = recorded.event.call().unwrap().digest();
    assert_eq!(
        digest,
        calls::activity("issue-cert", &json!({"a": 1, "b": 2}), &options).digest()
    );
    assert_eq!(digest.len(), 32);
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
    assert!(matches!(
        c.replay(&calls::patch("x")).unwrap(),
        Replay::Recorded(_)
    ));
    c.expect(&calls::clock(Source::Context)).unwrap().unwrap();
    // New code on a journal recorded before the change: false.
    let mut c = Cursor::new(vec![clock(0)]);
    assert_eq!(c.replay(&calls::patch("x")).unwrap(), Replay::Skipped);
    c.expect(&calls::clock(Source::Context)).unwrap().unwrap();
    assert_eq!(c.replay(&calls::patch("x")).unwrap(), Replay::Live);
    // Code that dropped the patch skips the old marker.
    let mut c = Cursor::new(vec![marker(0, "x"), clock(1)]);
    c.expect(&calls::clock(Source::Context)).unwrap().unwrap();
    c.finish(&completed(json!(1))).unwrap();
}

#[test]
fn trimmed_code_is_a_divergence() {
    let mut c = Cursor::new(journal());
    c.expect(&calls::clock(Source::Context)).unwrap();
    let err = c.finish(&completed(json!("ok"))).unwrap_err();
    assert_eq!(err.seq, 2);
    assert!(
        err.to_string()
            .contains("code asked for the run's end (completed with \"ok\")"),
        "{err}"
    );
}

/// The journal of a run that completed with "ok" after its activity.
fn completed_journal() -> Vec<Recorded> {
    let mut j = journal();
    j.push(rec(
        5,
        Event::Completed {
            output: json!("ok"),
        },
    ));
    j
}

fn replay_calls(c: &mut Cursor) {
    c.expect(&calls::clock(Source::Context)).unwrap().unwrap();
    let input = json!({"a": 1, "b": 2});
    c.expect(&calls::activity(
        "issue-cert",
        &input,
        &ActivityOptions::default(),
    ))
    .unwrap()
    .unwrap();
    c.expect(&calls::await_handle(0)).unwrap().unwrap();
}

#[test]
fn the_recorded_end_must_be_the_codes_end() {
    let mut c = Cursor::new(completed_journal());
    replay_calls(&mut c);
    c.finish(&completed(json!("ok"))).unwrap();

    for other in [
        completed(json!("other")),
        RunEnd::ContinuedAsNew { input: json!(1) },
        RunEnd::Failed {
            error: ErrorInfo::new("boom", "it broke"),
        },
    ] {
        let mut c = Cursor::new(completed_journal());
        replay_calls(&mut c);
        let err = c.finish(&other).unwrap_err();
        assert_eq!(err.seq, 5);
        assert_eq!(
            err.to_string(),
            format!(
                "event 5: journal has the run's end (completed with \"ok\"), code asked for {}",
                other.describe()
            )
        );
    }
}

#[test]
fn a_call_past_the_recorded_end_diverges_and_patches_answer_false() {
    let mut c = Cursor::new(completed_journal());
    replay_calls(&mut c);
    assert_eq!(c.replay(&calls::patch("x")).unwrap(), Replay::Skipped);
    let err = c.expect(&calls::timer(1000)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "event 5: journal has the run's end (completed with \"ok\"), code asked for sleep 1s"
    );
}

#[test]
fn statuses_are_skipped_while_the_journal_has_more_and_live_after() {
    let mut c = Cursor::new(journal());
    assert_eq!(c.replay(&calls::status()).unwrap(), Replay::Skipped);
    replay_calls(&mut c);
    assert_eq!(c.replay(&calls::status()).unwrap(), Replay::Live);
    // Past a recorded end a status is skipped, not a divergence.
    let mut c = Cursor::new(completed_journal());
    replay_calls(&mut c);
    assert_eq!(c.replay(&calls::status()).unwrap(), Replay::Skipped);
    c.finish(&completed(json!("ok"))).unwrap();
}

#[test]
fn ends_the_host_imposed_are_not_compared() {
    for error in [
        ErrorInfo::new("timed-out", DEADLINE_STOP),
        ErrorInfo::new("spin-limit", "spun"),
    ] {
        let mut j = journal();
        j.push(rec(5, Event::Failed { error }));
        let mut c = Cursor::new(j);
        replay_calls(&mut c);
        assert!(c.expect(&calls::timer(1000)).unwrap().is_none());
    }
}

#[test]
fn a_recorded_failure_matches_the_same_error_anywhere_in_the_codes_chain() {
    let failed = |error: ErrorInfo| {
        let mut j = journal();
        j.push(rec(5, Event::Failed { error }));
        let mut c = Cursor::new(j);
        replay_calls(&mut c);
        c
    };
    let own = ErrorInfo::new("quota-exceeded", "10 cells already");
    // Code on contract 0.2 wraps the activity's error it propagates.
    let wrapped = RunEnd::Failed {
        error: ErrorInfo {
            cause: Some(Box::new(own.clone())),
            ..ErrorInfo::new("activity-failed", "activity `cloud/create` failed")
        },
    };
    failed(own.clone()).finish(&wrapped).unwrap();
    let other = RunEnd::Failed {
        error: ErrorInfo {
            cause: Some(Box::new(ErrorInfo::new(
                "quota-exceeded",
                "another message",
            ))),
            ..ErrorInfo::new("activity-failed", "activity `cloud/create` failed")
        },
    };
    assert_eq!(failed(own).finish(&other).unwrap_err().seq, 5);
}

/// A journal as hosts before contract 0.2 wrote it (no timeout kinds,
/// cancellation modes, child options or causes) reads, and code on 0.2
/// replays it: its calls match and its end matches the wrapped error.
#[test]
fn a_journal_written_before_contract_0_2_still_replays() {
    let old = r#"[
        {"seq":0,"at_ms":1,"kind":"started","workflow":"w","version":1,"digest":"d","workflow_id":"id","input":null},
        {"seq":1,"at_ms":2,"kind":"activity-scheduled","handle":0,"name":"cloud/create","input":{"b":1,"a":2},
         "options":{"retry":{"initial_interval_ms":50,"backoff_coefficient":2.0,"max_interval_ms":400,"max_attempts":2,"non_retryable":[]},"start_to_close_ms":200}},
        {"seq":2,"at_ms":3,"kind":"activity-attempt-failed","handle":0,"attempt":1,
         "failure":{"type":"timed-out","message":"the attempt did not finish within 200ms"},"retry_in_ms":50},
        {"seq":3,"at_ms":4,"kind":"activity-failed","handle":0,"attempts":2,
         "failure":{"type":"application","kind":"quota-exceeded","message":"full","details":{"limit":10}}},
        {"seq":4,"at_ms":5,"kind":"child-started","handle":1,"workflow":"provision","input":null,"parent_close":"cancel","child_run_id":"c1"},
        {"seq":5,"at_ms":6,"kind":"child-failed","handle":1,"child_run_id":"c1","failure":{"type":"timed-out","message":"child run c1 timed out"}},
        {"seq":6,"at_ms":7,"kind":"failed","error":{"kind":"quota-exceeded","message":"full"}}
    ]"#;
    let events: Vec<Recorded> = serde_json::from_str(old).unwrap();
    let Event::ActivityAttemptFailed { failure, .. } = &events[2].event else {
        panic!("{:?}", events[2]);
    };
    assert_eq!(
        failure,
        &Failure::TimedOut {
            message: "the attempt did not finish within 200ms".into(),
            timeout: None
        }
    );
    let mut c = Cursor::new(events);
    let options = ActivityOptions {
        retry: Some(crate::journal::RetryPolicy {
            initial_interval_ms: 50,
            backoff_coefficient: 2.0,
            max_interval_ms: 400,
            max_attempts: 2,
            non_retryable: vec![],
        }),
        start_to_close_ms: Some(200),
        ..ActivityOptions::default()
    };
    let input = json!({"a": 2, "b": 1});
    let calls = [
        calls::activity("cloud/create", &input, &options),
        calls::await_handle(0),
        calls::child(
            "provision",
            None,
            &json!(null),
            crate::journal::ParentClose::Cancel,
            None,
            None,
        ),
        calls::await_handle(1),
    ];
    for call in &calls {
        assert!(c.expect(call).unwrap().is_some(), "{}", call.describe());
    }
    let wrapped = ErrorInfo {
        cause: Some(Box::new(ErrorInfo::new("quota-exceeded", "full"))),
        ..ErrorInfo::new("activity-failed", "activity `cloud/create` failed")
    };
    c.finish(&RunEnd::Failed { error: wrapped }).unwrap();
}
