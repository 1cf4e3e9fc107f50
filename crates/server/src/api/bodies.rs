//! Request bodies of the key routes: read whole within [`MAX_JSON_BODY`], and the memory their
//! parse may take reserved before any handler parses them (see
//! [`crate::memory::json_parse_bytes`]). Concurrent large bodies then wait for memory instead
//! of growing the process, and a body whose parse alone would take more than the whole budget
//! is refused at once.

use super::MAX_JSON_BODY;
use crate::error::ApiError;
use crate::memory::json_parse_bytes;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

/// Middleware: reads the body, reserves what parsing it may take from the JSON budget, and
/// runs the request with the reservation held until its answer is made.
pub async fn reserve_parse(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_JSON_BODY as u64) {
        return too_long().into_response();
    }
    let (parts, body) = req.into_parts();
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0) as usize);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                return ApiError::BadRequest(format!("Reading the request body failed: {e}"))
                    .into_response()
            }
        };
        if bytes.len() + chunk.len() > MAX_JSON_BODY {
            return too_long().into_response();
        }
        bytes.extend_from_slice(&chunk);
    }
    let need = json_parse_bytes(&bytes);
    let budget = &state.json_memory;
    if budget.limit() > 0 && need > budget.limit() {
        return ApiError::TooLarge(format!(
            "The request body holds too many JSON values: reading it would take about {} MB, \
             more than the {} MB the server sets aside for request bodies; send it in parts",
            need.div_ceil(1 << 20),
            budget.limit() >> 20
        ))
        .into_response();
    }
    let _held = budget.reserve(need).await;
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn too_long() -> ApiError {
    ApiError::TooLarge(format!(
        "The request body is larger than the {} MB limit",
        MAX_JSON_BODY >> 20
    ))
}
