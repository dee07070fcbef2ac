//! Components: content-addressed bytes (shared by every namespace: the
//! same bytes are stored once) and, per namespace, named versions of them.
//! One SQL text (`$N` parameters) for every backend.

use super::{ComponentKind, ComponentVersion, DeleteVersion, PutComponent, RunRecord};
use async_trait::async_trait;

#[async_trait]
pub trait Components: Send + Sync {
    /// Record `bytes` as the next version of `name` in `namespace` (or
    /// answer the version these bytes already are).
    #[allow(clippy::too_many_arguments)]
    async fn put_component(
        &self,
        namespace: &str,
        name: &str,
        kind: ComponentKind,
        digest: &str,
        bytes: &[u8],
        allow_http: Option<&[String]>,
        at_ms: i64,
    ) -> anyhow::Result<PutComponent>;
    async fn component_bytes(&self, digest: &str) -> anyhow::Result<Option<Vec<u8>>>;
    /// The versions of a namespace's components (all namespaces' with
    /// `None`; of one name with `name`), oldest first.
    async fn component_versions(
        &self,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> anyhow::Result<Vec<ComponentVersion>>;
    async fn latest_version(
        &self,
        namespace: &str,
        name: &str,
    ) -> anyhow::Result<Option<ComponentVersion>>;
    /// Version `version` of a namespace's component `name`.
    async fn component_version(
        &self,
        namespace: &str,
        name: &str,
        version: u32,
    ) -> anyhow::Result<Option<ComponentVersion>>;
    /// Delete a version no open run is pinned to.
    async fn delete_version(
        &self,
        namespace: &str,
        name: &str,
        version: u32,
    ) -> anyhow::Result<DeleteVersion>;
    /// How many runs of a namespace are open (`running` or `stuck`).
    async fn open_run_count(&self, namespace: &str) -> anyhow::Result<u64>;
    /// How many runs of each namespace have each status.
    async fn status_counts(&self) -> anyhow::Result<Vec<(String, crate::store::RunStatus, u64)>>;
    /// Open runs (`running` or `stuck`) of a namespace's workflow, oldest first.
    async fn open_runs_of(&self, namespace: &str, workflow: &str)
    -> anyhow::Result<Vec<RunRecord>>;
}

/// [`Components`] for a store with a `pool` and a `begin_deploy(namespace,
/// name)` that opens a transaction in which no other deploy of that name
/// runs (so versions stay dense).
macro_rules! impl_components {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::Components for $store {
            async fn put_component(
                &self,
                namespace: &str,
                name: &str,
                kind: $crate::store::ComponentKind,
                digest: &str,
                bytes: &[u8],
                allow_http: Option<&[String]>,
                at_ms: i64,
            ) -> anyhow::Result<$crate::store::PutComponent> {
                use $crate::store::rows::{VERSION_COLUMNS, version_from_row};
                use $crate::store::{ComponentKind, ComponentVersion, PutComponent};
                let mut tx = self.begin_deploy(namespace, name).await?;
                let existing = sqlx::query(&format!(
                    "{VERSION_COLUMNS} WHERE v.namespace = $1 AND v.name = $2 AND v.digest = $3"
                ))
                .bind(namespace)
                .bind(name)
                .bind(digest)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(row) = existing {
                    let mut version = version_from_row(&row)?;
                    if let Some(allow) = allow_http
                        && allow != version.allow_http.as_slice()
                    {
                        sqlx::query(
                            "UPDATE component_versions SET allow_http = $1 \
                             WHERE namespace = $2 AND name = $3 AND version = $4",
                        )
                        .bind(serde_json::to_string(allow)?)
                        .bind(namespace)
                        .bind(name)
                        .bind(version.version as i64)
                        .execute(&mut *tx)
                        .await?;
                        tx.commit().await?;
                        version.allow_http = allow.to_vec();
                    }
                    return Ok(PutComponent::Existing(version));
                }
                let latest: Option<(i64, String)> = sqlx::query_as(
                    "SELECT version, kind FROM component_versions \
                     WHERE namespace = $1 AND name = $2 ORDER BY version DESC LIMIT 1",
                )
                .bind(namespace)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((_, existing_kind)) = &latest {
                    let existing: ComponentKind = existing_kind.parse()?;
                    if existing != kind {
                        return Ok(PutComponent::KindConflict { existing });
                    }
                }
                sqlx::query(
                    "INSERT INTO components (digest, kind, size, bytes, created_at_ms) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (digest) DO NOTHING",
                )
                .bind(digest)
                .bind(kind.as_str())
                .bind(bytes.len() as i64)
                .bind(bytes)
                .bind(at_ms)
                .execute(&mut *tx)
                .await?;
                let version = latest.map_or(1, |(v, _)| v + 1);
                let allow_http = allow_http.unwrap_or_default().to_vec();
                sqlx::query(
                    "INSERT INTO component_versions \
                     (namespace, name, version, digest, kind, created_at_ms, allow_http) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(namespace)
                .bind(name)
                .bind(version)
                .bind(digest)
                .bind(kind.as_str())
                .bind(at_ms)
                .bind(serde_json::to_string(&allow_http)?)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(PutComponent::Created(ComponentVersion {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    kind,
                    version: version as u32,
                    digest: digest.to_string(),
                    size: bytes.len() as u64,
                    created_at_ms: at_ms,
                    allow_http,
                }))
            }

            async fn component_bytes(&self, digest: &str) -> anyhow::Result<Option<Vec<u8>>> {
                Ok(sqlx::query_scalar("SELECT bytes FROM components WHERE digest = $1")
                    .bind(digest)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn component_versions(
                &self,
                namespace: Option<&str>,
                name: Option<&str>,
            ) -> anyhow::Result<Vec<$crate::store::ComponentVersion>> {
                use $crate::store::rows::{VERSION_COLUMNS, version_from_row};
                let rows = sqlx::query(&format!(
                    "{VERSION_COLUMNS} WHERE ($1 IS NULL OR v.namespace = $1) \
                     AND ($2 IS NULL OR v.name = $2) ORDER BY v.namespace, v.name, v.version"
                ))
                .bind(namespace)
                .bind(name)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(version_from_row).collect()
            }

            async fn latest_version(
                &self,
                namespace: &str,
                name: &str,
            ) -> anyhow::Result<Option<$crate::store::ComponentVersion>> {
                use $crate::store::rows::{LATEST_VERSION, version_from_row};
                let row = sqlx::query(LATEST_VERSION)
                .bind(namespace)
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(version_from_row).transpose()
            }

            async fn component_version(
                &self,
                namespace: &str,
                name: &str,
                version: u32,
            ) -> anyhow::Result<Option<$crate::store::ComponentVersion>> {
                use $crate::store::rows::{VERSION_NUMBERED, version_from_row};
                let row = sqlx::query(VERSION_NUMBERED)
                .bind(namespace)
                .bind(name)
                .bind(version as i64)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(version_from_row).transpose()
            }

            async fn delete_version(
                &self,
                namespace: &str,
                name: &str,
                version: u32,
            ) -> anyhow::Result<$crate::store::DeleteVersion> {
                use $crate::store::DeleteVersion;
                let mut tx = self.begin_deploy(namespace, name).await?;
                let digest: Option<String> = sqlx::query_scalar(
                    "SELECT digest FROM component_versions \
                     WHERE namespace = $1 AND name = $2 AND version = $3",
                )
                .bind(namespace)
                .bind(name)
                .bind(version as i64)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(digest) = digest else {
                    return Ok(DeleteVersion::NotFound);
                };
                let open: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM runs WHERE namespace = $1 AND workflow = $2 \
                     AND digest = $3 AND status IN ('running', 'stuck')",
                )
                .bind(namespace)
                .bind(name)
                .bind(&digest)
                .fetch_one(&mut *tx)
                .await?;
                if open > 0 {
                    return Ok(DeleteVersion::InUse(open as u64));
                }
                sqlx::query(
                    "DELETE FROM component_versions \
                     WHERE namespace = $1 AND name = $2 AND version = $3",
                )
                .bind(namespace)
                .bind(name)
                .bind(version as i64)
                .execute(&mut *tx)
                .await?;
                // The bytes go with their last version, in any namespace.
                sqlx::query(
                    "DELETE FROM components WHERE digest = $1 \
                     AND NOT EXISTS (SELECT 1 FROM component_versions WHERE digest = $1)",
                )
                .bind(&digest)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(DeleteVersion::Deleted)
            }

            async fn open_run_count(&self, namespace: &str) -> anyhow::Result<u64> {
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM runs WHERE namespace = $1 \
                     AND status IN ('running', 'stuck')",
                )
                .bind(namespace)
                .fetch_one(&self.pool)
                .await?;
                Ok(n as u64)
            }

            async fn status_counts(
                &self,
            ) -> anyhow::Result<Vec<(String, $crate::store::RunStatus, u64)>> {
                let rows: Vec<(String, String, i64)> = sqlx::query_as(
                    "SELECT namespace, status, count(*) FROM runs GROUP BY namespace, status \
                     ORDER BY namespace, status",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(namespace, status, n)| Ok((namespace, status.parse()?, n as u64)))
                    .collect()
            }

            async fn open_runs_of(
                &self,
                namespace: &str,
                workflow: &str,
            ) -> anyhow::Result<Vec<$crate::store::RunRecord>> {
                let rows = sqlx::query(
                    "SELECT * FROM runs WHERE namespace = $1 AND workflow = $2 \
                     AND status IN ('running', 'stuck') ORDER BY created_at_ms, run_id",
                )
                .bind(namespace)
                .bind(workflow)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map($crate::store::rows::run_from_row).collect()
            }
        }
    };
}
pub(super) use impl_components;
