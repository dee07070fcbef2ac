//! Who may do what: namespaces (the unit of isolation) and API tokens,
//! stored as hashes. Both backends keep them, so the embedded default has
//! them too.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a token may do. Each namespace role includes `read`; `admin`
/// includes every namespace role; `cluster-admin` is every role in every
/// namespace, and creates and deletes namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Read,
    /// Start, signal, cancel, terminate.
    Operate,
    /// Components and upgrades.
    Deploy,
    /// The namespace's settings and tokens.
    Admin,
    ClusterAdmin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Operate => "operate",
            Role::Deploy => "deploy",
            Role::Admin => "admin",
            Role::ClusterAdmin => "cluster-admin",
        }
    }

    /// Whether a token of this role may do what `needed` allows.
    pub fn allows(self, needed: Role) -> bool {
        match (self, needed) {
            (Role::ClusterAdmin, _) => true,
            (_, Role::ClusterAdmin) => false,
            (Role::Admin, _) => true,
            (have, Role::Read) => have >= Role::Read,
            (have, need) => have == need,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "read" => Role::Read,
            "operate" => Role::Operate,
            "deploy" => Role::Deploy,
            "admin" => Role::Admin,
            "cluster-admin" => Role::ClusterAdmin,
            other => {
                anyhow::bail!("unknown role `{other}` (expected read, operate, deploy or admin)")
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Namespace {
    pub name: String,
    pub created_at_ms: i64,
    pub limits: Limits,
}

/// What a namespace may use; an absent limit is none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Open (`running` or `stuck`) runs at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open_runs: Option<u64>,
    /// Starts a second, sustained (a token bucket per node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_per_second: Option<f64>,
    /// Starts at once above the rate (the bucket's size; default: one
    /// second's worth, at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_burst: Option<u64>,
    /// Largest run input or signal payload, and largest output a workflow
    /// or an activity produces, as JSON bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_payload_bytes: Option<u64>,
    /// Events in one run's journal; past it the run fails `journal-limit`
    /// (continue-as-new starts a fresh journal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_journal_events: Option<u64>,
    /// Activity attempts of the namespace executing at once on a node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_activities: Option<u64>,
    /// Linear memory of one workflow or activity instance, in MiB (at most
    /// the server's `--memory-limit-mb`); past it the run fails
    /// `memory-limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_mb: Option<u64>,
    /// How long workflow code may compute without calling the host, in ms
    /// (at most the server's `--spin-limit-ms`); past it the run fails
    /// `spin-limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spin_limit_ms: Option<u64>,
}

impl Limits {
    /// `max_memory_mb`, in bytes.
    pub fn max_memory_bytes(&self) -> Option<usize> {
        self.max_memory_mb.map(|mb| (mb as usize) << 20)
    }

    /// Why these limits cannot apply, if one of them is zero or negative
    /// (which would stop the namespace rather than limit it).
    pub fn invalid(&self) -> Option<String> {
        let at_least_one = [
            ("max_concurrent_activities", self.max_concurrent_activities),
            ("max_memory_mb", self.max_memory_mb),
            ("spin_limit_ms", self.spin_limit_ms),
            ("max_journal_events", self.max_journal_events),
        ];
        if let Some((name, _)) = at_least_one.iter().find(|(_, v)| *v == Some(0)) {
            return Some(format!(
                "{name} must be at least 1 (leave it out for no limit)"
            ));
        }
        if self
            .starts_per_second
            .is_some_and(|r| !(r > 0.0 && r.is_finite()))
        {
            return Some("starts_per_second must be a positive number".into());
        }
        None
    }
}

/// A token as stored: never its value, only its hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenRecord {
    /// Public: names the token in lists, revocations and audit trails.
    pub id: String,
    /// `None` for the cluster admin's token.
    pub namespace: Option<String>,
    pub role: Role,
    pub description: String,
    /// For a client certificate's credential (mTLS): the certificate
    /// subject's common name it stands for. Such a credential has no
    /// secret value: the verified certificate is the proof.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<String>,
    pub created_at_ms: i64,
    pub last_used_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
}

/// One entry of a namespace's audit trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub namespace: String,
    pub at_ms: i64,
    /// The token id that acted (`anyone` without authentication).
    pub actor: String,
    /// `deploy`, `upgrade`, `cancel`, `terminate`, `limits`, …
    pub action: String,
    /// What it acted on: a component version, a run, a token.
    pub target: String,
    pub details: serde_json::Value,
}

