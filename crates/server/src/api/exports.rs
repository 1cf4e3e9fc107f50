//! `/datasets/{dataset}/exports`: start an export job and follow it to its download link.

use super::extract::{Json as Body, Path};
use super::BaseUrl;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::services::exports::{self as service, CreateExport};
use crate::store::{DatasetRow, ExportJobRow};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
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
