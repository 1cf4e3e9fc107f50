//! `/images/…`: upload URL, register (one or in bulk), listing, and one image's metadata,
//! bytes and delete, addressed by id (`/images/{id}`) or by dataset and path
//! (`/images/{dataset}/{dir/…/filename}`).

use super::extract::Query;
use super::paths::{self, CallerShape};
use super::BaseUrl;
use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::render::Shape;
use crate::services::uploads::{self, UploadRequest};
use crate::store::{ImageFile, ImageRow};
use crate::{render, AppState};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Uri};
use axum::response::Response;
use axum::{Extension, Json};
use pictograph_core::form::{self, Fields, RegisterFields, UploadFields};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Fields of a request as text, from a form or a JSON object (null → empty).
fn fields(headers: &HeaderMap, body: &Bytes) -> ApiResult<Fields> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    form::fields(ct, body).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// The service's request from the fields; `loc` locates a missing file name.
fn upload_request(u: UploadFields, loc: &[&str]) -> ApiResult<UploadRequest> {
    Ok(UploadRequest {
        dataset_id: u.dataset_id,
        dataset: u.dataset,
        filename: u
            .filename
            .ok_or_else(|| ApiError::field(loc, "field required"))?,
        folder: u.folder,
        content_type: u.content_type,
    })
}

/// `POST /images/upload-url`.
pub async fn upload_url(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    base: BaseUrl,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let f = fields(&headers, &body)?;
    let req = upload_request(UploadFields::single(&f), &["body", "filename"])?;
    Ok(Json(
        uploads::upload_url(&state, &caller, &base.links(&state), req).await?,
    ))
}

/// `POST /images/register` (form from 1.6.3, JSON from newer clients).
pub async fn register(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    base: BaseUrl,
    CallerShape(shape): CallerShape,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(axum::http::StatusCode, Json<Value>)> {
    let f = RegisterFields::parse(&fields(&headers, &body)?);
    let img = uploads::register(&state, &caller, &f).await?;
    let v = render_image(&state, &img, &base.links(&state), shape).await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(json!({"success": true, "image_id": img.id, "image": v, "data": v})),
    ))
}

/// The stored annotation lists of the annotated `rows`, by image id; loaded only for
/// [`Shape::Full`], whose `min_confidence` reads them.
async fn annotation_lists_for(
    state: &AppState,
    rows: &[ImageRow],
    shape: Shape,
) -> ApiResult<HashMap<String, Value>> {
    if shape != Shape::Full {
        return Ok(HashMap::new());
    }
    Ok(state.store.annotation_lists(&annotated_ids(rows)).await?)
}

/// The ids of the images among `rows` that have annotations (the only ones with a stored
/// list).
pub(super) fn annotated_ids(rows: &[ImageRow]) -> Vec<String> {
    rows.iter()
        .filter(|i| i.annotation_count > 0)
        .map(|i| i.id.clone())
        .collect()
}

/// Renders images for a caller.
pub(super) async fn render_images(
    state: &AppState,
    rows: &[ImageRow],
    links: &render::Links<'_>,
    shape: Shape,
) -> ApiResult<Vec<Value>> {
    let lists = annotation_lists_for(state, rows, shape).await?;
    Ok(rows
        .iter()
        .map(|i| render::image_for(i, links, shape, lists.get(&i.id)))
        .collect())
}

async fn render_image(
    state: &AppState,
    img: &ImageRow,
    links: &render::Links<'_>,
    shape: Shape,
) -> ApiResult<Value> {
    let mut list = render_images(state, std::slice::from_ref(img), links, shape).await?;
    Ok(list.pop().unwrap_or(Value::Null))
}

/// One page of the images whose lowest annotation confidence is below `threshold`, and how
/// many there are. That lowest value lives in the annotation lists, so the dataset is walked
/// in keyset chunks: time grows with the dataset, memory only with the page.
async fn below_confidence(
    state: &AppState,
    dataset_id: &str,
    filter: &crate::store::ImageFilter,
    threshold: f64,
    limit: i64,
    offset: i64,
) -> ApiResult<(Vec<ImageRow>, i64)> {
    const CHUNK: i64 = 2_000;
    let mut page = Vec::new();
    let mut total = 0i64;
    let mut after: Option<(String, String)> = None;
    // How many images the walk goes through, which decides how a folder's are read.
    let matching = match filter.narrowing_folder() {
        Some(_) => Some(state.store.count_images(dataset_id, filter).await?),
        None => None,
    };
    loop {
        let chunk = state
            .store
            .scan_images(
                dataset_id,
                filter,
                after.as_ref().map(|(c, i)| (c.as_str(), i.as_str())),
                CHUNK,
                matching,
            )
            .await?;
        let Some(last) = chunk.last() else { break };
        after = Some((last.created_at.clone(), last.id.clone()));
        let lists = state.store.annotation_lists(&annotated_ids(&chunk)).await?;
        let full = chunk.len() as i64 == CHUNK;
        for image in chunk {
            let below = lists
                .get(&image.id)
                .and_then(Value::as_array)
                .and_then(|l| pictograph_core::annotation::min_confidence(l))
                .is_some_and(|m| m < threshold);
            if below {
                if total >= offset && (page.len() as i64) < limit {
                    page.push(image);
                }
                total += 1;
            }
        }
        if !full {
            break;
        }
    }
    Ok((page, total))
}

