//! The dataset download listing and the unauthenticated fetch of its image URLs.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().expect("items").clone()
}

fn has(item: &Value, key: &str) -> bool {
    item[key].as_str().is_some_and(|s| !s.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_modes_filters_and_fetchable_urls() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("dl set").await;
    let id = s(&ds, "id");
    let mut bytes_by_id = HashMap::new();
    for (i, (folder, name)) in [
        ("/", "a.png"),
        ("/x", "b.png"),
        ("/y", "c.png"),
        ("/", "d.png"),
    ]
    .into_iter()
    .enumerate()
    {
        let bytes = png_seeded(8, 8, i as u8);
        let img = t.owner.upload(&id, folder, name, &bytes, "image/png").await;
        bytes_by_id.insert(s(&img, "id"), (name, bytes));
    }
    let ids_in_order: Vec<String> = ids(&t.owner.images("dl set").await);
    let (a, b, c, d) = (
        &ids_in_order[0],
        &ids_in_order[1],
        &ids_in_order[2],
        &ids_in_order[3],
    );
    t.owner
        .patch("batch/images/update", &json!({"dataset_name": "dl set", "image_ids": [b, c], "updates": {"status": "complete"}}))
        .await
        .expect(200);
    t.owner.delete(&format!("images/{d}")).await.expect(200);
    t.owner
        .post(
            &format!("annotations/{a}"),
            &json!({"annotations": [{"id": "k", "name": "n", "type": "keypoint", "keypoint": {"x": 1.0, "y": 2.0}}]}),
        )
        .await
        .expect(200);

    let full = t
        .member
        .get("datasets/by-name/dl%20set/download?mode=full&limit=10000")
        .await;
    // The listing is sent in pieces, with its whole length announced up front.
    assert_eq!(
        full.headers["content-length"].to_str().unwrap(),
        full.bytes.len().to_string()
    );
    let full = full.ok_json(200);
    assert_eq!(full["dataset_id"], id.as_str());
    assert_eq!(full["data"]["id"], id.as_str());
    assert_eq!(full["data"]["name"], "dl set");
    assert_eq!(full["data"]["items"], full["items"]);
    let list = items(&full);
    let listed: Vec<&str> = list.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(listed, [a.as_str(), b, c], "archived images are left out");
    for item in &list {
        assert!(
            has(item, "image_url") && has(item, "annotation_url"),
            "{item}"
        );
        let (name, bytes) = &bytes_by_id[&s(item, "id")];
        assert_eq!(item["filename"], *name);
        // Image URLs are absolute and need no key.
        let url = s(item, "image_url");
        assert!(url.starts_with("http://"), "{url}");
        let got = t.anon.get(&url).await.expect(200);
        assert_eq!(&got.bytes, bytes);
        // Annotation URLs answer the annotations of that image.
        let ann = t.member.get(&s(item, "annotation_url")).await.ok_json(200);
        assert_eq!(ann["image_id"], item["id"]);
    }
    let ann = t
        .member
        .get(&s(&list[0], "annotation_url"))
        .await
        .ok_json(200);
    assert_eq!(
        ann["annotations"][0]["keypoint"],
        json!({"x": 1.0, "y": 2.0})
    );

    let images_only = items(
        &t.owner
            .get("datasets/by-name/dl%20set/download?mode=images_only&limit=10000")
            .await
            .ok_json(200),
    );
    assert_eq!(images_only.len(), 3);
    assert!(images_only
        .iter()
        .all(|i| has(i, "image_url") && !has(i, "annotation_url")));
    let annotations_only = items(
        &t.owner
            .get("datasets/by-name/dl%20set/download?mode=annotations_only")
            .await
            .ok_json(200),
    );
    assert_eq!(annotations_only.len(), 3);
    assert!(annotations_only
        .iter()
        .all(|i| !has(i, "image_url") && has(i, "annotation_url")));
    // Without a mode the listing is full.
    let default = items(
        &t.owner
            .get(&format!("datasets/{id}/download"))
            .await
            .ok_json(200),
    );
    assert!(default
        .iter()
        .all(|i| has(i, "image_url") && has(i, "annotation_url")));

    let complete = items(
        &t.owner
            .get("datasets/by-name/dl%20set/download?mode=images_only&limit=10000&status_filter=complete")
            .await
            .ok_json(200),
    );
    let got: HashSet<String> = complete.iter().map(|i| s(i, "id")).collect();
    assert_eq!(got, HashSet::from([b.clone(), c.clone()]));
    let new = items(
        &t.owner
            .get("datasets/by-name/dl%20set/download?status_filter=new")
            .await
            .ok_json(200),
    );
    assert_eq!(ids(&new), vec![a.to_string()]);
    let review = items(
        &t.owner
            .get("datasets/by-name/dl%20set/download?status_filter=review")
            .await
            .ok_json(200),
    );
    assert!(review.is_empty());

    for q in [
        "mode=everything",
        "mode=FULL",
        "status_filter=in_progress",
        "status_filter=done",
        "limit=10001",
        "limit=0",
    ] {
        t.owner
            .get(&format!("datasets/by-name/dl%20set/download?{q}"))
            .await
            .error(422, "validation_error");
    }
    t.owner
        .get("datasets/by-name/nope/download")
        .await
        .error(404, "not_found");
    t.owner
        .get(&format!("datasets/{}/download", uuid::Uuid::new_v4()))
        .await
        .error(404, "not_found");
    t.anon
        .get("datasets/by-name/dl%20set/download")
        .await
        .error(401, "unauthorized");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_names_in_different_folders_get_distinct_file_names() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("dups").await;
    let id = s(&ds, "id");
    let folders = ["/", "/stop", "/stop/night", "/stop_night", "/a/b"];
    for (i, f) in folders.iter().enumerate() {
        t.owner.upload_png(&id, f, "001.png", i as u8).await;
    }
    t.owner.upload_png(&id, "/", "stop_001.png", 50).await;
    let list = items(
        &t.owner
            .get("datasets/by-name/dups/download?mode=full&limit=10000")
            .await
            .ok_json(200),
    );
    assert_eq!(list.len(), folders.len() + 1);
    let names: Vec<String> = list.iter().map(|i| s(i, "filename")).collect();
    let unique: HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "distinct names: {names:?}");
    for n in &names {
        assert!(
            !n.contains('/') && !n.contains('\\') && !n.starts_with('.'),
            "plain basename: {n}"
        );
        assert!(n.ends_with(".png"), "the extension is kept: {n}");
    }
    // The first one keeps its own name.
    assert_eq!(names[0], "001.png");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_embeds_annotation_lists_when_asked() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("inline").await;
    let a = s(
        &t.owner.upload_png(&s(&ds, "id"), "/", "a.png", 1).await,
        "id",
    );
    let b = s(
        &t.owner.upload_png(&s(&ds, "id"), "/x", "b.png", 2).await,
        "id",
    );
    let saved = json!([
        {"id": "k", "name": "n", "type": "keypoint", "keypoint": [1, 2], "metadata": {"by": "me"}},
        {"id": "o", "name": "n", "type": "bbox", "bounding_box": {"x": 0, "y": 0, "w": 2, "h": 2},
         "oriented_box": {"cx": 1, "cy": 1, "w": 2, "h": 2, "angle": 10}}
    ]);
    let newer = t
        .owner
        .request(reqwest::Method::POST, &format!("annotations/{a}"))
        .header("user-agent", "pictograph-python/1.69.146")
        .json(&json!({"annotations": saved}));
    Client::send(newer).await.expect(200);

    // Each embedded list (and version) equals what the image's annotation URL answers the
    // same caller, with or without metadata; an image without annotations has an empty list.
    for (query, single) in [("", ""), ("&include=metadata", "?include=metadata")] {
        let listing = t
            .owner
            .get(&format!(
                "datasets/by-name/inline/download?include_annotations=true{query}"
            ))
            .await
            .ok_json(200);
        for item in items(&listing) {
            let id = s(&item, "id");
            let one = t
                .owner
                .get(&format!("annotations/{id}{single}"))
                .await
                .ok_json(200);
            assert_eq!(item["annotations"], one["annotations"], "{query}");
            assert_eq!(item["version"], one["version"]);
        }
        let first = &items(&listing)[0];
        assert_eq!(s(first, "id"), a);
        assert_eq!(
            first["annotations"][0].get("metadata").is_some(),
            !query.is_empty()
        );
        // The legacy reader gets no extension it cannot parse.
        assert!(first["annotations"][1].get("oriented_box").is_none());
        assert_eq!(items(&listing)[1]["annotations"], json!([]));
        assert_eq!(s(&items(&listing)[1], "id"), b);
    }
    // Not asked, or images only: nothing embedded.
    for q in ["", "?mode=images_only&include_annotations=true"] {
        let listing = t
            .owner
            .get(&format!("datasets/by-name/inline/download{q}"))
            .await
            .ok_json(200);
        assert!(items(&listing)
            .iter()
            .all(|i| i.get("annotations").is_none()));
    }
    let bad = t
        .owner
        .get("datasets/by-name/inline/download?include_annotations=true&include=all")
        .await;
    assert_eq!(bad.status, 422);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_by_key_after_an_image() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("keyed").await;
    let id = s(&ds, "id");
    for i in 0..5u8 {
        let name = format!("k{i}.png");
        t.owner
            .upload(&id, "/", &name, &png_seeded(4, 4, i), "image/png")
            .await;
    }
    let all = ids(&t.owner.images("keyed").await);
    let page = |q: String| {
        let t = &t;
        async move {
            t.owner
                .get(&format!("datasets/by-name/keyed/download?{q}"))
                .await
                .ok_json(200)
        }
    };

    // The page right after an image, the same as by offset, with the `after` echoed.
    let keyed = page(format!("limit=2&after={}", all[0])).await;
    assert_eq!(ids(&items(&keyed)), all[1..3]);
    assert_eq!(keyed["after"], all[0].as_str());
    let by_offset = page("limit=2&offset=1".into()).await;
    assert_eq!(items(&by_offset), items(&keyed));
    assert!(by_offset.get("after").is_none(), "{by_offset}");
    assert!(items(&page(format!("after={}", all[4])).await).is_empty());

    // Deleting an image before the next page shifts offsets, not keys.
    t.owner
        .delete(&format!("images/{}", all[1]))
        .await
        .expect(200);
    let rest = page(format!("limit=10&after={}", all[1])).await;
    assert_eq!(ids(&items(&rest)), all[2..]);

    // With a status filter, the images after the key that have it.
    t.owner
        .patch("batch/images/update", &json!({"dataset_name": "keyed", "image_ids": [&all[0], &all[3]], "updates": {"status": "complete"}}))
        .await
        .expect(200);
    let complete = page(format!("status_filter=complete&after={}", all[0])).await;
    assert_eq!(ids(&items(&complete)), [all[3].clone()]);

    // Pages by offset are slices of the whole listing, at every offset and past the end,
    // whether the dataset keeps the filter's total (complete, everything) or does not (new).
    for (filter, n) in [
        ("status_filter=complete", 2),
        ("status_filter=new", 2),
        ("mode=full", 4),
    ] {
        let whole = ids(&items(&page(format!("{filter}&limit=100")).await));
        assert_eq!(whole.len(), n, "{filter}");
        for limit in 1..=3usize {
            for offset in 0..=n + 1 {
                let got = page(format!("{filter}&limit={limit}&offset={offset}")).await;
                let slice = &whole[offset.min(n)..(offset + limit).min(n)];
                assert_eq!(
                    ids(&items(&got)),
                    slice,
                    "{filter} limit={limit} offset={offset}"
                );
            }
        }
    }

    // `after` must name an image of this dataset, and goes without an offset.
    let other = t.owner.create_dataset("other").await;
    let stranger = t
        .owner
        .upload(
            &s(&other, "id"),
            "/",
            "x.png",
            &png_seeded(4, 4, 9),
            "image/png",
        )
        .await;
    for q in [
        format!("after={}", s(&stranger, "id")),
        format!("after={}", uuid::Uuid::new_v4()),
        format!("after={}&offset=1", all[0]),
    ] {
        t.owner
            .get(&format!("datasets/by-name/keyed/download?{q}"))
            .await
            .error(422, "validation_error");
    }
    t.stop().await;
}
