//! Schedules as stored: what the operator set (the spec) and the state the
//! scheduler keeps (next due time, last run, recent actions), changed only
//! by compare-and-set on a revision so every node may look and each due
//! time is acted on once.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What happens at a due time while the schedule's last run is still open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Overlap {
    /// Do not start another (the due time is recorded as skipped).
    #[default]
    Skip,
    /// Start another beside it.
    AllowAll,
    /// Start it once the last run has ended; of several due times that
    /// pass meanwhile, only the newest waits.
    BufferOne,
    /// Cancel the last run and start another.
    CancelPrevious,
}

/// What the operator set: an interval or a cron expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleSpec {
    /// Due times are the multiples of this interval since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_ms: Option<u64>,
    /// Due times are this cron expression's, in `time_zone` (UTC if none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub overlap: Overlap,
    /// Due times missed (the server was down) by more than this are not
    /// acted on late.
    pub catchup_window_ms: u64,
    /// Each due time's start is delayed by up to this much (the same delay
    /// on every node), so schedules due at once do not start at once.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub jitter_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One thing the scheduler did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleAction {
    /// The due time acted on; `None` for a manual trigger.
    pub due_ms: Option<i64>,
    pub at_ms: i64,
    /// `started`, `skipped` (the last run was open), `missed` (past the
    /// catch-up window; `count` due times), `failed` (the run could not
    /// start: `message`) or `backfilled` (`count` due times of a past range
    /// started on request).
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Why a due time `failed` (its run could not start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The state only the scheduler and the verbs on a schedule change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleState {
    pub paused: bool,
    pub note: String,
    pub next_due_ms: i64,
    pub last_run_id: Option<String>,
    /// Newest last.
    pub recent: Vec<ScheduleAction>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub namespace: String,
    pub id: String,
    pub workflow: String,
    pub input: Value,
    pub spec: ScheduleSpec,
    pub state: ScheduleState,
    /// Bumped by every change of the state.
    pub revision: i64,
    pub created_at_ms: i64,
}

#[async_trait]
pub trait Schedules: Send + Sync {
    /// False if the namespace already has a schedule of that id.
    async fn create_schedule(&self, schedule: &Schedule) -> anyhow::Result<bool>;
    async fn schedule(&self, namespace: &str, id: &str) -> anyhow::Result<Option<Schedule>>;
    /// A namespace's schedules (every namespace's with `None`), by id.
    async fn schedules(&self, namespace: Option<&str>) -> anyhow::Result<Vec<Schedule>>;
    /// Unpaused schedules due at `now_ms`.
    async fn due_schedules(&self, now_ms: i64) -> anyhow::Result<Vec<Schedule>>;
    /// Replace the state if the revision is still `revision`; false if
    /// someone changed it first (or it was deleted).
    async fn set_schedule_state(
        &self,
        namespace: &str,
        id: &str,
        revision: i64,
        state: &ScheduleState,
    ) -> anyhow::Result<bool>;
    async fn delete_schedule(&self, namespace: &str, id: &str) -> anyhow::Result<bool>;
}

/// The schedule columns, in [`schedule_from_row`]'s order.
pub(super) const SCHEDULE_COLUMNS: &str = "SELECT namespace, id, workflow, input, spec, paused, \
     note, next_due_ms, last_run_id, recent, revision, created_at_ms FROM schedules";

pub(super) type ScheduleRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    i64,
    Option<String>,
    String,
    i64,
    i64,
);

pub(super) fn schedule_from_row(row: ScheduleRow) -> anyhow::Result<Schedule> {
    let (namespace, id, workflow, input, spec, paused, note, next_due, last_run, recent, rev, at) =
        row;
    Ok(Schedule {
        namespace,
        id,
        workflow,
        input: serde_json::from_str(&input)?,
        spec: serde_json::from_str(&spec)?,
        state: ScheduleState {
            paused: paused != 0,
            note,
            next_due_ms: next_due,
            last_run_id: last_run,
            recent: serde_json::from_str(&recent)?,
        },
        revision: rev,
        created_at_ms: at,
    })
}

/// [`Schedules`] for a store with a `pool`: the same SQL (`$N` parameters)
/// on every backend, written once.
macro_rules! impl_schedules {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::schedules::Schedules for $store {
            async fn create_schedule(&self, s: &$crate::store::Schedule) -> anyhow::Result<bool> {
                let done = sqlx::query(
                    "INSERT INTO schedules (namespace, id, workflow, input, spec, paused, note, \
                     next_due_ms, last_run_id, recent, revision, created_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (namespace, id) DO NOTHING",
                )
                .bind(&s.namespace)
                .bind(&s.id)
                .bind(&s.workflow)
                .bind(s.input.to_string())
                .bind(serde_json::to_string(&s.spec)?)
                .bind(s.state.paused as i64)
                .bind(&s.state.note)
                .bind(s.state.next_due_ms)
                .bind(&s.state.last_run_id)
                .bind(serde_json::to_string(&s.state.recent)?)
                .bind(s.revision)
                .bind(s.created_at_ms)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn schedule(
                &self,
                namespace: &str,
                id: &str,
            ) -> anyhow::Result<Option<$crate::store::Schedule>> {
                use $crate::store::schedules::{SCHEDULE_COLUMNS, ScheduleRow, schedule_from_row};
                let row: Option<ScheduleRow> = sqlx::query_as(&format!(
                    "{SCHEDULE_COLUMNS} WHERE namespace = $1 AND id = $2"
                ))
                .bind(namespace)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(schedule_from_row).transpose()
            }

            async fn schedules(
                &self,
                namespace: Option<&str>,
            ) -> anyhow::Result<Vec<$crate::store::Schedule>> {
                use $crate::store::schedules::{SCHEDULE_COLUMNS, ScheduleRow, schedule_from_row};
                let rows: Vec<ScheduleRow> = sqlx::query_as(&format!(
                    "{SCHEDULE_COLUMNS} WHERE $1 IS NULL OR namespace = $1 \
                     ORDER BY namespace, id"
                ))
                .bind(namespace)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(schedule_from_row).collect()
            }

            async fn due_schedules(
                &self,
                now_ms: i64,
            ) -> anyhow::Result<Vec<$crate::store::Schedule>> {
                use $crate::store::schedules::{SCHEDULE_COLUMNS, ScheduleRow, schedule_from_row};
                let rows: Vec<ScheduleRow> = sqlx::query_as(&format!(
                    "{SCHEDULE_COLUMNS} WHERE paused = 0 AND next_due_ms <= $1 \
                     ORDER BY next_due_ms"
                ))
                .bind(now_ms)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(schedule_from_row).collect()
            }

            async fn set_schedule_state(
                &self,
                namespace: &str,
                id: &str,
                revision: i64,
                state: &$crate::store::ScheduleState,
            ) -> anyhow::Result<bool> {
                let done = sqlx::query(
                    "UPDATE schedules SET paused = $1, note = $2, next_due_ms = $3, \
                     last_run_id = $4, recent = $5, revision = revision + 1 \
                     WHERE namespace = $6 AND id = $7 AND revision = $8",
                )
                .bind(state.paused as i64)
                .bind(&state.note)
                .bind(state.next_due_ms)
                .bind(&state.last_run_id)
                .bind(serde_json::to_string(&state.recent)?)
                .bind(namespace)
                .bind(id)
                .bind(revision)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_schedule(&self, namespace: &str, id: &str) -> anyhow::Result<bool> {
                let done = sqlx::query("DELETE FROM schedules WHERE namespace = $1 AND id = $2")
                    .bind(namespace)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}
pub(super) use impl_schedules;
