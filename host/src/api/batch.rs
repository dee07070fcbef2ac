//! Batch operations: one request cancels, terminates, signals, pauses or
//! upgrades every run
//! of a namespace that a filter matches ("cancel every running rollout").
//! Each run goes through the same path as its own request would (a run
//! driven by another node is handled there); one audit entry records the
//! batch. A dry run answers what would be touched.

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, JsonBody};
use crate::error::Error;
use crate::runtime::{Route, SignalRequest, Target};
use crate::store::{Role, RunFilter, RunStatus};
use crate::writes::SignalTarget;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

/// The most runs one batch touches; `more` says when others matched.
const MAX_RUNS: u32 = 1000;

/// What a batch does to each run.
enum Action {
    Cancel,
    Terminate {
        reason: Option<String>,
    },
    Signal {
        name: String,
        payload: Value,
    },
    Pause {
        paused: bool,
        reason: Option<String>,
    },
    /// Move each run to a version, if its journal replays on it.
    Upgrade {
        to: Target,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// `cancel`, `terminate`, `pause` or `unpause` (with `reason`), or
    /// `signal` (with `signal`, the signal's name, and `payload`).
    action: String,
    reason: Option<String>,
    signal: Option<String>,
    payload: Option<Value>,
    /// Default: the token's namespace (or `default`).
    namespace: Option<String>,
    workflow: Option<String>,
    workflow_id: Option<String>,
    /// A list query over fields and search attributes.
    query: Option<String>,
    /// The version an `upgrade` moves runs to: a number or `latest`
    /// (default).
    version: Option<Value>,
    /// Default: `running`.
    status: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

impl BatchBody {
    fn action(&self) -> Result<Action, Error> {
        let only = |fields: &[(&str, bool)]| match fields.iter().find(|(_, given)| *given) {
            Some((name, _)) => Err(Error::BadRequest(format!(
                "`{name}` does not apply to a batch {}",
                self.action
            ))),
            None => Ok(()),
        };
        let signal = self.signal.is_some() || self.payload.is_some();
        match self.action.as_str() {
            "cancel" => {
                only(&[("reason", self.reason.is_some()), ("signal", signal)])?;
                Ok(Action::Cancel)
            }
            "terminate" => {
                only(&[("signal", signal)])?;
                Ok(Action::Terminate {
                    reason: self.reason.clone(),
                })
            }
            "pause" | "unpause" => {
                only(&[("signal", signal)])?;
                Ok(Action::Pause {
                    paused: self.action == "pause",
                    reason: self.reason.clone(),
                })
            }
            "upgrade" => {
                only(&[("reason", self.reason.is_some()), ("signal", signal)])?;
                let to = match &self.version {
                    None => Target::Latest,
                    Some(Value::String(s)) if s == "latest" => Target::Latest,
                    Some(v) => Target::Version(v.as_u64().map(|n| n as u32).ok_or_else(|| {
                        Error::BadRequest(format!("a version is a number or `latest`, not {v}"))
                    })?),
                };
                Ok(Action::Upgrade { to })
            }
            "signal" => {
                only(&[("reason", self.reason.is_some())])?;
                let name = self.signal.clone().unwrap_or_default();
                if name.is_empty() || name.len() > 128 {
                    return Err(Error::BadRequest(
                        "a batch signal needs `signal`, its name (1 to 128 characters)".into(),
                    ));
                }
                Ok(Action::Signal {
                    name,
                    payload: self.payload.clone().unwrap_or(Value::Null),
                })
            }
            other => Err(Error::BadRequest(format!(
                "unknown batch action `{other}` (cancel, terminate, signal, pause, unpause or upgrade)"
            ))),
        }
    }
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::Cancel => "cancel",
            Action::Terminate { .. } => "terminate",
            Action::Signal { .. } => "signal",
            Action::Pause { paused: true, .. } => "pause",
            Action::Pause { paused: false, .. } => "unpause",
            Action::Upgrade { .. } => "upgrade",
        }
    }
}

