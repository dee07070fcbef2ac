//! Updates as stored: a request into a workflow id whose caller waits for
//! the answer. The request is written by whoever received it; the run that
//! takes it records its acceptance and its answer in the same transactions
//! as the journal events (see [`super::Tx::decide_update`]), so the row and
//! the journal never disagree; a rejection touches only the row.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where an update is: requested (no run took it yet), accepted (a run
/// journaled it and is handling it), completed (answered) or rejected (the
/// workflow refused it before accepting; nothing was journaled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateState {
    Requested,
    Accepted,
    Completed,
    Rejected,
}

impl UpdateState {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateState::Requested => "requested",
            UpdateState::Accepted => "accepted",
            UpdateState::Completed => "completed",
            UpdateState::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "requested" => UpdateState::Requested,
            "accepted" => UpdateState::Accepted,
            "completed" => UpdateState::Completed,
            "rejected" => UpdateState::Rejected,
            other => anyhow::bail!("unknown update state `{other}` in the store"),
        })
    }

    /// Answered: the caller has what it waited for.
    pub fn decided(self) -> bool {
        matches!(self, UpdateState::Completed | UpdateState::Rejected)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpdateRecord {
    pub namespace: String,
    pub workflow_id: String,
    pub update_id: String,
    pub name: String,
    pub input: Value,
    pub state: UpdateState,
    /// The run that accepted it.
    pub run_id: Option<String>,
    /// `{"output": ...}` or `{"error": {"kind", "message", ...}}` once
    /// completed or rejected.
    pub outcome: Option<Value>,
    pub requested_at_ms: i64,
    pub decided_at_ms: Option<i64>,
    /// The run that sent it (a workflow asking another), told once it is
    /// answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_run_id: Option<String>,
}

impl UpdateRecord {
    /// Its answer, once it has one: the handler's output, or the error it
    /// was answered with (`{"kind", "message", ...}`).
    pub fn answer(&self) -> Option<Result<Value, Value>> {
        let outcome = self.outcome.as_ref()?;
        Some(match outcome.get("error").filter(|e| !e.is_null()) {
            Some(error) => Err(error.clone()),
            None => Ok(outcome.get("output").cloned().unwrap_or_default()),
        })
    }
}

/// How an update is named in the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpdateKey {
    pub namespace: String,
    pub workflow_id: String,
    pub update_id: String,
}

#[async_trait]
pub trait Updates: Send + Sync {
    /// Record a request; if the workflow id already has an update of that
    /// id, that one is answered instead (a retried request is the same
    /// update). The bool says whether this call created it.
    async fn request_update(&self, update: &UpdateRecord) -> anyhow::Result<(UpdateRecord, bool)>;
    async fn update(&self, key: &UpdateKey) -> anyhow::Result<Option<UpdateRecord>>;
    /// A workflow id's updates no run took yet, oldest first.
    async fn requested_updates(
        &self,
        namespace: &str,
        workflow_id: &str,
    ) -> anyhow::Result<Vec<UpdateRecord>>;
    /// Refuse a requested update with `error` (outside any journal: a
    /// rejected update leaves none). False if it was not requested.
    async fn reject_update(&self, key: &UpdateKey, error: &Value) -> anyhow::Result<bool>;
    /// The updates runs sent to the workflow id of run `run_id` that are
    /// not answered yet (requested or accepted), oldest first.
    async fn sent_updates_open(&self, run_id: &str) -> anyhow::Result<Vec<UpdateRecord>>;
}

/// [`super::Tx::decide_update`]'s statement, for every backend: state,
/// run, outcome, time; the key; the state it must be in.
pub(super) const DECIDE_UPDATE: &str = "UPDATE updates SET state = $1, run_id = $2, \
     outcome = $3, decided_at_ms = $4 \
     WHERE namespace = $5 AND workflow_id = $6 AND update_id = $7 AND state = $8";

/// A select of updates, in [`update_from_row`]'s order, followed by
/// `$rest` (its `WHERE …`).
macro_rules! select_updates {
    ($rest:literal) => {
        concat!(
            "SELECT namespace, workflow_id, update_id, name, input, state, run_id, \
             outcome, requested_at_ms, decided_at_ms, caller_run_id FROM updates ",
            $rest
        )
    };
}

/// The update columns, in [`update_from_row`]'s order.
pub(super) const UPDATE_COLUMNS: &str = select_updates!("");
/// [`Updates::requested_updates`]: namespace, workflow id.
pub(super) const REQUESTED_UPDATES: &str = select_updates!(
    "WHERE namespace = $1 AND workflow_id = $2 AND state = 'requested' \
     ORDER BY requested_at_ms, update_id"
);
/// [`Updates::sent_updates_open`]: the run.
pub(super) const SENT_UPDATES_OPEN: &str = select_updates!(
    "WHERE (namespace, workflow_id) IN \
     (SELECT namespace, workflow_id FROM runs WHERE run_id = $1) \
     AND state IN ('requested', 'accepted') AND caller_run_id IS NOT NULL \
     ORDER BY requested_at_ms, update_id"
);

