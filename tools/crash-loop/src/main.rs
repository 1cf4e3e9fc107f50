//! Crash loop: runs `pictograph serve` on one data directory and kills it with SIGKILL at
//! random moments while a folder upload (the `pictograph upload` command), batch moves and
//! annotation saves run against it, restarting it after each kill. Every driver records which
//! operations the server acknowledged (2xx) and which ones it never answered. Then the upload
//! is run again to completion and the stored state is checked against those records: every
//! image present exactly once with the source's bytes, every acknowledged move and save kept,
//! counters equal to the rows, unregistered signed uploads expired and swept, and, after
//! `pictograph gc --grace-secs 0`, no stored bytes that no image refers to and no temp file.
//!
//! Prints a summary and exits non-zero on any violation.

use anyhow::{bail, Context};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

#[derive(Parser, Debug)]
#[command(about = "Kill -9 the server under load, restart it, and check what survived")]
struct Opts {
    /// The `pictograph` binary to run.
    #[arg(long)]
    bin: PathBuf,
    /// Scratch directory (source images, data directory, logs); emptied first.
    #[arg(long)]
    work: PathBuf,
    /// Images in the uploaded folder.
    #[arg(long, default_value_t = 1000)]
    images: usize,
    /// SIGKILLs to deliver.
    #[arg(long, default_value_t = 20)]
    kills: usize,
    /// Images the move and save drivers work on (a second dataset).
    #[arg(long, default_value_t = 40)]
    moving: usize,
    /// PostgreSQL admin URL (`postgres://user@host:port`): metadata goes to a fresh database
    /// there instead of SQLite.
    #[arg(long)]
    postgres: Option<String>,
    /// Blob store URL (`s3://bucket/prefix?endpoint=…`) instead of the data directory; AWS_*
    /// credentials come from the environment.
    #[arg(long)]
    blobs: Option<String>,
    /// Lifetime of signed upload URLs on the server, in seconds: unregistered uploads expire
    /// after it.
    #[arg(long, default_value_t = 15)]
    url_ttl_secs: u64,
    /// Random seed (kill timing, driver choices).
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

const UPLOAD_DATASET: &str = "crash-upload";
const MOVE_DATASET: &str = "crash-moves";
const MOVE_FOLDERS: [&str; 3] = ["/x", "/y", "/z"];

#[tokio::main]
async fn main() {
    let opts = Opts::parse();
    match run(opts).await {
        Ok(true) => println!("crash loop: PASSED"),
        Ok(false) => {
            println!("crash loop: FAILED");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("crash loop: error: {e:#}");
            std::process::exit(2);
        }
    }
}

/// The server process, restarted on the same data directory and port.
struct Server {
    bin: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    base: String,
    child: Option<Child>,
    http: reqwest::Client,
}

impl Server {
    /// Starts `serve`; returns what it printed on standard output before listening.
    async fn start(&mut self, extra: &[String]) -> anyhow::Result<Vec<String>> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut child = Command::new(&self.bin)
            .arg("serve")
            .args(&self.args)
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting pictograph serve")?;
        let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut printed = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
                .await
                .context("serve did not start listening within 60 s")??;
            match line {
                Some(l) if l.starts_with("listening on ") => break,
                Some(l) => printed.push(l),
                None => bail!("serve exited before listening (see {})", self.log.display()),
            }
        }
        // Keep draining its standard output so that it never writes into a closed pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child = Some(child);
        let health = format!("{}/healthz", self.base);
        for _ in 0..300 {
            if let Ok(r) = self.http.get(&health).send().await {
                if r.status().is_success() {
                    return Ok(printed);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("serve listens but /healthz does not answer")
    }

    /// SIGKILL, and wait for the process to be gone.
    async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.start_kill()?;
            child.wait().await?;
        }
        Ok(())
    }
}

/// An operation a driver sent, and whether the server acknowledged it.
#[derive(Debug, Clone)]
struct Sent<T> {
    seq: usize,
    acked: bool,
    what: T,
}

