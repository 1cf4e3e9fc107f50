//! The JSON the API answers with: one serializer per entity, shaped for both client generations.

use crate::signing::Signer;
use crate::store::{BatchOutcome, DatasetCounts, DatasetRow, ImageRow};
use bytes::Bytes;
use serde_json::{json, Map, Value};
use std::collections::VecDeque;

/// Where clients reach this server, and how to sign links for them.
#[derive(Clone)]
pub struct Links<'a> {
    /// Absolute base URL without a trailing slash.
    pub base: String,
    /// URL signer.
    pub signer: &'a Signer,
    /// Lifetime of signed links, seconds.
    pub ttl: u64,
}

impl Links<'_> {
    /// The expiry for links made now: rounded up to a whole hour so links stay stable (and
    /// cacheable) for a while, and always at least `ttl` away.
    fn expiry(&self) -> i64 {
        let at = chrono::Utc::now().timestamp() + self.ttl as i64;
        (at / 3600 + 1) * 3600
    }

    /// An absolute, signed, expiring URL for an image's bytes that needs no API key.
    pub fn image_url(&self, image_id: &str) -> String {
        let exp = self.expiry();
        let sig = self.signer.sign("GET", image_id, exp);
        format!(
            "{}/files/images/{image_id}?expires={exp}&sig={sig}",
            self.base
        )
    }

    /// An absolute, signed, expiring URL for an export's archive that needs no API key.
    pub fn export_url(&self, job_id: &str) -> String {
        let exp = self.expiry();
        let sig = self.signer.sign("EXPORT", job_id, exp);
        format!(
            "{}/files/exports/{job_id}?expires={exp}&sig={sig}",
            self.base
        )
    }

    /// An absolute signed URL to PUT an upload's bytes to.
    pub fn upload_url(&self, upload_id: &str, expires: i64) -> String {
        let sig = self.signer.sign("PUT", upload_id, expires);
        format!(
            "{}/files/uploads/{upload_id}?expires={expires}&sig={sig}",
            self.base
        )
    }

    /// The authenticated URL of an image's annotations.
    pub fn annotation_url(&self, image_id: &str) -> String {
        format!("{}/api/v1/developer/annotations/{image_id}", self.base)
    }
}

/// A dataset (also a project) with its counts, and its embedded images when given.
pub fn dataset(d: &DatasetRow, c: &DatasetCounts, images: Option<Vec<Value>>) -> Value {
    let mut v = json!({
        "id": d.id,
        "name": d.name,
        "description": d.description,
        "organization_id": d.org_id,
        "image_count": c.image_count,
        "completed_image_count": c.completed_image_count,
        "status_counts": {
            "new": c.new_image_count,
            "annotate": c.annotate_image_count,
            "review": c.review_image_count,
            "complete": c.completed_image_count,
        },
        "total_size": c.total_size,
        "archived_images": c.archived_images,
        "archived_image_count": c.archived_images,
        "annotation_count": c.annotation_count,
        "classes": d.classes,
        "annotation_types": d.annotation_types,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
    });
    if let Some(images) = images {
        v["images"] = Value::Array(images);
    }
    v
}

/// A batch result in the shape the 1.6.3 client parses, plus the documented and newer names;
/// serialised straight from the outcome (a batch may name 100,000 ids), fields in the order a
/// JSON object of them is written.
#[derive(serde::Serialize)]
pub struct BatchJson<'a> {
    affected_directories: &'a std::collections::BTreeSet<String>,
    affected_folders: &'a std::collections::BTreeSet<String>,
    failed: Vec<BatchFailure<'a>>,
    failed_count: usize,
    failures: Vec<BatchFailure<'a>>,
    operation: &'a str,
    processed: usize,
    renamed: i64,
    succeeded: &'a [String],
    success: bool,
}

/// One id a batch did not complete: `id` is written only in the 1.6.3 client's list.
#[derive(serde::Serialize)]
struct BatchFailure<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    image_id: &'a str,
    reason: &'a str,
}

/// The response of a batch operation called `operation`.
pub fn batch<'a>(o: &'a BatchOutcome, operation: &'a str) -> BatchJson<'a> {
    let failures = |with_id: bool| {
        o.failed
            .iter()
            .map(|(id, reason)| BatchFailure {
                id: with_id.then_some(id.as_str()),
                image_id: id,
                reason,
            })
            .collect()
    };
    BatchJson {
        affected_directories: &o.affected_folders,
        affected_folders: &o.affected_folders,
        failed: failures(true),
        failed_count: o.failed.len(),
        failures: failures(false),
        operation,
        processed: o.succeeded.len(),
        renamed: o.renamed,
        succeeded: &o.succeeded,
        success: o.failed.is_empty(),
    }
}

/// Which generation of the API's JSON a caller reads, decided from its User-Agent (see
/// `api::paths::annotation_shape`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Newer clients (pictograph 1.69+) and generic HTTP tools: every field, annotations as
    /// stored (extensions included).
    Full,
    /// The pictograph 1.6.x client and callers without a User-Agent: the fields and the
    /// annotation format that client knows.
    Legacy,
}

/// A dataset for a caller: [`Shape::Full`] adds the newer clients' fields, which here are
/// constant (no dataset-level archive, public catalogue or cold storage; a readme is kept as
/// the description).
pub fn dataset_for(
    d: &DatasetRow,
    c: &DatasetCounts,
    images: Option<Vec<Value>>,
    shape: Shape,
) -> Value {
    let mut v = dataset(d, c, images);
    if shape == Shape::Full {
        let extra = json!({
            "readme": d.description,
            "is_public": false,
            "is_archived": false,
            "archived_at": null,
            "storage_class": "standard",
        });
        if let (Some(obj), Value::Object(extra)) = (v.as_object_mut(), extra) {
            obj.extend(extra);
        }
    }
    v
}

