//! `pictograph backup` against the data directory of a running server: a backup taken while
//! uploads go on restores every image it lists, bytes and annotations included; re-runs copy
//! only what changed, repair what was damaged and remove what is gone; a damaged source
//! leaves the previous backup in place; unsafe targets are refused and left untouched.

use pictograph_server::auth::{create_key, Role};
use pictograph_server::{App, Config};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The binary with no `PICTOGRAPH_*` settings of the calling environment.
fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pictograph"));
    for (k, _) in std::env::vars() {
        if k.starts_with("PICTOGRAPH_") || k.starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    c.stdin(Stdio::null());
    c
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn exec(mut c: Command) -> Out {
    let out = c.output().expect("run pictograph");
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Out {
    fn json(&self) -> Value {
        assert!(self.ok, "stdout: {}\nstderr: {}", self.stdout, self.stderr);
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// `pictograph backup --data-dir DATA OUT --json [extra]`.
fn backup(data: &Path, out: &Path, extra: &[&str]) -> Out {
    let mut c = bin();
    c.args(["backup", "--json", "--data-dir"])
        .arg(data)
        .arg(out)
        .args(extra);
    exec(c)
}

/// A client command against the server at `url` with `key`.
fn client(url: &str, key: &str, config_dir: &Path, args: &[&str]) -> Out {
    let mut c = bin();
    c.env("PICTOGRAPH_CONFIG_DIR", config_dir)
        .env("PICTOGRAPH_BASE_URL", url)
        .env("PICTOGRAPH_API_KEY", key)
        .args(args);
    exec(c)
}

/// `n` distinct PNGs under `root/<class>/`, two classes.
fn tree(root: &Path, n: usize, seed: u8) {
    for i in 0..n {
        let class = if i % 2 == 0 { "cats" } else { "dogs" };
        let dir = root.join(class);
        std::fs::create_dir_all(&dir).unwrap();
        image::RgbImage::from_fn(24 + i as u32 % 5, 16, |x, y| {
            image::Rgb([seed, i as u8, (x * 7 + y * 3) as u8])
        })
        .save(dir.join(format!("{seed}-{i}.png")))
        .unwrap();
    }
}

/// Every file under `root`.
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Every file under `root`, relative path to bytes.
fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    walk(root)
        .into_iter()
        .map(|path| {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&path).unwrap();
            (rel, bytes)
        })
        .collect()
}

/// The stored files of a data directory, by hash.
fn blob_files(data: &Path) -> BTreeMap<String, PathBuf> {
    walk(&data.join("blobs"))
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, path)
        })
        .collect()
}

