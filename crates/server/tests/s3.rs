//! Image bytes in S3-compatible storage: a real S3 server (s3s-fs) in-process on 127.0.0.1,
//! the client PUTs straight into the bucket through a presigned URL, and register verifies,
//! hashes and moves the object before the image becomes visible.

mod s3_server;

use pictograph_server::auth::{create_key, Role};
use pictograph_server::{App, Config};
use reqwest::StatusCode;
use s3_server::{credentials_env, start_s3, BUCKET};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

struct Env {
    _dir: tempfile::TempDir,
    s3_root: PathBuf,
    endpoint: String,
    app: App,
    base: String,
    key: String,
    http: reqwest::Client,
}

async fn start(max_upload: u64) -> Env {
    start_with(max_upload, 3600).await
}

async fn start_with(max_upload: u64, url_ttl: u64) -> Env {
    start_configured(|c| {
        c.max_upload_bytes = max_upload;
        c.url_ttl_secs = url_ttl;
    })
    .await
}

async fn start_configured(configure: impl FnOnce(&mut Config)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let s3_root = dir.path().join("s3");
    let endpoint = start_s3(&s3_root).await;
    start_on(dir, s3_root, endpoint, None, configure).await
}

/// A server on the data directory under `dir` and the S3 server at `endpoint` (serving
/// `s3_root`), with `key` or else a new owner key.
async fn start_on(
    dir: tempfile::TempDir,
    s3_root: PathBuf,
    endpoint: String,
    key: Option<String>,
    configure: impl FnOnce(&mut Config),
) -> Env {
    // Every test of this file uses the same credentials (read from the environment when the
    // app starts) and names its own endpoint in the URL.
    credentials_env();
    let mut config = Config::new(dir.path().join("data"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.blobs_url = Some(format!(
        "s3://{BUCKET}/pg-test?endpoint={endpoint}&region=us-east-1"
    ));
    config.blob_grace_secs = 0;
    configure(&mut config);
    let app = App::start(config).await.unwrap();
    let key = match key {
        Some(key) => key,
        None => create_key(&app.state.store, "org", Role::Owner, "unlimited")
            .await
            .unwrap(),
    };
    Env {
        base: format!("http://{}", app.addr),
        _dir: dir,
        s3_root,
        endpoint,
        app,
        key,
        http: reqwest::Client::new(),
    }
}

impl Env {
    fn api(&self, path: &str) -> String {
        format!("{}/api/v1/developer{path}", self.base)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.api(path))
            .header("x-api-key", &self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.api(path))
            .header("x-api-key", &self.key)
            .send()
            .await
            .unwrap()
    }

    /// Files under the bucket (relative paths), ignoring s3s-fs bookkeeping.
    fn objects(&self) -> Vec<String> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else {
                    out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        let mut out = Vec::new();
        let base = self.s3_root.join(BUCKET);
        walk(&base, &base, &mut out);
        out.sort();
        out
    }

    /// upload-url → PUT to the presigned URL → register; returns (register status, body).
    async fn upload(
        &self,
        dataset: &str,
        name: &str,
        bytes: Vec<u8>,
        mime: &str,
    ) -> (StatusCode, Value) {
        let (s, u) = self
            .post("/images/upload-url", json!({"dataset_id": dataset, "filename": name, "folder_path": "/", "content_type": mime}))
            .await;
        assert_eq!(s, StatusCode::OK, "{u}");
        let url = u["upload_url"].as_str().unwrap();
        assert!(
            !url.starts_with(&self.base),
            "bytes go straight to the bucket, not through the server: {url}"
        );
        let put = self
            .http
            .put(url)
            .header("content-type", mime)
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert!(put.status().is_success(), "presigned PUT: {}", put.status());
        self.register(dataset, name, mime, &u).await
    }

    /// An upload URL for the PNG `name` in the root folder of `dataset`.
    async fn sign_png(&self, dataset: &str, name: &str) -> (StatusCode, Value) {
        self.post(
            "/images/upload-url",
            json!({"dataset_id": dataset, "filename": name, "folder_path": "/", "content_type": "image/png"}),
        )
        .await
    }

    /// Registers the upload `u` (an upload-url answer) as `name` in the root folder.
    async fn register(
        &self,
        dataset: &str,
        name: &str,
        mime: &str,
        u: &Value,
    ) -> (StatusCode, Value) {
        let form = [
            ("dataset_id", dataset),
            ("filename", name),
            ("gcs_bucket", u["gcs_bucket"].as_str().unwrap()),
            ("gcs_path", u["gcs_path"].as_str().unwrap()),
            ("gcs_uri", u["gcs_uri"].as_str().unwrap()),
            ("folder_path", "/"),
            ("file_size", "0"),
            ("mime_type", mime),
            ("image_width", ""),
            ("image_height", ""),
        ];
        let r = self
            .http
            .post(self.api("/images/register"))
            .header("x-api-key", &self.key)
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap())
    }
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let n = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) as u8;
        image::Rgb([n, n.wrapping_mul(3), (x * 7) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

async fn dataset(env: &Env, name: &str) -> String {
    let (s, v) = env.post("/projects/", json!({"name": name})).await;
    assert_eq!(s, StatusCode::CREATED);
    v["project"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn presigned_upload_is_verified_hashed_and_served() {
    let env = start(50 * 1024 * 1024).await;
    let ds = dataset(&env, "s3-set").await;
    let bytes = png(31, 17);
    let (s, v) = env.upload(&ds, "a.png", bytes.clone(), "image/png").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let img = &v["image"];
    assert_eq!(
        (img["width"].as_i64(), img["height"].as_i64()),
        (Some(31), Some(17))
    );
    assert_eq!(img["file_size"].as_i64(), Some(bytes.len() as i64));

    let hash = sha256_hex(&bytes);
    let objects = env.objects();
    assert!(
        objects.iter().any(|o| o.ends_with(&format!(
            "pg-test/blobs/{}/{}/{hash}",
            &hash[..2],
            &hash[2..4]
        ))),
        "{objects:?}"
    );
    assert!(
        !objects.iter().any(|o| o.contains("uploads/")),
        "the staged upload object is removed: {objects:?}"
    );

    let id = img["id"].as_str().unwrap();
    let got = env.get(&format!("/images/{id}")).await;
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.headers()["etag"], format!("\"{hash}\"").as_str());
    assert_eq!(got.bytes().await.unwrap().as_ref(), bytes.as_slice());

    let part = env
        .http
        .get(env.api(&format!("/images/{id}")))
        .header("x-api-key", &env.key)
        .header("range", "bytes=8-15")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.unwrap().as_ref(), &bytes[8..16]);

    // The signed download URL works without a key.
    let url = img["image_url"].as_str().unwrap();
    let plain = env.http.get(url).send().await.unwrap();
    assert_eq!(plain.bytes().await.unwrap().as_ref(), bytes.as_slice());

    // Same name again: conflict before any bytes move.
    let (s, _) = env.post("/images/upload-url", json!({"dataset_id": ds, "filename": "a.png", "folder_path": "/", "content_type": "image/png"})).await;
    assert_eq!(s, StatusCode::CONFLICT);

    // Permanent delete frees the object once nothing refers to it.
    let del = env
        .http
        .delete(env.api(&format!("/images/{id}?permanent=true")))
        .header("x-api-key", &env.key)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::OK);
    assert!(
        !env.objects().iter().any(|o| o.ends_with(&hash)),
        "{:?}",
        env.objects()
    );
    env.app.stop().await.unwrap();
}

/// With `uploads=server` in the bucket URL, the upload URL is the server's own: the PUT's
/// bytes are checked and stored under their hash in the bucket by the server, nothing is
/// staged under `uploads/`, and two files of the same bytes share one object.
#[tokio::test]
async fn uploads_through_the_server_are_stored_once_under_their_hash() {
    let env = start_configured(|c| {
        let url = c.blobs_url.take().unwrap();
        c.blobs_url = Some(format!("{url}&uploads=server"));
    })
    .await;
    let ds = dataset(&env, "s3-through").await;
    let bytes = png(23, 29);
    let hash = sha256_hex(&bytes);
    let mut ids = Vec::new();
    for name in ["a.png", "b.png"] {
        let (s, u) = env.sign_png(&ds, name).await;
        assert_eq!(s, StatusCode::OK, "{u}");
        let url = u["upload_url"].as_str().unwrap();
        assert!(
            url.starts_with(&env.base),
            "the server takes the PUT: {url}"
        );
        let put = env
            .http
            .put(url)
            .header("content-type", "image/png")
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            put.status(),
            StatusCode::OK,
            "{}",
            put.text().await.unwrap()
        );
        let objects = env.objects();
        assert!(
            objects.iter().all(|o| !o.contains("uploads/")),
            "nothing is staged: {objects:?}"
        );
        let (status, v) = env.register(&ds, name, "image/png", &u).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        assert_eq!(v["image"]["width"].as_i64(), Some(23), "{v}");
        ids.push(v["image"]["id"].as_str().unwrap().to_string());
    }
    let stored: Vec<String> = env
        .objects()
        .into_iter()
        .filter(|o| o.starts_with("pg-test/"))
        .collect();
    assert_eq!(
        stored,
        vec![format!(
            "pg-test/blobs/{}/{}/{hash}",
            &hash[..2],
            &hash[2..4]
        )],
        "one object, under the hash"
    );
    for id in &ids {
        let got = env.get(&format!("/images/{id}")).await;
        assert_eq!(got.status(), StatusCode::OK);
        assert_eq!(got.bytes().await.unwrap().as_ref(), bytes.as_slice());
    }
    env.app.stop().await.unwrap();
}

