//! Shared harness for the HTTP integration tests: a real server on 127.0.0.1:0 over a temp
//! directory, API keys for every role, a small HTTP client, upload helpers and image makers.
//!
//! Each test binary includes this module and uses part of it.
#![allow(dead_code)]

use pictograph_server::auth::{self, Role};
use pictograph_server::{App, Config};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::Cursor;
use std::path::PathBuf;

/// Prefix of every developer API path.
pub const PFX: &str = "/api/v1/developer";

/// A sample HEIC photo (320x240), from the media crate's test data.
pub const HEIC_320X240: &[u8] = include_bytes!("../../../media/tests/data/sample-320x240.heic");

/// The PNG file signature.
pub const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// A running server over its own temp directory, with keys for every role.
pub struct TestServer {
    app: Option<App>,
    /// Data directory (kept alive as long as the server).
    pub dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A client with no API key that does not follow redirects.
    pub anon: Client,
    /// Member of org A.
    pub member: Client,
    /// Admin of org A.
    pub admin: Client,
    /// Owner of org A.
    pub owner: Client,
    /// Owner of org B.
    pub other: Client,
}

/// A plain HTTP client bound to a server, optionally sending `X-API-Key`.
#[derive(Clone)]
pub struct Client {
    /// Server base URL.
    pub base: String,
    /// The API key sent, if any.
    pub key: Option<String>,
    http: reqwest::Client,
}

/// A fully read response.
#[derive(Debug)]
pub struct Resp {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Raw body.
    pub bytes: Vec<u8>,
}

impl Resp {
    /// The body as JSON; panics with the body text when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}), status {}: {:?}",
                self.status,
                String::from_utf8_lossy(&self.bytes)
            )
        })
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("header is text").to_string())
    }

    /// Asserts the status, showing the body when it differs; returns self for chaining.
    #[track_caller]
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.bytes)
        );
        self
    }

    /// Asserts the status and returns the JSON body.
    #[track_caller]
    pub fn ok_json(self, status: u16) -> Value {
        self.expect(status).json()
    }

    /// Asserts an error answer: the status, a JSON body whose `detail` is a non-empty string
    /// (or, for field errors, a non-empty list), `error.code`, and an `x-request-id` header.
    /// Returns the body.
    #[track_caller]
    pub fn error(self, status: u16, code: &str) -> Value {
        let rid = self.header("x-request-id");
        let body = self.expect(status).json();
        assert!(
            rid.is_some_and(|r| !r.is_empty()),
            "error without x-request-id"
        );
        assert_eq!(body["error"]["code"], json!(code), "error code in {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "error.message empty in {body}");
        match &body["detail"] {
            Value::String(s) => assert!(!s.is_empty(), "empty detail in {body}"),
            Value::Array(items) => {
                assert!(!items.is_empty(), "empty detail list in {body}");
                for item in items {
                    assert!(item["loc"].is_array(), "detail item without loc: {item}");
                    assert!(item["msg"].is_string(), "detail item without msg: {item}");
                }
            }
            other => panic!("detail is neither a string nor a list: {other}"),
        }
        body
    }

    /// Asserts an error whose `detail` is a string; returns that string.
    #[track_caller]
    pub fn error_detail(self, status: u16, code: &str) -> String {
        let body = self.error(status, code);
        body["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("detail is not a string: {body}"))
            .to_string()
    }

    /// Asserts a 422 whose `detail` is a list of FastAPI-style items; returns the list.
    #[track_caller]
    pub fn field_errors(self) -> Vec<Value> {
        let body = self.error(422, "validation_error");
        let list = body["detail"]
            .as_array()
            .unwrap_or_else(|| panic!("detail is not a list: {body}"))
            .clone();
        assert_eq!(
            body["error"]["details"]["errors"].as_array().map(Vec::len),
            Some(list.len()),
            "error.details.errors mirrors detail: {body}"
        );
        list
    }
}

/// Options for starting a server.
pub fn config(dir: &std::path::Path) -> Config {
    let mut config = Config::new(dir);
    config.listen = "127.0.0.1:0".parse().expect("address");
    config.blob_grace_secs = 0;
    config
}

impl TestServer {
    /// A server with default settings (no grace period for freed bytes).
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// A server whose configuration `tune` adjusts first.
    pub async fn start_with(tune: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = config(dir.path());
        tune(&mut config);
        let app = App::start(config).await.expect("server starts");
        let base = format!("http://{}", app.addr);
        let store = &app.state.store;
        let member = auth::create_key(store, "org-a", Role::Member, "unlimited")
            .await
            .expect("key");
        let admin = auth::create_key(store, "org-a", Role::Admin, "unlimited")
            .await
            .expect("key");
        let owner = auth::create_key(store, "org-a", Role::Owner, "unlimited")
            .await
            .expect("key");
        let other = auth::create_key(store, "org-b", Role::Owner, "unlimited")
            .await
            .expect("key");
        TestServer {
            anon: Client::new(&base, None),
            member: Client::new(&base, Some(member)),
            admin: Client::new(&base, Some(admin)),
            owner: Client::new(&base, Some(owner)),
            other: Client::new(&base, Some(other)),
            base,
            dir,
            app: Some(app),
        }
    }

    /// The running application (store, blobs, signer, configuration).
    pub fn app(&self) -> &App {
        self.app.as_ref().expect("running")
    }

    /// A client with a fresh key of `role` and `tier` in organisation `org`.
    pub async fn key(&self, org: &str, role: Role, tier: &str) -> Client {
        let key = auth::create_key(&self.app().state.store, org, role, tier)
            .await
            .expect("key");
        Client::new(&self.base, Some(key))
    }

    /// Where the bytes with this SHA-256 live on disk.
    pub fn blob_path(&self, hash: &str) -> PathBuf {
        self.app().state.blobs.path(hash).expect("valid hash")
    }

    /// Whether the bytes with this SHA-256 are on disk.
    pub fn blob_on_disk(&self, hash: &str) -> bool {
        self.blob_path(hash).is_file()
    }

    /// Every file under the blob directory.
    pub fn blob_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.dir.path().join("blobs"), &mut out);
        out.sort();
        out
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await.expect("clean shutdown");
        }
    }
}

