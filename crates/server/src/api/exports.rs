//! `/datasets/{dataset}/exports`: start an export job, follow it to its download link, list
//! a dataset's jobs, and cancel or delete one.

use super::datasets::page;
use super::extract::{Json as Body, Path, Query};
use super::BaseUrl;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::services::exports::{self as service, CreateExport, Stopped};
use crate::store::{DatasetRow, ExportJobRow};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

/// A job as answered: progress, warnings, and the signed download link once complete.
fn render(state: &AppState, base: &BaseUrl, job: &ExportJobRow, d: &DatasetRow) -> Value {
    let warnings: Value = serde_json::from_str(&job.warnings).unwrap_or_else(|_| json!([]));
    let complete = job.state == "complete";
    json!({
        "id": job.id,
        "dataset_id": job.dataset_id,
        "dataset": d.name,
        "format": job.format,
        "status_filter": job.status_filter,
        "polygons_as_boxes": job.polygons_as_boxes,
        "state": job.state,
        "images_total": job.images_total,
        "images_done": job.images_done,
        "annotations": job.annotations,
        "warnings": warnings,
        "error": job.error,
        "archive": complete.then(|| json!({
            "format": "tar",
            "size": job.archive_size,
            "sha256": job.archive_hash,
        })),
        "download_url": complete.then(|| base.links(state).export_url(&job.id)),
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    })
}

/// `POST /datasets/{dataset}/exports` (`{"format", "status"?, "polygons_as_boxes"?}`):
/// 202 with the queued job.
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    base: BaseUrl,
    Path(dataset): Path<String>,
    Body(body): Body<CreateExport>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (job, d) = service::create(&state, &caller, &dataset, body).await?;
    Ok((StatusCode::ACCEPTED, Json(render(&state, &base, &job, &d))))
}

/// `GET /datasets/{dataset}/exports/{id}`: the job's state.
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    base: BaseUrl,
    Path((dataset, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (job, d) = service::get(&state, &caller, &dataset, &id).await?;
    Ok(Json(render(&state, &base, &job, &d)))
}

/// Query of `GET /datasets/{dataset}/exports`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `GET /datasets/{dataset}/exports?limit&offset`: the dataset's jobs, newest first (limit
/// 50 by default, at most 200).
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    base: BaseUrl,
    Path(dataset): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let (limit, offset) = page(q.limit, q.offset, 50, service::LIST_CAP)?;
    let (jobs, total, d) = service::list(&state, &caller, &dataset, limit, offset).await?;
    let items: Vec<Value> = jobs.iter().map(|j| render(&state, &base, j, &d)).collect();
    Ok(Json(json!({
        "exports": items,
        "data": items,
        "total": total,
        "limit": limit,
        "offset": offset,
        "pagination": {"limit": limit, "offset": offset, "total": total,
            "has_more": offset + (items.len() as i64) < total},
    })))
}

/// `DELETE /datasets/{dataset}/exports/{id}`: cancels a queued or running job (200 with the
/// job, now `cancelled`; its task stops within a page of images), or deletes an ended one and
/// frees its archive (200 with `{"deleted": job}`).
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    base: BaseUrl,
    Path((dataset, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (stopped, d) = service::stop(&state, &caller, &dataset, &id).await?;
    Ok(Json(match stopped {
        Stopped::Cancelled(job) => render(&state, &base, &job, &d),
        Stopped::Deleted(job) => {
            let mut gone = render(&state, &base, &job, &d);
            gone["download_url"] = Value::Null;
            json!({"deleted": gone, "data": gone})
        }
    }))
}
