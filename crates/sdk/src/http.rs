//! The transport: request building, retries with backoff, `Retry-After`, idempotency keys,
//! error mapping, and streaming bodies to and from files.

use crate::error::{Error, Result};
use bytes::Bytes;
use futures::StreamExt;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderMap, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE, RETRY_AFTER};
use reqwest::{Method, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Prefix of every developer API path.
pub(crate) const PREFIX: &str = "/api/v1/developer";

/// Characters kept as-is in a path segment; everything else is percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Encodes `s` as one path segment (`/` becomes `%2F`).
pub(crate) fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// A fresh idempotency key: uuid4 as 32 lowercase hex characters.
pub(crate) fn idempotency_key() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Why a request is about to be retried, told to
/// [`ClientBuilder::on_retry`](crate::ClientBuilder::on_retry) before the wait.
#[derive(Debug, Clone)]
pub struct RetryNotice {
    /// Which retry this is: 1 for the first.
    pub retry: u32,
    /// The most retries the client makes.
    pub max_retries: u32,
    /// How long the client waits before it.
    pub delay: Duration,
    /// The status answered, or `None` when the connection failed or the body broke off.
    pub status: Option<u16>,
    /// Whether the delay is the server's `Retry-After` rather than the client's backoff.
    pub server_asked: bool,
    /// The request's method and path, e.g. `PUT /api/v1/developer/images/…`.
    pub request: String,
}

/// The callback [`crate::ClientBuilder::on_retry`] sets.
#[derive(Clone)]
pub(crate) struct RetryHook(pub std::sync::Arc<dyn Fn(&RetryNotice) + Send + Sync>);

impl std::fmt::Debug for RetryHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RetryHook")
    }
}

/// When and how often to retry.
#[derive(Debug, Clone)]
pub(crate) struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff.
    pub base_delay: Duration,
    /// Largest backoff.
    pub max_delay: Duration,
    /// Longest `Retry-After` waited out.
    pub max_retry_after: Duration,
    /// Told of every retry before its wait.
    pub on_retry: Option<RetryHook>,
}

impl RetryPolicy {
    /// Tells the hook, if any, and waits `delay` before retry number `attempt + 1`.
    async fn wait(
        &self,
        req: &Req,
        attempt: u32,
        delay: Duration,
        status: Option<u16>,
        server_asked: bool,
    ) {
        if let Some(hook) = &self.on_retry {
            (hook.0)(&RetryNotice {
                retry: attempt + 1,
                max_retries: self.max_retries,
                delay,
                status,
                server_asked,
                request: format!("{} {}", req.method, req.path_only()),
            });
        }
        tokio::time::sleep(delay).await;
    }

    /// Backoff before retry number `attempt` (0-based): `base * 2^attempt`, capped, ±25 %.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.min(20)));
        let capped = exp.min(self.max_delay);
        capped.mul_f64(rand::random_range(0.75..=1.25))
    }
}

