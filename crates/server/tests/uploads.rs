//! The upload flow: signed URL, the unauthenticated PUT, register, and what each step refuses.

mod common;

use common::*;
use serde_json::{json, Value};

/// A register call for `bytes` with unknown dimensions.
fn reg<'a>(
    dataset_id: &'a str,
    folder: &'a str,
    filename: &'a str,
    bytes: &[u8],
    mime: &'a str,
) -> Register<'a> {
    Register {
        dataset_id,
        folder,
        filename,
        file_size: bytes.len(),
        mime_type: mime,
        width: None,
        height: None,
        idempotency_key: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_url_answers_the_four_keys_and_a_usable_url() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("u").await;
    let id = s(&ds, "id");
    let signed = t
        .member
        .upload_url(&id, "/cars", "a.png", "image/png")
        .await
        .ok_json(200);
    let url = s(&signed, "upload_url");
    let path = s(&signed, "gcs_path");
    if t.backend().is_s3() {
        // A presigned URL straight into the bucket: the server never sees the bytes.
        let s3 = t.s3();
        let object = format!(
            "{}/{}/{}/uploads/{path}?",
            s3.endpoint, s3.bucket, s3.prefix
        );
        assert!(url.starts_with(&object), "presigned URL of {object}: {url}");
        assert!(url.contains("X-Amz-Signature="), "{url}");
        assert!(!url.starts_with(&t.base), "{url}");
    } else {
        assert!(
            url.starts_with(&format!("{}/", t.base)),
            "absolute URL on this server: {url}"
        );
        assert!(url.contains("sig="), "{url}");
    }
    assert!(!s(&signed, "gcs_bucket").is_empty());
    assert_eq!(
        s(&signed, "gcs_uri"),
        format!("gs://{}/{path}", s(&signed, "gcs_bucket"))
    );
    assert!(signed["expires_in"].as_u64().unwrap() > 0);

    let bytes = png(40, 30);
    t.anon
        .put_bytes(&url, &bytes, "image/png")
        .await
        .expect(200);
    if t.backend().is_s3() {
        let staged = t.staged_uploads();
        assert_eq!(staged.len(), 1, "the PUT landed in the bucket: {staged:?}");
        assert_eq!(std::fs::read(&staged[0]).unwrap(), bytes);
    }
    let r = t
        .member
        .register(&signed, &reg(&id, "/cars", "a.png", &bytes, "image/png"))
        .await
        .ok_json(201);
    assert!(t.blob_stored(&sha256_hex(&bytes)));
    assert!(t.staged_uploads().is_empty(), "{:?}", t.staged_uploads());
    let image_id = s(&r, "image_id");
    assert_eq!(r["image"]["id"], image_id.as_str());
    let img = t.member.image(&image_id).await;
    assert_eq!(img["filename"], "a.png");
    assert_eq!(img["virtual_folder_path"], "/cars");
    assert_eq!(img["file_size"], bytes.len());
    assert_eq!(
        (img["width"].as_u64(), img["height"].as_u64()),
        (Some(40), Some(30))
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_url_refusals() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("u").await;
    let id = s(&ds, "id");
    t.owner.upload_png(&id, "/cars", "taken.png", 1).await;

    // Unknown dataset (a UUID, or anything else).
    let unknown = uuid::Uuid::new_v4().to_string();
    t.owner
        .upload_url(&unknown, "/", "a.png", "image/png")
        .await
        .error(404, "not_found");
    t.owner
        .upload_url("not-a-uuid", "/", "a.png", "image/png")
        .await
        .error(404, "not_found");

    // The name is taken in that folder, whatever the folder spelling.
    for folder in ["/cars", "cars", "/cars/", "//cars"] {
        let detail = t
            .owner
            .upload_url(&id, folder, "taken.png", "image/png")
            .await
            .error_detail(409, "conflict");
        assert!(detail.contains("already exists"), "{detail}");
    }
    // ... but free in another folder.
    t.owner
        .upload_url(&id, "/", "taken.png", "image/png")
        .await
        .expect(200);
    t.owner
        .upload_url(&id, "/bikes", "taken.png", "image/png")
        .await
        .expect(200);

    // Unsupported types, by extension or declared type.
    for (name, ct) in [
        ("doc.pdf", "application/pdf"),
        ("logo.svg", "image/svg+xml"),
        ("doc.pdf", ""),
        ("noext", "image/png"),
        ("a.jpg", "application/pdf"),
        ("a.png", "image/jpeg"),
        ("a.jpg", "text/plain"),
    ] {
        let detail = t
            .owner
            .upload_url(&id, "/", name, ct)
            .await
            .error_detail(415, "unsupported_media_type");
        assert!(!detail.is_empty(), "{name} {ct}");
    }
    // Every supported extension is accepted, in any case.
    for (name, ct) in [
        ("a.jpg", "image/jpeg"),
        ("a.JPEG", "image/jpeg"),
        ("a.png", "image/png"),
        ("a.webp", "image/webp"),
        ("a.bmp", "image/bmp"),
        ("a.tif", "image/tiff"),
        ("a.tiff", "image/tiff"),
        ("a.gif", "image/gif"),
        ("a.heic", "image/heic"),
    ] {
        t.owner.upload_url(&id, "/", name, ct).await.expect(200);
    }

    // Bad file names.
    for name in ["../x.jpg", "a/b.jpg", "a\\b.jpg", "..", " "] {
        t.owner
            .upload_url(&id, "/", name, "image/jpeg")
            .await
            .error(422, "validation_error");
    }
    // Bad folders.
    t.owner
        .upload_url(&id, "/a/../b", "x.jpg", "image/jpeg")
        .await
        .error(422, "validation_error");
    // Missing fields.
    t.owner
        .post(
            "images/upload-url",
            &json!({"dataset_id": id, "content_type": "image/png"}),
        )
        .await
        .error(422, "validation_error");
    t.owner
        .post("images/upload-url", &json!({"filename": "a.png"}))
        .await
        .error(422, "validation_error");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_put_refuses_bad_signatures() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("u").await;
    let id = s(&ds, "id");
    let signed = t
        .owner
        .upload_url(&id, "/", "a.png", "image/png")
        .await
        .ok_json(200);
    let url = s(&signed, "upload_url");
    let upload_id = s(&signed, "gcs_path");
    let bytes = png(4, 4);
    if t.backend().is_s3() {
        s3_put_refuses_bad_signatures(&t, &id, &url, &upload_id, &bytes).await;
    } else {
        disk_put_refuses_bad_signatures(&t, &id, &url, &upload_id, &bytes).await;
    }

    // Nothing was stored: register finds no bytes, and the real URL still works.
    t.owner
        .register(&signed, &reg(&id, "/", "a.png", &bytes, "image/png"))
        .await
        .error(422, "validation_error");
    assert!(t.blob_files().is_empty());
    assert!(t.staged_uploads().is_empty(), "{:?}", t.staged_uploads());
    t.anon
        .put_bytes(&url, &bytes, "image/png")
        .await
        .expect(200);
    t.owner
        .register(&signed, &reg(&id, "/", "a.png", &bytes, "image/png"))
        .await
        .expect(201);
    t.stop().await;
}

/// Disk: the server checks the PUT's signature itself and answers 403 `forbidden`.
async fn disk_put_refuses_bad_signatures(
    t: &TestServer,
    id: &str,
    url: &str,
    upload_id: &str,
    bytes: &[u8],
) {
    let (path, query) = url.split_once('?').unwrap();
    let param = |k: &str| {
        query
            .split('&')
            .find_map(|p| p.strip_prefix(&format!("{k}=")))
            .unwrap()
            .to_string()
    };
    let (expires, sig) = (param("expires"), param("sig"));

    // One flipped hex digit.
    let mut tampered = sig.clone().into_bytes();
    tampered[0] = if tampered[0] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap();
    let signer = &t.app().state.signer;
    let past = chrono::Utc::now().timestamp() - 10;
    let later: i64 = expires.parse::<i64>().unwrap() + 1;
    let bad_urls = [
        format!("{path}?expires={expires}&sig={tampered}"),
        format!("{path}?expires={expires}&sig=zz"),
        format!("{path}?expires={expires}&sig="),
        // The expiry is part of what is signed.
        format!("{path}?expires={later}&sig={sig}"),
        // A correctly signed but expired URL.
        format!(
            "{path}?expires={past}&sig={}",
            signer.sign("PUT", upload_id, past)
        ),
        // A download signature is not an upload signature.
        format!(
            "{path}?expires={expires}&sig={}",
            signer.sign("GET", upload_id, expires.parse().unwrap())
        ),
    ];
    for bad in &bad_urls {
        t.anon
            .put_bytes(bad, bytes, "image/png")
            .await
            .error(403, "forbidden");
    }
    // Another upload's signature does not open this one.
    let other = t
        .owner
        .upload_url(id, "/", "b.png", "image/png")
        .await
        .ok_json(200);
    let other_sig = s(&other, "upload_url")
        .split_once("sig=")
        .unwrap()
        .1
        .to_string();
    let other_exp = s(&other, "upload_url")
        .split_once("expires=")
        .unwrap()
        .1
        .split('&')
        .next()
        .unwrap()
        .to_string();
    t.anon
        .put_bytes(
            &format!("{path}?expires={other_exp}&sig={other_sig}"),
            bytes,
            "image/png",
        )
        .await
        .error(403, "forbidden");
    // No signature at all is refused too.
    let r = t.anon.put_bytes(path, bytes, "image/png").await;
    assert!(r.status.is_client_error(), "{}", r.status);
}

/// S3: the PUT goes straight to the bucket, which checks the presigned URL's signature and
/// answers its own 403.
async fn s3_put_refuses_bad_signatures(
    t: &TestServer,
    id: &str,
    url: &str,
    upload_id: &str,
    bytes: &[u8],
) {
    use std::time::Duration;
    let s3 = t.s3();
    let key = format!("uploads/{upload_id}");
    let (path, query) = url.split_once('?').unwrap();
    let param = |k: &str| {
        query
            .split('&')
            .find_map(|p| p.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} in {url}"))
            .to_string()
    };
    // The URL with one query parameter replaced.
    let with = |k: &str, v: &str| {
        let query: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((name, _)) if name == k => format!("{k}={v}"),
                _ => p.to_string(),
            })
            .collect();
        format!("{path}?{}", query.join("&"))
    };
    let sig = param("X-Amz-Signature");
    let mut tampered = sig.clone().into_bytes();
    tampered[0] = if tampered[0] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap();
    let expires: u64 = param("X-Amz-Expires").parse().unwrap();
    let signed_at =
        chrono::NaiveDateTime::parse_from_str(&param("X-Amz-Date"), "%Y%m%dT%H%M%SZ").unwrap();
    let earlier = (signed_at - chrono::Duration::seconds(60))
        .format("%Y%m%dT%H%M%SZ")
        .to_string();
    let bad_urls = [
        with("X-Amz-Signature", &tampered),
        // The lifetime and the signing time are part of what is signed.
        with("X-Amz-Expires", &(expires + 1).to_string()),
        with("X-Amz-Date", &earlier),
        // A download signature is not an upload signature.
        s3.presign("GET", &key, Duration::from_secs(3600)).await,
    ];
    for bad in &bad_urls {
        t.anon
            .put_bytes(bad, bytes, "image/png")
            .await
            .s3_error(403, "SignatureDoesNotMatch");
    }
    // Signatures that are not even hex.
    for malformed in ["zz", ""] {
        t.anon
            .put_bytes(&with("X-Amz-Signature", malformed), bytes, "image/png")
            .await
            .s3_error(400, "InvalidRequest");
    }
    // Another upload's signature does not open this one.
    let other = t
        .owner
        .upload_url(id, "/", "b.png", "image/png")
        .await
        .ok_json(200);
    let other_query = s(&other, "upload_url")
        .split_once('?')
        .unwrap()
        .1
        .to_string();
    t.anon
        .put_bytes(&format!("{path}?{other_query}"), bytes, "image/png")
        .await
        .s3_error(403, "SignatureDoesNotMatch");
    // A correctly signed but expired URL.
    let short = s3.presign("PUT", &key, Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    t.anon
        .put_bytes(&short, bytes, "image/png")
        .await
        .s3_error(403, "AccessDenied");
    // No signature at all is refused too.
    t.anon
        .put_bytes(path, bytes, "image/png")
        .await
        .s3_error(403, "AccessDenied");
    assert!(t.bucket_objects().is_empty(), "{:?}", t.bucket_objects());
}

