//! Bytes over signed URLs (no API key), and streaming an image's bytes with ETag and Range.

use super::extract::{Path, Query};
use crate::blobs::Loaded;
use crate::error::{ApiError, ApiResult};
use crate::services::uploads::{self, PutHead};
use crate::store::ImageFile;
use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

/// Signature query of a signed URL.
#[derive(Debug, Deserialize)]
pub struct Signed {
    expires: i64,
    sig: String,
}

/// `PUT /files/uploads/{id}`: receives an upload's bytes.
pub async fn put_upload(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Signed>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let text = |h: header::HeaderName| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let put = PutHead {
        id,
        expires: q.expires,
        sig: q.sig,
        content_length: text(header::CONTENT_LENGTH).and_then(|v| v.parse().ok()),
        content_type: text(header::CONTENT_TYPE),
    };
    let body = body.into_data_stream();
    Ok(Json(uploads::receive(&state, &put, body).await?))
}

/// `GET /files/images/{id}`: an image's bytes by signed URL.
pub async fn get_image(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Signed>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if !state.signer.verify("GET", &id, q.expires, &q.sig) {
        return Err(ApiError::Forbidden(
            "Download URL signature is invalid or expired".into(),
        ));
    }
    let file = state
        .store
        .image_file(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Image not found".into()))?;
    serve(&state, &file, &headers).await
}

/// `GET /files/exports/{id}`: a complete export's tar archive by signed URL.
pub async fn get_export(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Signed>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if !state.signer.verify("EXPORT", &id, q.expires, &q.sig) {
        return Err(ApiError::Forbidden(
            "Download URL signature is invalid or expired".into(),
        ));
    }
    let job = state
        .store
        .export_job_any(&id)
        .await?
        .filter(|j| j.state == "complete")
        .ok_or_else(|| ApiError::NotFound("Export not found".into()))?;
    let (Some(hash), Some(size)) = (job.archive_hash.as_deref(), job.archive_size) else {
        return Err(ApiError::NotFound("Export not found".into()));
    };
    let name = state
        .store
        .dataset_by_id(&job.org_id, &job.dataset_id)
        .await?
        .map_or_else(|| "dataset".to_string(), |d| d.name);
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let served = Served {
        hash,
        known_size: Some(size as u64),
        content_type: HeaderValue::from_static("application/x-tar"),
        disposition: format!("attachment; filename=\"{safe}-{}.tar\"", job.format),
        // An archive never changes, but its link expires: kept by no shared cache.
        cache_control: "private, max-age=86400",
    };
    send_bytes(&state, served, &headers).await
}

/// A single byte range `start..=end` of a `size`-byte file, from a `Range` header.
/// `Ok(None)`: serve everything. `Err(())`: unsatisfiable.
fn range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        (true, false) => {
            let n: u64 = b.parse().map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        (false, _) => {
            let start: u64 = a.parse().map_err(|_| ())?;
            let end = if b.is_empty() {
                size.saturating_sub(1)
            } else {
                b.parse::<u64>()
                    .map_err(|_| ())?
                    .min(size.saturating_sub(1))
            };
            (start, end)
        }
        (true, true) => return Ok(None),
    };
    if size == 0 || parsed.0 > parsed.1 || parsed.0 >= size {
        return Err(());
    }
    Ok(Some(parsed))
}

/// Images up to this size are read in one piece and sent from memory; larger ones stream.
const IN_MEMORY: u64 = 4 << 20;

/// Serves an image's bytes: ETag from the content hash, immutable caching, single ranges,
/// and 304 for a matching `If-None-Match`.
pub async fn serve(state: &AppState, file: &ImageFile, headers: &HeaderMap) -> ApiResult<Response> {
    let served = Served {
        hash: &file.blob_hash,
        known_size: None,
        content_type: HeaderValue::from_str(&file.mime_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
        disposition: format!(
            "inline; filename=\"{}\"",
            file.filename.replace(['"', '\\'], "_")
        ),
        cache_control: "private, max-age=2592000, immutable",
    };
    send_bytes(state, served, headers).await
}

/// Stored bytes to send, and how to present them.
struct Served<'a> {
    /// Their SHA-256: where they are, and their ETag.
    hash: &'a str,
    /// Their size when known (then they are streamed, never read whole first).
    known_size: Option<u64>,
    content_type: HeaderValue,
    disposition: String,
    cache_control: &'static str,
}

/// Sends stored bytes with an ETag (their hash), single ranges (206, or 416 when
/// unsatisfiable) and 304 for a matching `If-None-Match`. Bytes of unknown size up to
/// [`IN_MEMORY`] are read in one piece; the rest stream.
async fn send_bytes(state: &AppState, s: Served<'_>, headers: &HeaderMap) -> ApiResult<Response> {
    let etag = format!("\"{}\"", s.hash);
    let mut builder = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, s.cache_control)
        .header(header::ACCEPT_RANGES, "bytes");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|t| {
                let t = t.trim();
                t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag
            })
        })
    {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .map_err(|e| ApiError::Internal(e.into()));
    }
    let loaded = match s.known_size {
        Some(size) => Loaded::Large(size),
        None => state.blobs.load(s.hash, IN_MEMORY).await?,
    };
    let size = match &loaded {
        Loaded::Whole(bytes) => bytes.len() as u64,
        Loaded::Large(size) | Loaded::Streaming(size, _) => *size,
    };
    builder = builder.header(header::CONTENT_TYPE, s.content_type);
    if let Ok(v) = HeaderValue::from_str(&s.disposition) {
        builder = builder.header(header::CONTENT_DISPOSITION, v);
    }
    let range = match range(headers, size) {
        Err(()) => {
            return builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                .body(Body::empty())
                .map_err(|e| ApiError::Internal(e.into()));
        }
        Ok(r) => r,
    };
    if let Some((start, end)) = range {
        builder = builder
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}"));
    }
    let (start, end) = range.unwrap_or((0, size.saturating_sub(1)));
    let len = if size == 0 { 0 } else { end - start + 1 };
    let body = match loaded {
        Loaded::Whole(bytes) => Body::from(bytes.slice(start as usize..(start + len) as usize)),
        Loaded::Streaming(_, whole) if range.is_none() => Body::from_stream(whole),
        Loaded::Large(_) | Loaded::Streaming(..) => {
            Body::from_stream(state.blobs.stream(s.hash, range).await?)
        }
    };
    builder
        .header(header::CONTENT_LENGTH, len)
        .body(body)
        .map_err(|e| ApiError::Internal(e.into()))
}
