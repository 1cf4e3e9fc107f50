//! Replays the stored response when a write arrives again with the same `Idempotency-Key`.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::store::StoredResponse;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// Largest response body kept for replay: a larger one is recorded as not kept, and a retry
/// of its request is refused (409) rather than run again.
const MAX_STORED: usize = 4 * 1024 * 1024;

/// Middleware: for POST, PUT and PATCH carrying an `Idempotency-Key`, answer a stored response
/// for the same caller, key and request (method, path and body), or run the request and
/// store what it answered.
pub async fn replay(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    if !matches!(method, Method::POST | Method::PUT | Method::PATCH) {
        return next.run(req).await;
    }
    let Some(idem) = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.len() <= 255)
    else {
        return next.run(req).await;
    };
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        return next.run(req).await;
    };
    let path = req.uri().path().to_string();
    let (parts, body) = req.into_parts();
    // The body is already whole in memory (read by `api::bodies`): this takes it back.
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::BadRequest(format!("Reading the request body failed: {e}"))
                .into_response()
        }
    };
    let request_hash = hex::encode(Sha256::digest(&body));
    let req = Request::from_parts(parts, Body::from(body));
    match state.store.stored_response(&caller.key_id, &idem).await {
        Ok(Some(stored)) => return replayed(stored, &method, &path, &request_hash),
        Ok(None) => {}
        Err(e) => return ApiError::from(e).into_response(),
    }
    let resp = next.run(req).await;
    let status = resp.status();
    let replayable = (status.is_success() || status.is_client_error())
        && !matches!(status.as_u16(), 401 | 408 | 429);
    if !replayable {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    // The handlers answer JSON made whole in memory: nothing is left to bound here.
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::Internal(anyhow::anyhow!("buffering response: {e}")).into_response()
        }
    };
    let kept = (bytes.len() <= MAX_STORED)
        .then(|| std::str::from_utf8(&bytes).ok())
        .flatten();
    let stored = StoredResponse {
        method: method.as_str().to_string(),
        path,
        status: status.as_u16(),
        body: kept.unwrap_or_default().to_string(),
        body_kept: kept.is_some(),
        request_hash: Some(request_hash),
    };
    if let Err(e) = state
        .store
        .store_response(&caller.key_id, &idem, &stored)
        .await
    {
        tracing::warn!(error = %e, "could not store idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The answer to a request whose Idempotency-Key has a stored response: that response, when
/// the request is the same (method, path and body) and the response was kept; otherwise
/// a refusal, and the request does not run again.
fn replayed(stored: StoredResponse, method: &Method, path: &str, request_hash: &str) -> Response {
    let same_body = stored
        .request_hash
        .as_deref()
        .is_none_or(|h| h == request_hash);
    if stored.method != method.as_str() || stored.path != path || !same_body {
        return ApiError::Invalid(
            "Idempotency-Key was already used for a different request".into(),
        )
        .into_response();
    }
    if !stored.body_kept {
        return ApiError::Conflict(format!(
            "A request with this Idempotency-Key already ran and answered HTTP {}; its answer \
             was too large to keep for replay, so it is not run again: read the current state \
             instead",
            stored.status
        ))
        .into_response();
    }
    let mut resp = Response::new(Body::from(stored.body));
    *resp.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    resp
}
