//! Typed errors: one [`Error`] enum whose API variants wrap one struct per status family.
//!
//! Every API error carries the HTTP status, a message (the body's `detail` string or
//! `error.message`), the server's error code and the `x-request-id` of the response.
//! The names users of the Python SDK search for exist too: [`AuthenticationError`],
//! [`RateLimitError`], [`NotFoundError`], [`ValidationError`], [`ConflictError`], ...

use serde_json::Value;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Result of every SDK call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error answered by the API: status, message, code and request id.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// Human-readable message: the body's `detail` string, else `error.message`, else `HTTP <status>`.
    pub message: String,
    /// Machine-readable code from the body's `error.code` (e.g. `not_found`), when sent.
    pub code: Option<String>,
    /// The response's `x-request-id` header, for support requests and logs.
    pub request_id: Option<String>,
    /// The parsed JSON body (or the raw text as a JSON string) of the response.
    pub body: Box<Value>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (status={}", self.message, self.status)?;
        if let Some(id) = &self.request_id {
            write!(f, ", request_id={id}")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for ApiError {}

macro_rules! api_error_newtype {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Debug, Clone)]
        pub struct $name(pub ApiError);

        impl std::ops::Deref for $name {
            type Target = ApiError;
            fn deref(&self) -> &ApiError {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::error::Error for $name {}
    )*};
}

api_error_newtype! {
    /// 401: the API key is missing, unknown, revoked or expired.
    AuthError,
    /// 403: the key's role is too low for the operation.
    ForbiddenError,
    /// 404: no such dataset or image in the key's organisation.
    NotFoundError,
    /// 409: the name is taken (duplicate project name, filename collision in a folder).
    ConflictError,
    /// 5xx: the server failed (after retries).
    ServerError,
}

/// The name the Python SDK's README uses for [`AuthError`].
pub type AuthenticationError = AuthError;

/// 400/422: a field failed validation; `field_errors` comes from a `detail` list.
#[derive(Debug, Clone)]
pub struct ValidationError {
    /// Status, message and request id.
    pub api: ApiError,
    /// Per-field errors, FastAPI style (empty when the server sent a plain message).
    pub field_errors: Vec<FieldError>,
}

