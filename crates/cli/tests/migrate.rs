//! `pictograph migrate`: a populated installation moves to another database and another blob
//! directory, verified, and a re-run copies nothing twice.

mod common;

use pictograph_server::auth::{create_key, Role};
use pictograph_server::{App, Config};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

fn png(seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(5, 4, |x, y| image::Rgb([seed, x as u8, y as u8]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Starts a server over `data` (and `database`), returns it with an owner key.
async fn start(data: &Path, database: Option<String>, blobs: Option<String>) -> (App, String) {
    let mut c = Config::new(data);
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.database_url = database;
    c.blobs_url = blobs;
    let app = App::start(c).await.unwrap();
    let key = create_key(&app.state.store, "acme", Role::Owner, "unlimited")
        .await
        .unwrap();
    (app, key)
}

/// Sends `request` and reads its answer as JSON, whatever its status.
async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// Sends `request`; panics unless it succeeded.
async fn succeeds(request: reqwest::RequestBuilder) -> reqwest::Response {
    request.send().await.unwrap().error_for_status().unwrap()
}

/// Creates project `name` and returns its id.
async fn create_project(http: &reqwest::Client, api: &str, key: &str, name: &str) -> String {
    let p: Value = succeeds(
        http.post(format!("{api}/projects/"))
            .header("x-api-key", key)
            .json(&json!({ "name": name })),
    )
    .await
    .json()
    .await
    .unwrap();
    p["project"]["id"].as_str().unwrap().to_string()
}

/// Uploads `png(seed)` as `/f/{name}` into dataset `ds` (upload URL, PUT, register) and
/// returns the image's id.
async fn upload(
    http: &reqwest::Client,
    api: &str,
    key: &str,
    ds: &str,
    name: &str,
    seed: u8,
) -> String {
    let asked = json!({"dataset_id": ds, "filename": name, "folder_path": "/f", "content_type": "image/png"});
    let u = json_of(
        http.post(format!("{api}/images/upload-url"))
            .header("x-api-key", key)
            .json(&asked),
    )
    .await;
    succeeds(
        http.put(u["upload_url"].as_str().unwrap())
            .header("content-type", "image/png")
            .body(png(seed)),
    )
    .await;
    let registered =
        json!({"dataset_id": ds, "filename": name, "gcs_path": u["gcs_path"], "folder_path": "/f"});
    let r = json_of(
        http.post(format!("{api}/images/register"))
            .header("x-api-key", key)
            .json(&registered),
    )
    .await;
    r["image_id"].as_str().unwrap().to_string()
}

/// Uploads three images (one archived, one annotated) and returns the dataset's JSON.
async fn populate(app: &App, key: &str) -> Value {
    let http = reqwest::Client::new();
    let api = format!("http://{}/api/v1/developer", app.addr);
    let ds = create_project(&http, &api, key, "birds").await;
    let mut ids = Vec::new();
    for i in 0..3u8 {
        ids.push(upload(&http, &api, key, &ds, &format!("b{i}.png"), i).await);
    }
    let ann = json!({"annotations": [{"id": "a", "name": "bird", "type": "keypoint", "keypoint": {"x": 1.0, "y": 2.0}, "confidence": 1.0, "attributes": []}]});
    succeeds(
        http.post(format!("{api}/annotations/{}", ids[0]))
            .header("x-api-key", key)
            .json(&ann),
    )
    .await;
    succeeds(
        http.delete(format!("{api}/images/{}", ids[2]))
            .header("x-api-key", key),
    )
    .await;
    // An export job, waited for: its row and archive move too.
    let job = json_of(
        http.post(format!("{api}/datasets/{ds}/exports"))
            .header("x-api-key", key)
            .json(&json!({"format": "coco"})),
    )
    .await;
    let job_path = format!(
        "{api}/datasets/{ds}/exports/{}",
        job["id"].as_str().unwrap()
    );
    let mut job = job;
    for _ in 0..200 {
        if job["state"] == "complete" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        job = json_of(http.get(&job_path).header("x-api-key", key)).await;
    }
    assert_eq!(job["state"], "complete", "{job}");
    let mut dataset = json_of(
        http.get(format!("{api}/datasets/by-name/birds"))
            .header("x-api-key", key),
    )
    .await["dataset"]
        .clone();
    dataset["export"] = job;
    dataset
}

fn migrate(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pictograph"))
        .arg("migrate")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

async fn moves_an_installation(target_db: String) {
    let dir = tempfile::tempdir().unwrap();
    let (src_data, dst_blobs) = (dir.path().join("src"), dir.path().join("dst"));
    let (app, key) = start(&src_data, None, None).await;
    let before = populate(&app, &key).await;
    app.stop().await.unwrap();

    let src_db = format!("sqlite://{}", src_data.join("pictograph.db").display());
    let to_blobs = format!("file://{}", dst_blobs.display());
    let data_dir = src_data.to_str().unwrap();
    let args = [
        "--from",
        &src_db,
        "--to",
        &target_db,
        "--to-blobs",
        &to_blobs,
        "--data-dir",
        data_dir,
    ];
    let (ok, out) = migrate(&args);
    assert!(ok, "{out}");
    assert!(
        out.contains("migration verified") && out.contains("dataset counters match"),
        "{out}"
    );
    assert!(out.contains("blobs copied now 3"), "{out}");
    assert!(out.contains("export archives copied now 1,"), "{out}");

    // A re-run is a no-op that verifies again.
    let (ok, out) = migrate(&args);
    assert!(ok, "{out}");
    assert!(out.contains("blobs copied now 0, already there 3"), "{out}");
    assert!(
        out.contains("export archives copied now 0, already there 1"),
        "{out}"
    );
    let jobs_line: Vec<&str> = out
        .lines()
        .find(|l| l.trim_start().starts_with("export_jobs "))
        .expect("an export_jobs line")
        .split_whitespace()
        .collect();
    assert_eq!(
        jobs_line,
        [
            "export_jobs",
            "source",
            "1",
            "copied",
            "now",
            "0",
            "target",
            "1",
            "ok"
        ]
    );
    let images_line: Vec<&str> = out
        .lines()
        .find(|l| l.trim_start().starts_with("images "))
        .expect("an images line")
        .split_whitespace()
        .collect();
    assert_eq!(
        images_line,
        ["images", "source", "3", "copied", "now", "0", "target", "3", "ok"]
    );

    // The migrated installation serves the same data with the same key.
    let (app, _) = start(&dir.path().join("new"), Some(target_db), Some(to_blobs)).await;
    let http = reqwest::Client::new();
    let api = format!("http://{}/api/v1/developer", app.addr);
    let after = json_of(
        http.get(format!("{api}/datasets/by-name/birds?include_images=true"))
            .header("x-api-key", &key),
    )
    .await;
    let after = &after["dataset"];
    for k in [
        "id",
        "image_count",
        "archived_images",
        "total_size",
        "annotation_count",
        "created_at",
    ] {
        assert_eq!(after[k], before[k], "{k}");
    }
    assert_eq!(after["image_count"], 2);
    let images = after["images"].as_array().unwrap();
    for img in images {
        let id = img["id"].as_str().unwrap();
        let bytes = http
            .get(format!("{api}/images/{id}"))
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let seed = img["filename"].as_str().unwrap()[1..2]
            .parse::<u8>()
            .unwrap();
        assert_eq!(bytes.as_ref(), png(seed).as_slice());
    }
    let anns = json_of(
        http.get(format!(
            "{api}/annotations/{}",
            images.iter().find(|i| i["filename"] == "b0.png").unwrap()["id"]
                .as_str()
                .unwrap()
        ))
        .header("x-api-key", &key),
    )
    .await;
    assert_eq!(anns["annotations"][0]["keypoint"]["y"], 2.0);

    // The export job is there, and its signed link serves the same archive.
    let job = &before["export"];
    let moved = json_of(
        http.get(format!(
            "{api}/datasets/{}/exports/{}",
            before["id"].as_str().unwrap(),
            job["id"].as_str().unwrap()
        ))
        .header("x-api-key", &key),
    )
    .await;
    assert_eq!(moved["state"], "complete", "{moved}");
    assert_eq!(moved["archive"], job["archive"]);
    let tar = succeeds(http.get(moved["download_url"].as_str().unwrap()))
        .await
        .bytes()
        .await
        .unwrap();
    use sha2::Digest;
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&tar)),
        job["archive"]["sha256"].as_str().unwrap()
    );

    // A project made on the target is numbered after the copied ones: it takes an image of
    // its own, and the copied dataset keeps its two.
    let fresh = create_project(&http, &api, &key, "fresh").await;
    upload(&http, &api, &key, &fresh, "new.png", 7).await;
    for (name, count) in [("fresh", 1), ("birds", 2)] {
        let listed = json_of(
            http.get(format!("{api}/datasets/by-name/{name}?include_images=true"))
                .header("x-api-key", &key),
        )
        .await;
        assert_eq!(listed["dataset"]["image_count"], count, "{name}");
        assert_eq!(
            listed["dataset"]["images"].as_array().unwrap().len(),
            count,
            "{name}"
        );
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn sqlite_to_sqlite_and_disk_to_disk() {
    let dir = tempfile::tempdir().unwrap();
    moves_an_installation(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("target.db").display()
    ))
    .await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL; scripts/test runs it"]
async fn sqlite_to_postgres() {
    moves_an_installation(common::new_postgres_database("m").await).await;
}
