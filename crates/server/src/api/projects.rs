//! `/projects/…`: the write paths of datasets, as the 1.6.3 client calls them.

use super::datasets::page;
use super::extract::{Json as Body, Path, Query};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::services::datasets::{self, CreateProject, UpdateProject};
use crate::store::DatasetCounts;
use crate::{render, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

/// Paging of the list.
#[derive(Debug, Deserialize)]
pub struct Page {
    limit: Option<i64>,
    offset: Option<i64>,
}

/// Lists projects.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(p): Query<Page>,
) -> ApiResult<Json<Value>> {
    let (limit, offset) = page(p.limit, p.offset, 50, 1000)?;
    let (rows, total) = state
        .store
        .list_datasets(&caller.org_id, limit, offset)
        .await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|(d, c)| render::dataset(d, c, None))
        .collect();
    Ok(Json(
        json!({"projects": items, "data": items, "total": total, "limit": limit, "offset": offset}),
    ))
}

fn one(value: Value) -> render::SameUnder {
    render::SameUnder {
        keys: &["data", "dataset", "project"],
        value,
    }
}

/// Gets a project by name.
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<render::SameUnder> {
    let d = datasets::by_name(&state, &caller, &name).await?;
    let counts = datasets::counts(&state, &d).await?;
    Ok(one(render::dataset(&d, &counts, None)))
}

/// Creates a project.
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(body): Body<CreateProject>,
) -> ApiResult<(StatusCode, render::SameUnder)> {
    let d = datasets::create(&state, &caller, body).await?;
    // A project just created counts nothing.
    let counts = DatasetCounts::default();
    Ok((StatusCode::CREATED, one(render::dataset(&d, &counts, None))))
}

/// Updates a project.
pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Body(body): Body<UpdateProject>,
) -> ApiResult<render::SameUnder> {
    let d = datasets::update(&state, &caller, &name, body).await?;
    let counts = datasets::counts(&state, &d).await?;
    Ok(one(render::dataset(&d, &counts, None)))
}

/// Deletes a project.
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let summary = datasets::delete(&state, &caller, &name).await?;
    Ok(Json(json!({"deleted": summary, "data": summary})))
}
