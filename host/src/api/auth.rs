//! Who is calling, and what they may do: a bearer token — or, over mTLS, a
//! client certificate mapped by its common name — names a namespace and a
//! role (`store::Role`); without authentication configured (dev mode,
//! loopback only) anyone may do anything. A run of a namespace the caller
//! cannot see is answered as absent (404), so run ids do not leak.

use super::AppState;
use super::error::{ApiError, Code};
use crate::clock::now_ms;
use crate::store::{DEFAULT_NAMESPACE, Role, RunRecord, TokenRecord};
use crate::tls::Peer;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A token's stored form: its SHA-256 (tokens are random and long, so no
/// slow hash is needed).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh token value: 244 random bits, shown once.
pub fn new_token() -> String {
    let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    format!("weft_{}{}", a.simple(), b.simple())
}

#[derive(Debug, Clone)]
pub enum Caller {
    /// No authentication is configured: dev mode, on loopback only.
    Anyone,
    Token(TokenRecord),
}

impl Caller {
    /// May the caller act as `role` in `namespace`?
    fn may(&self, role: Role, namespace: &str) -> bool {
        match self {
            Caller::Anyone => true,
            Caller::Token(t) => {
                t.role.allows(role)
                    && (t.role == Role::ClusterAdmin || t.namespace.as_deref() == Some(namespace))
            }
        }
    }

    /// 403 unless the caller may act as `role` in `namespace`.
    pub fn require(&self, role: Role, namespace: &str) -> Result<(), ApiError> {
        if self.may(role, namespace) {
            return Ok(());
        }
        let Caller::Token(t) = self else {
            unreachable!("anyone may do anything")
        };
        Err(ApiError::new(
            Code::Forbidden,
            match (&t.namespace, role) {
                (_, Role::ClusterAdmin) => "this needs the cluster admin's token".to_string(),
                (Some(own), _) if own != namespace => {
                    format!("token {} is for namespace `{own}`, not `{namespace}`", t.id)
                }
                _ => format!(
                    "token {} has role `{}`; this needs `{role}` in `{namespace}`",
                    t.id, t.role
                ),
            },
        ))
    }

    /// 403 unless the caller is the cluster admin.
    pub fn require_cluster_admin(&self) -> Result<(), ApiError> {
        self.require(Role::ClusterAdmin, "")
    }

    /// Who, for the log (never the token's value).
    pub fn id(&self) -> &str {
        match self {
            Caller::Anyone => "anyone",
            Caller::Token(t) => &t.id,
        }
    }

    /// Whether the caller can see anything of `namespace`.
    pub fn sees(&self, namespace: &str) -> bool {
        self.may(Role::Read, namespace)
    }

    /// The namespace a request acts in when it names none.
    pub fn namespace(&self) -> &str {
        match self {
            Caller::Token(TokenRecord {
                namespace: Some(ns),
                ..
            }) => ns,
            _ => DEFAULT_NAMESPACE,
        }
    }

    /// The namespace a request names, or the caller's.
    pub fn namespace_or<'a>(&'a self, named: Option<&'a str>) -> &'a str {
        named.unwrap_or_else(|| self.namespace())
    }

    /// The namespace a request acts in (the one it names, or the caller's),
    /// if the caller has `role` there (403 otherwise).
    pub fn acting_in(&self, named: Option<&str>, role: Role) -> Result<String, ApiError> {
        let namespace = self.namespace_or(named);
        self.require(role, namespace)?;
        Ok(namespace.to_string())
    }

    /// Whether the caller sees every namespace (lists across them).
    fn sees_all(&self) -> bool {
        matches!(self, Caller::Anyone)
            || matches!(self, Caller::Token(t) if t.role == Role::ClusterAdmin)
    }

    /// The namespace a list is of: the one named (403 if the caller cannot
    /// read it), else the caller's — or every namespace (`None`) for a
    /// caller who sees them all and names none.
    pub fn listing(&self, named: Option<&str>) -> Result<Option<String>, ApiError> {
        match named.filter(|n| !n.is_empty()) {
            None if self.sees_all() => Ok(None),
            named => {
                let ns = self.namespace_or(named);
                self.require(Role::Read, ns)?;
                Ok(Some(ns.to_string()))
            }
        }
    }

    /// `run`, if the caller may act on it as `role`: 404 for a run of a
    /// namespace it cannot see, 403 for one it sees without the role.
    pub fn on_run(
        &self,
        run: Option<RunRecord>,
        run_id: &str,
        role: Role,
    ) -> Result<RunRecord, ApiError> {
        match run {
            Some(run) if self.sees(&run.namespace) => {
                self.require(role, &run.namespace)?;
                Ok(run)
            }
            _ => Err(ApiError::new(Code::NotFound, format!("no run `{run_id}`"))),
        }
    }
}

/// The namespace `name`, if the caller sees it (404 otherwise, so
/// namespaces the caller cannot see do not show either).
pub(super) async fn visible(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<Value, ApiError> {
    match state.rt.store.access().namespace(name).await? {
        Some(ns) if caller.sees(name) => Ok(json!(ns)),
        _ => Err(ApiError::new(
            Code::NotFound,
            format!("no namespace `{name}`"),
        )),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if !state.auth {
            return Ok(Caller::Anyone);
        }
        let access = state.rt.store.access();
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            // No token: a client certificate the handshake verified may
            // stand for one.
            let client_cert = parts
                .extensions
                .get::<ConnectInfo<Peer>>()
                .and_then(|ConnectInfo(peer)| peer.client_cert.clone());
            let Some(common_name) = client_cert else {
                return Err(ApiError::new(
                    Code::Unauthorized,
                    "this server needs a token: send `Authorization: Bearer <token>` (the CLI reads WEFT_TOKEN)",
                ));
            };
            return match access.token_by_client_cert(&common_name, now_ms()).await? {
                Some(t) => Ok(Caller::Token(t)),
                None => Err(ApiError::new(
                    Code::Unauthorized,
                    format!(
                        "client certificate `{common_name}` is not mapped to a namespace \
                         (the cluster admin maps it: weft token create --client-cert NAME)"
                    ),
                )),
            };
        };
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or_default();
        match access.token_by_hash(&token_hash(token), now_ms()).await? {
            Some(t) => Ok(Caller::Token(t)),
            None => Err(ApiError::new(
                Code::Unauthorized,
                "unknown or revoked token",
            )),
        }
    }
}
