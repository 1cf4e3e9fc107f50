//! Single images: metadata, bytes (ETag, ranges, caching), signed links, archive and purge.

mod common;

use common::*;
use pictograph_server::auth::Role;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_has_every_field_the_clients_read() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("meta").await;
    let bytes = jpeg(64, 48);
    let img = t
        .member
        .upload(&s(&ds, "id"), "/cars/red", "car.jpg", &bytes, "image/jpeg")
        .await;
    let id = s(&img, "id");
    let body = t
        .member
        .get(&format!("images/{id}/metadata"))
        .await
        .ok_json(200);
    assert_eq!(body["data"], body["image"]);
    let img = &body["image"];
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    assert_eq!(img["dataset_id"], ds["id"]);
    assert_eq!(img["filename"], "car.jpg");
    assert_eq!(img["status"], "new");
    assert_eq!(img["annotation_count"], 0);
    assert_eq!(img["file_size"], bytes.len());
    assert_eq!(img["width"], 64);
    assert_eq!(img["height"], 48);
    assert_eq!(img["mime_type"], "image/jpeg");
    assert_eq!(img["content_type"], "image/jpeg");
    assert_eq!(img["virtual_folder_path"], "/cars/red");
    assert_eq!(img["directory_path"], "/cars/red");
    assert_eq!(img["is_archived"], false);
    assert!(chrono::DateTime::parse_from_rfc3339(&s(img, "created_at")).is_ok());

    let image_url = s(img, "image_url");
    assert!(
        image_url.starts_with(&format!("{}/", t.base)),
        "{image_url}"
    );
    let annotation_url = s(img, "annotation_url");
    assert!(
        annotation_url.ends_with(&format!("/api/v1/developer/annotations/{id}")),
        "{annotation_url}"
    );

    // The image URL needs no key; the annotation URL is the authenticated API.
    let got = t.anon.get(&image_url).await.expect(200);
    assert_eq!(got.bytes, bytes);
    let ann = t.owner.get(&annotation_url).await.ok_json(200);
    assert_eq!(ann["image_id"], id.as_str());
    assert_eq!(ann["annotations"], json!([]));
    t.anon.get(&annotation_url).await.error(401, "unauthorized");

    // Unknown ids.
    let unknown = uuid::Uuid::new_v4();
    t.owner
        .get(&format!("images/{unknown}/metadata"))
        .await
        .error(404, "not_found");
    t.owner
        .get(&format!("images/{unknown}"))
        .await
        .error(404, "not_found");
    t.owner
        .delete(&format!("images/{unknown}"))
        .await
        .error(404, "not_found");
    t.owner
        .get("images/not-a-uuid/metadata")
        .await
        .error(404, "not_found");
    // The bytes need a key on the API path.
    t.anon
        .get(&format!("images/{id}"))
        .await
        .error(401, "unauthorized");
    t.stop().await;
}

