//! The upload path: signed URL, the unauthenticated PUT of the bytes, and register.

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::render::Links;
use crate::store::{fmt_time, BlobInfo, DatasetRow, ImageRow, NewImage, PendingUpload, StoreError};
use crate::AppState;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use pictograph_core::form::RegisterFields;
use pictograph_core::names;
use pictograph_media::{Format, MediaError};
use serde_json::{json, Value};
use sha2::Digest;
use std::collections::{HashMap, HashSet};

/// A request for a signed upload URL (either client generation's field names).
#[derive(Debug, Default)]
pub struct UploadRequest {
    /// Dataset id (1.6.3).
    pub dataset_id: Option<String>,
    /// Dataset name or id (newer clients).
    pub dataset: Option<String>,
    /// File name.
    pub filename: String,
    /// Virtual folder.
    pub folder: Option<String>,
    /// Declared content type.
    pub content_type: Option<String>,
}

async fn target_dataset(
    state: &AppState,
    caller: &Caller,
    id: Option<&str>,
    any: Option<&str>,
) -> ApiResult<DatasetRow> {
    match (id.filter(|s| !s.is_empty()), any.filter(|s| !s.is_empty())) {
        (Some(id), _) => state
            .store
            .dataset_by_id(&caller.org_id, id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("Dataset '{id}' not found"))),
        (None, Some(r)) => super::datasets::by_ref(state, caller, r).await,
        (None, None) => Err(ApiError::field(&["body", "dataset_id"], "field required")),
    }
}

fn conflict(filename: &str, folder: &str) -> ApiError {
    ApiError::Conflict(format!(
        "Image '{filename}' already exists in folder '{folder}'"
    ))
}

/// The file type an upload is allowed to have, from its name and declared type.
fn declared_format(filename: &str, content_type: Option<&str>) -> ApiResult<Format> {
    let ext = names::extension(filename).unwrap_or_default();
    let by_ext = names::SUPPORTED_EXTENSIONS
        .contains(&ext.as_str())
        .then(|| Format::from_extension(&ext))
        .flatten()
        .ok_or_else(|| {
            ApiError::UnsupportedType(format!(
                "Unsupported file extension '.{ext}': use one of {}",
                names::SUPPORTED_EXTENSIONS
                    .map(|e| format!(".{e}"))
                    .join(" ")
            ))
        })?;
    if let Some(ct) = content_type.filter(|c| !c.trim().is_empty()) {
        if Format::from_mime(ct) != Some(by_ext) {
            return Err(ApiError::UnsupportedType(format!(
                "Content type '{ct}' does not match a supported image type for '{filename}'"
            )));
        }
    }
    Ok(by_ext)
}

/// Checks the target and hands out a signed URL to PUT the bytes to.
pub async fn upload_url(
    state: &AppState,
    caller: &Caller,
    links: &Links<'_>,
    req: UploadRequest,
) -> ApiResult<Value> {
    caller.require(Role::Member, "Uploading")?;
    let dataset = target_dataset(
        state,
        caller,
        req.dataset_id.as_deref(),
        req.dataset.as_deref(),
    )
    .await?;
    let t = target(&req, &["body"])?;
    let taken = state
        .store
        .names_taken(&dataset.id, &[(t.folder.as_str(), t.filename.as_str())])
        .await?;
    if !taken.is_empty() {
        return Err(conflict(&t.filename, &t.folder));
    }
    let (body, pending) = sign(state, caller, links, &dataset, t).await?;
    state.store.create_pending_upload(&pending).await?;
    let id = body["upload_id"].clone();
    Ok(json!({
        "upload_url": body["upload_url"], "upload_id": id, "gcs_bucket": "local", "gcs_path": id,
        "gcs_uri": body["gcs_uri"], "content_type": body["content_type"], "expires_in": body["expires_in"],
        "data": body,
    }))
}

/// Most files one bulk upload-URL request may name.
pub const MAX_BULK: usize = 500;