impl Client {
    /// A client for `base`, sending `key` when given.
    pub fn new(base: &str, key: Option<String>) -> Client {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        Client {
            base: base.to_string(),
            key,
            http,
        }
    }

    /// The same client with another key.
    pub fn with_key(&self, key: &str) -> Client {
        Client {
            base: self.base.clone(),
            key: Some(key.to_string()),
            http: self.http.clone(),
        }
    }

    /// An absolute URL: kept as is when absolute, joined to the base when it starts with
    /// `/`, and joined to the developer prefix otherwise.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") {
            path.to_string()
        } else if path.starts_with('/') {
            format!("{}{path}", self.base)
        } else {
            format!("{}{PFX}/{path}", self.base)
        }
    }

    /// A request with the key attached.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let rb = self.http.request(method, self.url(path));
        match &self.key {
            Some(k) => rb.header("X-API-Key", k),
            None => rb,
        }
    }

    /// Sends and reads the whole answer.
    pub async fn send(rb: reqwest::RequestBuilder) -> Resp {
        let resp = rb.send().await.expect("request sent");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body read").to_vec();
        Resp {
            status,
            headers,
            bytes,
        }
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Resp {
        Client::send(self.request(Method::GET, path)).await
    }

    /// GET with extra headers.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut rb = self.request(Method::GET, path);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        Client::send(rb).await
    }

    /// POST a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        Client::send(self.request(Method::POST, path).json(body)).await
    }

    /// POST a JSON body with an `Idempotency-Key`.
    pub async fn post_idem(&self, path: &str, body: &Value, idem: &str) -> Resp {
        Client::send(
            self.request(Method::POST, path)
                .header("Idempotency-Key", idem)
                .json(body),
        )
        .await
    }

    /// PATCH a JSON body.
    pub async fn patch(&self, path: &str, body: &Value) -> Resp {
        Client::send(self.request(Method::PATCH, path).json(body)).await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> Resp {
        Client::send(self.request(Method::DELETE, path)).await
    }

    // ---- datasets ----

    /// Creates a dataset (`POST projects/`) and returns the project JSON.
    pub async fn create_dataset(&self, name: &str) -> Value {
        self.create_dataset_with(&json!({ "name": name })).await
    }

    /// Creates a dataset from a full body and returns the project JSON.
    pub async fn create_dataset_with(&self, body: &Value) -> Value {
        let v = self.post("projects/", body).await.ok_json(201);
        v["project"].clone()
    }

    /// The dataset JSON by name.
    pub async fn dataset(&self, name: &str) -> Value {
        let path = format!("datasets/by-name/{}", enc(name));
        self.get(&path).await.ok_json(200)["dataset"].clone()
    }

    /// The dataset's counters: (image_count, completed_image_count, archived_images,
    /// total_size, annotation_count).
    pub async fn counts(&self, name: &str) -> Counts {
        let d = self.dataset(name).await;
        let n = |k: &str| {
            d[k].as_i64()
                .unwrap_or_else(|| panic!("{k} missing in {d}"))
        };
        Counts {
            images: n("image_count"),
            completed: n("completed_image_count"),
            archived: n("archived_images"),
            total_size: n("total_size"),
            annotations: n("annotation_count"),
        }
    }

    /// Every live image of a dataset, in listing order.
    pub async fn images(&self, name: &str) -> Vec<Value> {
        let path = format!(
            "datasets/by-name/{}?include_images=true&images_limit=10000",
            enc(name)
        );
        let d = self.get(&path).await.ok_json(200);
        d["dataset"]["images"]
            .as_array()
            .expect("images embedded")
            .clone()
    }

    /// An image's metadata JSON (`image`).
    pub async fn image(&self, id: &str) -> Value {
        self.get(&format!("images/{id}/metadata"))
            .await
            .ok_json(200)["image"]
            .clone()
    }

    // ---- uploads ----

    /// `POST images/upload-url`.
    pub async fn upload_url(
        &self,
        dataset_id: &str,
        folder: &str,
        filename: &str,
        content_type: &str,
    ) -> Resp {
        self.post(
            "images/upload-url",
            &json!({
                "dataset_id": dataset_id,
                "filename": filename,
                "folder_path": folder,
                "content_type": content_type,
            }),
        )
        .await
    }

    /// PUT bytes to a signed URL, without an API key, as the client does.
    pub async fn put_bytes(&self, url: &str, bytes: &[u8], content_type: &str) -> Resp {
        Client::send(
            self.http
                .put(url)
                .header("Content-Type", content_type)
                .body(bytes.to_vec()),
        )
        .await
    }

    /// `POST images/register`, form-encoded like the 1.6.3 client, with unknown dimensions
    /// sent as empty strings.
    pub async fn register(&self, signed: &Value, reg: &Register<'_>) -> Resp {
        let mut rb = self.request(Method::POST, "images/register");
        if let Some(k) = reg.idempotency_key {
            rb = rb.header("Idempotency-Key", k);
        }
        let dim = |d: Option<u32>| d.map(|v| v.to_string()).unwrap_or_default();
        let form = [
            ("dataset_id", reg.dataset_id.to_string()),
            ("filename", reg.filename.to_string()),
            ("gcs_bucket", text(&signed["gcs_bucket"])),
            ("gcs_path", text(&signed["gcs_path"])),
            ("gcs_uri", text(&signed["gcs_uri"])),
            ("folder_path", reg.folder.to_string()),
            ("file_size", reg.file_size.to_string()),
            ("mime_type", reg.mime_type.to_string()),
            ("image_width", dim(reg.width)),
            ("image_height", dim(reg.height)),
        ];
        Client::send(rb.form(&form)).await
    }

    /// The whole upload flow (upload-url → PUT → register → metadata); returns the image JSON.
    pub async fn upload(
        &self,
        dataset_id: &str,
        folder: &str,
        filename: &str,
        bytes: &[u8],
        content_type: &str,
    ) -> Value {
        let signed = self
            .upload_url(dataset_id, folder, filename, content_type)
            .await
            .ok_json(200);
        let url = signed["upload_url"].as_str().expect("upload_url");
        self.put_bytes(url, bytes, content_type).await.expect(200);
        let reg = Register {
            dataset_id,
            folder,
            filename,
            file_size: bytes.len(),
            mime_type: content_type,
            width: None,
            height: None,
            idempotency_key: None,
        };
        let registered = self.register(&signed, &reg).await;
        assert!(
            registered.status.is_success(),
            "register failed: {} {}",
            registered.status,
            String::from_utf8_lossy(&registered.bytes)
        );
        let id = registered.json()["image_id"]
            .as_str()
            .expect("image_id")
            .to_string();
        self.image(&id).await
    }

    /// Uploads a small distinct PNG (`seed` varies the pixels) and returns the image JSON.
    pub async fn upload_png(
        &self,
        dataset_id: &str,
        folder: &str,
        filename: &str,
        seed: u8,
    ) -> Value {
        let bytes = png_seeded(8, 6, seed);
        self.upload(dataset_id, folder, filename, &bytes, "image/png")
            .await
    }

    // ---- batch ----

    /// `POST batch/images/{op}`.
    pub async fn batch(&self, op: &str, body: &Value) -> Resp {
        self.post(&format!("batch/images/{op}"), body).await
    }
}