/// The image `after` names, which must be one of the dataset's (422 otherwise).
async fn anchor(state: &AppState, dataset_id: &str, after: &str) -> ApiResult<ImageRow> {
    state
        .store
        .image_row(after)
        .await?
        .filter(|i| i.dataset_id == dataset_id)
        .ok_or_else(|| ApiError::field(&["query", "after"], "no image with this id in the dataset"))
}

/// The image id a listing pages from (`after`, when given and not empty); 422 when it comes
/// with an offset other than 0, as the two ways of paging do not mix.
pub(super) fn keyset_anchor(after: Option<&str>, offset: i64) -> ApiResult<Option<&str>> {
    let after = after.filter(|s| !s.is_empty());
    if after.is_some() && offset != 0 {
        return Err(ApiError::field(
            &["query", "offset"],
            "offset must be 0 when after is given",
        ));
    }
    Ok(after)
}

/// Up to `limit` images matching `filter` that come right after the image `after` in listing
/// order (keyset paging: the same cost per page wherever it is); 422 when `after` is not an
/// image of the dataset. `matching` is how many images the filter selects, when known.
pub(super) async fn rows_after(
    state: &AppState,
    dataset_id: &str,
    filter: &crate::store::ImageFilter,
    after: &str,
    limit: i64,
    matching: Option<i64>,
) -> ApiResult<Vec<ImageRow>> {
    let from = anchor(state, dataset_id, after).await?;
    Ok(state
        .store
        .scan_images(
            dataset_id,
            filter,
            Some((from.created_at.as_str(), from.id.as_str())),
            limit,
            matching,
        )
        .await?)
}

/// The page of a listing that starts right after the image `after` (keyset paging), the
/// total of the filter, and whether more follow.
async fn keyset_page(
    state: &AppState,
    dataset_id: &str,
    filter: &crate::store::ImageFilter,
    after: &str,
    limit: i64,
) -> ApiResult<(Vec<ImageRow>, i64, bool)> {
    let from = anchor(state, dataset_id, after).await?;
    // One more than the page, to know whether another follows.
    let (mut rows, total) = state
        .store
        .scan_images_counted(
            dataset_id,
            filter,
            (from.created_at.as_str(), from.id.as_str()),
            limit + 1,
        )
        .await?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, total, has_more))
}

/// `GET /images/{…}`: with one segment the bytes of the image with that id (1.6.3);
/// `{id}/metadata` its metadata; `{dataset}/{dir/…/filename}` the bytes of the image at
/// that path, and with `/metadata` appended its metadata.
pub async fn get_any(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    base: BaseUrl,
    CallerShape(shape): CallerShape,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    use axum::response::IntoResponse;
    let segs = paths::segments(&uri, "images")?;
    let metadata_of = match segs.as_slice() {
        [_, last] if last == "metadata" => Some(&segs[..1]),
        [_, _, .., last] if last == "metadata" => Some(&segs[..segs.len() - 1]),
        _ => None,
    };
    if let Some(target) = metadata_of {
        let img = paths::image(&state, &caller, target).await?;
        let lists = annotation_lists_for(&state, std::slice::from_ref(&img), shape).await?;
        let links = base.links(&state);
        return Ok(render::SameUnder {
            keys: &["data", "image"],
            value: render::image_json(&img, &links, shape, lists.get(&img.id)),
        }
        .into_response());
    }
    let img = paths::image(&state, &caller, &segs).await?;
    super::files::serve(&state, &ImageFile::of(&img), &headers).await
}

/// Options of a delete.
#[derive(Debug, Deserialize)]
pub struct DeleteOptions {
    #[serde(default)]
    permanent: bool,
}