/// Signed URLs for many files of one dataset, in request order (newer clients'
/// `bulk-upload-url`). A file whose name is taken still gets a URL (the client PUTs every
/// file it asked for) and is marked `exists`; its register then fails with a conflict.
pub async fn bulk_upload_url(
    state: &AppState,
    caller: &Caller,
    links: &Links<'_>,
    dataset: &str,
    items: Vec<UploadRequest>,
) -> ApiResult<Value> {
    caller.require(Role::Member, "Uploading")?;
    if items.is_empty() || items.len() > MAX_BULK {
        return Err(ApiError::field(
            &["body", "images"],
            format!("between 1 and {MAX_BULK} images per request"),
        ));
    }
    let dataset = super::datasets::by_ref(state, caller, dataset).await?;
    let targets = items
        .iter()
        .enumerate()
        .map(|(i, item)| target(item, &["body", "images", i.to_string().as_str()]))
        .collect::<ApiResult<Vec<_>>>()?;
    let names: Vec<_> = targets
        .iter()
        .map(|t| (t.folder.as_str(), t.filename.as_str()))
        .collect();
    let taken = state.store.names_taken(&dataset.id, &names).await?;
    let mut urls = Vec::with_capacity(items.len());
    let mut pending = Vec::with_capacity(items.len());
    for t in targets {
        let exists = taken.contains(&(t.folder.clone(), t.filename.clone()));
        let (mut entry, p) = sign(state, caller, links, &dataset, t).await?;
        entry["filename"] = json!(p.filename);
        entry["directory_path"] = json!(p.folder);
        entry["exists"] = json!(exists);
        pending.push(p);
        urls.push(entry);
    }
    state.store.create_pending_uploads(&pending).await?;
    let data = json!({"dataset_id": dataset.id, "upload_urls": urls});
    Ok(json!({"upload_urls": data["upload_urls"], "data": data}))
}

/// Where one file is to go: its checked name and folder, and the format its name and
/// declared type agree on.
struct Target {
    filename: String,
    folder: String,
    format: Format,
}

/// Checks one file's target; errors are located under `loc`.
fn target(req: &UploadRequest, loc: &[&str]) -> ApiResult<Target> {
    fn at<'a>(loc: &[&'a str], field: &'a str) -> Vec<&'a str> {
        loc.iter().copied().chain([field]).collect()
    }
    let filename =
        names::filename(&req.filename).map_err(|e| ApiError::field(&at(loc, "filename"), e.0))?;
    let folder = names::folder_path(req.folder.as_deref().unwrap_or("/"))
        .map_err(|e| ApiError::field(&at(loc, "folder_path"), e.0))?;
    let format = declared_format(&filename, req.content_type.as_deref())?;
    Ok(Target {
        filename,
        folder,
        format,
    })
}

/// Signs the URL for one checked target; the caller records the returned pending upload.
async fn sign(
    state: &AppState,
    caller: &Caller,
    links: &Links<'_>,
    dataset: &DatasetRow,
    t: Target,
) -> ApiResult<(Value, PendingUpload)> {
    let ttl = state.config.url_ttl_secs as i64;
    let expires = chrono::Utc::now().timestamp() + ttl;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let pending = PendingUpload {
        id: id.clone(),
        org_id: caller.org_id.clone(),
        dataset_id: dataset.id.clone(),
        folder: t.folder,
        filename: t.filename,
        content_type: t.format.mime().to_string(),
        expires_at: fmt_time(chrono::DateTime::from_timestamp(expires, 0).unwrap_or_default()),
        blob_hash: None,
        size: None,
        mime: None,
        width: None,
        height: None,
    };
    let url = match state
        .blobs
        .presign_upload(&id, std::time::Duration::from_secs(ttl as u64))
        .await?
    {
        Some(presigned) => presigned,
        None => links.upload_url(&id, expires),
    };
    let body = json!({
        "upload_url": url,
        "upload_id": id,
        "gcs_bucket": "local",
        "gcs_path": id,
        "gcs_uri": format!("gs://local/{id}"),
        "content_type": pending.content_type,
        "expires_in": ttl,
        "max_size": state.config.max_upload_bytes,
    });
    Ok((body, pending))
}

