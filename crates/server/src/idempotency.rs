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

/// Largest response body kept for replay.
const MAX_STORED: usize = 4 * 1024 * 1024;

/// Middleware: for POST, PUT and PATCH carrying an `Idempotency-Key`, answer a stored response
/// for the same caller and key, or run the request and store what it answered.
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
    match state.store.stored_response(&caller.key_id, &idem).await {
        Ok(Some(stored)) => {
            if stored.method != method.as_str() || stored.path != path {
                return ApiError::Invalid(
                    "Idempotency-Key was already used for a different request".into(),
                )
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
            return resp;
        }
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
    let bytes = match axum::body::to_bytes(body, MAX_STORED).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::Internal(anyhow::anyhow!("buffering response: {e}")).into_response()
        }
    };
    if let Ok(text) = std::str::from_utf8(&bytes) {
        let stored = StoredResponse {
            method: method.as_str().to_string(),
            path,
            status: status.as_u16(),
            body: text.to_string(),
        };
        if let Err(e) = state
            .store
            .store_response(&caller.key_id, &idem, &stored)
            .await
        {
            tracing::warn!(error = %e, "could not store idempotent response");
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}
