//! Authentication, error bodies, request ids, organisation isolation and rate limits.

mod common;

use common::*;
use pictograph_server::auth::{self, Role};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_unknown_and_revoked_keys_are_401() {
    let t = TestServer::start().await;

    let detail = t
        .anon
        .get("datasets/")
        .await
        .error_detail(401, "unauthorized");
    assert!(detail.contains("X-API-Key"), "{detail}");

    let blank = t.anon.get_with("datasets/", &[("X-API-Key", "   ")]).await;
    blank.error(401, "unauthorized");

    let unknown = t
        .anon
        .with_key("pk_live_0000000000000000000000000000000000000000");
    unknown.get("datasets/").await.error(401, "unauthorized");
    unknown
        .post("projects/", &json!({"name": "x"}))
        .await
        .error(401, "unauthorized");

    // A live key works, with whitespace around it stripped as the client does.
    let key = auth::create_key(&t.app().state.store, "org-a", Role::Member, "unlimited")
        .await
        .unwrap();
    let live = t.anon.with_key(&format!("  {key} "));
    live.get("datasets/").await.expect(200);

    assert!(t
        .app()
        .state
        .store
        .revoke_key(&auth::key_prefix(&key))
        .await
        .unwrap());
    let detail = live
        .get("datasets/")
        .await
        .error_detail(401, "unauthorized");
    assert!(detail.to_lowercase().contains("revoked") || detail.to_lowercase().contains("invalid"));
    // Other keys of the organisation keep working.
    t.owner.get("datasets/").await.expect(200);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_request_id() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("rid").await;
    let img = t.owner.upload_png(&s(&ds, "id"), "/", "a.png", 1).await;

    let signed = t
        .owner
        .upload_url(&s(&ds, "id"), "/", "b.png", "image/png")
        .await
        .ok_json(200);
    let bytes = png(3, 3);
    let put = t
        .anon
        .put_bytes(&s(&signed, "upload_url"), &bytes, "image/png")
        .await;
    let put = if t.backend().is_s3() {
        // The PUT went to the bucket, not to this server: register is the server's answer
        // for the upload.
        put.expect(200);
        let reg = Register {
            dataset_id: &s(&ds, "id"),
            folder: "/",
            filename: "b.png",
            file_size: bytes.len(),
            mime_type: "image/png",
            width: None,
            height: None,
            idempotency_key: None,
        };
        t.owner.register(&signed, &reg).await.expect(201)
    } else {
        put
    };
    let mut seen = std::collections::HashSet::new();
    let responses = vec![
        t.owner.get("datasets/").await,
        t.anon.get("datasets/").await,
        t.owner.get("no/such/endpoint").await,
        t.anon.get("/no-such-root").await,
        t.owner.get(&format!("images/{}", s(&img, "id"))).await,
        t.anon.get(&s(&img, "image_url")).await,
        t.owner.get("datasets/by-name/nope").await,
        put,
    ];
    for r in &responses {
        let rid = r
            .header("x-request-id")
            .unwrap_or_else(|| panic!("no x-request-id on {}", r.status));
        assert!(!rid.is_empty());
        assert!(seen.insert(rid), "request ids are unique per request");
    }
    assert_eq!(responses[2].status, 404);
    assert_eq!(responses[2].json()["error"]["code"], "not_found");

    // A request id sent by the caller is echoed back.
    let r = t
        .owner
        .get_with("datasets/", &[("X-Request-Id", "trace-123")])
        .await;
    assert_eq!(r.header("x-request-id").as_deref(), Some("trace-123"));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_organisations_get_404_not_403() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("private").await;
    let ds_id = s(&ds, "id");
    let img = t.owner.upload_png(&ds_id, "/", "a.png", 1).await;
    let img_id = s(&img, "id");
    t.owner
        .post(
            &format!("annotations/{img_id}"),
            &json!({"annotations": [{"id": "a1", "name": "car", "type": "bbox",
                "bounding_box": {"x": 1.0, "y": 1.0, "w": 2.0, "h": 2.0}}]}),
        )
        .await
        .expect(200);

    let b = &t.other;
    b.get("datasets/by-name/private")
        .await
        .error(404, "not_found");
    b.get(&format!("datasets/{ds_id}"))
        .await
        .error(404, "not_found");
    b.get("datasets/private").await.error(404, "not_found");
    b.get("datasets/by-name/private/download")
        .await
        .error(404, "not_found");
    b.get(&format!("datasets/{ds_id}/download"))
        .await
        .error(404, "not_found");
    b.get("projects/private").await.error(404, "not_found");
    b.patch("projects/private", &json!({"description": "mine"}))
        .await
        .error(404, "not_found");
    b.delete("projects/private").await.error(404, "not_found");
    b.get(&format!("images/{img_id}/metadata"))
        .await
        .error(404, "not_found");
    b.get(&format!("images/{img_id}"))
        .await
        .error(404, "not_found");
    b.delete(&format!("images/{img_id}"))
        .await
        .error(404, "not_found");
    b.delete(&format!("images/{img_id}?permanent=true"))
        .await
        .error(404, "not_found");
    b.get(&format!("annotations/{img_id}"))
        .await
        .error(404, "not_found");
    b.post(
        &format!("annotations/{img_id}"),
        &json!({"annotations": []}),
    )
    .await
    .error(404, "not_found");
    b.delete(&format!("annotations/{img_id}"))
        .await
        .error(404, "not_found");
    b.upload_url(&ds_id, "/", "b.png", "image/png")
        .await
        .error(404, "not_found");
    for op in ["move", "copy", "delete"] {
        b.batch(
            op,
            &json!({"dataset_name": "private", "image_ids": [img_id], "permanent": true}),
        )
        .await
        .error(404, "not_found");
    }
    b.patch(
        "batch/images/update",
        &json!({"dataset_name": "private", "image_ids": [img_id], "updates": {"status": "review"}}),
    )
    .await
    .error(404, "not_found");
    // Even with a dataset of the same name of its own, org B cannot reach org A's images.
    b.create_dataset("private").await;
    b.batch(
        "delete",
        &json!({"dataset_name": "private", "image_ids": [img_id], "permanent": true}),
    )
    .await
    .error(404, "not_found");
    let listing = b.get("datasets/").await.ok_json(200);
    assert_eq!(listing["datasets"].as_array().unwrap().len(), 1);

    // Nothing happened to org A's data.
    let still = t.owner.image(&img_id).await;
    assert_eq!(still["is_archived"], false);
    assert_eq!(still["annotation_count"], 1);
    assert_eq!(still["virtual_folder_path"], "/");
    assert_eq!(t.owner.counts("private").await.images, 1);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_tier_is_limited_per_organisation_with_retry_after() {
    let t = TestServer::start_with(|c| c.rate_limits.free = 5).await;
    let free = t.key("org-a", Role::Owner, "free").await;
    let same_org_free = t.key("org-a", Role::Member, "free").await;
    let other_free = t.key("org-b", Role::Owner, "free").await;

    for i in 0..5u32 {
        let r = free.get("datasets/").await.expect(200);
        assert_eq!(r.header("x-ratelimit-limit").as_deref(), Some("5"));
        assert_eq!(
            r.header("x-ratelimit-remaining"),
            Some((4 - i).to_string()),
            "request {i}"
        );
    }
    let r = free.get("datasets/").await;
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After on 429")
        .parse()
        .expect("Retry-After is an integer");
    assert!(retry > 120, "the client must not wait silently: {retry}");
    assert!(retry <= 3600, "{retry}");
    assert_eq!(r.header("x-ratelimit-limit").as_deref(), Some("5"));
    assert_eq!(r.header("x-ratelimit-remaining").as_deref(), Some("0"));
    r.error(429, "rate_limited");
    // Writes are refused too.
    free.post("projects/", &json!({"name": "late"}))
        .await
        .error(429, "rate_limited");
    assert_eq!(t.owner.get("projects/late").await.status, 404);

    // The organisation's other keys of the tier share the budget; another organisation has
    // its own; unlimited keys are never limited.
    same_org_free
        .get("datasets/")
        .await
        .error(429, "rate_limited");
    other_free.get("datasets/").await.expect(200);
    for _ in 0..30 {
        t.owner.get("datasets/").await.expect(200);
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_below_the_requirement_get_403() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("roles").await;
    let img = t.owner.upload_png(&s(&ds, "id"), "/", "a.png", 1).await;
    let img_id = s(&img, "id");

    t.member
        .delete("projects/roles")
        .await
        .error(403, "forbidden");
    t.member
        .batch(
            "delete",
            &json!({"dataset_name": "roles", "image_ids": [img_id], "permanent": true}),
        )
        .await
        .error(403, "forbidden");
    // Nothing was removed.
    assert_eq!(t.owner.image(&img_id).await["is_archived"], false);
    // Members may create, update, archive.
    t.member.create_dataset("by-member").await;
    t.member
        .patch("projects/by-member", &json!({"description": "d"}))
        .await
        .expect(200);
    t.member
        .batch(
            "delete",
            &json!({"dataset_name": "roles", "image_ids": [img_id], "permanent": false}),
        )
        .await
        .expect(200);
    t.stop().await;
}