/// What a PUT request said besides its body.
pub struct PutHead {
    /// Upload id from the path.
    pub id: String,
    /// `expires` from the query.
    pub expires: i64,
    /// `sig` from the query.
    pub sig: String,
    /// Content-Length, when sent.
    pub content_length: Option<u64>,
    /// Content-Type, when sent.
    pub content_type: Option<String>,
}

/// Receives the bytes of a signed upload: checks signature, size and type, stores them under
/// their hash (HEIC converted to PNG) and attaches them to the pending upload.
///
/// A refused upload's unread body is drained (up to 16 MiB, for up to 5 s; not one that
/// arrived too slowly)
/// before the refusal is answered, so a client still sending reads the error instead of a
/// reset connection.
pub async fn receive<S, E>(state: &AppState, put: &PutHead, mut body: S) -> ApiResult<Value>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut read = 0;
    let answer = accept(state, put, &mut body, &mut read).await;
    // A body that arrived too slowly is not waited for again.
    if answer
        .as_ref()
        .is_err_and(|e| !matches!(e, ApiError::TimedOut(_)))
    {
        let unread = put.content_length.map(|n| n.saturating_sub(read));
        if unread.is_none_or(|n| n <= DRAIN_BYTES) {
            drain(&mut body).await;
        }
    }
    answer
}

/// Most bytes of a refused upload read and dropped so that its refusal reaches the client.
const DRAIN_BYTES: u64 = 16 * 1024 * 1024;
/// Longest time spent draining a refused upload.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads and drops what is left of a body, within [`DRAIN_BYTES`] and [`DRAIN_TIME`].
async fn drain<S, E>(body: &mut S)
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut left = DRAIN_BYTES;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(chunk)) = body.next().await {
            match left.checked_sub(chunk.len() as u64) {
                Some(rest) => left = rest,
                None => break,
            }
        }
    })
    .await;
}

/// The checks and storing of [`receive`]; `read` counts the body bytes taken.
async fn accept<S, E>(
    state: &AppState,
    put: &PutHead,
    body: &mut S,
    read: &mut u64,
) -> ApiResult<Value>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    if !state.signer.verify("PUT", &put.id, put.expires, &put.sig) {
        return Err(ApiError::Forbidden(
            "Upload URL signature is invalid or expired".into(),
        ));
    }
    let pending = state
        .store
        .pending_upload_to_receive(&put.id)
        .await?
        .ok_or_else(upload_gone)?;
    let max = state.config.max_upload_bytes;
    if put.content_length.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    check_put_type(put.content_type.as_deref(), &pending)?;
    // A body without a declared length may be as large as the limit. One organisation's
    // uploads hold at most half the budget, however slowly their bodies arrive.
    let _held = state
        .upload_memory
        .reserve_for(&pending.org_id, put.content_length.unwrap_or(max).min(max))
        .await;
    let stall = std::time::Duration::from_secs(state.config.upload_stall_secs);
    let bytes = read_body(body, put.content_length, max, stall, read).await?;
    let blob = store_blob(state, &pending, bytes).await?;
    Ok(json!({"success": true, "upload_id": pending.id, "size": blob.size, "mime_type": blob.mime}))
}

/// The answer to a PUT whose upload does not exist (never handed out, registered or dropped).
fn upload_gone() -> ApiError {
    ApiError::NotFound("Upload not found or already registered".into())
}

