//! `/datasets/…`: list, get by name or id, the download listing, and (newer clients)
//! create, update and delete addressed by name or id.

use super::extract::{Json as Body, Path, Query};
use super::paths::CallerShape;
use super::BaseUrl;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::render::Shape;
use crate::services::datasets::{self as service, by_name, by_ref, CreateProject, UpdateProject};
use crate::store::{DatasetCounts, DatasetRow};
use crate::{render, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use pictograph_core::names::Status;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashSet;

/// Paging of a list.
#[derive(Debug, Deserialize)]
pub struct Page {
    limit: Option<i64>,
    offset: Option<i64>,
    /// List archived datasets instead (newer clients); this server archives none.
    #[serde(default)]
    archived: bool,
}

/// Reads limit/offset, rejecting values outside 1..=cap rather than silently capping them.
pub fn page(
    limit: Option<i64>,
    offset: Option<i64>,
    default: i64,
    cap: i64,
) -> ApiResult<(i64, i64)> {
    let limit = limit.unwrap_or(default);
    if !(1..=cap).contains(&limit) {
        return Err(ApiError::field(
            &["query", "limit"],
            format!("limit must be between 1 and {cap}"),
        ));
    }
    let offset = offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::field(
            &["query", "offset"],
            "offset must not be negative",
        ));
    }
    Ok((limit, offset))
}

/// Lists the organisation's datasets.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    CallerShape(shape): CallerShape,
    Query(p): Query<Page>,
) -> ApiResult<Json<Value>> {
    let (limit, offset) = page(p.limit, p.offset, 100, 1000)?;
    let (rows, total) = if p.archived {
        (Vec::new(), 0)
    } else {
        state
            .store
            .list_datasets(&caller.org_id, limit, offset)
            .await?
    };
    let items: Vec<Value> = rows
        .iter()
        .map(|(d, c)| render::dataset_for(d, c, None, shape))
        .collect();
    Ok(Json(json!({
        "datasets": items, "data": items, "total": total, "limit": limit, "offset": offset,
        "pagination": {"limit": limit, "offset": offset, "total": total, "has_more": offset + (items.len() as i64) < total},
    })))
}

/// Options of a single-dataset read.
#[derive(Debug, Deserialize)]
pub struct GetOptions {
    include_images: Option<bool>,
    images_limit: Option<i64>,
    images_offset: Option<i64>,
}

async fn answer(
    state: &AppState,
    base: &BaseUrl,
    d: DatasetRow,
    opts: GetOptions,
    shape: Shape,
) -> ApiResult<render::SameUnder> {
    let images = if opts.include_images.unwrap_or(false) {
        let (limit, offset) =
            page(opts.images_limit, opts.images_offset, 1000, 10_000).map_err(|_| {
                ApiError::field(
                    &["query", "images_limit"],
                    "images_limit must be between 1 and 10000 and images_offset not negative",
                )
            })?;
        let links = base.links(state);
        let rows = state.store.list_images(&d.id, None, limit, offset).await?;
        Some(super::images::render_images(state, &rows, &links, shape).await?)
    } else {
        None
    };
    let counts = service::counts(state, &d).await?;
    let v = render::dataset_for(&d, &counts, images, shape);
    Ok(render::SameUnder {
        keys: &["data", "dataset", "project"],
        value: v,
    })
}

/// `GET /datasets/by-name/{name}`.
pub async fn get_by_name(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    base: BaseUrl,
    CallerShape(shape): CallerShape,
    Path(name): Path<String>,
    Query(opts): Query<GetOptions>,
) -> ApiResult<render::SameUnder> {
    let d = by_name(&state, &caller, &name).await?;
    answer(&state, &base, d, opts, shape).await
}

/// `GET /datasets/{id or name}`.
pub async fn get_by_ref(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    base: BaseUrl,
    CallerShape(shape): CallerShape,
    Path(r): Path<String>,
    Query(opts): Query<GetOptions>,
) -> ApiResult<render::SameUnder> {
    let d = by_ref(&state, &caller, &r).await?;
    answer(&state, &base, d, opts, shape).await
}