/// Checks that a PUT of more than the upload limit is refused: with 413 at the PUT on disk; on
/// S3 the bucket takes any size, so register answers 413 and removes the staged object.
async fn refused_as_too_large(t: &TestServer, put: Resp, signed: &Value, r: &Register<'_>) {
    let stored = t.blob_files();
    if t.backend().is_s3() {
        put.expect(200);
        assert_eq!(t.staged_uploads().len(), 1, "{:?}", t.staged_uploads());
        t.owner
            .register(signed, r)
            .await
            .error(413, "payload_too_large");
        assert!(t.staged_uploads().is_empty(), "{:?}", t.staged_uploads());
    } else {
        put.error(413, "payload_too_large");
    }
    assert_eq!(t.blob_files(), stored, "nothing new is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_puts_are_413_with_or_without_content_length() {
    let t = TestServer::start_with(|c| c.max_upload_bytes = 1000).await;
    let ds = t.owner.create_dataset("small").await;
    let id = s(&ds, "id");
    let big = png(200, 200);
    assert!(big.len() > 1000);

    // Content-Length over the limit.
    let signed = t
        .owner
        .upload_url(&id, "/", "big.png", "image/png")
        .await
        .ok_json(200);
    let url = s(&signed, "upload_url");
    let put = t.anon.put_bytes(&url, &big, "image/png").await;
    refused_as_too_large(
        &t,
        put,
        &signed,
        &reg(&id, "/", "big.png", &big, "image/png"),
    )
    .await;

    // Chunked body, no Content-Length.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(300).map(|c| Ok(c.to_vec())).collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let r = Client::send(
        reqwest::Client::new()
            .put(&url)
            .header("Content-Type", "image/png")
            .body(body),
    )
    .await;
    refused_as_too_large(&t, r, &signed, &reg(&id, "/", "big.png", &big, "image/png")).await;

    // A client still sending megabytes after the limit reads the refusal, not a reset.
    let mut huge = big.clone();
    huge.resize(4 * 1024 * 1024, 0);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        huge.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let r = Client::send(
        reqwest::Client::new()
            .put(&url)
            .header("Content-Type", "image/png")
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks))),
    )
    .await;
    refused_as_too_large(&t, r, &signed, &reg(&id, "/", "big.png", &big, "image/png")).await;

    // Nothing was kept: register has no bytes to use.
    t.owner
        .register(&signed, &reg(&id, "/", "big.png", &big, "image/png"))
        .await
        .error(422, "validation_error");
    assert!(t.blob_files().is_empty(), "{:?}", t.blob_files());
    assert!(t.staged_uploads().is_empty(), "{:?}", t.staged_uploads());
    assert!(
        std::fs::read_dir(t.dir.path().join("tmp"))
            .unwrap()
            .next()
            .is_none(),
        "partial uploads are cleaned up"
    );

    // Exactly the limit is allowed; one byte more is not (trailing bytes after a PNG's
    // end are still a PNG).
    let mut exact = png(4, 4);
    exact.resize(1000, 0);
    let done = t
        .owner
        .upload(&id, "/", "exact.png", &exact, "image/png")
        .await;
    assert_eq!(done["file_size"], 1000);
    let mut over = exact.clone();
    over.push(0);
    let signed_over = t
        .owner
        .upload_url(&id, "/", "over.png", "image/png")
        .await
        .ok_json(200);
    let put = t
        .anon
        .put_bytes(&s(&signed_over, "upload_url"), &over, "image/png")
        .await;
    refused_as_too_large(
        &t,
        put,
        &signed_over,
        &reg(&id, "/", "over.png", &over, "image/png"),
    )
    .await;

    // A file under the limit goes through, chunked or not.
    let small = png(4, 4);
    assert!(small.len() < 1000);
    t.owner
        .upload(&id, "/", "small.png", &small, "image/png")
        .await;
    let signed = t
        .owner
        .upload_url(&id, "/", "chunked.png", "image/png")
        .await
        .ok_json(200);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        small.chunks(7).map(|c| Ok(c.to_vec())).collect();
    let r = Client::send(
        reqwest::Client::new()
            .put(s(&signed, "upload_url"))
            .header("Content-Type", "image/png")
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks))),
    )
    .await;
    r.expect(200);
    let img = t
        .owner
        .register(&signed, &reg(&id, "/", "chunked.png", &small, "image/png"))
        .await
        .ok_json(201);
    assert_eq!(img["image"]["file_size"], small.len());
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_of_bytes_that_do_not_match_is_415_and_register_then_fails() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("u").await;
    let id = s(&ds, "id");
    let pngb = png(10, 10);
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "text.png",
            "image/png",
            b"definitely not an image".to_vec(),
            "image/png",
        ),
        ("empty.png", "image/png", Vec::new(), "image/png"),
        // PNG bytes to a URL signed for a JPEG.
        ("photo.jpg", "image/jpeg", pngb.clone(), "image/jpeg"),
        // Declaring another type than the one signed.
        ("photo2.jpg", "image/jpeg", jpeg(10, 10), "image/png"),
        // A PDF renamed.
        (
            "doc.png",
            "image/png",
            b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec(),
            "image/png",
        ),
    ];
    for (name, signed_ct, bytes, put_ct) in cases {
        let signed = t
            .owner
            .upload_url(&id, "/", name, signed_ct)
            .await
            .ok_json(200);
        let put = t
            .anon
            .put_bytes(&s(&signed, "upload_url"), &bytes, put_ct)
            .await;
        if t.backend().is_s3() {
            // The bucket takes any bytes; register checks them and removes the object.
            put.expect(200);
            assert_eq!(t.staged_uploads().len(), 1, "{name}");
            t.owner
                .register(&signed, &reg(&id, "/", name, &bytes, signed_ct))
                .await
                .error(415, "unsupported_media_type");
            assert!(
                t.staged_uploads().is_empty(),
                "{name}: {:?}",
                t.staged_uploads()
            );
        } else {
            put.error(415, "unsupported_media_type");
        }
        let detail = t
            .owner
            .register(&signed, &reg(&id, "/", name, &bytes, signed_ct))
            .await
            .error_detail(422, "validation_error");
        assert!(detail.contains("PUT"), "{detail}");
    }
    assert!(t.blob_files().is_empty(), "{:?}", t.blob_files());
    assert_eq!(t.owner.counts("u").await.images, 0);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_needs_the_put_and_consumes_the_upload() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("u").await;
    let id = s(&ds, "id");
    let bytes = png(12, 12);
    let signed = t
        .owner
        .upload_url(&id, "/", "a.png", "image/png")
        .await
        .ok_json(200);
    let url = s(&signed, "upload_url");
    let mut r = reg(&id, "/", "a.png", &bytes, "image/png");

    // Before the PUT.
    t.owner
        .register(&signed, &r)
        .await
        .error(422, "validation_error");
    t.anon
        .put_bytes(&url, &bytes, "image/png")
        .await
        .expect(200);

    // Another organisation cannot register it.
    t.other.register(&signed, &r).await.error(404, "not_found");
    // The dataset must be the one the URL was made for.
    let elsewhere = t.owner.create_dataset("elsewhere").await;
    let wrong = Register {
        dataset_id: elsewhere["id"].as_str().unwrap(),
        ..reg(&id, "/", "a.png", &bytes, "image/png")
    };
    t.owner
        .register(&signed, &wrong)
        .await
        .error(422, "validation_error");
    // An unknown upload path.
    let mut bogus = signed.clone();
    bogus["gcs_path"] = json!("0123456789abcdef0123456789abcdef");
    t.owner.register(&bogus, &r).await.error(404, "not_found");

    r.idempotency_key = Some("first-attempt-key");
    let first = t.owner.register(&signed, &r).await.ok_json(201);
    // A second register with another key finds the upload consumed.
    r.idempotency_key = Some("second-attempt-key");
    t.owner.register(&signed, &r).await.error(404, "not_found");
    r.idempotency_key = None;
    t.owner.register(&signed, &r).await.error(404, "not_found");
    // So does a PUT to the used URL.
    let put = t.anon.put_bytes(&url, &bytes, "image/png").await;
    if t.backend().is_s3() {
        // The bucket cannot know the upload was used, but nothing comes of the object.
        put.expect(200);
        t.owner.register(&signed, &r).await.error(404, "not_found");
    } else {
        put.error(404, "not_found");
    }
    assert_eq!(t.blob_files().len(), 1, "{:?}", t.blob_files());

    assert_eq!(t.owner.counts("u").await.images, 1);
    let img = t.owner.image(&s(&first, "image_id")).await;
    assert_eq!(img["status"], "new");
    assert_eq!(img["is_archived"], false);
    t.stop().await;
}