/// The Content-Type a PUT declared, when it declared one, must be the signed type.
fn check_put_type(content_type: Option<&str>, pending: &PendingUpload) -> ApiResult<()> {
    if let Some(ct) = content_type.filter(|c| !c.trim().is_empty()) {
        if Format::from_mime(ct).map(Format::mime) != Some(pending.content_type.as_str()) {
            return Err(ApiError::UnsupportedType(format!(
                "Content-Type '{ct}' does not match the signed type '{}'",
                pending.content_type
            )));
        }
    }
    Ok(())
}

fn too_large(max: u64) -> ApiError {
    ApiError::TooLarge(format!(
        "File exceeds the {} MB upload limit",
        max / (1024 * 1024)
    ))
}

/// Least average rate, in bytes a second, at which an upload body must arrive once its
/// grace (`Config::upload_stall_secs`) has passed.
const MIN_BODY_RATE: u64 = 1024;

/// Reads a PUT body into memory, refusing more than `max` bytes: the checks need the whole
/// file anyway, and the upload limit bounds it. The body must keep arriving: after `stall`,
/// at [`MIN_BODY_RATE`] on average since it began, or it is refused with 408 (it holds
/// upload memory while it arrives). `read` counts the bytes taken.
async fn read_body<S, E>(
    body: &mut S,
    hint: Option<u64>,
    max: u64,
    stall: std::time::Duration,
    read: &mut u64,
) -> ApiResult<Vec<u8>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let start = tokio::time::Instant::now();
    let mut buf = Vec::with_capacity(hint.unwrap_or(0).min(max) as usize);
    loop {
        let earned = std::time::Duration::from_millis(*read * 1000 / MIN_BODY_RATE);
        let next = tokio::time::timeout_at(start + stall + earned, body.next()).await;
        let Ok(next) = next else {
            return Err(ApiError::TimedOut(format!(
                "The upload arrived too slowly: {} bytes in {} s; after the first {} s it must \
                 arrive at 1 KiB/s or more",
                *read,
                start.elapsed().as_secs(),
                stall.as_secs()
            )));
        };
        let Some(chunk) = next else {
            return Ok(buf);
        };
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("Reading the upload failed: {e}")))?;
        *read += chunk.len() as u64;
        if buf.len() as u64 + chunk.len() as u64 > max {
            return Err(too_large(max));
        }
        buf.extend_from_slice(&chunk);
    }
}

/// Checks an upload's bytes against its signed type and stores them for the pending upload
/// (HEIC converted to PNG): answers what was stored. A check that decodes the image first
/// reserves the memory its pixels take.
async fn store_blob(
    state: &AppState,
    pending: &PendingUpload,
    bytes: Vec<u8>,
) -> ApiResult<BlobInfo> {
    let content_type = pending.content_type.clone();
    let max_pixels = state.config.max_image_pixels;
    let decoding = state
        .decode_memory
        .reserve(pictograph_media::check_memory(&bytes, max_pixels))
        .await;
    let (bytes, blob) =
        tokio::task::spawn_blocking(move || check(bytes, &content_type, max_pixels))
            .await
            .map_err(|e| ApiError::Internal(e.into()))??;
    drop(decoding);
    keep(state, pending, bytes, &blob).await?;
    Ok(blob)
}

/// Hashes and checks an upload's bytes (CPU-heavy: run it off the async executor). The type
/// must be the signed one and the whole file must decode (truncated and corrupt images, and
/// images of more than `max_pixels`, are refused); HEIC is converted to PNG. Answers the
/// bytes to store and their description, dimensions displayed as EXIF orientation says.
fn check(bytes: Vec<u8>, content_type: &str, max_pixels: u64) -> ApiResult<(Vec<u8>, BlobInfo)> {
    let expected = Format::from_mime(content_type);
    let sniffed = pictograph_media::sniff(&bytes);
    if sniffed.is_none() || sniffed != expected {
        return Err(ApiError::UnsupportedType(format!(
            "The uploaded bytes are not a valid {content_type} image"
        )));
    }
    let (bytes, mime, width, height) = if expected == Some(Format::Heic) {
        let (png, w, h) =
            pictograph_media::heic_to_png(&bytes, max_pixels).map_err(|e| match e {
                MediaError::TooLarge { .. } => {
                    ApiError::Invalid(format!("The uploaded image was refused: {e}"))
                }
                e => ApiError::Invalid(format!("The HEIC image could not be decoded: {e}")),
            })?;
        (png, Format::Png.mime().to_string(), w, h)
    } else {
        let (w, h) = inspect(&bytes, max_pixels)
            .map_err(|e| ApiError::Invalid(format!("The uploaded image was refused: {e}")))?;
        (bytes, content_type.to_string(), w, h)
    };
    let blob = BlobInfo {
        hash: hex::encode(sha2::Sha256::digest(&bytes)),
        size: bytes.len() as i64,
        mime,
        width: Some(width.into()),
        height: Some(height.into()),
    };
    Ok((bytes, blob))
}

