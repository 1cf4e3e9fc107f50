//! Listing a dataset's images by status and folder, and conditional annotation saves.

mod common;

use common::{s, Client, TestServer};
use serde_json::{json, Value};
use std::collections::HashSet;

/// `field` of each image of a listing's answer.
fn each(page: &Value, field: &str) -> Vec<String> {
    page["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| s(i, field))
        .collect()
}

/// `field` of each image the listing of `dataset` with `query` answers, and its total.
async fn listed(client: &Client, dataset: &str, query: &str, field: &str) -> (Vec<String>, i64) {
    let page = client
        .get(&format!("images/?dataset={dataset}&{query}"))
        .await
        .ok_json(200);
    (each(&page, field), page["total"].as_i64().unwrap())
}

#[tokio::test]
async fn images_list_filters_by_status_and_folder_and_pages() {
    let t = TestServer::start().await;
    let d = t.owner.create_dataset("listed").await;
    let ds = s(&d, "id");
    let mut ids = Vec::new();
    for (i, folder) in ["/", "/cars", "/cars/red", "/trucks", "/cars"]
        .iter()
        .enumerate()
    {
        let img = t
            .owner
            .upload_png(&ds, folder, &format!("i{i}.png"), i as u8)
            .await;
        ids.push(s(&img, "id"));
    }
    let r = t
        .owner
        .patch("batch/images/update", &json!({"dataset_name": "listed", "image_ids": [ids[1], ids[2]], "updates": {"status": "complete"}}))
        .await;
    assert_eq!(r.status, 200);
    t.owner
        .delete(&format!("images/{}", ids[4]))
        .await
        .expect(200);

    let all = t.owner.get("images/?dataset=listed").await.ok_json(200);
    assert_eq!(
        each(&all, "filename"),
        ["i0.png", "i1.png", "i2.png", "i3.png"],
        "archived images are left out"
    );
    assert_eq!(all["total"], 4);
    assert_eq!(all["data"], all["images"]);

    let cars = t
        .owner
        .get("images?dataset=listed&folder_path=/cars")
        .await
        .ok_json(200);
    assert_eq!(each(&cars, "filename"), ["i1.png"]);
    let tree = t
        .owner
        .get("images/?dataset=listed&folder_path=cars/&recursive=true")
        .await
        .ok_json(200);
    assert_eq!(each(&tree, "filename"), ["i1.png", "i2.png"]);
    let done = t
        .owner
        .get(&format!("images/?dataset={ds}&status=complete"))
        .await
        .ok_json(200);
    assert_eq!(
        each(&done, "filename"),
        ["i1.png", "i2.png"],
        "the dataset may be named by id"
    );
    let with_archived = t
        .owner
        .get("images/?dataset=listed&include_archived=true")
        .await
        .ok_json(200);
    assert_eq!(with_archived["total"], 5);

    let page = t
        .owner
        .get("images/?dataset=listed&limit=3&offset=0")
        .await
        .ok_json(200);
    assert_eq!(each(&page, "filename").len(), 3);
    assert_eq!(page["pagination"]["has_more"], true);
    let rest = t
        .owner
        .get("images/?dataset=listed&limit=3&offset=3")
        .await
        .ok_json(200);
    assert_eq!(each(&rest, "filename"), ["i3.png"]);
    assert_eq!(rest["pagination"]["has_more"], false);

    t.owner
        .get("images/?dataset=listed&status=done")
        .await
        .error(422, "validation_error");
    t.owner
        .get("images/?dataset=listed&limit=0")
        .await
        .error(422, "validation_error");
    t.owner
        .get("images/?dataset=listed&folder_path=/a/../b")
        .await
        .error(422, "validation_error");
    t.owner.get("images/").await.error(422, "validation_error");
    t.owner
        .get("images/?dataset=nope")
        .await
        .error(404, "not_found");
    t.other
        .get("images/?dataset=listed")
        .await
        .error(404, "not_found");
    t.stop().await;
}

#[tokio::test]
async fn a_recursive_listing_holds_the_folder_and_its_sub_folders_only() {
    let t = TestServer::start().await;
    let d = t.owner.create_dataset("tree").await;
    let ds = s(&d, "id");
    // Folders whose names sort right beside `/cars/…` ('-', '.', ' ' before '/'; '0' just
    // after it; bytes of 'é' far after) or share its first letters.
    let folders = [
        "/cars",
        "/cars/red",
        "/cars/red/old",
        "/cars/é",
        "/cars-old",
        "/cars.old",
        "/cars new",
        "/cars0",
        "/carsé",
        "/car",
        "/Cars",
        "/",
    ];
    for (i, folder) in folders.iter().enumerate() {
        t.owner
            .upload_png(&ds, folder, &format!("i{i:02}.png"), i as u8)
            .await;
    }
    let whole = |query: &'static str| {
        let t = &t;
        async move {
            let (names, total) = listed(&t.owner, "tree", query, "filename").await;
            assert_eq!(total, names.len() as i64, "{query}");
            names
        }
    };
    assert_eq!(
        whole("folder_path=/cars&recursive=true").await,
        ["i00.png", "i01.png", "i02.png", "i03.png"]
    );
    assert_eq!(
        whole("folder_path=/cars/red&recursive=true").await,
        ["i01.png", "i02.png"]
    );
    assert_eq!(whole("folder_path=/car&recursive=true").await, ["i09.png"]);
    assert_eq!(whole("folder_path=/cars").await, ["i00.png"]);
    assert_eq!(
        whole("folder_path=/&recursive=true").await.len(),
        folders.len()
    );
    // One image a page: SQLite reads the first and last pages in listing order (a folder
    // holding a third of the dataset finds one image at once) and the others by name.
    let mut walked = Vec::new();
    for offset in 0..5 {
        let query = format!("folder_path=/cars&recursive=true&limit=1&offset={offset}");
        let (names, total) = listed(&t.owner, "tree", &query, "filename").await;
        assert_eq!(total, 4);
        walked.extend(names);
    }
    assert_eq!(walked, ["i00.png", "i01.png", "i02.png", "i03.png"]);
    // Paging through a recursive listing by key sees the same images.
    let first = t
        .owner
        .get("images/?dataset=tree&folder_path=/cars&recursive=true&limit=3")
        .await
        .ok_json(200);
    let last = s(&first["images"][2], "id");
    let rest = t
        .owner
        .get(&format!(
            "images/?dataset=tree&folder_path=/cars&recursive=true&after={last}"
        ))
        .await
        .ok_json(200);
    assert_eq!(s(&rest["images"][0], "filename"), "i03.png");
    assert_eq!(rest["images"].as_array().unwrap().len(), 1);
    t.stop().await;
}