#[derive(Debug, PartialEq)]
pub enum DeleteNamespace {
    Deleted,
    NotFound,
    /// It holds open runs.
    InUse(u64),
}

/// A token is marked used at most this often (a write per request would
/// cost more than the request).
pub const LAST_USED_GRAIN_MS: i64 = 60_000;

#[async_trait]
pub trait Access: Send + Sync {
    /// False if it exists already.
    async fn create_namespace(
        &self,
        name: &str,
        limits: &Limits,
        at_ms: i64,
    ) -> anyhow::Result<bool>;
    /// Replace a namespace's limits; false if there is no such namespace.
    async fn set_limits(&self, name: &str, limits: &Limits) -> anyhow::Result<bool>;
    async fn namespaces(&self) -> anyhow::Result<Vec<Namespace>>;
    async fn namespace(&self, name: &str) -> anyhow::Result<Option<Namespace>>;
    /// Delete a namespace without open runs, revoking its tokens.
    async fn delete_namespace(&self, name: &str, at_ms: i64) -> anyhow::Result<DeleteNamespace>;
    async fn insert_token(&self, token: &TokenRecord, hash: &str) -> anyhow::Result<()>;
    /// The token with this hash, not revoked; marks it used at `now_ms`
    /// (to the grain of [`LAST_USED_GRAIN_MS`]).
    async fn token_by_hash(&self, hash: &str, now_ms: i64) -> anyhow::Result<Option<TokenRecord>>;
    /// The live credential of the client certificate with this subject
    /// common name; marks it used like [`Access::token_by_hash`].
    async fn token_by_client_cert(
        &self,
        common_name: &str,
        now_ms: i64,
    ) -> anyhow::Result<Option<TokenRecord>>;
    /// Tokens of a namespace (all namespaces' with `None`), revoked ones too.
    async fn tokens(&self, namespace: Option<&str>) -> anyhow::Result<Vec<TokenRecord>>;
    /// False if there is no such live token.
    async fn revoke_token(&self, id: &str, at_ms: i64) -> anyhow::Result<bool>;
    /// Make `hash` the cluster admin's token (replacing an earlier one).
    async fn set_cluster_admin(&self, hash: &str, at_ms: i64) -> anyhow::Result<()>;
    async fn record_audit(&self, entry: &AuditEntry) -> anyhow::Result<()>;
    /// A namespace's audit trail, newest first.
    async fn audit(&self, namespace: &str, limit: u32) -> anyhow::Result<Vec<AuditEntry>>;
}

/// A namespace's row (`$1`: its name), in [`namespace_from_row`]'s order.
pub(super) const NAMESPACE_BY_NAME: &str =
    "SELECT name, created_at_ms, limits FROM namespaces WHERE name = $1";

pub(super) fn namespace_from_row(
    (name, created_at_ms, limits): (String, i64, String),
) -> anyhow::Result<Namespace> {
    Ok(Namespace {
        name,
        created_at_ms,
        limits: serde_json::from_str(&limits)?,
    })
}

/// The token columns, in [`token_from_row`]'s order.
pub(super) const TOKEN_COLUMNS: &str = "SELECT id, namespace, role, description, client_cert, \
     created_at_ms, last_used_at_ms, revoked_at_ms FROM tokens";

pub(super) type TokenRow = (
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
);

