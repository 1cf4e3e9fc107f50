//! Datasets and projects: lookup, create, update, delete.

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::store::{DatasetCounts, DatasetPatch, DatasetRow};
use crate::AppState;
use pictograph_core::names;
use serde::Deserialize;
use serde_json::{json, Value};

/// Annotation types a project may declare (`box` is an alias of `bbox`).
const ANNOTATION_TYPES: [&str; 5] = ["bbox", "box", "polygon", "polyline", "keypoint"];

/// Default colours handed to classes that come without one.
const PALETTE: [&str; 8] = [
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c",
];

/// A dataset by name in the caller's organisation, or 404.
pub async fn by_name(state: &AppState, caller: &Caller, name: &str) -> ApiResult<DatasetRow> {
    state
        .store
        .dataset_by_name(&caller.org_id, name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Dataset '{name}' not found")))
}

/// A dataset by id (first) or name, or 404.
pub async fn by_ref(state: &AppState, caller: &Caller, r: &str) -> ApiResult<DatasetRow> {
    if uuid::Uuid::parse_str(r).is_ok() {
        if let Some(d) = state.store.dataset_by_id(&caller.org_id, r).await? {
            return Ok(d);
        }
    }
    by_name(state, caller, r).await
}

/// What a found dataset counts of its images, for showing them; 404 when it went meanwhile.
pub async fn counts(state: &AppState, d: &DatasetRow) -> ApiResult<DatasetCounts> {
    state
        .store
        .dataset_counts(&d.id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Dataset '{}' not found", d.name)))
}

/// Body of a create.
#[derive(Debug, Deserialize)]
pub struct CreateProject {
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Annotation types.
    pub annotation_types: Option<Value>,
    /// Classes.
    pub classes: Option<Value>,
    /// Dataset card (newer clients); kept as the description when none is given.
    pub readme: Option<String>,
}

/// Body of an update; `new_name` or `name` renames.
#[derive(Debug, Deserialize)]
pub struct UpdateProject {
    /// New name (1.6.3 spelling).
    pub name: Option<String>,
    /// New name (newer spelling).
    pub new_name: Option<String>,
    /// Description; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
    /// Annotation types.
    pub annotation_types: Option<Value>,
    /// Classes (replaces the list, or with `classes_base` edits it).
    pub classes: Option<Value>,
    /// The class list `classes` was edited from (newer clients): the edit is applied to the
    /// list stored now, so classes added meanwhile by another writer survive.
    pub classes_base: Option<Value>,
    /// Dataset card (newer clients); kept as the description when none is given.
    pub readme: Option<String>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn check_name(raw: &str) -> ApiResult<String> {
    names::dataset_name(raw).map_err(|e| ApiError::field(&["body", "name"], e.0))
}

fn check_types(v: &Value) -> ApiResult<Value> {
    let list = v.as_array().ok_or_else(|| {
        ApiError::field(&["body", "annotation_types"], "must be a list of strings")
    })?;
    let mut out = Vec::new();
    for t in list {
        let s = t.as_str().filter(|s| ANNOTATION_TYPES.contains(s)).ok_or_else(|| {
            ApiError::field(
                &["body", "annotation_types"],
                format!("unknown annotation type {t}; allowed: bbox, box, polygon, polyline, keypoint"),
            )
        })?;
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(json!(out))
}

fn check_classes(v: &Value) -> ApiResult<Value> {
    let list = v
        .as_array()
        .ok_or_else(|| ApiError::field(&["body", "classes"], "must be a list of objects"))?;
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, c) in list.iter().enumerate() {
        let obj = match c {
            Value::String(s) => json!({"name": s}),
            Value::Object(_) => c.clone(),
            _ => {
                return Err(ApiError::field(
                    &["body", "classes"],
                    format!("class {i} must be an object"),
                ))
            }
        };
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                ApiError::field(&["body", "classes"], format!("class {i} needs a name"))
            })?;
        if name.chars().count() > names::MAX_CLASS_NAME {
            return Err(ApiError::field(
                &["body", "classes"],
                format!(
                    "class name '{name}' is longer than {} characters",
                    names::MAX_CLASS_NAME
                ),
            ));
        }
        if !seen.insert(name.to_string()) {
            return Err(ApiError::field(
                &["body", "classes"],
                format!("class '{name}' appears twice"),
            ));
        }
        let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
        for k in ["type", "color"] {
            if obj.get(k).is_some_and(|v| !v.is_null() && !v.is_string()) {
                return Err(ApiError::field(
                    &["body", "classes"],
                    format!("class '{name}': {k} must be a string"),
                ));
            }
        }
        out.push(json!({
            "name": name,
            "type": text("type"),
            "color": text("color").unwrap_or_else(|| PALETTE[i % PALETTE.len()].to_string()),
        }));
    }
    Ok(Value::Array(out))
}

/// Creates a project; member+.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    body: CreateProject,
) -> ApiResult<DatasetRow> {
    caller.require(Role::Member, "Creating a project")?;
    let name = check_name(&body.name)?;
    let types = match &body.annotation_types {
        Some(v) if !v.is_null() => check_types(v)?,
        _ => json!(["bbox"]),
    };
    let description = body.description.as_deref().or(body.readme.as_deref());
    let classes = match &body.classes {
        Some(v) if !v.is_null() => check_classes(v)?,
        _ => json!([]),
    };
    state
        .store
        .create_dataset(&caller.org_id, &name, description, &classes, &types)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict => {
                ApiError::Conflict(format!("Project '{name}' already exists"))
            }
            other => other.into(),
        })
}

