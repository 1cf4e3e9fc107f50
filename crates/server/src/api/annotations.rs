//! `/annotations/{image_id}` (1.6.3) and `/annotations/{dataset}/{dir/…/filename}` (newer
//! clients): get, save (replace), delete.
//!
//! Reads are shaped for the caller ([`paths::annotation_shape`]): clients whose models
//! forbid the newer keys get them stripped, and their writes are validated strictly.

use super::extract::Json as Body;
use super::paths;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::services::annotations;
use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::Value;

/// The image's annotations; `?include=metadata` adds each annotation's `metadata`.
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let segs = paths::segments(&uri, "annotations")?;
    let with_metadata = includes_metadata(uri.query().unwrap_or(""))?;
    let img = paths::image(&state, &caller, &segs).await?;
    let shape = paths::annotation_shape(&headers);
    Ok(tagged(
        annotations::get_of(&state, &img, shape, with_metadata).await?,
    ))
}

/// An answer carrying the image's version, with that version as its `ETag` (`"3"`): what a
/// later save sends back as `If-Match`.
fn tagged(answer: Value) -> Response {
    let etag = answer["version"]
        .as_i64()
        .and_then(|v| HeaderValue::from_str(&format!("\"{v}\"")).ok());
    let mut resp = Json(answer).into_response();
    if let Some(etag) = etag {
        resp.headers_mut().insert(header::ETAG, etag);
    }
    resp
}

/// Whether the query's `include` (comma-separated, repeatable) names `metadata`.
fn includes_metadata(query: &str) -> ApiResult<bool> {
    let mut found = false;
    for pair in query.split('&') {
        let Some(value) = pair.strip_prefix("include=") else {
            continue;
        };
        let value = percent_encoding::percent_decode_str(&value.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned();
        found |= include_names_metadata(Some(&value))?;
    }
    Ok(found)
}

/// Whether one `include` value (comma-separated) names `metadata`; any other name is refused
/// so that a typo does not silently drop what the caller asked for.
pub(super) fn include_names_metadata(value: Option<&str>) -> ApiResult<bool> {
    let mut found = false;
    for part in value
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        if part != "metadata" {
            return Err(ApiError::field(
                &["query", "include"],
                format!("unknown include '{part}'; the only one is 'metadata'"),
            ));
        }
        found = true;
    }
    Ok(found)
}

/// Replaces the image's annotations. On the id route a body `image_id` must name the same
/// image; on the path route it is ignored.
pub async fn save(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
    Body(body): Body<Value>,
) -> ApiResult<Response> {
    let if_match = match headers.get(header::IF_MATCH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .map(|s| s.trim().trim_start_matches("W/").trim_matches('"'))
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| {
                    ApiError::BadRequest("If-Match must be an annotation version like \"3\"".into())
                })?,
        ),
    };
    let segs = paths::segments(&uri, "annotations")?;
    let img = paths::image(&state, &caller, &segs).await?;
    Ok(tagged(
        annotations::save_to(
            &state,
            &caller,
            &img,
            &body,
            if_match,
            segs.len() == 1,
            paths::annotation_shape(&headers),
        )
        .await?,
    ))
}

/// Removes the image's annotations.
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
) -> ApiResult<Response> {
    let segs = paths::segments(&uri, "annotations")?;
    let img = paths::image(&state, &caller, &segs).await?;
    Ok(tagged(annotations::delete_of(&state, &caller, &img).await?))
}

#[cfg(test)]
mod tests {
    use super::includes_metadata;

    #[test]
    fn include_parameter() {
        assert!(!includes_metadata("").unwrap());
        assert!(!includes_metadata("x=metadata").unwrap());
        assert!(includes_metadata("include=metadata").unwrap());
        assert!(includes_metadata("a=1&include=%20metadata%2C").unwrap());
        assert!(includes_metadata("include=metadatas").is_err());
        assert!(includes_metadata("include=metadata,other").is_err());
    }
}
