//! Every code block of the Python SDK README, translated to this crate's blocking client and
//! run against the real server, in the README's order. Each block's Python is quoted above
//! its translation.

mod common;

use pictograph::blocking::Client;
use pictograph::{
    Annotation, AuthenticationError, DownloadMode, DownloadOptions, Error, GetOptions,
    ImageListOptions, ImageUpdate, NotFoundError, RateLimitError, Status, UploadOptions,
};
use pictograph_server::auth::Role;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// The real server on its own runtime, so the test body can block like the README's
/// scripts do.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    server: common::Server,
}

impl Fixture {
    fn start(tweak: impl FnOnce(&mut pictograph_server::Config)) -> Fixture {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let server = runtime.block_on(common::start_with(tweak));
        Fixture { runtime, server }
    }

    fn key(&self, org: &str, role: Role, tier: &str) -> String {
        self.runtime
            .block_on(pictograph_server::auth::create_key(
                &self.server.app.state.store,
                org,
                role,
                tier,
            ))
            .unwrap()
    }

    /// `Client(api_key=..., base_url=...)`.
    fn client(&self, key: &str) -> Client {
        Client::wrap(
            pictograph::Client::builder(key)
                .base_url(self.server.base_url())
                .retry_backoff(Duration::from_millis(10), Duration::from_millis(50))
                .build()
                .unwrap(),
        )
        .unwrap()
    }
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(
                    p.strip_prefix(dir)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
    out.sort();
    out
}

#[test]
fn readme_code_blocks() {
    let fx = Fixture::start(|_| {});
    let key = fx.key("readme-org", Role::Owner, "unlimited");
    let tmp = common::tempdir();
    let image_path = tmp.path().join("image.jpg");
    common::write_image(&image_path, 64, 48, 7);

    // --- Authentication ---
    // client = Client(api_key="pk_live_your_key_here")
    // client = Client(api_key=..., base_url=..., timeout=60, max_retries=5)
    let configured = pictograph::Client::builder(key.clone())
        .base_url(fx.server.base_url())
        .timeout(Duration::from_secs(60))
        .max_retries(5)
        .build()
        .unwrap();
    let client = Client::wrap(configured).unwrap();
    assert_eq!(client.base_url(), fx.server.base_url());

    let dataset = client
        .projects()
        .create("readme", Default::default())
        .unwrap();

    // --- Quick Start ---
    // datasets = client.datasets.list()
    // for dataset in datasets: print(f"{dataset['name']}: {dataset['image_count']} images")
    let listed = client.datasets().list(100).unwrap();
    let lines: Vec<String> = listed
        .iter()
        .map(|d| format!("{}: {} images", d.name, d.image_count))
        .collect();
    assert_eq!(lines, ["readme: 0 images"]);

    // result = client.images.upload("dataset-uuid", "/path/to/image.jpg", folder_path="/train/images")
    // print(f"Uploaded: {result['image_id']}")
    let result = client
        .images()
        .upload(
            &dataset.id,
            &image_path,
            UploadOptions::default().folder_path("/train/images"),
        )
        .unwrap();
    assert_eq!(result.virtual_folder_path.as_deref(), Some("/train/images"));
    let image_id = result.id.clone();

    // client.annotations.save("image-uuid", [{"id": "ann-1", "name": "person", "type": "bbox",
    //     "bbox": [100, 200, 50, 80], "confidence": 1.0}])
    let saved = client
        .annotations()
        .save(
            &image_id,
            &[
                Annotation::bbox("ann-1", "person", [100.0, 200.0, 50.0, 80.0])
                    .with_confidence(1.0),
            ],
        )
        .unwrap();
    assert_eq!(saved.new_count, 1);

    // annotations = client.annotations.get("image-uuid")
    // for ann in annotations: print(f"{ann['name']}: {ann['type']}")
    let got = client.annotations().get(&image_id).unwrap();
    let lines: Vec<String> = got
        .iter()
        .map(|a| format!("{}: {}", a.name(), a.kind()))
        .collect();
    assert_eq!(lines, ["person: bbox"]);

    // client.datasets.download("dataset-uuid", output_dir="./my_dataset", mode="full")
    let out = tmp.path().join("my_dataset");
    let report = client
        .datasets()
        .download(
            "readme",
            &out,
            DownloadOptions::default().mode(DownloadMode::Full),
        )
        .unwrap();
    assert_eq!(
        (report.images_downloaded, report.annotations_downloaded),
        (1, 1)
    );
    assert_eq!(
        files_under(&out),
        ["train/images/image.jpg", "train/images/image.jpg.json"]
    );
    assert_eq!(
        std::fs::read(out.join("train/images/image.jpg")).unwrap(),
        std::fs::read(&image_path).unwrap()
    );
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("train/images/image.jpg.json")).unwrap())
            .unwrap();
    assert_eq!(file["image_id"], image_id.as_str());
    assert_eq!(file["annotations"][0]["bounding_box"]["w"], 50.0);
    assert!(file["version"].as_i64().is_some_and(|v| v > 0), "{file}");

    // --- List Datasets ---
    // datasets = client.datasets.list(limit=50, offset=0)
    let page = client.datasets().list_page(50, 0).unwrap();
    assert_eq!(page.len(), 1);
    assert!(client.datasets().list_page(50, 1).unwrap().is_empty());

    // --- Get Dataset Details ---
    // dataset = client.datasets.get("dataset-uuid"); print(dataset['name'], dataset['image_count'])
    let d = client.datasets().get_by_id(&dataset.id).unwrap();
    assert_eq!((d.name.as_str(), d.image_count), ("readme", 1));
    // dataset = client.datasets.get("dataset-uuid", include_images=True, images_limit=1000)
    // for img in dataset['images']: print(img['filename'], img['image_url'])
    let d = client
        .datasets()
        .get_with(
            "readme",
            GetOptions {
                include_images: true,
                images_limit: 1000,
                ..Default::default()
            },
        )
        .unwrap();
    let images = d.images.unwrap_or_default();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].filename, "image.jpg");
    assert!(images[0]
        .image_url
        .as_deref()
        .is_some_and(|u| !u.is_empty()));

    // --- Upload Image ---
    // result = client.images.upload("dataset-uuid", "/path/to/image.jpg")
    let simple = client
        .images()
        .upload(&dataset.id, &image_path, UploadOptions::default())
        .unwrap();
    assert_eq!(simple.filename, "image.jpg");
    // result = client.images.upload("dataset-uuid", "/path/to/image.jpg",
    //     folder_path="/train/images", filename="custom_name.jpg")
    let custom = client
        .images()
        .upload(
            &dataset.id,
            &image_path,
            UploadOptions::default()
                .folder_path("/train/images")
                .filename("custom_name.jpg"),
        )
        .unwrap();
    assert_eq!(custom.filename, "custom_name.jpg");
    assert_eq!(custom.virtual_folder_path.as_deref(), Some("/train/images"));

    // --- Get Image Metadata ---
    // image = client.images.get("image-uuid"); image['filename'], image['image_url'], image['annotation_count']
    let image = client.images().get(&image_id).unwrap();
    assert_eq!(image.filename, "image.jpg");
    assert!(image.image_url.as_deref().is_some_and(|u| !u.is_empty()));
    assert_eq!(image.annotation_count, 1);

    // --- List Images in Dataset ---
    // images = client.datasets.list_images("dataset-uuid")
    let all = client
        .datasets()
        .list_images(&dataset.id, ImageListOptions::default())
        .unwrap();
    assert_eq!(all.total, 3);
    // completed_images = client.datasets.list_images("dataset-uuid", status="complete", limit=500)
    client
        .batch()
        .update(
            "readme",
            &[custom.id.as_str()],
            ImageUpdate {
                status: Some(Status::Complete),
                ..Default::default()
            },
        )
        .unwrap();
    let completed = client
        .datasets()
        .list_images(
            &dataset.id,
            ImageListOptions {
                status: Some(Status::Complete),
                limit: Some(500),
                ..Default::default()
            },
        )
        .unwrap();
    let ids: Vec<&str> = completed.images.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, [custom.id.as_str()]);

    // --- Download Dataset ---
    // result = client.datasets.download("dataset-uuid", output_dir="./dataset", mode="full",
    //     max_workers=20, show_progress=True)
    let out = tmp.path().join("dataset");
    let result = client
        .datasets()
        .download(
            "readme",
            &out,
            DownloadOptions::default()
                .mode(DownloadMode::Full)
                .max_workers(20)
                .show_progress(true),
        )
        .unwrap();
    assert_eq!(result.images_downloaded, 3);
    assert!(result.success());
    // result = client.datasets.download("dataset-uuid", output_dir="./annotations", mode="annotations_only")
    let out = tmp.path().join("annotations");
    let result = client
        .datasets()
        .download(
            "readme",
            &out,
            DownloadOptions::default().mode(DownloadMode::AnnotationsOnly),
        )
        .unwrap();
    assert_eq!(
        (result.images_downloaded, result.annotations_downloaded),
        (0, 3)
    );
    assert!(files_under(&out).iter().all(|f| f.ends_with(".json")));
    // result = client.datasets.download("dataset-uuid", output_dir="./completed", mode="full",
    //     status_filter="complete")
    let out = tmp.path().join("completed");
    let result = client
        .datasets()
        .download(
            "readme",
            &out,
            DownloadOptions::default()
                .mode(DownloadMode::Full)
                .status_filter(Status::Complete),
        )
        .unwrap();
    assert_eq!(result.images_downloaded, 1);
    assert_eq!(
        files_under(&out),
        [
            "train/images/custom_name.jpg",
            "train/images/custom_name.jpg.json"
        ]
    );

    // --- Get Annotations ---
    // for ann in annotations: if ann['type'] == 'bbox': x, y, width, height = ann['bbox']
    let mut boxes = Vec::new();
    for ann in client.annotations().get(&image_id).unwrap() {
        if let Annotation::BBox { bounding_box, .. } = ann {
            boxes.push((
                bounding_box.x,
                bounding_box.y,
                bounding_box.w,
                bounding_box.h,
            ));
        }
    }
    assert_eq!(boxes, [(100.0, 200.0, 50.0, 80.0)]);

    // --- Save Annotations ---
    // Polygon: [[10, 20], [30, 40], [50, 60], [10, 20]]
    let polygon = [[10.0, 20.0], [30.0, 40.0], [50.0, 60.0], [10.0, 20.0]];
    let r = client
        .annotations()
        .save(&image_id, &[Annotation::polygon("ann-2", "car", polygon)])
        .unwrap();
    assert_eq!((r.previous_count, r.new_count), (1, 1));
    // Multiple annotations
    let four = vec![
        Annotation::bbox("ann-1", "person", [100.0, 200.0, 50.0, 80.0]),
        Annotation::polygon("ann-2", "car", polygon),
        Annotation::polyline(
            "ann-3",
            "road",
            [[0.0, 100.0], [50.0, 100.0], [100.0, 100.0]],
        ),
        Annotation::keypoint("ann-4", "landmark", [150.0, 200.0]),
    ];
    let r = client.annotations().save(&image_id, &four).unwrap();
    assert_eq!(r.new_count, 4);
    let kinds: Vec<&str> = client
        .annotations()
        .get(&image_id)
        .unwrap()
        .iter()
        .map(Annotation::kind)
        .collect();
    assert_eq!(kinds, ["bbox", "polygon", "polyline", "keypoint"]);

    // --- Helper Methods ---
    // bbox = client.annotations.create_bbox("ann-1", "person", [100, 200, 50, 80], confidence=0.95)
    let anns = client.annotations();
    let helpers = vec![
        anns.create_bbox("ann-1", "person", [100.0, 200.0, 50.0, 80.0])
            .with_confidence(0.95),
        anns.create_polygon("ann-2", "car", polygon),
        anns.create_polyline(
            "ann-3",
            "road",
            [[0.0, 100.0], [50.0, 100.0], [100.0, 100.0]],
        ),
        anns.create_keypoint("ann-4", "landmark", [150.0, 200.0]),
    ];
    anns.save(&image_id, &helpers).unwrap();
    let back = anns.get(&image_id).unwrap();
    assert_eq!(back, helpers);
    assert_eq!(back[0].confidence(), 0.95);

    // --- Delete Annotations ---
    // result = client.annotations.delete("image-uuid"); print(result['deleted_count'])
    let r = anns.delete(&image_id).unwrap();
    assert_eq!(r.deleted_count, 4);
    assert!(anns.get(&image_id).unwrap().is_empty());

    // --- Custom Metadata ---
    // annotation = client.annotations.create_bbox("ann-1", "person", [100, 200, 50, 80],
    //     metadata={"annotator": "john@example.com", "difficulty": "easy", "verified": True})
    let metadata = json!({"annotator": "john@example.com", "difficulty": "easy", "verified": true});
    let annotation = anns
        .create_bbox("ann-1", "person", [100.0, 200.0, 50.0, 80.0])
        .with_metadata(metadata.clone());
    anns.save(&image_id, std::slice::from_ref(&annotation))
        .unwrap();
    let back = anns.get(&image_id).unwrap();
    assert_eq!(back, [annotation]);
    assert_eq!(
        serde_json::to_value(back[0].metadata().unwrap()).unwrap(),
        metadata
    );
    // Downloads keep it too.
    let out = tmp.path().join("with_metadata");
    client
        .datasets()
        .download(
            "readme",
            &out,
            DownloadOptions::default().mode(DownloadMode::AnnotationsOnly),
        )
        .unwrap();
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("train/images/image.jpg.json")).unwrap())
            .unwrap();
    assert_eq!(file["annotations"][0]["metadata"], metadata);

    // --- Batch Processing ---
    // with ThreadPoolExecutor(max_workers=10) as executor:
    //     results = list(executor.map(upload_image, image_paths))
    let paths: Vec<_> = ["img1.jpg", "img2.jpg", "img3.jpg"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let p = tmp.path().join("batch").join(name);
            common::write_image(&p, 16, 16, 40 + i as u8);
            p
        })
        .collect();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .iter()
            .map(|p| {
                let client = client.clone();
                let id = dataset.id.clone();
                s.spawn(move || client.images().upload(&id, p, UploadOptions::default()))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3);

    // --- Delete Image ---
    // client.images.delete("image-uuid")  (archive); client.images.delete("image-uuid", permanent=True)
    client.images().delete(&simple.id, false).unwrap();
    assert!(client.images().get(&simple.id).unwrap().is_archived);
    client.images().delete(&custom.id, true).unwrap();
    assert!(matches!(
        client.images().get(&custom.id),
        Err(Error::NotFound(_))
    ));

    // --- Context Manager ---
    // with Client(api_key=...) as client: datasets = client.datasets.list()
    {
        let scoped = fx.client(&key);
        assert_eq!(scoped.datasets().list(10).unwrap().len(), 1);
    } // dropped here: its pool and runtime are closed
}

