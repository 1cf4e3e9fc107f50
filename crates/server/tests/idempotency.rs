//! `Idempotency-Key`: a retried write answers the first response instead of running again.

mod common;

use common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_create_replays_the_first_answer() {
    let t = TestServer::start().await;
    let key = "0123456789abcdef0123456789abcdef";
    let first = t
        .owner
        .post_idem("projects/", &json!({"name": "once"}), key)
        .await
        .expect(201);
    assert!(first.header("idempotent-replayed").is_none());
    let again = t
        .owner
        .post_idem("projects/", &json!({"name": "once"}), key)
        .await
        .expect(201);
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(again.json(), first.json());
    let listed = t.owner.get("datasets/").await.ok_json(200);
    assert_eq!(listed["total"], 1);

    // Without the key (or with a new one) the create runs again and conflicts.
    t.owner
        .post("projects/", &json!({"name": "once"}))
        .await
        .error(409, "conflict");
    t.owner
        .post_idem("projects/", &json!({"name": "once"}), "another-key")
        .await
        .error(409, "conflict");

    // The same key on another path is a client error.
    t.owner
        .post_idem(
            "images/upload-url",
            &json!({"dataset_id": first.json()["project"]["id"], "filename": "a.png"}),
            key,
        )
        .await
        .error(422, "validation_error");
    // Keys belong to the API key that used them.
    let other = t
        .other
        .post_idem("projects/", &json!({"name": "once"}), key)
        .await
        .ok_json(201);
    assert_ne!(other["project"]["id"], first.json()["project"]["id"]);
    // GET and DELETE ignore the header.
    let r = Client::send(
        t.owner
            .request(reqwest::Method::GET, "projects/once")
            .header("Idempotency-Key", key),
    )
    .await;
    r.expect(200);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_register_answers_the_same_image() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("idem").await;
    let id = s(&ds, "id");
    let bytes = png(16, 16);
    let signed = t
        .owner
        .upload_url(&id, "/", "a.png", "image/png")
        .await
        .ok_json(200);
    t.anon
        .put_bytes(&s(&signed, "upload_url"), &bytes, "image/png")
        .await
        .expect(200);
    let reg = Register {
        dataset_id: &id,
        folder: "/",
        filename: "a.png",
        file_size: bytes.len(),
        mime_type: "image/png",
        width: Some(16),
        height: Some(16),
        idempotency_key: Some("fedcba9876543210fedcba9876543210"),
    };
    let first = t.owner.register(&signed, &reg).await.ok_json(201);
    let again = t.owner.register(&signed, &reg).await;
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    let again = again.ok_json(201);
    assert_eq!(again["image_id"], first["image_id"]);
    assert_eq!(t.owner.counts("idem").await.images, 1);

    // A retried annotation save also runs once: previous_count stays what it was.
    let path = format!("annotations/{}", s(&first, "image_id"));
    let body = json!({"annotations": [{"id": "a", "name": "x", "type": "keypoint", "keypoint": {"x": 1, "y": 1}}]});
    let one = t.owner.post_idem(&path, &body, "save-1").await.ok_json(200);
    let two = t.owner.post_idem(&path, &body, "save-1").await.ok_json(200);
    assert_eq!(one, two);
    assert_eq!(two["previous_count"], 0);
    t.stop().await;
}

/// A write whose answer is too large to keep for replay still answers in full the first
/// time; a retry with the same key is refused with 409 instead of running again. A key used
/// again with another body is refused too, and nothing runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_never_runs_a_write_twice() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("big-answer").await;
    let image = t.owner.upload_png(&s(&ds, "id"), "/", "a.png", 1).await;
    // Unknown ids make a failure entry each: an answer of several megabytes.
    let mut image_ids: Vec<String> = (0..60_000).map(|i| format!("{i:032x}")).collect();
    image_ids.push(s(&image, "id"));
    let body = json!({
        "dataset_name": "big-answer",
        "image_ids": image_ids,
        "target_folder_path": "/copies",
        "duplicate_handling": "rename",
    });
    let key = "copy-once";
    let first = t
        .owner
        .post_idem("batch/images/copy", &body, key)
        .await
        .ok_json(200);
    assert!(first.to_string().len() > 4 * 1024 * 1024);
    assert_eq!(
        first["failed_count"],
        60_000,
        "{}",
        &first.to_string()[..200]
    );
    let detail = t
        .owner
        .post_idem("batch/images/copy", &body, key)
        .await
        .error_detail(409, "conflict");
    assert!(
        detail.contains("already ran and answered HTTP 200"),
        "{detail}"
    );
    let copies: Vec<Value> = t
        .owner
        .images("big-answer")
        .await
        .into_iter()
        .filter(|i| i["virtual_folder_path"] == "/copies")
        .collect();
    assert_eq!(copies.len(), 1, "the copy ran once: {copies:?}");

    // The same key with another body: refused, and the other request does not run.
    let small = json!({"name": "first"});
    t.owner
        .post_idem("projects/", &small, "one-key")
        .await
        .expect(201);
    t.owner
        .post_idem("projects/", &json!({"name": "second"}), "one-key")
        .await
        .error(422, "validation_error");
    t.owner.get("projects/second").await.expect(404);
    t.stop().await;
}

