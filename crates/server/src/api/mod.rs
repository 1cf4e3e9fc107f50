//! HTTP routes: each handler extracts, calls a service, and renders JSON.

mod annotations;
mod batch;
mod datasets;
mod exports;
mod extract;
mod files;
mod images;
mod paths;
mod projects;

use crate::error::ApiError;
use crate::{auth, idempotency, AppState};
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::middleware::{from_fn, from_fn_with_state, Next};
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
        .route("/datasets", get(datasets::list).post(datasets::create))
        .route("/datasets/", get(datasets::list).post(datasets::create))
        .route("/datasets/by-name/{name}", get(datasets::get_by_name))
        .route(
            "/datasets/by-name/{name}/download",
            get(datasets::download_by_name),
        )
        .route(
            "/datasets/{dataset}",
            get(datasets::get_by_ref)
                .patch(datasets::update_by_ref)
                .delete(datasets::delete_by_ref),
        )
        .route(
            "/datasets/{dataset}/download",
            get(datasets::download_by_ref),
        )
        .route("/datasets/{dataset}/exports", post(exports::create))
        .route("/datasets/{dataset}/exports/{id}", get(exports::get))
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
        .route("/images/bulk-upload-url", post(images::bulk_upload_url))
        .route("/images/bulk-register", post(images::bulk_register))
        // `{id}`, `{id}/metadata`, `{dataset}/{dir/…/filename}[/metadata]`: split by hand
        // so that a `%2F` in the dataset name stays inside its segment.
        .route(
            "/images/{*image}",
            get(images::get_any).delete(images::delete_any),
        )
        .route(
            "/annotations/{*image}",
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
        .route("/files/exports/{id}", get(files::get_export))
        .route("/healthz", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(from_fn(close_if_body_unread))
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

/// Answers with `Connection: close` when the request's body was never read to its end (a
/// request refused before its body was needed: bad key, rate limit, replayed idempotent
/// write, …). The server drops such a connection after answering, and without the header a
/// client would put it back in its pool and fail its next request on it.
async fn close_if_body_unread(
    req: Request<axum::body::Body>,
    next: Next,
) -> axum::response::Response {
    use futures::StreamExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let has_body = match req.headers().get(axum::http::header::CONTENT_LENGTH) {
        Some(len) => len.to_str().ok().and_then(|l| l.trim().parse::<u64>().ok()) != Some(0),
        None => req
            .headers()
            .contains_key(axum::http::header::TRANSFER_ENCODING),
    };
    if !has_body {
        return next.run(req).await;
    }
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let (parts, body) = req.into_parts();
    let tracked = body.into_data_stream().chain(
        futures::stream::once(async move {
            flag.store(true, Ordering::SeqCst);
        })
        .filter_map(|()| async { None::<Result<bytes::Bytes, axum::Error>> }),
    );
    let req = Request::from_parts(parts, axum::body::Body::from_stream(tracked));
    let mut resp = next.run(req).await;
    if !done.load(Ordering::SeqCst) {
        resp.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    resp
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
