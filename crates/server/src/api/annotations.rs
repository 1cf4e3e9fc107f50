//! `/annotations/{image_id}`: get, save (replace), delete.

use super::extract::{Json as Body, Path};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::services::annotations;
use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::{Extension, Json};
use serde_json::Value;

/// The image's annotations.
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(annotations::get(&state, &caller, &id).await?))
}

/// Replaces the image's annotations.
pub async fn save(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<Value>,
) -> ApiResult<Json<Value>> {
    let if_match = match headers.get(header::IF_MATCH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .map(|s| s.trim().trim_start_matches("W/").trim_matches('"'))
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| {
                    ApiError::BadRequest("If-Match must be an annotation version like \"3\"".into())
                })?,
        ),
    };
    Ok(Json(
        annotations::save(&state, &caller, &id, &body, if_match).await?,
    ))
}

/// Removes the image's annotations.
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(annotations::delete(&state, &caller, &id).await?))
}
