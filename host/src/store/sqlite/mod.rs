//! The embedded default: one SQLite file in WAL mode.

use super::rows::{parent_close, resumes, run_from_row};
use super::search::{ATTRIBUTES_OF, AttributeRow, attributes_from_rows};
use super::*;

mod connections;
mod tx;

use crate::journal::ParentClose;
use anyhow::{Context as _, bail};
use connections::Connections;
use rusqlite::OptionalExtension;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tx::SqliteTx;

/// The schema, in order: migration N is `MIGRATIONS[N - 1]`.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/sqlite/0001_init.sql"),
    include_str!("../../../migrations/sqlite/0002_primitives.sql"),
    include_str!("../../../migrations/sqlite/0003_allow_http.sql"),
    include_str!("../../../migrations/sqlite/0004_signal_requests.sql"),
    include_str!("../../../migrations/sqlite/0005_access.sql"),
    include_str!("../../../migrations/sqlite/0006_component_namespaces.sql"),
    include_str!("../../../migrations/sqlite/0007_namespace_limits.sql"),
    include_str!("../../../migrations/sqlite/0008_audit.sql"),
    include_str!("../../../migrations/sqlite/0009_client_certs.sql"),
    include_str!("../../../migrations/sqlite/0010_schedules.sql"),
    include_str!("../../../migrations/sqlite/0011_run_pause.sql"),
    include_str!("../../../migrations/sqlite/0012_updates.sql"),
    include_str!("../../../migrations/sqlite/0013_run_attributes.sql"),
    include_str!("../../../migrations/sqlite/0014_batch_jobs.sql"),
    include_str!("../../../migrations/sqlite/0015_update_callers.sql"),
    include_str!("../../../migrations/sqlite/0016_attribute_json.sql"),
];

/// How hard a commit tries to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fsync on every commit (`synchronous=FULL`): survives power loss.
    Full,
    /// fsync at checkpoints (`synchronous=NORMAL`): survives a crash of
    /// weft, may lose the last commits on power loss.
    Normal,
}

pub struct SqliteStore {
    pool: SqlitePool,
    /// The journal writer's connections (statements on its own thread).
    writer: Arc<Connections>,
    /// Point reads' connections (statements on the caller's thread).
    readers: Arc<Connections>,
    /// Checkpoints the write-ahead log while the store is open.
    checkpointer: tokio::task::JoinHandle<()>,
}

/// How often the write-ahead log is copied into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.checkpointer.abort();
    }
}

/// Copy the write-ahead log into the database file, apart from the commits:
/// left to SQLite, the commit that fills the log copies it (and syncs the
/// database file) before it returns, and every step in that commit waits.
/// A passive checkpoint waits for no one and no one waits for it.
async fn checkpoints(pool: SqlitePool) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::warn!("checkpointing the SQLite log failed: {e}");
        }
    }
}

/// How long a connection waits for another one's write transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The settings of every connection, the pool's and the journal writer's
/// (the log mode is the file's, set once by the pool).
fn connection_pragmas(durability: Durability) -> [(&'static str, &'static str); 3] {
    let sync = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    [
        ("synchronous", sync),
        ("foreign_keys", "ON"),
        // Checkpoints are `checkpoints`' work, not a commit's.
        ("wal_autocheckpoint", "0"),
    ]
}

