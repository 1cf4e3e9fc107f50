//! Batch operations over many images of one dataset: each a handful of set-based statements.

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::store::{BatchOutcome, CopyMode, ImageUpdate};
use crate::AppState;
use pictograph_core::names::{self, Status};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Most ids one request may carry.
pub const MAX_IDS: usize = 100_000;

/// A batch request body (all operations; each reads what it needs).
#[derive(Debug, Deserialize)]
pub struct BatchRequest {
    /// Dataset name.
    pub dataset_name: String,
    /// Image ids.
    pub image_ids: Vec<String>,
    /// Target folder (1.6.3 name).
    pub target_folder_path: Option<String>,
    /// Target folder (newer name).
    pub target_directory_path: Option<String>,
    /// rename, skip or overwrite.
    pub duplicate_handling: Option<String>,
    /// Copy annotations and status too.
    #[serde(default)]
    pub copy_annotations: bool,
    /// Purge instead of archive.
    #[serde(default)]
    pub permanent: bool,
    /// Fields to set.
    pub updates: Option<Map<String, Value>>,
}

/// Which operation.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    /// Change folder.
    Move,
    /// Duplicate rows into a folder.
    Copy,
    /// Archive or purge.
    Delete,
    /// Set fields.
    Update,
}

fn parse_update(updates: Option<&Map<String, Value>>) -> ApiResult<ImageUpdate> {
    let Some(map) = updates else {
        return Err(ApiError::field(&["body", "updates"], "field required"));
    };
    let mut u = ImageUpdate::default();
    for (k, v) in map {
        if v.is_null() {
            continue;
        }
        let loc = ["body", "updates", k.as_str()];
        match k.as_str() {
            "status" => {
                let s = v.as_str().and_then(Status::parse).ok_or_else(|| {
                    ApiError::field(
                        &loc,
                        "status must be one of new, annotate, review, complete",
                    )
                })?;
                u.status = Some(s.as_str().to_string());
            }
            "display_name" => {
                let s = v
                    .as_str()
                    .ok_or_else(|| ApiError::field(&loc, "must be a string"))?;
                if s.len() > names::MAX_FILENAME {
                    return Err(ApiError::field(&loc, "must be at most 255 bytes"));
                }
                u.display_name = Some(s.to_string());
            }
            "is_archived" => {
                u.is_archived = Some(
                    v.as_bool()
                        .ok_or_else(|| ApiError::field(&loc, "must be a boolean"))?,
                );
            }
            _ => return Err(ApiError::field(&loc, format!("unknown field '{k}'"))),
        }
    }
    if u.status.is_none() && u.display_name.is_none() && u.is_archived.is_none() {
        return Err(ApiError::field(
            &["body", "updates"],
            "at least one of status, display_name, is_archived is required",
        ));
    }
    Ok(u)
}

/// Runs one batch operation; answers 404 when the dataset or every id is unknown.
pub async fn run(
    state: &AppState,
    caller: &Caller,
    op: Op,
    req: BatchRequest,
) -> ApiResult<BatchOutcome> {
    if req.image_ids.is_empty() {
        return Err(ApiError::field(&["body", "image_ids"], "must not be empty"));
    }
    if req.image_ids.len() > MAX_IDS {
        return Err(ApiError::field(
            &["body", "image_ids"],
            format!("at most {MAX_IDS} ids per request"),
        ));
    }
    let dataset = super::datasets::by_name(state, caller, &req.dataset_name).await?;
    let folder = || {
        let raw = req
            .target_directory_path
            .as_deref()
            .or(req.target_folder_path.as_deref())
            .unwrap_or("/");
        names::folder_path(raw).map_err(|e| ApiError::field(&["body", "target_folder_path"], e.0))
    };
    let store = &state.store;
    let ids = &req.image_ids;
    let out = match op {
        Op::Move => {
            caller.require(Role::Member, "Moving images")?;
            store.batch_move(&dataset.id, ids, &folder()?).await?
        }
        Op::Copy => {
            caller.require(Role::Member, "Copying images")?;
            let mode = match req.duplicate_handling.as_deref().unwrap_or("rename") {
                "rename" => CopyMode::Rename,
                "skip" => CopyMode::Skip,
                // Replacing deletes the replaced images for good, as a permanent delete does.
                "overwrite" => {
                    caller.require(
                        Role::Admin,
                        "Copying with duplicate_handling 'overwrite' (it permanently deletes \
                         the images it replaces)",
                    )?;
                    CopyMode::Overwrite
                }
                other => {
                    return Err(ApiError::field(
                        &["body", "duplicate_handling"],
                        format!("'{other}' is not one of rename, skip, overwrite"),
                    ))
                }
            };
            store
                .batch_copy(&dataset.id, ids, &folder()?, mode, req.copy_annotations)
                .await?
        }
        Op::Delete => {
            if req.permanent {
                caller.require(Role::Admin, "Permanent deletion")?;
            } else {
                caller.require(Role::Member, "Deleting images")?;
            }
            store.batch_delete(&dataset.id, ids, req.permanent).await?
        }
        Op::Update => {
            caller.require(Role::Member, "Updating images")?;
            let update = parse_update(req.updates.as_ref())?;
            store.batch_update(&dataset.id, ids, &update).await?
        }
    };
    if out.succeeded.is_empty()
        && out
            .failed
            .iter()
            .all(|(_, r)| r == crate::store::NOT_FOUND_REASON)
    {
        return Err(ApiError::NotFound(format!(
            "None of the image ids exist in dataset '{}'",
            dataset.name
        )));
    }
    let released = out.released_blobs.clone();
    if !released.is_empty() {
        super::maintenance::release(state, released).await;
    }
    Ok(out)
}
