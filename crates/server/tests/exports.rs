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

/// An archive download resumes: a byte range answers 206 with exactly those bytes, an
/// unsatisfiable one 416, and a client holding the archive (its ETag) gets 304.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_download_takes_ranges_and_etags() {
    let t = TestServer::start().await;
    seed(&t).await;
    let job = export(&t.owner, "exp set", json!({"format": "yolo"})).await;
    let url = job["download_url"]
        .as_str()
        .expect("download_url")
        .to_string();
    let http = reqwest::Client::new();
    let whole = Client::send(http.get(&url)).await.expect(200);
    let size = whole.bytes.len();
    assert!(size > 1024, "{size}");
    let etag = whole.header("etag").expect("an ETag");
    assert_eq!(
        etag,
        format!("\"{}\"", job["archive"]["sha256"].as_str().unwrap())
    );
    assert_eq!(whole.header("accept-ranges").as_deref(), Some("bytes"));

    let rest = Client::send(http.get(&url).header("Range", "bytes=1000-"))
        .await
        .expect(206);
    assert_eq!(rest.bytes, whole.bytes[1000..]);
    assert_eq!(
        rest.header("content-range"),
        Some(format!("bytes 1000-{}/{size}", size - 1))
    );
    assert_eq!(
        rest.header("content-type").as_deref(),
        Some("application/x-tar")
    );
    let tail = Client::send(http.get(&url).header("Range", "bytes=-10"))
        .await
        .expect(206);
    assert_eq!(tail.bytes, whole.bytes[size - 10..]);
    let beyond = Client::send(http.get(&url).header("Range", format!("bytes={size}-")))
        .await
        .expect(416);
    assert_eq!(
        beyond.header("content-range"),
        Some(format!("bytes */{size}"))
    );
    let held = Client::send(http.get(&url).header("If-None-Match", &etag))
        .await
        .expect(304);
    assert!(held.bytes.is_empty());
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

/// Names of the image files in an unpacked pictograph export, sorted.
fn exported_names(dir: &Path) -> Vec<String> {
    let lines = std::fs::read_to_string(dir.join("annotations.jsonl")).unwrap();
    let mut names: Vec<String> = lines
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            s(&v, "filename")
        })
        .collect();
    names.sort();
    names
}

/// An export job of `format` queued straight in the store for the dataset `dataset` of
/// `org-a`, with the server's state, the organisation's id and the dataset's row, so a test
/// can run its task itself.
async fn queued_job(
    t: &TestServer,
    dataset: &str,
    format: &str,
) -> (
    pictograph_server::AppState,
    String,
    pictograph_server::store::DatasetRow,
    pictograph_server::store::ExportJobRow,
) {
    let state = t.app().state.clone();
    let org = state.store.ensure_org("org-a").await.unwrap().id;
    let d = state
        .store
        .dataset_by_id(&org, dataset)
        .await
        .unwrap()
        .unwrap();
    let job = state
        .store
        .create_export_job(&org, dataset, format, None, false)
        .await
        .unwrap();
    (state, org, d, job)
}

