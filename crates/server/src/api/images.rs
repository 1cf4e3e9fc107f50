//! `/images/…`: upload URL, register, metadata, bytes, delete.

use super::extract::{Path, Query};
use super::BaseUrl;
use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::services::annotations::image as find_image;
use crate::services::uploads::{self, UploadRequest};
use crate::{render, AppState};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Fields of a request as text, from a form or a JSON object (null → empty).
fn fields(headers: &HeaderMap, body: &Bytes) -> ApiResult<HashMap<String, String>> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ct.starts_with("application/x-www-form-urlencoded") {
        return serde_urlencoded_pairs(body);
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("Invalid JSON body: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::BadRequest("Request body must be a JSON object".into()))?;
    Ok(obj
        .iter()
        .map(|(k, v)| {
            let s = match v {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), s)
        })
        .collect())
}

fn serde_urlencoded_pairs(body: &Bytes) -> ApiResult<HashMap<String, String>> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::BadRequest("Form body is not UTF-8".into()))?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| ApiError::BadRequest("Form body is not valid UTF-8".into()))
    };
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
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
    let get = |k: &str| f.get(k).filter(|v| !v.is_empty()).cloned();
    let req = UploadRequest {
        dataset_id: get("dataset_id"),
        dataset: get("dataset"),
        filename: get("filename")
            .ok_or_else(|| ApiError::field(&["body", "filename"], "field required"))?,
        folder: get("folder_path").or_else(|| get("directory_path")),
        content_type: get("content_type").or_else(|| get("mime_type")),
    };
    Ok(Json(
        uploads::upload_url(&state, &caller, &base.links(&state), req).await?,
    ))
}

/// `POST /images/register` (form from 1.6.3, JSON from newer clients).
pub async fn register(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    base: BaseUrl,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(axum::http::StatusCode, Json<Value>)> {
    let f = fields(&headers, &body)?;
    let img = uploads::register(&state, &caller, &f).await?;
    let v = render::image(&img, &base.links(&state));
    Ok((
        axum::http::StatusCode::CREATED,
        Json(json!({"success": true, "image_id": img.id, "image": v, "data": v})),
    ))
}

/// `GET /images/{id}/metadata`.
pub async fn metadata(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    base: BaseUrl,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let img = find_image(&state, &caller, &id).await?;
    let v = render::image(&img, &base.links(&state));
    Ok(Json(json!({"image": v, "data": v})))
}

/// `GET /images/{id}`: the bytes.
pub async fn download(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let img = find_image(&state, &caller, &id).await?;
    super::files::serve(&state, &img, &headers).await
}

/// Options of a delete.
#[derive(Debug, Deserialize)]
pub struct DeleteOptions {
    #[serde(default)]
    permanent: bool,
}

/// `DELETE /images/{id}`: archive, or purge with `permanent=true` (member+).
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(o): Query<DeleteOptions>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Member, "Deleting images")?;
    let img = find_image(&state, &caller, &id).await?;
    if o.permanent {
        state.store.delete_image(&img.id).await?;
        crate::services::maintenance::release(&state, vec![img.blob_hash.clone()]).await;
    } else {
        state.store.archive_image(&img.id).await?;
    }
    Ok(Json(json!({
        "success": true, "image_id": img.id, "permanent": o.permanent,
        "operation": if o.permanent { "deleted" } else { "archived" },
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
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `GET /images/?dataset=…`: one page of a dataset's images, filtered by status and folder.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    base: BaseUrl,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
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
    let filter = crate::store::ImageFilter {
        status,
        folder,
        recursive: q.recursive,
        include_archived: q.include_archived,
    };
    let (rows, total) = state
        .store
        .find_images(&d.id, &filter, limit, offset)
        .await?;
    let links = base.links(&state);
    let items: Vec<Value> = rows.iter().map(|i| render::image(i, &links)).collect();
    let has_more = offset + (items.len() as i64) < total;
    Ok(Json(json!({
        "dataset_id": d.id,
        "images": items,
        "data": items,
        "total": total,
        "limit": limit,
        "offset": offset,
        "pagination": {"limit": limit, "offset": offset, "total": total, "has_more": has_more},
    })))
}