/// An image for a caller: [`Shape::Full`] adds `split` (never assigned here) and
/// `min_confidence`, the lowest confidence of its annotation list (null without one).
pub fn image_for(
    i: &ImageRow,
    links: &Links<'_>,
    shape: Shape,
    annotations: Option<&Value>,
) -> Value {
    serde_json::to_value(image_json(i, links, shape, annotations)).unwrap_or(Value::Null)
}

/// An image as the API writes it, for serialising straight into a response; fields in the
/// order a JSON object of them is written.
#[derive(serde::Serialize)]
pub struct ImageJson<'a> {
    annotation_count: i64,
    annotation_url: String,
    content_type: &'a str,
    created_at: &'a str,
    dataset_id: &'a str,
    directory_path: &'a str,
    display_name: Option<&'a str>,
    file_size: i64,
    filename: &'a str,
    height: Option<i64>,
    id: &'a str,
    image_url: String,
    is_archived: bool,
    mime_type: &'a str,
    /// Newer clients only: the lowest annotation confidence, or null.
    #[serde(skip_serializing_if = "Option::is_none")]
    min_confidence: Option<Option<f64>>,
    /// Newer clients only: always null (no dataset splits).
    #[serde(skip_serializing_if = "Option::is_none")]
    split: Option<()>,
    status: &'a str,
    tags: [(); 0],
    thumbnail_url: Option<()>,
    updated_at: &'a str,
    version: i64,
    virtual_folder_path: &'a str,
    width: Option<i64>,
}

/// An image for a caller of `shape`; `annotations` is its stored list (read only for
/// [`Shape::Full`]).
pub fn image_json<'a>(
    i: &'a ImageRow,
    links: &Links<'_>,
    shape: Shape,
    annotations: Option<&Value>,
) -> ImageJson<'a> {
    let full = shape == Shape::Full;
    ImageJson {
        annotation_count: i.annotation_count,
        annotation_url: links.annotation_url(&i.id),
        content_type: &i.mime_type,
        created_at: &i.created_at,
        dataset_id: &i.dataset_id,
        directory_path: &i.folder,
        display_name: i.display_name.as_deref(),
        file_size: i.file_size,
        filename: &i.filename,
        height: i.height,
        id: &i.id,
        image_url: links.image_url(&i.id),
        is_archived: i.is_archived,
        mime_type: &i.mime_type,
        min_confidence: full.then(|| {
            annotations
                .and_then(Value::as_array)
                .and_then(|list| pictograph_core::annotation::min_confidence(list))
        }),
        split: full.then_some(()),
        status: &i.status,
        tags: [],
        thumbnail_url: None,
        updated_at: &i.updated_at,
        version: i.version,
        virtual_folder_path: &i.folder,
        width: i.width,
    }
}

/// A response object holding one value under several keys (the names different client
/// generations read), serialised once and written once per key.
pub struct SameUnder<T = Value> {
    /// The keys, in the order they are written.
    pub keys: &'static [&'static str],
    /// The value.
    pub value: T,
}

impl<T: serde::Serialize> axum::response::IntoResponse for SameUnder<T> {
    fn into_response(self) -> axum::response::Response {
        match serde_json::to_vec(&self.value) {
            Ok(text) => shared_under(self.keys, &Bytes::from(text), &Map::new()).into_response(),
            Err(e) => crate::error::ApiError::Internal(e.into()).into_response(),
        }
    }
}

/// A JSON object holding `value` (serialised JSON) under each of `keys`, its buffer shared
/// by them, and then the members of `rest`.
pub fn shared_under(keys: &[&str], value: &Bytes, rest: &Map<String, Value>) -> JsonChunks {
    let mut body = JsonChunks::default();
    body.text("{");
    let members = keys
        .iter()
        .map(|k| (*k, None))
        .chain(rest.iter().map(|(k, member)| (k.as_str(), Some(member))));
    for (i, (key, member)) in members.enumerate() {
        if i > 0 {
            body.text(",");
        }
        body.value(key);
        body.text(":");
        match member {
            None => body.shared(value),
            Some(member) => body.text(&member.to_string()),
        }
    }
    body.text("}");
    body
}

/// A JSON response body sent as a list of chunks. A chunk written twice shares its buffer
/// (`Bytes`), so a large value written under two keys is held in memory once. The length is
/// known up front and sent as `Content-Length`.
#[derive(Default)]
pub struct JsonChunks {
    chunks: VecDeque<Bytes>,
}

impl JsonChunks {
    /// Appends a copy of `text`.
    pub fn text(&mut self, text: &str) {
        self.chunks
            .push_back(Bytes::copy_from_slice(text.as_bytes()));
    }

    /// Appends `bytes` without copying them.
    pub fn shared(&mut self, bytes: &Bytes) {
        self.chunks.push_back(bytes.clone());
    }

    /// Appends a JSON scalar (a string is quoted and escaped).
    pub fn value(&mut self, value: impl Into<Value>) {
        self.chunks.push_back(Bytes::from(value.into().to_string()));
    }
}

impl axum::response::IntoResponse for JsonChunks {
    fn into_response(self) -> axum::response::Response {
        (
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            axum::body::Body::new(self),
        )
            .into_response()
    }
}

impl http_body::Body for JsonChunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(
            self.chunks
                .pop_front()
                .map(|b| Ok(http_body::Frame::data(b))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.chunks.iter().map(|b| b.len() as u64).sum())
    }
}