/// A dataset `paged` with images `p1.png` … `pN.png`, uploaded in order; answers its id and
/// the images' ids in upload order.
async fn numbered(t: &TestServer, n: u8) -> (String, Vec<String>) {
    let ds = t.owner.create_dataset("paged").await;
    let id = s(&ds, "id");
    let mut ids = Vec::new();
    for i in 1..=n {
        let img = t.owner.upload_png(&id, "/", &format!("p{i}.png"), i).await;
        ids.push(s(&img, "id"));
    }
    (id, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_pages_start_after_the_last_image_read_so_deletes_skip_nothing() {
    let t = TestServer::start().await;
    let (dataset, ids) = numbered(&t, 6).await;
    let store = &t.app().state.store;
    let names = |page: &[pictograph_server::store::ExportImage]| -> Vec<String> {
        page.iter().map(|i| i.filename.clone()).collect()
    };
    let first = store
        .export_images_after(&dataset, None, None, 2)
        .await
        .unwrap();
    assert_eq!(names(&first), ["p1.png", "p2.png"]);
    // The images already read are deleted and one is added before the next page: an offset
    // of 2 would now skip p3 and p4.
    for id in &ids[..2] {
        t.owner
            .delete(&format!("images/{id}?permanent=true"))
            .await
            .expect(200);
    }
    t.owner.upload_png(&dataset, "/", "p7.png", 7).await;
    let last = first.last().unwrap();
    let at = (last.created_at.as_str(), last.id.as_str());
    let second = store
        .export_images_after(&dataset, None, Some(at), 2)
        .await
        .unwrap();
    assert_eq!(names(&second), ["p3.png", "p4.png"]);
    // An image not read yet is archived (soft-deleted): it is left out, the rest follow.
    t.owner
        .delete(&format!("images/{}", ids[4]))
        .await
        .expect(200);
    let last = second.last().unwrap();
    let at = (last.created_at.as_str(), last.id.as_str());
    let third = store
        .export_images_after(&dataset, None, Some(at), 10)
        .await
        .unwrap();
    assert_eq!(names(&third), ["p6.png", "p7.png"]);
    let all = pictograph_server::store::ImageFilter::default();
    assert_eq!(store.count_images(&dataset, &all).await.unwrap(), 4);
    let complete = pictograph_server::store::ImageFilter {
        status: Some("complete".into()),
        ..all
    };
    assert_eq!(store.count_images(&dataset, &complete).await.unwrap(), 0);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_job_changed_under_between_pages_writes_every_surviving_image_once() {
    let t = TestServer::start().await;
    let (dataset, ids) = numbered(&t, 5).await;
    let (state, _, d, job) = queued_job(&t, &dataset, "pictograph").await;
    let mut pages = Vec::new();
    let ran = pictograph_server::services::exports::run_paged(&state, &job, &d, 2, |done| {
        pages.push(done);
        let (owner, ids, dataset) = (t.owner.clone(), ids.clone(), dataset.clone());
        async move {
            if done == 2 {
                // Both images written are deleted and a new one arrives.
                for id in &ids[..2] {
                    owner
                        .delete(&format!("images/{id}?permanent=true"))
                        .await
                        .expect(200);
                }
                owner.upload_png(&dataset, "/", "p6.png", 6).await;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(ran, pictograph_server::services::exports::Ran::Complete);
    assert_eq!(pages, [2, 4, 6]);
    let job = wait(&t.owner, "paged", &job.id).await;
    assert_eq!(job["state"], "complete", "{job}");
    assert_eq!(job["images_done"], 6);
    let dir = t.dir.path().join("paged");
    unpack(&t, &job, &dir).await;
    assert_eq!(
        exported_names(&dir),
        ["p1.png", "p2.png", "p3.png", "p4.png", "p5.png", "p6.png"]
    );
    t.stop().await;
}

/// Every image of an export lands with its own bytes, in pages and past the reads an export
/// from an object store starts ahead (16).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_image_of_an_export_is_archived_with_its_own_bytes() {
    let t = TestServer::start().await;
    let (dataset, _) = numbered(&t, 45).await;
    let (state, _, d, job) = queued_job(&t, &dataset, "pictograph").await;
    let ran = pictograph_server::services::exports::run_paged(&state, &job, &d, 20, |_| async {})
        .await
        .unwrap();
    assert_eq!(ran, pictograph_server::services::exports::Ran::Complete);
    let job = wait(&t.owner, "paged", &job.id).await;
    assert_eq!(job["images_done"], 45, "{job}");
    let dir = t.dir.path().join("bytes");
    unpack(&t, &job, &dir).await;
    let mut found = 0;
    for entry in walkdir(&dir) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(n) = name.strip_prefix('p').and_then(|n| n.strip_suffix(".png")) {
            let seed: u8 = n.parse().unwrap();
            assert_eq!(
                std::fs::read(&entry).unwrap(),
                png_seeded(8, 6, seed),
                "{name}"
            );
            found += 1;
        }
    }
    assert_eq!(found, 45);
    t.stop().await;
}

/// Every file under `dir`.
fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_export_slower_than_the_stale_time_stays_alive_through_the_sweep() {
    // Jobs go stale after a second here. The job waits three seconds between its pages, and
    // a sweep runs in that wait: the job's own sign of life keeps the sweep from failing it.
    let t = TestServer::start_with(|c| c.export_stale_secs = 1).await;
    let (dataset, _) = numbered(&t, 5).await;
    let (state, _, d, job) = queued_job(&t, &dataset, "coco").await;
    let path = format!("datasets/paged/exports/{}", job.id);
    let mut pages = Vec::new();
    let ran = pictograph_server::services::exports::run_paged(&state, &job, &d, 2, |done| {
        pages.push(done);
        let (state, member, path) = (state.clone(), t.member.clone(), path.clone());
        async move {
            if done == 2 {
                tokio::time::sleep(Duration::from_millis(3_000)).await;
                pictograph_server::services::maintenance::sweep(&state)
                    .await
                    .unwrap();
                let now = member.get(&path).await.ok_json(200);
                assert_eq!(now["state"], "running", "{now}");
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(ran, pictograph_server::services::exports::Ran::Complete);
    assert_eq!(pages, [2, 4, 5]);
    let job = wait(&t.owner, "paged", &job.id).await;
    assert_eq!(job["state"], "complete", "{job}");
    // A job that nothing runs is failed by the same sweep once it has gone stale.
    let (_, _, _, idle) = queued_job(&t, &dataset, "coco").await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    pictograph_server::services::maintenance::sweep(&state)
        .await
        .unwrap();
    let idle = t
        .member
        .get(&format!("datasets/paged/exports/{}", idle.id))
        .await
        .ok_json(200);
    assert_eq!(idle["state"], "failed", "{idle}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_export_is_cancelled_and_its_task_stops_at_the_next_page() {
    let t = TestServer::start().await;
    let (dataset, _) = numbered(&t, 5).await;
    let (state, org, d, job) = queued_job(&t, &dataset, "coco").await;
    let path = format!("datasets/paged/exports/{}", job.id);
    let cancelled = std::sync::Arc::new(std::sync::Mutex::new(Value::Null));
    let mut pages = Vec::new();
    let ran = pictograph_server::services::exports::run_paged(&state, &job, &d, 2, |done| {
        pages.push(done);
        let (member, path) = (t.member.clone(), path.clone());
        let slot = cancelled.clone();
        async move {
            if done == 2 {
                // The running job, as listed, then cancelled by a member key.
                let listed = member.get("datasets/paged/exports").await.ok_json(200);
                assert_eq!(listed["exports"][0]["state"], "running", "{listed}");
                let answer = member.delete(&path).await.ok_json(200);
                *slot.lock().unwrap() = answer;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(ran, pictograph_server::services::exports::Ran::Stopped);
    let cancelled = cancelled.lock().unwrap().clone();
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    assert!(cancelled["download_url"].is_null());
    let now = t.member.get(&path).await.ok_json(200);
    assert_eq!(now["state"], "cancelled");
    assert_eq!(
        pages,
        [2],
        "the task stopped within the page after the cancel"
    );
    assert_eq!(now["images_done"], 2);
    assert!(now["archive"].is_null());
    assert!(
        state
            .blobs
            .stale_temp(Duration::ZERO)
            .await
            .unwrap()
            .is_empty(),
        "the staged archive was discarded"
    );
    // The sweep neither fails nor expires a fresh cancelled job; deleting it forgets it.
    pictograph_server::services::maintenance::sweep(&state)
        .await
        .unwrap();
    assert_eq!(t.member.get(&path).await.ok_json(200)["state"], "cancelled");
    let gone = t.member.delete(&path).await.ok_json(200);
    assert_eq!(gone["deleted"]["id"], job.id.as_str());
    t.member.get(&path).await.error(404, "not_found");
    t.member.delete(&path).await.error(404, "not_found");

    // A job cancelled while still queued never starts.
    let queued = state
        .store
        .create_export_job(&org, &dataset, "yolo", None, false)
        .await
        .unwrap();
    let path = format!("datasets/paged/exports/{}", queued.id);
    assert_eq!(
        t.owner.delete(&path).await.ok_json(200)["state"],
        "cancelled"
    );
    let ran = pictograph_server::services::exports::run_paged(&state, &queued, &d, 2, |_| async {
        panic!("a cancelled job read a page")
    })
    .await
    .unwrap();
    assert_eq!(ran, pictograph_server::services::exports::Ran::Stopped);
    assert_eq!(t.owner.get(&path).await.ok_json(200)["images_done"], 0);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_jobs_are_listed_newest_first_and_deleting_one_frees_its_archive() {
    let t = TestServer::start().await;
    seed(&t).await;
    let state = t.app().state.clone();
    let mut jobs = Vec::new();
    for format in ["coco", "yolo", "voc"] {
        jobs.push(export(&t.owner, "exp set", json!({"format": format})).await);
    }
    let listed = t
        .member
        .get("datasets/exp%20set/exports")
        .await
        .ok_json(200);
    assert_eq!(listed["total"], 3);
    let formats: Vec<&str> = listed["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["format"].as_str().unwrap())
        .collect();
    assert_eq!(formats, ["voc", "yolo", "coco"]);
    assert_eq!(listed["data"], listed["exports"]);
    // Each listed job has the shape of the job read alone.
    let one = &listed["exports"][2];
    let alone = t
        .member
        .get(&format!("datasets/exp%20set/exports/{}", s(one, "id")))
        .await
        .ok_json(200);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(one), keys(&alone));
    assert_eq!(one["archive"], alone["archive"]);
    let page = t
        .member
        .get("datasets/exp%20set/exports?limit=1&offset=1")
        .await
        .ok_json(200);
    assert_eq!(page["exports"].as_array().unwrap().len(), 1);
    assert_eq!(page["exports"][0]["format"], "yolo");
    assert_eq!(page["pagination"]["has_more"], true);
    for bad in ["limit=0", "limit=201", "offset=-1", "limit=x", "sort=asc"] {
        t.member
            .get(&format!("datasets/exp%20set/exports?{bad}"))
            .await
            .error(422, "validation_error");
    }
    t.member
        .get("datasets/no%20such%20set/exports")
        .await
        .error(404, "not_found");

    // Deleting a complete job frees its archive; the other jobs keep theirs.
    let coco = &jobs[0];
    let hash = coco["archive"]["sha256"].as_str().unwrap();
    assert!(state.blobs.exists(hash).await);
    let gone = t
        .member
        .delete(&format!("datasets/exp%20set/exports/{}", s(coco, "id")))
        .await
        .ok_json(200);
    assert_eq!(gone["deleted"]["state"], "complete");
    assert!(!state.blobs.exists(hash).await, "archive bytes freed");
    Client::send(reqwest::Client::new().get(coco["download_url"].as_str().unwrap()))
        .await
        .expect(404);
    for other in &jobs[1..] {
        assert!(
            state
                .blobs
                .exists(other["archive"]["sha256"].as_str().unwrap())
                .await
        );
    }
    let listed = t
        .member
        .get("datasets/exp%20set/exports")
        .await
        .ok_json(200);
    assert_eq!(listed["total"], 2);
    // A job is reached only through its own dataset.
    let elsewhere = t.owner.create_dataset("elsewhere").await;
    t.owner
        .delete(&format!(
            "datasets/{}/exports/{}",
            s(&elsewhere, "id"),
            s(&jobs[1], "id")
        ))
        .await
        .error(404, "not_found");
    assert_eq!(
        t.owner
            .get(&format!("datasets/exp%20set/exports/{}", s(&jobs[1], "id")))
            .await
            .ok_json(200)["state"],
        "complete"
    );
    t.stop().await;
}

/// An organisation has at most four exports queued or running: a fifth is refused with 409
/// until one ends, while the same request as an unfinished job answers that job instead of
/// starting another. Other organisations are not held back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_exports_are_capped_and_an_equal_request_joins_the_running_job() {
    let t = TestServer::start().await;
    let (dataset, _) = seed(&t).await;
    let mut queued = Vec::new();
    for format in ["coco", "yolo", "voc", "pictograph"] {
        queued.push(queued_job(&t, &dataset, format).await.3);
    }
    let path = "datasets/exp%20set/exports";
    let detail = t
        .owner
        .post(path, &json!({"format": "coco", "status": "complete"}))
        .await
        .error_detail(409, "conflict");
    assert!(detail.contains("4 exports queued or running"), "{detail}");
    let joined = t
        .owner
        .post(path, &json!({"format": "yolo"}))
        .await
        .ok_json(202);
    assert_eq!(joined["id"], queued[1].id.as_str());
    let listed = t.owner.get(path).await.ok_json(200);
    assert_eq!(listed["total"], 4, "nothing new was started");

    let other = t.other.create_dataset("theirs").await;
    t.other
        .post(
            &format!("datasets/{}/exports", s(&other, "name")),
            &json!({"format": "coco"}),
        )
        .await
        .expect(202);

    // Once one ends, another may start.
    let state = t.app().state.clone();
    state
        .store
        .fail_export_job(&queued[0].id, "stopped by the test")
        .await
        .unwrap();
    t.owner
        .post(path, &json!({"format": "coco", "status": "complete"}))
        .await
        .expect(202);
    t.stop().await;
}

/// Two jobs may produce the same archive bytes. A running job records its archive's hash
/// before it stores the bytes, so deleting the other job (which frees its archive) does not
/// free them from under it: the running job completes with a downloadable archive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_export_keeps_equal_bytes_a_running_job_has_recorded() {
    let t = TestServer::start().await;
    let (dataset, _) = numbered(&t, 2).await;
    let (state, org, d, first) = queued_job(&t, &dataset, "pictograph").await;
    let ran = pictograph_server::services::exports::run_paged(&state, &first, &d, 10, |_| async {})
        .await
        .unwrap();
    assert_eq!(ran, pictograph_server::services::exports::Ran::Complete);
    let done = state
        .store
        .export_job_any(&first.id)
        .await
        .unwrap()
        .unwrap();
    let (hash, size) = (done.archive_hash.unwrap(), done.archive_size.unwrap());
    assert!(t.blob_stored(&hash));

    // A second job is about to store the same bytes: it has recorded their hash.
    let second = state
        .store
        .create_export_job(&org, &dataset, "pictograph", None, true)
        .await
        .unwrap();
    assert!(state
        .store
        .export_progress(&second.id, 2, 2, 0)
        .await
        .unwrap());
    assert!(state
        .store
        .claim_export_archive(&second.id, &hash)
        .await
        .unwrap());
    // The first job is deleted, which frees its archive's bytes unless another job has them.
    t.owner
        .delete(&format!("datasets/paged/exports/{}", first.id))
        .await
        .expect(200);
    assert!(
        t.blob_stored(&hash),
        "bytes recorded by the running job are kept"
    );
    assert!(state
        .store
        .finish_export_job(&second.id, &hash, size, "[]")
        .await
        .unwrap());
    let job = wait(&t.owner, "paged", &second.id).await;
    assert_eq!(job["state"], "complete", "{job}");
    let dir = t.dir.path().join("second");
    unpack(&t, &job, &dir).await;
    assert_eq!(exported_names(&dir).len(), 2);

    // A job that stopped after recording its hash lets its bytes go.
    let third = state
        .store
        .create_export_job(&org, &dataset, "coco", None, false)
        .await
        .unwrap();
    assert!(state
        .store
        .export_progress(&third.id, 2, 2, 0)
        .await
        .unwrap());
    assert!(state
        .store
        .claim_export_archive(&third.id, "f".repeat(64).as_str())
        .await
        .unwrap());
    state.store.forget_export_archive(&third.id).await.unwrap();
    let row = state
        .store
        .export_job_any(&third.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.archive_hash, None);
    t.stop().await;
}

/// Equal export requests at once (on one server or several) make one job, and requests at
/// once never take an organisation past its cap of unfinished jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn export_requests_at_once_make_one_job_and_keep_the_cap() {
    use pictograph_server::store::NewExport;
    let t = TestServer::start().await;
    let (dataset, _) = seed(&t).await;
    let state = t.app().state.clone();
    let org = state.store.ensure_org("org-a").await.unwrap().id;
    let most = pictograph_server::services::exports::MAX_UNFINISHED;
    let at_once = |formats: Vec<&'static str>| {
        let (state, org, dataset) = (state.clone(), org.clone(), dataset.clone());
        async move {
            let tasks: Vec<_> = formats
                .into_iter()
                .map(|format| {
                    let (state, org, dataset) = (state.clone(), org.clone(), dataset.clone());
                    tokio::spawn(async move {
                        state
                            .store
                            .create_export_job_once(&org, &dataset, format, None, false, most)
                            .await
                            .unwrap()
                    })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        }
    };
    let equal = at_once(vec!["coco"; 8]).await;
    let created: Vec<_> = equal
        .iter()
        .filter_map(|n| match n {
            NewExport::Created(j) => Some(j.id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 1, "{equal:?}");
    assert!(equal.iter().all(|n| match n {
        NewExport::Created(j) | NewExport::Joined(j) => j.id == created[0],
        NewExport::Full(_) => false,
    }));

    // One place is left under the cap after two more; four different requests at once take it.
    at_once(vec!["yolo", "voc"]).await;
    let rest = at_once(vec!["pictograph", "coco-boxes", "yolo-seg", "voc-2"]).await;
    let made = rest
        .iter()
        .filter(|n| matches!(n, NewExport::Created(_)))
        .count();
    let full = rest
        .iter()
        .filter(|n| matches!(n, NewExport::Full(n) if *n == most))
        .count();
    assert_eq!((made, full), (1, 3), "{rest:?}");
    assert_eq!(
        state
            .store
            .unfinished_export_jobs(&org)
            .await
            .unwrap()
            .len(),
        most
    );
    t.stop().await;
}