/// Options of the download listing.
#[derive(Debug, Deserialize)]
pub struct DownloadOptions {
    mode: Option<String>,
    status_filter: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
    /// An image id: the page starts right after it (keyset paging; echoed as `after`).
    after: Option<String>,
    /// Embed each image's annotation list (and its version) in the listing, saving one
    /// request per image; `include=metadata` adds the annotations' metadata.
    include_annotations: Option<bool>,
    include: Option<String>,
}

/// A file name for every item that no other item of the listing has: repeated names get
/// their folder folded in front (`/stop/night` + `a.jpg` → `stop_night_a.jpg`), then a number.
fn unique_name(taken: &mut HashSet<String>, folder: &str, filename: &str) -> String {
    if taken.insert(filename.to_string()) {
        return filename.to_string();
    }
    let prefix = folder.trim_matches('/').replace('/', "_");
    let base = if prefix.is_empty() {
        filename.to_string()
    } else {
        format!("{prefix}_{filename}")
    };
    let mut candidate = base.clone();
    let mut n = 2;
    while !taken.insert(candidate.clone()) {
        candidate = pictograph_core::names::numbered(&base, n);
        n += 1;
    }
    candidate
}

async fn listing(
    state: &AppState,
    base: &BaseUrl,
    d: DatasetRow,
    o: DownloadOptions,
    shape: Shape,
) -> ApiResult<Response> {
    let with_metadata = super::annotations::include_names_metadata(o.include.as_deref())?;
    let mode = o.mode.as_deref().unwrap_or("full");
    if !["full", "images_only", "annotations_only"].contains(&mode) {
        return Err(ApiError::field(
            &["query", "mode"],
            "mode must be full, images_only or annotations_only",
        ));
    }
    let status = match o.status_filter.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            ApiError::field(
                &["query", "status_filter"],
                "status_filter must be one of new, annotate, review, complete",
            )
        })?),
        None => None,
    };
    let (limit, offset) = page(o.limit, o.offset, 10_000, 10_000)?;
    let after = super::images::keyset_anchor(o.after.as_deref(), offset)?;
    let filter = crate::store::ImageFilter {
        status: status.map(|s| s.as_str().to_string()),
        ..Default::default()
    };
    let read = async {
        match after {
            Some(after) => {
                super::images::rows_after(state, &d.id, &filter, after, limit, None).await
            }
            None => Ok(state
                .store
                .images_page(&d.id, &filter, limit, offset)
                .await?),
        }
    };
    // The bytes of these images are what a client fetches next, unless it wants only the
    // annotations.
    let rows = if mode == "annotations_only" {
        read.await?
    } else {
        state.store.keeping_files(read).await?
    };
    let links = base.links(state);
    let mut taken = HashSet::new();
    let mut lists = if o.include_annotations.unwrap_or(false) && mode != "images_only" {
        let ids = super::images::annotated_ids(&rows);
        Some(state.store.annotation_texts(&ids).await?)
    } else {
        None
    };
    let mut listed = Vec::with_capacity(rows.len());
    for i in &rows {
        let (annotations, version) = match lists.as_mut() {
            Some(lists) => (
                Some(StoredList {
                    text: lists.remove(&i.id),
                    shape,
                    with_metadata,
                }),
                Some(i.version),
            ),
            None => (None, None),
        };
        listed.push(ListingItem {
            annotation_count: i.annotation_count,
            annotation_url: (mode != "images_only").then(|| links.annotation_url(&i.id)),
            annotations,
            file_size: i.file_size,
            filename: unique_name(&mut taken, &i.folder, &i.filename),
            id: &i.id,
            image_url: (mode != "annotations_only").then(|| links.image_url(&i.id)),
            mime_type: &i.mime_type,
            original_filename: &i.filename,
            status: &i.status,
            version,
            virtual_folder_path: &i.folder,
        });
    }
    // A page holds up to 10,000 items and both client generations read it under a different
    // key (`data.items` and `items`): the items are serialised once, straight from the rows,
    // and that one buffer is sent under both keys.
    let total = listed.len();
    let items = serde_json::to_vec(&listed).map_err(|e| ApiError::Internal(e.into()))?;
    let items = Bytes::from(items);
    drop(listed);
    drop(rows);
    let mut body = render::JsonChunks::default();
    body.text("{\"data\":{\"id\":");
    body.value(d.id.as_str());
    body.text(",\"items\":");
    body.shared(&items);
    body.text(",\"name\":");
    body.value(d.name.as_str());
    body.text("},\"dataset_id\":");
    body.value(d.id.as_str());
    body.text(",\"dataset_name\":");
    body.value(d.name.as_str());
    body.text(",\"items\":");
    body.shared(&items);
    body.text(",\"mode\":");
    body.value(mode);
    body.text(",\"total\":");
    body.value(total);
    if let Some(after) = after {
        // Only when asked for, so that a client can tell this server paged from it.
        body.text(",\"after\":");
        body.value(after);
    }
    body.text("}");
    Ok(body.into_response())
}

