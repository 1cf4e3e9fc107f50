//! Image bytes in Google Cloud Storage and in Azure Blob Storage, each against a real
//! emulator started here on 127.0.0.1: fake-gcs-server and Azurite. `scripts/test-cloud-stores`
//! installs both and prints the variables that name them (`PICTOGRAPH_TEST_FAKE_GCS`,
//! `PICTOGRAPH_TEST_AZURITE`). The tests are ignored unless asked for (`--ignored`);
//! `scripts/test` runs them.
//!
//! GCS takes a signed PUT as S3 does, so the client sends its bytes straight to the bucket.
//! Azure would also need a header the official client does not send, so there the bytes come
//! through the server. Either way, register checks and hashes the bytes, stores them under
//! their hash, serves them back, and frees them once no image refers to them.

mod common;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use common::{bmp, png_seeded, s, sha256_hex, TestServer};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The key prefix every test server stores under.
const PREFIX: &str = "pictograph";

/// An emulator process, stopped when dropped.
struct Emulator {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    base: String,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The emulator binary a variable names; panics with how to get it when unset.
fn binary(var: &str) -> PathBuf {
    let path = std::env::var_os(var).unwrap_or_else(|| {
        panic!("{var} is not set: run `eval \"$(scripts/test-cloud-stores)\"` first")
    });
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "{var} names {}, which is not a file",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Starts `command` listening on `port`, and waits until `ready` (a URL on it) answers.
async fn spawn(mut command: Command, port: u16, ready: &str) -> Emulator {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the emulator starts");
    let emulator = Emulator {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = format!("{}{ready}", emulator.base);
    while http.get(&url).send().await.is_err() {
        assert!(Instant::now() < deadline, "no answer on {url} within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    emulator
}

/// fake-gcs-server with bucket `bucket`, and the `gs://` URL of a store in it: a service
/// account file that points the client at the emulator, with a key made for this run. The
/// client signs both its requests' tokens and the upload URLs with that key, on its own, as
/// it does with a real account's key; the emulator checks neither.
async fn gcs(dir: &Path, bucket: &str) -> (Emulator, String) {
    let port = free_port();
    let mut command = Command::new(binary("PICTOGRAPH_TEST_FAKE_GCS"));
    let base = format!("http://127.0.0.1:{port}");
    command.args([
        "-scheme",
        "http",
        "-host",
        "127.0.0.1",
        "-backend",
        "memory",
    ]);
    command.args(["-port", &port.to_string(), "-external-url", &base]);
    command.args(["-public-host", &format!("127.0.0.1:{port}")]);
    command.args(["-log-level", "error"]);
    let emulator = spawn(command, port, "/storage/v1/b").await;
    reqwest::Client::new()
        .post(format!("{base}/storage/v1/b?project=test"))
        .json(&json!({"name": bucket}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .expect("the bucket is created");
    let key = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .expect("openssl makes the signing key");
    assert!(key.status.success(), "openssl genpkey failed");
    let account = dir.join("service-account.json");
    let file = json!({
        "type": "service_account",
        "client_email": "pictograph-test@example.com",
        "private_key_id": "test",
        "private_key": String::from_utf8(key.stdout).unwrap(),
        "gcs_base_url": media_put_adapter(&base).await,
    });
    std::fs::write(&account, file.to_string()).unwrap();
    let url = format!(
        "gs://{bucket}/{PREFIX}?service_account={}",
        account.display()
    );
    (emulator, url)
}

/// Starts an adapter in front of fake-gcs-server and answers its URL. The emulator takes a PUT
/// to `/{bucket}/{object}` (the XML API upload that `object_store` sends) only when it carries
/// a signed URL's query; a plain one, authorised by a token, it answers with "invalid
/// uploadType". The adapter turns such a PUT into the emulator's media upload of the same
/// bytes to the same name (and answers the new object's ETag in a header, where the XML API
/// has it), and passes every other request (signed PUTs, HEAD, GET, ranged GET, listings,
/// DELETE) on as it came.
async fn media_put_adapter(emulator: &str) -> String {
    use axum::body::{to_bytes, Body};
    use axum::extract::{Request, State};
    use axum::http::Method;
    use axum::response::Response;

    async fn forward(State(emulator): State<String>, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let body = to_bytes(body, usize::MAX).await.expect("the request body");
        let path = parts.uri.path();
        let query = parts.uri.query().unwrap_or("");
        let signed = query.contains("X-Goog-Algorithm=");
        // A plain PUT goes to the media upload (a POST); anything else as it came.
        let (method, target, translated) = match path.trim_start_matches('/').split_once('/') {
            Some((bucket, object))
                if parts.method == Method::PUT && !signed && !query.contains("uploadType=") =>
            {
                let media = format!(
                    "{emulator}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={object}"
                );
                (reqwest::Method::POST, media, true)
            }
            _ => {
                let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes());
                (method.unwrap(), format!("{emulator}{}", parts.uri), false)
            }
        };
        let mut forwarded = reqwest::Client::new()
            .request(method, target)
            .body(body.to_vec());
        for (name, value) in &parts.headers {
            if name != "host" && name != "content-length" {
                forwarded = forwarded.header(name.as_str(), value.as_bytes());
            }
        }
        let answer = forwarded.send().await.expect("the emulator answers");
        let mut response = Response::builder().status(answer.status().as_u16());
        for (name, value) in answer.headers() {
            response = response.header(name.as_str(), value.as_bytes());
        }
        let bytes = answer.bytes().await.expect("the emulator's body");
        if translated {
            // The XML API answers an upload with the object's ETag in a header; the media
            // upload puts it in its JSON.
            let object: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            if let Some(etag) = object["etag"].as_str() {
                response = response.header("etag", etag);
            }
        }
        response.body(Body::from(bytes)).unwrap()
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(emulator.to_string());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Names of the objects in a fake-gcs-server bucket.
async fn gcs_objects(emulator: &Emulator, bucket: &str) -> Vec<String> {
    let listing: Value = reqwest::get(format!("{}/storage/v1/b/{bucket}/o", emulator.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut names: Vec<String> = listing["items"]
        .as_array()
        .map(|items| items.iter().map(|o| s(o, "name")).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// Azurite's well-known development account and key.
const AZURE_ACCOUNT: &str = "devstoreaccount1";
const AZURE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// The storage API version the test's own requests speak.
const AZURE_VERSION: &str = "2021-08-06";

/// A request to Azurite signed with the account key (Shared Key): `query` is
/// `(name, value)` pairs, which the signature lists sorted by name.
fn azure_request(
    emulator: &Emulator,
    method: reqwest::Method,
    path: &str,
    query: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let mut sorted = query.to_vec();
    sorted.sort();
    let resource: String = sorted.iter().map(|(k, v)| format!("\n{k}:{v}")).collect();
    // Path-style addressing: the account is the first segment of the path, and the signed
    // resource names it again.
    let to_sign = format!(
        "{method}\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{AZURE_VERSION}\n\
         /{AZURE_ACCOUNT}/{AZURE_ACCOUNT}{path}{resource}"
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&BASE64.decode(AZURE_KEY).unwrap())
        .expect("any key length");
    mac.update(to_sign.as_bytes());
    let signature = BASE64.encode(mac.finalize().into_bytes());
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    reqwest::Client::new()
        .request(
            method,
            format!(
                "{}/{AZURE_ACCOUNT}{path}?{}",
                emulator.base,
                query.join("&")
            ),
        )
        .header("x-ms-date", date)
        .header("x-ms-version", AZURE_VERSION)
        .header(
            "authorization",
            format!("SharedKey {AZURE_ACCOUNT}:{signature}"),
        )
}

/// Azurite (blob service only, data in `dir`) with container `container`, and the `az://`
/// URL of a store in it. The account key comes from the environment, as it would for a user.
async fn azure(dir: &Path, container: &str) -> (Emulator, String) {
    let port = free_port();
    let mut command = Command::new(binary("PICTOGRAPH_TEST_AZURITE"));
    command.args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()]);
    command.arg("--location").arg(dir.join("azurite"));
    command.args(["--silent", "--skipApiVersionCheck", "--loose"]);
    let emulator = spawn(command, port, "/").await;
    let created = azure_request(
        &emulator,
        reqwest::Method::PUT,
        &format!("/{container}"),
        &[("restype", "container")],
    )
    .header("content-length", "0")
    .send()
    .await
    .unwrap();
    assert_eq!(
        created.status(),
        201,
        "the container is created: {}",
        created.text().await.unwrap_or_default()
    );
    let url = format!(
        "az://{container}/{PREFIX}?account={AZURE_ACCOUNT}&endpoint={}/{AZURE_ACCOUNT}",
        emulator.base
    );
    (emulator, url)
}

/// Names of the blobs in an Azurite container.
async fn azure_objects(emulator: &Emulator, container: &str) -> Vec<String> {
    let listing = azure_request(
        emulator,
        reqwest::Method::GET,
        &format!("/{container}"),
        &[("comp", "list"), ("restype", "container")],
    )
    .send()
    .await
    .unwrap()
    .error_for_status()
    .expect("the container is listed")
    .text()
    .await
    .unwrap();
    let mut names: Vec<String> = listing
        .split("<Name>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</Name>").map(|(n, _)| n.to_string()))
        .collect();
    names.sort();
    names
}

/// What one store is checked for: uploads of two images with the same bytes, each served
/// back whole and in part, and of one larger than a part of a multipart upload (8 MiB); one
/// object per distinct content under its hash, no staged upload left over, and the bytes
/// freed by a sweep once the images are purged. `objects` lists the bucket; `direct` says
/// whether the client PUTs straight into it.
async fn uploads_are_stored_served_and_freed<F, Fut>(store_url: String, direct: bool, objects: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    let t = TestServer::start_with(|c| c.blobs_url = Some(store_url)).await;
    let ds = t.owner.create_dataset("clouds").await;
    let ds_id = s(&ds, "id");
    let bytes = png_seeded(23, 11, 5);
    let hash = sha256_hex(&bytes);

    let signed = t
        .owner
        .upload_url(&ds_id, "/", "a.png", "image/png")
        .await
        .ok_json(200);
    let url = s(&signed, "upload_url");
    assert_eq!(
        !url.starts_with(&t.base),
        direct,
        "where the bytes are PUT: {url}"
    );
    let first = t
        .owner
        .upload(&ds_id, "/", "b.png", &bytes, "image/png")
        .await;
    let second = t
        .owner
        .upload(&ds_id, "/copies", "b.png", &bytes, "image/png")
        .await;
    for image in [&first, &second] {
        assert_eq!(
            (image["width"].as_i64(), image["height"].as_i64()),
            (Some(23), Some(11))
        );
        let served = t.owner.get(&format!("images/{}", s(image, "id"))).await;
        assert_eq!(served.status, 200);
        assert_eq!(
            sha256_hex(&served.bytes),
            hash,
            "the bytes served are the bytes sent"
        );
    }
    // A range is read from the store as a range.
    let part = t
        .owner
        .get_with(
            &format!("images/{}", s(&first, "id")),
            &[("Range", "bytes=8-23")],
        )
        .await;
    assert_eq!(part.status, 206);
    assert_eq!(part.bytes, bytes[8..24]);
    // An image larger than a part of a multipart upload (8 MiB) is still stored in one PUT.
    let large = bmp(1800, 1700);
    assert!(large.len() > 8 << 20);
    let third = t
        .owner
        .upload(&ds_id, "/", "large.bmp", &large, "image/bmp")
        .await;
    let served = t.owner.get(&format!("images/{}", s(&third, "id"))).await;
    assert_eq!(sha256_hex(&served.bytes), sha256_hex(&large));
    let key = |hash: &str| format!("{PREFIX}/blobs/{}/{}/{hash}", &hash[..2], &hash[2..4]);
    let mut expected = vec![key(&hash), key(&sha256_hex(&large))];
    expected.sort();
    assert_eq!(
        objects().await,
        expected,
        "one object per content, under its hash, and no staged upload left"
    );

    let ids = [s(&first, "id"), s(&second, "id"), s(&third, "id")];
    t.owner
        .batch(
            "delete",
            &json!({"dataset_name": "clouds", "image_ids": ids, "permanent": true}),
        )
        .await
        .expect(200);
    pictograph_server::services::maintenance::sweep(&t.app().state)
        .await
        .expect("sweep");
    assert!(
        objects().await.is_empty(),
        "unreferenced bytes are freed from the bucket"
    );
    t.stop().await;
}

#[tokio::test]
#[ignore = "needs fake-gcs-server: eval \"$(scripts/test-cloud-stores)\", then --ignored"]
async fn google_cloud_storage_takes_signed_puts_and_keeps_bytes_by_hash() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, url) = gcs(dir.path(), "pictograph-test").await;
    uploads_are_stored_served_and_freed(url, true, || gcs_objects(&emulator, "pictograph-test"))
        .await;
}

#[tokio::test]
#[ignore = "needs fake-gcs-server: eval \"$(scripts/test-cloud-stores)\", then --ignored"]
async fn google_cloud_storage_with_uploads_server_takes_uploads_through_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, url) = gcs(dir.path(), "pictograph-test").await;
    let url = format!(
        "{url}{}uploads=server",
        if url.contains('?') { '&' } else { '?' }
    );
    uploads_are_stored_served_and_freed(url, false, || gcs_objects(&emulator, "pictograph-test"))
        .await;
}

#[tokio::test]
#[ignore = "needs Azurite: eval \"$(scripts/test-cloud-stores)\", then --ignored"]
async fn azure_blob_storage_takes_uploads_through_the_server_and_keeps_bytes_by_hash() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, url) = azure(dir.path(), "pictograph-test").await;
    // The account key is read from the environment when the store opens, as a user gives it.
    std::env::set_var("AZURE_STORAGE_ACCOUNT_KEY", AZURE_KEY);
    uploads_are_stored_served_and_freed(url, false, || azure_objects(&emulator, "pictograph-test"))
        .await;
}