/// Updates a project; member+.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    name: &str,
    body: UpdateProject,
) -> ApiResult<DatasetRow> {
    caller.require(Role::Member, "Updating a project")?;
    let current = by_name(state, caller, name).await?;
    update_dataset(state, caller, current, body).await
}

/// Applies an update to a found dataset; member+.
pub async fn update_dataset(
    state: &AppState,
    caller: &Caller,
    current: DatasetRow,
    body: UpdateProject,
) -> ApiResult<DatasetRow> {
    caller.require(Role::Member, "Updating a dataset")?;
    let name = current.name.clone();
    let new_name = body
        .new_name
        .as_deref()
        .or(body.name.as_deref())
        .map(check_name)
        .transpose()?;
    let patch = DatasetPatch {
        name: new_name.clone().filter(|n| n != &current.name),
        description: body.description.or_else(|| body.readme.clone().map(Some)),
        classes: match (
            body.classes.as_ref().filter(|v| !v.is_null()),
            body.classes_base.as_ref().filter(|v| !v.is_null()),
        ) {
            (None, Some(_)) => {
                return Err(ApiError::field(
                    &["body", "classes_base"],
                    "classes_base is the list classes edits: send classes too",
                ))
            }
            (Some(new), None) => Some(check_classes(new)?),
            (Some(new), Some(base)) => Some(merge_classes(&current.classes, base, new)?),
            (None, None) => None,
        },
        annotation_types: body
            .annotation_types
            .as_ref()
            .filter(|v| !v.is_null())
            .map(check_types)
            .transpose()?,
    };
    state
        .store
        .update_dataset(&caller.org_id, &current.id, &patch)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict => ApiError::Conflict(format!(
                "Project '{}' already exists",
                new_name.unwrap_or_default()
            )),
            other => other.into(),
        })?
        .ok_or_else(|| ApiError::NotFound(format!("Dataset '{name}' not found")))
}

/// The class list after applying the edit `base` → `new` to the list stored now: classes
/// of `base` missing from `new` are removed, classes of `new` that are not in `base` or
/// differ from it are added or replaced, and every other stored class is kept as it is.
fn merge_classes(stored: &Value, base: &Value, new: &Value) -> ApiResult<Value> {
    let key = |c: &Value| match c {
        Value::String(s) => Some(s.trim().to_string()),
        other => other
            .get("name")
            .and_then(Value::as_str)
            .map(|n| n.trim().to_string()),
    };
    let as_list = |v: &Value, field: &str| -> ApiResult<Vec<Value>> {
        v.as_array()
            .cloned()
            .ok_or_else(|| ApiError::field(&["body", field], "must be a list of objects"))
    };
    let base = as_list(base, "classes_base")?;
    let new = as_list(new, "classes")?;
    let mut out: Vec<Value> = stored.as_array().cloned().unwrap_or_default();
    for b in &base {
        if let Some(name) = key(b) {
            if !new.iter().any(|n| key(n).as_deref() == Some(name.as_str())) {
                out.retain(|c| key(c).as_deref() != Some(name.as_str()));
            }
        }
    }
    for n in &new {
        let Some(name) = key(n) else {
            // Let the normal checks report the nameless class.
            out.push(n.clone());
            continue;
        };
        let unchanged = base
            .iter()
            .any(|b| key(b).as_deref() == Some(name.as_str()) && b == n);
        if unchanged {
            continue;
        }
        match out
            .iter_mut()
            .find(|c| key(c).as_deref() == Some(name.as_str()))
        {
            Some(slot) => *slot = n.clone(),
            None => out.push(n.clone()),
        }
    }
    check_classes(&Value::Array(out))
}

/// Deletes a project with its images and bytes; admin+.
pub async fn delete(state: &AppState, caller: &Caller, name: &str) -> ApiResult<Value> {
    let d = by_name(state, caller, name).await?;
    delete_dataset(state, caller, d).await
}

/// Deletes a found dataset with its images and bytes; admin+.
///
/// The dataset is hidden first, in one short transaction: from then on it is gone for every
/// key and its name is free. Its images and bytes are then deleted a chunk at a time by a
/// task of their own, which the answer waits for but a client that hangs up does not stop;
/// should the server stop before it ends, the upkeep sweep finishes it.
pub async fn delete_dataset(state: &AppState, caller: &Caller, d: DatasetRow) -> ApiResult<Value> {
    caller.require(Role::Admin, "Deleting a project")?;
    let images = counts(state, &d).await?;
    let folders = state.store.count_folders(&d.id).await?;
    let hidden = state
        .store
        .hide_dataset(&caller.org_id, &d.id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Project '{}' not found", d.name)))?;
    let deletion = tokio::spawn({
        let (state, id) = (state.clone(), d.id.clone());
        async move { super::maintenance::finish_deletion(&state, &id, hidden).await }
    });
    let bytes = match deletion
        .await
        .map_err(anyhow::Error::from)
        .and_then(|done| done)
    {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(dataset = %d.id, error = %e, "deleting a hidden dataset's images stopped early; the upkeep sweep goes on with it");
            Default::default()
        }
    };
    Ok(json!({
        "id": d.id,
        "name": d.name,
        "images_deleted": images.image_count + images.archived_images,
        "deleted": true,
        "folders_deleted": folders,
        "directories_deleted": folders,
        "gcs_blobs_deleted": bytes.freed,
        "gcs_blobs_retained_for_forks": 0,
        "blobs_deleted": bytes.freed,
        "blobs_freed_after_grace": bytes.freed_after_grace,
    }))
}