/// Statuses retried: request timeout, rate limit, and server errors.
pub(crate) fn retryable(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

/// A request body that can be rebuilt for every attempt.
#[derive(Debug, Clone)]
pub(crate) enum ReqBody {
    /// No body.
    Empty,
    /// A JSON document.
    Json(Bytes),
    /// A file streamed from disk with an exact `Content-Length`.
    File {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
        /// Its type.
        content_type: String,
    },
}

/// One logical request, sent once per attempt.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub method: Method,
    /// A path under the base URL (starting with `/`), or an absolute URL.
    pub url: String,
    pub query: Vec<(&'static str, String)>,
    pub body: ReqBody,
    /// Send `X-API-Key`.
    pub auth: bool,
    pub idempotency_key: Option<String>,
    /// Total time limit of one attempt; `None` for streamed transfers.
    pub timeout: Option<Duration>,
    /// Ask for the bytes from this offset on (`Range: bytes=N-`).
    pub range_from: Option<u64>,
}

impl Req {
    /// The path of the URL, without a host or query (which may hold a signature).
    pub fn path_only(&self) -> &str {
        let rest = match self.url.find("://") {
            Some(i) => {
                let after = &self.url[i + 3..];
                after.find('/').map_or("/", |j| &after[j..])
            }
            None => &self.url,
        };
        rest.split(['?', '#']).next().unwrap_or(rest)
    }

    /// An authenticated API request to `PREFIX + path`; writes get an idempotency key.
    pub fn api(method: Method, path: &str) -> Req {
        let idempotency_key =
            matches!(method, Method::POST | Method::PUT | Method::PATCH).then(idempotency_key);
        Req {
            method,
            url: format!("{PREFIX}{path}"),
            query: Vec::new(),
            body: ReqBody::Empty,
            auth: true,
            idempotency_key,
            timeout: None,
            range_from: None,
        }
    }

    /// Adds a query parameter.
    pub fn query(mut self, k: &'static str, v: impl ToString) -> Req {
        self.query.push((k, v.to_string()));
        self
    }

    /// Sets a JSON body.
    pub fn json(mut self, v: &impl serde::Serialize) -> Req {
        self.body = ReqBody::Json(Bytes::from(
            serde_json::to_vec(v).expect("request bodies serialize"),
        ));
        self
    }
}

/// The HTTP machinery shared by every clone of a client.
pub(crate) struct Transport {
    pub http: reqwest::Client,
    /// Without a trailing slash.
    pub base_url: String,
    pub api_key: String,
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

/// Parses `Retry-After`: seconds (integer or fraction) or an HTTP date; negative is 0.
pub(crate) fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return secs
            .is_finite()
            .then(|| Duration::from_secs_f64(secs.max(0.0)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = at.signed_duration_since(chrono::Utc::now());
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Why one attempt failed.
enum Failed {
    /// The network: worth another try.
    Net(reqwest::Error),
    /// The request's body file could not be read: another try fails the same way.
    Local(Error),
}

/// Where a streamed body keeps the I/O error that broke it off, for the failed send to report.
type ReadSlot = Arc<Mutex<Option<std::io::Error>>>;

/// The body of a file upload of `len` bytes, and the share of [`WHOLE_BYTES`] it holds until
/// it is sent. The file is opened first and must still be a regular file of `len` bytes. A
/// file up to [`IN_MEMORY`] is read whole when its size fits in that budget; others stream,
/// and a read error or early end while streaming is kept in the answered slot. Uploads do
/// not wait for one of the [`STREAMS`]: each streamed upload holds a fraction of what a
/// download does, and 300 photos of 3.5 MB took 5% longer limited to four at a time, to
/// hold 5 MB less.
async fn file_body(
    path: &Path,
    len: u64,
) -> Result<(reqwest::Body, Option<ReadSlot>, Option<Held>)> {
    if len == 0 {
        return Ok((reqwest::Body::from(Vec::new()), None, None));
    }
    let held = hold_whole(len);
    let whole = held.is_some();
    let owned = path.to_path_buf();
    // One blocking-pool hop to open, check and (for a file read whole) read it.
    let opened = tokio::task::spawn_blocking(move || open_body(&owned, len, whole))
        .await
        .map_err(|e| Error::io(path, std::io::Error::other(e)))?
        .map_err(|e| Error::io(path, e))?;
    let file = match opened {
        Opened::Read(bytes) => return Ok((reqwest::Body::from(bytes), None, held)),
        Opened::Stream(file) => tokio::fs::File::from_std(file),
    };
    let slot = ReadSlot::default();
    let stream = read_stream(file, len, slot.clone());
    Ok((reqwest::Body::wrap_stream(stream), Some(slot), None))
}

/// The first `len` bytes of `reader` in chunks. A read error, or an end before `len` bytes,
/// ends the stream with an error and is kept in `slot`.
fn read_stream(
    reader: impl tokio::io::AsyncRead + Send + 'static,
    len: u64,
    slot: ReadSlot,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let chunks = tokio_util::io::ReaderStream::with_capacity(reader.take(len), 256 * 1024);
    futures::stream::unfold(Some((Box::pin(chunks), 0u64)), move |state| {
        let slot = slot.clone();
        async move {
            let (mut chunks, sent) = state?;
            let failed = match chunks.next().await {
                Some(Ok(b)) => {
                    let sent = sent + b.len() as u64;
                    return Some((Ok(b), Some((chunks, sent))));
                }
                Some(Err(e)) => e,
                None if sent < len => ended_early(sent, len),
                None => return None,
            };
            let shown = std::io::Error::new(failed.kind(), failed.to_string());
            if let Ok(mut slot) = slot.lock() {
                *slot = Some(failed);
            }
            Some((Err(shown), None))
        }
    })
}

/// A file opened for an upload body: its bytes, or the file to stream.
enum Opened {
    Read(Vec<u8>),
    Stream(std::fs::File),
}

/// Opens `path`, checks it is a regular file of `len` bytes, and reads it when `whole`.
fn open_body(path: &Path, len: u64, whole: bool) -> std::io::Result<Opened> {
    let mut file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("no longer a regular file"));
    }
    if meta.len() != len {
        return Err(std::io::Error::other(format!(
            "its size changed from {len} to {} bytes since it was listed",
            meta.len()
        )));
    }
    if !whole {
        return Ok(Opened::Stream(file));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    (&mut file).take(len + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 != len {
        return Err(ended_early(bytes.len() as u64, len));
    }
    Ok(Opened::Read(bytes))
}

/// The error of a file that ended before the `len` bytes it had when it was listed.
fn ended_early(read: u64, len: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        format!("the file ended after {read} of its {len} bytes"),
    )
}

/// Reads an error response into its typed error.
pub(crate) async fn error_from(resp: Response) -> Error {
    let status = resp.status().as_u16();
    let rid = request_id(resp.headers());
    let retry_after = parse_retry_after(resp.headers());
    let body = resp.bytes().await.unwrap_or_default();
    Error::from_status(status, rid, retry_after, &body)
}

impl Transport {
    /// The absolute URL of `url` (a path under the base URL, or already absolute).
    pub fn url(&self, url: &str) -> String {
        if url.starts_with("http://") || url.starts_with("https://") {
            url.to_string()
        } else {
            format!("{}{url}", self.base_url)
        }
    }

    /// An API URL from a server-provided link: relative links resolve against the base URL;
    /// absolute links to another origin are pinned to the base URL's origin so that the API
    /// key never leaves for another host.
    pub fn pinned(&self, link: &str) -> String {
        let Ok(u) = reqwest::Url::parse(link) else {
            let sep = if link.starts_with('/') { "" } else { "/" };
            return format!("{}{sep}{link}", self.base_url);
        };
        let Ok(base) = reqwest::Url::parse(&self.base_url) else {
            return link.to_string();
        };
        if u.origin() == base.origin() {
            return link.to_string();
        }
        let mut pinned = base.clone();
        pinned.set_path(u.path());
        pinned.set_query(u.query());
        pinned.to_string()
    }

    async fn attempt(&self, req: &Req) -> std::result::Result<Response, Failed> {
        let mut b = self.http.request(req.method.clone(), self.url(&req.url));
        if !req.query.is_empty() {
            b = b.query(&req.query);
        }
        if req.auth {
            b = b
                .header("X-API-Key", &self.api_key)
                .header("Accept", "application/json");
        }
        if let Some(k) = &req.idempotency_key {
            b = b.header("Idempotency-Key", k);
        }
        if let Some(t) = req.timeout {
            b = b.timeout(t);
        }
        if let Some(from) = req.range_from {
            b = b.header(RANGE, format!("bytes={from}-"));
        }
        let mut read_error = None;
        // A body read whole keeps its share of the budget until it has been sent.
        let mut _held = None;
        b = match &req.body {
            ReqBody::Empty => b,
            ReqBody::Json(bytes) => b
                .header(CONTENT_TYPE, "application/json")
                .body(bytes.clone()),
            ReqBody::File {
                path,
                len,
                content_type,
            } => {
                let (body, slot, held) = file_body(path, *len).await.map_err(Failed::Local)?;
                read_error = slot.map(|s| (path, s));
                _held = held;
                b.header(CONTENT_TYPE, content_type)
                    .header(CONTENT_LENGTH, *len)
                    .body(body)
            }
        };
        b.send().await.map_err(|e| {
            match read_error.and_then(|(path, slot)| Some((path, slot.lock().ok()?.take()?))) {
                Some((path, io)) => Failed::Local(Error::io(path, io)),
                None => Failed::Net(e),
            }
        })
    }

    /// Sends `req` with retries and returns the first success (2xx) response.
    ///
    /// Retried: transport errors, 408, 429 and 5xx, after `base * 2^n` (±25 %) or after the
    /// `Retry-After` of a 429/503 when it is within the bound. A 429 asking for longer than
    /// the bound is returned at once. Every attempt reuses the request's idempotency key.
    /// A body file that cannot be read fails at once with [`Error::Io`] or
    /// [`Error::FileNotFound`] on its path.
    pub async fn send(&self, req: &Req) -> Result<Response> {
        let max = self.retry.max_retries;
        let mut attempt = 0u32;
        loop {
            match self.attempt(req).await {
                Err(Failed::Local(e)) => return Err(e),
                Err(Failed::Net(e)) => {
                    if attempt >= max {
                        return Err(Error::from(e));
                    }
                    let delay = self.retry.backoff(attempt);
                    self.retry.wait(req, attempt, delay, None, false).await;
                }
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => {
                    let status = resp.status();
                    if !retryable(status.as_u16()) || attempt >= max {
                        return Err(error_from(resp).await);
                    }
                    let hint = parse_retry_after(resp.headers());
                    let (delay, server_asked) = match (status.as_u16(), hint) {
                        (429, Some(d)) if d > self.retry.max_retry_after => {
                            return Err(error_from(resp).await);
                        }
                        (429 | 503, Some(d)) if d <= self.retry.max_retry_after => (d, true),
                        _ => (self.retry.backoff(attempt), false),
                    };
                    drop(resp);
                    self.retry
                        .wait(req, attempt, delay, Some(status.as_u16()), server_asked)
                        .await;
                }
            }
            attempt += 1;
        }
    }

    /// Sends an API request and parses its JSON body.
    pub async fn json(&self, req: Req) -> Result<Value> {
        self.parse(req).await
    }

    /// Sends an API request and parses its JSON body as `T`, straight from the bytes (no
    /// tree of values first: a page of thousands of images parses in a fraction of the time).
    /// A body that breaks off midway (the connection dropped after the headers) is asked for
    /// again within the retry budget, like a connection that failed before them.
    pub async fn parse<T: DeserializeOwned>(&self, req: Req) -> Result<T> {
        self.parse_with_headers(req).await.map(|(_, v)| v)
    }

    /// Like [`Transport::parse`], answering the headers of the response whose body was read
    /// too: when a body broke off and was asked for again, those of the answer that arrived
    /// whole (a retried write may come back as the server's replay of the first).
    pub async fn parse_with_headers<T: DeserializeOwned>(
        &self,
        mut req: Req,
    ) -> Result<(HeaderMap, T)> {
        if req.timeout.is_none() {
            req.timeout = Some(self.timeout);
        }
        let mut attempt = 0u32;
        loop {
            let resp = self.send(&req).await?;
            let status = resp.status();
            let headers = resp.headers().clone();
            match resp.bytes().await {
                Ok(bytes) => return parse_bytes(status, &bytes).map(|v| (headers, v)),
                Err(e) if attempt >= self.retry.max_retries => return Err(Error::from(e)),
                Err(_) => {
                    let delay = self.retry.backoff(attempt);
                    self.retry.wait(&req, attempt, delay, None, false).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Streams a GET of `req` into `dest` atomically: the bytes go to a temporary file beside
    /// it, which is renamed over `dest` only once complete. A body that breaks off midway is
    /// fetched again (within the retry budget). Returns the number of bytes written.
    ///
    /// With the file's `size` known, a file that will not be held whole waits for one of the
    /// [`STREAMS`] before it is asked for (see there); without it, the answer's length
    /// decides once it arrives.
    pub async fn download(&self, req: &Req, dest: &Path, size: Option<u64>) -> Result<u64> {
        let mut attempt = 0u32;
        loop {
            let way = match size {
                Some(n) => match hold_whole(n) {
                    Some(held) => Way::Whole(n, held),
                    None => Way::Stream(stream_slot().await),
                },
                None => Way::Undecided,
            };
            let resp = self.send(req).await?;
            match write_atomically(resp, dest, way).await {
                Ok(n) => return Ok(n),
                Err(WriteError::Body(_)) if attempt < self.retry.max_retries => {
                    let delay = self.retry.backoff(attempt);
                    self.retry.wait(req, attempt, delay, None, false).await;
                }
                Err(WriteError::Body(e)) => return Err(Error::from(e)),
                Err(WriteError::Local(e)) => return Err(e),
            }
            attempt += 1;
        }
    }
}

impl Transport {
    /// Streams a GET of `req` into `dest` through its `.part` file, resuming after an
    /// interruption: a body that breaks off is asked for again from the byte it stopped at
    /// (`Range`), within the retry budget, and a server that answers the whole file instead
    /// is read from the start. Only a file of exactly `size` bytes with the SHA-256 `sha256`
    /// (hex) is renamed over `dest`; otherwise the call fails and leaves nothing. A `.part`
    /// file left by an earlier run is not resumed: it may hold other bytes. Returns `size`.
    pub async fn download_verified(
        &self,
        req: &Req,
        dest: &Path,
        size: u64,
        sha256: &str,
    ) -> Result<u64> {
        let part = part_path(dest);
        let local = |e: std::io::Error| Error::io(dest, e);
        match tokio::fs::remove_file(&part).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(local(e)),
            _ => {}
        }
        let fetched = async {
            let mut hasher = Sha256::new();
            let mut have = 0u64;
            let mut attempt = 0u32;
            loop {
                let mut r = req.clone();
                r.range_from = (have > 0).then_some(have);
                let resp = self.send(&r).await?;
                let resumed = have > 0 && resp.status() == reqwest::StatusCode::PARTIAL_CONTENT;
                if resumed {
                    let from = resp
                        .headers()
                        .get(CONTENT_RANGE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("bytes "))
                        .and_then(|v| v.split('-').next())
                        .and_then(|v| v.parse::<u64>().ok());
                    if from != Some(have) {
                        return Err(Error::Decode(format!(
                            "download of {}: asked for the bytes from {have} on, the server \
                             sent another range",
                            dest.display()
                        )));
                    }
                } else {
                    have = 0;
                    hasher = Sha256::new();
                }
                let file = tokio::fs::OpenOptions::new()
                    .create(true)
                    .write(true)
                    .append(resumed)
                    .truncate(!resumed)
                    .open(&part)
                    .await
                    .map_err(local)?;
                let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
                let mut body = resp.bytes_stream();
                let mut broke = None;
                while let Some(chunk) = body.next().await {
                    match chunk {
                        Ok(chunk) => {
                            file.write_all(&chunk).await.map_err(local)?;
                            hasher.update(&chunk);
                            have += chunk.len() as u64;
                        }
                        Err(e) => {
                            broke = Some(e);
                            break;
                        }
                    }
                }
                file.flush().await.map_err(local)?;
                match broke {
                    None => break,
                    Some(e) if attempt >= self.retry.max_retries => return Err(Error::from(e)),
                    Some(_) => {
                        let delay = self.retry.backoff(attempt);
                        self.retry.wait(req, attempt, delay, None, false).await;
                        attempt += 1;
                    }
                }
            }
            let got = hex_of(&hasher.finalize());
            if have != size || !got.eq_ignore_ascii_case(sha256) {
                return Err(Error::Decode(format!(
                    "download of {}: received {have} bytes with SHA-256 {got}, expected {size} \
                     bytes with SHA-256 {sha256}",
                    dest.display()
                )));
            }
            tokio::fs::rename(&part, dest).await.map_err(local)
        }
        .await;
        if let Err(e) = fetched {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(e);
        }
        Ok(size)
    }
}

/// Lower-case hex of bytes.
fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses the body `bytes` of a success response as `T` (an empty body reads as `null`).
fn parse_bytes<T: DeserializeOwned>(status: reqwest::StatusCode, bytes: &[u8]) -> Result<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return decode(Value::Null);
    }
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => Error::Decode(e.to_string()),
        _ => Error::Decode(format!(
            "server returned {status} with a non-JSON body ({e})"
        )),
    })
}

/// Converts a JSON value into `T`, or [`Error::Decode`].
pub(crate) fn decode<T: DeserializeOwned>(v: Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| Error::Decode(e.to_string()))
}

/// The first of `keys` present (and not null) in `v`, parsed as `T`.
pub(crate) fn field<T: DeserializeOwned>(mut v: Value, keys: &[&str]) -> Result<T> {
    for k in keys {
        if let Some(x) = v.get_mut(*k).filter(|x| !x.is_null()) {
            return decode(x.take());
        }
    }
    Err(Error::Decode(format!(
        "response has none of the keys {}",
        keys.join(", ")
    )))
}

enum WriteError {
    /// The response body broke off: worth another try.
    Body(reqwest::Error),
    /// A local file operation failed.
    Local(Error),
}

/// Bytes gathered before each write of a streamed download: with the copy the file's own
/// writer holds while it writes, each streamed download holds twice this.
const STREAMED_WRITES: usize = 256 << 10;

/// The temporary file a download into `dest` is written to before the rename: its name plus
/// `.part`, or for a name too long for that, a shortened one (file systems allow 255 bytes).
pub(crate) fn part_path(dest: &Path) -> PathBuf {
    let name = dest.file_name().unwrap_or_default();
    let mut part = name.to_os_string();
    part.push(".part");
    if part.len() > 255 {
        part = pictograph_core::names::shorten(&name.to_string_lossy(), 250).into();
        part.push(".part");
    }
    dest.with_file_name(part)
}

/// Files up to this size are read or written in one piece (one blocking call) instead of in
/// streamed chunks, as long as the process's [`WHOLE_BYTES`] allow; larger ones stream.
const IN_MEMORY: u64 = 4 << 20;

/// Most bytes of files held whole in memory at once, by all the uploads and downloads of the
/// process together: a file that does not fit in what is left streams instead. Without it,
/// 16 transfers of photos of a few MiB held up to 64 MiB at once.
const WHOLE_BYTES: u64 = 8 << 20;

/// A share of [`WHOLE_BYTES`] or one of the [`STREAMS`], given back when dropped.
type Held = tokio::sync::OwnedSemaphorePermit;

/// Takes `len` bytes of [`WHOLE_BYTES`] for a file to be held whole, or `None` when the file
/// is larger than [`IN_MEMORY`] or the budget has not that much left now.
fn hold_whole(len: u64) -> Option<Held> {
    static BUDGET: std::sync::OnceLock<Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    if len > IN_MEMORY {
        return None;
    }
    // Counted in KiB: semaphores count in u32, and no file is held for less.
    let budget =
        BUDGET.get_or_init(|| Arc::new(tokio::sync::Semaphore::new((WHOLE_BYTES >> 10) as usize)));
    let kib = u32::try_from(len.div_ceil(1024).max(1)).ok()?;
    budget.clone().try_acquire_many_owned(kib).ok()
}

/// Most downloads streamed at once, beyond those held whole: each holds about 1.5 MB of
/// network and write buffers while it runs. Large files are limited by bandwidth, not by
/// round trips, so a few at a time fill the link as well as many: with 16 workers on photos
/// of 3.5 MB, 4 streams at once took as long as 16 and held about 20 MB less.
const STREAMS: usize = 4;

/// How a download's body is to be written.
enum Way {
    /// Held whole when the answer has this length, within this share of [`WHOLE_BYTES`]
    /// (streamed otherwise).
    Whole(u64, Held),
    /// Streamed, holding one of the [`STREAMS`] until written.
    Stream(Held),
    /// Decided by the answer's length.
    Undecided,
}

/// Waits for one of the [`STREAMS`].
async fn stream_slot() -> Held {
    static SLOTS: std::sync::OnceLock<Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    SLOTS
        .get_or_init(|| Arc::new(tokio::sync::Semaphore::new(STREAMS)))
        .clone()
        .acquire_owned()
        .await
        .expect("the stream slots are never closed")
}

/// A write job for the writer threads.
type WriteJob = Box<dyn FnOnce() + Send>;

/// Threads that write downloaded files: one for every four CPUs, at least one. The network
/// side of many downloads overlaps well, but file creations and renames in one directory take
/// turns at its lock, and a writer waiting there spins on a CPU the downloads and the hashing
/// need: on 2 CPUs, one writer downloaded 2,000 photos 18% faster than two, and 10,000 small
/// files 12% faster.
fn writer_threads() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpus / 4).max(1)
}