/// Fields of a register call.
pub struct Register<'a> {
    /// Dataset id.
    pub dataset_id: &'a str,
    /// Folder.
    pub folder: &'a str,
    /// File name.
    pub filename: &'a str,
    /// Size sent.
    pub file_size: usize,
    /// MIME type sent.
    pub mime_type: &'a str,
    /// Width sent (empty string when `None`).
    pub width: Option<u32>,
    /// Height sent (empty string when `None`).
    pub height: Option<u32>,
    /// `Idempotency-Key` header.
    pub idempotency_key: Option<&'a str>,
}

/// Dataset counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// image_count.
    pub images: i64,
    /// completed_image_count.
    pub completed: i64,
    /// archived_images.
    pub archived: i64,
    /// total_size.
    pub total_size: i64,
    /// annotation_count.
    pub annotations: i64,
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// Percent-encodes a path segment the way the client does (`quote(name, safe='')`).
pub fn enc(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

/// SHA-256 of bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The string value of a JSON field; panics when absent.
#[track_caller]
pub fn s(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
        .to_string()
}

/// A JSON list of the string values under `key` of each item.
pub fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|i| s(i, "id")).collect()
}

// ---- images ----

/// An RGB image whose pixels depend on `seed`, so distinct seeds give distinct bytes.
pub fn pixels(w: u32, h: u32, seed: u8) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x as u8).wrapping_mul(31).wrapping_add(seed),
            (y as u8)
                .wrapping_mul(17)
                .wrapping_add(seed.wrapping_mul(3)),
            seed ^ ((x + y) as u8),
        ])
    })
}

