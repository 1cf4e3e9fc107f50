//! HTTP routes: each handler extracts, calls a service, and renders JSON.

mod annotations;
mod batch;
mod bodies;
mod datasets;
mod exports;
mod extract;
mod files;
mod images;
pub mod openapi;
mod paths;
mod projects;

use crate::error::ApiError;
use crate::{auth, idempotency, AppState};
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{HeaderName, Method, Request};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::IntoResponse;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use extract::BaseUrl;

/// Largest JSON request body (annotation lists of big images, 100,000-id batches).
const MAX_JSON_BODY: usize = 64 * 1024 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Prefix of every developer API route.
pub const PREFIX: &str = "/api/v1/developer";

/// How a route authenticates its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// An `X-API-Key` of an organisation; the path is under [`PREFIX`].
    Key,
    /// The `expires` and `sig` of a signed URL, no key.
    Signed,
    /// Nobody: the health check.
    Public,
}

/// One route: a method and an axum path template (`{param}`, `{*rest}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// HTTP method.
    pub method: Method,
    /// Path template; relative to [`PREFIX`] for [`Access::Key`] routes.
    pub path: &'static str,
    /// How callers are authenticated.
    pub access: Access,
}

impl RouteSpec {
    /// The template as the server sees it, with [`PREFIX`] for key routes.
    pub fn full_path(&self) -> String {
        match self.access {
            Access::Key => format!("{PREFIX}{}", self.path),
            Access::Signed | Access::Public => self.path.to_string(),
        }
    }
}

/// Every route the server answers: the router is built from this table and nothing else.
pub fn routes() -> Vec<RouteSpec> {
    table().into_iter().map(|(spec, _)| spec).collect()
}

fn entry<H, T>(
    method: Method,
    path: &'static str,
    access: Access,
    handler: H,
) -> (RouteSpec, MethodRouter<AppState>)
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
    (
        RouteSpec {
            method,
            path,
            access,
        },
        on(filter, handler),
    )
}

/// The route table with its handlers.
fn table() -> Vec<(RouteSpec, MethodRouter<AppState>)> {
    use Access::{Key, Public, Signed};
    let (get, post, put, patch, delete) = (
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    );
    vec![
        entry(get.clone(), "/datasets", Key, datasets::list),
        entry(post.clone(), "/datasets", Key, datasets::create),
        entry(get.clone(), "/datasets/", Key, datasets::list),
        entry(post.clone(), "/datasets/", Key, datasets::create),
        entry(
            get.clone(),
            "/datasets/by-name/{name}",
            Key,
            datasets::get_by_name,
        ),
        entry(
            get.clone(),
            "/datasets/by-name/{name}/download",
            Key,
            datasets::download_by_name,
        ),
        entry(
            get.clone(),
            "/datasets/{dataset}",
            Key,
            datasets::get_by_ref,
        ),
        entry(
            patch.clone(),
            "/datasets/{dataset}",
            Key,
            datasets::update_by_ref,
        ),
        entry(
            delete.clone(),
            "/datasets/{dataset}",
            Key,
            datasets::delete_by_ref,
        ),
        entry(
            get.clone(),
            "/datasets/{dataset}/download",
            Key,
            datasets::download_by_ref,
        ),
        entry(
            post.clone(),
            "/datasets/{dataset}/exports",
            Key,
            exports::create,
        ),
        entry(
            get.clone(),
            "/datasets/{dataset}/exports",
            Key,
            exports::list,
        ),
        entry(
            get.clone(),
            "/datasets/{dataset}/exports/{id}",
            Key,
            exports::get,
        ),
        entry(
            delete.clone(),
            "/datasets/{dataset}/exports/{id}",
            Key,
            exports::delete,
        ),
        entry(get.clone(), "/projects", Key, projects::list),
        entry(post.clone(), "/projects", Key, projects::create),
        entry(get.clone(), "/projects/", Key, projects::list),
        entry(post.clone(), "/projects/", Key, projects::create),
        entry(get.clone(), "/projects/{name}", Key, projects::get),
        entry(patch.clone(), "/projects/{name}", Key, projects::update),
        entry(delete.clone(), "/projects/{name}", Key, projects::delete),
        entry(get.clone(), "/images", Key, images::list),
        entry(get.clone(), "/images/", Key, images::list),
        entry(post.clone(), "/images/upload-url", Key, images::upload_url),
        entry(post.clone(), "/images/register", Key, images::register),
        entry(
            post.clone(),
            "/images/bulk-upload-url",
            Key,
            images::bulk_upload_url,
        ),
        entry(
            post.clone(),
            "/images/bulk-register",
            Key,
            images::bulk_register,
        ),
        // `{id}`, `{id}/metadata`, `{dataset}/{dir/…/filename}[/metadata]`: split by hand
        // so that a `%2F` in the dataset name stays inside its segment.
        entry(get.clone(), "/images/{*image}", Key, images::get_any),
        entry(delete.clone(), "/images/{*image}", Key, images::delete_any),
        entry(get.clone(), "/annotations/{*image}", Key, annotations::get),
        entry(
            post.clone(),
            "/annotations/{*image}",
            Key,
            annotations::save,
        ),
        entry(
            delete.clone(),
            "/annotations/{*image}",
            Key,
            annotations::delete,
        ),
        entry(post.clone(), "/batch/images/move", Key, batch::move_images),
        entry(post.clone(), "/batch/images/copy", Key, batch::copy_images),
        entry(post, "/batch/images/delete", Key, batch::delete_images),
        entry(patch, "/batch/images/update", Key, batch::update_images),
        entry(put, "/files/uploads/{id}", Signed, files::put_upload),
        entry(get.clone(), "/files/images/{id}", Signed, files::get_image),
        entry(
            get.clone(),
            "/files/exports/{id}",
            Signed,
            files::get_export,
        ),
        entry(get.clone(), "/healthz", Public, health),
        entry(get, "/openapi.json", Public, openapi_json),
    ]
}

