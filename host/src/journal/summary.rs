//! One-line descriptions of events, for timelines (`weft show`).

use super::event::{Event, describe_duration, short};

impl Event {
    /// One line for timelines (`weft show`).
    pub fn summary(&self) -> String {
        match self {
            Event::Started {
                workflow,
                version,
                input,
                ..
            } => format!("started {workflow} v{version} with {}", short(input)),
            Event::Clock { source, nanos } => format!("clock ({source:?}) = {nanos} ns"),
            Event::Random { source, hex } => format!("random ({source:?}) {} bytes", hex.len() / 2),
            Event::ActivityScheduled {
                handle,
                name,
                input,
                ..
            } => format!(
                "#{handle} activity `{name}` scheduled with {}",
                short(input)
            ),
            Event::ActivityAttemptFailed {
                handle,
                attempt,
                failure,
                retry_in_ms,
            } => {
                let retry = match retry_in_ms {
                    Some(ms) => format!(", retry in {}", describe_duration(*ms)),
                    None => String::new(),
                };
                format!(
                    "#{handle} attempt {attempt} failed: {}: {}{retry}",
                    failure.kind(),
                    failure.message()
                )
            }
            Event::ActivityHeld {
                handle,
                attempts,
                failure,
                ..
            } => match failure {
                None => format!(
                    "#{handle} activity finished ({attempts} attempt(s)); held until awaited"
                ),
                Some(f) => format!(
                    "#{handle} activity failed ({attempts} attempt(s)): {}; held until awaited",
                    f.kind()
                ),
            },
            Event::Paused { reason } => format!("paused: {reason}"),
            Event::Unpaused { reason } => format!("unpaused: {reason}"),
            Event::CancelRequested { handle } => format!("cancel #{handle}"),
            Event::ChildAttemptFailed {
                handle,
                attempt,
                child_run_id,
                failure,
                next_run_id,
            } => format!(
                "#{handle} child run {child_run_id} (attempt {attempt}) failed: {}: {}; retried as {next_run_id}",
                failure.kind(),
                failure.message()
            ),
            Event::ActivityCancelled { handle } => {
                format!("#{handle} activity ended after it was told of its cancellation")
            }
            Event::ActivityHeartbeat {
                handle,
                attempt,
                details,
            } => format!(
                "#{handle} activity heartbeat (attempt {attempt}): {}",
                short(details)
            ),
            Event::ActivityAwaitingDeployment { handle, component } => {
                format!("#{handle} waits for a deployment of activity component `{component}`")
            }
            Event::ActivityCompleted {
                handle,
                attempts,
                output,
                ..
            } => format!(
                "#{handle} activity completed after {attempts} attempt(s): {}",
                short(output)
            ),
            Event::ActivityFailed {
                handle,
                attempts,
                failure,
                ..
            } => format!(
                "#{handle} activity failed after {attempts} attempt(s): {}: {}",
                failure.kind(),
                failure.message()
            ),
            Event::TimerStarted {
                handle,
                duration_ms,
                ..
            } => format!(
                "#{handle} timer {} started",
                describe_duration(*duration_ms)
            ),
            Event::TimerFired { handle, .. } => format!("#{handle} timer fired"),
            Event::SignalReceived {
                handle,
                name,
                signal_id,
                payload,
                ..
            } => format!(
                "#{handle} signal `{name}` received (signal {signal_id}): {}",
                short(payload)
            ),
            Event::Reset {
                event,
                new_run_id,
                reason,
            } => format!("reset to event {event}: run {new_run_id} carries on ({reason})"),
            Event::ResetFrom {
                run_id,
                event,
                reason,
            } => format!("reset from run {run_id} at its event {event} ({reason})"),
            Event::UpdateAccepted {
                handle,
                name,
                update_id,
                input,
                ..
            } => format!(
                "#{handle} update `{name}` accepted ({update_id}): {}",
                short(input)
            ),
            Event::UpdateSent {
                handle,
                workflow_id,
                name,
                payload,
                ..
            } => format!(
                "#{handle} update `{name}` sent to `{workflow_id}` with {}",
                short(payload)
            ),
            Event::UpdateAnswered {
                handle,
                output,
                error,
                ..
            } => match error {
                Some(e) => format!("#{handle} update answered: {}: {}", e.kind, e.message),
                None => format!(
                    "#{handle} update answered: {}",
                    short(output.as_ref().unwrap_or(&serde_json::Value::Null))
                ),
            },
            Event::UpdateCompleted {
                handle,
                update_id,
                output,
                error,
            } => match error {
                Some(e) => format!(
                    "#{handle} update {update_id} answered with an error: {}: {}",
                    e.kind, e.message
                ),
                None => format!(
                    "#{handle} update {update_id} answered: {}",
                    short(output.as_ref().unwrap_or(&serde_json::Value::Null))
                ),
            },
            Event::ChildStarted {
                handle,
                workflow,
                child_run_id,
                error,
                ..
            } => match (child_run_id, error) {
                (Some(id), _) => format!("#{handle} child `{workflow}` started: run {id}"),
                (None, Some(e)) => {
                    format!("#{handle} child `{workflow}` not started: {}", e.message)
                }
                (None, None) => format!("#{handle} child `{workflow}`"),
            },
            Event::ChildCompleted { handle, output, .. } => {
                format!("#{handle} child completed: {}", short(output))
            }
            Event::ChildFailed {
                handle, failure, ..
            } => format!(
                "#{handle} child failed: {}: {}",
                failure.kind(),
                failure.message()
            ),
            Event::Interrupted {
                handle, failure, ..
            } => format!(
                "#{handle} interrupted: {}: {}",
                failure.kind(),
                failure.message()
            ),
            Event::SignalSent {
                workflow_id,
                name,
                start,
                error,
                ..
            } => {
                let how = if start.is_some() { " (with start)" } else { "" };
                match error {
                    None => format!("signal `{name}` sent to {workflow_id}{how}"),
                    Some(e) => {
                        format!(
                            "signal `{name}` to {workflow_id}{how} refused: {}",
                            e.message
                        )
                    }
                }
            }
            Event::StatusSet { status } => format!("status {}", short(status)),
            Event::SearchAttributesSet { attributes } => {
                format!("search attributes {}", short(attributes))
            }
            Event::Completed { output } => format!("completed: {}", short(output)),
            Event::Failed { error } => format!("failed: {}: {}", error.kind, error.message),
            Event::ContinuedAsNew { input, next_run_id } => {
                format!("continued as new run {next_run_id} with {}", short(input))
            }
            Event::PatchMarker { change_id } => format!("patched `{change_id}`"),
            Event::Upgraded {
                from_version,
                to_version,
                forced,
                ..
            } => {
                let how = if *forced { " (forced, unchecked)" } else { "" };
                format!("upgraded from v{from_version} to v{to_version}{how}")
            }
        }
    }
}
