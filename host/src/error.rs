//! The errors weft reports to its callers; the API maps each to one of its
//! codes (`api::error::Code`), which carries the HTTP status.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed (bad JSON, a bad name, an impossible value).
    #[error("{0}")]
    BadRequest(String),
    /// The uploaded bytes are not a valid WebAssembly component.
    #[error("{0}")]
    InvalidComponent(String),
    /// A valid component, but not of a world weft runs.
    #[error("{0}")]
    WrongWorld(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A namespace's request rate is exceeded: retry after this long.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: std::time::Duration,
    },
    /// A namespace's quota (open runs, say) is used up.
    #[error("{0}")]
    QuotaExceeded(String),
    /// A payload is larger than its namespace allows.
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<crate::engine::DeployError> for Error {
    fn from(e: crate::engine::DeployError) -> Self {
        match e {
            crate::engine::DeployError::Invalid(m) => Error::InvalidComponent(m),
            crate::engine::DeployError::WrongWorld(m) => Error::WrongWorld(m),
        }
    }
}

impl Error {
    /// The failure kind a workflow sees for this error (an update it sent
    /// that cannot be delivered, say).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::BadRequest(_) | Error::InvalidComponent(_) | Error::WrongWorld(_) => {
                "bad-request"
            }
            Error::NotFound(_) => "not-found",
            Error::Conflict(_) => "conflict",
            Error::RateLimited { .. } => "rate-limited",
            Error::QuotaExceeded(_) => "quota-exceeded",
            Error::TooLarge(_) => "payload-too-large",
            Error::Internal(_) => "internal",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Names of components: what fits in a URL path segment and a shell.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "invalid {what} name `{name}`: use 1-64 letters, digits, `-`, `_` or `.`, starting with a letter or digit"
        )))
    }
}
