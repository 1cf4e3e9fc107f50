//! Scale benchmark: datasets of 10k, 100k and 1M images on one `pictograph serve`, measured
//! over HTTP on 127.0.0.1. Prints figures, medians and ratios; asserts nothing beyond every
//! request succeeding.
//!
//! Only the seeding is done behind the server's back: one image is uploaded through the API
//! and its row is then repeated in the database with one INSERT … SELECT per chunk (the same
//! bytes, distinct ids, names and folders), so that a million rows take seconds, not hours.
//! The counter triggers run for every seeded row as they would for uploads.

mod bare;
mod load;
mod rss;

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::{AnyPool, Executor};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// The `pictograph` binary to run.
    #[arg(long, default_value = "target/release/pictograph")]
    bin: PathBuf,
    /// Scratch directory (a fresh data directory is made in it).
    #[arg(long, default_value = "target/bench/scale")]
    work: PathBuf,
    /// PostgreSQL database URL (an empty database) instead of SQLite.
    #[arg(long)]
    postgres: Option<String>,
    /// Dataset sizes, comma separated.
    #[arg(long, default_value = "10000,100000,1000000", value_delimiter = ',')]
    sizes: Vec<u64>,
    /// Ids in each headline batch request on the largest dataset.
    #[arg(long, default_value_t = 100_000)]
    batch: u64,
    /// Which ids the headline batches pick: `spread` (every n-th image of the whole dataset,
    /// the worst case) or `contiguous` (a run of consecutive images from the middle).
    #[arg(long, value_enum, default_value_t = BatchIds::Spread)]
    batch_ids: BatchIds,
    /// Rounds of the headline batches (each round moves, copies and sets status anew);
    /// the median of each operation is reported.
    #[arg(long, default_value_t = 1)]
    batch_rounds: usize,
    /// Seconds of each throughput run (0 skips the throughput comparison).
    #[arg(long, default_value_t = 10)]
    load_secs: u64,
    /// Connections of the throughput runs.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Annotations (boxes) on every seeded image: 0 seeds an unlabelled dataset; 4 or so is
    /// a labelled one, whose batches then also show what the lists cost them.
    #[arg(long, default_value_t = 0)]
    annotations: usize,
    /// Largest dataset also downloaded in full (images and annotations) with the CLI;
    /// 0 skips the downloads.
    #[arg(long, default_value_t = 100_000)]
    download_max: u64,
    /// Largest folder of small images (as many files as a dataset size) also uploaded with
    /// the CLI into a new dataset; 0 skips the uploads.
    #[arg(long, default_value_t = 100_000)]
    upload_max: u64,
    /// Class folders the uploaded files are spread over (1: all in one folder).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    upload_folders: u64,
    /// At the end, delete the largest dataset while another dataset is updated over and
    /// over, and report how long those updates waited.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    delete_largest: bool,
}

/// How the headline batches choose their ids.
#[derive(Clone, Copy, clap::ValueEnum)]
enum BatchIds {
    /// Evenly over the whole dataset.
    Spread,
    /// Consecutive images from the middle of the dataset.
    Contiguous,
}

#[derive(clap::Subcommand)]
enum Mode {
    /// Serve a fixed JSON body on every path (the bare handler the server is compared with).
    Bare {
        /// File holding the body to answer.
        #[arg(long)]
        body: PathBuf,
    },
}

/// A running `pictograph serve`.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Data-directory flags shared by `serve` and `keys create`.
fn data_flags(args: &Args, data: &Path) -> Vec<String> {
    let mut v = vec!["--data-dir".to_string(), data.display().to_string()];
    if let Some(pg) = &args.postgres {
        v.push("--database-url".into());
        v.push(pg.clone());
    }
    v
}

/// Starts a process and waits for the line `listening on URL` on its standard output.
fn spawn_listening(mut cmd: Command) -> Result<(Child, String)> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the server")?;
    let out = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(out).lines();
    loop {
        let Some(line) = lines.next() else {
            bail!("the server exited before listening");
        };
        if let Some(url) = line?.strip_prefix("listening on ") {
            let url = url.trim().to_string();
            std::thread::spawn(move || for _ in lines {});
            return Ok((child, url));
        }
    }
}

