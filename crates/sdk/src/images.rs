//! Single images: `client.images()`.
//!
//! An upload is three requests: `POST images/upload-url` (the server checks the dataset,
//! name and type, and answers a signed URL), an unauthenticated `PUT` of the file's bytes to
//! that URL (streamed from disk with its exact `Content-Length`), and `POST images/register`,
//! which answers the new [`Image`].

use crate::client::Client;
use crate::error::{Error, Result};
use crate::http::{field, segment, Req, ReqBody};
use crate::models::Image;
use pictograph_core::names;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// The MIME type of a supported image extension (lower case, without the dot).
pub fn mime_for_extension(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        "webp" => "image/webp",
        "tif" | "tiff" => "image/tiff",
        "heic" => "image/heic",
        _ => return None,
    })
}

/// Whether `path` has one of the extensions the API accepts (case-insensitive).
pub fn is_supported(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(names::extension)
        .is_some_and(|e| names::SUPPORTED_EXTENSIONS.contains(&e.as_str()))
}

/// Options of [`Images::upload`].
#[derive(Debug, Clone, Default)]
pub struct UploadOptions {
    /// Virtual folder, e.g. `/cars` (default `/`); normalised like the server does.
    pub folder_path: Option<String>,
    /// Stored file name (default: the file's own name).
    pub filename: Option<String>,
    /// MIME type (default: from the extension).
    pub content_type: Option<String>,
    /// Deduplication key (default: a fresh one per call). Calling `upload` again with the same
    /// key after a success answers the same image instead of uploading twice. At most 200
    /// visible ASCII characters.
    pub idempotency_key: Option<String>,
}

impl UploadOptions {
    /// Sets the virtual folder.
    pub fn folder_path(mut self, f: impl Into<String>) -> Self {
        self.folder_path = Some(f.into());
        self
    }

    /// Sets the stored file name.
    pub fn filename(mut self, f: impl Into<String>) -> Self {
        self.filename = Some(f.into());
        self
    }

    /// Sets the MIME type.
    pub fn content_type(mut self, c: impl Into<String>) -> Self {
        self.content_type = Some(c.into());
        self
    }

    /// Sets the idempotency key.
    pub fn idempotency_key(mut self, k: impl Into<String>) -> Self {
        self.idempotency_key = Some(k.into());
        self
    }
}

/// The images resource.
#[derive(Debug, Clone)]
pub struct Images {
    client: Client,
}

impl Images {
    pub(crate) fn new(client: Client) -> Images {
        Images { client }
    }

    /// An image's metadata.
    pub async fn get(&self, image_id: &str) -> Result<Image> {
        let v = self
            .client
            .transport
            .json(Req::api(
                Method::GET,
                &format!("/images/{}/metadata", segment(image_id)),
            ))
            .await?;
        field(v, &["image", "data"])
    }