impl SqliteStore {
    pub async fn open(path: &Path, durability: Durability) -> anyhow::Result<Self> {
        let options = connection_pragmas(durability).into_iter().fold(
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(BUSY_TIMEOUT),
            |options, (key, value)| options.pragma(key, value),
        );
        // No ping before each use: a connection to a local file does not
        // go stale, and the ping was a round trip to the connection's
        // worker thread before every read.
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open SQLite database {}", path.display()))?;
        let store = SqliteStore {
            checkpointer: tokio::spawn(checkpoints(pool.clone())),
            pool,
            writer: Connections::new(path.to_path_buf(), durability),
            readers: Connections::new(path.to_path_buf(), durability),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("CREATE TABLE IF NOT EXISTS weft_schema (version INTEGER PRIMARY KEY)")
            .execute(&mut *tx)
            .await?;
        let applied: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM weft_schema")
            .fetch_one(&mut *tx)
            .await?;
        let applied = applied.unwrap_or(0);
        let latest = MIGRATIONS.len() as i64;
        if applied > latest {
            bail!("the database has schema version {applied}; this weft knows up to {latest}");
        }
        for (version, sql) in (1..).zip(MIGRATIONS).filter(|(v, _)| *v > applied) {
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO weft_schema (version) VALUES (?)")
                .bind(version)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// A run by its id.
const RUN_BY_ID: &str = "SELECT * FROM runs WHERE run_id = ?";
/// The open run holding a workflow id (namespace, workflow id).
const OPEN_RUN: &str = "SELECT * FROM runs WHERE namespace = ? AND workflow_id = ? \
     AND status IN ('running', 'stuck')";

#[async_trait]
impl Store for SqliteStore {
    fn runs_off_the_runtime(&self) -> bool {
        true
    }

    async fn begin(&self) -> anyhow::Result<Box<dyn Tx>> {
        Ok(Box::new(SqliteTx::begin(&self.writer)?))
    }

    async fn get_run(&self, run_id: &str) -> anyhow::Result<Option<RunRecord>> {
        self.readers.read(|conn| {
            let mut stmt = conn.prepare_cached(RUN_BY_ID)?;
            let mut rows = stmt.query([run_id])?;
            rows.next()?.map(run_from_row).transpose()
        })
    }

    async fn start_lookup(
        &self,
        namespace: &str,
        name: &str,
        version: Option<u32>,
    ) -> anyhow::Result<(Option<Namespace>, Option<ComponentVersion>)> {
        use super::access::{NAMESPACE_BY_NAME, namespace_from_row};
        use super::rows::{LATEST_VERSION, VERSION_NUMBERED, version_from_row};
        self.readers.read(|conn| {
            let found = conn
                .prepare_cached(NAMESPACE_BY_NAME)?
                .query_row([namespace], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            let Some(found) = found.map(namespace_from_row).transpose()? else {
                return Ok((None, None));
            };
            let number = version.map(i64::from);
            let (sql, params): (_, &[&dyn rusqlite::ToSql]) = match &number {
                None => (LATEST_VERSION, &[&namespace, &name]),
                Some(n) => (VERSION_NUMBERED, &[&namespace, &name, n]),
            };
            let mut stmt = conn.prepare_cached(sql)?;
            let mut rows = stmt.query(params)?;
            let chosen = rows.next()?.map(version_from_row).transpose()?;
            Ok((Some(found), chosen))
        })
    }

    async fn run_attributes(&self, run_id: &str) -> anyhow::Result<serde_json::Map<String, Value>> {
        let rows: Vec<AttributeRow> = self.readers.read(|conn| {
            let mut stmt = conn.prepare_cached(ATTRIBUTES_OF)?;
            let rows = stmt.query_map([run_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?;
        Ok(attributes_from_rows(rows))
    }

    async fn list_runs(&self, filter: &RunFilter) -> anyhow::Result<Vec<RunRecord>> {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT * FROM runs WHERE 1 = 1");
        if let Some(status) = filter.status {
            qb.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(workflow) = &filter.workflow {
            qb.push(" AND workflow = ").push_bind(workflow.clone());
        }
        if let Some(workflow_id) = &filter.workflow_id {
            qb.push(" AND workflow_id = ")
                .push_bind(workflow_id.clone());
        }
        if let Some(namespace) = &filter.namespace {
            qb.push(" AND namespace = ").push_bind(namespace.clone());
        }
        if let Some(query) = &filter.query {
            qb.push(" AND ");
            super::search::push_expr(&mut qb, query);
        }
        qb.push(" ORDER BY created_at_ms DESC, run_id DESC LIMIT ")
            .push_bind(filter.limit as i64);
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter().map(run_from_row).collect()
    }

    async fn journal(&self, run_id: &str) -> anyhow::Result<Vec<Recorded>> {
        let rows: Vec<(i64, String, i64)> =
            sqlx::query_as("SELECT seq, body, at_ms FROM events WHERE run_id = ? ORDER BY seq")
                .bind(run_id)
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(seq, body, at_ms)| {
                let event: Event = serde_json::from_str(&body)
                    .with_context(|| format!("event {seq} of run {run_id} cannot be decoded"))?;
                Ok(Recorded {
                    seq: seq as u64,
                    at_ms,
                    event,
                })
            })
            .collect()
    }

    async fn runnable_runs(
        &self,
        shards: Option<&[u32]>,
    ) -> anyhow::Result<Vec<(String, Option<i64>)>> {
        let rows: Vec<(String, Option<i64>, i64, i64)> = sqlx::query_as(
            "SELECT r.run_id, r.wake_at_ms, r.idle, \
               (r.cancel_requested = 1 \
                OR EXISTS (SELECT 1 FROM signals s \
                           WHERE s.run_id = r.run_id AND s.consumed_seq IS NULL) \
                OR EXISTS (SELECT 1 FROM updates u WHERE u.namespace = r.namespace \
                           AND u.workflow_id = r.workflow_id AND u.state = 'requested') \
                OR EXISTS (SELECT 1 FROM runs c WHERE c.parent_run_id = r.run_id \
                           AND c.status NOT IN ('running', 'stuck') \
                           AND c.ended_at_ms >= r.updated_at_ms)) AS poked \
             FROM runs r WHERE r.status = 'running' AND r.paused = 0",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(run_id, wake, idle, poked)| resumes((run_id, wake, idle, poked != 0)))
            .filter(|(run_id, _)| shards.is_none_or(|s| s.contains(&shard_of(run_id))))
            .collect())
    }

    async fn pending_signals(&self, run_id: &str) -> anyhow::Result<Vec<Signal>> {
        let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT id, name, payload, at_ms FROM signals \
             WHERE run_id = ? AND consumed_seq IS NULL ORDER BY id",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, name, payload, at_ms)| {
                Ok(Signal {
                    id,
                    run_id: run_id.to_string(),
                    name,
                    payload: serde_json::from_str(&payload)?,
                    at_ms,
                })
            })
            .collect()
    }

    async fn open_run(
        &self,
        namespace: &str,
        workflow_id: &str,
    ) -> anyhow::Result<Option<RunRecord>> {
        let row = sqlx::query(OPEN_RUN)
            .bind(namespace)
            .bind(workflow_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn open_children(&self, run_id: &str) -> anyhow::Result<Vec<(String, ParentClose)>> {
        // Read at the end of every run, most of which had no children.
        let rows: Vec<(String, Option<String>)> = self.readers.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT run_id, parent_close FROM runs \
                 WHERE parent_run_id = ? AND status IN ('running', 'stuck')",
            )?;
            let rows = stmt.query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, close)| (id, parent_close(close.as_deref())))
            .collect())
    }

    fn access(&self) -> &dyn Access {
        self
    }

    fn schedules(&self) -> &dyn Schedules {
        self
    }

    fn updates(&self) -> &dyn Updates {
        self
    }

    fn batch_jobs(&self) -> &dyn BatchJobs {
        self
    }
}

super::access::impl_access!(SqliteStore);
super::components::impl_components!(SqliteStore);
super::schedules::impl_schedules!(SqliteStore);
super::updates::impl_updates!(SqliteStore, read_now);
super::batch_jobs::impl_batch_jobs!(SqliteStore);

impl SqliteStore {
    /// [`Updates::requested_updates`], on the caller's thread.
    fn requested_updates_now(
        &self,
        namespace: &str,
        workflow_id: &str,
    ) -> anyhow::Result<Vec<UpdateRecord>> {
        self.update_rows(
            super::updates::REQUESTED_UPDATES,
            &[&namespace, &workflow_id],
        )
    }

    /// [`Updates::sent_updates_open`], on the caller's thread.
    fn sent_updates_open_now(&self, run_id: &str) -> anyhow::Result<Vec<UpdateRecord>> {
        self.update_rows(super::updates::SENT_UPDATES_OPEN, &[&run_id])
    }

    fn update_rows(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> anyhow::Result<Vec<UpdateRecord>> {
        use super::updates::{UpdateRow, update_from_row};
        let rows: Vec<UpdateRow> = self.readers.read(|conn| {
            let mut stmt = conn.prepare_cached(sql)?;
            let rows = stmt.query_map(params, |r| UpdateRow::try_from(r))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?;
        rows.into_iter().map(update_from_row).collect()
    }

    /// A deploy's transaction: SQLite has one writer at a time.
    async fn begin_deploy(
        &self,
        _namespace: &str,
        _name: &str,
    ) -> anyhow::Result<sqlx::Transaction<'_, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}
