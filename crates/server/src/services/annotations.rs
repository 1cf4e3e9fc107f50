//! Annotations: one validated canonical list per image, replaced as a whole.

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::store::ImageRow;
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

/// Validates and stores a new list for the image.
pub async fn save(state: &AppState, caller: &Caller, id: &str, body: &Value) -> ApiResult<Value> {
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
    let (previous, new, status) = state.store.save_annotations(&img.id, &list).await?;
    Ok(json!({
        "success": true,
        "image_id": img.id,
        "previous_count": previous,
        "new_count": new,
        "status": status,
    }))
}

/// Removes every annotation of the image.
pub async fn delete(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Value> {
    caller.require(Role::Member, "Deleting annotations")?;
    let img = image(state, caller, id).await?;
    let (previous, _, _) = state.store.save_annotations(&img.id, &[]).await?;
    Ok(json!({"success": true, "image_id": img.id, "deleted_count": previous}))
}