/// Stores checked bytes under their hash for the pending upload. One transaction records the
/// bytes and attaches them to the upload; from its commit on no sweep frees that hash (it is
/// referenced and freshly touched), and a sweep that was freeing it has finished. In an object
/// store the bytes are written after that commit, so what a finished sweep deleted is written
/// again. On the local disk they are written while the transaction commits (the two waits
/// overlap), and checked once it has committed: bytes a sweep deleted meanwhile (an earlier
/// upload's copy of the same bytes, found and kept, or this one's) are written again. A crash
/// before the bytes are in place leaves an upload whose bytes are missing, which register
/// refuses and a repeated PUT repairs; the PUT was not acknowledged. The answer waits for
/// both the commit and the synced bytes. An upload registered or dropped since its PUT began
/// is 404; whatever bytes were written for it are left for the sweep.
async fn keep(
    state: &AppState,
    pending: &PendingUpload,
    bytes: Vec<u8>,
    blob: &BlobInfo,
) -> ApiResult<()> {
    let bytes = Bytes::from(bytes);
    let attached = |r: Result<(), StoreError>| {
        r.map_err(|e| match e {
            StoreError::NotFound => upload_gone(),
            e => e.into(),
        })
    };
    if !state.blobs.is_local() {
        attached(state.store.attach_blob(&pending.id, blob).await)?;
        state.blobs.put_hashed(bytes, &blob.hash).await?;
        return Ok(());
    }
    let (attach, stored) = tokio::join!(
        state.store.attach_blob(&pending.id, blob),
        state.blobs.put_hashed(bytes.clone(), &blob.hash)
    );
    attached(attach)?;
    stored?;
    if !state
        .blobs
        .holds_locally(&blob.hash, bytes.len() as u64)
        .await
    {
        state.blobs.put_hashed(bytes, &blob.hash).await?;
    }
    Ok(())
}

