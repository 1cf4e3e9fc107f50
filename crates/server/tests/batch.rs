//! Batch move, copy, delete and update over many images of one dataset.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

/// Asserts the BatchResult shape: the SDK keys, the seed keys, and their agreement.
#[track_caller]
fn check_result(r: &Value, processed: usize, failed: &[&str]) {
    assert_eq!(r["processed"], processed, "{r}");
    assert_eq!(r["success"], failed.is_empty(), "{r}");
    let got: Vec<&str> = r["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert!(f["reason"].as_str().is_some_and(|s| !s.is_empty()), "{f}");
            f["id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(got, failed, "{r}");
    assert_eq!(r["failed_count"], failed.len());
    let failures: Vec<&str> = r["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["image_id"].as_str().unwrap())
        .collect();
    assert_eq!(failures, failed);
    assert_eq!(r["succeeded"].as_array().unwrap().len(), processed);
    assert!(r["affected_folders"].is_array());
    assert_eq!(r["affected_directories"], r["affected_folders"]);
}

fn folders(r: &Value) -> HashSet<String> {
    r["affected_folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect()
}

fn set(items: &[&str]) -> HashSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Images of a dataset keyed by "folder/filename".
async fn by_path(c: &Client, ds: &str) -> HashMap<String, Value> {
    c.images(ds)
        .await
        .into_iter()
        .map(|i| {
            let folder = s(&i, "virtual_folder_path");
            let key = format!("{}/{}", folder.trim_end_matches('/'), s(&i, "filename"));
            (key, i)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_changes_folders_and_reports_clashes() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("mv").await;
    let id = s(&ds, "id");
    let a = s(&t.owner.upload_png(&id, "/", "a.png", 1).await, "id");
    let b = s(&t.owner.upload_png(&id, "/in", "b.png", 2).await, "id");
    let clash = s(&t.owner.upload_png(&id, "/", "c.png", 3).await, "id");
    let there = s(
        &t.owner.upload_png(&id, "/sorted/cars", "c.png", 4).await,
        "id",
    );
    let unknown = uuid::Uuid::new_v4().to_string();

    let r = t
        .member
        .batch(
            "move",
            &json!({"dataset_name": "mv", "image_ids": [a, b, clash, unknown], "target_folder_path": "sorted/cars/"}),
        )
        .await
        .ok_json(200);
    check_result(&r, 2, &[&clash, &unknown]);
    assert_eq!(folders(&r), set(&["/", "/in", "/sorted/cars"]));
    let failed = r["failed"].as_array().unwrap();
    assert!(s(&failed[0], "reason").contains("already exists"), "{r}");
    assert!(
        s(&failed[1], "reason").to_lowercase().contains("not found"),
        "{r}"
    );

    assert_eq!(
        t.owner.image(&a).await["virtual_folder_path"],
        "/sorted/cars"
    );
    assert_eq!(
        t.owner.image(&b).await["virtual_folder_path"],
        "/sorted/cars"
    );
    assert_eq!(t.owner.image(&clash).await["virtual_folder_path"], "/");
    assert_eq!(
        t.owner.image(&there).await["virtual_folder_path"],
        "/sorted/cars"
    );
    assert_eq!(t.owner.counts("mv").await.images, 4);

    // The names moved away are free in the old folders, and taken in the new one.
    t.owner
        .upload_url(&id, "/", "a.png", "image/png")
        .await
        .expect(200);
    t.owner
        .upload_url(&id, "/sorted/cars", "a.png", "image/png")
        .await
        .error(409, "conflict");

    // Moving to where an image already is succeeds; the newer field name works too.
    let r = t
        .owner
        .batch("move", &json!({"dataset_name": "mv", "image_ids": [a], "target_directory_path": "/sorted/cars"}))
        .await
        .ok_json(200);
    check_result(&r, 1, &[]);
    // Two sources of the same name into one folder: the first wins.
    let d1 = s(&t.owner.upload_png(&id, "/p", "d.png", 5).await, "id");
    let d2 = s(&t.owner.upload_png(&id, "/q", "d.png", 6).await, "id");
    let r = t
        .owner
        .batch(
            "move",
            &json!({"dataset_name": "mv", "image_ids": [d1, d2], "target_folder_path": "/r"}),
        )
        .await
        .ok_json(200);
    check_result(&r, 1, &[&d2]);
    assert_eq!(t.owner.image(&d1).await["virtual_folder_path"], "/r");
    assert_eq!(t.owner.image(&d2).await["virtual_folder_path"], "/q");

    // Moving to the root by default.
    let r = t
        .owner
        .batch("move", &json!({"dataset_name": "mv", "image_ids": [b]}))
        .await
        .ok_json(200);
    check_result(&r, 1, &[]);
    assert_eq!(t.owner.image(&b).await["virtual_folder_path"], "/");
    t.owner
        .batch(
            "move",
            &json!({"dataset_name": "mv", "image_ids": [b], "target_folder_path": "/a/../b"}),
        )
        .await
        .error(422, "validation_error");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_renames_skips_or_overwrites_and_shares_bytes() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("cp").await;
    let id = s(&ds, "id");
    let src = t.owner.upload_png(&id, "/", "a.png", 1).await;
    let src_id = s(&src, "id");
    let ann = json!({"annotations": [{"id": "1", "name": "car", "type": "bbox",
        "bounding_box": {"x": 1.0, "y": 1.0, "w": 2.0, "h": 2.0}, "confidence": 1.0, "attributes": []}]});
    t.owner
        .post(&format!("annotations/{src_id}"), &ann)
        .await
        .expect(200);
    t.owner
        .patch(
            "batch/images/update",
            &json!({"dataset_name": "cp", "image_ids": [src_id], "updates": {"status": "review"}}),
        )
        .await
        .expect(200);
    let files_before = t.blob_files();
    assert_eq!(files_before.len(), 1);

    let copy = |folder: &str, mode: &str, with: bool| {
        json!({"dataset_name": "cp", "image_ids": [src_id], "target_folder_path": folder,
               "duplicate_handling": mode, "copy_annotations": with})
    };

    // rename: in the same folder the copies get -2, -3.
    let r = t
        .member
        .batch("copy", &copy("/", "rename", true))
        .await
        .ok_json(200);
    check_result(&r, 1, &[]);
    assert_eq!(r["renamed"], 1);
    let r = t
        .member
        .batch("copy", &copy("/", "rename", false))
        .await
        .ok_json(200);
    check_result(&r, 1, &[]);
    let images = by_path(&t.owner, "cp").await;
    let mut names: Vec<&String> = images.keys().collect();
    names.sort();
    assert_eq!(names, ["/a-2.png", "/a-3.png", "/a.png"]);
    let with = &images["/a-2.png"];
    let without = &images["/a-3.png"];
    for c in [with, without] {
        assert_ne!(c["id"], src["id"], "copies are new images");
        assert_eq!(c["file_size"], src["file_size"]);
        assert_eq!(c["width"], src["width"]);
        assert_eq!(c["is_archived"], false);
    }
    assert_eq!(with["status"], "review");
    assert_eq!(with["annotation_count"], 1);
    let got = t
        .owner
        .get(&format!("annotations/{}", s(with, "id")))
        .await
        .ok_json(200);
    assert_eq!(got["annotations"], ann["annotations"]);
    assert_eq!(without["status"], "new");
    assert_eq!(without["annotation_count"], 0);
    let got = t
        .owner
        .get(&format!("annotations/{}", s(without, "id")))
        .await
        .ok_json(200);
    assert_eq!(got["annotations"], json!([]));
    // The source is untouched, and the copies' annotations are their own.
    assert_eq!(t.owner.image(&src_id).await["annotation_count"], 1);
    t.owner
        .post(
            &format!("annotations/{}", s(with, "id")),
            &json!({"annotations": []}),
        )
        .await
        .expect(200);
    assert_eq!(t.owner.image(&src_id).await["annotation_count"], 1);

    // Copies share the bytes: no new file on disk, same ETag.
    assert_eq!(t.blob_files(), files_before);
    let a = t.owner.get(&format!("images/{src_id}")).await.expect(200);
    let b = t
        .owner
        .get(&format!("images/{}", s(without, "id")))
        .await
        .expect(200);
    assert_eq!(a.bytes, b.bytes);
    assert_eq!(a.header("etag"), b.header("etag"));

    // Into another folder: no clash, the name is kept.
    let r = t
        .owner
        .batch("copy", &copy("/dst", "rename", false))
        .await
        .ok_json(200);
    check_result(&r, 1, &[]);
    assert_eq!(r["renamed"], 0);
    assert_eq!(folders(&r), set(&["/", "/dst"]));
    let dst = by_path(&t.owner, "cp").await["/dst/a.png"].clone();

    // skip: the existing image stays and the source is reported failed.
    let r = t
        .owner
        .batch("copy", &copy("/dst", "skip", true))
        .await
        .ok_json(200);
    check_result(&r, 0, &[&src_id]);
    let after = by_path(&t.owner, "cp").await;
    assert_eq!(after.len(), 4);
    assert_eq!(after["/dst/a.png"]["id"], dst["id"]);

    // overwrite: the existing image is replaced by a new copy. That deletes the replaced
    // image for good, as a permanent delete does: a member key is refused, and nothing
    // changes.
    let other_bytes = png_seeded(8, 6, 99);
    let victim = t
        .owner
        .upload(&id, "/ow", "a.png", &other_bytes, "image/png")
        .await;
    assert!(t.blob_stored(&sha256_hex(&other_bytes)));
    let before = by_path(&t.owner, "cp").await;
    let detail = t
        .member
        .batch("copy", &copy("/ow", "overwrite", true))
        .await
        .error_detail(403, "forbidden");
    assert!(
        detail.contains("'overwrite'") && detail.contains("admin"),
        "{detail}"
    );
    assert_eq!(by_path(&t.owner, "cp").await, before);
    let r = t
        .owner
        .batch("copy", &copy("/ow", "overwrite", true))
        .await
        .ok_json(200);
    check_result(&r, 1, &[]);
    t.owner
        .get(&format!("images/{}/metadata", s(&victim, "id")))
        .await
        .error(404, "not_found");
    let replaced = by_path(&t.owner, "cp").await["/ow/a.png"].clone();
    assert_ne!(replaced["id"], victim["id"]);
    assert_eq!(replaced["status"], "review");
    let got = t
        .owner
        .get(&format!("images/{}", s(&replaced, "id")))
        .await
        .expect(200);
    assert_eq!(got.bytes, a.bytes);
    assert!(
        !t.blob_stored(&sha256_hex(&other_bytes)),
        "the overwritten image's bytes are freed"
    );
    assert_eq!(t.owner.counts("cp").await.images, 5);

    // Bad policy.
    t.owner
        .batch("copy", &copy("/dst", "replace", false))
        .await
        .error(422, "validation_error");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_archives_or_purges_by_role() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("del").await;
    let id = s(&ds, "id");
    let a = s(&t.owner.upload_png(&id, "/", "a.png", 1).await, "id");
    let b = s(&t.owner.upload_png(&id, "/x", "b.png", 2).await, "id");
    let c = s(&t.owner.upload_png(&id, "/", "c.png", 3).await, "id");

    let r = t
        .member
        .batch(
            "delete",
            &json!({"dataset_name": "del", "image_ids": [a, b], "permanent": false}),
        )
        .await
        .ok_json(200);
    check_result(&r, 2, &[]);
    assert_eq!(folders(&r), set(&["/", "/x"]));
    assert_eq!(t.owner.image(&a).await["is_archived"], true);
    assert_eq!(t.owner.image(&b).await["is_archived"], true);
    let k = t.owner.counts("del").await;
    assert_eq!((k.images, k.archived), (1, 2));
    assert_eq!(t.blob_files().len(), 3, "archives keep their bytes");

    t.member
        .batch(
            "delete",
            &json!({"dataset_name": "del", "image_ids": [a, c], "permanent": true}),
        )
        .await
        .error(403, "forbidden");
    assert_eq!(t.owner.image(&c).await["is_archived"], false);

    let r = t
        .admin
        .batch(
            "delete",
            &json!({"dataset_name": "del", "image_ids": [a, c], "permanent": true}),
        )
        .await
        .ok_json(200);
    check_result(&r, 2, &[]);
    for gone in [&a, &c] {
        t.owner
            .get(&format!("images/{gone}/metadata"))
            .await
            .error(404, "not_found");
    }
    assert!(!t.blob_stored(&sha256_hex(&png_seeded(8, 6, 1))));
    assert!(!t.blob_stored(&sha256_hex(&png_seeded(8, 6, 3))));
    assert!(t.blob_stored(&sha256_hex(&png_seeded(8, 6, 2))));
    let k = t.owner.counts("del").await;
    assert_eq!((k.images, k.archived), (0, 1));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_sets_fields_and_restores_unless_the_name_was_taken() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("up").await;
    let id = s(&ds, "id");
    let a = s(&t.owner.upload_png(&id, "/", "a.png", 1).await, "id");
    let b = s(&t.owner.upload_png(&id, "/", "b.png", 2).await, "id");
    let update = |ids: &[&String], updates: Value| json!({"dataset_name": "up", "image_ids": ids, "updates": updates});

    for status in ["annotate", "review", "complete", "new"] {
        let r = t
            .member
            .patch(
                "batch/images/update",
                &update(&[&a, &b], json!({"status": status})),
            )
            .await
            .ok_json(200);
        check_result(&r, 2, &[]);
        assert_eq!(t.owner.image(&a).await["status"], status);
        assert_eq!(t.owner.image(&b).await["status"], status);
    }
    let r = t
        .member
        .patch(
            "batch/images/update",
            &update(&[&a], json!({"display_name": "Front view", "status": null})),
        )
        .await
        .ok_json(200);
    check_result(&r, 1, &[]);
    let img = t.owner.image(&a).await;
    assert_eq!(img["display_name"], "Front view");
    assert_eq!(img["filename"], "a.png");
    assert_eq!(img["status"], "new");
    // Several fields at once, and only those.
    for (updates, expected) in [
        (
            json!({"status": "review", "display_name": "Side view", "is_archived": true}),
            ("review", "Side view", true),
        ),
        (
            json!({"status": "new", "is_archived": false}),
            ("new", "Side view", false),
        ),
    ] {
        let r = t
            .member
            .patch("batch/images/update", &update(&[&b], updates))
            .await
            .ok_json(200);
        check_result(&r, 1, &[]);
        let img = t.owner.image(&b).await;
        assert_eq!(
            (&img["status"], &img["display_name"], &img["is_archived"]),
            (&json!(expected.0), &json!(expected.1), &json!(expected.2))
        );
    }
    let img = t.owner.image(&a).await;
    assert_eq!(
        (&img["status"], &img["display_name"]),
        (&json!("new"), &json!("Front view"))
    );

    // Archive through update, take the name, then try to restore.
    t.member
        .patch(
            "batch/images/update",
            &update(&[&a, &b], json!({"is_archived": true})),
        )
        .await
        .expect(200);
    assert_eq!(t.owner.counts("up").await.archived, 2);
    let newer = t.owner.upload_png(&id, "/", "a.png", 3).await;
    let r = t
        .member
        .patch(
            "batch/images/update",
            &update(&[&a, &b], json!({"is_archived": false})),
        )
        .await
        .ok_json(200);
    check_result(&r, 1, &[&a]);
    assert!(
        s(&r["failed"][0], "reason").contains("already exists"),
        "{r}"
    );
    assert_eq!(t.owner.image(&a).await["is_archived"], true);
    assert_eq!(t.owner.image(&b).await["is_archived"], false);
    assert_eq!(t.owner.image(&s(&newer, "id")).await["is_archived"], false);
    let k = t.owner.counts("up").await;
    assert_eq!((k.images, k.archived), (2, 1));
    // Two archived images of one name restored together: the first one asked for is.
    let newer = s(&newer, "id");
    t.member
        .patch(
            "batch/images/update",
            &update(&[&newer], json!({"is_archived": true})),
        )
        .await
        .expect(200);
    let r = t
        .member
        .patch(
            "batch/images/update",
            &update(
                &[&newer, &a, &b],
                json!({"is_archived": false, "status": "review"}),
            ),
        )
        .await
        .ok_json(200);
    check_result(&r, 2, &[&a]);
    assert!(
        s(&r["failed"][0], "reason").contains("cannot restore"),
        "{r}"
    );
    for (id, archived, status) in [
        (&newer, false, "review"),
        (&a, true, "new"),
        (&b, false, "review"),
    ] {
        let img = t.owner.image(id).await;
        assert_eq!(
            (&img["is_archived"], &img["status"]),
            (&json!(archived), &json!(status)),
            "{id}"
        );
    }
    let k = t.owner.counts("up").await;
    assert_eq!((k.images, k.archived), (2, 1));

    // Invalid updates are refused whole.
    for bad in [
        json!({}),
        json!({"status": null}),
        json!({"status": "in_progress"}),
        json!({"status": "complete", "color": "red"}),
        json!({"is_archived": "yes"}),
        json!({"display_name": 5}),
    ] {
        t.member
            .patch("batch/images/update", &update(&[&b], bad.clone()))
            .await
            .error(422, "validation_error");
    }
    t.member
        .patch(
            "batch/images/update",
            &json!({"dataset_name": "up", "image_ids": [b]}),
        )
        .await
        .error(422, "validation_error");
    assert_eq!(t.owner.image(&b).await["status"], "review");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_level_errors_and_partial_failure() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("errs").await;
    let a = s(
        &t.owner.upload_png(&s(&ds, "id"), "/", "a.png", 1).await,
        "id",
    );
    let unknown: Vec<String> = (0..3).map(|_| uuid::Uuid::new_v4().to_string()).collect();

    // Unknown dataset.
    for op in ["move", "copy", "delete"] {
        t.owner
            .batch(op, &json!({"dataset_name": "nope", "image_ids": [a]}))
            .await
            .error(404, "not_found");
    }
    t.owner
        .patch(
            "batch/images/update",
            &json!({"dataset_name": "nope", "image_ids": [a], "updates": {"status": "new"}}),
        )
        .await
        .error(404, "not_found");
    // Every id unknown.
    for op in ["move", "copy", "delete"] {
        t.owner
            .batch(op, &json!({"dataset_name": "errs", "image_ids": unknown}))
            .await
            .error(404, "not_found");
    }
    t.owner
        .patch(
            "batch/images/update",
            &json!({"dataset_name": "errs", "image_ids": unknown, "updates": {"status": "review"}}),
        )
        .await
        .error(404, "not_found");
    // Too many ids, or none.
    let many: Vec<String> = (0..100_001).map(|i| format!("id-{i}")).collect();
    for op in ["move", "copy", "delete"] {
        t.owner
            .batch(op, &json!({"dataset_name": "errs", "image_ids": many}))
            .await
            .error(422, "validation_error");
        t.owner
            .batch(op, &json!({"dataset_name": "errs", "image_ids": []}))
            .await
            .error(422, "validation_error");
    }
    t.owner
        .patch(
            "batch/images/update",
            &json!({"dataset_name": "errs", "image_ids": many, "updates": {"status": "new"}}),
        )
        .await
        .error(422, "validation_error");
    // Missing fields.
    t.owner
        .batch("move", &json!({"image_ids": [a]}))
        .await
        .error(422, "validation_error");
    t.owner
        .batch("move", &json!({"dataset_name": "errs"}))
        .await
        .error(422, "validation_error");

    // Some ids unknown: 200 with both the SDK and the seed shapes.
    let r = t
        .owner
        .patch(
            "batch/images/update",
            &json!({"dataset_name": "errs", "image_ids": [unknown[0], a, unknown[1]], "updates": {"status": "complete"}}),
        )
        .await
        .ok_json(200);
    check_result(&r, 1, &[&unknown[0], &unknown[1]]);
    assert_eq!(r["succeeded"], json!([a]));
    assert_eq!(r["failures"][0]["reason"], r["failed"][0]["reason"]);
    assert_eq!(t.owner.image(&a).await["status"], "complete");
    // Repeated ids count once.
    let r = t
        .owner
        .batch(
            "delete",
            &json!({"dataset_name": "errs", "image_ids": [a, a], "permanent": false}),
        )
        .await
        .ok_json(200);
    check_result(&r, 1, &[]);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_images_move_in_one_request() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("big").await;
    let first = t.owner.upload_png(&s(&ds, "id"), "/", "img.png", 1).await;
    let mut all = vec![s(&first, "id")];
    // Double the dataset with copies until it has 2048 images.
    while all.len() < 2048 {
        copy_into_root(&t, "big", &all).await;
        all = ids(&t.owner.images("big").await);
    }
    assert_eq!(all.len(), 2048);
    assert_eq!(t.blob_files().len(), 1);
    let names: HashSet<String> = t
        .owner
        .images("big")
        .await
        .iter()
        .map(|i| s(i, "filename"))
        .collect();
    assert_eq!(names.len(), 2048, "renamed copies have distinct names");

    let r = t
        .owner
        .batch(
            "move",
            &json!({"dataset_name": "big", "image_ids": all, "target_folder_path": "/moved"}),
        )
        .await
        .ok_json(200);
    check_result(&r, 2048, &[]);
    assert_eq!(folders(&r), set(&["/", "/moved"]));
    let after = t.owner.images("big").await;
    assert_eq!(after.len(), 2048);
    assert!(after.iter().all(|i| i["virtual_folder_path"] == "/moved"));
    let k = t.owner.counts("big").await;
    assert_eq!(k.images, 2048);
    assert_eq!(k.total_size, 2048 * first["file_size"].as_i64().unwrap());

    // And archived in one request.
    let r = t
        .owner
        .batch(
            "delete",
            &json!({"dataset_name": "big", "image_ids": all, "permanent": false}),
        )
        .await
        .ok_json(200);
    check_result(&r, 2048, &[]);
    let k = t.owner.counts("big").await;
    assert_eq!((k.images, k.archived, k.total_size), (0, 2048, 0));
    t.stop().await;
}

/// Statements that make every insert, update or delete of an image fail from the fourth row
/// a transaction touches on (a fault in the middle of a batch statement, after rows changed),
/// and the statements that remove the fault.
fn fault_sql(postgres: bool) -> (&'static str, &'static str) {
    if postgres {
        (
            "CREATE TABLE fault_seen (n BIGINT NOT NULL); INSERT INTO fault_seen VALUES (0);
         CREATE FUNCTION fault() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             UPDATE fault_seen SET n = n + 1;
             IF (SELECT n FROM fault_seen) >= 4 THEN
                 RAISE EXCEPTION 'fault injected by the test';
             END IF;
             RETURN COALESCE(NEW, OLD);
         END $$;
         CREATE TRIGGER fault BEFORE INSERT OR UPDATE OR DELETE ON images
             FOR EACH ROW EXECUTE FUNCTION fault();",
            "DROP TRIGGER fault ON images; DROP FUNCTION fault(); DROP TABLE fault_seen;",
        )
    } else {
        (
            "CREATE TABLE fault_seen (n INTEGER NOT NULL); INSERT INTO fault_seen VALUES (0);
         CREATE TRIGGER fault_insert BEFORE INSERT ON images BEGIN
             UPDATE fault_seen SET n = n + 1;
             SELECT RAISE(FAIL, 'fault injected by the test') WHERE (SELECT n FROM fault_seen) >= 4;
         END;
         CREATE TRIGGER fault_update BEFORE UPDATE ON images BEGIN
             UPDATE fault_seen SET n = n + 1;
             SELECT RAISE(FAIL, 'fault injected by the test') WHERE (SELECT n FROM fault_seen) >= 4;
         END;
         CREATE TRIGGER fault_delete BEFORE DELETE ON images BEGIN
             UPDATE fault_seen SET n = n + 1;
             SELECT RAISE(FAIL, 'fault injected by the test') WHERE (SELECT n FROM fault_seen) >= 4;
         END;",
            "DROP TRIGGER fault_insert; DROP TRIGGER fault_update; DROP TRIGGER fault_delete; \
          DROP TABLE fault_seen;",
        )
    }
}

/// Creates dataset `name` holding `n` distinct PNGs `0.png`, `1.png`, … in `folder`; answers
/// their ids in that order.
async fn dataset_of_pngs(t: &TestServer, name: &str, folder: &str, n: u8) -> Vec<String> {
    let dataset_id = s(&t.owner.create_dataset(name).await, "id");
    let mut ids = Vec::new();
    for i in 0..n {
        let image = t
            .owner
            .upload_png(&dataset_id, folder, &format!("{i}.png"), i)
            .await;
        ids.push(s(&image, "id"));
    }
    ids
}

/// Everything a failed batch must leave as it was: each image's metadata, the dataset's
/// counters and the stored blobs.
async fn batch_state(t: &TestServer, ids: &[String]) -> (Vec<Value>, Counts, usize) {
    let mut images = Vec::new();
    for id in ids {
        images.push(t.owner.image(id).await);
    }
    (images, t.owner.counts("fault").await, t.blob_files().len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_failing_part_way_changes_nothing() {
    let t = TestServer::start().await;
    let all = dataset_of_pngs(&t, "fault", "/a", 8).await;
    let archived = &all[4..];
    t.owner
        .batch(
            "delete",
            &json!({"dataset_name": "fault", "image_ids": archived, "permanent": false}),
        )
        .await
        .ok_json(200);
    let before = batch_state(&t, &all).await;
    let db = t.db().await;
    let (install, remove) = fault_sql(t.backend().is_postgres());
    sqlx::raw_sql(install)
        .execute(&db)
        .await
        .expect("install the fault");

    let batch = |ids: &[String], extra: Value| {
        let mut body = json!({"dataset_name": "fault", "image_ids": ids});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    // (what, operation: `update` is a PATCH, the others POSTs, body)
    let attempts = [
        (
            "move",
            "move",
            batch(&all, json!({"target_folder_path": "/b"})),
        ),
        (
            "copy",
            "copy",
            batch(
                &all,
                json!({"target_folder_path": "/c", "copy_annotations": true}),
            ),
        ),
        (
            "copy over",
            "copy",
            batch(
                &all,
                json!({"target_folder_path": "/a", "duplicate_handling": "overwrite"}),
            ),
        ),
        (
            "archive",
            "delete",
            batch(&all, json!({"permanent": false})),
        ),
        ("purge", "delete", batch(&all, json!({"permanent": true}))),
        (
            "status",
            "update",
            batch(&all, json!({"updates": {"status": "complete"}})),
        ),
        (
            "restore",
            "update",
            batch(archived, json!({"updates": {"is_archived": false}})),
        ),
    ];
    for (what, op, body) in attempts {
        let r = if op == "update" {
            t.admin.patch("batch/images/update", &body).await
        } else {
            t.admin.batch(op, &body).await
        };
        let r = r.expect(500);
        assert!(
            r.json()["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: {}",
            String::from_utf8_lossy(&r.bytes)
        );
        assert!(
            batch_state(&t, &all).await == before,
            "{what} left changes behind"
        );
    }

    // Without the fault, the same batches go through.
    sqlx::raw_sql(remove)
        .execute(&db)
        .await
        .expect("remove the fault");
    let r = t
        .admin
        .batch("move", &batch(&all, json!({"target_folder_path": "/b"})))
        .await
        .ok_json(200);
    check_result(&r, 8, &[]);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_made_together_list_in_the_order_asked() {
    let t = TestServer::start().await;
    let sources = dataset_of_pngs(&t, "order", "/src", 8).await;
    // Asked for in an order that is neither upload order nor sorted by id.
    let asked: Vec<String> = [5, 2, 7, 0, 3, 6, 1, 4]
        .iter()
        .map(|&i| sources[i].clone())
        .collect();
    let r = t
        .owner
        .batch(
            "copy",
            &json!({"dataset_name": "order", "image_ids": asked, "target_folder_path": "/copies"}),
        )
        .await
        .ok_json(200);
    check_result(&r, 8, &[]);
    let copies: Vec<String> = t
        .owner
        .images("order")
        .await
        .iter()
        .filter(|i| i["virtual_folder_path"] == "/copies")
        .map(|i| s(i, "filename"))
        .collect();
    assert_eq!(
        copies,
        ["5.png", "2.png", "7.png", "0.png", "3.png", "6.png", "1.png", "4.png"]
    );
    t.stop().await;
}

/// Copies the images `ids` of `dataset` into its root folder (renamed, without annotations)
/// and checks that every copy was made.
async fn copy_into_root(t: &TestServer, dataset: &str, ids: &[String]) {
    let r = t
        .owner
        .batch(
            "copy",
            &json!({"dataset_name": dataset, "image_ids": ids, "target_folder_path": "/",
                    "duplicate_handling": "rename", "copy_annotations": false}),
        )
        .await
        .ok_json(200);
    check_result(&r, ids.len(), &[]);
}

/// Ids of the images of a dataset as stored, and the lowest and highest version among them.
async fn stored(db: &sqlx::AnyPool, dataset_id: &str) -> (Vec<String>, i64, i64) {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT id, version FROM images WHERE dataset_seq = (SELECT seq FROM datasets WHERE id = $1) ORDER BY id")
            .bind(dataset_id)
            .fetch_all(db)
            .await
            .expect("read the images");
    let min = rows.iter().map(|r| r.1).min().unwrap_or(0);
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0);
    (rows.into_iter().map(|r| r.0).collect(), min, max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_more_ids_than_one_statement_change_each_image_once() {
    let t = TestServer::start().await;
    let ds = s(&t.owner.create_dataset("huge").await, "id");
    let first = t.owner.upload_png(&ds, "/", "img.png", 1).await;
    let size = first["file_size"].as_i64().unwrap();
    let db = t.db().await;
    // Doubled by copies up to 32,768 images: the last copy names 16,384 ids.
    let mut all = vec![s(&first, "id")];
    while all.len() < 32_768 {
        copy_into_root(&t, "huge", &all).await;
        all = stored(&db, &ds).await.0;
    }
    assert_eq!(all.len(), 32_768);
    assert_eq!(stored(&db, &ds).await, (all.clone(), 1, 1));
    // Every request names the first images twice, the second time in another chunk.
    let mut asked = all.clone();
    asked.extend(all[..50].iter().cloned());
    let body = |extra: Value| {
        let mut b = json!({"dataset_name": "huge", "image_ids": asked});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };

    let r = t
        .owner
        .patch(
            "batch/images/update",
            &body(json!({"updates": {"status": "complete"}})),
        )
        .await
        .ok_json(200);
    check_result(&r, 32_768, &[]);
    assert_eq!(stored(&db, &ds).await, (all.clone(), 2, 2));
    assert_eq!(t.owner.counts("huge").await.completed, 32_768);

    let r = t
        .owner
        .batch("move", &body(json!({"target_folder_path": "/moved"})))
        .await
        .ok_json(200);
    check_result(&r, 32_768, &[]);
    assert_eq!(stored(&db, &ds).await, (all.clone(), 3, 3));
    let (elsewhere,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM images WHERE dataset_seq = (SELECT seq FROM datasets WHERE id = $1) AND folder <> '/moved'")
            .bind(&ds)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(elsewhere, 0);

    let r = t
        .owner
        .batch("delete", &body(json!({"permanent": false})))
        .await
        .ok_json(200);
    check_result(&r, 32_768, &[]);
    assert_eq!(stored(&db, &ds).await, (all.clone(), 4, 4));
    let k = t.owner.counts("huge").await;
    assert_eq!((k.images, k.archived, k.total_size), (0, 32_768, 0));

    let r = t
        .owner
        .patch(
            "batch/images/update",
            &body(json!({"updates": {"is_archived": false}})),
        )
        .await
        .ok_json(200);
    check_result(&r, 32_768, &[]);
    assert_eq!(stored(&db, &ds).await, (all.clone(), 5, 5));
    let k = t.owner.counts("huge").await;
    assert_eq!(
        (k.images, k.completed, k.archived, k.total_size),
        (32_768, 32_768, 0, 32_768 * size)
    );

    let r = t
        .owner
        .batch("delete", &body(json!({"permanent": true})))
        .await
        .ok_json(200);
    check_result(&r, 32_768, &[]);
    assert_eq!(stored(&db, &ds).await, (Vec::new(), 0, 0));
    let k = t.owner.counts("huge").await;
    assert_eq!((k.images, k.archived, k.total_size), (0, 0, 0));
    t.stop().await;
}

/// Ids that name no image: enough of them after a first id puts the ids that follow in the
/// next statement of a batch (the server works through a batch 10,000 ids at a time).
fn chunk_of_unknown_ids() -> Vec<String> {
    (0..9_999)
        .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
        .collect()
}

/// [`check_result`] for a batch of [`across_chunks`]: `processed` succeeded, and the unknown
/// ids then `failed` did not (without printing the 10,000 failures when it does not hold).
#[track_caller]
fn check_chunked(r: &Value, processed: usize, failed: &[&String]) {
    let got: Vec<&str> = r["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    let unknown = chunk_of_unknown_ids();
    let mut want: Vec<&str> = unknown.iter().map(String::as_str).collect();
    want.extend(failed.iter().map(|id| id.as_str()));
    let tail = |v: &[&str]| v[v.len().saturating_sub(2)..].join(", ");
    assert!(
        got == want,
        "failed: {} ids ending {}",
        got.len(),
        tail(&got)
    );
    assert_eq!(r["processed"], processed, "succeeded: {}", r["succeeded"]);
    assert_eq!(r["failed_count"], want.len());
    assert_eq!(r["success"], false);
}

/// The ids `first`, the unknown ids, then `second`: the two fall in different chunks.
fn across_chunks(first: &str, second: &str) -> Vec<String> {
    let mut ids = vec![first.to_string()];
    ids.extend(chunk_of_unknown_ids());
    ids.push(second.to_string());
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_rules_hold_between_the_chunks_of_one_batch() {
    let t = TestServer::start().await;
    let ds = s(&t.owner.create_dataset("chunks").await, "id");
    let upload = |folder: &'static str, name: &'static str, seed: u8| {
        let (c, ds) = (&t.owner, ds.clone());
        async move { s(&c.upload_png(&ds, folder, name, seed).await, "id") }
    };
    let body = |ids: Vec<String>, extra: Value| {
        let mut b = json!({"dataset_name": "chunks", "image_ids": ids});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    // One request of `op` (batch/images/{op}) naming `first` and `second` in two chunks.
    let across = |op: &'static str, first: &str, second: &str, extra: Value| {
        let body = body(across_chunks(first, second), extra);
        let c = &t.owner;
        async move {
            let path = format!("batch/images/{op}");
            let sent = if op == "update" {
                c.patch(&path, &body).await
            } else {
                c.batch(op, &body).await
            };
            sent.ok_json(200)
        }
    };

    // Move: the second image of a name, in the next chunk, finds it taken by the first.
    let xa = upload("/x", "a.png", 1).await;
    let ya = upload("/y", "a.png", 2).await;
    let r = across("move", &xa, &ya, json!({"target_folder_path": "/dst"})).await;
    check_chunked(&r, 1, &[&ya]);
    let last = r["failed"].as_array().unwrap().last().unwrap().clone();
    assert!(s(&last, "reason").contains("already exists"), "{last}");
    assert_eq!(s(&t.owner.image(&xa).await, "virtual_folder_path"), "/dst");
    assert_eq!(s(&t.owner.image(&ya).await, "virtual_folder_path"), "/y");

    // Copy with renames: the second copy of a name is numbered past the first.
    let r = across("copy", &xa, &ya, json!({"target_folder_path": "/c"})).await;
    check_chunked(&r, 2, &[]);
    assert_eq!(r["renamed"], 1);
    let paths = by_path(&t.owner, "chunks").await;
    assert!(paths.contains_key("/c/a.png") && paths.contains_key("/c/a-2.png"));

    // Copy skipping taken names: the second is skipped.
    let r = across(
        "copy",
        &xa,
        &ya,
        json!({"target_folder_path": "/s", "duplicate_handling": "skip"}),
    )
    .await;
    check_chunked(&r, 1, &[&ya]);

    // Copy overwriting: an image of the target folder that the batch copies in a later chunk
    // is one of its sources, so it is never replaced; the copies are renamed instead.
    let xb = upload("/x", "b.png", 3).await;
    let ob = upload("/o", "b.png", 4).await;
    let r = across(
        "copy",
        &xb,
        &ob,
        json!({"target_folder_path": "/o", "duplicate_handling": "overwrite"}),
    )
    .await;
    check_chunked(&r, 2, &[]);
    assert_eq!(r["renamed"], 2);
    assert_eq!(s(&t.owner.image(&ob).await, "filename"), "b.png");
    let paths = by_path(&t.owner, "chunks").await;
    for name in ["/o/b.png", "/o/b-2.png", "/o/b-3.png"] {
        assert!(paths.contains_key(name), "{name} missing");
    }

    // Restore: of two archived images of one name, the one in the later chunk stays archived.
    let r1 = upload("/r", "a.png", 5).await;
    let archive = |id: &str| body(vec![id.to_string()], json!({}));
    t.owner.batch("delete", &archive(&r1)).await.ok_json(200);
    let r2 = upload("/r", "a.png", 6).await;
    t.owner.batch("delete", &archive(&r2)).await.ok_json(200);
    let r = across(
        "update",
        &r1,
        &r2,
        json!({"updates": {"is_archived": false}}),
    )
    .await;
    check_chunked(&r, 1, &[&r2]);
    let last = r["failed"].as_array().unwrap().last().unwrap().clone();
    assert!(s(&last, "reason").contains("cannot restore"), "{last}");
    assert_eq!(t.owner.image(&r1).await["is_archived"], false);
    assert_eq!(t.owner.image(&r2).await["is_archived"], true);
    t.stop().await;
}