/// One image of the download listing (fields in the order a JSON object of them prints).
#[derive(Serialize)]
struct ListingItem<'a> {
    annotation_count: i64,
    annotation_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<StoredList>,
    file_size: i64,
    filename: String,
    id: &'a str,
    image_url: Option<String>,
    mime_type: &'a str,
    original_filename: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<i64>,
    virtual_folder_path: &'a str,
}

/// An image's stored annotation list (none stored: an empty one), parsed and shaped for its
/// reader only while it is written out: a page of 10,000 labelled images holds their lists as
/// text and one parsed list at a time, not 10,000 parsed lists (a parsed list takes many
/// times the memory of its text).
struct StoredList {
    text: Option<String>,
    shape: Shape,
    with_metadata: bool,
}

impl Serialize for StoredList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let list = match &self.text {
            Some(text) => serde_json::from_str(text).map_err(serde::ser::Error::custom)?,
            None => Value::Array(Vec::new()),
        };
        crate::services::annotations::for_reader(list, self.shape, self.with_metadata).serialize(s)
    }
}

/// `GET /datasets/by-name/{name}/download`.
pub async fn download_by_name(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    CallerShape(shape): CallerShape,
    base: BaseUrl,
    Path(name): Path<String>,
    Query(o): Query<DownloadOptions>,
) -> ApiResult<Response> {
    let d = by_name(&state, &caller, &name).await?;
    listing(&state, &base, d, o, shape).await
}

/// `GET /datasets/{id or name}/download`.
pub async fn download_by_ref(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    CallerShape(shape): CallerShape,
    base: BaseUrl,
    Path(r): Path<String>,
    Query(o): Query<DownloadOptions>,
) -> ApiResult<Response> {
    let d = by_ref(&state, &caller, &r).await?;
    listing(&state, &base, d, o, shape).await
}

fn one(value: Value) -> render::SameUnder {
    render::SameUnder {
        keys: &["data", "dataset", "project"],
        value,
    }
}

/// `POST /datasets/`: creates a dataset (`{name, readme?, description?, annotation_types?,
/// classes?}`); member+.
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    CallerShape(shape): CallerShape,
    Body(body): Body<CreateProject>,
) -> ApiResult<(StatusCode, render::SameUnder)> {
    let d = service::create(&state, &caller, body).await?;
    // A dataset just created counts nothing.
    let counts = DatasetCounts::default();
    Ok((
        StatusCode::CREATED,
        one(render::dataset_for(&d, &counts, None, shape)),
    ))
}

/// `PATCH /datasets/{id or name}`: renames (`new_name` or `name`) and updates; member+.
pub async fn update_by_ref(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    CallerShape(shape): CallerShape,
    Path(r): Path<String>,
    Body(body): Body<UpdateProject>,
) -> ApiResult<render::SameUnder> {
    caller.require(crate::auth::Role::Member, "Updating a dataset")?;
    let current = by_ref(&state, &caller, &r).await?;
    let d = service::update_dataset(&state, &caller, current, body).await?;
    let counts = service::counts(&state, &d).await?;
    Ok(one(render::dataset_for(&d, &counts, None, shape)))
}

/// `DELETE /datasets/{id or name}`: deletes the dataset, its images and bytes; admin+.
pub async fn delete_by_ref(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
) -> ApiResult<Json<Value>> {
    let d = by_ref(&state, &caller, &r).await?;
    let summary = service::delete_dataset(&state, &caller, d).await?;
    Ok(Json(json!({"deleted": summary, "data": summary})))
}
