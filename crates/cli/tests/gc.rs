//! `pictograph gc` against the data directory of a running server: what it lists in a dry run,
//! what it removes (expired signed uploads, crash debris, bytes nothing refers to), and what
//! it keeps (every registered image's bytes).

use pictograph_server::auth::{create_key, Role};
use pictograph_server::{App, Config};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;

fn gc(args: &[&str]) -> (bool, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pictograph"));
    for (k, _) in std::env::vars() {
        if k.starts_with("PICTOGRAPH_") || k.starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    let out = c.arg("gc").args(args).output().expect("run pictograph gc");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn png(seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(10, 7, |x, y| {
        image::Rgb([seed, (x * 20) as u8, (y * 30) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn blob_file(data: &Path, hash: &str) -> std::path::PathBuf {
    data.join("blobs").join(&hash[..2]).join(hash)
}

/// Where versions before the one-level layout stored the bytes.
fn legacy_blob_file(data: &Path, hash: &str) -> std::path::PathBuf {
    data.join("blobs")
        .join(&hash[..2])
        .join(&hash[2..4])
        .join(hash)
}

struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .request(method, format!("{}/api/v1/developer/{path}", self.base))
            .header("X-API-Key", &self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Asks for an upload URL and, when `bytes` are given, PUTs them. Returns the signed answer.
    async fn sign(&self, dataset_id: &str, name: &str, bytes: Option<&[u8]>) -> Value {
        let (status, signed) = self
            .call(
                reqwest::Method::POST,
                "images/upload-url",
                json!({"dataset_id": dataset_id, "filename": name, "folder_path": "/",
                       "content_type": "image/png"}),
            )
            .await;
        assert_eq!(status, 200, "{signed}");
        if let Some(bytes) = bytes {
            let put = self
                .http
                .put(signed["upload_url"].as_str().unwrap())
                .header("Content-Type", "image/png")
                .body(bytes.to_vec())
                .send()
                .await
                .unwrap();
            assert!(put.status().is_success());
        }
        signed
    }

    async fn register(&self, dataset_id: &str, name: &str, signed: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/api/v1/developer/images/register", self.base))
            .header("X-API-Key", &self.key)
            .form(&[
                ("dataset_id", dataset_id),
                ("filename", name),
                ("folder_path", "/"),
                ("gcs_path", signed["gcs_path"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_frees_what_nothing_refers_to_and_keeps_every_image() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let mut config = Config::new(&data);
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.url_ttl_secs = 2;
    let app = App::start(config).await.unwrap();
    let api = Api {
        http: reqwest::Client::new(),
        base: format!("http://{}", app.addr),
        key: create_key(&app.state.store, "org", Role::Owner, "unlimited")
            .await
            .unwrap(),
    };
    let (_, ds) = api
        .call(reqwest::Method::POST, "projects/", json!({"name": "gc"}))
        .await;
    let ds_id = ds["project"]["id"].as_str().unwrap().to_string();

    // Kept: a registered image. Purged: its bytes become unreferenced. Never registered: one
    // URL whose bytes arrived, one whose never did.
    let (kept, purged, unregistered) = (png(1), png(2), png(3));
    let signed = api.sign(&ds_id, "kept.png", Some(&kept)).await;
    let (status, kept_img) = api.register(&ds_id, "kept.png", &signed).await;
    assert_eq!(status, 201, "{kept_img}");
    let signed = api.sign(&ds_id, "purged.png", Some(&purged)).await;
    let (status, img) = api.register(&ds_id, "purged.png", &signed).await;
    assert_eq!(status, 201, "{img}");
    let (status, r) = api
        .call(
            reqwest::Method::POST,
            "batch/images/delete",
            json!({"dataset_name": "gc", "image_ids": [img["image_id"]], "permanent": true}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    let stale = api.sign(&ds_id, "never.png", Some(&unregistered)).await;
    api.sign(&ds_id, "empty.png", None).await;

    // Crash debris: a staged write never finished, and bytes stored but never recorded (by
    // an earlier version, in its two-level layout).
    std::fs::write(data.join("tmp").join("abandoned"), b"half a file").unwrap();
    let debris = png(4);
    let debris_hash = sha256(&debris);
    let debris_file = legacy_blob_file(&data, &debris_hash);
    std::fs::create_dir_all(debris_file.parent().unwrap()).unwrap();
    std::fs::write(&debris_file, &debris).unwrap();

    // Kept: the archive of an export job, which has no blob record.
    let (status, job) = api
        .call(
            reqwest::Method::POST,
            "datasets/gc/exports",
            json!({"format": "coco"}),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let job_path = format!("datasets/gc/exports/{}", job["id"].as_str().unwrap());
    let mut archive = None;
    for _ in 0..100 {
        let (_, job) = api.call(reqwest::Method::GET, &job_path, Value::Null).await;
        if job["state"] == "complete" {
            archive = job["archive"]["sha256"].as_str().map(String::from);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let archive = archive.expect("the export completes");

    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let files = |h: &[u8]| blob_file(&data, &sha256(h)).is_file();
    assert!(files(&kept) && files(&purged) && files(&unregistered));

    // Dry run with the default grace: the two expired URLs are listed, the fresh bytes and
    // the fresh staged file are not yet due, and nothing changes.
    let (ok, out, err) = gc(&["--data-dir", d, "--dry-run"]);
    assert!(ok, "{err}");
    assert!(out.contains("expired uploads: would remove 2"), "{out}");
    assert!(out.contains("orphan blobs: would remove 0"), "{out}");
    assert!(out.contains(stale["upload_id"].as_str().unwrap()), "{out}");
    assert!(
        out.contains("expired export archives: would remove 0"),
        "{out}"
    );
    assert!(
        out.contains("unfinished dataset deletions: would remove 0"),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| !l.starts_with("  ")).count(),
        8,
        "{out}"
    );
    assert!(files(&purged) && files(&unregistered) && debris_file.is_file());
    assert!(data.join("tmp").join("abandoned").is_file());

    // Dry run with no grace lists everything that will go.
    let (ok, out, err) = gc(&["--data-dir", d, "--dry-run", "--grace-secs", "0", "--json"]);
    assert!(ok, "{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["temp_files"].as_array().unwrap().len(), 1, "{plan}");
    assert_eq!(plan["unrecorded_blobs"], json!([debris_hash]));
    assert!(files(&purged) && debris_file.is_file());

    // The real thing, while the server runs.
    let (ok, out, err) = gc(&["--data-dir", d, "--grace-secs", "0", "--json"]);
    assert!(ok, "{err}");
    let done: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(done["dry_run"], false);
    assert_eq!(
        done["expired_uploads"].as_array().unwrap().len(),
        2,
        "{done}"
    );
    let mut orphans: Vec<&str> = done["orphan_blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    orphans.sort();
    let mut expected = vec![sha256(&purged), sha256(&unregistered)];
    expected.sort();
    assert_eq!(orphans, expected, "{done}");
    assert_eq!(done["unrecorded_blobs"], json!([debris_hash]));
    assert_eq!(done["temp_files"].as_array().unwrap().len(), 1);
    assert!(!files(&purged) && !files(&unregistered) && !debris_file.is_file());
    assert_eq!(std::fs::read_dir(data.join("tmp")).unwrap().count(), 0);

    // The expired URL cannot be registered any more; the kept image is whole.
    let (status, r) = api.register(&ds_id, "never.png", &stale).await;
    assert_eq!(status, 404, "{r}");
    let got = api
        .http
        .get(format!(
            "{}/api/v1/developer/images/{}",
            api.base,
            kept_img["image_id"].as_str().unwrap()
        ))
        .header("X-API-Key", &api.key)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(sha256(&got.bytes().await.unwrap()), sha256(&kept));
    let mut remaining: Vec<_> = walk(&data.join("blobs"));
    remaining.sort();
    let mut expected = vec![blob_file(&data, &sha256(&kept)), blob_file(&data, &archive)];
    expected.sort();
    assert_eq!(remaining, expected);

    // Nothing is left to do; the servers' settings file is read like `serve` reads it.
    let conf = dir.path().join("pictograph.toml");
    std::fs::write(
        &conf,
        format!("data_dir = {d:?}\nblob_grace_secs = 0\nurl_ttl_secs = 2\n"),
    )
    .unwrap();
    let (ok, out, err) = gc(&["--config", conf.to_str().unwrap()]);
    assert!(ok, "{err}");
    for line in out.lines() {
        assert!(line.ends_with(": removed 0"), "{out}");
    }
    app.stop().await.unwrap();

    // No data there: an error, not a new empty store.
    let nowhere = dir.path().join("nowhere");
    let (ok, _, err) = gc(&["--data-dir", nowhere.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("no server data"), "{err}");
    assert!(!nowhere.exists());
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
