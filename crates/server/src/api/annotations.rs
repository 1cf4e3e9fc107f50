//! `/annotations/{image_id}` (1.6.3) and `/annotations/{dataset}/{dir/…/filename}` (newer
//! clients): get, save (replace), delete.
//!
//! Reads are shaped for the caller ([`paths::annotation_shape`]): clients whose models
//! forbid the newer keys get them stripped, and their writes are validated strictly.

use super::extract::Json as Body;
use super::paths;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::services::annotations;
use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, Uri};
use axum::{Extension, Json};
use serde_json::Value;

/// The image's annotations.
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let segs = paths::segments(&uri, "annotations")?;
    let img = paths::image(&state, &caller, &segs).await?;
    Ok(Json(
        annotations::get_of(&state, &img, paths::annotation_shape(&headers)).await?,
    ))
}

/// Replaces the image's annotations. On the id route a body `image_id` must name the same
/// image; on the path route it is ignored.
pub async fn save(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
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
    let segs = paths::segments(&uri, "annotations")?;
    let img = paths::image(&state, &caller, &segs).await?;
    Ok(Json(
        annotations::save_to(
            &state,
            &caller,
            &img,
            &body,
            if_match,
            segs.len() == 1,
            paths::annotation_shape(&headers),
        )
        .await?,
    ))
}

/// Removes the image's annotations.
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
) -> ApiResult<Json<Value>> {
    let segs = paths::segments(&uri, "annotations")?;
    let img = paths::image(&state, &caller, &segs).await?;
    Ok(Json(annotations::delete_of(&state, &caller, &img).await?))
}