/// A server on `data` with an unlimited key of its own organisation.
async fn serve(data: &Path) -> (App, String, String) {
    let mut config = Config::new(data);
    config.listen = "127.0.0.1:0".parse().unwrap();
    let app = App::start(config).await.unwrap();
    let key = create_key(&app.state.store, "org", Role::Owner, "unlimited")
        .await
        .unwrap();
    let url = format!("http://{}", app.addr);
    (app, url, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_restores_what_it_lists() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (data, out, cfg) = (root.join("data"), root.join("backup"), root.join("cfg"));
    let (app, url, key) = serve(&data).await;

    tree(&root.join("first"), 12, 1);
    let up = client(
        &url,
        &key,
        &cfg,
        &[
            "upload",
            root.join("first").to_str().unwrap(),
            "--dataset",
            "first",
            "--json",
        ],
    );
    assert_eq!(up.json()["uploaded"], 12, "{}", up.stdout);
    let listed = client(
        &url,
        &key,
        &cfg,
        &["images", "list", "-d", "first", "--ids"],
    );
    assert!(listed.ok, "{}", listed.stderr);
    let labelled = listed.stdout.lines().next().unwrap().to_string();
    let boxes = root.join("boxes.json");
    std::fs::write(
        &boxes,
        r#"[{"name": "cat", "type": "bbox", "bbox": [1, 2, 10, 8]},
            {"name": "eye", "type": "keypoint", "keypoint": [4, 5]}]"#,
    )
    .unwrap();
    let set = client(
        &url,
        &key,
        &cfg,
        &["annotations", "set", &labelled, boxes.to_str().unwrap()],
    );
    assert!(set.ok, "{}", set.stderr);

    // A second folder is uploading, one file at a time, while the backup runs: it starts
    // once the first of those images is registered.
    tree(&root.join("second"), 300, 2);
    let uploading = {
        let (url, key, cfg, src) = (url.clone(), key.clone(), cfg.clone(), root.join("second"));
        std::thread::spawn(move || {
            client(
                &url,
                &key,
                &cfg,
                &[
                    "upload",
                    src.to_str().unwrap(),
                    "--dataset",
                    "second",
                    "--workers",
                    "1",
                    "--json",
                ],
            )
        })
    };
    let started = std::time::Instant::now();
    while client(
        &url,
        &key,
        &cfg,
        &["images", "list", "-d", "second", "--ids", "--limit", "1"],
    )
    .stdout
    .trim()
    .is_empty()
    {
        assert!(
            started.elapsed().as_secs() < 60,
            "the second upload never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let first = backup(&data, &out, &[]).json();
    let second_upload = uploading.join().unwrap().json();
    assert_eq!(second_upload["uploaded"], 300);
    assert_eq!(first["copied"], first["blobs"], "{first}");
    let taken = first["images"].as_u64().unwrap();
    assert!(taken > 12, "{first}");
    eprintln!(
        "the backup took {} of the 300 images being uploaded",
        taken - 12
    );
    assert_eq!(first["signing_key"], true);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("backup.json")).unwrap()).unwrap();
    assert_eq!(manifest["complete"], true);
    assert_eq!(manifest["report"], first);

    // A server cannot open the backup under its own key, but a restore of it serves every
    // image it lists, with the same bytes and annotations, to the source's key.
    let restored = root.join("restored");
    let restore = backup(&out, &restored, &[]).json();
    assert_eq!(restore["images"], first["images"]);
    let mut config = Config::new(&restored);
    config.listen = "127.0.0.1:0".parse().unwrap();
    let copy = App::start(config).await.unwrap();
    let copy_url = format!("http://{}", copy.addr);
    let dl = client(
        &copy_url,
        &key,
        &cfg,
        &[
            "download",
            "first",
            root.join("dl-first").to_str().unwrap(),
            "--json",
        ],
    )
    .json();
    assert_eq!(dl["images_downloaded"], 12, "{dl}");
    let originals = files(&root.join("first"));
    let downloaded = files(&root.join("dl-first"));
    for (rel, bytes) in &originals {
        assert_eq!(
            downloaded.get(rel),
            Some(bytes),
            "{rel} differs after restore"
        );
    }
    let anns = client(
        &copy_url,
        &key,
        &cfg,
        &["annotations", "get", &labelled, "--json"],
    );
    assert!(
        anns.stdout.contains("\"cat\"") && anns.stdout.contains("\"keypoint\""),
        "{}",
        anns.stdout
    );
    // The upload that ran meanwhile: whatever part the backup took is whole.
    let part = client(
        &copy_url,
        &key,
        &cfg,
        &[
            "download",
            "second",
            root.join("dl-second").to_str().unwrap(),
            "--json",
        ],
    );
    let total = first["images"].as_u64().unwrap() - 12;
    if total > 0 {
        let part = part.json();
        assert_eq!(part["images_downloaded"], total, "{part}");
        assert_eq!(part["failed"], 0, "{part}");
        let sources = files(&root.join("second"));
        for (rel, bytes) in files(&root.join("dl-second")) {
            if rel.ends_with(".png") {
                assert_eq!(sources.get(&rel), Some(&bytes), "{rel}");
            }
        }
    }
    copy.stop().await.unwrap();

    // Re-run: only what changed moves. Archive-and-purge three images, so their bytes go.
    let ids: Vec<String> = listed
        .stdout
        .lines()
        .skip(1)
        .take(3)
        .map(str::to_string)
        .collect();
    let mut args = vec!["images", "delete", "--permanent"];
    args.extend(ids.iter().map(String::as_str));
    let gone = client(&url, &key, &cfg, &args);
    assert!(gone.ok, "{}", gone.stderr);
    let again = backup(&data, &out, &[]).json();
    assert_eq!(again["images"], 12 - 3 + 300, "{again}");
    assert_eq!(
        again["present"].as_u64().unwrap(),
        first["blobs"].as_u64().unwrap() - 3,
        "{again}"
    );
    assert_eq!(
        again["copied"].as_u64().unwrap(),
        again["blobs"].as_u64().unwrap() - again["present"].as_u64().unwrap(),
        "{again}"
    );
    assert_eq!(again["pruned"], 3, "{again}");
    assert_eq!(
        blob_files(&out).len() as u64,
        again["blobs"].as_u64().unwrap()
    );

    // Damage in the backup is found: a wrong size always, wrong bytes of the right size
    // with --verify; both are copied again.
    let stored = blob_files(&out);
    let mut damaged = stored.values();
    let (truncated, flipped) = (damaged.next().unwrap(), damaged.next().unwrap());
    let len = std::fs::metadata(flipped).unwrap().len() as usize;
    std::fs::write(truncated, b"short").unwrap();
    std::fs::write(flipped, vec![0u8; len]).unwrap();
    let plain = backup(&data, &out, &[]).json();
    assert_eq!(plain["repaired"], 1, "{plain}");
    let verified = backup(&data, &out, &["--verify"]).json();
    assert_eq!(
        (verified["repaired"].clone(), verified["verified"].clone()),
        (1.into(), true.into()),
        "{verified}"
    );
    for (hash, path) in blob_files(&out) {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
            hash
        );
    }

    // Bytes the source lost make the run fail and leave the previous backup as it was.
    let before = std::fs::read(out.join("pictograph.db")).unwrap();
    let manifest_before = std::fs::read(out.join("backup.json")).unwrap();
    let (hash, copied) = blob_files(&out).into_iter().next().unwrap();
    std::fs::remove_file(stored_path(&data, &hash)).unwrap();
    std::fs::remove_file(copied).unwrap();
    let failed = backup(&data, &out, &[]);
    assert!(!failed.ok);
    assert!(
        failed.stderr.contains("could not be copied") && failed.stderr.contains(&hash),
        "{}",
        failed.stderr
    );
    assert_eq!(std::fs::read(out.join("pictograph.db")).unwrap(), before);
    assert!(!out.join("pictograph.db.partial").exists());
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("backup.json")).unwrap()).unwrap();
    let manifest_before: Value = serde_json::from_slice(&manifest_before).unwrap();
    assert_eq!(manifest["complete"], false);
    assert_eq!(manifest["report"], manifest_before["report"]);
    app.stop().await.unwrap();
}

