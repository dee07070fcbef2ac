//! Postgres: the store several weft nodes can share. The same records and
//! primitives as SQLite, over one pool; component bytes live in the
//! database so every node can load every version.

mod coordination;
mod tx;

use super::rows::{parent_close, resumes, run_from_row};
use super::search::{ATTRIBUTES_OF, AttributeRow, attributes_from_rows};
use super::*;
use crate::journal::ParentClose;
use anyhow::{Context as _, bail};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder};
use tx::PgTx;

/// The schema, in order: migration N is `MIGRATIONS[N - 1]`.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/postgres/0001_init.sql"),
    include_str!("../../../migrations/postgres/0002_shards.sql"),
    include_str!("../../../migrations/postgres/0003_access.sql"),
    include_str!("../../../migrations/postgres/0004_component_namespaces.sql"),
    include_str!("../../../migrations/postgres/0005_namespace_limits.sql"),
    include_str!("../../../migrations/postgres/0006_audit.sql"),
    include_str!("../../../migrations/postgres/0007_client_certs.sql"),
    include_str!("../../../migrations/postgres/0008_schedules.sql"),
    include_str!("../../../migrations/postgres/0009_run_pause.sql"),
    include_str!("../../../migrations/postgres/0010_updates.sql"),
    include_str!("../../../migrations/postgres/0011_run_attributes.sql"),
    include_str!("../../../migrations/postgres/0012_batch_jobs.sql"),
    include_str!("../../../migrations/postgres/0013_update_callers.sql"),
    include_str!("../../../migrations/postgres/0014_attribute_json.sql"),
];