/// An upload whose dataset is deleted after its URL was signed (which drops the pending
/// upload) takes no bytes: the PUT to the server is 404 (on S3 the bucket takes the PUT and
/// register refuses it), and nothing is attached or kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_for_an_upload_dropped_after_signing_is_refused() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("gone").await;
    let id = s(&ds, "id");
    let bytes = png(9, 9);
    let signed = t
        .owner
        .upload_url(&id, "/", "a.png", "image/png")
        .await
        .ok_json(200);
    t.owner.delete(&format!("datasets/{id}")).await.ok_json(200);
    let put = t
        .anon
        .put_bytes(&s(&signed, "upload_url"), &bytes, "image/png")
        .await;
    let r = reg(&id, "/", "a.png", &bytes, "image/png");
    if t.backend().is_s3() {
        put.expect(200);
        t.owner.register(&signed, &r).await.error(404, "not_found");
    } else {
        let refused = put.error(404, "not_found");
        assert!(
            refused["detail"]
                .as_str()
                .is_some_and(|d| d.contains("Upload not found")),
            "{refused}"
        );
    }
    let upload_id = s(&signed, "upload_id");
    let pending = t.app().state.store.pending_upload(&upload_id).await;
    assert!(pending.unwrap().is_none(), "the upload stays dropped");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_upload_urls_are_refused() {
    let t = TestServer::start_with(|c| c.url_ttl_secs = 1).await;
    let ds = t.owner.create_dataset("u").await;
    let id = s(&ds, "id");
    let bytes = png(5, 5);
    let put_in_time = t
        .owner
        .upload_url(&id, "/", "a.png", "image/png")
        .await
        .ok_json(200);
    t.anon
        .put_bytes(&s(&put_in_time, "upload_url"), &bytes, "image/png")
        .await
        .expect(200);
    let too_late = t
        .owner
        .upload_url(&id, "/", "b.png", "image/png")
        .await
        .ok_json(200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;

    let put = t
        .anon
        .put_bytes(&s(&too_late, "upload_url"), &bytes, "image/png")
        .await;
    if t.backend().is_s3() {
        put.s3_error(403, "AccessDenied");
        assert_eq!(t.staged_uploads().len(), 1, "only the PUT in time landed");
    } else {
        put.error(403, "forbidden");
    }
    t.owner
        .register(&put_in_time, &reg(&id, "/", "a.png", &bytes, "image/png"))
        .await
        .error(404, "not_found");
    assert_eq!(t.owner.counts("u").await.images, 0);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dimensions_are_read_server_side_for_every_format() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("formats").await;
    let id = s(&ds, "id");
    let cases: Vec<(&str, &str, Vec<u8>, u64, u64)> = vec![
        ("a.png", "image/png", png(41, 31), 41, 31),
        ("a.jpg", "image/jpeg", jpeg(42, 32), 42, 32),
        ("a.jpeg", "image/jpeg", jpeg(17, 9), 17, 9),
        ("a.gif", "image/gif", gif(43, 33), 43, 33),
        ("a.bmp", "image/bmp", bmp(44, 34), 44, 34),
        ("a.tif", "image/tiff", tiff(45, 35), 45, 35),
        ("a.webp", "image/webp", webp(46, 36), 46, 36),
        // Larger than the first 64 KiB the server reads.
        ("big.png", "image/png", png(400, 300), 400, 300),
        ("big.jpg", "image/jpeg", jpeg(1200, 900), 1200, 900),
        ("big.webp", "image/webp", webp(300, 250), 300, 250),
        ("big.bmp", "image/bmp", bmp(200, 150), 200, 150),
        ("big.gif", "image/gif", gif(300, 250), 300, 250),
    ];
    for (name, ct, bytes, w, h) in &cases {
        let img = t.owner.upload(&id, "/", name, bytes, ct).await;
        assert_eq!(img["mime_type"], *ct, "{name}");
        assert_eq!(img["file_size"], bytes.len(), "{name}");
        assert_eq!(
            (img["width"].as_u64(), img["height"].as_u64()),
            (Some(*w), Some(*h)),
            "{name}: {img}"
        );
        let got = t
            .owner
            .get(&format!("images/{}", s(&img, "id")))
            .await
            .expect(200);
        assert_eq!(&got.bytes, bytes, "{name}");
        assert_eq!(got.header("content-type").as_deref(), Some(*ct));
    }
    // Dimensions the client sends are used only when the server could not read any; the
    // server's own reading wins.
    let bytes = png(20, 10);
    let signed = t
        .owner
        .upload_url(&id, "/", "claimed.png", "image/png")
        .await
        .ok_json(200);
    t.anon
        .put_bytes(&s(&signed, "upload_url"), &bytes, "image/png")
        .await
        .expect(200);
    let r = Register {
        width: Some(999),
        height: Some(999),
        ..reg(&id, "/", "claimed.png", &bytes, "image/png")
    };
    let v = t.owner.register(&signed, &r).await.ok_json(201);
    assert_eq!(
        (v["image"]["width"].as_u64(), v["image"]["height"].as_u64()),
        (Some(20), Some(10))
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_tiff_dimensions_are_read_server_side() {
    // A TIFF whose directory comes after more than 64 KiB of pixel data.
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("tiff").await;
    let bytes = tiff(300, 200);
    assert!(bytes.len() > 64 * 1024);
    let img = t
        .owner
        .upload(&s(&ds, "id"), "/", "big.tiff", &bytes, "image/tiff")
        .await;
    assert_eq!(
        (img["width"].as_u64(), img["height"].as_u64()),
        (Some(300), Some(200)),
        "{img}"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heic_is_converted_to_png() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("heic").await;
    let img = t
        .owner
        .upload(
            &s(&ds, "id"),
            "/phone",
            "photo.heic",
            HEIC_320X240,
            "image/heic",
        )
        .await;
    assert_eq!(img["mime_type"], "image/png");
    assert_eq!(img["filename"], "photo.heic");
    assert_eq!(
        (img["width"].as_u64(), img["height"].as_u64()),
        (Some(320), Some(240))
    );
    let got = t
        .owner
        .get(&format!("images/{}", s(&img, "id")))
        .await
        .expect(200);
    assert!(got.bytes.starts_with(PNG_SIGNATURE));
    assert_eq!(got.header("content-type").as_deref(), Some("image/png"));
    assert_eq!(img["file_size"], got.bytes.len());
    let decoded = image::load_from_memory(&got.bytes).expect("a valid PNG");
    assert_eq!((decoded.width(), decoded.height()), (320, 240));
    // Only the PNG is kept.
    assert_eq!(t.blob_files().len(), 1);
    assert!(t.blob_stored(&sha256_hex(&got.bytes)));
    assert_eq!(
        t.owner.counts("heic").await.total_size,
        got.bytes.len() as i64
    );
    t.stop().await;
}

/// Many PUTs at once, and one to an upload registered before: each stores its own bytes
/// on its own upload, and the registered one is refused (by the server's own PUT URLs). On
/// PostgreSQL the PUTs' reads of their pending uploads are answered by shared statements,
/// which this checks happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_each_store_their_own_bytes() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("many-puts").await;
    let id = s(&ds, "id");
    let done = t
        .owner
        .upload_url(&id, "/", "done.png", "image/png")
        .await
        .ok_json(200);
    let done_bytes = png_seeded(7, 7, 200);
    t.anon
        .put_bytes(&s(&done, "upload_url"), &done_bytes, "image/png")
        .await
        .expect(200);
    let registered = t
        .owner
        .register(&done, &reg(&id, "/", "done.png", &done_bytes, "image/png"))
        .await;
    assert_eq!(registered.status.as_u16(), 201);
    let before = t.app().state.store.pending_gather_stats();

    // Each file is as wide as its number plus 8: its image's width tells whose bytes it got.
    let files: Vec<(String, Vec<u8>)> = (0..64u8)
        .map(|n| (format!("f{n}.png"), png_seeded(8 + u32::from(n), 6, n)))
        .collect();
    let mut signed = Vec::new();
    for (name, _) in &files {
        let url = t.owner.upload_url(&id, "/", name, "image/png").await;
        signed.push(url.ok_json(200));
    }
    let urls: Vec<String> = signed.iter().map(|v| s(v, "upload_url")).collect();
    // As if another server had signed them: each PUT reads its upload.
    t.app().state.store.forget_handed_uploads();
    let puts = files
        .iter()
        .zip(&urls)
        .map(|((_, bytes), url)| t.anon.put_bytes(url, bytes, "image/png"));
    let done_url = s(&done, "upload_url");
    let again = t.anon.put_bytes(&done_url, &done_bytes, "image/png");
    let (answers, again) = tokio::join!(futures::future::join_all(puts), again);
    for answer in answers {
        answer.expect(200);
    }
    // With S3 the URL is the bucket's own (presigned), which takes the PUT; register, the
    // server's part, refuses that upload then, as it is consumed.
    if !t.backend().is_s3() {
        again.error(404, "not_found");
    }

    for (n, ((name, bytes), signed)) in files.iter().zip(&signed).enumerate() {
        let r = t
            .owner
            .register(signed, &reg(&id, "/", name, bytes, "image/png"))
            .await;
        assert_eq!(r.status.as_u16(), 201, "{name}");
        let image = t.owner.image(&s(&r.json(), "image_id")).await;
        assert_eq!(image["filename"], name.as_str());
        assert_eq!(
            image["width"],
            8 + n as u64,
            "{name} holds another file's bytes"
        );
    }

    let after = t.app().state.store.pending_gather_stats();
    // With S3 the PUTs went to the bucket: the server read no pending upload for them.
    if t.backend().is_postgres() && !t.backend().is_s3() {
        let (before, after) = (before.expect("gathered"), after.expect("gathered"));
        let reads = after.reads - before.reads;
        let statements = after.statements - before.statements;
        assert!(reads >= 65, "the PUTs' reads were not gathered: {reads}");
        assert!(
            statements < reads,
            "every PUT's read took a statement of its own: {statements} for {reads}"
        );
    } else if !t.backend().is_postgres() {
        assert_eq!(after, None);
    }

    // The PUT of an upload this server just signed reads nothing: it was kept in memory.
    if t.backend().is_postgres() && !t.backend().is_s3() {
        let fresh = t.owner.upload_url(&id, "/", "fresh.png", "image/png").await;
        let fresh = fresh.ok_json(200);
        let bytes = png_seeded(5, 5, 99);
        t.anon
            .put_bytes(&s(&fresh, "upload_url"), &bytes, "image/png")
            .await
            .expect(200);
        let last = t
            .app()
            .state
            .store
            .pending_gather_stats()
            .expect("gathered");
        assert_eq!(last.reads, after.expect("gathered").reads);
        let r = reg(&id, "/", "fresh.png", &bytes, "image/png");
        t.owner.register(&fresh, &r).await.expect(201);
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_uploads_of_one_name_register_once() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("race").await;
    let id = s(&ds, "id");
    let (a, b) = (png_seeded(9, 9, 1), png_seeded(9, 9, 2));
    let sa = t
        .owner
        .upload_url(&id, "/x", "same.png", "image/png")
        .await
        .ok_json(200);
    let sb = t
        .owner
        .upload_url(&id, "x", "same.png", "image/png")
        .await
        .ok_json(200);
    t.anon
        .put_bytes(&s(&sa, "upload_url"), &a, "image/png")
        .await
        .expect(200);
    t.anon
        .put_bytes(&s(&sb, "upload_url"), &b, "image/png")
        .await
        .expect(200);

    let ra = reg(&id, "/x", "same.png", &a, "image/png");
    let rb = reg(&id, "/x", "same.png", &b, "image/png");
    let (first, second) = tokio::join!(t.owner.register(&sa, &ra), t.member.register(&sb, &rb));
    let mut statuses = [first.status.as_u16(), second.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "exactly one wins");
    let loser = if first.status == 409 { first } else { second };
    let detail = loser.error_detail(409, "conflict");
    assert!(detail.contains("already exists"), "{detail}");
    assert_eq!(t.owner.counts("race").await.images, 1);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_bytes_are_stored_once() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("dedupe").await;
    let id = s(&ds, "id");
    let bytes = jpeg(30, 30);
    let a = t
        .owner
        .upload(&id, "/", "one.jpg", &bytes, "image/jpeg")
        .await;
    let b = t
        .owner
        .upload(&id, "/other", "two.jpg", &bytes, "image/jpeg")
        .await;
    assert_ne!(a["id"], b["id"]);
    let files = t.blob_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let hash = sha256_hex(&bytes);
    if t.backend().is_s3() {
        let key = format!("suite/blobs/{}/{}/{hash}", &hash[..2], &hash[2..4]);
        assert_eq!(t.bucket_objects(), [key], "one object, under its hash");
        assert_eq!(files[0], t.blob_file(&hash));
    } else {
        assert_eq!(files[0], t.blob_path(&hash));
    }
    assert_eq!(std::fs::read(&files[0]).unwrap(), bytes);
    for img in [&a, &b] {
        let got = t
            .owner
            .get(&format!("images/{}", s(img, "id")))
            .await
            .expect(200);
        assert_eq!(got.bytes, bytes);
    }
    assert_eq!(
        t.owner.counts("dedupe").await.total_size,
        2 * bytes.len() as i64
    );

    // Removing one image keeps the bytes the other still uses.
    t.owner
        .delete(&format!("images/{}?permanent=true", s(&a, "id")))
        .await
        .expect(200);
    assert!(t.blob_stored(&hash));
    t.owner
        .get(&format!("images/{}", s(&b, "id")))
        .await
        .expect(200);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_client_field_names_and_json_register() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("new client").await;
    let bytes = png(7, 3);
    let signed = t
        .owner
        .post(
            "images/upload-url",
            &json!({"dataset": "new client", "filename": "n.png", "directory_path": "/d", "content_type": "image/png"}),
        )
        .await
        .ok_json(200);
    assert_eq!(signed["data"]["upload_url"], signed["upload_url"]);
    t.anon
        .put_bytes(&s(&signed, "upload_url"), &bytes, "image/png")
        .await
        .expect(200);
    let v = t
        .owner
        .post(
            "images/register",
            &json!({"dataset": "new client", "filename": "n.png", "directory_path": "/d",
                    "upload_id": signed["upload_id"], "file_size": bytes.len(),
                    "content_type": "image/png", "width": Value::Null, "height": Value::Null}),
        )
        .await
        .ok_json(201);
    assert_eq!(v["data"]["directory_path"], "/d");
    assert_eq!(v["data"]["dataset_id"], ds["id"]);
    assert_eq!(v["data"]["width"], 7);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jpeg_dimensions_after_large_metadata_are_read_server_side() {
    // Camera JPEGs can carry more than 64 KiB of metadata segments before the frame header.
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("meta").await;
    let bytes = jpeg_with_metadata(120, 80, 100_000);
    let decoded = image::load_from_memory(&bytes).expect("a valid JPEG");
    assert_eq!((decoded.width(), decoded.height()), (120, 80));
    let img = t
        .owner
        .upload(&s(&ds, "id"), "/", "camera.jpg", &bytes, "image/jpeg")
        .await;
    assert_eq!(
        (img["width"].as_u64(), img["height"].as_u64()),
        (Some(120), Some(80)),
        "{img}"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exif_rotated_jpegs_keep_the_displayed_dimensions() {
    // The client reports dimensions after EXIF rotation (Pillow's exif_transpose): a 40x30
    // sensor image tagged "rotate 90°" is 30 wide and 40 high as displayed and annotated.
    use image::ImageDecoder;
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("rotated").await;
    let id = s(&ds, "id");
    let bytes = jpeg_with_orientation(40, 30, 6);
    let mut decoder =
        image::codecs::jpeg::JpegDecoder::new(std::io::Cursor::new(&bytes)).expect("a JPEG");
    assert_eq!(
        decoder.orientation().expect("orientation"),
        image::metadata::Orientation::Rotate90
    );

    // As the 1.6.3 client sends it: the displayed size.
    let signed = t
        .owner
        .upload_url(&id, "/", "phone.jpg", "image/jpeg")
        .await
        .ok_json(200);
    t.anon
        .put_bytes(&s(&signed, "upload_url"), &bytes, "image/jpeg")
        .await
        .expect(200);
    let r = Register {
        width: Some(30),
        height: Some(40),
        ..reg(&id, "/", "phone.jpg", &bytes, "image/jpeg")
    };
    let v = t.owner.register(&signed, &r).await.ok_json(201);
    let sent = t.owner.image(&s(&v, "image_id")).await;

    // Without client dimensions, the server's reading must agree with the client's.
    let derived = t
        .owner
        .upload(&id, "/", "phone-2.jpg", &bytes, "image/jpeg")
        .await;
    let dims = |img: &Value| (img["width"].as_u64(), img["height"].as_u64());
    assert_eq!(dims(&sent), (Some(30), Some(40)), "client-sent: {sent}");
    assert_eq!(
        dims(&derived),
        (Some(30), Some(40)),
        "server-derived: {derived}"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_without_a_content_type_is_judged_by_its_bytes() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("untyped").await;
    let id = s(&ds, "id");
    let bytes = png(6, 5);
    let put_untyped = |signed: &Value, body: Vec<u8>| {
        Client::send(
            reqwest::Client::new()
                .put(s(signed, "upload_url"))
                .body(body),
        )
    };
    let signed = t
        .owner
        .upload_url(&id, "/", "plain.png", "image/png")
        .await
        .ok_json(200);
    put_untyped(&signed, bytes.clone()).await.expect(200);
    let v = t
        .owner
        .register(&signed, &reg(&id, "/", "plain.png", &bytes, "image/png"))
        .await
        .ok_json(201);
    assert_eq!(v["image"]["mime_type"], "image/png");
    assert_eq!(v["image"]["width"], 6);

    // Bytes of another type are still refused.
    let signed = t
        .owner
        .upload_url(&id, "/", "fake.png", "image/png")
        .await
        .ok_json(200);
    let put = put_untyped(&signed, jpeg(6, 5)).await;
    if t.backend().is_s3() {
        put.expect(200);
        t.owner
            .register(
                &signed,
                &reg(&id, "/", "fake.png", &jpeg(6, 5), "image/png"),
            )
            .await
            .error(415, "unsupported_media_type");
    } else {
        put.error(415, "unsupported_media_type");
    }
    assert!(t.staged_uploads().is_empty(), "{:?}", t.staged_uploads());
    assert_eq!(t.owner.counts("untyped").await.images, 1);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_that_decode_wait_for_memory_and_others_do_not() {
    let t = TestServer::start_with(|c| c.decode_memory_bytes = 4 * 1024 * 1024).await;
    let ds = t.owner.create_dataset("budget").await;
    let id = s(&ds, "id");
    let state = &t.app().state;
    // Something else holds all the memory for decoding.
    let held = state.decode_memory.reserve(u64::MAX).await;
    let owner = t.owner.clone();
    let (dataset, bytes) = (id.clone(), webp(640, 480));
    let waiting = tokio::spawn(async move {
        owner
            .upload(&dataset, "/", "a.webp", &bytes, "image/webp")
            .await
    });
    // A JPEG is checked without decoding, so it is stored meanwhile.
    let jpg = t
        .owner
        .upload(&id, "/", "a.jpg", &jpeg(64, 48), "image/jpeg")
        .await;
    assert_eq!(jpg["width"], 64);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the WebP was decoded without memory"
    );
    assert_eq!(state.decode_memory.waits(), 1);
    drop(held);
    let webp = waiting.await.unwrap();
    assert_eq!(
        (webp["width"].as_u64(), webp["height"].as_u64()),
        (Some(640), Some(480))
    );
    assert_eq!(t.owner.counts("budget").await.images, 2);
    assert_eq!(
        state.decode_memory.in_use(),
        0,
        "the check gave its memory back"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn received_bytes_wait_for_memory() {
    let t = TestServer::start_with(|c| c.upload_memory_bytes = 1024 * 1024).await;
    let ds = t.owner.create_dataset("bodies").await;
    let id = s(&ds, "id");
    let state = &t.app().state;
    let held = state.upload_memory.reserve(u64::MAX).await;
    // On disk the PUT waits; with an object store the bytes go there and the register,
    // which takes them in, waits.
    let (owner, anon) = (t.owner.clone(), t.anon.clone());
    let upload = tokio::spawn(async move {
        let bytes = png(32, 32);
        let signed = owner
            .upload_url(&id, "/", "a.png", "image/png")
            .await
            .ok_json(200);
        anon.put_bytes(&s(&signed, "upload_url"), &bytes, "image/png")
            .await
            .expect(200);
        owner
            .register(&signed, &reg(&id, "/", "a.png", &bytes, "image/png"))
            .await
            .ok_json(201)
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !upload.is_finished(),
        "the bytes were taken in without memory"
    );
    assert_eq!(state.upload_memory.waits(), 1);
    drop(held);
    let v = upload.await.unwrap();
    assert_eq!(v["image"]["width"], 32);
    assert_eq!(state.upload_memory.in_use(), 0);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_over_the_pixel_limit_are_refused_and_nothing_is_kept() {
    let t = TestServer::start_with(|c| c.max_image_pixels = 40 * 30).await;
    let ds = t.owner.create_dataset("limit").await;
    let id = s(&ds, "id");
    let at_limit = t
        .owner
        .upload(&id, "/", "ok.png", &png(40, 30), "image/png")
        .await;
    assert_eq!(
        (at_limit["width"].as_u64(), at_limit["height"].as_u64()),
        (Some(40), Some(30))
    );
    let stored = t.blob_files();
    for (name, bytes, ct, pixels) in [
        ("wide.png", png(41, 30), "image/png", 41 * 30),
        ("tall.jpg", jpeg(40, 31), "image/jpeg", 40 * 31),
        ("big.webp", webp(64, 48), "image/webp", 64 * 48),
        ("photo.heic", HEIC_320X240.to_vec(), "image/heic", 320 * 240),
    ] {
        let signed = t.owner.upload_url(&id, "/", name, ct).await.ok_json(200);
        let put = t
            .anon
            .put_bytes(&s(&signed, "upload_url"), &bytes, ct)
            .await;
        let detail = if t.backend().is_s3() {
            // The bucket takes the bytes; register checks them and removes the object.
            put.expect(200);
            t.owner
                .register(&signed, &reg(&id, "/", name, &bytes, ct))
                .await
                .error_detail(422, "validation_error")
        } else {
            put.error_detail(422, "validation_error")
        };
        assert!(
            detail.contains(&format!("{pixels} pixels, more than the limit of 1200")),
            "{name}: {detail}"
        );
        assert!(
            t.staged_uploads().is_empty(),
            "{name}: {:?}",
            t.staged_uploads()
        );
    }
    assert_eq!(t.blob_files(), stored, "nothing new is stored");
    let counts = t.owner.counts("limit").await;
    assert_eq!(counts.images, 1);
    assert_eq!(t.app().state.decode_memory.in_use(), 0);
    t.stop().await;
}

/// Uploads of one organisation whose bodies trickle in hold at most half the upload memory:
/// another organisation's upload goes through meanwhile instead of waiting behind them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_organisations_slow_uploads_never_hold_up_another() {
    use futures::SinkExt;
    let t = TestServer::start_with(|c| c.upload_memory_bytes = 1024 * 1024).await;
    if t.backend().is_s3() {
        // Bytes go straight to the bucket: this server holds no memory for upload bodies.
        t.stop().await;
        return;
    }
    let mine = t.owner.create_dataset("slow").await;
    let theirs = t.other.create_dataset("fast").await;
    let mut senders = Vec::new();
    let mut slow = Vec::new();
    for name in ["s1.png", "s2.png", "s3.png"] {
        let signed = t
            .owner
            .upload_url(&s(&mine, "id"), "/", name, "image/png")
            .await
            .ok_json(200);
        let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
        tx.send(Ok(png(4, 4)[..8].to_vec())).await.unwrap();
        let put = reqwest::Client::new()
            .put(s(&signed, "upload_url"))
            .header("content-type", "image/png")
            .body(reqwest::Body::wrap_stream(rx))
            .send();
        slow.push(tokio::spawn(put));
        senders.push(tx);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let state = &t.app().state;
    assert!(
        state.upload_memory.in_use() <= 512 * 1024,
        "one organisation holds {} bytes",
        state.upload_memory.in_use()
    );
    let image = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        t.other
            .upload(&s(&theirs, "id"), "/", "b.png", &png(8, 8), "image/png"),
    )
    .await
    .expect("another organisation's upload was held up");
    assert_eq!(image["filename"], "b.png");
    // The slow bodies end unfinished: each is refused and gives its memory back.
    drop(senders);
    for put in slow {
        let answer = put.await.unwrap().unwrap();
        assert!(answer.status().is_client_error(), "{}", answer.status());
    }
    assert_eq!(state.upload_memory.in_use(), 0);
    t.stop().await;
}

/// An upload body that stops arriving is refused with 408 once its grace has passed (at
/// 1 KiB/s or more after it, on average), and gives back the memory it held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_body_is_refused_and_frees_its_memory() {
    use futures::SinkExt;
    let t = TestServer::start_with(|c| c.upload_stall_secs = 1).await;
    let ds = t.owner.create_dataset("stalled").await;
    let signed = t
        .owner
        .upload_url(&s(&ds, "id"), "/", "a.png", "image/png")
        .await
        .ok_json(200);
    if t.backend().is_s3() {
        // The bytes go straight to the object store: no body of ours waits.
        t.stop().await;
        return;
    }
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    tx.send(Ok(png(4, 4)[..8].to_vec())).await.unwrap();
    let started = std::time::Instant::now();
    let answer = reqwest::Client::new()
        .put(s(&signed, "upload_url"))
        .header("content-type", "image/png")
        .body(reqwest::Body::wrap_stream(rx))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 408);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("arrived too slowly"),
        "{body}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    assert_eq!(t.app().state.upload_memory.in_use(), 0);
    drop(tx);
    // A body that arrives whole is taken as before.
    let image = t
        .owner
        .upload(&s(&ds, "id"), "/", "b.png", &png(8, 8), "image/png")
        .await;
    assert_eq!(image["filename"], "b.png");
    t.stop().await;
}

/// Register reads the pending upload, then consumes it in its transaction. A repeated PUT in
/// between replaces the upload's bytes, and the sweep may free the first ones: the image
/// must get the bytes the upload holds when it is consumed, never the freed ones.
#[tokio::test]
async fn register_takes_the_bytes_a_repeated_put_left_not_those_it_read() {
    let t = TestServer::start_with(|c| c.blob_grace_secs = 0).await;
    if t.backend().is_s3() {
        // A PUT goes to the bucket, unseen by the server: an upload's bytes are fixed once,
        // when register reads the object, so no second PUT can replace them meanwhile.
        t.stop().await;
        return;
    }
    let ds = t.owner.create_dataset("reput").await;
    let ds_id = s(&ds, "id");
    let (a, b) = (png_seeded(8, 6, 1), png_seeded(8, 6, 2));
    let (ha, hb) = (sha256_hex(&a), sha256_hex(&b));
    let signed = t
        .owner
        .upload_url(&ds_id, "/", "x.png", "image/png")
        .await
        .ok_json(200);
    let url = signed["upload_url"].as_str().unwrap().to_string();
    let upload_id = signed["upload_id"].as_str().unwrap().to_string();
    t.owner.put_bytes(&url, &a, "image/png").await.expect(200);

    // What register read: the first bytes.
    let store = &t.app().state.store;
    let read = store.pending_upload(&upload_id).await.unwrap().unwrap();
    assert_eq!(read.blob_hash.as_deref(), Some(ha.as_str()));
    let new = pictograph_server::store::NewImage {
        dataset_id: read.dataset_id.clone(),
        folder: read.folder.clone(),
        filename: read.filename.clone(),
        blob_hash: ha.clone(),
        file_size: read.size.unwrap(),
        mime_type: read.mime.clone().unwrap(),
        width: read.width,
        height: read.height,
    };
    // Meanwhile: the client PUTs other bytes, and the sweep frees the first ones.
    t.owner.put_bytes(&url, &b, "image/png").await.expect(200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    pictograph_server::services::maintenance::sweep(&t.app().state)
        .await
        .unwrap();
    assert!(!t.blob_stored(&ha), "the replaced bytes are freed");

    let row = store.register_image(&upload_id, &new).await.unwrap();
    assert_eq!(row.blob_hash, hb);
    assert_eq!(row.file_size, b.len() as i64);
    let got = t.owner.get(&format!("images/{}", row.id)).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.bytes, b);
    t.stop().await;
}

/// Freeing the bytes of deleted images races with the sweep and with other deletions of
/// images that share them. Each freed blob is reported by exactly one freer: a freer that
/// finds the record gone (freed by another meanwhile) does not report it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_two_freers_release_at_once_are_reported_freed_once() {
    let t = TestServer::start_with(|c| c.blob_grace_secs = 0).await;
    let ds = t.owner.create_dataset("twice").await;
    let ds_id = s(&ds, "id");
    let mut hashes = Vec::new();
    for i in 0..40u8 {
        let bytes = png_seeded(8, 6, i);
        hashes.push(sha256_hex(&bytes));
        t.owner
            .upload(&ds_id, "/", &format!("t{i}.png"), &bytes, "image/png")
            .await;
    }
    // The images' rows go without the API (which would free the bytes itself): the bytes
    // are recorded and nothing refers to them.
    let db = t.db().await;
    sqlx::query("DELETE FROM images WHERE dataset_seq = (SELECT seq FROM datasets WHERE id = $1)")
        .bind(&ds_id)
        .execute(&db)
        .await
        .unwrap();
    let state = &t.app().state;
    let release = pictograph_server::services::maintenance::release;
    let (a, b) = tokio::join!(
        release(state, hashes.clone()),
        release(state, hashes.clone())
    );
    assert_eq!(a + b, hashes.len(), "{a} + {b}");
    for h in &hashes {
        assert!(!t.blob_stored(h), "{h} is freed");
    }
    // Once more, after they are gone: nothing is freed, nothing reported.
    assert_eq!(release(state, hashes.clone()).await, 0);
    t.stop().await;
}