    /// Uploads a local file into a dataset (by id) and answers the registered image.
    ///
    /// [`Error::Conflict`] when the folder already has an image of that name;
    /// [`Error::FileNotFound`] when the file does not exist.
    pub async fn upload(
        &self,
        dataset_id: &str,
        file_path: impl AsRef<Path>,
        options: UploadOptions,
    ) -> Result<Image> {
        let path = file_path.as_ref();
        let meta = tokio::fs::metadata(path)
            .await
            .map_err(|e| Error::io(path, e))?;
        if !meta.is_file() {
            return Err(Error::InvalidArgument(format!(
                "{} is not a file",
                path.display()
            )));
        }
        let filename = match options.filename {
            Some(f) => f,
            None => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| {
                    Error::InvalidArgument(format!("{} has no file name", path.display()))
                })?,
        };
        let folder = names::folder_path(options.folder_path.as_deref().unwrap_or("/"))
            .map_err(|e| Error::InvalidArgument(e.0))?;
        let content_type = options.content_type.or_else(|| {
            names::extension(&filename)
                .and_then(|e| mime_for_extension(&e))
                .map(str::to_string)
        });
        let keys = match &options.idempotency_key {
            Some(k) => {
                let k = k.trim();
                if k.is_empty() || k.len() > 200 || !k.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(Error::InvalidArgument(
                        "idempotency_key must be 1 to 200 visible ASCII characters".into(),
                    ));
                }
                Some((k.to_string(), format!("{k}.register")))
            }
            None => None,
        };

        // 1. A signed URL.
        let mut req = Req::api(Method::POST, "/images/upload-url").json(&json!({
            "dataset_id": dataset_id,
            "filename": filename,
            "folder_path": folder,
            "content_type": content_type,
        }));
        if let Some((k, _)) = &keys {
            req.idempotency_key = Some(k.clone());
        }
        // Parsed on the retrying path: an answer cut short is asked for again with the same
        // idempotency key, and `replayed` is read from the answer that arrived whole.
        let (headers, grant): (_, Value) = self.client.transport.parse_with_headers(req).await?;
        let replayed = headers.contains_key("idempotent-replayed");
        let upload_url: String = field(grant.clone(), &["upload_url"])?;
        let gcs_path: String = field(grant.clone(), &["gcs_path", "upload_id"])?;
        let put_type = grant
            .get("content_type")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or(content_type.clone())
            .unwrap_or_else(|| "application/octet-stream".into());

        // Refuse locally what the server announced it would refuse, before sending the bytes.
        let max_size = grant
            .get("max_size")
            .or_else(|| grant.pointer("/data/max_size"))
            .and_then(Value::as_u64);
        if let Some(max) = max_size.filter(|m| meta.len() > *m) {
            return Err(Error::Api(crate::error::ApiError {
                status: 413,
                message: format!(
                    "File is {} bytes; the server accepts at most {max}",
                    meta.len()
                ),
                code: Some("payload_too_large".into()),
                request_id: None,
                body: Box::new(Value::Null),
            }));
        }

        // 2. The bytes, streamed from disk. A replayed grant may already be registered.
        let put = Req {
            method: Method::PUT,
            url: upload_url,
            query: Vec::new(),
            body: ReqBody::File {
                path: path.to_path_buf(),
                len: meta.len(),
                content_type: put_type.clone(),
            },
            auth: false,
            idempotency_key: None,
            timeout: Some(self.client.transport.timeout.max(Duration::from_secs(300))),
            range_from: None,
        };
        match self.client.transport.send(&put).await {
            Ok(r) if matches!(r.status().as_u16(), 200 | 201) => {}
            Ok(r) => {
                return Err(Error::Api(crate::error::ApiError {
                    status: r.status().as_u16(),
                    message: format!("Upload failed: HTTP {}", r.status().as_u16()),
                    code: None,
                    request_id: None,
                    body: Box::new(Value::Null),
                }))
            }
            Err(Error::NotFound(_)) if replayed => {}
            Err(e) => return Err(e),
        }

        // 3. Register.
        let mut req = Req::api(Method::POST, "/images/register").json(&json!({
            "dataset_id": dataset_id,
            "filename": filename,
            "gcs_path": gcs_path,
            "folder_path": folder,
            "file_size": meta.len(),
            "mime_type": put_type,
        }));
        if let Some((_, k)) = &keys {
            req.idempotency_key = Some(k.clone());
        }
        let v = self.client.transport.json(req).await?;
        match v.get("image").filter(|i| i.is_object()) {
            Some(_) => field(v, &["image"]),
            None => {
                let id: String = field(v, &["image_id"])?;
                self.get(&id).await
            }
        }
    }

    /// Streams the image's original bytes into `output_path` (written to `<output_path>.part`
    /// first and renamed when complete). Answers the number of bytes written.
    pub async fn download(&self, image_id: &str, output_path: impl AsRef<Path>) -> Result<u64> {
        let dest = output_path.as_ref();
        if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| Error::io(parent, e))?;
        }
        let req = Req::api(Method::GET, &format!("/images/{}", segment(image_id)));
        self.client.transport.download(&req, dest, None).await
    }

    /// Archives the image (recoverable), or with `permanent` removes it and its bytes.
    pub async fn delete(&self, image_id: &str, permanent: bool) -> Result<()> {
        let mut req = Req::api(Method::DELETE, &format!("/images/{}", segment(image_id)));
        if permanent {
            req = req.query("permanent", "true");
        }
        req.timeout = Some(self.client.transport.timeout);
        self.client.transport.send(&req).await?;
        Ok(())
    }
}
