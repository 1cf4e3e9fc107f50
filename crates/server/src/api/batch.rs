//! `/batch/images/…`: move, copy, delete, update.

use super::extract::Json as Body;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::services::batch::{run, BatchRequest, Op};
use crate::{render, AppState};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

async fn handle(
    state: AppState,
    caller: Caller,
    op: Op,
    req: BatchRequest,
    name: &str,
) -> ApiResult<Response> {
    let out = run(&state, &caller, op, req).await?;
    Ok(Json(render::batch(&out, name)).into_response())
}

/// Moves images to a folder.
pub async fn move_images(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    Body(r): Body<BatchRequest>,
) -> ApiResult<Response> {
    handle(s, c, Op::Move, r, "moved").await
}

/// Copies images into a folder.
pub async fn copy_images(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    Body(r): Body<BatchRequest>,
) -> ApiResult<Response> {
    handle(s, c, Op::Copy, r, "copied").await
}

/// Archives or purges images.
pub async fn delete_images(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    Body(r): Body<BatchRequest>,
) -> ApiResult<Response> {
    let op = if r.permanent { "deleted" } else { "archived" };
    handle(s, c, Op::Delete, r, op).await
}

/// Sets fields on images.
pub async fn update_images(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    Body(r): Body<BatchRequest>,
) -> ApiResult<Response> {
    handle(s, c, Op::Update, r, "updated").await
}
