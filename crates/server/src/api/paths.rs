//! Addressing one image: by id (`/images/{id}`, the 1.6.3 client) or by dataset and path
//! (`/images/{dataset}/{dir/…/filename}`, newer clients), and which annotation shape a
//! caller can read.
//!
//! The dataset is one %-encoded segment (a `/` in its name arrives as `%2F`) while the path
//! keeps its `/`s, so the raw request path is split on `/` first and each segment decoded
//! on its own.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::services::annotations::{self, Shape};
use crate::store::ImageRow;
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Uri};
use pictograph_core::names;

/// The decoded segments after `/{resource}/` of the request path (`uri` as a nested route
/// sees it, i.e. without the `/api/v1/developer` prefix).
pub fn segments(uri: &Uri, resource: &str) -> ApiResult<Vec<String>> {
    let path = uri.path();
    let rest = path
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(resource))
        .and_then(|p| p.strip_prefix('/'))
        .ok_or_else(|| ApiError::NotFound("No such endpoint".into()))?;
    rest.split('/')
        .map(|seg| {
            percent_encoding::percent_decode_str(seg)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| ApiError::BadRequest("Path segments must be UTF-8".into()))
        })
        .collect()
}

/// The image that `{dataset}/{dir/…}/{filename}` names: the first segment is the dataset
/// (name or id), the last the file name, the ones between the folder. 404 when there is no
/// such image (or the path cannot be one).
pub async fn image_at(state: &AppState, caller: &Caller, segs: &[String]) -> ApiResult<ImageRow> {
    let [dataset, dirs @ .., filename] = segs else {
        return Err(ApiError::NotFound("No such endpoint".into()));
    };
    let shown = segs[1..].join("/");
    let not_found =
        || ApiError::NotFound(format!("Image '{shown}' not found in dataset '{dataset}'"));
    if dataset.is_empty() || filename.is_empty() {
        return Err(not_found());
    }
    let folder = names::folder_path(&format!("/{}", dirs.join("/"))).map_err(|_| not_found())?;
    annotations::image_at(state, caller, dataset, &folder, filename).await
}

/// The image an id route or a path route names: one segment is an id, more are a path.
pub async fn image(state: &AppState, caller: &Caller, segs: &[String]) -> ApiResult<ImageRow> {
    match segs {
        [id] => annotations::image(state, caller, id).await,
        _ => image_at(state, caller, segs).await,
    }
}

/// The annotation shape a caller can parse (and so may write), from its `User-Agent`:
///
/// * `pictograph-python/X.Y…` older than 1.69 (1.6.3 among them), an unreadable version of
///   it, or no User-Agent at all: [`Shape::Legacy`]. Those clients' annotation models
///   forbid the newer keys, and clients without a User-Agent (the Rust SDK of this
///   workspace among them) parse `attributes` as a list.
/// * `pictograph-python/1.69` or later, and any other User-Agent (curl, httpx, browsers):
///   [`Shape::Full`], the annotations exactly as stored.
pub fn annotation_shape(headers: &HeaderMap) -> Shape {
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    if ua.is_empty() {
        return Shape::Legacy;
    }
    for token in ua.split_whitespace() {
        let Some(version) = token.strip_prefix("pictograph-python/") else {
            continue;
        };
        let mut parts = version.split('.').map(|p| p.parse::<u64>().ok());
        return match (parts.next().flatten(), parts.next().flatten()) {
            (Some(major), Some(minor)) if (major, minor) >= (1, 69) => Shape::Full,
            _ => Shape::Legacy,
        };
    }
    Shape::Full
}

/// The caller's [`Shape`], as an extractor.
pub struct CallerShape(pub Shape);

impl<S: Send + Sync> FromRequestParts<S> for CallerShape {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(CallerShape(annotation_shape(&parts.headers)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(ua: Option<&str>) -> Shape {
        let mut h = HeaderMap::new();
        if let Some(ua) = ua {
            h.insert(header::USER_AGENT, ua.parse().unwrap());
        }
        annotation_shape(&h)
    }

    #[test]
    fn user_agent_decides_the_annotation_shape() {
        assert_eq!(shape(None), Shape::Legacy);
        assert_eq!(shape(Some("")), Shape::Legacy);
        assert_eq!(shape(Some("pictograph-python/1.6.3")), Shape::Legacy);
        assert_eq!(shape(Some("pictograph-python/1.68.9")), Shape::Legacy);
        assert_eq!(shape(Some("pictograph-python/1.x")), Shape::Legacy);
        assert_eq!(shape(Some("pictograph-python/1.69.146")), Shape::Full);
        assert_eq!(shape(Some("pictograph-python/1.70.0")), Shape::Full);
        assert_eq!(shape(Some("pictograph-python/2.0.0")), Shape::Full);
        assert_eq!(
            shape(Some("agent/1 pictograph-python/1.6.3")),
            Shape::Legacy
        );
        assert_eq!(shape(Some("python-httpx/0.28.1")), Shape::Full);
        assert_eq!(shape(Some("curl/8.5.0")), Shape::Full);
    }

    #[test]
    fn segments_are_decoded_one_by_one() {
        let uri: Uri = "/images/my%20ds%2Fx/cars/red/a%20b.jpg?permanent=true"
            .parse()
            .unwrap();
        assert_eq!(
            segments(&uri, "images").unwrap(),
            ["my ds/x", "cars", "red", "a b.jpg"]
        );
        let uri: Uri = "/annotations/abc".parse().unwrap();
        assert_eq!(segments(&uri, "annotations").unwrap(), ["abc"]);
        assert!(segments(&uri, "images").is_err());
        let uri: Uri = "/images/%FF/a.jpg".parse().unwrap();
        assert!(segments(&uri, "images").is_err());
    }
}
