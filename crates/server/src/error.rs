//! One error type for the HTTP layer, rendered as one JSON shape.
//!
//! Body: `{"detail": <string or field-error list>, "error": {"code", "message", "details"}}`.
//! A string `detail` is what the 1.6.3 client shows; the `error` envelope is what newer clients
//! read. Internal failures are logged with the request id and answered without internals.

use crate::store::StoreError;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use pictograph_core::annotation::FieldError;
use pictograph_core::error::ErrorCode;
use serde_json::json;

/// An error answered to an API caller.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400.
    #[error("{0}")]
    BadRequest(String),
    /// 401.
    #[error("{0}")]
    Unauthorized(String),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 408.
    #[error("{0}")]
    TimedOut(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 413.
    #[error("{0}")]
    TooLarge(String),
    /// 415.
    #[error("{0}")]
    UnsupportedType(String),
    /// 422 with a message.
    #[error("{0}")]
    Invalid(String),
    /// 422 with field errors.
    #[error("{message}")]
    Fields {
        /// Summary.
        message: String,
        /// The errors, FastAPI style.
        errors: Vec<FieldError>,
    },
    /// 429.
    #[error("Rate limit exceeded: retry in {retry_after} s")]
    RateLimited {
        /// Seconds until a request will be accepted.
        retry_after: u64,
    },
    /// 500; the cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// The code it is answered with.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::BadRequest(_) => ErrorCode::BadRequest,
            ApiError::Unauthorized(_) => ErrorCode::Unauthorized,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::TimedOut(_) => ErrorCode::RequestTimeout,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::TooLarge(_) => ErrorCode::PayloadTooLarge,
            ApiError::UnsupportedType(_) => ErrorCode::UnsupportedMediaType,
            ApiError::Invalid(_) | ApiError::Fields { .. } => ErrorCode::Validation,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::Internal(e) if storage_full(e) => ErrorCode::InsufficientStorage,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// A 422 for one field.
    pub fn field(loc: &[&str], msg: impl Into<String>) -> ApiError {
        let msg = msg.into();
        ApiError::Fields {
            message: msg.clone(),
            errors: vec![FieldError {
                loc: loc.iter().map(|s| json!(s)).collect(),
                msg,
                kind: "value_error".into(),
            }],
        }
    }
}

/// Whether a failure comes from a full disk, quota or database: any cause in its chain is a
/// file system's "no space" or "quota exceeded", SQLite's `SQLITE_FULL` or PostgreSQL's
/// `disk_full`.
fn storage_full(e: &anyhow::Error) -> bool {
    let io_full = |io: &std::io::Error| pictograph_core::error::is_storage_full(io.kind());
    let db_full = |db: &sqlx::Error| match db {
        sqlx::Error::Database(db) => db.code().is_some_and(|c| c == "13" || c == "53100"),
        sqlx::Error::Io(io) => io_full(io),
        _ => false,
    };
    e.chain().any(|cause| {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            io_full(io)
        } else if let Some(db) = cause.downcast_ref::<sqlx::Error>() {
            db_full(db)
        } else {
            // Its variants print and chain as what they wrap, so they are looked into here.
            match cause.downcast_ref::<StoreError>() {
                Some(StoreError::Db(db)) => db_full(db),
                Some(StoreError::Io(io)) => io_full(io),
                _ => false,
            }
        }
    })
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => ApiError::Conflict("already exists".into()),
            StoreError::NotFound => ApiError::NotFound("Not found".into()),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<crate::blobs::BlobError> for ApiError {
    fn from(e: crate::blobs::BlobError) -> Self {
        ApiError::Internal(e.into())
    }
}

impl ApiError {
    /// The HTTP status and the JSON body this error answers (an internal error is logged
    /// here, and its cause kept out of the body).
    pub fn status_and_body(&self) -> (StatusCode, serde_json::Value) {
        let code = self.code();
        let status =
            StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = match self {
            ApiError::Internal(e) if code == ErrorCode::InsufficientStorage => {
                tracing::error!(error = ?e, "storage full");
                "The server's storage is full: nothing was stored; try again once space is freed"
                    .to_string()
            }
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "Internal server error".to_string()
            }
            other => other.to_string(),
        };
        let body = match self {
            ApiError::Fields { errors, .. } => json!({
                "detail": errors,
                "error": {"code": code.as_str(), "message": message, "details": {"errors": errors}},
            }),
            _ => json!({
                "detail": message,
                "error": {"code": code.as_str(), "message": message, "details": {}},
            }),
        };
        (status, body)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.status_and_body();
        let mut resp = (status, axum::Json(body)).into_response();
        if let ApiError::RateLimited { retry_after } = self {
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                resp.headers_mut().insert("retry-after", v);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::BlobError;
    use sqlx::{Connection, Executor};

    async fn answer(e: ApiError) -> (u16, serde_json::Value) {
        let resp = e.into_response();
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_full_disk_or_database_is_a_507_with_its_reason() {
        let no_space = std::io::Error::from(std::io::ErrorKind::StorageFull);
        let (status, body) = answer(ApiError::Internal(BlobError::Io(no_space).into())).await;
        assert_eq!(status, 507);
        assert_eq!(body["error"]["code"], "insufficient_storage");
        assert!(body["detail"].as_str().unwrap().contains("storage is full"));

        let quota = std::io::Error::from(std::io::ErrorKind::QuotaExceeded);
        let (status, _) = answer(ApiError::Internal(StoreError::Io(quota).into())).await;
        assert_eq!(status, 507);

        // A real SQLite database that may not grow: SQLITE_FULL.
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        conn.execute("CREATE TABLE t (b BLOB); PRAGMA max_page_count = 3")
            .await
            .unwrap();
        let full = sqlx::query("INSERT INTO t VALUES (zeroblob(100000))")
            .execute(&mut conn)
            .await
            .unwrap_err();
        let (status, _) = answer(ApiError::from(StoreError::from(full))).await;
        assert_eq!(status, 507);

        // Other failures stay a 500 that tells nothing.
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let (status, body) = answer(ApiError::Internal(BlobError::Io(other).into())).await;
        assert_eq!(status, 500);
        assert_eq!(body["detail"], "Internal server error");
    }
}