/// Serializes schema changes of nodes that start at once.
const MIGRATION_LOCK: i64 = 0x7765_6674; // "weft"

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connect to `url` (`postgres://USER@HOST:PORT/DB`) and bring its
    /// schema up to date.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            // A database that went away answers requests with an error
            // in seconds, not after sqlx's default 30 s.
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(url)
            .await
            .with_context(|| format!("cannot connect to Postgres at {}", redact(url)))?;
        let store = PostgresStore { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::query("CREATE TABLE IF NOT EXISTS weft_schema (version BIGINT PRIMARY KEY)")
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
        for (version, sql) in (1i64..).zip(MIGRATIONS).filter(|(v, _)| *v > applied) {
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO weft_schema (version) VALUES ($1)")
                .bind(version)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// A connection URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// The open run holding a workflow id, read through `db` (the pool, or a
/// transaction's connection).
pub(super) async fn open_run_in<'e>(
    db: impl sqlx::PgExecutor<'e>,
    namespace: &str,
    workflow_id: &str,
) -> anyhow::Result<Option<RunRecord>> {
    let row = sqlx::query(
        "SELECT * FROM runs WHERE namespace = $1 AND workflow_id = $2 \
         AND status IN ('running', 'stuck')",
    )
    .bind(namespace)
    .bind(workflow_id)
    .fetch_optional(db)
    .await?;
    row.as_ref().map(run_from_row).transpose()
}

#[async_trait]
impl Store for PostgresStore {
    async fn begin(&self) -> anyhow::Result<Box<dyn Tx>> {
        let tx = self.pool.begin().await?;
        Ok(Box::new(PgTx {
            tx,
            events: Vec::new(),
        }))
    }

    async fn get_run(&self, run_id: &str) -> anyhow::Result<Option<RunRecord>> {
        let row = sqlx::query("SELECT * FROM runs WHERE run_id = $1")
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn start_lookup(
        &self,
        namespace: &str,
        name: &str,
        version: Option<u32>,
    ) -> anyhow::Result<(Option<Namespace>, Option<ComponentVersion>)> {
        use super::access::namespace_from_row;
        use super::rows::{SqlRow as _, version_from_row};
        // One round trip: the namespace, with the version beside it.
        let row = sqlx::query(
            "SELECT n.name AS namespace_name, n.created_at_ms AS namespace_created_at_ms, \
               n.limits AS namespace_limits, v.* \
             FROM namespaces n LEFT JOIN LATERAL ( \
               SELECT v.namespace, v.name, v.version, v.digest, v.kind, v.created_at_ms, \
                 v.allow_http, c.size \
               FROM component_versions v JOIN components c ON c.digest = v.digest \
               WHERE v.namespace = n.name AND v.name = $2 \
                 AND ($3::BIGINT IS NULL OR v.version = $3) \
               ORDER BY v.version DESC LIMIT 1) v ON TRUE \
             WHERE n.name = $1",
        )
        .bind(namespace)
        .bind(name)
        .bind(version.map(i64::from))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok((None, None));
        };
        let found = namespace_from_row((
            row.text("namespace_name")?,
            row.int("namespace_created_at_ms")?,
            row.text("namespace_limits")?,
        ))?;
        let chosen = match row.text_opt("digest")? {
            Some(_) => Some(version_from_row(&row)?),
            None => None,
        };
        Ok((Some(found), chosen))
    }

    async fn run_attributes(&self, run_id: &str) -> anyhow::Result<serde_json::Map<String, Value>> {
        let rows: Vec<AttributeRow> = sqlx::query_as(ATTRIBUTES_OF)
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(attributes_from_rows(rows))
    }

    async fn list_runs(&self, filter: &RunFilter) -> anyhow::Result<Vec<RunRecord>> {
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("SELECT * FROM runs WHERE 1 = 1");
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
            sqlx::query_as("SELECT seq, body, at_ms FROM events WHERE run_id = $1 ORDER BY seq")
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
        let shards: Option<Vec<i64>> = shards.map(|s| s.iter().map(|&s| s as i64).collect());
        let rows: Vec<(String, Option<i64>, i64, bool)> = sqlx::query_as(
            "SELECT r.run_id, r.wake_at_ms, r.idle, \
               (r.cancel_requested = 1 \
                OR EXISTS (SELECT 1 FROM signals s \
                           WHERE s.run_id = r.run_id AND s.consumed_seq IS NULL) \
                OR EXISTS (SELECT 1 FROM updates u WHERE u.namespace = r.namespace \
                           AND u.workflow_id = r.workflow_id AND u.state = 'requested') \
                OR EXISTS (SELECT 1 FROM runs c WHERE c.parent_run_id = r.run_id \
                           AND c.status NOT IN ('running', 'stuck') \
                           AND c.ended_at_ms >= r.updated_at_ms)) AS poked \
             FROM runs r WHERE r.status = 'running' AND r.paused = 0 \
               AND ($1::BIGINT[] IS NULL OR r.shard = ANY($1))",
        )
        .bind(shards)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().filter_map(resumes).collect())
    }

    async fn pending_signals(&self, run_id: &str) -> anyhow::Result<Vec<Signal>> {
        let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT id, name, payload, at_ms FROM signals \
             WHERE run_id = $1 AND consumed_seq IS NULL ORDER BY id",
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
        open_run_in(&self.pool, namespace, workflow_id).await
    }

    async fn open_children(&self, run_id: &str) -> anyhow::Result<Vec<(String, ParentClose)>> {
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT run_id, parent_close FROM runs \
             WHERE parent_run_id = $1 AND status IN ('running', 'stuck')",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
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

    fn coordination(&self) -> Option<&dyn Coordination> {
        Some(self)
    }
}

super::access::impl_access!(PostgresStore);
super::components::impl_components!(PostgresStore);
super::schedules::impl_schedules!(PostgresStore);
super::updates::impl_updates!(PostgresStore);
super::batch_jobs::impl_batch_jobs!(PostgresStore);

impl PostgresStore {
    /// A deploy's transaction: one deploy of a name at a time, across
    /// nodes, so versions stay dense.
    async fn begin_deploy(
        &self,
        namespace: &str,
        name: &str,
    ) -> anyhow::Result<sqlx::Transaction<'_, Postgres>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("{namespace}/{name}"))
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}