/// The same write sent twice at once with one key runs once: the second waits for the
/// first's answer and replays it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_write_sent_twice_at_once_runs_once() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("twice").await;
    let image = t.owner.upload_png(&s(&ds, "id"), "/", "a.png", 1).await;
    // Unknown ids make the copy take a while, and its answer stays small enough to keep.
    let mut image_ids: Vec<String> = (0..15_000).map(|i| format!("{i:032x}")).collect();
    image_ids.push(s(&image, "id"));
    let body = json!({
        "dataset_name": "twice",
        "image_ids": image_ids,
        "target_folder_path": "/copies",
        "duplicate_handling": "rename",
    });
    for round in 0..3 {
        let key = format!("at-once-{round}");
        let (a, b) = tokio::join!(
            t.owner.post_idem("batch/images/copy", &body, &key),
            t.owner.post_idem("batch/images/copy", &body, &key)
        );
        let (a, b) = (a.expect(200), b.expect(200));
        assert_eq!(a.json(), b.json());
        let replays = [&a, &b]
            .iter()
            .filter(|r| r.header("idempotent-replayed").is_some())
            .count();
        assert_eq!(replays, 1, "round {round}: one ran, one replayed");
    }
    let copies = t
        .owner
        .images("twice")
        .await
        .into_iter()
        .filter(|i| i["virtual_folder_path"] == "/copies")
        .count();
    assert_eq!(copies, 3, "one copy a round");
    t.stop().await;
}

/// Inserts `n` images (`img00001`…) straight into the database, each with bytes of its own
/// on disk (unless the bytes go to a bucket): a purge of them then takes a while after its
/// commit, freeing the bytes.
async fn seed_images(t: &TestServer, db: &sqlx::AnyPool, ds_id: &str, n: i64) -> Vec<String> {
    let insert = if t.backend().is_postgres() {
        "INSERT INTO images (id, dataset_seq, folder, filename, blob_hash, file_size, mime_type, \
         created_at, updated_at) SELECT 'img' || lpad(i::text, 5, '0'), \
         (SELECT seq FROM datasets WHERE id = $1), '/', \
         'f' || lpad(i::text, 5, '0') || '.png', decode(lpad(to_hex(i), 64, '0'), 'hex'), 10, \
         'image/png', 1577836800000000, 1577836800000000 \
         FROM generate_series(1, $2) AS i"
    } else {
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2) \
         INSERT INTO images (id, dataset_seq, folder, filename, blob_hash, file_size, mime_type, \
         created_at, updated_at) SELECT printf('img%05d', i), \
         (SELECT seq FROM datasets WHERE id = $1), '/', printf('f%05d.png', i), \
         unhex(printf('%064x', i)), 10, 'image/png', 1577836800000000, 1577836800000000 FROM n"
    };
    sqlx::query(insert)
        .bind(ds_id)
        .bind(n)
        .execute(db)
        .await
        .unwrap();
    if !t.backend().is_s3() {
        for i in 1..=n {
            let path = t.blob_path(&format!("{i:064x}"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"0123456789").unwrap();
        }
    }
    (1..=n).map(|i| format!("img{i:05}")).collect()
}

/// How many images the dataset has rows for.
async fn rows_in(db: &sqlx::AnyPool, ds_id: &str) -> i64 {
    use sqlx::Row;
    sqlx::query("SELECT COUNT(*) AS n FROM images WHERE dataset_seq = (SELECT seq FROM datasets WHERE id = $1)")
        .bind(ds_id)
        .fetch_one(db)
        .await
        .unwrap()
        .try_get("n")
        .unwrap()
}