/// A batch move: the ids the server said it moved (all sent ids when unanswered), and where.
#[derive(Debug, Clone)]
struct Move {
    ids: Vec<String>,
    folder: String,
}

/// An annotation save: the image and the tag of the one annotation it stores.
#[derive(Debug, Clone)]
struct Save {
    image: String,
    tag: String,
}

#[derive(Default)]
struct Records {
    moves: Vec<Sent<Move>>,
    saves: Vec<Sent<Save>>,
    upload_runs: usize,
    uploads_acked: u64,
}

struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("{}/api/v1/developer/{path}", self.base)
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
        let r = rb.header("X-API-Key", &self.key).send().await?;
        let status = r.status().as_u16();
        let bytes = r.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        self.send(self.http.get(self.url(path))).await
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    async fn ok(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let (status, v) = self.post(path, body).await?;
        if !(200..300).contains(&status) {
            bail!("POST {path} answered {status}: {v}");
        }
        Ok(v)
    }

    /// Signs an upload URL and PUTs the bytes; returns the signed answer.
    async fn sign_and_put(
        &self,
        dataset_id: &str,
        folder: &str,
        name: &str,
        bytes: &[u8],
    ) -> anyhow::Result<Value> {
        let signed = self
            .ok(
                "images/upload-url",
                &json!({"dataset_id": dataset_id, "filename": name, "folder_path": folder,
                        "content_type": "image/png"}),
            )
            .await?;
        let put = self
            .http
            .put(signed["upload_url"].as_str().context("upload_url")?)
            .header("Content-Type", "image/png")
            .body(bytes.to_vec())
            .send()
            .await?;
        if !put.status().is_success() {
            bail!("PUT of {name} answered {}", put.status());
        }
        Ok(signed)
    }

    async fn register(
        &self,
        dataset_id: &str,
        folder: &str,
        name: &str,
        signed: &Value,
    ) -> anyhow::Result<(u16, Value)> {
        let form = [
            ("dataset_id", dataset_id),
            ("filename", name),
            ("folder_path", folder),
            ("gcs_path", signed["gcs_path"].as_str().unwrap_or_default()),
        ];
        self.send(self.http.post(self.url("images/register")).form(&form))
            .await
    }

    /// Every live image of a dataset, read a page of 1,000 at a time by key.
    async fn images(&self, dataset: &str) -> anyhow::Result<Vec<Value>> {
        let mut all: Vec<Value> = Vec::new();
        loop {
            let after = match all.last() {
                Some(last) => format!("&after={}", last["id"].as_str().unwrap_or_default()),
                None => String::new(),
            };
            let (status, v) = self
                .get(&format!("images/?dataset={dataset}&limit=1000{after}"))
                .await?;
            if status != 200 {
                bail!("listing {dataset} answered {status}: {v}");
            }
            let page = v["images"].as_array().cloned().unwrap_or_default();
            let full = page.len() == 1000;
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A small real image whose pixels depend on `n`: PNG or JPEG.
fn image_bytes(n: usize, jpeg: bool) -> Vec<u8> {
    let (a, b) = ((n % 251) as u8, (n / 251) as u8);
    let img = image::RgbImage::from_fn(16, 12, |x, y| {
        image::Rgb([a, b.wrapping_add((x * 13) as u8), (y * 19) as u8 ^ a])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    let format = if jpeg {
        image::ImageFormat::Jpeg
    } else {
        image::ImageFormat::Png
    };
    img.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

/// Writes `n` images into class sub-folders; returns relative path → SHA-256. JPEG encodings
/// of different pixels can coincide, so duplicates are re-drawn.
fn generate(root: &Path, n: usize) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut k = 0;
    while out.len() < n {
        let i = out.len();
        let jpeg = i % 3 == 0;
        let bytes = image_bytes(k, jpeg);
        k += 1;
        let hash = sha256(&bytes);
        if !seen.insert(hash.clone()) {
            continue;
        }
        let rel = format!(
            "class{}/img{i:05}.{}",
            i % 10,
            if jpeg { "jpg" } else { "png" }
        );
        let path = root.join(&rel);
        std::fs::create_dir_all(path.parent().expect("parent"))?;
        std::fs::write(&path, &bytes)?;
        out.insert(rel, hash);
    }
    Ok(out)
}

/// Runs `pictograph upload` of the folder once; returns its JSON report, or `None` when it
/// printed none (it died with the server, or could not reach it).
async fn upload_once(
    bin: &Path,
    base: &str,
    key: &str,
    folder: &Path,
) -> anyhow::Result<Option<Value>> {
    let out = Command::new(bin)
        .arg("upload")
        .arg(folder)
        .args(["--dataset", UPLOAD_DATASET, "--json", "--workers", "8"])
        .env("PICTOGRAPH_BASE_URL", base)
        .env("PICTOGRAPH_API_KEY", key)
        .env("HOME", folder.parent().unwrap_or(folder))
        .stdin(std::process::Stdio::null())
        .output()
        .await?;
    Ok(serde_json::from_slice(&out.stdout).ok())
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn annotation(tag: &str) -> Value {
    json!([{"id": tag, "name": "thing", "type": "bbox",
            "bounding_box": {"x": 1.0, "y": 1.0, "w": 2.0, "h": 2.0},
            "confidence": 1.0, "attributes": []}])
}

/// Batch moves until `stop`, one at a time.
async fn move_driver(
    api: Arc<Api>,
    ids: Vec<String>,
    seq: Arc<AtomicUsize>,
    records: Arc<Mutex<Records>>,
    stop: Arc<AtomicBool>,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    while !stop.load(Ordering::SeqCst) {
        let n = rng.random_range(1..=5);
        let mut chosen: Vec<String> = (0..n).map(|_| pick(&mut rng, &ids).clone()).collect();
        chosen.sort();
        chosen.dedup();
        let folder = pick(&mut rng, &MOVE_FOLDERS).to_string();
        let s = seq.fetch_add(1, Ordering::SeqCst);
        let body = json!({"dataset_name": MOVE_DATASET, "image_ids": chosen,
                          "target_folder_path": folder});
        let answer = api.post("batch/images/move", &body).await;
        let sent = match answer {
            Ok((200, v)) => Sent {
                seq: s,
                acked: true,
                what: Move {
                    ids: v["succeeded"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|i| i.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default(),
                    folder,
                },
            },
            _ => Sent {
                seq: s,
                acked: false,
                what: Move {
                    ids: chosen,
                    folder,
                },
            },
        };
        records.lock().unwrap().moves.push(sent);
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
}

/// Annotation saves until `stop`, one at a time: plain saves (as the official client sends
/// them) and saves conditional on the version just read.
async fn save_driver(
    api: Arc<Api>,
    ids: Vec<String>,
    seq: Arc<AtomicUsize>,
    records: Arc<Mutex<Records>>,
    stop: Arc<AtomicBool>,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    while !stop.load(Ordering::SeqCst) {
        let image = pick(&mut rng, &ids).clone();
        let path = format!("annotations/{image}");
        let mut body = json!({"image_id": image});
        if rng.random_bool(0.5) {
            match api.get(&path).await {
                Ok((200, v)) => body["expected_version"] = v["version"].clone(),
                _ => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let s = seq.fetch_add(1, Ordering::SeqCst);
        let tag = format!("save-{s}");
        body["annotations"] = annotation(&tag);
        let answer = api.post(&path, &body).await;
        let acked = match answer {
            Ok((200, _)) => true,
            // A refused stale save is an answer: nothing was stored.
            Ok((409, _)) => continue,
            _ => false,
        };
        records.lock().unwrap().saves.push(Sent {
            seq: s,
            acked,
            what: Save { image, tag },
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A check's outcome, printed in the summary.
struct Checks {
    passed: usize,
    failed: Vec<String>,
}

impl Checks {
    fn check(&mut self, ok: bool, what: impl Into<String>) {
        let what = what.into();
        if ok {
            self.passed += 1;
            println!("  ok    {what}");
        } else {
            println!("  FAIL  {what}");
            self.failed.push(what);
        }
    }
}

/// The names of the stored objects under `dir`: for `blobs`, the hash of every stored blob
/// (files on disk, or objects under `prefix/blobs/` in S3); for `uploads`, the objects clients
/// PUT through presigned URLs (S3 only; none on disk).
async fn stored(data: &Path, blobs: Option<&str>, dir: &str) -> anyhow::Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    match blobs {
        None => {
            let mut dirs = vec![data.join(dir)];
            dirs.retain(|d| d.is_dir());
            while let Some(dir) = dirs.pop() {
                for e in std::fs::read_dir(&dir)? {
                    let e = e?;
                    if e.file_type()?.is_dir() {
                        dirs.push(e.path());
                    } else {
                        out.insert(e.file_name().to_string_lossy().into_owned());
                    }
                }
            }
        }
        Some(url) => {
            use futures::StreamExt;
            use object_store::ObjectStore;
            let (url, query) = url.split_once('?').unwrap_or((url, ""));
            let rest = url.strip_prefix("s3://").context("s3:// URL")?;
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                match pair.split_once('=') {
                    Some(("endpoint", v)) => {
                        b = b.with_endpoint(v).with_allow_http(v.starts_with("http://"))
                    }
                    Some(("region", v)) => b = b.with_region(v),
                    _ => {}
                }
            }
            let store = b.build()?;
            let dir = object_store::path::Path::from(
                format!("{}/{dir}", prefix.trim_matches('/')).trim_start_matches('/'),
            );
            let mut list = store.list(Some(&dir));
            while let Some(meta) = list.next().await {
                if let Some(name) = meta?.location.filename() {
                    out.insert(name.to_string());
                }
            }
        }
    }
    Ok(out)
}

async fn run(opts: Opts) -> anyhow::Result<bool> {
    let started = Instant::now();
    let work = opts.work.clone();
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    let src = work.join("source");
    let data = work.join("data");
    std::fs::create_dir_all(&src)?;
    let sources = generate(&src, opts.images)?;
    println!(
        "generated {} images in {} class folders",
        sources.len(),
        sources.len().min(10)
    );

    // Metadata store.
    sqlx::any::install_default_drivers();
    let (database_url, drop_db) = match &opts.postgres {
        None => (
            format!("sqlite://{}", data.join("pictograph.db").display()),
            None,
        ),
        Some(admin) => {
            let admin = admin.trim_end_matches('/');
            let name = format!("crash_{}_{}", std::process::id(), opts.seed);
            let pool = sqlx::AnyPool::connect(&format!("{admin}/postgres")).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&pool)
                .await?;
            (
                format!("{admin}/{name}"),
                Some((format!("{admin}/postgres"), name)),
            )
        }
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()?;
    // Where the data lives, for serve and gc alike.
    let mut store_args = vec!["--data-dir".to_string(), data.display().to_string()];
    if opts.postgres.is_some() {
        store_args.extend(["--database-url".into(), database_url.clone()]);
    }
    if let Some(b) = &opts.blobs {
        store_args.extend(["--blobs".into(), b.clone()]);
    }
    let mut args = store_args.clone();
    args.extend([
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--blob-grace-secs".into(),
        "900".into(),
    ]);
    let mut server = Server {
        bin: opts.bin.clone(),
        args,
        log: work.join("server.log"),
        base: base.clone(),
        child: None,
        http: http.clone(),
    };
    let ttl = vec!["--url-ttl-secs".to_string(), opts.url_ttl_secs.to_string()];
    let printed = server.start(&ttl).await?;
    let key = printed
        .iter()
        .map(|l| l.trim())
        .find(|l| l.starts_with("pk_"))
        .context("the first start printed no owner key")?
        .to_string();
    let api = Arc::new(Api {
        http: http.clone(),
        base: base.clone(),
        key: key.clone(),
    });

    // The images the move and save drivers work on, uploaded before any kill.
    let moves_ds = api
        .ok(
            "projects/",
            &json!({"name": MOVE_DATASET, "classes": ["thing"]}),
        )
        .await?;
    let moves_ds_id = moves_ds["project"]["id"]
        .as_str()
        .context("dataset id")?
        .to_string();
    let mut moving_ids = Vec::new();
    let mut moving_hashes = BTreeSet::new();
    for i in 0..opts.moving {
        let bytes = image_bytes(1_000_000 + i, false);
        moving_hashes.insert(sha256(&bytes));
        let name = format!("m{i:03}.png");
        let signed = api.sign_and_put(&moves_ds_id, "/x", &name, &bytes).await?;
        let (status, v) = api.register(&moves_ds_id, "/x", &name, &signed).await?;
        if status != 201 {
            bail!("registering {name} answered {status}: {v}");
        }
        moving_ids.push(v["image_id"].as_str().context("image_id")?.to_string());
    }

    // Drivers.
    let records = Arc::new(Mutex::new(Records::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let seq = Arc::new(AtomicUsize::new(0));
    let mover = tokio::spawn(move_driver(
        api.clone(),
        moving_ids.clone(),
        seq.clone(),
        records.clone(),
        stop.clone(),
        opts.seed,
    ));
    let saver = tokio::spawn(save_driver(
        api.clone(),
        moving_ids.clone(),
        seq.clone(),
        records.clone(),
        stop.clone(),
        opts.seed + 1,
    ));
    let uploading = Arc::new(AtomicBool::new(true));
    let uploader = {
        let (bin, base, key, src) = (opts.bin.clone(), base.clone(), key.clone(), src.clone());
        let (records, uploading, stop) = (records.clone(), uploading.clone(), stop.clone());
        tokio::spawn(async move {
            // Re-run the upload whenever a run ends, until one completes after the kills.
            loop {
                let report = upload_once(&bin, &base, &key, &src).await;
                let complete = {
                    let mut rec = records.lock().unwrap();
                    rec.upload_runs += 1;
                    match &report {
                        Ok(Some(r)) => {
                            rec.uploads_acked += r["uploaded"].as_u64().unwrap_or(0);
                            r["failed"] == 0
                        }
                        _ => false,
                    }
                };
                if complete {
                    uploading.store(false, Ordering::SeqCst);
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // Kills: at random moments, 0.2 to 1.2 s after the server is up again.
    let mut rng = StdRng::seed_from_u64(opts.seed + 2);
    let mut kills_during_upload = 0;
    for k in 0..opts.kills {
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1200))).await;
        if uploading.load(Ordering::SeqCst) {
            kills_during_upload += 1;
        }
        server.kill().await?;
        server
            .start(&ttl)
            .await
            .with_context(|| format!("restart after kill {}", k + 1))?;
    }
    stop.store(true, Ordering::SeqCst);
    mover.await?;
    saver.await?;
    tokio::time::timeout(Duration::from_secs(600), uploader)
        .await
        .context("the upload did not complete within 10 minutes after the kills")??;
    let kill_phase = started.elapsed();

    // The same upload once more, to completion, with the server left alone.
    let rerun = upload_once(&opts.bin, &base, &key, &src).await?;
    let mut checks = Checks {
        passed: 0,
        failed: Vec::new(),
    };
    println!("checks:");
    let rerun = rerun.unwrap_or(Value::Null);
    checks.check(
        rerun["failed"] == 0 && rerun["files"] == sources.len(),
        format!(
            "re-run upload completes ({} uploaded, {} skipped, {} failed)",
            rerun["uploaded"], rerun["skipped"], rerun["failed"]
        ),
    );

    // Every source image exactly once, in its class folder, with the source's bytes.
    let listed = api.images(UPLOAD_DATASET).await?;
    let mut by_path: HashMap<String, Vec<&Value>> = HashMap::new();
    for img in &listed {
        let folder = img["virtual_folder_path"].as_str().unwrap_or("/");
        let rel = format!(
            "{}/{}",
            folder.trim_matches('/'),
            img["filename"].as_str().unwrap_or_default()
        );
        by_path.entry(rel).or_default().push(img);
    }
    let dupes = by_path.values().filter(|v| v.len() > 1).count();
    let missing: Vec<&String> = sources
        .keys()
        .filter(|k| !by_path.contains_key(*k))
        .collect();
    let strangers = by_path.keys().filter(|k| !sources.contains_key(*k)).count();
    checks.check(
        listed.len() == sources.len() && dupes == 0 && missing.is_empty() && strangers == 0,
        format!(
            "every image present exactly once: {} listed for {} sources, {} duplicated, {} missing{}, {} unexpected",
            listed.len(),
            sources.len(),
            dupes,
            missing.len(),
            missing.first().map(|m| format!(" (e.g. {m})")).unwrap_or_default(),
            strangers
        ),
    );
    let mut mismatched = Vec::new();
    {
        use futures::StreamExt;
        let jobs: Vec<(String, String, String)> = by_path
            .iter()
            .filter_map(|(rel, imgs)| {
                let id = imgs[0]["id"].as_str()?.to_string();
                Some((rel.clone(), id, sources.get(rel)?.clone()))
            })
            .collect();
        let results: Vec<Option<String>> = futures::stream::iter(jobs)
            .map(|(rel, id, want)| {
                let api = api.clone();
                async move {
                    let got = api
                        .http
                        .get(api.url(&format!("images/{id}")))
                        .header("X-API-Key", &api.key)
                        .send()
                        .await
                        .ok()?;
                    let bytes = got.bytes().await.ok()?;
                    (sha256(&bytes) != want).then_some(rel)
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        mismatched.extend(results.into_iter().flatten());
    }
    checks.check(
        mismatched.is_empty(),
        format!(
            "downloaded bytes hash-equal to the source files ({} differ)",
            mismatched.len()
        ),
    );

    // Moves and saves: what each image holds must be what the last acknowledged operation
    // left, or what one sent after it, never answered, may have done.
    let rec = std::mem::take(&mut *records.lock().unwrap());
    let moved = api.images(MOVE_DATASET).await?;
    let mut move_violations = Vec::new();
    let mut save_violations = Vec::new();
    let mut unknown_landed = 0;
    checks.check(
        moved.len() == moving_ids.len(),
        format!(
            "moved images all present once ({} of {})",
            moved.len(),
            moving_ids.len()
        ),
    );
    for id in &moving_ids {
        let img = moved.iter().find(|i| i["id"] == id.as_str());
        let Some(img) = img else {
            move_violations.push(format!("{id} missing"));
            continue;
        };
        let mut allowed = BTreeSet::from(["/x".to_string()]);
        for m in rec.moves.iter().filter(|m| m.what.ids.contains(id)) {
            if m.acked {
                allowed.clear();
            }
            allowed.insert(m.what.folder.clone());
        }
        let folder = img["virtual_folder_path"].as_str().unwrap_or_default();
        if !allowed.contains(folder) {
            move_violations.push(format!("{id} in {folder}, allowed {allowed:?}"));
        }

        let (_, stored) = api.get(&format!("annotations/{id}")).await?;
        let tag = stored["annotations"][0]["id"].as_str().map(String::from);
        let mut allowed: BTreeSet<Option<String>> = BTreeSet::from([None]);
        let mut last_acked = None;
        for s in rec.saves.iter().filter(|s| &s.what.image == id) {
            if s.acked {
                allowed.clear();
                last_acked = Some(s.seq);
            }
            allowed.insert(Some(s.what.tag.clone()));
        }
        if !allowed.contains(&tag) {
            save_violations.push(format!("{id} holds {tag:?}, allowed {allowed:?}"));
        } else if let Some(t) = &tag {
            let landed = rec.saves.iter().find(|s| &s.what.tag == t);
            if landed.is_some_and(|s| !s.acked && Some(s.seq) > last_acked) {
                unknown_landed += 1;
            }
        }
    }
    let acked_moves = rec.moves.iter().filter(|m| m.acked).count();
    let acked_saves = rec.saves.iter().filter(|s| s.acked).count();
    checks.check(
        move_violations.is_empty(),
        format!(
            "every acknowledged move kept ({acked_moves} acknowledged, {} unanswered){}",
            rec.moves.len() - acked_moves,
            move_violations
                .first()
                .map(|v| format!(": {v}"))
                .unwrap_or_default()
        ),
    );
    checks.check(
        save_violations.is_empty(),
        format!(
            "every acknowledged annotation save kept ({acked_saves} acknowledged, {} unanswered, {unknown_landed} unanswered ones landed){}",
            rec.saves.len() - acked_saves,
            save_violations
                .first()
                .map(|v| format!(": {v}"))
                .unwrap_or_default()
        ),
    );
    let (upload_runs, uploads_acked) = (rec.upload_runs, rec.uploads_acked);

    // Signed but never registered: the URL expires, register is refused, the sweep drops the
    // upload and frees its bytes.
    let upload_ds = api
        .get(&format!("datasets/by-name/{UPLOAD_DATASET}"))
        .await?
        .1["dataset"]["id"]
        .as_str()
        .context("upload dataset id")?
        .to_string();
    let never = image_bytes(2_000_000, false);
    let never_hash = sha256(&never);
    let signed = api
        .sign_and_put(&upload_ds, "/never", "registered.png", &never)
        .await?;
    // Every URL handed out so far, this one included, has expired after this.
    tokio::time::sleep(Duration::from_secs(opts.url_ttl_secs + 1)).await;
    let (status, _) = api
        .register(&upload_ds, "/never", "registered.png", &signed)
        .await?;
    checks.check(
        status == 404,
        format!("register after the signed URL expired is refused ({status})"),
    );

    // gc, beside the running server, with the servers' URL lifetime.
    let gc = Command::new(&opts.bin)
        .arg("gc")
        .args(&store_args)
        .args(["--grace-secs", "0", "--json"])
        .args(&ttl)
        .output()
        .await?;
    let report: Value = serde_json::from_slice(&gc.stdout).unwrap_or(Value::Null);
    let n = |k: &str| report[k].as_array().map(Vec::len).unwrap_or(0);
    checks.check(
        gc.status.success(),
        format!(
            "pictograph gc --grace-secs 0 runs ({} expired uploads, {} orphan blobs, {} unrecorded blob files, {} temp files, {} staged objects)",
            n("expired_uploads"),
            n("orphan_blobs"),
            n("unrecorded_blobs"),
            n("temp_files"),
            n("staged_objects")
        ),
    );
    if !gc.status.success() {
        println!("{}", String::from_utf8_lossy(&gc.stderr));
    }
    let by_gc = report["expired_uploads"]
        .as_array()
        .is_some_and(|a| a.iter().any(|i| i == &signed["upload_id"]));
    // Rows: no pending upload left, every blob record referenced, counters equal to rows.
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&database_url)
        .await?;
    use sqlx::Row;
    let one = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query(sql)
                .fetch_one(&pool)
                .await
                .map(|r| r.get::<i64, _>(0))
        }
    };
    let pending = one("SELECT COUNT(*) FROM pending_uploads").await?;
    checks.check(
        pending == 0,
        format!(
            "no pending upload left after expiry and gc ({pending}; the unregistered one swept by {})",
            if by_gc { "gc" } else { "the server's own sweep" }
        ),
    );
    // Images keep the hash as bytes, the blobs table as hex text.
    let unreferenced = one(if opts.postgres.is_some() {
        "SELECT COUNT(*) FROM blobs WHERE NOT EXISTS \
         (SELECT 1 FROM images i WHERE i.blob_hash = decode(blobs.hash, 'hex'))"
    } else {
        "SELECT COUNT(*) FROM blobs WHERE NOT EXISTS \
         (SELECT 1 FROM images i WHERE i.blob_hash = unhex(blobs.hash))"
    })
    .await?;
    checks.check(
        unreferenced == 0,
        format!("every blob record referenced by an image ({unreferenced} not)"),
    );
    let off = one(
        "SELECT COUNT(*) FROM datasets d WHERE \
         d.image_count <> (SELECT COUNT(*) FROM images i WHERE i.dataset_seq = d.seq AND i.is_archived = 0) \
         OR d.archived_images <> (SELECT COUNT(*) FROM images i WHERE i.dataset_seq = d.seq AND i.is_archived <> 0) \
         OR d.total_size <> (SELECT COALESCE(SUM(i.file_size), 0) FROM images i WHERE i.dataset_seq = d.seq AND i.is_archived = 0) \
         OR d.annotation_count <> (SELECT COALESCE(SUM(i.annotation_count), 0) FROM images i WHERE i.dataset_seq = d.seq AND i.is_archived = 0) \
         OR d.completed_image_count <> (SELECT COUNT(*) FROM images i WHERE i.dataset_seq = d.seq AND i.is_archived = 0 AND i.status = 'complete')",
    )
    .await?;
    checks.check(
        off == 0,
        format!("dataset counters equal the rows ({off} datasets off)"),
    );
    let listed_count = api
        .get(&format!("datasets/by-name/{UPLOAD_DATASET}"))
        .await?
        .1["dataset"]["image_count"]
        .as_i64()
        .unwrap_or(-1);
    checks.check(
        listed_count == sources.len() as i64,
        format!(
            "the upload dataset counts {listed_count} images for {} sources",
            sources.len()
        ),
    );
    pool.close().await;

    // Bytes: exactly the images' bytes are stored, nothing else; no temp file.
    let staged = stored(&data, opts.blobs.as_deref(), "uploads").await?;
    checks.check(
        staged.is_empty(),
        format!("no presigned upload object left ({})", staged.len()),
    );
    let kept = stored(&data, opts.blobs.as_deref(), "blobs").await?;
    let mut expected: BTreeSet<String> = sources.values().cloned().collect();
    expected.extend(moving_hashes);
    let extra = kept.difference(&expected).count();
    let lacking = expected.difference(&kept).count();
    checks.check(
        extra == 0 && lacking == 0 && !kept.contains(&never_hash),
        format!(
            "stored bytes are exactly the images' ({} stored, {extra} unreferenced, {lacking} missing)",
            kept.len()
        ),
    );
    let temp = std::fs::read_dir(data.join("tmp"))
        .map(|d| d.count())
        .unwrap_or(0);
    checks.check(temp == 0, format!("no temp file left ({temp})"));

    server.kill().await?;
    if let Some((admin, name)) = drop_db {
        let pool = sqlx::AnyPool::connect(&admin).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&pool)
        .await?;
    }

    println!(
        "summary: {} kills ({} during the folder upload) in {:.0} s; {} upload runs, {} images \
         acknowledged; {} moves and {} annotation saves acknowledged; {} checks passed, {} failed; \
         total {:.0} s",
        opts.kills,
        kills_during_upload,
        kill_phase.as_secs_f64(),
        upload_runs,
        uploads_acked,
        acked_moves,
        acked_saves,
        checks.passed,
        checks.failed.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(checks.failed.is_empty())
}