#[test]
fn readme_error_handling() {
    // `free` tier of 1 request per hour: the second request is answered 429.
    let fx = Fixture::start(|c| c.rate_limits.free = 1);
    let key = fx.key("readme-errors", Role::Owner, "unlimited");
    let client = fx.client(&key);

    // try: dataset = client.datasets.get("invalid-uuid") except NotFoundError: ...
    let outcome = client.datasets().get_by_id("invalid-uuid");
    let not_found: Option<&NotFoundError> = match &outcome {
        Err(Error::NotFound(e)) => Some(e),
        _ => None,
    };
    assert_eq!(not_found.map(|e| e.status), Some(404), "{outcome:?}");

    // except AuthenticationError: print("Invalid API key")
    let bad = fx.client("pk_live_not_a_key");
    let outcome = bad.datasets().list(10);
    let auth: Option<&AuthenticationError> = match &outcome {
        Err(Error::Auth(e)) => Some(e),
        _ => None,
    };
    assert_eq!(auth.map(|e| e.0.status), Some(401), "{outcome:?}");

    // except RateLimitError as e: print(f"Rate limited. Retry after {e.retry_after} seconds")
    let free = fx.key("readme-errors", Role::Owner, "free");
    let limited = fx.client(&free);
    limited.datasets().list(10).unwrap();
    let outcome = limited.datasets().list(10);
    let rate: Option<&RateLimitError> = match &outcome {
        Err(Error::RateLimit(e)) => Some(e),
        _ => None,
    };
    let retry_after = rate.and_then(|e| e.retry_after);
    assert!(
        retry_after.is_some_and(|d| d > Duration::from_secs(120)),
        "a wait beyond the 2-minute bound is raised at once with retry_after: {outcome:?}"
    );
}
