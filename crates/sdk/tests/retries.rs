//! Retries, `Retry-After`, idempotency keys, interrupted transfers and a server that does not
//! page by key, against a tiny fault-injecting HTTP server that answers a script of raw
//! responses in order.

use pictograph::{Client, CreateProject, Error, UploadOptions};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A request as the fault server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// One scripted answer: raw bytes written before the connection is closed (empty = close
/// without answering).
struct Fault {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fault {
    /// Serves `script` in order; the last entry repeats. Each connection gets one answer.
    async fn start(script: Vec<Vec<u8>>) -> Fault {
        Fault::start_with(|_| script).await
    }

    /// Like [`Fault::start`], with a script that may point back at the server's address.
    async fn start_with(make: impl FnOnce(std::net::SocketAddr) -> Vec<Vec<u8>>) -> Fault {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let script = make(addr);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let script = Arc::new(script);
        tokio::spawn(async move {
            let mut n = 0usize;
            // Bounded: no test sends more than a few dozen requests.
            while n < 100 {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let answer = script[n.min(script.len() - 1)].clone();
                n += 1;
                let log = log.clone();
                tokio::spawn(async move {
                    let mut r = BufReader::new(sock);
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let mut parts = line.split_whitespace();
                    let method = parts.next().unwrap_or_default().to_string();
                    let path = parts.next().unwrap_or_default().to_string();
                    let mut headers = HashMap::new();
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).await.unwrap_or(0) == 0 || h.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                        }
                    }
                    let len: usize = headers
                        .get("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0; len];
                    let _ = r.read_exact(&mut body).await;
                    log.lock().unwrap().push(Seen {
                        method,
                        path,
                        headers,
                        body,
                    });
                    let mut sock = r.into_inner();
                    let _ = sock.write_all(&answer).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Fault { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn client(&self, max_retries: u32) -> Client {
        Client::builder("pk_live_test")
            .base_url(self.url())
            .max_retries(max_retries)
            .retry_backoff(Duration::from_millis(10), Duration::from_millis(40))
            .build()
            .unwrap()
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn response(status: &str, extra: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut s = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("\r\n");
    s.push_str(body);
    s.into_bytes()
}

const PROJECT: &str = r#"{"project":{"id":"p1","name":"ds","organization_id":"o","created_at":"2026-01-01T00:00:00Z"}}"#;
const LIST: &str = r#"{"datasets":[{"id":"d1","name":"ds","created_at":"2026-01-01T00:00:00Z"}]}"#;

#[tokio::test]
async fn a_503_is_retried_with_the_same_idempotency_key() {
    let f = Fault::start(vec![
        response("503 Service Unavailable", &[], r#"{"detail":"busy"}"#),
        response("500 Internal Server Error", &[], "{}"),
        response("201 Created", &[], PROJECT),
    ])
    .await;
    let p = f
        .client(3)
        .projects()
        .create("ds", CreateProject::default())
        .await
        .unwrap();
    assert_eq!(p.id, "p1");
    let seen = f.seen();
    assert_eq!(seen.len(), 3);
    let keys: Vec<_> = seen
        .iter()
        .map(|s| s.headers["idempotency-key"].clone())
        .collect();
    assert_eq!(keys[0].len(), 32);
    assert!(keys[0].chars().all(|c| c.is_ascii_hexdigit()));
    assert!(
        keys.iter().all(|k| *k == keys[0]),
        "retries reuse the key: {keys:?}"
    );
    assert!(seen
        .iter()
        .all(|s| s.method == "POST" && s.path == "/api/v1/developer/projects/"));
    assert_eq!(seen[0].headers["x-api-key"], "pk_live_test");
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(body, serde_json::json!({"name": "ds"}));

    // A new call gets a new key.
    let f2 = Fault::start(vec![response("201 Created", &[], PROJECT)]).await;
    f2.client(0)
        .projects()
        .create("ds", CreateProject::default())
        .await
        .unwrap();
    assert_ne!(f2.seen()[0].headers["idempotency-key"], keys[0]);
}

#[tokio::test]
async fn a_429_with_a_short_retry_after_is_waited_out() {
    let f = Fault::start(vec![
        response(
            "429 Too Many Requests",
            &[("Retry-After", "1")],
            r#"{"detail":"slow down"}"#,
        ),
        response("200 OK", &[], LIST),
    ])
    .await;
    let start = Instant::now();
    let list = f.client(3).datasets().list(10).await.unwrap();
    let waited = start.elapsed();
    assert_eq!(list.len(), 1);
    assert_eq!(f.seen().len(), 2);
    assert!(waited >= Duration::from_millis(950), "waited {waited:?}");
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    assert!(
        !f.seen()[0].headers.contains_key("idempotency-key"),
        "reads carry no idempotency key"
    );
    assert_eq!(f.seen()[0].path, "/api/v1/developer/datasets/?limit=10");
}

#[tokio::test]
async fn every_retry_is_told_to_the_hook_before_its_wait() {
    let f = Fault::start(vec![
        response("503 Service Unavailable", &[], r#"{"detail":"busy"}"#),
        response(
            "429 Too Many Requests",
            &[("Retry-After", "0.2")],
            r#"{"detail":"slow down"}"#,
        ),
        Vec::new(),
        response("200 OK", &[], LIST),
    ])
    .await;
    let told = Arc::new(Mutex::new(Vec::new()));
    let log = told.clone();
    let client = Client::builder("pk_live_test")
        .base_url(f.url())
        .max_retries(3)
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(40))
        .on_retry(move |n| log.lock().unwrap().push(n.clone()))
        .build()
        .unwrap();
    assert_eq!(client.datasets().list(10).await.unwrap().len(), 1);
    let told = told.lock().unwrap().clone();
    let said: Vec<_> = told
        .iter()
        .map(|n| (n.retry, n.max_retries, n.status, n.server_asked))
        .collect();
    assert_eq!(
        said,
        [
            (1, 3, Some(503), false),
            (2, 3, Some(429), true),
            (3, 3, None, false)
        ]
    );
    assert_eq!(
        told[1].delay,
        Duration::from_millis(200),
        "the server's wait"
    );
    assert!(
        told[0].delay <= Duration::from_millis(13),
        "the client's backoff"
    );
    assert!(told
        .iter()
        .all(|n| n.request == "GET /api/v1/developer/datasets/"));
}

#[tokio::test]
async fn a_429_with_a_long_retry_after_fails_at_once() {
    let f = Fault::start(vec![
        response(
            "429 Too Many Requests",
            &[("Retry-After", "500"), ("X-Request-Id", "rid-429")],
            r#"{"detail":"Rate limit exceeded","error":{"code":"rate_limited","message":"Rate limit exceeded"}}"#,
        ),
        response("200 OK", &[], LIST),
    ])
    .await;
    let start = Instant::now();
    let e = f.client(3).datasets().list(10).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(f.seen().len(), 1, "no retry past the bound");
    let Error::RateLimit(rl) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(rl.retry_after, Some(Duration::from_secs(500)));
    assert_eq!(e.retry_after(), Some(Duration::from_secs(500)));
    assert_eq!(rl.status, 429);
    assert_eq!(rl.message, "Rate limit exceeded");
    assert_eq!(rl.request_id.as_deref(), Some("rid-429"));
    let _: &pictograph::RateLimitError = rl;

    // The bound is configurable.
    let f = Fault::start(vec![
        response("429 Too Many Requests", &[("Retry-After", "2")], "{}"),
        response("200 OK", &[], LIST),
    ])
    .await;
    let c = Client::builder("k")
        .base_url(f.url())
        .max_retry_after(Duration::from_secs(1))
        .build()
        .unwrap();
    assert_eq!(
        c.datasets().list(1).await.unwrap_err().retry_after(),
        Some(Duration::from_secs(2))
    );
}

#[tokio::test]
async fn retries_are_bounded_and_not_for_client_errors() {
    // Persistent 503: max_retries + 1 attempts, then a Server error.
    let f = Fault::start(vec![response(
        "503 Service Unavailable",
        &[],
        r#"{"detail":"down"}"#,
    )])
    .await;
    let e = f.client(2).datasets().list(1).await.unwrap_err();
    assert!(
        matches!(e, Error::Server(ref s) if s.status == 503 && s.message == "down"),
        "{e:?}"
    );
    assert!(e.is_transient());
    assert_eq!(f.seen().len(), 3);

    // 429 without Retry-After: backoff, then RateLimit with no hint.
    let f = Fault::start(vec![response("429 Too Many Requests", &[], "{}")]).await;
    let e = f.client(1).datasets().list(1).await.unwrap_err();
    assert!(
        matches!(e, Error::RateLimit(ref r) if r.retry_after.is_none()),
        "{e:?}"
    );
    assert!(e.is_transient());
    assert_eq!(f.seen().len(), 2);

    // 408 is retried; exhausted it is a generic API error.
    let f = Fault::start(vec![response("408 Request Timeout", &[], "{}")]).await;
    let e = f.client(1).datasets().list(1).await.unwrap_err();
    assert!(matches!(e, Error::Api(ref a) if a.status == 408), "{e:?}");
    assert!(e.is_transient());
    assert_eq!(f.seen().len(), 2);

    // 404 and 422 are answered at once.
    let f = Fault::start(vec![response("404 Not Found", &[], r#"{"detail":"nope"}"#)]).await;
    let e = f.client(3).datasets().get("x").await.unwrap_err();
    assert!(e.is_not_found());
    assert!(!e.is_transient());
    assert_eq!(f.seen().len(), 1);

    // max_retries = 0 disables retries.
    let f = Fault::start(vec![
        response("502 Bad Gateway", &[], "{}"),
        response("200 OK", &[], LIST),
    ])
    .await;
    assert!(matches!(
        f.client(0).datasets().list(1).await,
        Err(Error::Server(_))
    ));
    assert_eq!(f.seen().len(), 1);

    // A 2xx that is not JSON is a decode error.
    let f = Fault::start(vec![
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello".to_vec(),
    ])
    .await;
    assert!(matches!(
        f.client(0).datasets().list(1).await,
        Err(Error::Decode(_))
    ));
}

#[tokio::test]
async fn dropped_connections_are_retried() {
    let f = Fault::start(vec![Vec::new(), Vec::new(), response("200 OK", &[], LIST)]).await;
    assert_eq!(f.client(3).datasets().list(5).await.unwrap().len(), 1);
    assert_eq!(f.seen().len(), 3);

    let f = Fault::start(vec![Vec::new()]).await;
    assert!(matches!(
        f.client(1).datasets().list(5).await,
        Err(Error::Transport(_))
    ));
    assert_eq!(f.seen().len(), 2);
}

/// A 200 whose JSON body breaks off: the headers announce more bytes than are sent before
/// the connection closes.
fn cut_short(body: &str) -> Vec<u8> {
    let mut r = response("200 OK", &[], body);
    let keep = r.len() - body.len() / 2;
    r.truncate(keep);
    r
}

#[tokio::test]
async fn a_json_body_cut_short_is_retried() {
    // Used to fail at once with a transport error: only failures before the headers were
    // retried.
    let f = Fault::start(vec![
        cut_short(LIST),
        cut_short(LIST),
        response("200 OK", &[], LIST),
    ])
    .await;
    assert_eq!(f.client(3).datasets().list(5).await.unwrap().len(), 1);
    assert_eq!(f.seen().len(), 3);

    // A write too, with the same idempotency key, so the server runs it once.
    let f = Fault::start(vec![
        cut_short(PROJECT),
        response("201 Created", &[], PROJECT),
    ])
    .await;
    let p = f
        .client(2)
        .projects()
        .create("ds", CreateProject::default())
        .await
        .unwrap();
    assert_eq!(p.id, "p1");
    let seen = f.seen();
    assert_eq!(seen.len(), 2);
    let key = |s: &Seen| s.headers.get("idempotency-key").cloned();
    assert!(key(&seen[0]).is_some());
    assert_eq!(key(&seen[0]), key(&seen[1]));

    // Within the budget only.
    let f = Fault::start(vec![cut_short(LIST)]).await;
    let e = f.client(1).datasets().list(5).await.unwrap_err();
    assert!(matches!(e, Error::Transport(_)), "{e:?}");
    assert!(e.is_transient());
    assert_eq!(f.seen().len(), 2);
}

#[tokio::test]
async fn an_interrupted_download_leaves_no_partial_file() {
    let full: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
    let mut complete = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 2000\r\nConnection: close\r\n\r\n".to_vec();
    complete.extend_from_slice(&full);
    let mut cut = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 2000\r\nConnection: close\r\n\r\n".to_vec();
    cut.extend_from_slice(&full[..300]);

    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("img.png");

    // Always cut off: the call fails and nothing is left at the destination.
    let f = Fault::start(vec![cut.clone()]).await;
    let e = f
        .client(1)
        .images()
        .download("i1", &dest)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport(_) | Error::Decode(_)), "{e:?}");
    assert!(!dest.exists());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "no .part left"
    );
    assert_eq!(f.seen().len(), 2);
    assert_eq!(f.seen()[0].path, "/api/v1/developer/images/i1");

    // Cut off once, then complete: the retry writes the whole file.
    let f = Fault::start(vec![cut, complete]).await;
    let n = f.client(2).images().download("i1", &dest).await.unwrap();
    assert_eq!(n, 2000);
    assert_eq!(std::fs::read(&dest).unwrap(), full);
}

/// An export archive whose download breaks off is asked for again from the byte it
/// stopped at, and the whole is checked against the job's size and SHA-256; an archive
/// that does not match is refused and nothing is left.
#[tokio::test]
async fn an_export_archive_download_resumes_where_it_broke_off() {
    use pictograph::formats::{export_archive, Format, ServerExportOptions};
    let archive: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 253) as u8).collect();
    let sha = {
        use sha2::Digest;
        sha2::Sha256::digest(&archive)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let job = |addr: std::net::SocketAddr, sha: &str| {
        format!(
            r#"{{"id":"j1","dataset_id":"d1","format":"yolo","state":"complete","archive":{{"format":"tar","size":5000,"sha256":"{sha}"}},"download_url":"http://{addr}/files/exports/j1?expires=9&sig=ab"}}"#
        )
    };
    let head = |status: &str, len: usize, extra: &str| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/x-tar\r\nContent-Length: {len}\r\n{extra}Connection: close\r\n\r\n"
        )
        .into_bytes()
    };
    let (a, full) = (archive.clone(), archive.clone());
    let f = Fault::start_with(move |addr| {
        let mut cut = head("200 OK", 5000, "");
        cut.extend_from_slice(&a[..1800]);
        let mut rest = head(
            "206 Partial Content",
            3200,
            "Content-Range: bytes 1800-4999/5000\r\n",
        );
        rest.extend_from_slice(&a[1800..]);
        vec![response("202 Accepted", &[], &job(addr, &sha)), cut, rest]
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("out.tar");
    let done = export_archive(
        &f.client(3),
        "ds",
        Format::Yolo,
        &dest,
        ServerExportOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(done.id, "j1");
    assert_eq!(std::fs::read(&dest).unwrap(), full);
    let seen = f.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[1].path, "/files/exports/j1?expires=9&sig=ab");
    assert!(!seen[1].headers.contains_key("range"));
    assert_eq!(
        seen[2].headers.get("range").map(String::as_str),
        Some("bytes=1800-")
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "no .part left"
    );

    // Bytes that do not hash to the job's SHA-256: refused, and nothing is left.
    let wrong = "0".repeat(64);
    let b = archive.clone();
    let f = Fault::start_with(move |addr| {
        let mut whole = head("200 OK", 5000, "");
        whole.extend_from_slice(&b);
        vec![response("202 Accepted", &[], &job(addr, &wrong)), whole]
    })
    .await;
    let dest = tmp.path().join("bad.tar");
    let e = export_archive(
        &f.client(3),
        "ds",
        Format::Yolo,
        &dest,
        ServerExportOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("SHA-256"), "{e}");
    assert!(!dest.exists());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "no .part left"
    );
}

#[tokio::test]
async fn upload_put_is_streamed_unauthenticated_and_register_is_json() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a.png");
    std::fs::write(&file, vec![7u8; 1234]).unwrap();
    // upload-url → a grant pointing back here; the first PUT fails with 503 and is retried;
    // register answers an image.
    let f = Fault::start_with(|addr| {
        let grant = format!(
            r#"{{"upload_url":"http://{addr}/files/uploads/u1?sig=x","gcs_bucket":"local","gcs_path":"u1","gcs_uri":"gs://local/u1","content_type":"image/png"}}"#
        );
        let image = r#"{"success":true,"image_id":"img-1","image":{"id":"img-1","filename":"a.png","created_at":"2026-01-01T00:00:00Z"}}"#;
        vec![
            response("200 OK", &[], &grant),
            response("503 Service Unavailable", &[], "{}"),
            response("200 OK", &[], r#"{"success":true}"#),
            response("201 Created", &[], image),
        ]
    })
    .await;
    let img = f
        .client(3)
        .images()
        .upload("ds-1", &file, UploadOptions::default().folder_path("/cars"))
        .await
        .unwrap();
    assert_eq!(img.id, "img-1");
    let seen = f.seen();
    let paths: Vec<_> = seen
        .iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert_eq!(
        paths,
        [
            "POST /api/v1/developer/images/upload-url",
            "PUT /files/uploads/u1?sig=x",
            "PUT /files/uploads/u1?sig=x",
            "POST /api/v1/developer/images/register",
        ]
    );
    let grant: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(
        grant,
        serde_json::json!({"dataset_id": "ds-1", "filename": "a.png", "folder_path": "/cars", "content_type": "image/png"})
    );
    let put = &seen[2];
    assert!(
        !put.headers.contains_key("x-api-key"),
        "the PUT carries no key"
    );
    assert_eq!(put.headers["content-length"], "1234");
    assert_eq!(put.headers["content-type"], "image/png");
    assert_eq!(put.body, vec![7u8; 1234]);
    let reg = &seen[3];
    assert_eq!(reg.headers["content-type"], "application/json");
    let reg_body: serde_json::Value = serde_json::from_slice(&reg.body).unwrap();
    assert_eq!(
        reg_body,
        serde_json::json!({"dataset_id": "ds-1", "filename": "a.png", "gcs_path": "u1",
            "folder_path": "/cars", "file_size": 1234, "mime_type": "image/png"})
    );
    assert_ne!(
        seen[0].headers["idempotency-key"], reg.headers["idempotency-key"],
        "each step of an upload has its own key"
    );
}

/// The answer to the upload-URL request (an upload's first step) cut off midway is asked for
/// again with the same idempotency key, like every other JSON answer, and the upload goes on.
#[tokio::test]
async fn an_upload_url_answer_cut_short_is_retried_with_the_same_key() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a.png");
    std::fs::write(&file, vec![7u8; 300]).unwrap();
    let grant = |addr: std::net::SocketAddr| {
        format!(
            r#"{{"upload_url":"http://{addr}/files/uploads/u1?sig=x","gcs_bucket":"local","gcs_path":"u1","gcs_uri":"gs://local/u1","content_type":"image/png"}}"#
        )
    };
    let image = r#"{"success":true,"image_id":"img-1","image":{"id":"img-1","filename":"a.png","created_at":"2026-01-01T00:00:00Z"}}"#;
    // Used to fail at once with a transport error: the grant was read outside the retrying
    // path.
    let f = Fault::start_with(|addr| {
        vec![
            cut_short(&grant(addr)),
            cut_short(&grant(addr)),
            response("200 OK", &[], &grant(addr)),
            response("200 OK", &[], r#"{"success":true}"#),
            response("201 Created", &[], image),
        ]
    })
    .await;
    let img = f
        .client(3)
        .images()
        .upload("ds-1", &file, UploadOptions::default())
        .await
        .unwrap();
    assert_eq!(img.id, "img-1");
    let seen = f.seen();
    let paths: Vec<_> = seen
        .iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert_eq!(
        paths,
        [
            "POST /api/v1/developer/images/upload-url",
            "POST /api/v1/developer/images/upload-url",
            "POST /api/v1/developer/images/upload-url",
            "PUT /files/uploads/u1?sig=x",
            "POST /api/v1/developer/images/register",
        ]
    );
    let key = |s: &Seen| s.headers.get("idempotency-key").cloned();
    assert!(key(&seen[0]).is_some());
    assert!(
        seen[..3]
            .iter()
            .all(|s| key(s) == key(&seen[0]) && s.body == seen[0].body),
        "the same request, with the same key"
    );
    assert_ne!(key(&seen[4]), key(&seen[0]));

    // A key given by the caller is the one repeated.
    let f = Fault::start_with(|addr| {
        vec![
            cut_short(&grant(addr)),
            response("200 OK", &[], &grant(addr)),
            response("200 OK", &[], r#"{"success":true}"#),
            response("201 Created", &[], image),
        ]
    })
    .await;
    f.client(1)
        .images()
        .upload(
            "ds-1",
            &file,
            UploadOptions::default().idempotency_key("my-key"),
        )
        .await
        .unwrap();
    let seen = f.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(key(&seen[0]).as_deref(), Some("my-key"));
    assert_eq!(key(&seen[1]).as_deref(), Some("my-key"));
    assert_eq!(key(&seen[3]).as_deref(), Some("my-key.register"));

    // Within the budget only: then a transient transport error, and no bytes sent.
    let f = Fault::start_with(|addr| vec![cut_short(&grant(addr))]).await;
    let e = f
        .client(1)
        .images()
        .upload("ds-1", &file, UploadOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport(_)), "{e:?}");
    assert!(e.is_transient());
    let seen = f.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.method == "POST"), "{seen:?}");
}

/// A listing page as a server without keyset paging writes it: one image, no
/// `pagination.after`.
fn image_page(id: &str, has_more: bool) -> Vec<u8> {
    let body = serde_json::json!({
        "images": [{"id": id, "filename": format!("{id}.png"), "created_at": "2026-01-01T00:00:00Z"}],
        "total": 2,
        "pagination": {"has_more": has_more},
    });
    response("200 OK", &[], &body.to_string())
}

#[tokio::test]
async fn image_pages_fall_back_to_offsets_on_a_server_that_ignores_after() {
    let f = Fault::start(vec![
        image_page("a", true),
        // Asked for the page after `a`, this server answers from the start again.
        image_page("a", true),
        image_page("b", false),
    ])
    .await;
    let client = f.client(0);
    let mut pages = client
        .datasets()
        .image_pages("ds", pictograph::ImageListOptions::default());
    let mut walked = Vec::new();
    while let Some(page) = pages.next_page(1).await.unwrap() {
        walked.extend(page.images.into_iter().map(|i| i.id));
    }
    assert_eq!(walked, ["a", "b"], "each image once, in order");
    let paths: Vec<String> = f.seen().into_iter().map(|s| s.path).collect();
    assert!(!paths[0].contains("after="), "{paths:?}");
    assert!(
        paths[1].contains("after=a") && paths[1].contains("offset=0"),
        "{paths:?}"
    );
    assert!(
        !paths[2].contains("after=") && paths[2].contains("offset=1"),
        "{paths:?}"
    );
    assert_eq!(paths.len(), 3);
}

/// A folder upload to a server whose storage is full: once the server answers 507, the files
/// not yet sent fail at once (retryable, saying why) instead of each being sent and retried
/// only to meet the same answer.
#[tokio::test]
async fn a_folder_upload_stops_sending_once_the_server_storage_is_full() {
    const FILES: usize = 40;
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("pets");
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..FILES {
        let img = image::RgbImage::from_fn(3, 3, |x, y| image::Rgb([i as u8, x as u8, y as u8]));
        img.save(folder.join(format!("{i:02}.png"))).unwrap();
    }
    // The project, one batch's upload URLs pointing back here, then "storage full" for every
    // request after.
    let f = Fault::start_with(|addr| {
        let grants: Vec<String> = (0..32)
            .map(|i| {
                format!(
                    r#"{{"upload_url":"http://{addr}/files/uploads/u{i}?sig=x","upload_id":"u{i}","content_type":"image/png","exists":false}}"#
                )
            })
            .collect();
        let full = r#"{"detail":"The server's storage is full: nothing was stored; try again once space is freed","error":{"code":"insufficient_storage"}}"#;
        vec![
            response("200 OK", &[], PROJECT),
            response("200 OK", &[], &format!(r#"{{"upload_urls":[{}]}}"#, grants.join(","))),
            response("507 Insufficient Storage", &[], full),
        ]
    })
    .await;
    let report = pictograph::workflows::upload_dataset_from_folder(
        &f.client(1),
        "ds",
        &folder,
        pictograph::workflows::FolderUploadOptions::default()
            .organize_by_class(false)
            .max_workers(1),
    )
    .await
    .unwrap();
    assert_eq!(report.images_uploaded, 0);
    assert_eq!(report.failures.len(), FILES);
    assert!(report
        .failures
        .iter()
        .all(|f| f.retryable && f.reason.contains("storage is full")));
    // The project, the first batch's URLs, and its first file's PUT tried twice; nothing for
    // the 31 other files of the batch nor for the second batch.
    let paths: Vec<String> = f
        .seen()
        .iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert_eq!(
        paths,
        [
            "GET /api/v1/developer/projects/ds",
            "POST /api/v1/developer/images/bulk-upload-url",
            "PUT /files/uploads/u0?sig=x",
            "PUT /files/uploads/u0?sig=x",
        ]
    );
}

/// A download listing page of one image whose (empty) annotation list is embedded, so a
/// download in annotations-only mode writes it without another request; `after` is echoed
/// when given, as a server that paged from it does.
fn listing_page(ids: &[&str], after: Option<&str>) -> Vec<u8> {
    let items: Vec<_> = ids
        .iter()
        .map(|id| serde_json::json!({"id": id, "filename": format!("{id}.png"), "virtual_folder_path": "/", "annotations": [], "version": 1}))
        .collect();
    let mut body = serde_json::json!({"dataset_id": "d1", "items": items, "total": ids.len()});
    if let Some(after) = after {
        body["after"] = after.into();
    }
    response("200 OK", &[], &body.to_string())
}

/// Downloads dataset `ds` page by page (one image a page) from `f`; answers the files
/// written and the query of each listing request.
async fn download_one_by_one(f: &Fault) -> (Vec<String>, Vec<String>) {
    let out = tempfile::tempdir().unwrap();
    let options = pictograph::DownloadOptions {
        mode: pictograph::DownloadMode::AnnotationsOnly,
        page_size: 1,
        ..Default::default()
    };
    let report = f
        .client(0)
        .datasets()
        .download("ds", out.path(), options)
        .await
        .unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let mut files: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let queries = f
        .seen()
        .into_iter()
        .map(|s| {
            s.path
                .split_once('?')
                .map(|(_, q)| q.to_string())
                .unwrap_or_default()
        })
        .collect();
    (files, queries)
}

/// Whether a listing request's `query` asks for the page at `offset`, not by key.
fn by_offset(query: &str, offset: usize) -> bool {
    !query.contains("after=") && query.contains(&format!("offset={offset}"))
}

#[tokio::test]
async fn a_download_pages_by_key_where_the_server_can_and_by_offset_where_not() {
    let both = ["a.png.json", "b.png.json"];

    // A server that pages by key: each page after the first is asked for after the last id.
    let f = Fault::start(vec![
        listing_page(&["a"], None),
        listing_page(&["b"], Some("a")),
        listing_page(&[], Some("b")),
    ])
    .await;
    let (files, q) = download_one_by_one(&f).await;
    assert_eq!(files, both);
    assert_eq!(q.len(), 3, "{q:?}");
    assert!(
        !q[0].contains("after=") && !q[0].contains("offset="),
        "{q:?}"
    );
    assert!(
        q[1].contains("after=a") && !q[1].contains("offset="),
        "{q:?}"
    );
    assert!(q[2].contains("after=b"), "{q:?}");

    // One that ignores `after` and answers the first page again: by offset from then on.
    let f = Fault::start(vec![
        listing_page(&["a"], None),
        listing_page(&["a"], None),
        listing_page(&["b"], None),
        listing_page(&[], None),
    ])
    .await;
    let (files, q) = download_one_by_one(&f).await;
    assert_eq!(files, both);
    assert_eq!(q.len(), 4, "{q:?}");
    assert!(q[1].contains("after=a"), "{q:?}");
    assert!(by_offset(&q[2], 1) && by_offset(&q[3], 2), "{q:?}");

    // The image a page would follow was deleted meanwhile (422): that page by offset, the
    // next by key again.
    let f = Fault::start(vec![
        listing_page(&["a"], None),
        response(
            "422 Unprocessable Entity",
            &[],
            r#"{"detail":"no image with this id in the dataset"}"#,
        ),
        listing_page(&["b"], None),
        listing_page(&[], Some("b")),
    ])
    .await;
    let (files, q) = download_one_by_one(&f).await;
    assert_eq!(files, both);
    assert_eq!(q.len(), 4, "{q:?}");
    assert!(q[1].contains("after=a"), "{q:?}");
    assert!(by_offset(&q[2], 1) && q[3].contains("after=b"), "{q:?}");
}
