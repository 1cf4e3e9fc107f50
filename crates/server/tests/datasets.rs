//! Datasets and projects: create, list, get, update, delete, and the counters they carry.

mod common;

use common::*;
use futures::StreamExt;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_answers_201_with_a_project_and_defaults() {
    let t = TestServer::start().await;
    let r = t
        .member
        .post("projects/", &json!({"name": "road-signs"}))
        .await;
    let body = r.ok_json(201);
    let p = &body["project"];
    assert_eq!(body["dataset"], *p);
    assert_eq!(body["data"], *p);
    assert!(uuid::Uuid::parse_str(&s(p, "id")).is_ok());
    assert_eq!(p["name"], "road-signs");
    assert!(!s(p, "organization_id").is_empty());
    assert_eq!(p["annotation_types"], json!(["bbox"]));
    assert_eq!(p["classes"], json!([]));
    assert_eq!(p["description"], Value::Null);
    for k in [
        "image_count",
        "completed_image_count",
        "archived_images",
        "total_size",
    ] {
        assert_eq!(p[k], 0, "{k}");
    }
    assert!(chrono::DateTime::parse_from_rfc3339(&s(p, "created_at")).is_ok());

    let full = t
        .owner
        .create_dataset_with(&json!({
            "name": "full",
            "description": "d",
            "annotation_types": ["bbox", "polygon", "keypoint"],
            "classes": [{"name": "car", "type": "bbox"}, {"name": "sign", "color": "#00ff00"}],
        }))
        .await;
    assert_eq!(full["description"], "d");
    assert_eq!(
        full["annotation_types"],
        json!(["bbox", "polygon", "keypoint"])
    );
    let classes = full["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 2);
    assert_eq!(classes[0]["name"], "car");
    assert_eq!(classes[0]["type"], "bbox");
    let color = s(&classes[0], "color");
    assert!(
        color.starts_with('#') && color.len() == 7,
        "default color: {color}"
    );
    assert_eq!(classes[1]["color"], "#00ff00");
    assert_eq!(full["organization_id"], p["organization_id"]);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_rejects_duplicates_and_bad_fields() {
    let t = TestServer::start().await;
    let a = t.owner.create_dataset("dup").await;
    let detail = t
        .owner
        .post("projects/", &json!({"name": "dup"}))
        .await
        .error_detail(409, "conflict");
    assert!(detail.contains("already exists"), "{detail}");
    // Another organisation may use the name.
    let b = t.other.create_dataset("dup").await;
    assert_ne!(a["id"], b["id"]);
    assert_ne!(a["organization_id"], b["organization_id"]);

    let bad_type = t
        .owner
        .post(
            "projects/",
            &json!({"name": "x", "annotation_types": ["bbox", "circle"]}),
        )
        .await
        .field_errors();
    assert_eq!(bad_type[0]["loc"], json!(["body", "annotation_types"]));
    let long = "c".repeat(121);
    let errs = t
        .owner
        .post(
            "projects/",
            &json!({"name": "x", "classes": [{"name": long}]}),
        )
        .await
        .field_errors();
    assert_eq!(errs[0]["loc"], json!(["body", "classes"]));
    // 120 characters is fine.
    let ok = t
        .owner
        .create_dataset_with(&json!({"name": "x", "classes": [{"name": "é".repeat(120)}]}))
        .await;
    assert_eq!(ok["classes"][0]["name"], "é".repeat(120));
    t.owner
        .post("projects/", &json!({"name": "   "}))
        .await
        .field_errors();
    // A name no URL path can carry (a dot segment) is refused, on create and on rename.
    for name in [".", ".."] {
        let errors = t
            .owner
            .post("datasets/", &json!({"name": name}))
            .await
            .field_errors();
        assert!(
            errors[0]["msg"].to_string().contains(". or .."),
            "{errors:?}"
        );
        t.owner
            .patch("projects/x", &json!({"new_name": name}))
            .await
            .error(422, "validation_error");
    }
    t.owner
        .post("projects/", &json!({"description": "no name"}))
        .await
        .error(422, "validation_error");
    // Nothing half-created.
    let list = t.owner.get("datasets/").await.ok_json(200);
    let names: Vec<&str> = list["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dup", "x"]);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_with_limit_and_offset() {
    let t = TestServer::start().await;
    for i in 0..7 {
        t.owner.create_dataset(&format!("ds-{i}")).await;
    }
    t.other.create_dataset("not-mine").await;

    let names = |v: &Value| -> Vec<String> {
        v["datasets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| s(d, "name"))
            .collect()
    };
    // Both spellings answer directly, without a redirect.
    let slash = t.owner.get("datasets/").await.ok_json(200);
    let bare = t.owner.get("datasets").await.ok_json(200);
    assert_eq!(names(&slash), names(&bare));
    assert_eq!(names(&slash).len(), 7);
    assert_eq!(slash["total"], 7);
    assert_eq!(slash["data"], slash["datasets"]);

    // The 1.6.3 client sends limit without offset.
    let first = t.owner.get("datasets/?limit=3").await.ok_json(200);
    assert_eq!(names(&first), ["ds-0", "ds-1", "ds-2"]);
    assert_eq!(first["offset"], 0);
    assert_eq!(first["pagination"]["has_more"], true);
    let page = t.owner.get("datasets/?offset=3&limit=3").await.ok_json(200);
    assert_eq!(names(&page), ["ds-3", "ds-4", "ds-5"]);
    let last = t.owner.get("datasets/?offset=6&limit=3").await.ok_json(200);
    assert_eq!(names(&last), ["ds-6"]);
    assert_eq!(last["pagination"]["has_more"], false);
    let past = t.owner.get("datasets/?offset=7&limit=3").await.ok_json(200);
    assert_eq!(names(&past), Vec::<String>::new());
    t.owner.get("datasets/?limit=1000").await.expect(200);

    for q in [
        "limit=0",
        "limit=1001",
        "limit=-1",
        "offset=-1",
        "limit=abc",
    ] {
        t.owner
            .get(&format!("datasets/?{q}"))
            .await
            .error(422, "validation_error");
    }
    // The projects list pages the same rows.
    let projects = t.owner.get("projects/?limit=2&offset=1").await.ok_json(200);
    let p: Vec<String> = projects["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| s(d, "name"))
        .collect();
    assert_eq!(p, ["ds-1", "ds-2"]);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_by_name_decodes_each_segment() {
    let t = TestServer::start().await;
    let names = ["my ds", "a/b", "réseau routier", "what?#", "100%", "plain"];
    for n in names {
        t.owner.create_dataset(n).await;
    }
    for n in names {
        let d = t
            .owner
            .get(&format!("datasets/by-name/{}", enc(n)))
            .await
            .ok_json(200);
        assert_eq!(d["dataset"]["name"], n, "{n}");
        assert!(d["dataset"].get("images").is_none_or(Value::is_null));
        let p = t
            .owner
            .get(&format!("projects/{}", enc(n)))
            .await
            .ok_json(200);
        assert_eq!(p["project"]["name"], n);
        // The newer client's `datasets/{name}` form.
        let r = t
            .owner
            .get(&format!("datasets/{}", enc(n)))
            .await
            .ok_json(200);
        assert_eq!(r["dataset"]["name"], n);
    }
    // Lookups are case-sensitive.
    t.owner
        .get("datasets/by-name/PLAIN")
        .await
        .error(404, "not_found");
    t.owner
        .get("datasets/by-name/a")
        .await
        .error(404, "not_found");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_by_id_and_embedded_images_page() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("paged").await;
    let id = s(&ds, "id");
    let mut uploaded = Vec::new();
    for i in 0..5u8 {
        let img = t
            .owner
            .upload_png(&id, "/", &format!("img-{i}.png"), i)
            .await;
        uploaded.push(s(&img, "id"));
    }

    let by_id = t.owner.get(&format!("datasets/{id}")).await.ok_json(200);
    assert_eq!(by_id["dataset"]["name"], "paged");
    assert_eq!(by_id["dataset"]["image_count"], 5);
    t.owner
        .get(&format!("datasets/{}", uuid::Uuid::new_v4()))
        .await
        .error(404, "not_found");

    let page = |q: &str| {
        let c = t.owner.clone();
        let q = q.to_string();
        async move {
            let d = c
                .get(&format!("datasets/by-name/paged?include_images=true&{q}"))
                .await
                .ok_json(200);
            ids(d["dataset"]["images"].as_array().expect("images"))
        }
    };
    assert_eq!(page("images_limit=1000&images_offset=0").await, uploaded);
    assert_eq!(page("images_limit=2").await, uploaded[0..2]);
    assert_eq!(page("images_limit=2&images_offset=2").await, uploaded[2..4]);
    assert_eq!(page("images_limit=2&images_offset=4").await, uploaded[4..]);
    assert_eq!(
        page("images_limit=10000&images_offset=5").await,
        Vec::<String>::new()
    );
    // The same embedding by id.
    let d = t
        .owner
        .get(&format!(
            "datasets/{id}?include_images=true&images_limit=1&images_offset=3"
        ))
        .await
        .ok_json(200);
    assert_eq!(
        ids(d["dataset"]["images"].as_array().unwrap()),
        uploaded[3..4]
    );

    let first = &d["dataset"]["images"][0];
    for k in ["id", "filename", "status", "created_at", "image_url"] {
        assert!(first[k].is_string(), "{k} in {first}");
    }
    assert_eq!(first["width"], 8);
    assert_eq!(first["height"], 6);

    for q in ["images_limit=10001", "images_limit=0", "images_offset=-1"] {
        t.owner
            .get(&format!("datasets/by-name/paged?include_images=true&{q}"))
            .await
            .error(422, "validation_error");
    }
    // Archived images are not embedded.
    t.owner
        .delete(&format!("images/{}", uploaded[0]))
        .await
        .expect(200);
    assert_eq!(page("images_limit=10").await, uploaded[1..]);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_renames_describes_and_replaces_classes() {
    let t = TestServer::start().await;
    let created = t
        .owner
        .create_dataset_with(&json!({"name": "v1", "classes": [{"name": "car"}, {"name": "bus"}]}))
        .await;
    t.owner.create_dataset("taken").await;

    // 1.6.3 renames with `name`.
    let p = t
        .member
        .patch("projects/v1", &json!({"name": "v2", "description": "u"}))
        .await
        .ok_json(200)["project"]
        .clone();
    assert_eq!(p["name"], "v2");
    assert_eq!(p["description"], "u");
    assert_eq!(p["id"], created["id"]);
    t.owner.get("projects/v1").await.error(404, "not_found");
    // Newer clients rename with `new_name`.
    let p = t
        .owner
        .patch("projects/v2", &json!({"new_name": "v3"}))
        .await
        .ok_json(200)["project"]
        .clone();
    assert_eq!(p["name"], "v3");
    assert_eq!(p["description"], "u", "untouched fields are kept");
    assert_eq!(p["classes"].as_array().unwrap().len(), 2);

    let detail = t
        .owner
        .patch("projects/v3", &json!({"name": "taken"}))
        .await
        .error_detail(409, "conflict");
    assert!(detail.contains("already exists"), "{detail}");
    assert_eq!(t.owner.dataset("v3").await["name"], "v3");

    // Classes replace the whole list.
    let p = t
        .owner
        .patch(
            "projects/v3",
            &json!({"classes": [{"name": "truck", "type": "bbox"}]}),
        )
        .await
        .ok_json(200)["project"]
        .clone();
    let names: Vec<String> = p["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| s(c, "name"))
        .collect();
    assert_eq!(names, ["truck"]);
    assert!(p["classes"][0]["color"].is_string());
    // Description null clears it.
    let p = t
        .owner
        .patch("projects/v3", &json!({"description": null}))
        .await
        .ok_json(200)["project"]
        .clone();
    assert_eq!(p["description"], Value::Null);
    assert_eq!(t.owner.dataset("v3").await["classes"][0]["name"], "truck");

    t.owner
        .patch("projects/nope", &json!({"description": "x"}))
        .await
        .error(404, "not_found");
    t.owner
        .patch(
            "projects/v3",
            &json!({"classes": [{"name": "x".repeat(121)}]}),
        )
        .await
        .error(422, "validation_error");
    t.owner
        .patch("projects/v3", &json!({"annotation_types": ["hexagon"]}))
        .await
        .error(422, "validation_error");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_needs_admin_and_frees_unshared_bytes() {
    let t = TestServer::start().await;
    let doomed = t.owner.create_dataset("doomed").await;
    let keeper = t.owner.create_dataset("keeper").await;
    let shared = png_seeded(10, 10, 42);
    let own = png_seeded(10, 10, 43);
    let a = t
        .owner
        .upload(&s(&doomed, "id"), "/", "shared.png", &shared, "image/png")
        .await;
    t.owner
        .upload(&s(&doomed, "id"), "/sub", "own.png", &own, "image/png")
        .await;
    let archived = t
        .owner
        .upload_png(&s(&doomed, "id"), "/", "old.png", 7)
        .await;
    t.owner
        .delete(&format!("images/{}", s(&archived, "id")))
        .await
        .expect(200);
    t.owner
        .upload(
            &s(&keeper, "id"),
            "/",
            "shared-too.png",
            &shared,
            "image/png",
        )
        .await;

    t.member
        .delete("projects/doomed")
        .await
        .error(403, "forbidden");
    assert_eq!(t.owner.counts("doomed").await.images, 2);
    t.admin
        .delete("projects/nope")
        .await
        .error(404, "not_found");

    let body = t.admin.delete("projects/doomed").await.ok_json(200);
    let deleted = &body["deleted"];
    assert_eq!(body["data"], *deleted);
    assert_eq!(deleted["id"], doomed["id"]);
    assert_eq!(deleted["name"], "doomed");
    assert_eq!(deleted["images_deleted"], 3);
    assert_eq!(deleted["folders_deleted"], 2);

    t.owner
        .get("datasets/by-name/doomed")
        .await
        .error(404, "not_found");
    t.owner
        .get(&format!("datasets/{}", s(&doomed, "id")))
        .await
        .error(404, "not_found");
    t.owner
        .get(&format!("images/{}/metadata", s(&a, "id")))
        .await
        .error(404, "not_found");
    t.admin
        .delete("projects/doomed")
        .await
        .error(404, "not_found");

    assert!(
        !t.blob_stored(&sha256_hex(&own)),
        "unshared bytes are freed"
    );
    assert!(
        !t.blob_stored(&sha256_hex(&png_seeded(8, 6, 7))),
        "archived image bytes are freed"
    );
    assert!(
        t.blob_stored(&sha256_hex(&shared)),
        "bytes another dataset uses are kept"
    );
    // The other dataset is intact, and its bytes still served.
    let k = t.owner.counts("keeper").await;
    assert_eq!((k.images, k.total_size), (1, shared.len() as i64));
    let img = &t.owner.images("keeper").await[0];
    let got = t
        .owner
        .get(&format!("images/{}", s(img, "id")))
        .await
        .expect(200);
    assert_eq!(got.bytes, shared);

    // The name is free again, and deleting the last user frees the shared bytes.
    t.owner.create_dataset("doomed").await;
    t.owner.delete("projects/keeper").await.expect(200);
    assert!(!t.blob_stored(&sha256_hex(&shared)));
    assert!(
        t.blob_files().is_empty(),
        "no bytes left: {:?}",
        t.blob_files()
    );
    t.stop().await;
}

/// Checks that a listing filtered by each status answers, as its total, the number of live
/// images of the dataset that have it: the kept counters against the rows.
async fn status_totals_agree(client: &Client, name: &str) {
    let live = client.images(name).await;
    let kept = client.dataset(name).await["status_counts"].clone();
    for status in ["new", "annotate", "review", "complete"] {
        let listed = client
            .get(&format!(
                "images/?dataset_name={name}&status={status}&limit=1"
            ))
            .await
            .ok_json(200);
        let rows = live.iter().filter(|i| i["status"] == status).count();
        assert_eq!(listed["total"], rows, "{status} images of {name}");
        assert_eq!(kept[status], rows, "status_counts.{status} of {name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_follow_every_change() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("counted").await;
    let id = s(&ds, "id");
    let c = |images, completed, archived, total_size, annotations| Counts {
        images,
        completed,
        archived,
        total_size,
        annotations,
    };
    let a = t.owner.upload_png(&id, "/", "a.png", 1).await;
    let b = t.owner.upload_png(&id, "/", "b.png", 2).await;
    let big = png_seeded(30, 20, 3);
    let cimg = t.owner.upload(&id, "/x", "c.png", &big, "image/png").await;
    let (sa, sb, sc) = (
        a["file_size"].as_i64().unwrap(),
        b["file_size"].as_i64().unwrap(),
        big.len() as i64,
    );
    assert_eq!(cimg["file_size"], sc);
    assert_eq!(t.owner.counts("counted").await, c(3, 0, 0, sa + sb + sc, 0));
    status_totals_agree(&t.owner, "counted").await;
    // The list and the by-id answers carry the same numbers.
    let listed = t.owner.get("datasets/").await.ok_json(200)["datasets"][0].clone();
    assert_eq!(listed["image_count"], 3);
    assert_eq!(listed["total_size"], sa + sb + sc);

    // Annotations count on live images.
    let two = json!({"annotations": [
        {"id": "1", "name": "car", "type": "bbox", "bounding_box": {"x": 0, "y": 0, "w": 1, "h": 1}},
        {"id": "2", "name": "car", "type": "keypoint", "keypoint": {"x": 0, "y": 0}}
    ]});
    t.owner
        .post(&format!("annotations/{}", s(&a, "id")), &two)
        .await
        .expect(200);
    assert_eq!(t.owner.counts("counted").await, c(3, 0, 0, sa + sb + sc, 2));
    status_totals_agree(&t.owner, "counted").await;

    // Status changes.
    t.owner
        .patch(
            "batch/images/update",
            &json!({"dataset_name": "counted", "image_ids": [s(&a, "id"), s(&b, "id")],
                    "updates": {"status": "complete"}}),
        )
        .await
        .expect(200);
    assert_eq!(t.owner.counts("counted").await, c(3, 2, 0, sa + sb + sc, 2));
    status_totals_agree(&t.owner, "counted").await;
    // Only a live image's change to or from 'complete' moves the completed count.
    let set_status = |id: &Value, status: &str| json!({"dataset_name": "counted", "image_ids": [s(id, "id")], "updates": {"status": status}});
    for (status, completed) in [
        ("review", 1),
        ("annotate", 1),
        ("complete", 2),
        ("complete", 2),
    ] {
        t.owner
            .patch("batch/images/update", &set_status(&b, status))
            .await
            .expect(200);
        assert_eq!(
            t.owner.counts("counted").await,
            c(3, completed, 0, sa + sb + sc, 2),
            "after setting {status}"
        );
        status_totals_agree(&t.owner, "counted").await;
    }

    // Archive moves an image out of every live counter.
    t.owner
        .delete(&format!("images/{}", s(&a, "id")))
        .await
        .expect(200);
    assert_eq!(t.owner.counts("counted").await, c(2, 1, 1, sb + sc, 0));
    status_totals_agree(&t.owner, "counted").await;
    // Archiving twice changes nothing.
    t.owner
        .delete(&format!("images/{}", s(&a, "id")))
        .await
        .expect(200);
    assert_eq!(t.owner.counts("counted").await, c(2, 1, 1, sb + sc, 0));
    status_totals_agree(&t.owner, "counted").await;
    // An archived image's status counts nowhere.
    for status in ["new", "complete"] {
        t.owner
            .patch("batch/images/update", &set_status(&a, status))
            .await
            .expect(200);
        assert_eq!(t.owner.counts("counted").await, c(2, 1, 1, sb + sc, 0));
        status_totals_agree(&t.owner, "counted").await;
    }

    // Restore brings it back.
    t.owner
        .patch(
            "batch/images/update",
            &json!({"dataset_name": "counted", "image_ids": [s(&a, "id")], "updates": {"is_archived": false}}),
        )
        .await
        .expect(200);
    assert_eq!(t.owner.counts("counted").await, c(3, 2, 0, sa + sb + sc, 2));
    status_totals_agree(&t.owner, "counted").await;

    // A status change in the same batch as an archive or a restore, over live and archived
    // images at once, counts each image once, under its new status.
    let all = [&a, &b, &cimg].map(|i| s(i, "id"));
    let change = |ids: &[String], updates: Value| json!({"dataset_name": "counted", "image_ids": ids, "updates": updates});
    t.owner
        .delete(&format!("images/{}", s(&a, "id")))
        .await
        .expect(200);
    for (ids, updates, counts) in [
        (
            &all[..],
            json!({"status": "review", "is_archived": false}),
            c(3, 0, 0, sa + sb + sc, 2),
        ),
        (
            &all[..2],
            json!({"status": "annotate", "is_archived": true}),
            c(1, 0, 2, sc, 0),
        ),
        (
            &all[..],
            json!({"status": "complete", "is_archived": false}),
            c(3, 3, 0, sa + sb + sc, 2),
        ),
        (
            &all[2..],
            json!({"status": "new"}),
            c(3, 2, 0, sa + sb + sc, 2),
        ),
    ] {
        t.owner
            .patch("batch/images/update", &change(ids, updates.clone()))
            .await
            .expect(200);
        assert_eq!(t.owner.counts("counted").await, counts, "after {updates}");
        status_totals_agree(&t.owner, "counted").await;
    }

    // Batch archives by either route, over live and archived images at once, and one
    // restore of them all.
    let archive =
        |ids: &[String]| json!({"dataset_name": "counted", "image_ids": ids, "permanent": false});
    t.owner
        .batch("delete", &archive(&all[..2]))
        .await
        .expect(200);
    assert_eq!(t.owner.counts("counted").await, c(1, 0, 2, sc, 0));
    status_totals_agree(&t.owner, "counted").await;
    t.owner
        .patch(
            "batch/images/update",
            &change(&all[..], json!({"is_archived": true})),
        )
        .await
        .expect(200);
    assert_eq!(t.owner.counts("counted").await, c(0, 0, 3, 0, 0));
    status_totals_agree(&t.owner, "counted").await;
    t.owner
        .patch(
            "batch/images/update",
            &change(&all[..], json!({"is_archived": false})),
        )
        .await
        .expect(200);
    assert_eq!(t.owner.counts("counted").await, c(3, 2, 0, sa + sb + sc, 2));
    status_totals_agree(&t.owner, "counted").await;

    // Copies count (with their annotations and status when copied). The last one, over an
    // image of the same name, counts the replaced image out: the complete, annotated first
    // copy gives way to a new one without annotations.
    for (mode, annotations, counts) in [
        ("rename", true, c(4, 3, 0, 2 * sa + sb + sc, 4)),
        ("rename", false, c(5, 3, 0, 3 * sa + sb + sc, 4)),
        ("overwrite", false, c(5, 2, 0, 3 * sa + sb + sc, 2)),
    ] {
        t.owner
            .batch(
                "copy",
                &json!({"dataset_name": "counted", "image_ids": [s(&a, "id")], "target_folder_path": "/copies",
                        "duplicate_handling": mode, "copy_annotations": annotations}),
            )
            .await
            .expect(200);
        assert_eq!(
            t.owner.counts("counted").await,
            counts,
            "after a copy ({mode}, annotations {annotations})"
        );
        status_totals_agree(&t.owner, "counted").await;
    }

    // Permanent delete of a live image and of an archived one.
    t.owner
        .delete(&format!("images/{}?permanent=true", s(&cimg, "id")))
        .await
        .expect(200);
    assert_eq!(t.owner.counts("counted").await, c(4, 2, 0, 3 * sa + sb, 2));
    status_totals_agree(&t.owner, "counted").await;
    t.owner
        .delete(&format!("images/{}", s(&b, "id")))
        .await
        .expect(200);
    assert_eq!(t.owner.counts("counted").await, c(3, 1, 1, 3 * sa, 2));
    status_totals_agree(&t.owner, "counted").await;
    t.owner
        .batch(
            "delete",
            &json!({"dataset_name": "counted", "image_ids": [s(&b, "id")], "permanent": true}),
        )
        .await
        .expect(200);
    assert_eq!(t.owner.counts("counted").await, c(3, 1, 0, 3 * sa, 2));
    status_totals_agree(&t.owner, "counted").await;

    // Clearing annotations.
    t.owner
        .delete(&format!("annotations/{}", s(&a, "id")))
        .await
        .expect(200);
    assert_eq!(t.owner.counts("counted").await, c(3, 1, 0, 3 * sa, 0));
    status_totals_agree(&t.owner, "counted").await;

    // Deleting another dataset leaves these counters alone.
    let other = t.owner.create_dataset("other").await;
    t.owner.upload_png(&s(&other, "id"), "/", "a.png", 1).await;
    t.owner.delete("projects/other").await.expect(200);
    assert_eq!(t.owner.counts("counted").await, c(3, 1, 0, 3 * sa, 0));
    status_totals_agree(&t.owner, "counted").await;

    // The counters agree with the images actually listed.
    let live = t.owner.images("counted").await;
    assert_eq!(live.len(), 3);
    let size: i64 = live.iter().map(|i| i["file_size"].as_i64().unwrap()).sum();
    let annotations: i64 = live
        .iter()
        .map(|i| i["annotation_count"].as_i64().unwrap())
        .sum();
    let complete = live.iter().filter(|i| i["status"] == "complete").count() as i64;
    assert_eq!(
        c(live.len() as i64, complete, 0, size, annotations),
        t.owner.counts("counted").await
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_dataset_frees_bytes_many_transactions_wide() {
    // More distinct images than one freeing transaction takes (500).
    let t = TestServer::start_with(|c| c.blob_grace_secs = 0).await;
    let ds = t.owner.create_dataset("wide").await;
    let id = s(&ds, "id");
    let n = 620;
    futures::stream::iter(0..n)
        .for_each_concurrent(8, |i| {
            let (owner, id) = (&t.owner, &id);
            async move {
                let bytes = png_seeded(4 + i % 40, 4 + i / 40, (i % 251) as u8);
                owner
                    .upload(id, "/", &format!("{i}.png"), &bytes, "image/png")
                    .await;
            }
        })
        .await;
    assert_eq!(t.blob_files().len(), n as usize);
    let body = t.owner.delete("projects/wide").await.ok_json(200);
    assert_eq!(body["deleted"]["images_deleted"], n);
    assert_eq!(body["deleted"]["blobs_deleted"], n);
    assert_eq!(body["deleted"]["blobs_freed_after_grace"], 0);
    assert!(t.blob_files().is_empty(), "{:?}", t.blob_files().len());
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_within_the_grace_period_reports_the_bytes_the_sweep_frees_later() {
    use pictograph_server::services::maintenance::{self, SweepOptions};
    // The default grace period: bytes uploaded minutes ago are not freed at once.
    let t = TestServer::start_with(|c| c.blob_grace_secs = 900).await;
    let doomed = s(&t.owner.create_dataset("recent").await, "id");
    let keeper = s(&t.owner.create_dataset("keeper").await, "id");
    let shared = png_seeded(9, 9, 1);
    t.owner
        .upload(&doomed, "/", "shared.png", &shared, "image/png")
        .await;
    t.owner
        .upload(&keeper, "/", "shared.png", &shared, "image/png")
        .await;
    for i in 2..5u8 {
        let own = png_seeded(9, 9, i);
        t.owner
            .upload(&doomed, "/", &format!("{i}.png"), &own, "image/png")
            .await;
        // The same bytes twice in the dataset are one stored file.
        t.owner
            .upload(&doomed, "/again", &format!("{i}.png"), &own, "image/png")
            .await;
    }
    let body = t.owner.delete("projects/recent").await.ok_json(200);
    let deleted = &body["deleted"];
    assert_eq!(deleted["images_deleted"], 7, "{body}");
    assert_eq!(deleted["blobs_deleted"], 0, "{body}");
    assert_eq!(deleted["gcs_blobs_deleted"], 0, "{body}");
    assert_eq!(deleted["blobs_freed_after_grace"], 3, "{body}");
    assert_eq!(t.blob_files().len(), 4);
    // Once the grace period has passed, the sweep frees exactly those.
    let state = &t.app().state;
    let passed = SweepOptions {
        blob_grace: std::time::Duration::ZERO,
        ..SweepOptions::for_state(state)
    };
    let report = maintenance::sweep_with(state, &passed).await.unwrap();
    assert_eq!(report.orphan_blobs.len(), 3, "{report:?}");
    assert_eq!(t.blob_files().len(), 1);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_a_stopped_server_left_is_hidden_then_finished_by_the_sweep() {
    use pictograph_server::services::maintenance::{self, SweepOptions};
    let t = TestServer::start_with(|c| c.blob_grace_secs = 0).await;
    let state = &t.app().state;
    let doomed = t.owner.create_dataset("doomed").await;
    let keeper = t.owner.create_dataset("keeper").await;
    let id = s(&doomed, "id");
    let shared = png_seeded(9, 9, 1);
    let own: Vec<Vec<u8>> = (2..7).map(|i| png_seeded(9, 9, i)).collect();
    let first = t
        .owner
        .upload(&id, "/", "shared.png", &shared, "image/png")
        .await;
    for (i, bytes) in own.iter().enumerate() {
        t.owner
            .upload(&id, "/own", &format!("{i}.png"), bytes, "image/png")
            .await;
    }
    let kept = t
        .owner
        .upload(&s(&keeper, "id"), "/", "s.png", &shared, "image/png")
        .await;
    let link = s(&first, "image_url");
    t.anon.get(&link).await.expect(200);

    // Images of a dataset that is not hidden are never reaped.
    assert!(state.store.reap_images(&id, 100).await.unwrap().is_empty());
    assert_eq!(t.owner.counts("doomed").await.images, 6);

    // A server hides the dataset, then stops before deleting its images.
    let org = state
        .store
        .key_by_hash(&pictograph_server::auth::hash_key(
            t.owner.key.as_deref().unwrap(),
        ))
        .await
        .unwrap()
        .unwrap()
        .org_id;
    assert!(state.store.hide_dataset(&org, &id).await.unwrap().is_some());
    assert!(
        state.store.hide_dataset(&org, &id).await.unwrap().is_none(),
        "a hidden dataset is not the organisation's any more"
    );

    // Gone for every key and link at once, and its name free; its bytes still stored.
    t.owner
        .get("datasets/by-name/doomed")
        .await
        .error(404, "not_found");
    t.owner
        .get(&format!("datasets/{id}"))
        .await
        .error(404, "not_found");
    t.owner
        .get(&format!("images/{}/metadata", s(&first, "id")))
        .await
        .error(404, "not_found");
    t.anon.get(&link).await.expect(404);
    let listed = t.owner.get("projects/?limit=50").await.ok_json(200);
    let names: Vec<&str> = listed["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["keeper"]);
    t.owner.create_dataset("doomed").await;
    assert!(own.iter().all(|b| t.blob_stored(&sha256_hex(b))));

    // The sweep leaves a deletion that is still moving, and finishes a stalled one.
    let report = maintenance::sweep(state).await.unwrap();
    assert!(report.finished_deletions.is_empty(), "{report:?}");
    assert!(own.iter().all(|b| t.blob_stored(&sha256_hex(b))));
    let opts = SweepOptions {
        deletion_stalled_after: std::time::Duration::ZERO,
        ..SweepOptions::for_state(state)
    };
    let report = maintenance::sweep_with(state, &opts).await.unwrap();
    assert_eq!(report.finished_deletions, vec![id.clone()]);
    assert!(own.iter().all(|b| !t.blob_stored(&sha256_hex(b))));
    assert!(
        t.blob_stored(&sha256_hex(&shared)),
        "another dataset's bytes are kept"
    );
    assert_eq!(state.store.count_folders(&id).await.unwrap(), 0);
    let got = t
        .owner
        .get(&format!("images/{}", s(&kept, "id")))
        .await
        .expect(200);
    assert_eq!(got.bytes, shared);
    let report = maintenance::sweep_with(state, &opts).await.unwrap();
    assert!(report.finished_deletions.is_empty(), "{report:?}");
    t.stop().await;
}
