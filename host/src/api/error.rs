//! One JSON error shape for every failure: `{"error":{"code","message"}}`.

use crate::error::Error;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use utoipa::ToSchema;

/// Every error code the API answers, each with its one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BadRequest,
    MalformedJson,
    PayloadTooLarge,
    InvalidComponent,
    WrongWorld,
    NotFound,
    /// No token, or one that is unknown or revoked.
    Unauthorized,
    /// A token without the role, or for another namespace.
    Forbidden,
    MethodNotAllowed,
    Conflict,
    /// A run's journal does not replay on the code it was to move to.
    Divergence,
    /// The database cannot be reached now; retry (nothing was lost).
    Unavailable,
    /// A namespace's request rate: retry after `Retry-After` seconds.
    RateLimited,
    /// A namespace's quota is used up.
    QuotaExceeded,
    Internal,
}

impl Code {
    /// The stable, machine-matchable word in `{"error":{"code"}}`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadRequest => "bad_request",
            Code::MalformedJson => "malformed_json",
            Code::PayloadTooLarge => "payload_too_large",
            Code::InvalidComponent => "invalid_component",
            Code::WrongWorld => "wrong_world",
            Code::NotFound => "not_found",
            Code::Unauthorized => "unauthorized",
            Code::Forbidden => "forbidden",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::Conflict => "conflict",
            Code::Divergence => "divergence",
            Code::Unavailable => "unavailable",
            Code::RateLimited => "rate_limited",
            Code::QuotaExceeded => "quota_exceeded",
            Code::Internal => "internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Code::BadRequest | Code::MalformedJson | Code::InvalidComponent => {
                StatusCode::BAD_REQUEST
            }
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::WrongWorld => StatusCode::UNPROCESSABLE_ENTITY,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Forbidden => StatusCode::FORBIDDEN,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::Conflict | Code::Divergence => StatusCode::CONFLICT,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::RateLimited | Code::QuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    /// Machine-readable specifics (a divergence, say).
    pub details: Option<serde_json::Value>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let (code, message) = match &e {
            Error::BadRequest(m) => (Code::BadRequest, m.clone()),
            Error::InvalidComponent(m) => (Code::InvalidComponent, m.clone()),
            Error::WrongWorld(m) => (Code::WrongWorld, m.clone()),
            Error::NotFound(m) => (Code::NotFound, m.clone()),
            Error::Conflict(m) => (Code::Conflict, m.clone()),
            Error::QuotaExceeded(m) => (Code::QuotaExceeded, m.clone()),
            Error::TooLarge(m) => (Code::PayloadTooLarge, m.clone()),
            Error::RateLimited {
                message,
                retry_after,
            } => {
                let mut e = ApiError::new(Code::RateLimited, message.clone());
                e.retry_after = Some(retry_after.as_secs_f64().ceil().max(1.0) as u64);
                return e;
            }
            Error::Internal(inner) if crate::store::unavailable(inner) => {
                tracing::warn!("the database is unavailable: {inner:#}");
                (
                    Code::Unavailable,
                    format!("the database is unavailable, retry shortly ({inner:#})"),
                )
            }
            Error::Internal(inner) => {
                tracing::error!("internal error: {inner:#}");
                (Code::Internal, format!("internal error: {inner:#}"))
            }
        };
        ApiError::new(code, message)
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        Error::Internal(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str(),
                message: self.message,
                details: self.details,
            },
        };
        let mut response = (self.code.status(), Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// What every failed request answers.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-matchable: `bad_request`, `malformed_json`,
    /// `payload_too_large`, `invalid_component`, `wrong_world`,
    /// `not_found`, `unauthorized`, `forbidden`, `method_not_allowed`,
    /// `conflict`, `divergence`, `unavailable`, `rate_limited`,
    /// `quota_exceeded`, `internal`.
    pub code: &'static str,
    pub message: String,
    /// What the error is about, by kind (a divergence's report, say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

/// The largest body a route takes (set per route as an extension).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// The raw request body, at most the route's [`BodyLimit`]. A larger body
/// is read on (up to a cap) and dropped, so the client, having sent it all,
/// reads a clear 413 instead of a reset connection.
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        use futures::StreamExt;
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map_or(super::MAX_JSON_BYTES, |l| l.0);
        let drain_cap = limit.saturating_mul(2).saturating_add(16 << 20);
        let mut stream = req.into_body().into_data_stream();
        let mut body = Vec::new();
        let mut total = 0usize;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::new(Code::BadRequest, format!("cannot read the body: {e}"))
            })?;
            total += chunk.len();
            if total <= limit {
                body.extend_from_slice(&chunk);
            } else if total > drain_cap {
                break;
            }
        }
        if total > limit {
            return Err(ApiError::new(
                Code::PayloadTooLarge,
                format!("the body is larger than this route's limit of {limit} bytes"),
            ));
        }
        Ok(Body(Bytes::from(body)))
    }
}

/// A JSON body, whatever its content type says; malformed JSON is a 400
/// that says where it broke.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Body(bytes) = Body::from_request(req, state).await?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            ApiError::new(
                Code::MalformedJson,
                format!("the request body is not the JSON expected: {e}"),
            )
        })
    }
}

/// Query parameters, with a JSON error when they do not parse.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| QueryParams(q.0))
            .map_err(|r| ApiError::new(Code::BadRequest, r.body_text()))
    }
}