pub(super) fn token_from_row(row: TokenRow) -> anyhow::Result<TokenRecord> {
    let (id, namespace, role, description, client_cert, created, last_used, revoked) = row;
    Ok(TokenRecord {
        id,
        namespace,
        role: role.parse()?,
        description,
        client_cert,
        created_at_ms: created,
        last_used_at_ms: last_used,
        revoked_at_ms: revoked,
    })
}

/// [`Access`] for a store with a `pool`: the same SQL (`$N` parameters) on
/// every backend, written once.
macro_rules! impl_access {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::access::Access for $store {
            async fn create_namespace(
                &self,
                name: &str,
                limits: &$crate::store::Limits,
                at_ms: i64,
            ) -> anyhow::Result<bool> {
                let done = sqlx::query(
                    "INSERT INTO namespaces (name, created_at_ms, limits) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(at_ms)
                .bind(serde_json::to_string(limits)?)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_limits(
                &self,
                name: &str,
                limits: &$crate::store::Limits,
            ) -> anyhow::Result<bool> {
                let done = sqlx::query("UPDATE namespaces SET limits = $1 WHERE name = $2")
                    .bind(serde_json::to_string(limits)?)
                    .bind(name)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn namespaces(&self) -> anyhow::Result<Vec<$crate::store::Namespace>> {
                let rows: Vec<(String, i64, String)> = sqlx::query_as(
                    "SELECT name, created_at_ms, limits FROM namespaces ORDER BY name",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map($crate::store::access::namespace_from_row).collect()
            }

            async fn namespace(&self, name: &str) -> anyhow::Result<Option<$crate::store::Namespace>> {
                let row: Option<(String, i64, String)> =
                    sqlx::query_as($crate::store::access::NAMESPACE_BY_NAME)
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
                row.map($crate::store::access::namespace_from_row).transpose()
            }

            async fn delete_namespace(
                &self,
                name: &str,
                at_ms: i64,
            ) -> anyhow::Result<$crate::store::DeleteNamespace> {
                use $crate::store::DeleteNamespace;
                let mut tx = self.pool.begin().await?;
                let open: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM runs WHERE namespace = $1 \
                     AND status IN ('running', 'stuck')",
                )
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
                if open > 0 {
                    return Ok(DeleteNamespace::InUse(open as u64));
                }
                let done = sqlx::query("DELETE FROM namespaces WHERE name = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Ok(DeleteNamespace::NotFound);
                }
                sqlx::query(
                    "UPDATE tokens SET revoked_at_ms = $1 \
                     WHERE namespace = $2 AND revoked_at_ms IS NULL",
                )
                .bind(at_ms)
                .bind(name)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(DeleteNamespace::Deleted)
            }

            async fn insert_token(
                &self,
                token: &$crate::store::TokenRecord,
                hash: &str,
            ) -> anyhow::Result<()> {
                sqlx::query(
                    "INSERT INTO tokens \
                     (id, namespace, role, hash, description, client_cert, created_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&token.id)
                .bind(token.namespace.as_deref())
                .bind(token.role.as_str())
                .bind(hash)
                .bind(&token.description)
                .bind(token.client_cert.as_deref())
                .bind(token.created_at_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn token_by_hash(
                &self,
                hash: &str,
                now_ms: i64,
            ) -> anyhow::Result<Option<$crate::store::TokenRecord>> {
                self.live_token("hash", hash, now_ms).await
            }

            async fn token_by_client_cert(
                &self,
                common_name: &str,
                now_ms: i64,
            ) -> anyhow::Result<Option<$crate::store::TokenRecord>> {
                self.live_token("client_cert", common_name, now_ms).await
            }

            async fn tokens(
                &self,
                namespace: Option<&str>,
            ) -> anyhow::Result<Vec<$crate::store::TokenRecord>> {
                use $crate::store::access::{TOKEN_COLUMNS, TokenRow, token_from_row};
                let rows: Vec<TokenRow> = sqlx::query_as(&format!(
                    "{TOKEN_COLUMNS} WHERE $1 IS NULL OR namespace = $1 ORDER BY created_at_ms, id"
                ))
                .bind(namespace)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(token_from_row).collect()
            }

            async fn revoke_token(&self, id: &str, at_ms: i64) -> anyhow::Result<bool> {
                let done = sqlx::query(
                    "UPDATE tokens SET revoked_at_ms = $1 WHERE id = $2 AND revoked_at_ms IS NULL",
                )
                .bind(at_ms)
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn record_audit(&self, entry: &$crate::store::AuditEntry) -> anyhow::Result<()> {
                sqlx::query(
                    "INSERT INTO audit (namespace, at_ms, actor, action, target, details) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&entry.namespace)
                .bind(entry.at_ms)
                .bind(&entry.actor)
                .bind(&entry.action)
                .bind(&entry.target)
                .bind(entry.details.to_string())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn audit(
                &self,
                namespace: &str,
                limit: u32,
            ) -> anyhow::Result<Vec<$crate::store::AuditEntry>> {
                let rows: Vec<(String, i64, String, String, String, String)> = sqlx::query_as(
                    "SELECT namespace, at_ms, actor, action, target, details FROM audit \
                     WHERE namespace = $1 ORDER BY id DESC LIMIT $2",
                )
                .bind(namespace)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(namespace, at_ms, actor, action, target, details)| {
                        Ok($crate::store::AuditEntry {
                            namespace,
                            at_ms,
                            actor,
                            action,
                            target,
                            details: serde_json::from_str(&details)?,
                        })
                    })
                    .collect()
            }

            async fn set_cluster_admin(&self, hash: &str, at_ms: i64) -> anyhow::Result<()> {
                sqlx::query(
                    "INSERT INTO tokens (id, namespace, role, hash, description, created_at_ms) \
                     VALUES ('cluster-admin', NULL, 'cluster-admin', $1, 'given to weft serve', $2) \
                     ON CONFLICT (id) DO UPDATE SET hash = $1, revoked_at_ms = NULL",
                )
                .bind(hash)
                .bind(at_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }
        }

        impl $store {
            /// The live token whose `column` is `value`, marked used at
            /// `now_ms` (to the grain of `LAST_USED_GRAIN_MS`).
            async fn live_token(
                &self,
                column: &str,
                value: &str,
                now_ms: i64,
            ) -> anyhow::Result<Option<$crate::store::TokenRecord>> {
                use $crate::store::access::{TOKEN_COLUMNS, TokenRow, token_from_row};
                let row: Option<TokenRow> = sqlx::query_as(&format!(
                    "{TOKEN_COLUMNS} WHERE {column} = $1 AND revoked_at_ms IS NULL"
                ))
                .bind(value)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else { return Ok(None) };
                let token = token_from_row(row)?;
                if token
                    .last_used_at_ms
                    .is_none_or(|t| t < now_ms - $crate::store::access::LAST_USED_GRAIN_MS)
                {
                    sqlx::query("UPDATE tokens SET last_used_at_ms = $1 WHERE id = $2")
                        .bind(now_ms)
                        .bind(&token.id)
                        .execute(&self.pool)
                        .await?;
                }
                Ok(Some(token))
            }
        }
    };
}
pub(super) use impl_access;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_their_verbs_and_read() {
        use Role::*;
        let table = [
            (Read, [true, false, false, false, false]),
            (Operate, [true, true, false, false, false]),
            (Deploy, [true, false, true, false, false]),
            (Admin, [true, true, true, true, false]),
            (ClusterAdmin, [true, true, true, true, true]),
        ];
        for (have, allowed) in table {
            for (need, ok) in [Read, Operate, Deploy, Admin, ClusterAdmin]
                .into_iter()
                .zip(allowed)
            {
                assert_eq!(have.allows(need), ok, "{have} for {need}");
            }
        }
    }
}