/// Runs `job` on one of the [`writer_threads`]. They are threads of their own rather than the
/// runtime's blocking pool: a pool thread that has just finished a write is not yet idle when
/// the next write is handed over, so the pool kept adding threads over a long download (48
/// during a million-image download, each holding its stack and allocator cache). Errs only
/// when the job panicked.
async fn on_writer<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<T> {
    static JOBS: std::sync::OnceLock<std::sync::mpsc::Sender<WriteJob>> =
        std::sync::OnceLock::new();
    let jobs = JOBS.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<WriteJob>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..writer_threads() {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("pictograph-writer-{i}"))
                .spawn(move || loop {
                    let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok(job) = next else { return };
                    // A panicking job drops its answer, which its caller sees; the thread
                    // stays for the next one.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                });
            if let Err(e) = spawned {
                eprintln!("pictograph: a file-writing thread could not start: {e}");
            }
        }
        tx
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sent = jobs.send(Box::new(move || {
        let _ = tx.send(job());
    }));
    if sent.is_err() {
        return Err(std::io::Error::other("no thread is left to write files"));
    }
    rx.await
        .map_err(|_| std::io::Error::other("writing the file failed unexpectedly"))
}

/// Writes `bytes` to `dest` in one call on a writer thread: into its `.part` file, then renamed
/// over `dest`; on failure the `.part` file is removed and the error names `dest`.
pub(crate) async fn write_whole(
    dest: &Path,
    bytes: impl AsRef<[u8]> + Send + 'static,
) -> Result<()> {
    let target = dest.to_path_buf();
    on_writer(move || {
        let part = part_path(&target);
        let written = std::fs::write(&part, bytes).and_then(|()| std::fs::rename(&part, &target));
        if written.is_err() {
            let _ = std::fs::remove_file(&part);
        }
        written
    })
    .await
    .and_then(|written| written)
    .map_err(|e| Error::io(dest, e))
}

/// Writes a response body to `dest` through its `.part` file, renamed over `dest` only once
/// the body is complete and of the announced length: whatever interrupts the process, `dest`
/// is either absent, the old file, or the whole new one, and a re-run replaces a leftover
/// `.part` file. Errors name `dest`, the file the caller asked for, not the temporary one.
///
/// Nothing is fsynced. A download is a copy of bytes the server keeps durably, so it takes the
/// durability `cp` gives: after an operating-system crash or a power loss, files written in the
/// last moments before it may be empty or short (a re-run sees the wrong size and fetches them
/// again) or, on some file systems, damaged at their full size (which a size check cannot see:
/// download into a fresh directory after such a crash). Syncing every file would make the
/// download wait on the disk for each one.
async fn write_atomically(
    resp: Response,
    dest: &Path,
    way: Way,
) -> std::result::Result<u64, WriteError> {
    let local = |p: &Path, e: std::io::Error| WriteError::Local(Error::io(p, e));
    let expected = resp.content_length();
    let part = part_path(dest);
    let (whole, _slot) = match way {
        Way::Whole(n, held) => ((expected == Some(n)).then_some((n, held)), None),
        Way::Stream(slot) => (None, Some(slot)),
        Way::Undecided => (expected.and_then(|n| Some((n, hold_whole(n)?))), None),
    };
    if let Some((n, _held)) = whole {
        // Gathered into one buffer of the announced size: collecting the chunks first and
        // then joining them would hold the file twice.
        let mut bytes = Vec::with_capacity(n as usize);
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            bytes.extend_from_slice(&chunk.map_err(WriteError::Body)?);
        }
        if bytes.len() as u64 != n {
            return Err(WriteError::Local(Error::Decode(format!(
                "download of {} ended after {} of {n} bytes",
                dest.display(),
                bytes.len()
            ))));
        }
        let written = write_whole(dest, bytes).await;
        return written.map(|()| n).map_err(WriteError::Local);
    }
    // Buffered so a download is a few large writes, not one blocking-pool hop per network
    // chunk. No fsync (see `write_atomically`).
    let mut file = tokio::io::BufWriter::with_capacity(
        STREAMED_WRITES,
        tokio::fs::File::create(&part)
            .await
            .map_err(|e| local(dest, e))?,
    );
    let mut written = 0u64;
    let mut body = resp.bytes_stream();
    let outcome = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(WriteError::Body)?;
            file.write_all(&chunk).await.map_err(|e| local(dest, e))?;
            written += chunk.len() as u64;
        }
        file.flush().await.map_err(|e| local(dest, e))?;
        if let Some(n) = expected.filter(|n| *n != written) {
            return Err(WriteError::Local(Error::Decode(format!(
                "download of {} ended after {written} of {n} bytes",
                dest.display()
            ))));
        }
        Ok(())
    }
    .await;
    drop(file);
    if let Err(e) = outcome {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(e);
    }
    tokio::fs::rename(&part, dest)
        .await
        .map_err(|e| local(dest, e))?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_are_held_whole_only_within_the_budget() {
        assert!(
            hold_whole(IN_MEMORY + 1).is_none(),
            "larger files always stream"
        );
        // Other tests of this process may hold a few KiB of the budget meanwhile.
        let most = (WHOLE_BYTES / IN_MEMORY) as usize;
        let mut held = Vec::new();
        while let Some(h) = hold_whole(IN_MEMORY) {
            held.push(h);
            assert!(held.len() <= most, "held past the budget");
        }
        assert!(held.len() + 1 >= most, "held {} of {most}", held.len());
        drop(held);
        assert!(
            hold_whole(IN_MEMORY).is_some(),
            "shares come back when dropped"
        );
    }

    /// Sixteen downloads of files too large to hold whole, started at once, are served at
    /// most [`STREAMS`] at a time, and each arrives whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn large_files_stream_a_few_at_a_time() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        const SIZE: usize = (IN_MEMORY as usize) + (1 << 20);
        const PIECES: usize = 20;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let active = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (active2, most2) = (active.clone(), most.clone());
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let (active, most) = (active2.clone(), most2.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if sock.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let now = active.fetch_add(1, SeqCst) + 1;
                    most.fetch_max(now, SeqCst);
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\nConnection: close\r\n\r\n"
                    );
                    if sock.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                    let piece = vec![7u8; SIZE / PIECES];
                    for i in 0..PIECES {
                        if i == PIECES - 1 {
                            // Counted out before the last piece, which the client needs to
                            // finish and give its stream to the next download.
                            active.fetch_sub(1, SeqCst);
                        }
                        if sock.write_all(&piece).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    }
                });
            }
        });
        let client = crate::Client::builder("pk_live_test")
            .base_url(format!("http://{addr}"))
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut tasks = Vec::new();
        for i in 0..16 {
            let transport = client.transport.clone();
            let dest = dir.path().join(format!("f{i}"));
            tasks.push(tokio::spawn(async move {
                let mut req = Req::api(Method::GET, "");
                req.url = format!("http://{addr}/f{i}");
                req.auth = false;
                transport.download(&req, &dest, Some(SIZE as u64)).await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), SIZE as u64);
        }
        for i in 0..16 {
            let bytes = std::fs::read(dir.path().join(format!("f{i}"))).unwrap();
            assert!(bytes.len() == SIZE && bytes.iter().all(|b| *b == 7), "f{i}");
        }
        let most = most.load(SeqCst);
        assert!((2..=STREAMS).contains(&most), "{most} streamed at once");
    }

    #[test]
    fn segments_and_keys() {
        assert_eq!(segment("my ds/é?#"), "my%20ds%2F%C3%A9%3F%23");
        assert_eq!(segment("road-signs_v1.2~"), "road-signs_v1.2~");
        let k = idempotency_key();
        assert_eq!(k.len(), 32);
        assert!(k
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "1.5".parse().unwrap());
        assert_eq!(parse_retry_after(&h), Some(Duration::from_millis(1500)));
        h.insert(RETRY_AFTER, "-3".parse().unwrap());
        assert_eq!(parse_retry_after(&h), Some(Duration::ZERO));
        h.insert(
            RETRY_AFTER,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(parse_retry_after(&h), Some(Duration::ZERO));
        let later = chrono::Utc::now() + chrono::Duration::seconds(90);
        h.insert(RETRY_AFTER, later.to_rfc2822().parse().unwrap());
        let d = parse_retry_after(&h).unwrap();
        assert!(d > Duration::from_secs(80) && d <= Duration::from_secs(90));
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(parse_retry_after(&h), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_cap() {
        let p = RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
            on_retry: None,
        };
        for (a, centre) in [(0, 1.0), (1, 2.0), (2, 4.0), (10, 30.0)] {
            let d = p.backoff(a).as_secs_f64();
            assert!(
                d >= centre * 0.75 - 1e-9 && d <= centre * 1.25 + 1e-9,
                "{a}: {d}"
            );
        }
    }

    /// Reads `ok` bytes, then fails.
    struct FailAfter(usize);

    impl tokio::io::AsyncRead for FailAfter {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if self.0 == 0 {
                return std::task::Poll::Ready(Err(std::io::Error::other("disk on fire")));
            }
            let n = self.0.min(buf.remaining());
            buf.put_slice(&vec![7; n]);
            self.0 -= n;
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// The stream's chunks until its first error, and that error's message.
    async fn drain(
        s: impl futures::Stream<Item = std::io::Result<Bytes>>,
    ) -> (usize, Option<String>) {
        let mut s = std::pin::pin!(s);
        let mut read = 0;
        while let Some(chunk) = s.next().await {
            match chunk {
                Ok(b) => read += b.len(),
                Err(e) => return (read, Some(e.to_string())),
            }
        }
        (read, None)
    }

    #[tokio::test]
    async fn body_read_errors_are_kept_for_the_failed_send() {
        let slot = ReadSlot::default();
        let (read, err) = drain(read_stream(FailAfter(10), 100, slot.clone())).await;
        assert_eq!((read, err.as_deref()), (10, Some("disk on fire")));
        let kept = slot.lock().unwrap().take().expect("the error is kept");
        assert_eq!(kept.to_string(), "disk on fire");

        // A file that ends early is an error too; one that grew sends what was planned.
        let slot = ReadSlot::default();
        let (read, err) = drain(read_stream(&[1u8; 5][..], 8, slot.clone())).await;
        assert_eq!(read, 5);
        assert_eq!(
            err.as_deref(),
            Some("the file ended after 5 of its 8 bytes")
        );
        assert_eq!(
            slot.lock().unwrap().take().map(|e| e.kind()),
            Some(std::io::ErrorKind::UnexpectedEof)
        );
        let slot = ReadSlot::default();
        assert_eq!(
            drain(read_stream(&[1u8; 9][..], 8, slot.clone())).await,
            (8, None)
        );
        assert!(slot.lock().unwrap().is_none());
    }

    #[tokio::test]
    async fn file_bodies_are_checked_before_sending() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.png");
        std::fs::write(&file, b"12345").unwrap();
        assert!(file_body(&file, 5).await.is_ok());
        let e = file_body(&file, 6).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "I/O error on {}: its size changed from 6 to 5 bytes since it was listed",
                file.display()
            )
        );
        let e = file_body(dir.path(), 6).await.unwrap_err();
        assert!(e.to_string().ends_with("no longer a regular file"), "{e}");
        let gone = dir.path().join("gone.png");
        assert!(matches!(file_body(&gone, 6).await, Err(Error::FileNotFound(p)) if p == gone));
        assert!(!file_body(&gone, 6).await.unwrap_err().is_transient());
    }

    #[tokio::test]
    async fn transport_errors_hide_the_query() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let url = format!("http://127.0.0.1:{port}/files/uploads/u1?expires=9&sig=secret#frag");
        let e = reqwest::Client::new().get(&url).send().await.unwrap_err();
        assert!(
            e.to_string().contains("sig=secret"),
            "reqwest shows it: {e}"
        );
        let e = Error::from(e);
        let shown = e.to_string();
        assert!(shown.starts_with("transport error: "), "{shown}");
        assert!(shown.contains("/files/uploads/u1"), "{shown}");
        assert!(
            !shown.contains("sig") && !shown.contains("expires"),
            "{shown}"
        );
        assert!(e.is_transient());
    }

    #[test]
    fn part_files_sit_beside_the_target() {
        assert_eq!(
            part_path(Path::new("out/a/b.jpg")),
            PathBuf::from("out/a/b.jpg.part")
        );
        // The longest names leave no room for `.part`: theirs is shortened.
        let parts: Vec<PathBuf> = ['a', 'b']
            .map(|c| part_path(&Path::new("out").join(format!("{}{c}.png", "n".repeat(250)))))
            .into();
        for p in &parts {
            let name = p.file_name().unwrap().to_str().unwrap();
            assert!(name.len() <= 255 && name.ends_with(".png.part"), "{name}");
            assert_eq!(p.parent(), Some(Path::new("out")));
        }
        assert_ne!(parts[0], parts[1]);
    }

    /// Many writes at once run on the fixed writer threads, not on the runtime's blocking
    /// pool, each answering its own caller; a job that panics fails alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_run_on_a_fixed_set_of_threads() {
        let jobs = (0..2_000u64).map(|i| {
            on_writer(move || {
                let name = std::thread::current().name().map(str::to_string);
                (i * 3, name)
            })
        });
        let answers = futures::future::join_all(jobs).await;
        let mut names = std::collections::HashSet::new();
        for (i, answer) in answers.into_iter().enumerate() {
            let (value, name) = answer.expect("the job ran");
            assert_eq!(value, i as u64 * 3, "each caller gets its own job's answer");
            names.insert(name.expect("writer threads are named"));
        }
        assert!(names.len() <= writer_threads(), "{names:?}");
        assert!(
            names.iter().all(|n| n.starts_with("pictograph-writer-")),
            "{names:?}"
        );
        let failed = on_writer(|| -> u8 { panic!("a job that fails") }).await;
        assert!(failed.is_err());
        assert_eq!(
            on_writer(|| 7u8).await.unwrap(),
            7,
            "the writers outlive a panic"
        );
    }
}