/// Servers restarted with the other way of taking uploads (presigned URLs, or uploads through
/// the server) take the uploads whose URLs were handed out before the switch.
#[tokio::test]
async fn upload_urls_handed_out_before_a_switch_of_upload_mode_still_work() {
    let restart = |env: Env, mode: &'static str| async move {
        let Env {
            _dir,
            s3_root,
            endpoint,
            app,
            key,
            ..
        } = env;
        app.stop().await.unwrap();
        start_on(_dir, s3_root, endpoint, Some(key), |c| {
            let url = c.blobs_url.take().unwrap();
            c.blobs_url = Some(format!("{url}&uploads={mode}"));
        })
        .await
    };
    let env = start(50 * 1024 * 1024).await;
    let ds = dataset(&env, "s3-switch").await;
    let (s, presigned) = env.sign_png(&ds, "a.png").await;
    assert_eq!(s, StatusCode::OK, "{presigned}");

    let env = restart(env, "server").await;
    let (s, through) = env.sign_png(&ds, "b.png").await;
    assert_eq!(s, StatusCode::OK, "{through}");
    let put = |url: String, bytes: Vec<u8>| {
        env.http
            .put(url)
            .header("content-type", "image/png")
            .body(bytes)
            .send()
    };
    let a = png(11, 7);
    let r = put(
        presigned["upload_url"].as_str().unwrap().to_string(),
        a.clone(),
    )
    .await
    .unwrap();
    assert!(
        r.status().is_success(),
        "PUT into the bucket: {}",
        r.status()
    );
    let (s, v) = env.register(&ds, "a.png", "image/png", &presigned).await;
    assert_eq!(s, StatusCode::CREATED, "a presigned upload registers: {v}");
    let a_id = v["image"]["id"].as_str().unwrap().to_string();

    let env = restart(env, "presigned").await;
    // The server's own URL, at the address this server now listens on.
    let old = through["upload_url"].as_str().unwrap();
    let path = &old[old.find("/files/").unwrap()..];
    let b = png(13, 5);
    let r = env
        .http
        .put(format!("{}{path}", env.base))
        .header("content-type", "image/png")
        .body(b.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "PUT to the server");
    let (s, v) = env.register(&ds, "b.png", "image/png", &through).await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "an upload through the server registers: {v}"
    );
    for (id, bytes) in [
        (a_id, a),
        (v["image"]["id"].as_str().unwrap().to_string(), b),
    ] {
        let got = env.get(&format!("/images/{id}")).await;
        assert_eq!(got.bytes().await.unwrap().as_ref(), bytes.as_slice());
    }
    env.app.stop().await.unwrap();
}