/// A new dataset of seven images, `{prefix}0.png` to `{prefix}6.png`, in `/even` and `/odd` by
/// their number; answers their ids in listing order.
async fn seven_images(t: &TestServer, dataset: &str, prefix: &str) -> Vec<String> {
    let d = t.owner.create_dataset(dataset).await;
    let ds = s(&d, "id");
    let mut ids = Vec::new();
    for i in 0..7u8 {
        let folder = if i % 2 == 0 { "/even" } else { "/odd" };
        let img = t
            .owner
            .upload_png(&ds, folder, &format!("{prefix}{i}.png"), i)
            .await;
        ids.push(s(&img, "id"));
    }
    ids
}

/// Every page of every listing kind equals the same slice of the whole listing: pages past
/// the middle are read from the end, totals of plain listings come from the kept counters.
#[tokio::test]
async fn every_page_is_the_slice_of_the_whole_listing() {
    let t = TestServer::start().await;
    let ids = seven_images(&t, "sliced", "p").await;
    let r = t
        .owner
        .patch("batch/images/update", &json!({"dataset_name": "sliced", "image_ids": [ids[1], ids[4], ids[5]], "updates": {"status": "complete"}}))
        .await;
    assert_eq!(r.status, 200);
    t.owner
        .delete(&format!("images/{}", ids[5]))
        .await
        .expect(200);
    for (filter, expected) in [
        ("", vec!["p0", "p1", "p2", "p3", "p4", "p6"]),
        (
            "include_archived=true",
            vec!["p0", "p1", "p2", "p3", "p4", "p5", "p6"],
        ),
        ("status=complete", vec!["p1", "p4"]),
        ("status=new", vec!["p0", "p2", "p3", "p6"]),
        ("folder_path=/even", vec!["p0", "p2", "p4", "p6"]),
    ] {
        let expected: Vec<String> = expected.iter().map(|n| format!("{n}.png")).collect();
        let total = expected.len();
        for limit in 1..=total + 1 {
            for offset in 0..=total + 1 {
                let query = format!("{filter}&limit={limit}&offset={offset}");
                let (names, got_total) = listed(&t.owner, "sliced", &query, "filename").await;
                let want: Vec<String> = expected.iter().skip(offset).take(limit).cloned().collect();
                assert_eq!(names, want, "{filter} limit={limit} offset={offset}");
                assert_eq!(got_total, total as i64, "{filter} total");
            }
        }
    }
}

