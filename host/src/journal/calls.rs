//! Constructors of the calls guests make, shared by the live path and the
//! journal side so both digest the same request, and which call each
//! recorded event answers.

use super::event::{Call, Event, Request, Source, StartSpec, describe_duration, short};
use super::options::{ActivityOptions, ParentClose, RetryPolicy};
use serde_json::{Value, json};

/// A field of a request as text (descriptions only).
fn text(request: &Value, field: &str) -> String {
    match &request[field] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The source a clock or random request names, as it reads in Rust.
fn source_of(request: &Value) -> String {
    serde_json::from_value::<Source>(request["source"].clone())
        .map(|s| format!("{s:?}"))
        .unwrap_or_else(|_| text(request, "source"))
}

pub fn clock(source: Source) -> Call<'static> {
    Call::new("clock", json!({ "source": source }), |r| {
        format!("a clock read ({})", source_of(r))
    })
}

pub fn random(source: Source, len: u64) -> Call<'static> {
    Call::new("random", json!({ "source": source, "len": len }), |r| {
        format!("{} random bytes ({})", r["len"], source_of(r))
    })
}

pub fn activity<'a>(name: &'a str, input: &'a Value, options: &'a ActivityOptions) -> Call<'a> {
    let request = Request::Activity {
        name,
        input,
        options,
    };
    Call::typed("activity", request, |r| {
        format!(
            "activity `{}` with input {}",
            text(r, "name"),
            short(&r["input"])
        )
    })
}

pub fn timer(duration_ms: u64) -> Call<'static> {
    Call::new("timer", json!({ "duration_ms": duration_ms }), |r| {
        format!(
            "sleep {}",
            describe_duration(r["duration_ms"].as_u64().unwrap_or_default())
        )
    })
}

pub fn await_handle(handle: u32) -> Call<'static> {
    Call::typed("await", Request::Await(handle), |r| {
        format!("the result of #{}", r["handle"])
    })
}

pub fn patch(change_id: &str) -> Call<'static> {
    Call::new("patch", json!({ "change_id": change_id }), |r| {
        format!("patch `{}`", text(r, "change_id"))
    })
}

/// The status a workflow publishes: informational, never matched (replay
/// skips recorded ones; code that publishes other statuses still matches).
pub fn status() -> Call<'static> {
    Call::new("status", Value::Null, |_| "a status".into())
}

/// Search attributes a workflow sets: informational like a status.
pub fn search_attributes() -> Call<'static> {
    Call::new("search-attributes", Value::Null, |_| {
        "search attributes".into()
    })
}

pub fn await_any(handles: &[u32]) -> Call<'_> {
    Call::typed("await-any", Request::AwaitAny(handles), |r| {
        let list: Vec<String> = (r["handles"].as_array().into_iter().flatten())
            .map(|h| format!("#{h}"))
            .collect();
        format!("the first result of {}", list.join(", "))
    })
}

pub fn child(
    workflow: &str,
    workflow_id: Option<&str>,
    input: &Value,
    parent_close: ParentClose,
    run_timeout_ms: Option<u64>,
    retry: Option<&RetryPolicy>,
) -> Call<'static> {
    let mut request = json!({
        "workflow": workflow,
        "workflow_id": workflow_id,
        "input": input,
        "parent_close": parent_close,
    });
    // Only when set: journals from before it keep their digests.
    if let Some(ms) = run_timeout_ms {
        request["run_timeout_ms"] = json!(ms);
    }
    if let Some(retry) = retry {
        request["retry"] = json!(retry);
    }
    Call::new("child", request, |r| {
        format!(
            "child workflow `{}` with input {}",
            text(r, "workflow"),
            short(&r["input"])
        )
    })
}

pub fn signal_out(
    workflow_id: &str,
    name: &str,
    payload: &Value,
    start: Option<&StartSpec>,
) -> Call<'static> {
    let request = json!({
        "workflow_id": workflow_id,
        "name": name,
        "payload": payload,
        "start": start,
    });
    Call::new("signal-out", request, |r| {
        format!(
            "signal `{}` to `{}`",
            text(r, "name"),
            text(r, "workflow_id")
        )
    })
}

pub fn update_out(
    workflow_id: &str,
    name: &str,
    payload: &Value,
    start: Option<&StartSpec>,
) -> Call<'static> {
    let request = json!({
        "workflow_id": workflow_id,
        "name": name,
        "payload": payload,
        "start": start,
    });
    Call::new("update-out", request, |r| {
        format!(
            "update `{}` of `{}`",
            text(r, "name"),
            text(r, "workflow_id")
        )
    })
}

pub fn cancel(handle: u32) -> Call<'static> {
    Call::new("cancel", json!({ "handle": handle }), |r| {
        format!("cancel #{}", r["handle"])
    })
}

/// The answer to the update accepted through `handle`. Its result is not
/// part of the digest: code that answers the same update differently after
/// an upgrade still matches (the caller had the recorded answer).
pub fn update_reply(handle: u32) -> Call<'static> {
    Call::new("update-reply", json!({ "handle": handle }), |r| {
        format!("the answer to the update of #{}", r["handle"])
    })
}

impl Event {
    /// The guest call this event answers, or `None` for informational
    /// events (replay skips those) and the run's end.
    pub fn call(&self) -> Option<Call<'_>> {
        if let Some((handle, select)) = self.completion() {
            return Some(match select {
                Some(set) => await_any(set),
                None => await_handle(handle),
            });
        }
        match self {
            Event::Clock { source, .. } => Some(clock(*source)),
            Event::Random { source, hex } => Some(random(*source, hex.len() as u64 / 2)),
            Event::ActivityScheduled {
                name,
                input,
                options,
                ..
            } => Some(activity(name, input, options)),
            Event::TimerStarted { duration_ms, .. } => Some(timer(*duration_ms)),
            Event::ChildStarted {
                workflow,
                workflow_id,
                input,
                parent_close,
                run_timeout_ms,
                retry,
                ..
            } => Some(child(
                workflow,
                workflow_id.as_deref(),
                input,
                *parent_close,
                *run_timeout_ms,
                retry.as_ref(),
            )),
            Event::CancelRequested { handle } => Some(cancel(*handle)),
            Event::SignalSent {
                workflow_id,
                name,
                payload,
                start,
                ..
            } => Some(signal_out(workflow_id, name, payload, start.as_ref())),
            Event::PatchMarker { change_id } => Some(patch(change_id)),
            Event::UpdateCompleted { handle, .. } => Some(update_reply(*handle)),
            Event::UpdateSent {
                workflow_id,
                name,
                payload,
                start,
                ..
            } => Some(update_out(workflow_id, name, payload, start.as_ref())),
            // Informational events and the run's end are not calls.
            _ => None,
        }
    }
}