#[tokio::test]
async fn register_rejects_wrong_type_and_oversize_objects_and_removes_them() {
    let env = start(2_000).await;
    let ds = dataset(&env, "s3-bad").await;
    let (s, v) = env.upload(&ds, "fake.jpg", png(8, 8), "image/jpeg").await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{v}");
    let (s, v) = env.upload(&ds, "big.png", png(200, 200), "image/png").await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(
        env.objects()
            .iter()
            .all(|o| !o.contains("uploads/") && !o.contains("blobs/")),
        "{:?}",
        env.objects()
    );
    let d = env
        .get("/datasets/by-name/s3-bad")
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(d["dataset"]["image_count"], 0);
    env.app.stop().await.unwrap();
}

/// Files of a bulk register that do not fit in the upload memory together are taken in as
/// memory frees (their reads started again after the wait): each is registered with its own
/// bytes, and no staged object is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_register_takes_in_more_than_its_memory_holds_at_once() {
    // An organisation holds half the budget: one of these files at a time.
    let env = start_configured(|c| c.upload_memory_bytes = 8 * 1024).await;
    let _ = dataset(&env, "tight").await;
    let files: Vec<(String, Vec<u8>)> = (0..12u32)
        .map(|i| (format!("t{i:02}.png"), png(40 + i, 40)))
        .collect();
    assert!(files.iter().all(|(_, b)| b.len() > 4 * 1024));
    let (s, urls) = env
        .post("/images/bulk-upload-url", json!({"dataset": "tight", "images": files.iter().map(|(f, _)| json!(
            {"filename": f, "directory_path": "/", "content_type": "image/png"})).collect::<Vec<_>>()}))
        .await;
    assert_eq!(s, StatusCode::OK, "{urls}");
    let entries = urls["upload_urls"].as_array().unwrap();
    for (entry, (_, bytes)) in entries.iter().zip(&files) {
        let put = env
            .http
            .put(entry["upload_url"].as_str().unwrap())
            .header("content-type", "image/png")
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert!(put.status().is_success(), "presigned PUT: {}", put.status());
    }
    let regs: Vec<Value> = entries
        .iter()
        .zip(&files)
        .map(|(e, (f, _))| json!({"upload_id": e["upload_id"], "filename": f, "directory_path": "/"}))
        .collect();
    let (s, reg) = env
        .post(
            "/images/bulk-register",
            json!({"dataset": "tight", "images": regs}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{reg}");
    assert_eq!(reg["failed"], json!([]), "{reg}");
    let succeeded = reg["succeeded"].as_array().unwrap();
    assert_eq!(succeeded.len(), files.len());
    for (image, (name, bytes)) in succeeded.iter().zip(&files) {
        assert_eq!(image["filename"].as_str(), Some(name.as_str()));
        let got = env
            .get(&format!("/images/{}", image["id"].as_str().unwrap()))
            .await;
        assert_eq!(
            got.bytes().await.unwrap().as_ref(),
            bytes.as_slice(),
            "{name}"
        );
    }
    assert!(
        env.app.state.upload_memory.waits() > 0,
        "no file waited for memory: the test did not test the wait"
    );
    assert_eq!(env.app.state.upload_memory.in_use(), 0);
    let objects = env.objects();
    assert!(
        !objects.iter().any(|o| o.contains("uploads/")),
        "the staged upload objects are removed: {objects:?}"
    );
    env.app.stop().await.unwrap();
}

/// A batch purge frees the objects of every image it removes (deleted many to a request),
/// and keeps those another image still uses.
#[tokio::test]
async fn a_batch_purge_frees_every_object_nothing_else_uses() {
    let env = start(50 * 1024 * 1024).await;
    let ds = dataset(&env, "purged").await;
    let mut ids = Vec::new();
    for i in 0..5u32 {
        let (s, v) = env
            .upload(&ds, &format!("p{i}.png"), png(10 + i, 10), "image/png")
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["image"]["id"].as_str().unwrap().to_string());
    }
    // A sixth image with the bytes of the first.
    let (s, v) = env.upload(&ds, "same.png", png(10, 10), "image/png").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let kept = v["image"]["id"].as_str().unwrap().to_string();
    let blobs = |env: &Env| {
        env.objects()
            .iter()
            .filter(|o| o.contains("/blobs/"))
            .count()
    };
    assert_eq!(blobs(&env), 5);
    let (s, v) = env
        .post(
            "/batch/images/delete",
            json!({"dataset_name": "purged", "image_ids": ids, "permanent": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(blobs(&env), 1, "{:?}", env.objects());
    let got = env.get(&format!("/images/{kept}")).await;
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.bytes().await.unwrap().as_ref(), png(10, 10).as_slice());
    env.app.stop().await.unwrap();
}

#[tokio::test]
async fn heic_is_converted_when_it_arrives_through_the_bucket() {
    let env = start(50 * 1024 * 1024).await;
    let ds = dataset(&env, "s3-heic").await;
    let heic = include_bytes!("../../media/tests/data/sample-320x240.heic").to_vec();
    let (s, v) = env.upload(&ds, "s.heic", heic, "image/heic").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["image"]["mime_type"], "image/png");
    assert_eq!(
        (v["image"]["width"].as_i64(), v["image"]["height"].as_i64()),
        (Some(320), Some(240))
    );
    let id = v["image_id"].as_str().unwrap();
    let bytes = env
        .get(&format!("/images/{id}"))
        .await
        .bytes()
        .await
        .unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    env.app.stop().await.unwrap();
}

#[tokio::test]
async fn bytes_put_into_the_bucket_but_never_registered_are_swept() {
    // Upload URLs live 3 s: long enough for the PUTs, register and the second PUT below on a
    // busy machine, short enough to wait out before the sweep.
    let env = start_with(50 * 1024 * 1024, 3).await;
    let ds = dataset(&env, "s3-sweep").await;
    // One upload registered, then PUT again through its URL; one PUT and never registered.
    let (_, u) = env
        .post("/images/upload-url", json!({"dataset_id": ds, "filename": "kept.png", "folder_path": "/", "content_type": "image/png"}))
        .await;
    let url = u["upload_url"].as_str().unwrap().to_string();
    env.http
        .put(&url)
        .header("content-type", "image/png")
        .body(png(6, 6))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let (s, v) = env
        .post("/images/register", json!({"dataset_id": ds, "filename": "kept.png", "gcs_path": u["gcs_path"], "folder_path": "/"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    env.http
        .put(&url)
        .header("content-type", "image/png")
        .body(png(8, 8))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    for name in ["abandoned.png"] {
        let (_, u) = env
            .post("/images/upload-url", json!({"dataset_id": ds, "filename": name, "folder_path": "/", "content_type": "image/png"}))
            .await;
        let put = env
            .http
            .put(u["upload_url"].as_str().unwrap())
            .header("content-type", "image/png")
            .body(png(7, 7))
            .send()
            .await
            .unwrap();
        assert!(put.status().is_success());
    }
    assert_eq!(
        env.objects()
            .iter()
            .filter(|o| o.contains("/uploads/"))
            .count(),
        2
    );
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    pictograph_server::services::maintenance::sweep(&env.app.state)
        .await
        .unwrap();
    let left = env.objects();
    assert!(!left.iter().any(|o| o.contains("/uploads/")), "{left:?}");
    assert_eq!(
        left.iter().filter(|o| o.contains("/blobs/")).count(),
        1,
        "the registered image keeps its bytes: {left:?}"
    );
    env.app.stop().await.unwrap();
}

/// A purge on the running server while a backup copies: the bytes the backup's database
/// copy refers to are held until they are copied, so the backup completes with them, and
/// are freed once it is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bytes_purged_while_a_backup_runs_are_kept_until_it_has_copied_them() {
    use pictograph_server::services::backup::{backup, BackupEvent, BackupOptions};
    let env = start(50 * 1024 * 1024).await;
    let ds = dataset(&env, "held").await;
    let bytes = png(9, 7);
    let (s, v) = env.upload(&ds, "a.png", bytes.clone(), "image/png").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["image"]["id"].as_str().unwrap().to_string();
    let stored = env.objects();

    let (url, key) = (env.api("/batch/images/delete"), env.key.clone());
    let purged = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = purged.clone();
    let progress = move |e: BackupEvent| {
        if let BackupEvent::Planned { .. } = e {
            // Right after the database copy is taken, the image is purged for good.
            let (url, key, id) = (url.clone(), key.clone(), id.clone());
            let status = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    reqwest::Client::new()
                        .post(url)
                        .header("x-api-key", key)
                        .json(
                            &json!({"dataset_name": "held", "image_ids": [id], "permanent": true}),
                        )
                        .send()
                        .await
                        .unwrap()
                        .status()
                })
            })
            .join()
            .unwrap();
            assert_eq!(status, StatusCode::OK);
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    };
    let out = env._dir.path().join("backup");
    let report = backup(
        &env.app.state.config,
        &out,
        &BackupOptions::default(),
        &progress,
    )
    .await
    .unwrap();
    assert!(purged.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!((report.images, report.copied), (1, 1));
    let hash = sha256_hex(&bytes);
    let copy = std::fs::read(out.join("blobs").join(&hash[..2]).join(&hash)).unwrap();
    assert_eq!(copy, bytes);

    // The backup let go: the sweep frees the purged bytes.
    assert_eq!(env.objects(), stored, "kept while the backup ran");
    pictograph_server::services::maintenance::sweep(&env.app.state)
        .await
        .unwrap();
    assert_eq!(env.objects(), Vec::<String>::new());
    env.app.stop().await.unwrap();
}

#[tokio::test]
async fn a_backup_of_a_bucket_installation_holds_its_bytes_on_disk() {
    use pictograph_server::services::backup::{backup, BackupOptions};
    let env = start(50 * 1024 * 1024).await;
    let ds = dataset(&env, "to-back-up").await;
    let mut images = Vec::new();
    for (i, (w, h)) in [(12, 9), (20, 14), (7, 30)].into_iter().enumerate() {
        let bytes = png(w, h);
        let (s, v) = env
            .upload(&ds, &format!("{i}.png"), bytes.clone(), "image/png")
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        images.push((v["image"]["id"].as_str().unwrap().to_string(), bytes));
    }

    let out = env._dir.path().join("backup");
    let options = BackupOptions::default();
    let run = || backup(&env.app.state.config, &out, &options, &|_| {});
    let report = run().await.unwrap();
    assert_eq!((report.images, report.blobs, report.copied), (3, 3, 3));
    let again = run().await.unwrap();
    assert_eq!((again.copied, again.present), (0, 3));

    // The backup is a data directory with the bytes on its own disk: a server started on it
    // with no bucket serves every image, to the same key.
    let mut config = Config::new(&out);
    config.listen = "127.0.0.1:0".parse().unwrap();
    let restored = App::start(config).await.unwrap();
    for (id, bytes) in &images {
        let got = env
            .http
            .get(format!(
                "http://{}/api/v1/developer/images/{id}",
                restored.addr
            ))
            .header("x-api-key", &env.key)
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), StatusCode::OK);
        assert_eq!(got.bytes().await.unwrap().as_ref(), bytes.as_slice());
        let hash = sha256_hex(bytes);
        assert!(out.join("blobs").join(&hash[..2]).join(&hash).is_file());
    }
    restored.stop().await.unwrap();
}