/// Pages that skip many more images than they hold (which PostgreSQL reads ids first) are
/// slices of the whole listing too, from the start and from the end, with any filter.
#[tokio::test]
async fn deep_pages_are_slices_of_the_whole_listing() {
    let t = TestServer::start().await;
    let d = t.owner.create_dataset("deep").await;
    for i in 0..3u8 {
        t.owner
            .upload_png(&s(&d, "id"), "/", &format!("d{i}.png"), i)
            .await;
    }
    let ids_of = |q: String| {
        let t = &t;
        async move { listed(&t.owner, "deep", &q, "id").await.0 }
    };
    // Doubling four times: 48 images, each batch of copies sharing one creation time.
    for round in 1..=4 {
        let all = ids_of("limit=100".into()).await;
        t.owner
            .post(
                "batch/images/copy",
                &json!({"dataset_name": "deep", "image_ids": all, "target_folder_path": format!("/c{round}")}),
            )
            .await
            .expect(200);
    }
    let all = ids_of("limit=100".into()).await;
    assert_eq!(all.len(), 48);
    // Archived images at both ends and side by side in the middle: a listing with them keeps
    // them in their places among the live ones.
    for i in [0, 20, 21, 47] {
        t.owner
            .delete(&format!("images/{}", all[i]))
            .await
            .expect(200);
    }
    assert_eq!(ids_of("include_archived=true&limit=100".into()).await, all);
    for (filter, n) in [
        ("", 44),
        ("include_archived=true", 48),
        ("status=new", 44),
        ("folder_path=/c4", 23),
    ] {
        let whole = ids_of(format!("{filter}&limit=100")).await;
        assert_eq!(whole.len(), n, "{filter}");
        for limit in 1..=2 {
            for offset in 0..=n + 1 {
                let page = ids_of(format!("{filter}&limit={limit}&offset={offset}")).await;
                let slice = &whole[offset.min(n)..(offset + limit).min(n)];
                assert_eq!(page, slice, "{filter} limit={limit} offset={offset}");
            }
        }
    }
    t.stop().await;
}

