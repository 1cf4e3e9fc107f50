//! The routes and shapes pictograph 1.69 uses: datasets addressed by name or id with create,
//! update and delete; JSON register matched by (dataset, directory, filename); bulk upload;
//! per-image routes by dataset and path; annotations by path with the 1.69 extensions, shaped
//! by the caller's User-Agent.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const UA_169: &str = "pictograph-python/1.69.146";
const UA_163: &str = "pictograph-python/1.6.3";

async fn get_ua(c: &Client, path: &str, ua: &str) -> Resp {
    Client::send(c.request(Method::GET, path).header("User-Agent", ua)).await
}

async fn post_ua(c: &Client, path: &str, body: &Value, ua: &str) -> Resp {
    Client::send(
        c.request(Method::POST, path)
            .header("User-Agent", ua)
            .json(body),
    )
    .await
}

/// upload-url → PUT → JSON register without a storage path, as 1.69 does; returns `data`.
async fn upload_169(c: &Client, dataset: &str, folder: &str, filename: &str, seed: u8) -> Value {
    let bytes = png_seeded(8, 6, seed);
    let signed = c
        .post(
            "images/upload-url",
            &json!({"dataset": dataset, "filename": filename, "directory_path": folder,
                    "content_type": "image/png"}),
        )
        .await
        .ok_json(200);
    let url = s(&signed["data"], "upload_url");
    c.put_bytes(&url, &bytes, "image/png").await.expect(200);
    let reg = c
        .post(
            "images/register",
            &json!({"dataset": dataset, "filename": filename, "directory_path": folder,
                    "file_size": bytes.len(), "content_type": "image/png",
                    "width": null, "height": null}),
        )
        .await
        .ok_json(201);
    assert_eq!(reg["image_id"], reg["data"]["id"]);
    reg["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_by_name_or_id_create_update_delete() {
    let t = TestServer::start().await;
    let created = t
        .member
        .post(
            "datasets/",
            &json!({"name": "road signs/eu", "readme": "card", "classes": [{"name": "car"}]}),
        )
        .await
        .ok_json(201);
    let d = &created["data"];
    assert_eq!(created["dataset"], *d);
    assert_eq!(d["description"], "card");
    assert_eq!(d["annotation_types"], json!(["bbox"]));
    assert_eq!(d["archived_image_count"], 0);
    let id = s(d, "id");
    t.owner
        .post("datasets/", &json!({"name": "road signs/eu"}))
        .await
        .error(409, "conflict");

    // GET by name (one %-encoded segment) or id.
    let by_name = t
        .owner
        .get(&format!("datasets/{}", enc("road signs/eu")))
        .await
        .ok_json(200);
    assert_eq!(by_name["data"]["id"], id);
    let by_id = t.owner.get(&format!("datasets/{id}")).await.ok_json(200);
    assert_eq!(by_id["data"]["name"], "road signs/eu");
    t.other
        .get(&format!("datasets/{id}"))
        .await
        .error(404, "not_found");

    // PATCH renames with new_name; classes_base merges with what is stored now.
    let renamed = t
        .member
        .patch(
            &format!("datasets/{}", enc("road signs/eu")),
            &json!({"new_name": "signs", "description": "d"}),
        )
        .await
        .ok_json(200);
    assert_eq!(renamed["data"]["name"], "signs");
    t.owner
        .patch(
            "datasets/signs",
            &json!({"classes": [{"name": "car"}, {"name": "tram"}]}),
        )
        .await
        .expect(200);
    let merged = t
        .owner
        .patch(
            &format!("datasets/{id}"),
            &json!({"classes": [{"name": "bike"}], "classes_base": [{"name": "car"}]}),
        )
        .await
        .ok_json(200);
    let names: Vec<&str> = merged["data"]["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tram", "bike"]);
    t.owner
        .patch("datasets/signs", &json!({"classes_base": []}))
        .await
        .error(422, "validation_error");
    t.owner
        .post("datasets/", &json!({"name": "other"}))
        .await
        .expect(201);
    t.owner
        .patch("datasets/signs", &json!({"new_name": "other"}))
        .await
        .error(409, "conflict");

    // archived=true lists nothing: this server has no archived datasets.
    let listed = t.owner.get("datasets/?limit=1&offset=0").await.ok_json(200);
    assert_eq!(listed["pagination"]["has_more"], true);
    assert_eq!(listed["data"], listed["datasets"]);
    let archived = t.owner.get("datasets/?archived=true").await.ok_json(200);
    assert_eq!(archived["data"], json!([]));

    // DELETE by name or id; admin+.
    t.member
        .delete("datasets/signs")
        .await
        .error(403, "forbidden");
    let deleted = t.admin.delete(&format!("datasets/{id}")).await.ok_json(200);
    assert_eq!(deleted["data"]["name"], "signs");
    assert_eq!(deleted["deleted"], deleted["data"]);
    t.owner.get("datasets/signs").await.error(404, "not_found");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_register_finds_the_pending_upload_by_directory_and_filename() {
    let t = TestServer::start().await;
    let d = t.owner.create_dataset("up").await;
    let id = s(&d, "id");
    let a = upload_169(&t.owner, "up", "/a", "same.png", 1).await;
    let b = upload_169(&t.owner, &id, "b/", "same.png", 2).await;
    assert_eq!(
        (a["directory_path"].clone(), b["directory_path"].clone()),
        (json!("/a"), json!("/b"))
    );
    assert_ne!(a["file_size"], Value::Null);
    assert_eq!(
        (b["width"].clone(), b["height"].clone()),
        (json!(8), json!(6))
    );
    assert_eq!(t.owner.counts("up").await.images, 2);

    // Nothing pending for that name: 404; the same name again: 409 at upload-url.
    t.owner
        .post(
            "images/register",
            &json!({"dataset": "up", "filename": "same.png", "directory_path": "/a"}),
        )
        .await
        .error(404, "not_found");
    t.owner
        .post(
            "images/upload-url",
            &json!({"dataset": "up", "filename": "same.png", "directory_path": "/a",
                    "content_type": "image/png"}),
        )
        .await
        .error(409, "conflict");
    t.other
        .post(
            "images/upload-url",
            &json!({"dataset": id, "filename": "x.png", "content_type": "image/png"}),
        )
        .await
        .error(404, "not_found");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_upload_url_and_bulk_register() {
    let t = TestServer::start().await;
    t.owner.create_dataset("bulk").await;
    upload_169(&t.owner, "bulk", "/in", "taken.png", 1).await;
    let files = [("new.png", 2u8), ("taken.png", 3u8)];
    let urls = t
        .owner
        .post(
            "images/bulk-upload-url",
            &json!({"dataset": "bulk", "images": files.iter().map(|(f, _)| json!(
                {"filename": f, "directory_path": "/in", "content_type": "image/png"})).collect::<Vec<_>>()}),
        )
        .await
        .ok_json(200);
    let entries = urls["data"]["upload_urls"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        (entries[0]["exists"].clone(), entries[1]["exists"].clone()),
        (json!(false), json!(true))
    );
    for (entry, (_, seed)) in entries.iter().zip(files) {
        t.owner
            .put_bytes(
                &s(entry, "upload_url"),
                &png_seeded(8, 6, seed),
                "image/png",
            )
            .await
            .expect(200);
    }
    let reg = t
        .owner
        .post(
            "images/bulk-register",
            &json!({"dataset": "bulk", "images": files.iter().map(|(f, _)| json!(
                {"filename": f, "directory_path": "/in", "content_type": "image/png",
                 "width": null, "height": null})).collect::<Vec<_>>()}),
        )
        .await
        .ok_json(200);
    let data = &reg["data"];
    assert_eq!(data["succeeded"].as_array().unwrap().len(), 1);
    assert_eq!(data["succeeded"][0]["filename"], "new.png");
    assert_eq!(data["failed"][0]["filename"], "taken.png");
    assert!(s(&data["failed"][0], "error").contains("already exists"));
    assert_eq!(t.owner.counts("bulk").await.images, 2);

    // The same name twice in one request (by upload id): the first is registered, the
    // second is a conflict, in the one transaction.
    let twice = json!({"dataset": "bulk", "images": [
        {"filename": "dup.png", "directory_path": "/d", "content_type": "image/png"},
        {"filename": "dup.png", "directory_path": "/d", "content_type": "image/png"}]});
    let urls = t
        .owner
        .post("images/bulk-upload-url", &twice)
        .await
        .ok_json(200);
    let entries = urls["upload_urls"].as_array().unwrap().clone();
    let mut regs = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        t.owner
            .put_bytes(
                &s(entry, "upload_url"),
                &png_seeded(5, 5, 10 + i as u8),
                "image/png",
            )
            .await
            .expect(200);
        regs.push(
            json!({"upload_id": s(entry, "upload_id"), "filename": "dup.png",
                         "directory_path": "/d"}),
        );
    }
    let reg = t
        .owner
        .post(
            "images/bulk-register",
            &json!({"dataset": "bulk", "images": regs}),
        )
        .await
        .ok_json(200);
    assert_eq!(reg["succeeded"].as_array().unwrap().len(), 1, "{reg}");
    assert_eq!(reg["failed"][0]["code"], "conflict");
    // The failure names the upload it was for.
    assert_eq!(reg["failed"][0]["upload_id"], regs[1]["upload_id"], "{reg}");
    assert_eq!(t.owner.counts("bulk").await.images, 3);
    t.owner
        .post(
            "images/bulk-upload-url",
            &json!({"dataset": "bulk", "images": []}),
        )
        .await
        .error(422, "validation_error");
    t.member
        .post(
            "images/bulk-register",
            &json!({"dataset": "nope", "images": [{"filename": "a.png"}]}),
        )
        .await
        .error(404, "not_found");
    t.stop().await;
}

/// A bulk register whose files complete in any order (several at once, each taking its bytes
/// in from the object store where they were PUT there) answers each file as one after the
/// other would: every registered image holds its own bytes, and the failures come in request
/// order: a file never PUT, and an upload named a second time (already registered by its
/// first mention).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bulk_register_answers_every_file_in_order_with_its_own_bytes() {
    let t = TestServer::start().await;
    t.owner.create_dataset("many").await;
    let names: Vec<String> = (0..24).map(|i| format!("f{i:02}.png")).collect();
    let urls = t
        .owner
        .post(
            "images/bulk-upload-url",
            &json!({"dataset": "many", "images": names.iter().map(|f| json!(
                {"filename": f, "directory_path": "/m", "content_type": "image/png"}))
                .collect::<Vec<_>>()}),
        )
        .await
        .ok_json(200);
    let entries = urls["upload_urls"].as_array().unwrap().clone();
    // Every file but f05 is PUT, each with bytes of its own.
    for (i, entry) in entries.iter().enumerate().filter(|(i, _)| *i != 5) {
        t.owner
            .put_bytes(
                &s(entry, "upload_url"),
                &png_seeded(6, 4, i as u8),
                "image/png",
            )
            .await
            .expect(200);
    }
    let mut regs: Vec<Value> = entries
        .iter()
        .zip(&names)
        .map(
            |(e, f)| json!({"upload_id": s(e, "upload_id"), "filename": f, "directory_path": "/m"}),
        )
        .collect();
    // f09 named again, after f10.
    regs.insert(11, regs[9].clone());
    let reg = t
        .owner
        .post(
            "images/bulk-register",
            &json!({"dataset": "many", "images": regs}),
        )
        .await
        .ok_json(200);
    let failed: Vec<(String, String)> = reg["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (s(f, "filename"), s(f, "code")))
        .collect();
    assert_eq!(
        failed,
        [
            ("f05.png".to_string(), "validation_error".to_string()),
            ("f09.png".to_string(), "not_found".to_string())
        ],
        "{reg}"
    );
    assert_eq!(reg["failed"][1]["upload_id"], regs[11]["upload_id"]);
    let succeeded = reg["succeeded"].as_array().unwrap();
    let registered: Vec<String> = succeeded.iter().map(|i| s(i, "filename")).collect();
    let expected: Vec<String> = names.iter().filter(|f| *f != "f05.png").cloned().collect();
    assert_eq!(registered, expected);
    for image in succeeded {
        let n: u8 = s(image, "filename")[1..3].parse().unwrap();
        let got = t
            .owner
            .get(&format!("images/{}", s(image, "id")))
            .await
            .expect(200);
        assert_eq!(got.bytes, png_seeded(6, 4, n), "{}", s(image, "filename"));
    }
    assert_eq!(t.owner.counts("many").await.images, 23);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_image_routes_by_dataset_and_path() {
    let t = TestServer::start().await;
    t.owner.create_dataset("a/b c").await;
    let ds = enc("a/b c");
    let nested = upload_169(&t.owner, "a/b c", "/cars/red", "n.png", 1).await;
    let root = upload_169(&t.owner, "a/b c", "/", "r.png", 2).await;
    let nid = s(&nested, "id");

    // bytes by path, by id; the metadata twin of both
    let by_path = t
        .owner
        .get(&format!("images/{ds}/cars/red/n.png"))
        .await
        .expect(200);
    assert_eq!(by_path.bytes, png_seeded(8, 6, 1));
    let by_id = t.owner.get(&format!("images/{nid}")).await.expect(200);
    assert_eq!(by_id.bytes, by_path.bytes);
    let meta = t
        .owner
        .get(&format!("images/{ds}/cars/red/n.png/metadata"))
        .await
        .ok_json(200);
    assert_eq!(meta["data"]["id"], nid);
    assert_eq!(meta["image"], meta["data"]);
    assert_eq!(t.owner.image(&nid).await["directory_path"], "/cars/red");
    for missing in [
        "images/{ds}/n.png",
        "images/{ds}/cars/n.png",
        "images/nope/r.png",
    ] {
        t.owner
            .get(&missing.replace("{ds}", &ds))
            .await
            .error(404, "not_found");
    }
    t.other
        .get(&format!("images/{ds}/r.png"))
        .await
        .error(404, "not_found");

    // delete by path: archive, then the same name again, then purge by path
    t.member
        .delete(&format!("images/{ds}/r.png"))
        .await
        .ok_json(200);
    assert_eq!(t.owner.counts("a/b c").await.archived, 1);
    let meta = t.owner.image(&s(&root, "id")).await;
    assert_eq!(meta["is_archived"], true);
    let again = upload_169(&t.owner, "a/b c", "/", "r.png", 3).await;
    let purged = t
        .owner
        .delete(&format!("images/{ds}/r.png?permanent=true"))
        .await
        .ok_json(200);
    assert_eq!(purged["image_id"], again["id"]);
    assert_eq!(purged["operation"], "deleted");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_listing_filters_and_newer_fields() {
    let t = TestServer::start().await;
    let d = t.owner.create_dataset("list").await;
    let id = s(&d, "id");
    upload_169(&t.owner, "list", "/", "a.png", 1).await;
    upload_169(&t.owner, "list", "/x", "a.png", 2).await;
    let low = upload_169(&t.owner, "list", "/x", "b.png", 3).await;
    t.owner
        .post(
            &format!("annotations/{}", s(&low, "id")),
            &json!({"annotations": [
                {"id": "1", "name": "car", "type": "bbox", "bounding_box": {"x": 0, "y": 0, "w": 1, "h": 1}, "confidence": 0.3},
                {"id": "2", "name": "car", "type": "bbox", "bounding_box": {"x": 0, "y": 0, "w": 1, "h": 1}}]}),
        )
        .await
        .expect(200);

    let page = |q: &str| format!("images/?dataset={id}&{q}");
    let by_name = get_ua(&t.owner, &page("filename=a.png"), UA_169)
        .await
        .ok_json(200);
    assert_eq!(by_name["pagination"]["total"], 2);
    let low_list = get_ua(&t.owner, &page("min_confidence_lt=0.5"), UA_169)
        .await
        .ok_json(200);
    assert_eq!(low_list["data"].as_array().unwrap().len(), 1);
    assert_eq!(low_list["data"][0]["min_confidence"], 0.3);
    assert_eq!(low_list["data"][0]["split"], Value::Null);
    let split = get_ua(&t.owner, &page("split=train"), UA_169)
        .await
        .ok_json(200);
    assert_eq!(split["data"], json!([]));
    t.owner
        .get(&page("split=holdout"))
        .await
        .error(422, "validation_error");
    // `after` names an image of the dataset with a split too.
    t.owner
        .get(&page("split=train&after=no-such-image"))
        .await
        .error(422, "validation_error");
    let after_low = format!("split=train&after={}", s(&low, "id"));
    assert_eq!(
        get_ua(&t.owner, &page(&after_low), UA_169)
            .await
            .ok_json(200)["data"],
        json!([])
    );
    let first = get_ua(&t.owner, &page("limit=2"), UA_169)
        .await
        .ok_json(200);
    assert_eq!(first["pagination"]["has_more"], true);

    // The newer clients' fields go to callers that read the full shape only.
    let full = get_ua(&t.owner, &format!("datasets/{id}"), UA_169)
        .await
        .ok_json(200);
    assert_eq!(full["data"]["storage_class"], "standard");
    assert_eq!(full["data"]["is_public"], false);
    let legacy = get_ua(&t.owner, &format!("datasets/{id}"), UA_163)
        .await
        .ok_json(200);
    assert!(legacy["data"].get("storage_class").is_none());
    assert!(t
        .owner
        .image(&s(&low, "id"))
        .await
        .get("min_confidence")
        .is_none());
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotations_by_path_with_extensions_shaped_by_user_agent() {
    let t = TestServer::start().await;
    t.owner.create_dataset("anns").await;
    let img = upload_169(&t.owner, "anns", "/cars", "a.png", 1).await;
    let id = s(&img, "id");
    let path = "annotations/anns/cars/a.png";
    let extended = json!([
        {"id": "o", "name": "car", "type": "bbox", "bounding_box": {"x": 0.0, "y": 0.0, "w": 4.0, "h": 2.0},
         "oriented_box": {"cx": 2.0, "cy": 1.0, "w": 4.0, "h": 2.0, "angle": 30.0},
         "confidence": 1.0, "attributes": {"occluded": true}},
        {"id": "k", "name": "nose", "type": "keypoint", "keypoint": {"x": 1.0, "y": 1.0},
         "confidence": 1.0, "attributes": [], "instance_id": 2}
    ]);
    // A caller that cannot read the extensions back may not write them.
    t.owner
        .post(path, &json!({"annotations": extended}))
        .await
        .error(422, "validation_error");
    post_ua(&t.owner, path, &json!({"annotations": extended}), UA_163)
        .await
        .error(422, "validation_error");
    // 1.69 may; a body image_id is ignored on the path route.
    let saved = post_ua(
        &t.owner,
        path,
        &json!({"image_id": "something-else", "annotations": extended}),
        UA_169,
    )
    .await
    .ok_json(200);
    assert_eq!(
        (saved["image_id"].clone(), saved["new_count"].clone()),
        (json!(id), json!(2))
    );

    let full = get_ua(&t.owner, path, UA_169).await.ok_json(200);
    assert_eq!(full["annotations"], extended);
    let by_id = get_ua(&t.owner, &format!("annotations/{id}"), "curl/8.5.0")
        .await
        .ok_json(200);
    assert_eq!(by_id["annotations"], extended);
    let legacy_expected = json!([
        {"id": "o", "name": "car", "type": "bbox", "bounding_box": {"x": 0.0, "y": 0.0, "w": 4.0, "h": 2.0},
         "confidence": 1.0, "attributes": [{"occluded": true}]},
        {"id": "k", "name": "nose", "type": "keypoint", "keypoint": {"x": 1.0, "y": 1.0},
         "confidence": 1.0, "attributes": []}
    ]);
    let legacy = get_ua(&t.owner, &format!("annotations/{id}"), UA_163)
        .await
        .ok_json(200);
    assert_eq!(legacy["annotations"], legacy_expected);
    let no_ua = t.owner.get(path).await.ok_json(200);
    assert_eq!(no_ua["annotations"], legacy_expected);

    // Bad extension values are 422 with a field list.
    let errors = post_ua(
        &t.owner,
        path,
        &json!({"annotations": [{"id": "k", "name": "nose", "type": "keypoint",
                "keypoint": {"x": 1, "y": 1}, "instance_id": 0}]}),
        UA_169,
    )
    .await
    .field_errors();
    assert_eq!(
        errors[0]["loc"],
        json!(["body", "annotations", 0, "instance_id"])
    );

    // Delete by path; unknown paths are 404.
    let deleted = t.member.delete(path).await.ok_json(200);
    assert_eq!(deleted["deleted_count"], 2);
    t.owner
        .get("annotations/anns/a.png")
        .await
        .error(404, "not_found");
    t.other.get(path).await.error(404, "not_found");
    t.stop().await;
}
