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
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::TooLarge(_) => ErrorCode::PayloadTooLarge,
            ApiError::UnsupportedType(_) => ErrorCode::UnsupportedMediaType,
            ApiError::Invalid(_) | ApiError::Fields { .. } => ErrorCode::Validation,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let status =
            StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = match &self {
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "Internal server error".to_string()
            }
            other => other.to_string(),
        };
        let body = match &self {
            ApiError::Fields { errors, .. } => json!({
                "detail": errors,
                "error": {"code": code.as_str(), "message": message, "details": {"errors": errors}},
            }),
            _ => json!({
                "detail": message,
                "error": {"code": code.as_str(), "message": message, "details": {}},
            }),
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if let ApiError::RateLimited { retry_after } = self {
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                resp.headers_mut().insert("retry-after", v);
            }
        }
        resp
    }
}