pub(super) type UpdateRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
    Option<String>,
);

pub(super) fn update_from_row(row: UpdateRow) -> anyhow::Result<UpdateRecord> {
    let (
        namespace,
        workflow_id,
        update_id,
        name,
        input,
        state,
        run_id,
        outcome,
        at,
        decided,
        caller,
    ) = row;
    Ok(UpdateRecord {
        namespace,
        workflow_id,
        update_id,
        name,
        input: serde_json::from_str(&input)?,
        state: UpdateState::parse(&state)?,
        run_id,
        outcome: outcome.as_deref().map(serde_json::from_str).transpose()?,
        requested_at_ms: at,
        decided_at_ms: decided,
        caller_run_id: caller,
    })
}

/// [`Updates`] for a store with a `pool`: the same SQL (`$N` parameters)
/// on every backend, written once. With `read_now`, the two reads every
/// run makes (as it starts and as it ends) call the store's own
/// `requested_updates_now` and `sent_updates_open_now` (SQLite's read on
/// the caller's thread).
macro_rules! impl_updates {
    ($store:ty) => {
        $crate::store::updates::impl_updates!(@with $store {
            async fn requested_updates(
                &self,
                namespace: &str,
                workflow_id: &str,
            ) -> anyhow::Result<Vec<$crate::store::UpdateRecord>> {
                use $crate::store::updates::{REQUESTED_UPDATES, UpdateRow, update_from_row};
                let rows: Vec<UpdateRow> = sqlx::query_as(REQUESTED_UPDATES)
                    .bind(namespace)
                    .bind(workflow_id)
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(update_from_row).collect()
            }

            async fn sent_updates_open(
                &self,
                run_id: &str,
            ) -> anyhow::Result<Vec<$crate::store::UpdateRecord>> {
                use $crate::store::updates::{SENT_UPDATES_OPEN, UpdateRow, update_from_row};
                let rows: Vec<UpdateRow> = sqlx::query_as(SENT_UPDATES_OPEN)
                    .bind(run_id)
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(update_from_row).collect()
            }
        });
    };
    ($store:ty, read_now) => {
        $crate::store::updates::impl_updates!(@with $store {
            async fn requested_updates(
                &self,
                namespace: &str,
                workflow_id: &str,
            ) -> anyhow::Result<Vec<$crate::store::UpdateRecord>> {
                self.requested_updates_now(namespace, workflow_id)
            }

            async fn sent_updates_open(
                &self,
                run_id: &str,
            ) -> anyhow::Result<Vec<$crate::store::UpdateRecord>> {
                self.sent_updates_open_now(run_id)
            }
        });
    };
    (@with $store:ty { $($reads:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::store::updates::Updates for $store {
            $($reads)*

            async fn request_update(
                &self,
                u: &$crate::store::UpdateRecord,
            ) -> anyhow::Result<($crate::store::UpdateRecord, bool)> {
                let done = sqlx::query(
                    "INSERT INTO updates (namespace, workflow_id, update_id, name, input, \
                     state, requested_at_ms, caller_run_id) \
                     VALUES ($1, $2, $3, $4, $5, 'requested', $6, $7) \
                     ON CONFLICT (namespace, workflow_id, update_id) DO NOTHING",
                )
                .bind(&u.namespace)
                .bind(&u.workflow_id)
                .bind(&u.update_id)
                .bind(&u.name)
                .bind(u.input.to_string())
                .bind(u.requested_at_ms)
                .bind(&u.caller_run_id)
                .execute(&self.pool)
                .await?;
                let key = $crate::store::UpdateKey {
                    namespace: u.namespace.clone(),
                    workflow_id: u.workflow_id.clone(),
                    update_id: u.update_id.clone(),
                };
                let stored = self
                    .update(&key)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("update {} vanished", u.update_id))?;
                Ok((stored, done.rows_affected() == 1))
            }

            async fn update(
                &self,
                key: &$crate::store::UpdateKey,
            ) -> anyhow::Result<Option<$crate::store::UpdateRecord>> {
                use $crate::store::updates::{UPDATE_COLUMNS, UpdateRow, update_from_row};
                let row: Option<UpdateRow> = sqlx::query_as(&format!(
                    "{UPDATE_COLUMNS} WHERE namespace = $1 AND workflow_id = $2 AND update_id = $3"
                ))
                .bind(&key.namespace)
                .bind(&key.workflow_id)
                .bind(&key.update_id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(update_from_row).transpose()
            }

            async fn reject_update(
                &self,
                key: &$crate::store::UpdateKey,
                error: &serde_json::Value,
            ) -> anyhow::Result<bool> {
                let done = sqlx::query(
                    "UPDATE updates SET state = 'rejected', outcome = $1, decided_at_ms = $2 \
                     WHERE namespace = $3 AND workflow_id = $4 AND update_id = $5 \
                     AND state = 'requested'",
                )
                .bind(serde_json::json!({ "error": error }).to_string())
                .bind($crate::clock::now_ms())
                .bind(&key.namespace)
                .bind(&key.workflow_id)
                .bind(&key.update_id)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}
pub(super) use impl_updates;