/// `DELETE /images/{id}` or `/images/{dataset}/{dir/…/filename}`: archive, or purge with
/// `permanent=true` (member+).
pub async fn delete_any(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    Query(o): Query<DeleteOptions>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Member, "Deleting images")?;
    let segs = paths::segments(&uri, "images")?;
    let img = paths::image(&state, &caller, &segs).await?;
    if o.permanent {
        state.store.delete_image(&img.id).await?;
        crate::services::maintenance::release(&state, vec![img.blob_hash.clone()]).await;
    } else {
        state.store.archive_image(&img.id).await?;
    }
    let summary = json!({
        "success": true, "image_id": img.id, "permanent": o.permanent,
        "operation": if o.permanent { "deleted" } else { "archived" },
    });
    Ok(Json(json!({
        "success": true, "image_id": img.id, "permanent": o.permanent,
        "operation": summary["operation"], "data": summary,
    })))
}

/// A bulk request: the dataset and one object per file.
#[derive(Debug, Deserialize)]
pub struct BulkBody {
    dataset: Option<String>,
    dataset_id: Option<String>,
    #[serde(default)]
    images: Vec<Map<String, Value>>,
}

impl BulkBody {
    fn dataset(&self) -> ApiResult<String> {
        self.dataset
            .as_deref()
            .or(self.dataset_id.as_deref())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| ApiError::field(&["body", "dataset"], "field required"))
    }
}

/// `POST /images/bulk-upload-url`: signed URLs for many files, in request order.
pub async fn bulk_upload_url(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    base: BaseUrl,
    super::extract::Json(body): super::extract::Json<BulkBody>,
) -> ApiResult<Json<Value>> {
    let dataset = body.dataset()?;
    let mut items = Vec::with_capacity(body.images.len());
    for (i, obj) in body.images.iter().enumerate() {
        let index = i.to_string();
        let loc = ["body", "images", index.as_str(), "filename"];
        items.push(upload_request(
            UploadFields::bulk_item(&form::text_fields(obj)),
            &loc,
        )?);
    }
    Ok(Json(
        uploads::bulk_upload_url(&state, &caller, &base.links(&state), &dataset, items).await?,
    ))
}

/// `POST /images/bulk-register`: registers many uploaded files; a file that cannot be
/// registered (its name taken meanwhile, its bytes missing, …) is reported in `failed` and
/// the others still are.
pub async fn bulk_register(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    base: BaseUrl,
    CallerShape(shape): CallerShape,
    super::extract::Json(body): super::extract::Json<BulkBody>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Member, "Uploading")?;
    let dataset = body.dataset()?;
    if body.images.is_empty() || body.images.len() > uploads::MAX_BULK {
        return Err(ApiError::field(
            &["body", "images"],
            format!("between 1 and {} images per request", uploads::MAX_BULK),
        ));
    }
    let d = crate::services::datasets::by_ref(&state, &caller, &dataset).await?;
    let links = base.links(&state);
    let mut succeeded = Vec::new();
    let mut failed = Vec::new();
    let fields: Vec<_> = body
        .images
        .iter()
        .map(|obj| {
            let mut f = RegisterFields::parse(&form::text_fields(obj));
            f.dataset_id = Some(d.id.clone());
            f.dataset = None;
            f
        })
        .collect();
    let outcomes = uploads::register_many(&state, &caller, &fields).await?;
    for (obj, outcome) in body.images.iter().zip(outcomes) {
        match outcome {
            Ok(img) => succeeded.push(render::image_for(&img, &links, shape, None)),
            Err(ApiError::Internal(e)) => return Err(ApiError::Internal(e)),
            Err(e) => {
                let mut failure = json!({
                    "filename": obj.get("filename").cloned().unwrap_or(Value::Null),
                    "directory_path": obj
                        .get("directory_path")
                        .or_else(|| obj.get("folder_path"))
                        .cloned()
                        .unwrap_or_else(|| json!("/")),
                    "error": e.to_string(),
                    "code": e.code().as_str(),
                });
                // A file named by its upload alone is told apart by that id.
                if let Some(upload) = obj.get("upload_id") {
                    failure["upload_id"] = upload.clone();
                }
                failed.push(failure);
            }
        }
    }
    let data = json!({
        "dataset_id": d.id, "processed": succeeded.len(),
        "succeeded": succeeded, "failed": failed,
    });
    Ok(Json(json!({
        "succeeded": data["succeeded"], "failed": data["failed"], "data": data,
    })))
}