/// `POST /v1/batches {"action": "cancel" | "terminate" | "signal", filter…}`:
/// answers the runs it matched, those it acted on and those it could not.
pub async fn run(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<BatchBody>,
) -> Result<Json<Value>, ApiError> {
    let namespace = caller.namespace_or(body.namespace.as_deref()).to_string();
    super::auth::visible(&state, &caller, &namespace).await?;
    let action = body.action()?;
    // Upgrades are the deploy role's verb; the others the operate role's.
    let role = match action {
        Action::Upgrade { .. } => Role::Deploy,
        _ => Role::Operate,
    };
    caller.require(role, &namespace)?;
    let status = match body.status.as_deref() {
        None | Some("") => RunStatus::Running,
        Some(s) => s
            .parse::<RunStatus>()
            .map_err(|e| Error::BadRequest(e.to_string()))?,
    };
    let filter = RunFilter {
        status: Some(status),
        workflow: body.workflow.clone().filter(|w| !w.is_empty()),
        workflow_id: body.workflow_id.clone().filter(|w| !w.is_empty()),
        namespace: Some(namespace.clone()),
        query: super::runs::list_query(body.query.as_deref())?,
        limit: MAX_RUNS + 1,
    };
    let mut runs = state.rt.store.list_runs(&filter).await?;
    let more = runs.len() > MAX_RUNS as usize;
    runs.truncate(MAX_RUNS as usize);
    let matched: Vec<String> = runs.into_iter().map(|r| r.run_id).collect();
    let mut applied = Vec::new();
    let mut failed = Vec::new();
    if !body.dry_run {
        for run_id in &matched {
            match act(&state, &namespace, &action, run_id).await {
                Ok(()) => applied.push(run_id.clone()),
                Err(e) => failed.push(json!({ "run_id": run_id, "error": e.to_string() })),
            }
        }
        let details = json!({
            "filter": {
                "workflow": body.workflow,
                "workflow_id": body.workflow_id,
                "status": status.as_str(),
                "query": body.query,
            },
            "applied": applied.len(),
            "failed": failed.len(),
        });
        let what = format!("batch-{}", action.name());
        super::audit::record(&state, &caller, &namespace, &what, &namespace, details).await;
    }
    Ok(Json(json!({
        "action": action.name(),
        "namespace": namespace,
        "dry_run": body.dry_run,
        "matched": matched,
        "applied": applied,
        "failed": failed,
        "more": more,
    })))
}

async fn act(
    state: &AppState,
    namespace: &str,
    action: &Action,
    run_id: &str,
) -> crate::error::Result<()> {
    match action {
        Action::Cancel => state.rt.cancel(run_id).await.map(drop),
        Action::Terminate { reason } => {
            let reason = reason.as_deref().unwrap_or("terminated by a batch");
            (state.rt)
                .terminate_run(run_id, reason, Route::ToDriver)
                .await
                .map(drop)
        }
        Action::Pause { paused, reason } => {
            let verb = if *paused { "paused" } else { "unpaused" };
            let reason = reason
                .clone()
                .unwrap_or_else(|| format!("{verb} by a batch"));
            (state.rt)
                .pause_run(run_id, *paused, &reason, Route::ToDriver)
                .await
                .map(drop)
        }
        Action::Upgrade { to } => {
            let report = (state.rt)
                .upgrade_run(run_id, *to, false, Route::ToDriver)
                .await?;
            if report.upgraded || report.from_version == report.to_version {
                Ok(())
            } else {
                Err(Error::Conflict(format!(
                    "cannot move to v{}: {:?}",
                    report.to_version, report.verdict
                )))
            }
        }
        Action::Signal { name, payload } => {
            let req = SignalRequest {
                target: SignalTarget::Run(run_id.to_string()),
                namespace: namespace.to_string(),
                name: name.clone(),
                payload: payload.clone(),
                start: None,
                request_id: None,
            };
            state.rt.signal(req).await.map(drop)
        }
    }
}