/// Many metadata reads at once, of two organisations' images and of unknown ids: each gets
/// its own image or a 404, never another organisation's. On PostgreSQL reads that arrive
/// together are answered by shared statements, which this checks happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_metadata_reads_each_get_their_own_image_and_no_other_orgs() {
    let t = TestServer::start().await;
    let other = t.key("org-other", Role::Member, "free").await;
    let mine_ds = t.owner.create_dataset("mine").await;
    let theirs_ds = other.create_dataset("theirs").await;
    let mut mine = Vec::new();
    let mut theirs = Vec::new();
    for n in 0..8u8 {
        let img = t
            .member
            .upload_png(&s(&mine_ds, "id"), "/", &format!("mine-{n}.png"), n)
            .await;
        mine.push((s(&img, "id"), format!("mine-{n}.png")));
        let img = other
            .upload_png(
                &s(&theirs_ds, "id"),
                "/",
                &format!("theirs-{n}.png"),
                n + 100,
            )
            .await;
        theirs.push((s(&img, "id"), format!("theirs-{n}.png")));
    }
    let reads = (0..240).map(|n| {
        let (client, id, expected) = match n % 5 {
            // Own images, from both organisations' keys.
            0 | 1 => (
                &t.member,
                mine[n % 8].0.clone(),
                Some(mine[n % 8].1.clone()),
            ),
            2 => (
                &other,
                theirs[n % 8].0.clone(),
                Some(theirs[n % 8].1.clone()),
            ),
            // Another organisation's images.
            3 => (&t.member, theirs[n % 8].0.clone(), None),
            _ if n % 2 == 0 => (&other, mine[n % 8].0.clone(), None),
            _ => (&t.member, uuid::Uuid::new_v4().to_string(), None),
        };
        async move {
            let resp = client.get(&format!("images/{id}/metadata")).await;
            (id, expected, resp)
        }
    });
    for (id, expected, resp) in futures::future::join_all(reads).await {
        match expected {
            Some(name) => {
                let body = resp.ok_json(200);
                assert_eq!(body["image"]["id"], id.as_str());
                assert_eq!(body["image"]["filename"], name.as_str());
            }
            None => {
                resp.error(404, "not_found");
            }
        }
    }
    t.assert_gathered(t.app().state.store.gather_stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_come_with_etag_ranges_and_caching() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("bytes").await;
    let bytes = png(50, 40);
    let n = bytes.len();
    let img = t
        .owner
        .upload(&s(&ds, "id"), "/", "p.png", &bytes, "image/png")
        .await;
    let etag = format!("\"{}\"", sha256_hex(&bytes));

    // The same rules on the API path (with a key) and on the signed link (without).
    let paths = [
        (t.owner.clone(), format!("images/{}", s(&img, "id"))),
        (t.anon.clone(), s(&img, "image_url")),
    ];
    for (c, path) in &paths {
        let full = c.get(path).await.expect(200);
        assert_eq!(full.bytes, bytes);
        assert_eq!(full.header("etag"), Some(etag.clone()));
        assert_eq!(full.header("content-type").as_deref(), Some("image/png"));
        assert_eq!(full.header("content-length"), Some(n.to_string()));
        let cache = full.header("cache-control").unwrap_or_default();
        assert!(cache.contains("immutable"), "{cache}");
        assert!(cache.contains("max-age="), "{cache}");

        let head = c
            .get_with(path, &[("Range", "bytes=0-9")])
            .await
            .expect(206);
        assert_eq!(head.bytes, bytes[..10]);
        assert_eq!(head.header("content-range"), Some(format!("bytes 0-9/{n}")));
        assert_eq!(head.header("content-length").as_deref(), Some("10"));

        let middle = c
            .get_with(path, &[("Range", "bytes=10-19")])
            .await
            .expect(206);
        assert_eq!(middle.bytes, bytes[10..20]);

        let tail = c.get_with(path, &[("Range", "bytes=-5")]).await.expect(206);
        assert_eq!(tail.bytes, bytes[n - 5..]);
        assert_eq!(
            tail.header("content-range"),
            Some(format!("bytes {}-{}/{n}", n - 5, n - 1))
        );

        let from = c
            .get_with(path, &[("Range", &format!("bytes={}-", n - 3))])
            .await
            .expect(206);
        assert_eq!(from.bytes, bytes[n - 3..]);

        // An end past the file is clamped.
        let clamped = c
            .get_with(path, &[("Range", &format!("bytes={}-{}", n - 2, n + 100))])
            .await
            .expect(206);
        assert_eq!(clamped.bytes, bytes[n - 2..]);

        for unsatisfiable in [
            format!("bytes={n}-"),
            format!("bytes={}-{}", n + 10, n + 20),
            "bytes=-0".into(),
        ] {
            let r = c
                .get_with(path, &[("Range", &unsatisfiable)])
                .await
                .expect(416);
            assert_eq!(
                r.header("content-range"),
                Some(format!("bytes */{n}")),
                "{unsatisfiable}"
            );
        }

        let cached = c
            .get_with(path, &[("If-None-Match", &etag)])
            .await
            .expect(304);
        assert!(cached.bytes.is_empty());
        assert_eq!(cached.header("etag"), Some(etag.clone()));
        let listed = format!("\"nope\", {etag}");
        c.get_with(path, &[("If-None-Match", &listed)])
            .await
            .expect(304);
        let stale = c
            .get_with(path, &[("If-None-Match", "\"other\"")])
            .await
            .expect(200);
        assert_eq!(stale.bytes, bytes);
    }
    t.stop().await;
}