/// Query of an image listing.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    dataset: Option<String>,
    dataset_id: Option<String>,
    dataset_name: Option<String>,
    status: Option<String>,
    folder_path: Option<String>,
    directory_path: Option<String>,
    #[serde(default)]
    recursive: bool,
    #[serde(default)]
    include_archived: bool,
    filename: Option<String>,
    split: Option<String>,
    min_confidence_lt: Option<f64>,
    limit: Option<i64>,
    offset: Option<i64>,
    /// An image id: the page starts right after it in listing order (keyset paging, the
    /// same cost at any depth; `offset` must then be 0).
    after: Option<String>,
}

/// `GET /images/?dataset=…`: one page of a dataset's images, filtered by status, folder,
/// file name, split and lowest annotation confidence.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    base: BaseUrl,
    CallerShape(shape): CallerShape,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    use axum::response::IntoResponse;
    let reference = q
        .dataset
        .as_deref()
        .or(q.dataset_id.as_deref())
        .or(q.dataset_name.as_deref())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::field(&["query", "dataset"], "field required"))?;
    let d = crate::services::datasets::by_ref(&state, &caller, reference).await?;
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(
            pictograph_core::names::Status::parse(s)
                .ok_or_else(|| {
                    ApiError::field(
                        &["query", "status"],
                        "status must be one of new, annotate, review, complete",
                    )
                })?
                .as_str()
                .to_string(),
        ),
        None => None,
    };
    let folder = q
        .folder_path
        .as_deref()
        .or(q.directory_path.as_deref())
        .map(pictograph_core::names::folder_path)
        .transpose()
        .map_err(|e| ApiError::field(&["query", "folder_path"], e.0))?;
    let (limit, offset) = super::datasets::page(q.limit, q.offset, 100, 10_000)?;
    if let Some(split) = q.split.as_deref().filter(|s| !s.is_empty()) {
        if !["train", "val", "test"].contains(&split) {
            return Err(ApiError::field(
                &["query", "split"],
                "split must be one of train, val, test",
            ));
        }
    }
    if q.min_confidence_lt
        .is_some_and(|t| !(0.0..=1.0).contains(&t))
    {
        return Err(ApiError::field(
            &["query", "min_confidence_lt"],
            "min_confidence_lt must be between 0 and 1",
        ));
    }
    let after = keyset_anchor(q.after.as_deref(), offset)?;
    if after.is_some() && q.min_confidence_lt.is_some() {
        return Err(ApiError::field(
            &["query", "after"],
            "after cannot be combined with min_confidence_lt",
        ));
    }
    let filter = crate::store::ImageFilter {
        status,
        folder,
        recursive: q.recursive,
        include_archived: q.include_archived,
        filename: q.filename.clone().filter(|f| !f.is_empty()),
    };
    let (rows, total, has_more) = if q.split.as_deref().is_some_and(|s| !s.is_empty()) {
        // No image of this server is assigned to a split; `after` must still name one.
        if let Some(after) = after {
            anchor(&state, &d.id, after).await?;
        }
        (Vec::new(), 0, false)
    } else if let Some(after) = after {
        keyset_page(&state, &d.id, &filter, after, limit).await?
    } else {
        let (rows, total) = match q.min_confidence_lt {
            Some(threshold) => {
                below_confidence(&state, &d.id, &filter, threshold, limit, offset).await?
            }
            None => {
                state
                    .store
                    .find_images(&d.id, &filter, limit, offset)
                    .await?
            }
        };
        let has_more = offset + (rows.len() as i64) < total;
        (rows, total, has_more)
    };
    // A page of up to 10,000 images, read under two keys: serialised once, straight from the
    // rows, and that one buffer written under both.
    let lists = annotation_lists_for(&state, &rows, shape).await?;
    let links = base.links(&state);
    let items: Vec<_> = rows
        .iter()
        .map(|i| render::image_json(i, &links, shape, lists.get(&i.id)))
        .collect();
    let items = Bytes::from(serde_json::to_vec(&items).map_err(|e| ApiError::Internal(e.into()))?);
    let mut pagination =
        json!({"limit": limit, "offset": offset, "total": total, "has_more": has_more});
    if let Some(after) = after {
        // Echoed only when asked for (the official clients' models know no such key), so a
        // client can tell that this server paged from it.
        pagination["after"] = after.into();
    }
    let mut rest = Map::new();
    rest.insert("dataset_id".into(), d.id.clone().into());
    rest.insert("total".into(), total.into());
    rest.insert("limit".into(), limit.into());
    rest.insert("offset".into(), offset.into());
    rest.insert("pagination".into(), pagination);
    Ok(render::shared_under(&["images", "data"], &items, &rest).into_response())
}