fn start_server(args: &Args, data: &Path) -> Result<Server> {
    let mut cmd = Command::new(&args.bin);
    cmd.arg("serve")
        .args(data_flags(args, data))
        .args(["--listen", "127.0.0.1:0"])
        .env("PICTOGRAPH_LOG", "error");
    let (child, url) = spawn_listening(cmd)?;
    Ok(Server { child, url })
}

fn create_key(args: &Args, data: &Path) -> Result<String> {
    let out = Command::new(&args.bin)
        .args(["keys", "create"])
        .args(data_flags(args, data))
        .args(["--org", "bench", "--role", "owner", "--tier", "unlimited"])
        .output()?;
    ensure!(
        out.status.success(),
        "keys create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// HTTP helper bound to one server and key.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let mut req = self
            .http
            .request(
                method.clone(),
                format!("{}/api/v1/developer{path}", self.base),
            )
            .header("X-API-Key", &self.key);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        ensure!(
            status.is_success(),
            "{method} {path}: {status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(400)])
        );
        Ok(serde_json::from_slice(&bytes)?)
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.call(Method::GET, path, None).await
    }

    /// Milliseconds of `n` runs of a request; the answer of the last.
    async fn timed(
        &self,
        n: usize,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(Vec<f64>, Value)> {
        let mut times = Vec::with_capacity(n);
        let mut last = Value::Null;
        for _ in 0..n {
            let t = Instant::now();
            last = self.call(method.clone(), path, body).await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        Ok((times, last))
    }

    /// Milliseconds of `n` GETs of a listing page, whose last answer must hold `len` items
    /// under `key`; that answer.
    async fn timed_page(
        &self,
        n: usize,
        path: &str,
        key: &str,
        len: usize,
    ) -> Result<(Vec<f64>, Value)> {
        let (times, page) = self.timed(n, Method::GET, path, None).await?;
        let got = page[key].as_array().map(Vec::len);
        ensure!(got == Some(len), "{path}: {got:?} items, expected {len}");
        Ok((times, page))
    }
}

/// The median of a sample.
fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

/// The id the seed gives image `i` of dataset number `d`.
fn seeded_id(d: u64, i: u64) -> String {
    format!("{d:08x}-0000-4000-8000-{i:012x}")
}

/// A small real JPEG (64×48 gradient).
fn sample_jpeg(path: &Path) -> Result<()> {
    let img = image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, 90])
    });
    img.save_with_format(path, image::ImageFormat::Jpeg)?;
    Ok(())
}

/// 2026-01-01T00:00:00Z in microseconds since 1970, as `images` keeps times: seeded image `i`
/// is created `i` seconds after it.
const START_MICROS: i64 = 1_767_225_600_000_000;

