//! Annotations: one validated canonical list per image, replaced as a whole.

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::store::{ImageRow, StoreError};
use crate::AppState;
use pictograph_core::annotation::ValidateOptions;
use serde_json::{json, Value};

/// The image in the caller's organisation, or 404.
pub async fn image(state: &AppState, caller: &Caller, id: &str) -> ApiResult<ImageRow> {
    state
        .store
        .image_by_id(&caller.org_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Image '{id}' not found")))
}

/// The image at `folder`/`filename` of a dataset (named or by id) in the caller's
/// organisation, or 404.
pub async fn image_at(
    state: &AppState,
    caller: &Caller,
    dataset: &str,
    folder: &str,
    filename: &str,
) -> ApiResult<ImageRow> {
    let d = super::datasets::by_ref(state, caller, dataset).await?;
    let shown = if folder == "/" {
        filename.to_string()
    } else {
        format!("{}/{filename}", folder.trim_start_matches('/'))
    };
    state
        .store
        .image_by_path(&d.id, folder, filename)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!("Image '{shown}' not found in dataset '{}'", d.name))
        })
}

/// Which annotation shape a caller reads, and may write: [`Shape::Full`] reads them as
/// stored and may write the newer clients' extensions; [`Shape::Legacy`] reads what the
/// 1.6.3 models accept (see [`pictograph_core::annotation::to_legacy`]) and its writes are
/// validated strictly, as a caller that cannot read the extensions back must not store them.
pub use crate::render::Shape;

impl Shape {
    fn validation(self) -> ValidateOptions {
        match self {
            Shape::Full => ValidateOptions::EXTENDED,
            Shape::Legacy => ValidateOptions::STRICT,
        }
    }
}

/// The annotations of a found image, in the reader's shape. Each annotation's `metadata`
/// is included only when the reader asks for it (`with_metadata`): no official client's
/// models accept that key.
pub async fn get_of(
    state: &AppState,
    img: &ImageRow,
    shape: Shape,
    with_metadata: bool,
) -> ApiResult<Value> {
    let list = for_reader(
        state.store.annotations(&img.id).await?,
        shape,
        with_metadata,
    );
    Ok(json!({"image_id": img.id, "annotations": list, "version": img.version}))
}

/// A stored annotation list as a reader of `shape` gets it, with `metadata` only if asked.
pub fn for_reader(mut list: Value, shape: Shape, with_metadata: bool) -> Value {
    if let Value::Array(items) = &mut list {
        for a in items.iter_mut() {
            if shape == Shape::Legacy {
                *a = pictograph_core::annotation::to_legacy(a);
            }
            if !with_metadata {
                pictograph_core::annotation::without_metadata(a);
            }
        }
    }
    list
}

/// Validates and stores a new list for the image. With `expected_version` (from `If-Match` or
/// the body's `expected_version`), a save over a newer version is refused with 409 instead of
/// silently overwriting someone else's work. With `check_body_id`, a body `image_id` other
/// than the image's is refused (the id route); without it (the dataset/path routes) it is
/// ignored. `shape` is what the caller can read back: only [`Shape::Full`] callers may store
/// the extensions.
pub async fn save_to(
    state: &AppState,
    caller: &Caller,
    img: &ImageRow,
    body: &Value,
    if_match: Option<i64>,
    check_body_id: bool,
    shape: Shape,
) -> ApiResult<Value> {
    caller.require(Role::Member, "Saving annotations")?;
    let id = img.id.as_str();
    if let Some(other) = body
        .get("image_id")
        .and_then(Value::as_str)
        .filter(|_| check_body_id)
    {
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
    check_sizes(raw)?;
    let dataset = state
        .store
        .dataset_by_id(&caller.org_id, &img.dataset_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Image '{id}' not found")))?;
    let classes = dataset.class_names();
    let list = pictograph_core::annotation::validate_annotations_with(
        raw,
        Some(&classes),
        shape.validation(),
    )
    .map_err(|errors| ApiError::Fields {
        message: format!(
            "Invalid annotation payload: {}",
            errors.first().map(|e| e.msg.as_str()).unwrap_or("")
        ),
        errors,
    })?;
    let expected = match body.get("expected_version") {
        None | Some(Value::Null) => if_match,
        Some(v) => {
            let v = v.as_i64().ok_or_else(|| {
                ApiError::field(&["body", "expected_version"], "must be an integer")
            })?;
            // Two versions that disagree: neither is taken over the other.
            if if_match.is_some_and(|h| h != v) {
                return Err(ApiError::field(
                    &["body", "expected_version"],
                    "differs from the If-Match header: send one version",
                ));
            }
            Some(v)
        }
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

/// Most annotations one image may carry.
const MAX_ANNOTATIONS: usize = 10_000;
/// Most points one annotation may carry.
const MAX_POINTS: usize = 10_000;

/// Refuses lists and shapes too large to be real labels before validating them.
fn check_sizes(raw: &Value) -> ApiResult<()> {
    let Some(list) = raw.as_array() else {
        return Ok(());
    };
    if list.len() > MAX_ANNOTATIONS {
        return Err(ApiError::field(
            &["body", "annotations"],
            format!("at most {MAX_ANNOTATIONS} annotations per image"),
        ));
    }
    for (i, a) in list.iter().enumerate() {
        let rings = a.pointer("/polygon/paths").and_then(Value::as_array);
        let path = a.pointer("/polyline/path").and_then(Value::as_array);
        let shorthand = ["polygon", "polyline"]
            .iter()
            .filter_map(|k| a.get(*k).and_then(Value::as_array))
            .map(Vec::len)
            .sum::<usize>();
        let points = rings
            .map(|r| r.iter().filter_map(Value::as_array).map(Vec::len).sum())
            .unwrap_or(0)
            + path.map(Vec::len).unwrap_or(0)
            + shorthand;
        if points > MAX_POINTS {
            return Err(ApiError::Fields {
                message: format!("annotation {i} has {points} points; at most {MAX_POINTS}"),
                errors: vec![pictograph_core::annotation::FieldError {
                    loc: vec![json!("body"), json!("annotations"), json!(i)],
                    msg: format!("at most {MAX_POINTS} points per annotation, got {points}"),
                    kind: "value_error".into(),
                }],
            });
        }
    }
    Ok(())
}

fn stale(e: StoreError, id: &str, expected: Option<i64>) -> ApiError {
    match e {
        StoreError::Conflict => ApiError::Conflict(format!(
            "Annotations of image '{id}' changed since version {}: fetch them again and retry",
            expected
                .map(|v| v.to_string())
                .unwrap_or_else(|| "read".into())
        )),
        StoreError::NotFound => ApiError::NotFound(format!("Image '{id}' not found")),
        other => other.into(),
    }
}

/// Removes every annotation of the image.
pub async fn delete_of(state: &AppState, caller: &Caller, img: &ImageRow) -> ApiResult<Value> {
    caller.require(Role::Member, "Deleting annotations")?;
    let saved = state
        .store
        .save_annotations(&img.id, &[], None)
        .await
        .map_err(|e| stale(e, &img.id, None))?;
    Ok(
        json!({"success": true, "image_id": img.id, "deleted_count": saved.previous_count, "version": saved.version}),
    )
}
