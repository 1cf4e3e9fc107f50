//! Shared harness for the HTTP integration tests: a real server on 127.0.0.1:0 over a temp
//! directory, API keys for every role, a small HTTP client, upload helpers and image makers.
//!
//! The backends come from the environment, so one suite runs against each combination:
//!
//! - `PICTOGRAPH_TEST_DATABASE`: `sqlite` (default) or `postgres` (a fresh database per server
//!   on the cluster named by `PICTOGRAPH_TEST_POSTGRES`);
//! - `PICTOGRAPH_TEST_BLOBS`: `disk` (default) or `s3` (an in-process s3s-fs per server).
//!
//! Each test binary includes this module and uses part of it.
#![allow(dead_code)]

#[path = "../pg/mod.rs"]
pub mod pg;
#[path = "../s3_server/mod.rs"]
pub mod s3_server;

use pictograph_server::auth::{self, Role};
use pictograph_server::{App, Config};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::Cursor;
use std::path::{Path, PathBuf};

/// Prefix of every developer API path.
pub const PFX: &str = "/api/v1/developer";

/// A sample HEIC photo (320x240), from the media crate's test data.
pub const HEIC_320X240: &[u8] = include_bytes!("../../../media/tests/data/sample-320x240.heic");

/// The PNG file signature.
pub const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The metadata database a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    /// SQLite under the data directory.
    Sqlite,
    /// A fresh PostgreSQL database on the test cluster.
    Postgres,
}

/// Where a test server keeps image bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blobs {
    /// The data directory's disk; uploads are PUT through the server.
    Disk,
    /// An in-process S3 server (s3s-fs); uploads are PUT straight into the bucket.
    S3,
}

/// The backends the suite runs against, from `PICTOGRAPH_TEST_DATABASE` and
/// `PICTOGRAPH_TEST_BLOBS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    /// Metadata database.
    pub database: Database,
    /// Byte store.
    pub blobs: Blobs,
}

impl Backend {
    /// Reads the environment; panics on a value it does not know.
    pub fn from_env() -> Backend {
        let var = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_ascii_lowercase())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        let database = match var("PICTOGRAPH_TEST_DATABASE", "sqlite").as_str() {
            "sqlite" => Database::Sqlite,
            "postgres" | "postgresql" => Database::Postgres,
            other => panic!("PICTOGRAPH_TEST_DATABASE={other:?}: use sqlite or postgres"),
        };
        let blobs = match var("PICTOGRAPH_TEST_BLOBS", "disk").as_str() {
            "disk" => Blobs::Disk,
            "s3" => Blobs::S3,
            other => panic!("PICTOGRAPH_TEST_BLOBS={other:?}: use disk or s3"),
        };
        Backend { database, blobs }
    }

    /// Whether bytes go to S3 (presigned PUTs straight into the bucket).
    pub fn is_s3(&self) -> bool {
        self.blobs == Blobs::S3
    }

    /// Whether metadata lives in PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.database == Database::Postgres
    }
}

/// The in-process S3 server behind a test server.
pub struct S3Store {
    /// The directory s3s-fs serves (one subdirectory per bucket).
    pub root: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The bucket the server writes to.
    pub bucket: String,
    /// The key prefix the server writes under.
    pub prefix: String,
}

impl S3Store {
    /// A URL for `method` on the object `key` (under the prefix), presigned with the
    /// credentials the server uses, valid for `ttl`.
    pub async fn presign(&self, method: &str, key: &str, ttl: std::time::Duration) -> String {
        use object_store::signer::Signer;
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&self.bucket)
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id(s3_server::ACCESS_KEY)
            .with_secret_access_key(s3_server::SECRET_KEY)
            .build()
            .expect("S3 client");
        let method = method.parse().expect("HTTP method");
        let path = object_store::path::Path::from(format!("{}/{key}", self.prefix));
        store
            .signed_url(method, &path, ttl)
            .await
            .expect("presigned URL")
            .to_string()
    }

    /// The file s3s-fs keeps an object's bytes in.
    pub fn object_file(&self, key: &str) -> PathBuf {
        self.root
            .path()
            .join(&self.bucket)
            .join(&self.prefix)
            .join(key)
    }
}

/// The key prefix test servers write under in their bucket.
pub const S3_PREFIX: &str = "suite";

/// A running server over its own temp directory, with keys for every role.
pub struct TestServer {
    app: Option<App>,
    /// Data directory (kept alive as long as the server).
    pub dir: tempfile::TempDir,
    backend: Backend,
    /// The S3 server, when bytes go to S3.
    pub s3: Option<S3Store>,
    /// The PostgreSQL database, when metadata lives there (dropped by `stop`).
    pub database_url: Option<String>,
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