/// The stored file of `hash` in `data`.
fn stored_path(data: &Path, hash: &str) -> PathBuf {
    blob_files(data)
        .remove(hash)
        .expect("the directory holds the file")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_targets_are_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let data = root.join("data");
    let (app, _url, _key) = serve(&data).await;

    let foreign = root.join("photos");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("holiday.jpg"), b"mine").unwrap();
    let refused = backup(&data, &foreign, &[]);
    assert!(
        !refused.ok && refused.stderr.contains("not empty"),
        "{}",
        refused.stderr
    );
    assert_eq!(files(&foreign).len(), 1);

    for inside in [data.join("nested"), data.clone(), root.to_path_buf()] {
        let refused = backup(&data, &inside, &[]);
        assert!(
            !refused.ok && refused.stderr.contains("overlaps"),
            "{}",
            refused.stderr
        );
    }
    assert!(!data.join("nested").exists());

    let mut c = bin();
    c.args([
        "backup",
        "--database-url",
        "postgres://u@127.0.0.1:1/db",
        "--data-dir",
    ])
    .arg(&data)
    .arg(root.join("pg"));
    let pg = exec(c);
    assert!(!pg.ok && pg.stderr.contains("pg_dump"), "{}", pg.stderr);

    let missing = backup(&root.join("nothing"), &root.join("out"), &[]);
    assert!(
        !missing.ok && missing.stderr.contains("no server data"),
        "{}",
        missing.stderr
    );
    assert!(!root.join("out").exists());

    // A backup a server has open is not overwritten.
    let out = root.join("backup");
    backup(&data, &out, &[]).json();
    std::fs::write(out.join("pictograph.db-wal"), b"").unwrap();
    let busy = backup(&data, &out, &[]);
    assert!(
        !busy.ok && busy.stderr.contains("a server seems to have"),
        "{}",
        busy.stderr
    );
    app.stop().await.unwrap();
}

