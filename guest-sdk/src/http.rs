//! Outbound HTTP for activities, over `wasi:http`. The host only lets an
//! activity reach the hosts its deployment allows (`weft deploy
//! --allow-http HOST`); any other request fails with kind `http-denied`.
//! Workflows have no network access: do HTTP in an activity.
//!
//! ```no_run
//! # fn activity() -> Result<(), weft_sdk::Error> {
//! let health = weft_sdk::http::get("http://127.0.0.1:8080/healthz")?.error_for_status()?;
//! let created = weft_sdk::http::post_json("http://127.0.0.1:8080/records", &"acme")?;
//! let record: serde_json::Value = created.json()?;
//! # Ok(()) }
//! ```

use crate::Error;
use serde::{Serialize, de::DeserializeOwned};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// A complete response: status, headers, body.
///
/// ```no_run
/// # fn activity() -> Result<(), weft_sdk::Error> {
/// let response = weft_sdk::http::get("http://127.0.0.1:8080/cells")?;
/// let etag = response.headers.iter().find(|(k, _)| k == "etag").map(|(_, v)| v.clone());
/// if response.status == 404 {
///     return Err(weft_sdk::Error::new("not-found", "no cells"));
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// Header names and values, in the order received.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (invalid UTF-8 replaced).
    ///
    /// ```no_run
    /// # fn activity() -> Result<(), weft_sdk::Error> {
    /// let version = weft_sdk::http::get("http://127.0.0.1:8080/version")?.text();
    /// # Ok(()) }
    /// ```
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body decoded from JSON (kind `bad-response` if it is not the
    /// JSON expected).
    ///
    /// ```no_run
    /// # fn activity() -> Result<(), weft_sdk::Error> {
    /// #[derive(serde::Deserialize)]
    /// struct Cell { name: String, healthy: bool }
    /// let cells: Vec<Cell> = weft_sdk::http::get("http://127.0.0.1:8080/cells")?
    ///     .error_for_status()?
    ///     .json()?;
    /// # Ok(()) }
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::new(
                "bad-response",
                format!(
                    "the response (HTTP {}) is not the JSON expected: {e}",
                    self.status
                ),
            )
        })
    }

    /// An error (kind `http-status`, retryable) unless the status is 2xx.
    ///
    /// ```no_run
    /// # fn activity() -> Result<(), weft_sdk::Error> {
    /// // A 503 fails this attempt; the activity's retry policy tries again.
    /// weft_sdk::http::get("http://127.0.0.1:8080/healthz")?.error_for_status()?;
    /// # Ok(()) }
    /// ```
    pub fn error_for_status(self) -> Result<Self, Error> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            Err(Error::new(
                "http-status",
                format!(
                    "HTTP {}: {}",
                    self.status,
                    self.text().chars().take(200).collect::<String>()
                ),
            ))
        }
    }
}

/// `GET url`.
///
/// ```no_run
/// # fn activity() -> Result<(), weft_sdk::Error> {
/// let page = weft_sdk::http::get("http://127.0.0.1:8080/cells?ring=1")?.text();
/// # Ok(()) }
/// ```
pub fn get(url: &str) -> Result<Response, Error> {
    request("GET", url, &[], None)
}

/// `POST url` with `body` as JSON.
///
/// ```no_run
/// # fn activity() -> Result<(), weft_sdk::Error> {
/// let created: serde_json::Value =
///     weft_sdk::http::post_json("http://127.0.0.1:8080/records", &serde_json::json!({ "name": "acme" }))?
///         .error_for_status()?
///         .json()?;
/// # Ok(()) }
/// ```
pub fn post_json(url: &str, body: &impl Serialize) -> Result<Response, Error> {
    let body = serde_json::to_vec(body)?;
    request(
        "POST",
        url,
        &[("content-type", "application/json")],
        Some(&body),
    )
}

/// `PUT url` with `body` as JSON.
///
/// ```no_run
/// # fn activity() -> Result<(), weft_sdk::Error> {
/// weft_sdk::http::put_json("http://127.0.0.1:8080/cells/eu-1", &serde_json::json!({ "drained": true }))?
///     .error_for_status()?;
/// # Ok(()) }
/// ```
pub fn put_json(url: &str, body: &impl Serialize) -> Result<Response, Error> {
    let body = serde_json::to_vec(body)?;
    request(
        "PUT",
        url,
        &[("content-type", "application/json")],
        Some(&body),
    )
}

fn http_error(authority: &str, code: ErrorCode) -> Error {
    match code {
        ErrorCode::HttpRequestDenied => Error::new(
            weft_contract::kind::HTTP_DENIED,
            format!(
                "weft refused the request to `{authority}`: that host is not in this \
                 activity's allow-list (deploy it with --allow-http {authority})"
            ),
        ),
        other => Error::new(
            "http",
            format!("request to `{authority}` failed: {other:?}"),
        ),
    }
}

struct Url<'a> {
    scheme: Scheme,
    authority: &'a str,
    path: &'a str,
}

fn parse(url: &str) -> Result<Url<'_>, Error> {
    let bad = || {
        Error::new(
            weft_contract::kind::BAD_INPUT,
            format!("not an http(s) URL: `{url}`"),
        )
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return Err(bad()),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(bad());
    }
    Ok(Url {
        scheme,
        authority,
        path,
    })
}

/// Send a request and read the whole response.
///
/// ```no_run
/// # fn activity() -> Result<(), weft_sdk::Error> {
/// let response = weft_sdk::http::request(
///     "DELETE",
///     "http://127.0.0.1:8080/cells/eu-1",
///     &[("authorization", "Bearer s3cret")],
///     None,
/// )?;
/// # Ok(()) }
/// ```
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Response, Error> {
    let url = parse(url)?;
    let invalid = |what: &str| {
        Error::new(
            weft_contract::kind::BAD_INPUT,
            format!("invalid {what} for `{}`", url.authority),
        )
    };
    let fields: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
    let fields = Fields::from_list(&fields).map_err(|_| invalid("headers"))?;
    let req = OutgoingRequest::new(fields);
    let method = match method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "HEAD" => Method::Head,
        other => Method::Other(other.to_string()),
    };
    req.set_method(&method).map_err(|_| invalid("method"))?;
    req.set_scheme(Some(&url.scheme))
        .map_err(|_| invalid("scheme"))?;
    req.set_authority(Some(url.authority))
        .map_err(|_| invalid("authority"))?;
    req.set_path_with_query(Some(url.path))
        .map_err(|_| invalid("path"))?;
    let outgoing = req.body().map_err(|_| invalid("body"))?;
    let pending = outgoing_handler::handle(req, None).map_err(|e| http_error(url.authority, e))?;
    {
        let stream = outgoing.write().map_err(|_| invalid("body"))?;
        for chunk in body.unwrap_or_default().chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| Error::new("http", format!("cannot send the body: {e:?}")))?;
        }
    }
    OutgoingBody::finish(outgoing, None).map_err(|e| http_error(url.authority, e))?;

    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(http_error(url.authority, code)),
        _ => return Err(Error::new("http", "the response was lost")),
    };
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|_| Error::new("http", "the response body is unavailable"))?;
    let mut body = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|_| Error::new("http", "the response body is unavailable"))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(e) => return Err(Error::new("http", format!("reading the body: {e:?}"))),
            }
        }
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}
