//! Annotations: one validated canonical list per image, replaced as a whole.

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::store::{ImageRow, StoreError};
use crate::AppState;
use serde_json::{json, Value};

/// The image in the caller's organisation, or 404.
pub async fn image(state: &AppState, caller: &Caller, id: &str) -> ApiResult<ImageRow> {
    state
        .store
        .image_by_id(&caller.org_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Image '{id}' not found")))
}

/// The image's annotations.
pub async fn get(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Value> {
    let img = image(state, caller, id).await?;
    let list = state.store.annotations(&img.id).await?;
    Ok(json!({"image_id": img.id, "annotations": list, "version": img.version}))
}

/// Validates and stores a new list for the image. With `expected_version` (from `If-Match` or
/// the body's `expected_version`), a save over a newer version is refused with 409 instead of
/// silently overwriting someone else's work.
pub async fn save(
    state: &AppState,
    caller: &Caller,
    id: &str,
    body: &Value,
    if_match: Option<i64>,
) -> ApiResult<Value> {
    caller.require(Role::Member, "Saving annotations")?;
    let img = image(state, caller, id).await?;
    if let Some(other) = body.get("image_id").and_then(Value::as_str) {
        if other != img.id {
            return Err(ApiError::field(
                &["body", "image_id"],
                "does not match the image in the path",
            ));
        }
    }
    let raw = body
        .get("annotations")
        .ok_or_else(|| ApiError::field(&["body", "annotations"], "field required"))?;
    let dataset = state
        .store
        .dataset_by_id(&caller.org_id, &img.dataset_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Image '{id}' not found")))?;
    let classes = dataset.class_names();
    let list = pictograph_core::annotation::validate_annotations(raw, Some(&classes)).map_err(
        |errors| ApiError::Fields {
            message: format!(
                "Invalid annotation payload: {}",
                errors.first().map(|e| e.msg.as_str()).unwrap_or("")
            ),
            errors,
        },
    )?;
    let expected =
        match body.get("expected_version") {
            None | Some(Value::Null) => if_match,
            Some(v) => Some(v.as_i64().ok_or_else(|| {
                ApiError::field(&["body", "expected_version"], "must be an integer")
            })?),
        };
    let saved = state
        .store
        .save_annotations(&img.id, &list, expected)
        .await
        .map_err(|e| stale(e, &img.id, expected))?;
    Ok(json!({
        "success": true,
        "image_id": img.id,
        "previous_count": saved.previous_count,
        "new_count": saved.new_count,
        "status": saved.status,
        "version": saved.version,
    }))
}

fn stale(e: StoreError, id: &str, expected: Option<i64>) -> ApiError {
    match e {
        StoreError::Conflict => ApiError::Conflict(format!(
            "Annotations of image '{id}' changed since version {}: fetch them again and retry",
            expected
                .map(|v| v.to_string())
                .unwrap_or_else(|| "read".into())
        )),
        other => other.into(),
    }
}

/// Removes every annotation of the image.
pub async fn delete(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Value> {
    caller.require(Role::Member, "Deleting annotations")?;
    let img = image(state, caller, id).await?;
    let saved = state
        .store
        .save_annotations(&img.id, &[], None)
        .await
        .map_err(|e| stale(e, &img.id, None))?;
    Ok(
        json!({"success": true, "image_id": img.id, "deleted_count": saved.previous_count, "version": saved.version}),
    )
}