/// Takes the object a client PUT straight into the object store through a presigned URL:
/// checks its size and type exactly like a proxied PUT, stores it under its hash, and attaches
/// it to the pending upload. Answers the upload and whether its bytes were taken in now, which
/// leaves its staged object for the caller to remove (a refused object is removed here). An
/// upload with nothing uploaded is returned unchanged.
///
/// The object is read in one request, into memory reserved once its size is known; when that
/// memory is not free at once, the read is dropped while waiting for it and started again.
async fn ingest_presigned(
    state: &AppState,
    pending: PendingUpload,
) -> ApiResult<(PendingUpload, bool)> {
    let max = state.config.max_upload_bytes;
    let id = pending.id.clone();
    let refuse = |e: ApiError| async move {
        state.blobs.delete_upload(&id).await?;
        Err(e)
    };
    let Some(mut object) = state.blobs.open_upload(&pending.id).await? else {
        return Ok((pending, false));
    };
    let _held = loop {
        if object.size > max {
            drop(object);
            return refuse(too_large(max)).await;
        }
        if let Some(held) = state
            .upload_memory
            .try_reserve_for(&pending.org_id, object.size)
        {
            break held;
        }
        let size = object.size;
        drop(object);
        let held = state.upload_memory.reserve_for(&pending.org_id, size).await;
        object = match state.blobs.open_upload(&pending.id).await? {
            Some(o) => o,
            None => return Ok((pending, false)),
        };
        // PUT again meanwhile, and larger: reserve for its new size.
        if object.size <= size {
            break held;
        }
    };
    // Object stores report a type for objects PUT without one: that is no declared type.
    let declared = object.content_type.clone().filter(|ct| {
        !matches!(
            ct.as_str(),
            "binary/octet-stream" | "application/octet-stream"
        )
    });
    if let Err(e) = check_put_type(declared.as_deref(), &pending) {
        drop(object);
        return refuse(e).await;
    }
    let bytes = object.bytes().await?;
    let blob = match store_blob(state, &pending, Vec::from(bytes)).await {
        Ok(b) => b,
        // A failure of the server's own is no fault of the object: a retry takes it in.
        Err(ApiError::Internal(e)) => return Err(ApiError::Internal(e)),
        Err(e) => return refuse(e).await,
    };
    Ok((
        PendingUpload {
            blob_hash: Some(blob.hash),
            size: Some(blob.size),
            mime: Some(blob.mime),
            width: blob.width,
            height: blob.height,
            ..pending
        },
        true,
    ))
}

/// Checks that the whole file decodes, within `max_pixels`, and returns its displayed
/// dimensions, EXIF orientation applied.
fn inspect(bytes: &[u8], max_pixels: u64) -> Result<(u32, u32), pictograph_media::VerifyError> {
    let probe = pictograph_media::probe(bytes).ok_or_else(|| {
        pictograph_media::VerifyError::Corrupt("the image size cannot be read".into())
    })?;
    pictograph_media::verify(bytes, &probe, max_pixels)?;
    Ok(pictograph_media::display_size(bytes, &probe))
}

/// The pending upload a register without a storage path means (newer clients): the one
/// handed out for the same dataset, folder and file name.
async fn pending_by_name(
    state: &AppState,
    caller: &Caller,
    fields: &RegisterFields,
) -> ApiResult<PendingUpload> {
    let dataset = target_dataset(
        state,
        caller,
        fields.dataset_id.as_deref(),
        fields.dataset.as_deref(),
    )
    .await
    .map_err(|e| match e {
        ApiError::Fields { .. } => ApiError::field(
            &["body", "gcs_path"],
            "field required (or dataset, directory_path and filename)",
        ),
        other => other,
    })?;
    let filename = names::filename(
        fields
            .filename
            .as_deref()
            .ok_or_else(|| ApiError::field(&["body", "filename"], "field required"))?,
    )
    .map_err(|e| ApiError::field(&["body", "filename"], e.0))?;
    let folder = names::folder_path(fields.folder.as_deref().unwrap_or("/"))
        .map_err(|e| ApiError::field(&["body", "directory_path"], e.0))?;
    state
        .store
        .pending_upload_for(&caller.org_id, &dataset.id, &folder, &filename)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "No upload of '{filename}' to folder '{folder}' is pending: request an upload URL \
                 first (or it expired or was already registered)"
            ))
        })
}

/// Checks a register request against its pending upload (looked up unless among `known`,
/// by id) and answers the upload id and the image to insert.
async fn prepare_register(
    state: &AppState,
    caller: &Caller,
    fields: &RegisterFields,
    known: &mut HashMap<String, PendingUpload>,
) -> ApiResult<Completed> {
    let pending = resolve_register(state, caller, fields, known).await?;
    complete_register(state, fields, pending).await
}

/// A pending upload checked and ready to become an image.
struct Completed {
    upload_id: String,
    image: NewImage,
    /// Its bytes were taken in from a staged object now, which is no longer needed.
    took_in: bool,
}