/// Encodes a `w`x`h` image in `format`.
pub fn encode(format: image::ImageFormat, w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::DynamicImage::ImageRgb8(pixels(w, h, seed));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode image");
    out.into_inner()
}

/// A PNG.
pub fn png(w: u32, h: u32) -> Vec<u8> {
    encode(image::ImageFormat::Png, w, h, 0)
}

/// A PNG with seeded pixels.
pub fn png_seeded(w: u32, h: u32, seed: u8) -> Vec<u8> {
    encode(image::ImageFormat::Png, w, h, seed)
}

/// A JPEG.
pub fn jpeg(w: u32, h: u32) -> Vec<u8> {
    encode(image::ImageFormat::Jpeg, w, h, 1)
}

/// A GIF.
pub fn gif(w: u32, h: u32) -> Vec<u8> {
    encode(image::ImageFormat::Gif, w, h, 2)
}

/// A BMP.
pub fn bmp(w: u32, h: u32) -> Vec<u8> {
    encode(image::ImageFormat::Bmp, w, h, 3)
}

/// A TIFF.
pub fn tiff(w: u32, h: u32) -> Vec<u8> {
    encode(image::ImageFormat::Tiff, w, h, 4)
}

/// A lossless WebP.
pub fn webp(w: u32, h: u32) -> Vec<u8> {
    encode(image::ImageFormat::WebP, w, h, 5)
}

/// Inserts JPEG marker segments right after the SOI marker.
fn with_segments(jpeg: &[u8], segments: &[(u8, Vec<u8>)]) -> Vec<u8> {
    assert!(jpeg.starts_with(&[0xFF, 0xD8]), "a JPEG");
    let mut out = jpeg[..2].to_vec();
    for (marker, payload) in segments {
        let len = u16::try_from(payload.len() + 2).expect("segment fits");
        out.extend_from_slice(&[0xFF, *marker]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(payload);
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A `w`x`h` JPEG whose EXIF says to display it with `orientation` (6 = rotate 90°
/// clockwise), as phone cameras write them.
pub fn jpeg_with_orientation(w: u32, h: u32, orientation: u16) -> Vec<u8> {
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend_from_slice(b"II*\0");
    exif.extend_from_slice(&8u32.to_le_bytes()); // first IFD
    exif.extend_from_slice(&1u16.to_le_bytes()); // one entry
    exif.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    exif.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    exif.extend_from_slice(&1u32.to_le_bytes()); // count
    exif.extend_from_slice(&orientation.to_le_bytes());
    exif.extend_from_slice(&[0, 0]); // value padding
    exif.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    with_segments(&jpeg(w, h), &[(0xE1, exif)])
}

/// A `w`x`h` JPEG carrying `extra` bytes of application segments before its frame header
/// (ICC profiles, XMP and maker notes in camera files).
pub fn jpeg_with_metadata(w: u32, h: u32, extra: usize) -> Vec<u8> {
    let mut segments = Vec::new();
    let mut left = extra;
    while left > 0 {
        let n = left.min(60_000);
        segments.push((0xEF, vec![0u8; n]));
        left -= n;
    }
    with_segments(&jpeg(w, h), &segments)
}