/// `n` distinct 160×120 PNGs of noise (about 58 KB each, stored without compression so they
/// are quick to make) under `root`.
fn noise(root: &Path, n: usize, seed: u64) {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    std::fs::create_dir_all(root).unwrap();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in 0..n {
        let pixels: Vec<u8> = (0..160 * 120 * 3)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let file = std::fs::File::create(root.join(format!("{seed}-{i}.png"))).unwrap();
        let encoder =
            PngEncoder::new_with_quality(file, CompressionType::Fast, FilterType::NoFilter);
        image::ImageEncoder::write_image(
            encoder,
            &pixels,
            160,
            120,
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    }
}

/// Starts `pictograph backup --data-dir DATA OUT --workers 1` and kills it with SIGKILL once
/// it has stored its first new file in `OUT`. Returns whether it was still running then.
fn kill_mid_run(data: &Path, out: &Path) -> bool {
    let before = if out.join("blobs").exists() {
        walk(&out.join("blobs")).len()
    } else {
        0
    };
    let mut c = bin();
    c.args(["backup", "--json", "--workers", "1", "--data-dir"])
        .arg(data)
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let started = std::time::Instant::now();
    loop {
        let stored = out.join("blobs").exists() && walk(&out.join("blobs")).len() > before;
        if stored || child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 60,
            "the backup stored nothing"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    running
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_backup_leaves_the_previous_one_and_a_rerun_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (data, out, cfg) = (root.join("data"), root.join("backup"), root.join("cfg"));
    let (app, url, key) = serve(&data).await;
    let upload = |folder: &str, seed: u64| {
        noise(&root.join(folder), 300, seed);
        let up = client(
            &url,
            &key,
            &cfg,
            &[
                "upload",
                root.join(folder).to_str().unwrap(),
                "--dataset",
                folder,
                "--json",
            ],
        );
        assert_eq!(up.json()["uploaded"], 300, "{}", up.stdout);
    };
    upload("first", 1);

    // Killed during its first run, a backup leaves no database, so nothing looks complete.
    assert!(
        kill_mid_run(&data, &out),
        "the backup finished before it could be killed"
    );
    assert!(!out.join("pictograph.db").exists());
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("backup.json")).unwrap()).unwrap();
    assert_eq!(manifest["complete"], false);
    // A re-run keeps what the killed one stored, finishes, and clears its half-written files.
    std::fs::write(out.join("tmp").join("half-written"), b"partial").unwrap();
    let done = backup(&data, &out, &[]).json();
    let (copied, present) = (
        done["copied"].as_u64().unwrap(),
        done["present"].as_u64().unwrap(),
    );
    assert!(present > 0, "{done}");
    assert_eq!(copied + present, 300, "{done}");
    assert!(walk(&out.join("tmp")).is_empty());

    // Killed while updating a complete backup, it leaves that backup as it was.
    upload("second", 2);
    let database = std::fs::read(out.join("pictograph.db")).unwrap();
    assert!(
        kill_mid_run(&data, &out),
        "the backup finished before it could be killed"
    );
    assert_eq!(std::fs::read(out.join("pictograph.db")).unwrap(), database);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("backup.json")).unwrap()).unwrap();
    assert_eq!(
        (manifest["complete"].clone(), manifest["report"].clone()),
        (false.into(), done)
    );
    let again = backup(&data, &out, &[]).json();
    assert_eq!(again["images"], 600, "{again}");
    assert_eq!(
        again["copied"].as_u64().unwrap() + again["present"].as_u64().unwrap(),
        600
    );
    assert!(walk(&out.join("tmp")).is_empty());
    app.stop().await.unwrap();
}