/// The pending upload a register request names (looked up unless among `known`, by id),
/// checked against the caller, the request's dataset and the upload's expiry. Reads only.
async fn resolve_register(
    state: &AppState,
    caller: &Caller,
    fields: &RegisterFields,
    known: &mut HashMap<String, PendingUpload>,
) -> ApiResult<PendingUpload> {
    caller.require(Role::Member, "Uploading")?;
    let pending = match fields.upload_id.as_deref() {
        Some(id) => match known.remove(id) {
            Some(p) => Some(p),
            None => state.store.pending_upload(id).await?,
        }
        .filter(|p| p.org_id == caller.org_id)
        .ok_or_else(|| {
            ApiError::NotFound("Upload not found, expired or already registered".into())
        })?,
        None => pending_by_name(state, caller, fields).await?,
    };
    if let Some(ds) = fields.dataset_ref() {
        if ds != pending.dataset_id {
            let named = state
                .store
                .dataset_by_id(&caller.org_id, &pending.dataset_id)
                .await?;
            if named.is_none_or(|d| d.name != ds) {
                return Err(ApiError::field(
                    &["body", "dataset_id"],
                    "does not match the upload URL's dataset",
                ));
            }
        }
    }
    if pending.expires_at < crate::store::now() {
        return Err(ApiError::NotFound(
            "Upload URL expired: request a new one".into(),
        ));
    }
    Ok(pending)
}

/// The image a checked pending upload becomes: its bytes taken in first when they were PUT
/// straight into the object store, then checked to be stored (bytes attached by an earlier
/// PUT or register, which a sweep may have freed since, checked to be there still).
async fn complete_register(
    state: &AppState,
    fields: &RegisterFields,
    pending: PendingUpload,
) -> ApiResult<Completed> {
    let (pending, took_in) = match pending.blob_hash {
        Some(_) => (pending, false),
        None => ingest_presigned(state, pending).await?,
    };
    let (Some(hash), Some(size), Some(mime)) = (
        pending.blob_hash.clone(),
        pending.size,
        pending.mime.clone(),
    ) else {
        return Err(ApiError::Invalid(
            "No bytes were received for this upload: PUT the file to the upload URL first".into(),
        ));
    };
    if size as u64 > state.config.max_upload_bytes {
        return Err(too_large(state.config.max_upload_bytes));
    }
    if !took_in && !state.blobs.exists(&hash).await {
        return Err(ApiError::Invalid(
            "The uploaded bytes are gone: upload the file again".into(),
        ));
    }
    let new = NewImage {
        dataset_id: pending.dataset_id.clone(),
        folder: pending.folder.clone(),
        filename: pending.filename.clone(),
        blob_hash: hash,
        file_size: size,
        mime_type: mime,
        width: pending.width.or(fields.width),
        height: pending.height.or(fields.height),
    };
    Ok(Completed {
        upload_id: pending.id,
        image: new,
        took_in,
    })
}

/// Removes the staged objects of uploads whose bytes were taken in, in as few requests as
/// the store takes, once the commits that took them in are on disk. A failure is only
/// logged: the image is registered, and the sweep removes staged objects left behind.
async fn remove_staged(state: &AppState, upload_ids: &[String]) {
    if upload_ids.is_empty() {
        return;
    }
    if let Err(e) = state.store.durable().await {
        tracing::warn!(error = %e, "syncing the metadata failed; staged upload objects are left for the sweep");
        return;
    }
    if let Err(e) = state.blobs.delete_uploads(upload_ids).await {
        tracing::warn!(error = %e, uploads = upload_ids.len(), "removing staged upload objects failed; the sweep removes them later");
    }
}

/// Turns one received upload into an image; 409 when its name was taken meanwhile.
pub async fn register(
    state: &AppState,
    caller: &Caller,
    fields: &RegisterFields,
) -> ApiResult<ImageRow> {
    let done = prepare_register(state, caller, fields, &mut HashMap::new()).await?;
    let row = state
        .store
        .register_image(&done.upload_id, &done.image)
        .await
        .map_err(|e| registered(e, &done.image));
    if done.took_in {
        remove_staged(state, std::slice::from_ref(&done.upload_id)).await;
    }
    row
}