/// `after=ID` pages by key: each page starts right after the image named, with the same
/// filters, order and totals as the offset pages, and says so in `pagination.after` (absent
/// from every answer that did not ask, which the official clients' models would refuse).
/// Copies made by one batch share their creation time, so their pages are told apart by id.
#[tokio::test]
async fn keyset_pages_walk_the_same_listing_as_offsets() {
    let t = TestServer::start().await;
    let ids = seven_images(&t, "keyed", "k").await;
    let copied = t
        .owner
        .post(
            "batch/images/copy",
            &json!({"dataset_name": "keyed", "image_ids": ids, "target_folder_path": "/copies"}),
        )
        .await
        .ok_json(200);
    assert_eq!(copied["processed"], 7, "{copied}");
    t.owner
        .delete(&format!("images/{}", ids[3]))
        .await
        .expect(200);
    let page = |q: String| {
        let c = t.owner.clone();
        async move {
            c.get(&format!("images/?dataset=keyed&{q}"))
                .await
                .ok_json(200)
        }
    };
    let ids_of = |v: &Value| each(v, "id");
    for filter in [
        "",
        "include_archived=true",
        "folder_path=/even",
        "folder_path=/copies",
    ] {
        let whole = page(format!("{filter}&limit=100")).await;
        assert!(whole["pagination"].get("after").is_none(), "{whole}");
        let all = ids_of(&whole);
        let created: HashSet<&str> = whole["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["created_at"].as_str().unwrap())
            .collect();
        if filter == "folder_path=/copies" {
            assert_eq!((all.len(), created.len()), (7, 1), "{whole}");
        }
        for limit in 1..=3usize {
            let mut walked = Vec::new();
            let mut v = page(format!("{filter}&limit={limit}")).await;
            loop {
                walked.extend(ids_of(&v));
                assert_eq!(v["total"], whole["total"], "{filter} total");
                assert_eq!(
                    v["pagination"]["has_more"],
                    walked.len() < all.len(),
                    "{filter} limit={limit} has_more after {walked:?}"
                );
                if walked.len() >= all.len() {
                    break;
                }
                let last = walked.last().unwrap().clone();
                v = page(format!("{filter}&limit={limit}&after={last}")).await;
                assert_eq!(v["pagination"]["after"], last.as_str());
                assert_eq!(v["data"], v["images"]);
            }
            assert_eq!(walked, all, "{filter} limit={limit}");
        }
    }
    // An archived image is still a place in the listing to start after.
    let v = page(format!("limit=2&after={}", ids[3])).await;
    assert_eq!(ids_of(&v), [ids[4].clone(), ids[5].clone()]);

    let refused = |q: String| {
        let c = t.owner.clone();
        async move {
            c.get(&format!("images/?dataset=keyed&{q}"))
                .await
                .field_errors()
        }
    };
    let other = t.owner.create_dataset("elsewhere").await;
    let stranger = t.owner.upload_png(&s(&other, "id"), "/", "x.png", 9).await;
    for (q, loc) in [
        ("after=no-such-image".to_string(), "after"),
        (format!("after={}", s(&stranger, "id")), "after"),
        (format!("after={}&offset=1", ids[0]), "offset"),
        (format!("after={}&min_confidence_lt=0.5", ids[0]), "after"),
    ] {
        let errors = refused(q.clone()).await;
        assert_eq!(errors[0]["loc"], json!(["query", loc]), "{q}: {errors:?}");
    }
    t.stop().await;
}

#[tokio::test]
async fn a_stale_conditional_save_is_refused_and_a_plain_save_still_works() {
    let t = TestServer::start().await;
    let d = t.owner.create_dataset("versions").await;
    let img = t.owner.upload_png(&s(&d, "id"), "/", "v.png", 1).await;
    let id = s(&img, "id");
    let path = format!("annotations/{id}");
    let one = |name: &str| json!([{"id": "a", "name": name, "type": "keypoint", "keypoint": {"x": 1.0, "y": 1.0}, "confidence": 1.0, "attributes": []}]);

    let read = t.owner.get(&path).await;
    let etag = read.header("etag").expect("an ETag");
    let v0 = read.ok_json(200)["version"].as_i64().unwrap();
    assert_eq!(etag, format!("\"{v0}\""), "the ETag is the version");
    let saved = t
        .owner
        .post(
            &path,
            &json!({"annotations": one("first"), "expected_version": v0}),
        )
        .await;
    let next_etag = saved.header("etag").expect("the save's ETag");
    let v1 = saved.ok_json(200)["version"].as_i64().unwrap();
    assert_eq!(v1, v0 + 1);
    assert_eq!(next_etag, format!("\"{v1}\""));

    // A second editor still holding v0 is refused and changes nothing.
    let stale = t
        .owner
        .post(
            &path,
            &json!({"annotations": one("stale"), "expected_version": v0}),
        )
        .await
        .error_detail(409, "conflict");
    assert!(stale.contains("changed since version"), "{stale}");
    let stale_header = t
        .owner
        .request(reqwest::Method::POST, &path)
        .header("if-match", format!("\"{v0}\""))
        .json(&json!({"annotations": one("stale")}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale_header.status(), 409);
    let now = t.owner.get(&path).await.ok_json(200);
    assert_eq!(now["annotations"][0]["name"], "first");
    assert_eq!(now["version"], v1);

    // With the current version, or with none (as the official client saves), it goes through.
    let ok = t
        .owner
        .request(reqwest::Method::POST, &path)
        .header("if-match", format!("\"{v1}\""))
        .json(&json!({"annotations": one("second")}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    t.owner
        .post(&path, &json!({"image_id": id, "annotations": one("third")}))
        .await
        .expect(200);
    assert_eq!(
        t.owner.get(&path).await.ok_json(200)["annotations"][0]["name"],
        "third"
    );
    t.owner
        .post(
            &path,
            &json!({"annotations": one("x"), "expected_version": "seven"}),
        )
        .await
        .error(422, "validation_error");
    // A header and a body that name different versions: refused, whichever is current.
    let current = t.owner.get(&path).await.ok_json(200)["version"].clone();
    let both = t
        .owner
        .request(reqwest::Method::POST, &path)
        .header("if-match", format!("\"{current}\""))
        .json(&json!({"annotations": one("y"), "expected_version": v0}))
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), 422);
    let detail = both.json::<Value>().await.unwrap()["detail"][0]["msg"].clone();
    assert!(detail.to_string().contains("If-Match"), "{detail}");
    assert_eq!(
        t.owner.get(&path).await.ok_json(200)["annotations"][0]["name"],
        "third"
    );
    t.stop().await;
}

/// Adds `rows` images to the dataset, written straight into the database as copies of the
/// image `template` (its bytes and dimensions), with ids `{prefix}{n}` (fixed width, so they
/// sort as they were made), the folder, file name, status and archived flag SQL expressions
/// of `n` (1..=rows) give, all created at the template's time.
async fn seed(t: &TestServer, template: &str, prefix: &str, rows: u32, cols: [&str; 4]) {
    let [folder, filename, status, archived] = cols;
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
         INSERT INTO images (id, dataset_seq, folder, filename, status, is_archived, blob_hash, \
         file_size, mime_type, width, height, annotation_count, version, created_at, updated_at) \
         SELECT '{prefix}' || (100000 + i), t.dataset_seq, {folder}, {filename}, {status}, \
         {archived}, t.blob_hash, t.file_size, t.mime_type, t.width, t.height, 0, 1, \
         t.created_at, t.updated_at FROM n, images t WHERE t.id = $1"
    );
    let db = t.db().await;
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(template)
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
}

/// A listing by file name in any folder finds every image of that name and only those, with
/// the other filters, by offset from either end and by key: in a dataset large enough to be
/// read a folder at a time by the name index, and again once it is in too many folders for
/// that and is read whole.
#[tokio::test]
async fn a_listing_by_file_name_finds_it_in_every_folder() {
    let t = TestServer::start().await;
    let d = t.owner.create_dataset("names").await;
    let ds = s(&d, "id");
    let template = s(&t.owner.upload_png(&ds, "/", "first.png", 1).await, "id");
    // 14,000 images in 25 folders, each name once: enough images for 26 folders to be
    // looked up one by one.
    let unique = [
        "'/f' || (1 + i % 25)",
        "'img_' || i || '.jpg'",
        "'new'",
        "0",
    ];
    seed(&t, &template, "u-", 14_000, unique).await;
    // `same.jpg` in 25 folders, every other one in review, and 3 archived ones.
    let same = [
        "'/f' || i",
        "'same.jpg'",
        "CASE WHEN i % 2 = 0 THEN 'review' ELSE 'new' END",
        "0",
    ];
    seed(&t, &template, "s-", 25, same).await;
    let archived = ["'/f' || i", "'same.jpg'", "'new'", "1"];
    seed(&t, &template, "a-", 3, archived).await;
    by_name(&t.owner, &template, "read a folder at a time").await;
    // In more folders than that, the dataset is read whole; the answers are the same.
    let scattered = ["'/g' || i", "'g_' || i || '.jpg'", "'new'", "0"];
    seed(&t, &template, "g-", 100, scattered).await;
    by_name(&t.owner, &template, "read whole").await;
    t.stop().await;
}

/// Ids `s-{100000 + n}` for n in `from..=to`: the images named `same.jpg` that
/// [`a_listing_by_file_name_finds_it_in_every_folder`] seeds.
fn same_ids(from: u32, to: u32) -> Vec<String> {
    (from..=to).map(|i| format!("s-{}", 100000 + i)).collect()
}

/// The listings by name [`a_listing_by_file_name_finds_it_in_every_folder`] checks, in the
/// state `label` names; `template` is the one image uploaded.
async fn by_name(owner: &Client, template: &str, label: &str) {
    let list = |q: &'static str| listed(owner, "names", q, "id");
    let one = |id: &str| (vec![id.to_string()], 1);
    assert_eq!(
        list("filename=same.jpg&limit=100").await,
        (same_ids(1, 25), 25),
        "{label}"
    );
    assert_eq!(
        list("filename=img_77.jpg").await,
        one("u-100077"),
        "{label}"
    );
    assert_eq!(list("filename=first.png").await, one(template), "{label}");
    assert_eq!(list("filename=none.jpg").await, (vec![], 0), "{label}");
    let even = |id: &String| id[2..].parse::<u32>().unwrap() % 2 == 0;
    let review = same_ids(1, 25).into_iter().filter(even).collect::<Vec<_>>();
    let q = "filename=same.jpg&status=review&limit=100";
    assert_eq!(list(q).await, (review, 12), "{label}");
    let (ids, total) = list("filename=same.jpg&include_archived=true&limit=100").await;
    assert_eq!(total, 28, "{label}");
    let archived: Vec<_> = ids.iter().filter(|id| id.starts_with("a-")).collect();
    assert_eq!(archived, ["a-100001", "a-100002", "a-100003"], "{label}");
    // Pages by offset, near the start and past the middle (read from the end).
    let (ids, _) = list("filename=same.jpg&limit=5&offset=2").await;
    assert_eq!(ids, same_ids(3, 7), "{label}");
    let (ids, _) = list("filename=same.jpg&limit=5&offset=18").await;
    assert_eq!(ids, same_ids(19, 23), "{label}");
    // A page by key, and a listing narrowed to a folder too.
    let (ids, _) = list("filename=same.jpg&limit=5&after=s-100010").await;
    assert_eq!(ids, same_ids(11, 15), "{label}");
    let q = "filename=same.jpg&folder_path=/f7";
    assert_eq!(list(q).await, one("s-100007"), "{label}");
}

/// Listings by status answer the same images, totals and pages whichever index reads them: a
/// status few images hold, one most hold, with a folder that holds most of a status and one
/// that holds little of it, archived images left out or not, by offset from either end and
/// by key.
#[tokio::test]
async fn listings_by_status_are_the_same_whichever_index_reads_them() {
    let t = TestServer::start().await;
    let d = t.owner.create_dataset("statuses").await;
    let template = s(
        &t.owner.upload_png(&s(&d, "id"), "/", "first.png", 1).await,
        "id",
    );
    t.owner
        .delete(&format!("images/{template}"))
        .await
        .expect(200);
    const ROWS: u32 = 3_000;
    let folder = |i: u32| {
        if i.is_multiple_of(10) {
            "/small"
        } else {
            "/big"
        }
    };
    let status = |i: u32| match (i % 50, i % 3) {
        (7 | 10, _) => "annotate",
        (_, 0) => "review",
        _ => "new",
    };
    let archived = |i: u32| i.is_multiple_of(97);
    let cols = [
        "CASE WHEN i % 10 = 0 THEN '/small' ELSE '/big' END",
        "'img_' || i || '.jpg'",
        "CASE WHEN i % 50 IN (7, 10) THEN 'annotate' WHEN i % 3 = 0 THEN 'review' ELSE 'new' END",
        "CASE WHEN i % 97 = 0 THEN 1 ELSE 0 END",
    ];
    seed(&t, &template, "u-", ROWS, cols).await;
    for wanted in ["annotate", "review", "new", "complete"] {
        for place in [None, Some("/big"), Some("/small")] {
            for with_archived in [false, true] {
                let mut expected: Vec<String> = (1..=ROWS)
                    .filter(|&i| status(i) == wanted && (with_archived || !archived(i)))
                    .filter(|&i| place.is_none_or(|p| folder(i) == p))
                    .map(|i| format!("u-{}", 100000 + i))
                    .collect();
                // The uploaded image, archived, created with the seeded ones, sorts first.
                if (wanted, place, with_archived) == ("new", None, true) {
                    expected.insert(0, template.clone());
                }
                let mut query = format!("status={wanted}");
                if let Some(p) = place {
                    query += &format!("&folder_path={p}");
                }
                if with_archived {
                    query += "&include_archived=true";
                }
                let n = expected.len();
                let slice = |from: usize| expected[from.min(n)..(from + 10).min(n)].to_vec();
                let list = |q: String| {
                    let q = format!("{query}&{q}");
                    let owner = &t.owner;
                    async move { listed(owner, "statuses", &q, "id").await }
                };
                assert_eq!(
                    list("limit=10".into()).await,
                    (slice(0), n as i64),
                    "{query}"
                );
                let past_middle = n.saturating_sub(15);
                let (page, _) = list(format!("limit=10&offset={past_middle}")).await;
                assert_eq!(page, slice(past_middle), "{query} past the middle");
                if n > 20 {
                    let after = &expected[n / 3];
                    let (page, total) = list(format!("limit=10&after={after}")).await;
                    assert_eq!(
                        (page, total),
                        (slice(n / 3 + 1), n as i64),
                        "{query} by key"
                    );
                }
            }
        }
    }
    t.stop().await;
}