/// Repeats the row of image `template` (and, when `labelled`, its annotation list) until the
/// dataset holds `n` images, in chunks of one transaction each. Rows get ids from
/// [`seeded_id`], 100 folders, rising creation times, and status `review` for one in ten,
/// `annotate` for one in a thousand (`new` for the others).
async fn seed(
    db: &AnyPool,
    postgres: bool,
    d: u64,
    dataset_id: &str,
    template: &str,
    n: u64,
    labelled: bool,
) -> Result<()> {
    const CHUNK: u64 = 100_000;
    let mut from = 1;
    while from < n {
        let to = (from + CHUNK).min(n);
        let sql = if postgres {
            format!(
                "INSERT INTO images (id, dataset_seq, folder, filename, status, is_archived, blob_hash, \
                 file_size, mime_type, width, height, annotation_count, version, created_at, updated_at) \
                 SELECT '{d:08x}-0000-4000-8000-' || lpad(to_hex(i), 12, '0'), t.dataset_seq, \
                 '/f' || lpad((i % 100)::text, 2, '0'), 'img_' || lpad(i::text, 7, '0') || '.jpg', \
                 CASE WHEN i % 10 = 3 THEN 'review' WHEN i % 1000 = 7 THEN 'annotate' ELSE 'new' END, 0, \
                 t.blob_hash, t.file_size, t.mime_type, t.width, t.height, t.annotation_count, 1, \
                 {START_MICROS} + i::bigint * 1000000, {START_MICROS} + i::bigint * 1000000 \
                 FROM generate_series({from}, {}) i, images t WHERE t.id = '{template}'",
                to - 1
            )
        } else {
            format!(
                "WITH RECURSIVE n(i) AS (SELECT {from} UNION ALL SELECT i + 1 FROM n WHERE i < {}) \
                 INSERT INTO images (id, dataset_seq, folder, filename, status, is_archived, blob_hash, \
                 file_size, mime_type, width, height, annotation_count, version, created_at, updated_at) \
                 SELECT printf('{d:08x}-0000-4000-8000-%012x', i), t.dataset_seq, printf('/f%02d', i % 100), \
                 printf('img_%07d.jpg', i), CASE WHEN i % 10 = 3 THEN 'review' WHEN i % 1000 = 7 THEN 'annotate' ELSE 'new' END, 0, \
                 t.blob_hash, t.file_size, t.mime_type, t.width, t.height, \
                 t.annotation_count, 1, {START_MICROS} + i * 1000000, {START_MICROS} + i * 1000000 \
                 FROM n, images t WHERE t.id = '{template}'",
                to - 1
            )
        };
        let _ = dataset_id;
        db.execute(sqlx::AssertSqlSafe(sql)).await?;
        if labelled {
            // The template's annotation list on each new image.
            let lists = if postgres {
                format!(
                    "INSERT INTO image_annotations (image_id, annotations) \
                     SELECT '{d:08x}-0000-4000-8000-' || lpad(to_hex(i), 12, '0'), a.annotations \
                     FROM generate_series({from}, {}) i, image_annotations a WHERE a.image_id = '{template}'",
                    to - 1
                )
            } else {
                format!(
                    "WITH RECURSIVE n(i) AS (SELECT {from} UNION ALL SELECT i + 1 FROM n WHERE i < {}) \
                     INSERT INTO image_annotations (image_id, annotations) \
                     SELECT printf('{d:08x}-0000-4000-8000-%012x', i), a.annotations \
                     FROM n, image_annotations a WHERE a.image_id = '{template}'",
                    to - 1
                )
            };
            db.execute(sqlx::AssertSqlSafe(lists)).await?;
        }
        from = to;
    }
    // PostgreSQL's autovacuum would gather statistics of the new rows soon; SQLite gets none,
    // as the server never gathers them, so its plans are the ones a user's database gets.
    if postgres {
        db.execute("ANALYZE images").await?;
    }
    Ok(())
}

/// One dataset of the run.
struct Seeded {
    number: u64,
    size: u64,
    name: String,
}

impl Seeded {
    /// `k` ids spread evenly over the seeded rows.
    fn spread_ids(&self, k: u64) -> Vec<String> {
        let step = ((self.size - 1) / k).max(1);
        (0..k)
            .map(|j| seeded_id(self.number, 1 + j * step))
            .collect()
    }

    /// `k` consecutive seeded ids from the middle of the dataset.
    fn contiguous_ids(&self, k: u64) -> Vec<String> {
        let first = 1 + (self.size - 1 - k) / 2;
        (first..first + k)
            .map(|i| seeded_id(self.number, i))
            .collect()
    }
}