impl std::ops::Deref for ValidationError {
    type Target = ApiError;
    fn deref(&self) -> &ApiError {
        &self.api
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.api.fmt(f)?;
        for e in &self.field_errors {
            write!(f, "; {}: {}", e.location(), e.msg)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationError {}

/// 429: the key's request budget is spent.
#[derive(Debug, Clone)]
pub struct RateLimitError {
    /// Status, message and request id.
    pub api: ApiError,
    /// How long the server asked to wait (`Retry-After`), when it said.
    pub retry_after: Option<Duration>,
}

impl std::ops::Deref for RateLimitError {
    type Target = ApiError;
    fn deref(&self) -> &ApiError {
        &self.api
    }
}

impl fmt::Display for RateLimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.api.fmt(f)?;
        if let Some(d) = self.retry_after {
            write!(f, "; retry after {} s", d.as_secs_f64())?;
        }
        Ok(())
    }
}

impl std::error::Error for RateLimitError {}

pub use pictograph_core::annotation::FieldError;

/// Everything an SDK call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 401.
    #[error("authentication failed: {0}")]
    Auth(AuthError),
    /// 403.
    #[error("forbidden: {0}")]
    Forbidden(ForbiddenError),
    /// 404.
    #[error("not found: {0}")]
    NotFound(NotFoundError),
    /// 409.
    #[error("conflict: {0}")]
    Conflict(ConflictError),
    /// 400 or 422.
    #[error("validation failed: {0}")]
    Validation(ValidationError),
    /// 429, after waiting out every `Retry-After` within the configured bound.
    #[error("rate limited: {0}")]
    RateLimit(RateLimitError),
    /// 5xx, after retries.
    #[error("server error: {0}")]
    Server(ServerError),
    /// Any other non-success status (3xx, 405, 408, 413, 415, ...).
    #[error("API error: {0}")]
    Api(ApiError),
    /// The request never got an answer: connection refused or reset, DNS, timeout.
    #[error("transport error: {0}")]
    Transport(#[source] reqwest::Error),
    /// A success response whose body was not what the API documents.
    #[error("unexpected response body: {0}")]
    Decode(String),
    /// A local file or folder does not exist.
    #[error("file not found: {}", .0.display())]
    FileNotFound(PathBuf),
    /// Reading or writing a local file failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The client is misconfigured (no API key, bad base URL, bad environment value).
    #[error("configuration error: {0}")]
    Config(String),
    /// An argument was refused before any request was sent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl Error {
    /// Whether the same request may succeed later, unchanged: the network failed, or the
    /// server answered a status the client retries (408, 429, 5xx). False when the request
    /// itself was refused (validation, conflict, not found, forbidden, ...) and for local
    /// file errors.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport(_) => true,
            other => other.status().is_some_and(crate::http::retryable),
        }
    }

    /// A local file could not be written because its disk or quota is full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Error::Io { source, .. }
            if pictograph_core::error::is_storage_full(source.kind()))
    }

    /// The status, message and request id, for errors the API answered.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Auth(e) => Some(&e.0),
            Error::Forbidden(e) => Some(&e.0),
            Error::NotFound(e) => Some(&e.0),
            Error::Conflict(e) => Some(&e.0),
            Error::Validation(e) => Some(&e.api),
            Error::RateLimit(e) => Some(&e.api),
            Error::Server(e) => Some(&e.0),
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// The HTTP status, for errors the API answered.
    pub fn status(&self) -> Option<u16> {
        self.api().map(|a| a.status)
    }

    /// The response's `x-request-id`, for errors the API answered.
    pub fn request_id(&self) -> Option<&str> {
        self.api().and_then(|a| a.request_id.as_deref())
    }

    /// The server's wait hint of a [`Error::RateLimit`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimit(e) => e.retry_after,
            _ => None,
        }
    }

    /// The field errors of a [`Error::Validation`] (empty otherwise).
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            Error::Validation(e) => &e.field_errors,
            _ => &[],
        }
    }

    /// Whether this is a 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound(_))
    }

    /// Whether this is a 409.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict(_))
    }

    /// Maps an error response to its typed error.
    pub(crate) fn from_status(
        status: u16,
        request_id: Option<String>,
        retry_after: Option<Duration>,
        body: &[u8],
    ) -> Error {
        let raw = body;
        let body: Value = serde_json::from_slice(raw)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(raw).into_owned()));
        let text = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let message = text(body.get("detail"))
            .or_else(|| text(body.get("error").and_then(|e| e.get("message"))))
            .or_else(|| text(body.get("error")))
            .or_else(|| text(body.get("message")))
            .or_else(|| body.is_string().then(|| raw_message(raw)).flatten())
            .unwrap_or_else(|| format!("HTTP {status}"));
        let code = text(body.get("error").and_then(|e| e.get("code")));
        let api = ApiError {
            status,
            message,
            code,
            request_id,
            body: Box::new(body),
        };
        match status {
            400 | 422 => {
                let list = api
                    .body
                    .get("detail")
                    .filter(|d| d.is_array())
                    .or_else(|| api.body.pointer("/error/details/errors"));
                let field_errors = list
                    .and_then(|l| serde_json::from_value(l.clone()).ok())
                    .unwrap_or_default();
                Error::Validation(ValidationError { api, field_errors })
            }
            401 => Error::Auth(AuthError(api)),
            403 => Error::Forbidden(ForbiddenError(api)),
            404 => Error::NotFound(NotFoundError(api)),
            409 => Error::Conflict(ConflictError(api)),
            429 => Error::RateLimit(RateLimitError { api, retry_after }),
            500..=599 => Error::Server(ServerError(api)),
            _ => Error::Api(api),
        }
    }

    /// Whether a local file or folder failed (not the network or the server): running the
    /// same call again fails the same way until the file system is fixed.
    pub fn is_local(&self) -> bool {
        matches!(self, Error::Io { .. } | Error::FileNotFound(_))
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::FileNotFound(path)
        } else {
            Error::Io { path, source }
        }
    }
}

/// Longest body text shown as an error's message.
const MAX_RAW_MESSAGE: usize = 200;

/// The message of an error whose body is not JSON: the text itself when it reads as one
/// (short, one line, not markup), else that the server did not answer as the API does, with
/// the kind of body it sent (another web server's HTML page, say).
fn raw_message(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok().map(str::trim);
    if text == Some("") || raw.is_empty() {
        return None;
    }
    match text {
        Some(t)
            if t.len() <= MAX_RAW_MESSAGE
                && !t.starts_with('<')
                && !t.chars().any(char::is_control) =>
        {
            Some(t.to_string())
        }
        _ => Some(format!("not a Pictograph API answer ({})", body_kind(text))),
    }
}