/// The answer to a register whose insert failed.
fn registered(e: StoreError, new: &NewImage) -> ApiError {
    match e {
        StoreError::Conflict => conflict(&new.filename, &new.folder),
        StoreError::NotFound => {
            ApiError::NotFound("Upload not found, expired or already registered".into())
        }
        other => other.into(),
    }
}

/// Registers of one request completed at once: each may take bytes in from the object store
/// (a read and a write there), which is waiting on the store more than work, so a batch of
/// the size clients send (32 files) completes at once. The upload and decode memory budgets
/// still bound the bytes held.
const COMPLETED_AT_ONCE: usize = 32;

/// Turns many received uploads into images, inserted in one transaction: one answer per
/// input, in order; a file that cannot be registered does not stop the others. The uploads
/// are looked up and checked in order, their bytes taken in and checked 32 at a time; an
/// upload named again later in the request is looked up afresh and completed after the
/// others, as it would have been after its first mention.
pub async fn register_many(
    state: &AppState,
    caller: &Caller,
    items: &[RegisterFields],
) -> ApiResult<Vec<ApiResult<ImageRow>>> {
    caller.require(Role::Member, "Uploading")?;
    let ids: Vec<&str> = items
        .iter()
        .filter_map(|f| f.upload_id.as_deref())
        .collect();
    let mut known = state.store.pending_uploads(&ids).await?;
    let mut prepared: Vec<Option<ApiResult<Completed>>> = items.iter().map(|_| None).collect();
    let (mut first, mut again, mut named) = (Vec::new(), Vec::new(), HashSet::new());
    for (i, fields) in items.iter().enumerate() {
        match resolve_register(state, caller, fields, &mut known).await {
            Ok(p) if named.insert(p.id.clone()) => first.push((i, p)),
            Ok(_) => again.push(i),
            Err(ApiError::Internal(e)) => return Err(ApiError::Internal(e)),
            Err(e) => prepared[i] = Some(Err(e)),
        }
    }
    let mut completed = futures::stream::iter(first)
        .map(|(i, p)| async move { (i, complete_register(state, &items[i], p).await) })
        .buffer_unordered(COMPLETED_AT_ONCE);
    while let Some((i, done)) = completed.next().await {
        prepared[i] = Some(done);
    }
    drop(completed);
    for i in again {
        let pending = resolve_register(state, caller, &items[i], &mut HashMap::new()).await;
        prepared[i] = Some(match pending {
            Ok(p) => complete_register(state, &items[i], p).await,
            Err(e) => Err(e),
        });
    }
    let mut order = Vec::with_capacity(items.len());
    let (mut ready, mut taken_in, mut failed) = (Vec::new(), Vec::new(), None);
    for p in prepared {
        match p.unwrap_or_else(|| Err(ApiError::Internal(anyhow::anyhow!("register not prepared"))))
        {
            Ok(p) => {
                if p.took_in {
                    taken_in.push(p.upload_id.clone());
                }
                order.push(Ok(ready.len()));
                ready.push((p.upload_id, p.image));
            }
            Err(ApiError::Internal(e)) => failed = failed.or(Some(e)),
            Err(e) => order.push(Err(e)),
        }
    }
    if let Some(e) = failed {
        remove_staged(state, &taken_in).await;
        return Err(ApiError::Internal(e));
    }
    // The same name twice in one request: the first one wins, like two requests would.
    let rows = state.store.register_images(&ready).await;
    remove_staged(state, &taken_in).await;
    let rows = rows?;
    let mut rows: Vec<Option<_>> = rows.into_iter().map(Some).collect();
    Ok(order
        .into_iter()
        .map(|p| {
            let i = p?;
            let row = rows[i].take().unwrap_or(Err(StoreError::NotFound));
            row.map_err(|e| registered(e, &ready[i].1))
        })
        .collect())
}
