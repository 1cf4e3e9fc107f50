//! `/annotations/{image_id}`: get, save (replace), delete.

use super::extract::{Json as Body, Path};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::services::annotations;
use crate::AppState;
use axum::extract::State;
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
    Body(body): Body<Value>,
) -> ApiResult<Json<Value>> {
    Ok(Json(annotations::save(&state, &caller, &id, &body).await?))
}

/// Removes the image's annotations.
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(annotations::delete(&state, &caller, &id).await?))
}
