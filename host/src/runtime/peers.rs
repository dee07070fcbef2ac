//! What only the node driving a run can do — take it exclusively to
//! upgrade or terminate it — asked of that node over its HTTP API when
//! another node gets the request. A forwarded request is served where it
//! lands, never forwarded again.

use super::{Report, Runtime, Target};
use crate::error::{Error, Result};
use crate::store::{RunRecord, shard_of};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The header that marks a request one node forwarded to another.
pub const FORWARDED: &str = "x-weft-forwarded";

/// How a caller wants a per-run request served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// By the node driving the run, wherever that is.
    ToDriver,
    /// Here, or refused: the request was forwarded already.
    HereOnly,
}

impl Runtime {
    /// Upgrade a run on the node that drives it.
    pub async fn upgrade_run(
        self: &Arc<Self>,
        run_id: &str,
        target: Target,
        force: bool,
        route: Route,
    ) -> Result<Report> {
        if route == Route::HereOnly || self.membership.drives(run_id) {
            return self.upgrade(run_id, target, force).await;
        }
        let version = match target {
            Target::Latest => json!("latest"),
            Target::Version(n) => json!(n),
        };
        let body = json!({ "version": version, "force": force });
        match self.ask_driver(run_id, "upgrade", &body).await {
            // The driver refused a divergent upgrade: its report says why.
            Err(Asked::Refused(409, answer)) if answer["error"]["code"] == "divergence" => {
                Ok(serde_json::from_value(answer["error"]["details"].clone())
                    .map_err(|e| Error::Internal(e.into()))?)
            }
            other => other.map_err(Error::from),
        }
    }

    /// Terminate a run on the node that drives it.
    pub async fn terminate_run(
        self: &Arc<Self>,
        run_id: &str,
        reason: &str,
        route: Route,
    ) -> Result<RunRecord> {
        if route == Route::HereOnly || self.membership.drives(run_id) {
            return self.terminate(run_id, reason).await;
        }
        let body = json!({ "reason": reason });
        Ok(self.ask_driver(run_id, "terminate", &body).await?)
    }

    /// Pause or unpause a run where it is driven.
    pub async fn pause_run(
        self: &Arc<Self>,
        run_id: &str,
        paused: bool,
        reason: &str,
        route: Route,
    ) -> Result<RunRecord> {
        if route == Route::HereOnly || self.membership.drives(run_id) {
            return self.pause(run_id, paused, reason).await;
        }
        let body = json!({ "reason": reason });
        let action = if paused { "pause" } else { "unpause" };
        Ok(self.ask_driver(run_id, action, &body).await?)
    }

    /// POST `/v1/runs/{run_id}/{action}` to the node driving the run.
    async fn ask_driver<T: DeserializeOwned>(
        &self,
        run_id: &str,
        action: &str,
        body: &Value,
    ) -> std::result::Result<T, Asked> {
        let coordination = self
            .store
            .coordination()
            .ok_or_else(|| Asked::Failed(Error::Internal(anyhow::anyhow!("no other nodes"))))?;
        let owner = coordination
            .owner(shard_of(run_id))
            .await
            .map_err(|e| Asked::Failed(e.into()))?;
        let Some(owner) = owner else {
            return Err(Asked::Failed(Error::Conflict(format!(
                "run {run_id} is being taken over by another node; try again shortly"
            ))));
        };
        let url = format!("{}/v1/runs/{run_id}/{action}", owner.url);
        let unreachable = |e: reqwest::Error| {
            Asked::Failed(Error::Conflict(format!(
                "run {run_id} is driven by node {} ({}), which did not answer: {e}",
                owner.node_id, owner.url
            )))
        };
        let mut request = self
            .peers
            .post(&url)
            .timeout(Duration::from_secs(60))
            .header(FORWARDED, "1")
            .json(body);
        if let Some(token) = &self.config.peer_token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let answer: Value = response.json().await.map_err(unreachable)?;
        if status >= 300 {
            return Err(Asked::Refused(status, answer));
        }
        serde_json::from_value(answer).map_err(|e| Asked::Failed(Error::Internal(e.into())))
    }
}

/// Why asking the driving node did not answer what was asked.
enum Asked {
    /// It answered an error: its status and JSON.
    Refused(u16, Value),
    Failed(Error),
}

impl From<Asked> for Error {
    fn from(asked: Asked) -> Error {
        match asked {
            Asked::Failed(e) => e,
            Asked::Refused(status, answer) => {
                let message = answer["error"]["message"]
                    .as_str()
                    .unwrap_or("the node driving the run refused")
                    .to_string();
                match status {
                    400 => Error::BadRequest(message),
                    404 => Error::NotFound(message),
                    409 => Error::Conflict(message),
                    _ => Error::Internal(anyhow::anyhow!(message)),
                }
            }
        }
    }
}