/// The whole application router, built from [`routes`]' table.
pub fn router(state: AppState) -> Router {
    let mut developer = Router::new();
    let mut outer = Router::new();
    for (spec, method_router) in table() {
        match spec.access {
            Access::Key => developer = developer.route(spec.path, method_router),
            Access::Signed | Access::Public => outer = outer.route(spec.path, method_router),
        }
    }
    let mut developer = developer
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(from_fn_with_state(state.clone(), idempotency::replay))
        .layer(from_fn_with_state(state.clone(), bodies::reserve_parse))
        .layer(from_fn_with_state(state.clone(), auth::authenticate));
    let counted = state.metrics.is_some();
    if counted {
        developer = developer.route_layer(from_fn(crate::metrics::tag_route));
        outer = outer.route_layer(from_fn(crate::metrics::tag_route));
    }

    let app = outer
        .nest(PREFIX, developer)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone())
        .layer(from_fn_with_state(state.clone(), durable_writes))
        .layer(from_fn(close_if_body_unread))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
        }));
    let app = if counted {
        app.layer(from_fn_with_state(state.clone(), crate::metrics::count))
    } else {
        app
    };
    app.layer(
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

/// Holds back the answer to a request that may have written (any method but GET, HEAD and
/// OPTIONS) until what it committed is on disk ([`crate::store::Store::durable`]): the
/// server's commits return before their log is synced (SQLite) or flushed (PostgreSQL), and
/// the requests answered meanwhile share one sync. When the sync fails, the answer is a 500
/// (what was committed may or may not survive a crash).
async fn durable_writes(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request<axum::body::Body>,
    next: Next,
) -> axum::response::Response {
    let reads = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let response = next.run(req).await;
    if reads {
        return response;
    }
    match state.store.durable().await {
        Ok(()) => response,
        Err(e) => ApiError::from(e).into_response(),
    }
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

/// The OpenAPI document ([`openapi::document`]), built once.
async fn openapi_json() -> impl IntoResponse {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let body = DOCUMENT.get_or_init(|| openapi::document().to_string());
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.as_str(),
    )
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
