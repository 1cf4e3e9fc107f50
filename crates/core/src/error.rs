//! Stable machine-readable error codes the API answers with, next to the HTTP status.

/// One error code: its wire spelling and the HTTP status it travels with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 400: the request could not be read.
    BadRequest,
    /// 401: missing, unknown or revoked API key.
    Unauthorized,
    /// 403: the key's role is too low.
    Forbidden,
    /// 404: nothing by that name or id in the caller's organisation.
    NotFound,
    /// 408: an upload's body stopped arriving, or arrived too slowly.
    RequestTimeout,
    /// 409: the name is taken.
    Conflict,
    /// 413: the upload is too large.
    PayloadTooLarge,
    /// 415: the file type is not supported.
    UnsupportedMediaType,
    /// 422: a field failed validation.
    Validation,
    /// 429: the key's request budget is spent.
    RateLimited,
    /// 500: something broke on our side.
    Internal,
    /// 503: a dependency is unavailable.
    Unavailable,
    /// 507: the server's disk or database is full.
    InsufficientStorage,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [ErrorCode; 13] = [
        ErrorCode::BadRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::RequestTimeout,
        ErrorCode::Conflict,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::Validation,
        ErrorCode::RateLimited,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
        ErrorCode::InsufficientStorage,
    ];

    /// The code spelled `s` on the wire, if it is one.
    pub fn from_wire(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The wire spelling, e.g. `not_found`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Validation => "validation_error",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal_error",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::InsufficientStorage => "insufficient_storage",
        }
    }

    /// The HTTP status code.
    pub const fn status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::Validation => 422,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
            ErrorCode::InsufficientStorage => 507,
        }
    }
}

/// Whether an I/O failure of this kind means the disk or a quota is full.
pub fn is_storage_full(kind: std::io::ErrorKind) -> bool {
    matches!(
        kind,
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn every_code_is_read_back_from_its_wire_spelling() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_wire(code.as_str()), Some(code));
        }
        let spellings: std::collections::HashSet<_> =
            ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(spellings.len(), ErrorCode::ALL.len());
        assert_eq!(ErrorCode::from_wire("Not_Found"), None);
        assert_eq!(ErrorCode::from_wire(""), None);
    }
}
