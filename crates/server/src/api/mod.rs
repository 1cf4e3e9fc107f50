//! HTTP routes: each handler extracts, calls a service, and renders JSON.

mod annotations;
mod batch;
mod datasets;
mod extract;
mod files;
mod images;
mod projects;

use crate::error::ApiError;
use crate::{auth, idempotency, AppState};
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{get, patch, post, put};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use extract::BaseUrl;

/// Largest JSON request body (annotation lists of big images, 10,000-id batches).
const MAX_JSON_BODY: usize = 64 * 1024 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let developer = Router::new()
        .route("/datasets", get(datasets::list))
        .route("/datasets/", get(datasets::list))
        .route("/datasets/by-name/{name}", get(datasets::get_by_name))
        .route(
            "/datasets/by-name/{name}/download",
            get(datasets::download_by_name),
        )
        .route("/datasets/{dataset}", get(datasets::get_by_ref))
        .route(
            "/datasets/{dataset}/download",
            get(datasets::download_by_ref),
        )
        .route("/projects", get(projects::list).post(projects::create))
        .route("/projects/", get(projects::list).post(projects::create))
        .route(
            "/projects/{name}",
            get(projects::get)
                .patch(projects::update)
                .delete(projects::delete),
        )
        .route("/images", get(images::list))
        .route("/images/", get(images::list))
        .route("/images/upload-url", post(images::upload_url))
        .route("/images/register", post(images::register))
        .route("/images/{id}", get(images::download).delete(images::delete))
        .route("/images/{id}/metadata", get(images::metadata))
        .route(
            "/annotations/{id}",
            get(annotations::get)
                .post(annotations::save)
                .delete(annotations::delete),
        )
        .route("/batch/images/move", post(batch::move_images))
        .route("/batch/images/copy", post(batch::copy_images))
        .route("/batch/images/delete", post(batch::delete_images))
        .route("/batch/images/update", patch(batch::update_images))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(from_fn_with_state(state.clone(), idempotency::replay))
        .layer(from_fn_with_state(state.clone(), auth::authenticate));

    Router::new()
        .nest("/api/v1/developer", developer)
        .route("/files/uploads/{id}", put(files::put_upload))
        .route("/files/images/{id}", get(files::get_image))
        .route("/healthz", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

async fn health(axum::extract::State(state): axum::extract::State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => axum::Json(serde_json::json!({"status": "ok"})).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("No such endpoint".into())
}

async fn method_not_allowed() -> impl IntoResponse {
    let mut resp =
        ApiError::BadRequest("Method not allowed on this endpoint".into()).into_response();
    *resp.status_mut() = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    resp
}