/// What a body that is not JSON looks like: `text/html`, `application/xml`, `text/plain` or
/// `binary`.
fn body_kind(text: Option<&str>) -> &'static str {
    let Some(t) = text else {
        return "binary";
    };
    let head = t.chars().take(256).collect::<String>().to_ascii_lowercase();
    if head.starts_with("<!doctype html") || head.contains("<html") {
        "text/html"
    } else if head.starts_with('<') {
        "application/xml"
    } else {
        "text/plain"
    }
}

/// [`Error::Transport`] with the URL's query and fragment removed: a signed URL's query
/// (`expires`, `sig`) is a credential, never shown in a message.
impl From<reqwest::Error> for Error {
    fn from(mut e: reqwest::Error) -> Self {
        if let Some(url) = e.url_mut() {
            url.set_query(None);
            url.set_fragment(None);
        }
        Error::Transport(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_statuses_and_messages() {
        let e = Error::from_status(
            404,
            Some("rid".into()),
            None,
            br#"{"detail":"Dataset 'x' not found","error":{"code":"not_found","message":"m"}}"#,
        );
        assert!(e.is_not_found());
        assert_eq!(e.api().unwrap().message, "Dataset 'x' not found");
        assert_eq!(e.api().unwrap().code.as_deref(), Some("not_found"));
        assert_eq!(e.request_id(), Some("rid"));

        let e = Error::from_status(
            422,
            None,
            None,
            br#"{"detail":[{"loc":["body","annotations",0,"name"],"msg":"field required","type":"missing"}],
                "error":{"code":"validation_error","message":"Invalid annotation payload"}}"#,
        );
        assert_eq!(e.api().unwrap().message, "Invalid annotation payload");
        assert_eq!(e.field_errors()[0].location(), "body.annotations.0.name");

        let e = Error::from_status(429, None, Some(Duration::from_secs(5)), b"");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(5)));
        assert_eq!(e.api().unwrap().message, "HTTP 429");

        assert!(
            matches!(Error::from_status(415, None, None, b"no"), Error::Api(ref a) if a.status == 415 && a.message == "no")
        );
        assert_eq!(
            Error::from_status(502, None, None, b"upstream timed out\n")
                .api()
                .unwrap()
                .message,
            "upstream timed out"
        );
        assert!(matches!(
            Error::from_status(503, None, None, b"{}"),
            Error::Server(_)
        ));
        assert!(matches!(
            Error::from_status(401, None, None, b"{}"),
            Error::Auth(_)
        ));
    }

    #[test]
    fn pages_of_other_servers_are_not_shown_as_messages() {
        let page =
            b"<!DOCTYPE HTML>\n<html lang=\"en\">\n<head><title>Error response</title></head>\n\
                     <body><h1>Error response</h1><p>Error code: 404</p></body>\n</html>\n";
        let e = Error::from_status(404, None, None, page);
        assert!(e.is_not_found(), "the typed kind stays");
        assert_eq!(
            e.api().unwrap().message,
            "not a Pictograph API answer (text/html)"
        );
        let xml = b"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code></Error>";
        let e = Error::from_status(403, None, None, xml);
        assert!(matches!(e, Error::Forbidden(_)));
        assert_eq!(
            e.api().unwrap().message,
            "not a Pictograph API answer (application/xml)"
        );
        let long = "x".repeat(MAX_RAW_MESSAGE + 1);
        assert_eq!(
            Error::from_status(500, None, None, long.as_bytes())
                .api()
                .unwrap()
                .message,
            "not a Pictograph API answer (text/plain)"
        );
        assert_eq!(
            Error::from_status(500, None, None, b"line one\nline two")
                .api()
                .unwrap()
                .message,
            "not a Pictograph API answer (text/plain)"
        );
        assert_eq!(
            Error::from_status(502, None, None, &[0xff, 0xfe, 0x00])
                .api()
                .unwrap()
                .message,
            "not a Pictograph API answer (binary)"
        );
        assert_eq!(
            Error::from_status(404, None, None, b"  \n")
                .api()
                .unwrap()
                .message,
            "HTTP 404"
        );
    }
}