    /// Asserts an error answered by the S3 server (not ours): the status and an S3 XML error
    /// body with `<Code>code</Code>`. Returns the body text.
    #[track_caller]
    pub fn s3_error(self, status: u16, code: &str) -> String {
        let body = String::from_utf8_lossy(&self.bytes).into_owned();
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {body}"
        );
        assert!(
            body.contains("<Error>") && body.contains(&format!("<Code>{code}</Code>")),
            "an S3 error {code} expected, got: {body}"
        );
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
    /// A connection to the server's metadata database, for checks (and faults) below the API.
    pub async fn db(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        let url = self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.dir.path().join("pictograph.db").to_string_lossy()
            )
        });
        sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .expect("open the database")
    }

    /// A server with default settings (no grace period for freed bytes).
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// A server on the backends the environment names (see [`Backend::from_env`]), whose
    /// configuration `tune` adjusts first.
    pub async fn start_with(tune: impl FnOnce(&mut Config)) -> TestServer {
        log_errors();
        let backend = Backend::from_env();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = config(dir.path());
        let database_url = match backend.database {
            Database::Sqlite => None,
            Database::Postgres => Some(pg::fresh_database().await),
        };
        config.database_url = database_url.clone();
        let s3 = match backend.blobs {
            Blobs::Disk => None,
            Blobs::S3 => {
                let root = tempfile::tempdir().expect("temp dir");
                let endpoint = s3_server::start_s3(root.path()).await;
                // The same credentials for every test server, read when the app starts.
                s3_server::credentials_env();
                let store = S3Store {
                    root,
                    endpoint,
                    bucket: s3_server::BUCKET.to_string(),
                    prefix: S3_PREFIX.to_string(),
                };
                config.blobs_url = Some(format!(
                    "s3://{}/{}?endpoint={}&region=us-east-1",
                    store.bucket, store.prefix, store.endpoint
                ));
                Some(store)
            }
        };
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
            backend,
            s3,
            database_url,
            app: Some(app),
        }
    }

    /// The backends this server runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks the point reads a test made at once, by `stats`: on PostgreSQL some were
    /// answered by shared statements (fewer statements than reads); on SQLite none are
    /// gathered (`None`).
    pub fn assert_gathered(&self, stats: Option<pictograph_server::store::GatherStats>) {
        if self.backend.is_postgres() {
            let stats = stats.expect("PostgreSQL gathers reads");
            assert!(stats.reads > 0, "no read was gathered: {stats:?}");
            assert!(
                stats.statements < stats.reads,
                "every read took a statement of its own: {stats:?}"
            );
        } else {
            assert_eq!(stats, None);
        }
    }

    /// The S3 server behind this server; panics on disk.
    #[track_caller]
    pub fn s3(&self) -> &S3Store {
        self.s3
            .as_ref()
            .expect("this server keeps its bytes on disk, not in S3")
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

    /// Where the bytes with this SHA-256 live on disk (disk backend only: under S3 there is
    /// no such file, see [`TestServer::blob_file`]).
    #[track_caller]
    pub fn blob_path(&self, hash: &str) -> PathBuf {
        assert!(
            !self.backend.is_s3(),
            "blob_path is the disk layout; this server keeps its bytes in S3"
        );
        self.app().state.blobs.path(hash).expect("valid hash")
    }

    /// The file holding the stored bytes of this SHA-256, whatever the backend: the blob file
    /// on disk, or the object `prefix/blobs/ab/cd/<hash>` in the S3 server's directory.
    pub fn blob_file(&self, hash: &str) -> PathBuf {
        match &self.s3 {
            None => self.blob_path(hash),
            Some(s3) => {
                assert!(
                    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
                    "not a SHA-256: {hash}"
                );
                s3.object_file(&format!("blobs/{}/{}/{hash}", &hash[..2], &hash[2..4]))
            }
        }
    }

    /// Whether the bytes with this SHA-256 are stored (on disk, or as an object in the bucket).
    pub fn blob_stored(&self, hash: &str) -> bool {
        self.blob_file(hash).is_file()
    }

    /// Every stored blob (files under the blob directory, or objects under `prefix/blobs/`);
    /// staged uploads are not included (see [`TestServer::staged_uploads`]).
    pub fn blob_files(&self) -> Vec<PathBuf> {
        match &self.s3 {
            None => files_under(&self.dir.path().join("blobs")),
            Some(s3) => files_under(&s3.object_file("blobs")),
        }
    }

    /// Objects clients PUT through presigned URLs that register has not consumed yet
    /// (`prefix/uploads/`). Always empty on disk, where PUTs go through the server.
    pub fn staged_uploads(&self) -> Vec<PathBuf> {
        match &self.s3 {
            None => Vec::new(),
            Some(s3) => files_under(&s3.object_file("uploads")),
        }
    }

    /// Every object in the S3 bucket, as keys relative to the bucket; empty on disk.
    pub fn bucket_objects(&self) -> Vec<String> {
        match &self.s3 {
            None => Vec::new(),
            Some(s3) => {
                let bucket = s3.root.path().join(&s3.bucket);
                files_under(&bucket)
                    .into_iter()
                    .map(|p| {
                        p.strip_prefix(&bucket)
                            .expect("under the bucket")
                            .to_string_lossy()
                            .into_owned()
                    })
                    .collect()
            }
        }
    }

    /// Stops the server and waits for it, then drops its PostgreSQL database.
    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await.expect("clean shutdown");
        }
        if let Some(url) = self.database_url.take() {
            pg::drop_database(&url).await;
        }
    }
}

/// Sends the servers' error events to the test's output, shown when a test fails: a 500
/// in a failed test then says what went wrong.
fn log_errors() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "pictograph_server=error",
            ))
            .try_init();
    });
}

/// Every file under `dir`, sorted; none when it does not exist.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
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
    walk(dir, &mut out);
    out.sort();
    out
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