/// Prints one line of the report.
fn row(s: String) {
    println!("{s}");
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(Mode::Bare { body }) = &args.mode {
        return bare::serve(std::fs::read(body)?).await;
    }
    let backend = if args.postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let _ = std::fs::remove_dir_all(&args.work);
    std::fs::create_dir_all(&args.work)?;
    let data = args.work.join("data");
    let server = start_server(&args, &data)?;
    let key = create_key(&args, &data)?;
    let api = Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()?,
        base: server.url.clone(),
        key: key.clone(),
    };
    let db_url = match &args.postgres {
        Some(u) => u.clone(),
        None => format!("sqlite://{}", data.join("pictograph.db").display()),
    };
    sqlx::any::install_default_drivers();
    let db = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&db_url)
        .await?;
    if args.postgres.is_none() {
        db.execute("PRAGMA busy_timeout = 10000").await?;
    }
    let sdk = pictograph::Client::builder(key.clone())
        .base_url(server.url.clone())
        .build()?;
    let jpeg = args.work.join("sample.jpg");
    sample_jpeg(&jpeg)?;
    row(format!(
        "backend: {backend}, server {} (pid {})",
        server.url,
        server.pid()
    ));

    // ── Seeding ──
    let mut sets = Vec::new();
    for (i, &size) in args.sizes.iter().enumerate() {
        let number = i as u64 + 1;
        let name = format!("scale-{size}");
        let created = api
            .call(Method::POST, "/projects/", Some(&json!({"name": name})))
            .await?;
        let dataset_id = created["project"]["id"]
            .as_str()
            .context("project id")?
            .to_string();
        let image = sdk
            .images()
            .upload(
                &dataset_id,
                &jpeg,
                pictograph::UploadOptions {
                    folder_path: Some("/seed".into()),
                    ..Default::default()
                },
            )
            .await?;
        if args.annotations > 0 {
            let boxes: Vec<_> = (0..args.annotations)
                .map(|k| {
                    json!({"id": format!("b{k}"), "name": "car", "type": "bbox",
                        "bounding_box": {"x": 1.5 + k as f64, "y": 2.25, "w": 20.5, "h": 12.75},
                        "confidence": 0.93, "attributes": []})
                })
                .collect();
            api.call(
                Method::POST,
                &format!("/annotations/{}", image.id),
                Some(&json!({"annotations": boxes})),
            )
            .await?;
        }
        let t = Instant::now();
        seed(
            &db,
            args.postgres.is_some(),
            number,
            &dataset_id,
            &image.id,
            size,
            args.annotations > 0,
        )
        .await?;
        let got = api.get(&format!("/datasets/by-name/{name}")).await?;
        let count = got["dataset"]["image_count"].as_u64().unwrap_or(0);
        ensure!(
            count == size,
            "{name}: {count} images after seeding, expected {size}"
        );
        eprintln!(
            "seeded {name}: {size} images in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        sets.push(Seeded { number, size, name });
    }
    let sampler = rss::Sampler::start(server.pid());

    // ── Cost growth ──
    row(String::new());
    row(format!("cost growth ({backend}; medians in ms; list pages of 1,000, download-listing pages of 10,000, \"key\": the last page by key, \"tree\": the first page of a folder of 1% of the images with its sub-folders (\"dir key\": that folder alone by key, after its first image), \"status\": the first page of the 10% in review, \"rare\": of the 0.1% being annotated, \"name\": the images of one file name in any folder, \"all\": with archived images, batch moves of 1,000 ids)"));
    row(format!(
        "{:>9} {:>8} {:>10} {:>10} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "images",
        "get",
        "list@0",
        "list@end",
        "end/0",
        "imgs@0",
        "imgs@end",
        "imgs key",
        "all@0",
        "all@end",
        "tree",
        "dir key",
        "status",
        "rare",
        "name",
        "dl@0",
        "dl@end",
        "dl key",
        "move 1k"
    ));
    for s in &sets {
        let n = s.size;
        let (get, d) = api
            .timed(
                31,
                Method::GET,
                &format!("/datasets/by-name/{}", s.name),
                None,
            )
            .await?;
        ensure!(d["dataset"]["image_count"].as_u64() == Some(n), "counts");
        let list = |off: u64| {
            format!(
                "/datasets/by-name/{}?include_images=true&images_limit=1000&images_offset={off}",
                s.name
            )
        };
        let (l0, a) = api.timed(7, Method::GET, &list(0), None).await?;
        let (le, b) = api.timed(7, Method::GET, &list(n - 1000), None).await?;
        ensure!(
            a["dataset"]["images"].as_array().map(Vec::len) == Some(1000),
            "list@0 size"
        );
        ensure!(
            b["dataset"]["images"].as_array().map(Vec::len) == Some(1000),
            "list@end size"
        );
        let imgs = |off: u64| format!("/images/?dataset={}&limit=1000&offset={off}", s.name);
        let (i0, _) = api.timed(7, Method::GET, &imgs(0), None).await?;
        let (ie, c) = api.timed_page(7, &imgs(n - 1000), "data", 1000).await?;
        // The same end of the listing paged by key: after the first image of the last page.
        let last_page = c["data"][0]["id"].as_str().context("images@end id")?;
        let by_key = format!("{}&after={last_page}", imgs(0));
        let (ik, _) = api.timed_page(7, &by_key, "data", 999).await?;
        // The listing with archived images: live and archived ones merged in listing order.
        let all = |off: u64| format!("{}&include_archived=true", imgs(off));
        let (a0, _) = api.timed_page(7, &all(0), "data", 1000).await?;
        let (ae, _) = api.timed_page(7, &all(n - 1000), "data", 1000).await?;
        // The seed spreads images over /f00 … /f99.
        let folder = format!("/images/?dataset={}&folder_path=/f01&limit=1000", s.name);
        let tree = format!("{folder}&recursive=true");
        let in_tree = n as usize / 100;
        let (tr, t) = api.timed_page(7, &tree, "data", 1000.min(in_tree)).await?;
        // The folder alone (it has no sub-folders) by key, after its first image, as the CLI
        // and the SDK walk it after the first page.
        let first = t["data"][0]["id"].as_str().context("tree id")?;
        let tree_key = format!("{folder}&after={first}");
        let (tk, _) = api
            .timed_page(7, &tree_key, "data", 1000.min(in_tree - 1))
            .await?;
        // One seeded image in ten is in review, one in a thousand being annotated (the first
        // seeded image, a template, is new).
        let mut by_status = Vec::new();
        for (status, one_in) in [("review", 10), ("annotate", 1000)] {
            let page = format!("/images/?dataset={}&status={status}&limit=1000", s.name);
            let expected = n / one_in;
            let (times, v) = api
                .timed_page(7, &page, "data", 1000.min(expected as usize))
                .await?;
            ensure!(
                v["total"].as_u64() == Some(expected),
                "{} images {status}, expected {expected}",
                v["total"]
            );
            by_status.push(times);
        }
        // Seeded file names are unique: `img_0000001.jpg` … in the folders of the seed.
        let named = format!(
            "/images/?dataset={}&filename=img_{:07}.jpg&limit=1000",
            s.name,
            n / 2
        );
        let (nm, v) = api.timed_page(7, &named, "data", 1).await?;
        ensure!(v["total"].as_u64() == Some(1), "by name: {}", v["total"]);
        let dl = |off: u64| {
            format!("/datasets/by-name/{}/download?mode=full&limit=10000&offset={off}&include_annotations=true", s.name)
        };
        let (d0, _) = api.timed(5, Method::GET, &dl(0), None).await?;
        let last = 10_000.min(n as usize);
        let (de, e) = api
            .timed_page(5, &dl(n.saturating_sub(10_000)), "items", last)
            .await?;
        let last_page = e["items"][0]["id"].as_str().context("download@end id")?;
        let by_key = format!("{}&after={last_page}", dl(0));
        let (dk, _) = api.timed_page(5, &by_key, "items", last - 1).await?;
        let ids = s.spread_ids(1000);
        let mut moves = Vec::new();
        for r in 0..5 {
            let body = json!({"dataset_name": s.name, "image_ids": ids, "target_folder_path": format!("/m{}", r % 2)});
            let (t, v) = api
                .timed(1, Method::POST, "/batch/images/move", Some(&body))
                .await?;
            ensure!(v["processed"].as_u64() == Some(1000), "move 1k: {v}");
            moves.extend(t);
        }
        row(format!(
            "{:>9} {:>8.2} {:>10.1} {:>10.1} {:>7.2} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
            n,
            median(&get),
            median(&l0),
            median(&le),
            median(&le) / median(&l0),
            median(&i0),
            median(&ie),
            median(&ik),
            median(&a0),
            median(&ae),
            median(&tr),
            median(&tk),
            median(&by_status[0]),
            median(&by_status[1]),
            median(&nm),
            median(&d0),
            median(&de),
            median(&dk),
            median(&moves)
        ));
    }
    let growth_rss = sampler.take();
    row(format!(
        "server RSS during the table: max {:.1} MB",
        growth_rss.max_mb()
    ));

    // ── Headline batches on the largest dataset ──
    let big = sets.last().context("no sizes")?;
    let k = args.batch.min(big.size - 1);
    let (ids, selection) = match args.batch_ids {
        BatchIds::Spread => (big.spread_ids(k), "spread"),
        BatchIds::Contiguous => (big.contiguous_ids(k), "contiguous"),
    };
    row(String::new());
    row(format!(
        "batch requests of {k} {selection} ids on the {}-image dataset ({backend}): ms, median of {} round(s)",
        big.size, args.batch_rounds
    ));
    let statuses = ["complete", "review", "annotate"];
    let labels = ["move", "update status", "archive", "restore", "copy"];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); labels.len()];
    // The server's largest RSS during each operation (and, at the end, during all of them).
    let mut peaks = vec![0f64; labels.len()];
    let mut batch_peak = sampler.take().max_mb();
    for round in 0..args.batch_rounds {
        let ops: [(Method, &str, Value); 5] = [
            (
                Method::POST,
                "/batch/images/move",
                json!({"target_folder_path": format!("/big-moved{round}")}),
            ),
            (
                Method::PATCH,
                "/batch/images/update",
                json!({"updates": {"status": statuses[round % statuses.len()]}}),
            ),
            (
                Method::POST,
                "/batch/images/delete",
                json!({"permanent": false}),
            ),
            (
                Method::PATCH,
                "/batch/images/update",
                json!({"updates": {"is_archived": false}}),
            ),
            (
                Method::POST,
                "/batch/images/copy",
                json!({"target_folder_path": format!("/big-copy{round}"), "duplicate_handling": "rename"}),
            ),
        ];
        for (j, (method, path, extra)) in ops.iter().enumerate() {
            let mut body = json!({"dataset_name": big.name, "image_ids": ids});
            for (k2, v) in extra.as_object().expect("object") {
                body[k2] = v.clone();
            }
            let (t, v) = api.timed(1, method.clone(), path, Some(&body)).await?;
            let failed = v["failed_count"].as_u64().unwrap_or(u64::MAX);
            ensure!(
                failed == 0 && v["processed"].as_u64() == Some(k),
                "{}: {failed} failed, first: {}",
                labels[j],
                v["failures"][0]
            );
            times[j].push(t[0]);
            let peak = sampler.take().max_mb();
            peaks[j] = peaks[j].max(peak);
            batch_peak = batch_peak.max(peak);
        }
    }
    for ((label, t), peak) in labels.iter().zip(&times).zip(&peaks) {
        let all: Vec<String> = t.iter().map(|x| format!("{x:.0}")).collect();
        row(format!(
            "  {label:<14} {:>9.1} ms   ({})   server RSS max {peak:.1} MB",
            median(t),
            all.join(" ")
        ));
    }
    let move_ms = median(&times[0]);
    row(format!(
        "  server RSS during the batches: max {batch_peak:.1} MB"
    ));
    // The same move, one image per request.
    let per = 300usize;
    let mut singles = Vec::with_capacity(per);
    for (j, id) in big.spread_ids(per as u64).iter().enumerate() {
        let body = json!({"dataset_name": big.name, "image_ids": [id], "target_folder_path": format!("/single{}", j % 2)});
        let (t, _) = api
            .timed(1, Method::POST, "/batch/images/move", Some(&body))
            .await?;
        singles.push(t[0]);
    }
    let one = median(&singles);
    row(format!(
        "  per-image moves: median {one:.2} ms per request → {k} requests ≈ {:.1} s; one batch request is {:.0}x faster",
        one * k as f64 / 1000.0,
        one * k as f64 / move_ms
    ));

    // ── Full download listing walk and CLI downloads ──
    row(String::new());
    // Both ways a client can page: by offset (the official clients), and after the last
    // image of the page before (our SDK).
    for by_key in [false, true] {
        let t = Instant::now();
        let (mut seen, mut after) = (0u64, String::new());
        loop {
            let from = if by_key && seen > 0 {
                format!("after={after}")
            } else {
                format!("offset={seen}")
            };
            let v = api
                .get(&format!("/datasets/by-name/{}/download?mode=full&limit=10000&{from}&include_annotations=true", big.name))
                .await?;
            let items = v["items"].as_array().cloned().unwrap_or_default();
            seen += items.len() as u64;
            if let Some(last) = items.last().and_then(|i| i["id"].as_str()) {
                after = last.to_string();
            }
            if items.len() < 10_000 {
                break;
            }
        }
        let walk_rss = sampler.take();
        row(format!(
            "download listing of all {seen} images (pages of 10,000, by {}): {:.1} s, server RSS max {:.1} MB",
            if by_key { "key" } else { "offset" },
            t.elapsed().as_secs_f64(),
            walk_rss.max_mb()
        ));
    }
    if args.download_max > 0 {
        row(
            "CLI download (full mode, fresh directory each): time, CLI peak RSS, server peak RSS"
                .into(),
        );
        for s in sets.iter().filter(|s| s.size <= args.download_max) {
            let dir = args.work.join(format!("dl-{}", s.size));
            let download = [
                "download".as_ref(),
                s.name.as_ref(),
                dir.as_os_str(),
                "--mode".as_ref(),
                "full".as_ref(),
            ];
            let (secs, cli_mb) = run_cli(&args.bin, &key, &server.url, &download)?;
            let files = count_files(&dir)?;
            row(format!(
                "  {:>9} images: {secs:>7.1} s, {files} files, CLI RSS max {cli_mb:.1} MB, server RSS max {:.1} MB",
                s.size,
                sampler.take().max_mb()
            ));
            std::fs::remove_dir_all(&dir)?;
        }
    }
    if args.upload_max > 0 {
        row(format!(
            "CLI upload of small JPEGs in {} folder(s) (a fresh folder and dataset each): time, CLI peak RSS, server peak RSS",
            args.upload_folders
        ));
        let sample = args.work.join("upload-sample.jpg");
        sample_jpeg(&sample)?;
        let bytes = std::fs::read(&sample)?;
        for s in sets.iter().filter(|s| s.size <= args.upload_max) {
            let dir = args.work.join(format!("up-{}", s.size));
            let folders = args.upload_folders;
            for c in 0..folders {
                std::fs::create_dir_all(dir.join(format!("class_{c:04}")))?;
            }
            for i in 0..s.size {
                std::fs::write(
                    dir.join(format!("class_{:04}/img_{i:07}.jpg", i % folders)),
                    &bytes,
                )?;
            }
            let name = format!("uploaded-{}", s.size);
            let upload = [
                "upload".as_ref(),
                dir.as_os_str(),
                "--dataset".as_ref(),
                name.as_ref(),
            ];
            let (secs, cli_mb) = run_cli(&args.bin, &key, &server.url, &upload)?;
            let got = api.get(&format!("/datasets/by-name/{name}")).await?;
            let held = got["dataset"]["image_count"].as_u64();
            ensure!(held == Some(s.size), "{name} holds {held:?} images");
            row(format!(
                "  {:>9} files: {secs:>7.1} s ({:.0} files/s), CLI RSS max {cli_mb:.1} MB, server RSS max {:.1} MB",
                s.size,
                s.size as f64 / secs,
                sampler.take().max_mb()
            ));
            std::fs::remove_dir_all(&dir)?;
        }
    }

    // ── Throughput against a bare handler ──
    if args.load_secs > 0 {
        row(String::new());
        let id = seeded_id(big.number, big.size / 2);
        let path = format!("/api/v1/developer/images/{id}/metadata");
        let body = api.get(&format!("/images/{id}/metadata")).await?;
        let body_file = args.work.join("bare-body.json");
        std::fs::write(&body_file, serde_json::to_vec(&body)?)?;
        let mut bare_cmd = Command::new(std::env::current_exe()?);
        bare_cmd.args(["bare", "--body"]).arg(&body_file);
        let (bare_child, bare_url) = spawn_listening(bare_cmd)?;
        let bare_guard = Server {
            child: bare_child,
            url: bare_url,
        };
        let dur = Duration::from_secs(args.load_secs);
        // Ours, the bare handler, ours again: a drift of the machine shows as two figures.
        // Then ours over many images, more than a server keeps in its read cache.
        let spread_ids = big.spread_ids((big.size - 1).min(100_000));
        let many: Vec<String> = spread_ids
            .iter()
            .map(|id| format!("{}/api/v1/developer/images/{id}/metadata", server.url))
            .collect();
        let mut runs = Vec::new();
        for base in [&server.url, &bare_guard.url, &server.url] {
            let url = format!("{base}{path}");
            runs.push(load::run(&[url], &key, args.connections, dur).await?);
        }
        runs.push(load::run(&many, &key, args.connections, dur).await?);
        // With labelled images, also their annotation lists over the same ids.
        let lists = if args.annotations > 0 {
            let urls: Vec<String> = spread_ids
                .iter()
                .map(|id| format!("{}/api/v1/developer/annotations/{id}", server.url))
                .collect();
            Some(load::run(&urls, &key, args.connections, dur).await?)
        } else {
            None
        };
        let ours_rss = sampler.take();
        let (ours, bare, ours2, spread) = (&runs[0], &runs[1], &runs[2], &runs[3]);
        drop(bare_guard);
        row(format!("GET /images/{{id}}/metadata, {} connections, {} s each, closed loop on 127.0.0.1 ({backend}):", args.connections, args.load_secs));
        let spread_label = format!("ours, {} ids", many.len());
        let lists_label = format!("annotations, {} ids", many.len());
        let mut shown = vec![
            ("pictograph", ours),
            ("bare axum", bare),
            ("pictograph again", ours2),
            (spread_label.as_str(), spread),
        ];
        shown.extend(lists.as_ref().map(|r| (lists_label.as_str(), r)));
        for (label, r) in shown {
            row(format!(
                "  {label:<17} {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}",
                r.rps, r.p50, r.p99, r.errors
            ));
        }
        let best = ours.rps.max(ours2.rps);
        row(format!(
            "  pictograph / bare: {:.2} (best of the two runs), over {} ids {:.2}; server RSS max {:.1} MB",
            best / bare.rps,
            many.len(),
            spread.rps / bare.rps,
            ours_rss.max_mb()
        ));
    }
    // ── Deleting the largest dataset beside other writes ──
    if args.delete_largest {
        row(String::new());
        api.call(Method::POST, "/projects/", Some(&json!({"name": "beside"})))
            .await?;
        let write = |n: usize| {
            let body = json!({"description": format!("write {n}")});
            let api = &api;
            async move {
                let t = Instant::now();
                api.call(Method::PATCH, "/projects/beside", Some(&body))
                    .await?;
                anyhow::Ok(t.elapsed().as_secs_f64() * 1000.0)
            }
        };
        let mut before = Vec::new();
        for n in 0..50 {
            before.push(write(n).await?);
        }
        let started = Instant::now();
        let doomed = format!("/projects/{}", big.name);
        let delete = api.call(Method::DELETE, &doomed, None);
        tokio::pin!(delete);
        let mut during = Vec::new();
        let answer = loop {
            tokio::select! {
                answer = &mut delete => break answer?,
                took = write(during.len()) => during.push(took?),
            }
        };
        let took = started.elapsed().as_secs_f64();
        let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        row(format!(
            "deleting {} ({} images, {} blobs freed): {:.1} s, server RSS max {:.1} MB",
            big.name,
            answer["deleted"]["images_deleted"],
            answer["deleted"]["blobs_deleted"],
            took,
            sampler.take().max_mb()
        ));
        row(format!(
            "  a dataset update beside it: {} done meanwhile, median {:.1} ms, max {:.1} ms (before it: median {:.1} ms, max {:.1} ms)",
            during.len(),
            median(&during),
            max(&during),
            median(&before),
            max(&before)
        ));
    }
    row(String::new());
    let end = rss::now(server.pid())?;
    row(format!(
        "server RSS at the end: {:.1} MB (peak since start {:.1} MB)",
        end.0, end.1
    ));
    Ok(())
}

/// Runs the CLI `bin` with `args` against the server at `url`; answers its time in seconds
/// and its peak RSS in MB, or an error when it fails.
fn run_cli(bin: &Path, key: &str, url: &str, args: &[&std::ffi::OsStr]) -> Result<(f64, f64)> {
    let t = Instant::now();
    let mut child = Command::new(bin)
        .args(args)
        .env("PICTOGRAPH_API_KEY", key)
        .env("PICTOGRAPH_BASE_URL", url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let cli = rss::Sampler::start(child.id());
    let status = child.wait()?;
    let secs = t.elapsed().as_secs_f64();
    ensure!(status.success(), "pictograph {args:?} failed ({status})");
    Ok((secs, cli.take().max_mb()))
}

fn count_files(dir: &Path) -> Result<u64> {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                stack.push(e.path());
            } else {
                n += 1;
            }
        }
    }
    Ok(n)
}