/// An image larger than what is sent from memory (4 MiB) streams: whole, and by ranges at
/// its start, inside it and at its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_image_streams_whole_and_by_range() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("large").await;
    let bytes = jpeg_with_metadata(32, 24, 5 << 20);
    let n = bytes.len();
    let img = t
        .owner
        .upload(&s(&ds, "id"), "/", "big.jpg", &bytes, "image/jpeg")
        .await;
    let path = format!("images/{}", s(&img, "id"));
    let full = t.owner.get(&path).await.expect(200);
    assert_eq!(full.header("content-length"), Some(n.to_string()));
    assert!(full.bytes == bytes, "the streamed bytes differ");
    for (range, want) in [
        ("bytes=0-99".to_string(), 0..100),
        (
            format!("bytes={}-{}", n / 2, n / 2 + 65_535),
            n / 2..n / 2 + 65_536,
        ),
        ("bytes=-10".to_string(), n - 10..n),
    ] {
        let part = t
            .owner
            .get_with(&path, &[("Range", &range)])
            .await
            .expect(206);
        assert_eq!(
            part.header("content-range"),
            Some(format!("bytes {}-{}/{n}", want.start, want.end - 1))
        );
        assert!(part.bytes == bytes[want], "{range}");
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_image_links_refuse_tampering() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("links").await;
    let a = t.owner.upload_png(&s(&ds, "id"), "/", "a.png", 1).await;
    let b = t.owner.upload_png(&s(&ds, "id"), "/", "b.png", 2).await;
    let url = s(&a, "image_url");
    t.anon.get(&url).await.expect(200);

    let (path, query) = url.split_once('?').unwrap();
    let sig = query
        .split_once("sig=")
        .unwrap()
        .1
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let expires: i64 = query
        .split_once("expires=")
        .unwrap()
        .1
        .split('&')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut flipped = sig.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'a' { b'b' } else { b'a' };
    let flipped = String::from_utf8(flipped).unwrap();
    let signer = &t.app().state.signer;
    let past = chrono::Utc::now().timestamp() - 1;
    let b_path = path.replace(&s(&a, "id"), &s(&b, "id"));
    for bad in [
        format!("{path}?expires={expires}&sig={flipped}"),
        format!("{path}?expires={}&sig={sig}", expires + 3600),
        format!(
            "{path}?expires={past}&sig={}",
            signer.sign("GET", &s(&a, "id"), past)
        ),
        format!(
            "{path}?expires={expires}&sig={}",
            signer.sign("PUT", &s(&a, "id"), expires)
        ),
        // A's signature does not open B.
        format!("{b_path}?expires={expires}&sig={sig}"),
    ] {
        let r = t.anon.get(&bad).await;
        assert_ne!(r.bytes, png_seeded(8, 6, 2), "B's bytes must not leak");
        r.error(403, "forbidden");
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_archives_and_frees_the_name() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("arch").await;
    let id = s(&ds, "id");
    let a = t.member.upload_png(&id, "/f", "a.png", 1).await;
    let size = a["file_size"].as_i64().unwrap();

    let r = t
        .member
        .delete(&format!("images/{}", s(&a, "id")))
        .await
        .expect(200);
    if !r.bytes.is_empty() {
        assert_eq!(r.json()["permanent"], false);
    }
    let archived = t.member.image(&s(&a, "id")).await;
    assert_eq!(archived["is_archived"], true);
    let c = t.owner.counts("arch").await;
    assert_eq!((c.images, c.archived, c.total_size), (0, 1, 0));
    // Its bytes stay (archives are recoverable).
    assert!(t.blob_stored(&sha256_hex(&png_seeded(8, 6, 1))));
    t.member
        .get(&format!("images/{}", s(&a, "id")))
        .await
        .expect(200);
    // The name can be used again.
    let again = t.member.upload_png(&id, "/f", "a.png", 2).await;
    assert_ne!(again["id"], a["id"]);
    let c = t.owner.counts("arch").await;
    assert_eq!((c.images, c.archived), (1, 1));
    assert_eq!(c.total_size, again["file_size"].as_i64().unwrap());
    assert_ne!(
        c.total_size + size,
        c.total_size,
        "the archived image's size is not counted"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_delete_removes_the_row_and_unshared_bytes() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("purge").await;
    let id = s(&ds, "id");
    let solo_bytes = png_seeded(8, 6, 10);
    let shared_bytes = png_seeded(8, 6, 11);
    let solo = t.member.upload_png(&id, "/", "solo.png", 10).await;
    let shared = t.member.upload_png(&id, "/", "shared.png", 11).await;
    t.member
        .batch(
            "copy",
            &json!({"dataset_name": "purge", "image_ids": [s(&shared, "id")], "target_folder_path": "/copy",
                    "duplicate_handling": "rename", "copy_annotations": false}),
        )
        .await
        .expect(200);
    assert_eq!(t.blob_files().len(), 2);

    // Members may purge single images.
    t.member
        .delete(&format!("images/{}?permanent=true", s(&solo, "id")))
        .await
        .expect(200);
    t.member
        .get(&format!("images/{}/metadata", s(&solo, "id")))
        .await
        .error(404, "not_found");
    t.member
        .get(&format!("images/{}", s(&solo, "id")))
        .await
        .error(404, "not_found");
    t.anon
        .get(&s(&solo, "image_url"))
        .await
        .error(404, "not_found");
    t.member
        .delete(&format!("images/{}?permanent=true", s(&solo, "id")))
        .await
        .error(404, "not_found");
    assert!(
        !t.blob_stored(&sha256_hex(&solo_bytes)),
        "unreferenced bytes are freed"
    );

    t.member
        .delete(&format!("images/{}?permanent=true", s(&shared, "id")))
        .await
        .expect(200);
    assert!(
        t.blob_stored(&sha256_hex(&shared_bytes)),
        "the copy still uses them"
    );
    let copy = &t.owner.images("purge").await[0];
    assert_eq!(copy["virtual_folder_path"], "/copy");
    let got = t
        .owner
        .get(&format!("images/{}", s(copy, "id")))
        .await
        .expect(200);
    assert_eq!(got.bytes, shared_bytes);

    // Purging an archived image works too, and frees the last bytes.
    t.member
        .delete(&format!("images/{}", s(copy, "id")))
        .await
        .expect(200);
    t.member
        .delete(&format!("images/{}?permanent=true", s(copy, "id")))
        .await
        .expect(200);
    assert!(t.blob_files().is_empty(), "{:?}", t.blob_files());
    let c = t.owner.counts("purge").await;
    assert_eq!((c.images, c.archived, c.total_size), (0, 0, 0));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_none_match_uses_weak_comparison() {
    // RFC 9110 §13.1.2: If-None-Match compares entity tags weakly, so a cache or proxy that
    // weakened the tag (W/"…") still revalidates to 304.
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("weak").await;
    let bytes = png(9, 9);
    let img = t
        .owner
        .upload(&s(&ds, "id"), "/", "w.png", &bytes, "image/png")
        .await;
    let weak = format!("W/\"{}\"", sha256_hex(&bytes));
    let r = t
        .owner
        .get_with(
            &format!("images/{}", s(&img, "id")),
            &[("If-None-Match", &weak)],
        )
        .await;
    assert_eq!(
        r.status, 304,
        "a weak tag of the current bytes must revalidate"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusual_file_names_round_trip() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("names").await;
    let id = s(&ds, "id");
    for (i, (folder, name)) in [
        ("/réseau routier", "café ü.png"),
        ("/", "quote\"d.png"),
        ("/a b/c", "semi;colon,comma.png"),
        ("/", "日本語.png"),
        ("/", "#hash?.png"),
    ]
    .into_iter()
    .enumerate()
    {
        let bytes = png_seeded(5, 5, i as u8);
        let img = t.owner.upload(&id, folder, name, &bytes, "image/png").await;
        assert_eq!(img["filename"], name);
        assert_eq!(img["virtual_folder_path"], folder);
        let got = t
            .owner
            .get(&format!("images/{}", s(&img, "id")))
            .await
            .expect(200);
        assert_eq!(got.bytes, bytes, "{name}");
        t.anon.get(&s(&img, "image_url")).await.expect(200);
        // The name is taken in that folder now.
        t.owner
            .upload_url(&id, folder, name, "image/png")
            .await
            .error(409, "conflict");
    }
    let listing = t
        .owner
        .get("datasets/by-name/names/download")
        .await
        .ok_json(200);
    assert_eq!(listing["items"][0]["filename"], "café ü.png");
    t.stop().await;
}