/// A client that gives up once its write has committed (here: while the purge frees the
/// bytes of 4,000 images) does not stop the request: its answer is kept, and the retry
/// with the same key replays it instead of running the purge again (which would answer 404).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_the_client_gave_up_on_keeps_its_answer_for_the_retry() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("purge").await;
    let ds_id = s(&ds, "id");
    let db = t.db().await;
    const N: i64 = 4000;
    let ids = seed_images(&t, &db, &ds_id, N).await;
    let body = json!({"dataset_name": "purge", "image_ids": ids, "permanent": true});
    let (c, b) = (t.owner.clone(), body.clone());
    let first =
        tokio::spawn(async move { c.post_idem("batch/images/delete", &b, "purge-k").await });
    // The client gives up as soon as the purge is seen committed.
    while rows_in(&db, &ds_id).await > 0 && !first.is_finished() {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    first.abort();
    // The retry waits for the first request's answer if it is still running.
    let retry = t
        .owner
        .post_idem("batch/images/delete", &body, "purge-k")
        .await;
    assert_eq!(
        retry.status,
        200,
        "{}",
        String::from_utf8_lossy(&retry.bytes)
    );
    assert_eq!(retry.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(retry.json()["processed"], N);
    t.stop().await;
}

/// The claim of a keyed write is marked applied by the write's own transaction: once the
/// purge is seen committed, the mark is there too (while the purge is still freeing bytes,
/// before it answers).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_keyed_write_marks_its_claim_applied_as_it_commits() {
    use sqlx::Row;
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("marked").await;
    let ds_id = s(&ds, "id");
    let db = t.db().await;
    let ids = seed_images(&t, &db, &ds_id, 4000).await;
    let body = json!({"dataset_name": "marked", "image_ids": ids, "permanent": true});
    let (c, b) = (t.owner.clone(), body.clone());
    let purge = tokio::spawn(async move { c.post_idem("batch/images/delete", &b, "mark-k").await });
    while rows_in(&db, &ds_id).await > 0 && !purge.is_finished() {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let claim = sqlx::query("SELECT status, applied FROM idempotency WHERE idem_key = 'mark-k'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(claim.try_get::<i64, _>("applied").unwrap(), 1);
    purge.await.unwrap().expect(200);
    // A keyed write that changes nothing (a refused copy) leaves its claim unmarked.
    t.owner
        .post_idem(
            "batch/images/copy",
            &json!({"dataset_name": "nowhere", "image_ids": ["x"], "target_folder_path": "/c"}),
            "refused-k",
        )
        .await
        .expect(404);
    let refused = sqlx::query("SELECT applied FROM idempotency WHERE idem_key = 'refused-k'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(refused.try_get::<i64, _>("applied").unwrap(), 0);
    t.stop().await;
}

/// A claim left by a server that stopped after its write committed but before it kept the
/// answer (recorded applied, not renewed for over two minutes): a retry is refused with 409,
/// saying the write was applied, and the write does not run again. A claim left before the
/// write committed (not applied) lets the retry run it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_stopped_server_runs_only_a_write_that_was_not_applied() {
    use sha2::Digest;
    use sqlx::Row;
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("crashed").await;
    let image = t.owner.upload_png(&s(&ds, "id"), "/", "a.png", 1).await;
    let db = t.db().await;
    // The key's id, from a claim of its own.
    t.owner
        .post_idem("projects/", &json!({"name": "p"}), "first")
        .await
        .expect(201);
    let key_id: String = sqlx::query("SELECT key_id FROM idempotency WHERE idem_key = 'first'")
        .fetch_one(&db)
        .await
        .unwrap()
        .try_get("key_id")
        .unwrap();
    let body = json!({
        "dataset_name": "crashed",
        "image_ids": [s(&image, "id")],
        "target_folder_path": "/copies",
        "duplicate_handling": "rename",
    });
    let hash = hex::encode(sha2::Sha256::digest(serde_json::to_vec(&body).unwrap()));
    let left = |idem: &'static str, applied: i64| {
        sqlx::query(
            "INSERT INTO idempotency (key_id, idem_key, method, path, status, body, body_kept, \
             request_hash, created_at, applied) \
             VALUES ($1, $2, 'POST', '/batch/images/copy', 0, '', 0, $3, \
             '2020-01-01T00:00:00.000000Z', $4)",
        )
        .bind(key_id.clone())
        .bind(idem)
        .bind(hash.clone())
        .bind(applied)
    };
    let copies = || async {
        t.owner
            .images("crashed")
            .await
            .into_iter()
            .filter(|i| i["virtual_folder_path"] == "/copies")
            .count()
    };

    left("applied-k", 1).execute(&db).await.unwrap();
    for _ in 0..2 {
        let refused = t
            .owner
            .post_idem("batch/images/copy", &body, "applied-k")
            .await;
        let said = String::from_utf8_lossy(&refused.bytes).to_string();
        assert_eq!(
            refused.header("idempotent-replayed").as_deref(),
            Some("true"),
            "{said}"
        );
        let detail = refused.error_detail(409, "conflict");
        assert!(
            detail.contains("was applied, but its answer was lost"),
            "{detail}"
        );
    }
    assert_eq!(copies().await, 0, "the applied write did not run again");

    left("unapplied-k", 0).execute(&db).await.unwrap();
    let ran = t
        .owner
        .post_idem("batch/images/copy", &body, "unapplied-k")
        .await
        .ok_json(200);
    assert_eq!(ran["processed"], 1, "{ran}");
    assert_eq!(copies().await, 1, "the write that was not applied ran");
    t.stop().await;
}
