//! Export jobs: `POST /datasets/{dataset}/exports`, progress and warnings on
//! `GET …/exports/{id}`, and the signed tar archive, unpacked by the system `tar`.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// Polls the job until it is no longer queued or running.
async fn wait(c: &Client, dataset: &str, id: &str) -> Value {
    for _ in 0..300 {
        let job = c
            .get(&format!("datasets/{}/exports/{id}", enc(dataset)))
            .await
            .ok_json(200);
        if job["state"] != "queued" && job["state"] != "running" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("export {id} did not finish");
}

/// Starts an export and waits for it.
async fn export(c: &Client, dataset: &str, body: Value) -> Value {
    let job = c
        .post(&format!("datasets/{}/exports", enc(dataset)), &body)
        .await
        .ok_json(202);
    assert!(
        job["state"] == "queued" || job["state"] == "running",
        "{job}"
    );
    assert!(job["download_url"].is_null());
    wait(c, dataset, job["id"].as_str().unwrap()).await
}

/// Downloads the archive with no API key and unpacks it with the system `tar`.
async fn unpack(t: &TestServer, job: &Value, into: &Path) {
    let url = job["download_url"].as_str().expect("download_url");
    let resp = Client::send(reqwest::Client::new().get(url))
        .await
        .expect(200);
    assert_eq!(
        resp.header("content-type").as_deref(),
        Some("application/x-tar")
    );
    assert_eq!(
        resp.bytes.len() as u64,
        job["archive"]["size"].as_u64().unwrap()
    );
    assert_eq!(
        sha256_hex(&resp.bytes),
        job["archive"]["sha256"].as_str().unwrap()
    );
    let file = t.dir.path().join("archive.tar");
    std::fs::write(&file, &resp.bytes).unwrap();
    std::fs::create_dir_all(into).unwrap();
    let out = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&file)
        .arg("-C")
        .arg(into)
        .output()
        .expect("run tar");
    assert!(
        out.status.success(),
        "tar failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn warning(job: &Value, code: &str) -> u64 {
    job["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == code)
        .map_or(0, |w| w["count"].as_u64().unwrap())
}

const LONG: &str =
    "a-folder-name-that-is-long-enough-to-need-more-than-the-hundred-bytes-of-a-plain-tar-header";

/// A dataset with images in `/train`, `/val`, the root and a deep folder, and every
/// annotation kind.
async fn seed(t: &TestServer) -> (String, Vec<u8>) {
    let ds = t
        .owner
        .create_dataset_with(&json!({"name": "exp set", "classes": ["car", "road", "nose"]}))
        .await;
    let id = s(&ds, "id");
    let a = png_seeded(40, 30, 1);
    let img_a = t
        .owner
        .upload(&id, "/train", "a.png", &a, "image/png")
        .await;
    let img_b = t
        .owner
        .upload(&id, "/val", "b.png", &png_seeded(20, 10, 2), "image/png")
        .await;
    t.owner
        .upload(&id, "/", "c.png", &png_seeded(8, 8, 3), "image/png")
        .await;
    t.owner
        .upload(
            &id,
            &format!("/{LONG}/deeper"),
            "d.png",
            &png_seeded(8, 8, 4),
            "image/png",
        )
        .await;
    t.owner
        .post(
            &format!("annotations/{}", s(&img_a, "id")),
            &json!({"annotations": [
                {"id": "1", "name": "car", "type": "bbox", "bounding_box": {"x": 10.0, "y": 6.0, "w": 20.0, "h": 12.0}},
                {"id": "2", "name": "road", "type": "polyline", "polyline": {"path": [{"x": 0.0, "y": 0.0}, {"x": 5.0, "y": 9.0}]}},
                {"id": "3", "name": "nose", "type": "keypoint", "keypoint": {"x": 3.0, "y": 4.0}},
            ]}),
        )
        .await
        .expect(200);
    t.owner
        .post(
            &format!("annotations/{}", s(&img_b, "id")),
            &json!({"annotations": [
                {"id": "1", "name": "car", "type": "bbox", "bounding_box": {"x": 0.0, "y": 0.0, "w": 10.0, "h": 5.0}},
            ]}),
        )
        .await
        .expect(200);
    t.owner
        .patch(
            "batch/images/update",
            &json!({"dataset_name": "exp set", "image_ids": [s(&img_b, "id")], "updates": {"status": "complete"}}),
        )
        .await
        .expect(200);
    (id, a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yolo_export_job_makes_a_tar_with_the_ultralytics_layout() {
    let t = TestServer::start().await;
    let (_, a) = seed(&t).await;
    let job = export(&t.member, "exp set", json!({"format": "yolo"})).await;
    assert_eq!(job["state"], "complete", "{job}");
    assert_eq!(job["images_done"], 4);
    assert_eq!(job["images_total"], 4);
    assert_eq!(job["annotations"], 4);
    assert_eq!(warning(&job, "polyline_dropped"), 1);
    assert_eq!(warning(&job, "keypoint_dropped"), 1);

    let dir = t.dir.path().join("yolo");
    unpack(&t, &job, &dir).await;
    assert_eq!(std::fs::read(dir.join("images/train/a.png")).unwrap(), a);
    assert_eq!(
        std::fs::read_to_string(dir.join("labels/train/a.txt")).unwrap(),
        "0 0.5 0.4 0.5 0.4\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("labels/val/b.txt")).unwrap(),
        "0 0.25 0.25 0.5 0.5\n"
    );
    assert!(dir.join("images/train/c.png").is_file());
    assert!(dir
        .join(format!("images/train/{LONG}/deeper/d.png"))
        .is_file());
    assert!(dir
        .join(format!("labels/train/{LONG}/deeper/d.txt"))
        .is_file());
    let yaml = std::fs::read_to_string(dir.join("data.yaml")).unwrap();
    assert!(
        yaml.contains("train: images/train\nval: images/val\n"),
        "{yaml}"
    );
    assert!(
        yaml.contains("  0: \"car\"\n  1: \"road\"\n  2: \"nose\"\n"),
        "{yaml}"
    );

    // The link is signed: a changed signature is refused.
    let url = job["download_url"]
        .as_str()
        .unwrap()
        .replace("sig=", "sig=00");
    Client::send(reqwest::Client::new().get(url))
        .await
        .expect(403);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coco_export_job_with_a_status_filter() {
    let t = TestServer::start().await;
    seed(&t).await;
    let job = export(
        &t.owner,
        "exp set",
        json!({"format": "COCO", "status": "complete"}),
    )
    .await;
    assert_eq!(job["state"], "complete", "{job}");
    assert_eq!(job["format"], "coco");
    assert_eq!(job["status_filter"], "complete");
    assert_eq!(job["images_done"], 1);
    assert_eq!(job["warnings"], json!([]));
    let dir = t.dir.path().join("coco");
    unpack(&t, &job, &dir).await;
    let coco: Value =
        serde_json::from_slice(&std::fs::read(dir.join("annotations/instances.json")).unwrap())
            .unwrap();
    assert_eq!(
        coco["images"],
        json!([{"id": 1, "file_name": "val/b.png", "width": 20, "height": 10}])
    );
    assert_eq!(coco["annotations"][0]["bbox"], json!([0.0, 0.0, 10.0, 5.0]));
    assert!(dir.join("images/val/b.png").is_file());

    // The lossless format holds everything.
    let job = export(&t.owner, "exp set", json!({"format": "pictograph"})).await;
    assert_eq!(job["warnings"], json!([]));
    assert_eq!(job["annotations"], 4);

    // Expired jobs are forgotten and their archives freed.
    let state = &t.app().state;
    let hashes = state
        .store
        .expire_export_jobs("9999-12-31T00:00:00.000000Z")
        .await
        .unwrap();
    assert_eq!(hashes.len(), 2);
    for h in &hashes {
        state.blobs.delete(h).await.unwrap();
        assert!(!state.blobs.exists(h).await);
    }
    let url = job["download_url"].as_str().unwrap();
    Client::send(reqwest::Client::new().get(url))
        .await
        .expect(404);
    t.owner
        .get(&format!(
            "datasets/exp%20set/exports/{}",
            job["id"].as_str().unwrap()
        ))
        .await
        .error(404, "not_found");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_export_requests_are_refused_and_orgs_walled_off() {
    let t = TestServer::start().await;
    seed(&t).await;
    let path = "datasets/exp%20set/exports";
    let detail = t
        .owner
        .post(path, &json!({"format": "tfrecord"}))
        .await
        .error(422, "validation_error");
    assert!(detail.to_string().contains("tfrecord"), "{detail}");
    t.owner
        .post(path, &json!({"format": "coco", "status": "done"}))
        .await
        .error(422, "validation_error");
    t.owner
        .post(path, &json!({"format": "coco", "colour": "red"}))
        .await
        .error(422, "validation_error");
    t.owner
        .post(path, &json!({}))
        .await
        .error(422, "validation_error");

    // Another organisation sees neither the dataset nor the job.
    t.other
        .post(path, &json!({"format": "coco"}))
        .await
        .error(404, "not_found");
    let job = export(&t.owner, "exp set", json!({"format": "voc"})).await;
    let id = job["id"].as_str().unwrap();
    t.other
        .get(&format!("datasets/exp%20set/exports/{id}"))
        .await
        .error(404, "not_found");
    let theirs = t.other.create_dataset("exp set").await;
    t.other
        .get(&format!("datasets/{}/exports/{id}", s(&theirs, "id")))
        .await
        .error(404, "not_found");
    t.owner
        .get("datasets/exp%20set/exports/00000000-0000-0000-0000-000000000000")
        .await
        .error(404, "not_found");
    t.stop().await;
}
