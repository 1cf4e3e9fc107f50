//! Concurrency soak: 16 clients run overlapping batch moves, copies, deletes and updates and
//! annotation saves on the same images for a fixed time (`PICTOGRAPH_SOAK_SECS`, default 4),
//! over real HTTP. Every acknowledged answer is recorded; afterwards the stored state must agree
//! with them: one row per image, true counters, no duplicate live name in a folder, purged
//! images gone, and no lost annotation update.

mod common;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: usize = 16;
const IMAGES: usize = 24;
const DATASET: &str = "soak";
const FOLDERS: [&str; 4] = ["/", "/a", "/b", "/a/c"];
const STATUSES: [&str; 4] = ["new", "annotate", "review", "complete"];

/// An acknowledged annotation save.
#[derive(Debug, Clone)]
struct Save {
    image: String,
    /// The version the save was conditional on; `None` for a plain save.
    expected: Option<i64>,
    /// The version the server said the save produced.
    version: i64,
    /// The id of the one annotation the save stored (unique per save).
    tag: String,
}

/// What the clients were told.
#[derive(Default)]
struct Log {
    saves: Vec<Save>,
    /// Versioned saves answered 409.
    stale: usize,
    /// Ids a permanent delete reported deleted.
    purged: HashSet<String>,
    /// Acknowledged batch calls per operation.
    batches: HashMap<&'static str, usize>,
    /// Answers that break the contract (5xx, unexpected statuses).
    violations: Vec<String>,
}

fn soak_secs() -> u64 {
    std::env::var("PICTOGRAPH_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

fn annotation(tag: &str) -> Value {
    json!([{"id": tag, "name": "thing", "type": "bbox",
            "bounding_box": {"x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0},
            "confidence": 1.0, "attributes": []}])
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// Up to `n` distinct random ids.
fn some_ids(rng: &mut StdRng, pool: &[String], n: usize) -> Vec<String> {
    let mut out: Vec<String> = (0..rng.random_range(1..=n))
        .map(|_| pick(rng, pool).clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// One client's loop until `until`.
async fn client_loop(
    c: Client,
    seed: u64,
    originals: Arc<Vec<String>>,
    known: Arc<Mutex<Vec<String>>>,
    log: Arc<Mutex<Log>>,
    until: Instant,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seq = 0u64;
    while Instant::now() < until {
        seq += 1;
        let roll = rng.random_range(0..100);
        if roll < 45 {
            save(&c, &mut rng, &originals, &log, seed, seq).await;
            continue;
        }
        // The listed images, when a listing found any: a long soak may archive them all.
        let listed = known.lock().unwrap().clone();
        let pool: Vec<String> = if listed.is_empty() || rng.random_bool(0.7) {
            originals.to_vec()
        } else {
            listed
        };
        let ids = some_ids(&mut rng, &pool, 4);
        let folder = *pick(&mut rng, &FOLDERS);
        let (op, method, body) = match roll {
            45..=59 => (
                "move",
                Method::POST,
                json!({"dataset_name": DATASET, "image_ids": ids, "target_folder_path": folder}),
            ),
            60..=71 => (
                "copy",
                Method::POST,
                json!({"dataset_name": DATASET, "image_ids": ids, "target_folder_path": folder,
                       "duplicate_handling": *pick(&mut rng, &["rename", "skip", "overwrite"]),
                       "copy_annotations": rng.random_bool(0.5)}),
            ),
            72..=81 => {
                // Purge copies mostly; originals now and then, so saves meet deleted images.
                let ids = if rng.random_bool(0.9) {
                    ids.into_iter().filter(|i| !originals.contains(i)).collect()
                } else {
                    ids
                };
                if ids.is_empty() {
                    continue;
                }
                (
                    "delete",
                    Method::POST,
                    json!({"dataset_name": DATASET, "image_ids": ids,
                           "permanent": rng.random_bool(0.6)}),
                )
            }
            82..=93 => {
                let mut updates = json!({"status": *pick(&mut rng, &STATUSES)});
                if rng.random_bool(0.3) {
                    updates["is_archived"] = json!(rng.random_bool(0.3));
                }
                if rng.random_bool(0.3) {
                    updates["display_name"] = json!(format!("shown-{seed}-{seq}"));
                }
                (
                    "update",
                    Method::PATCH,
                    json!({"dataset_name": DATASET, "image_ids": ids, "updates": updates}),
                )
            }
            _ => {
                let r = c
                    .get(&format!(
                        "datasets/by-name/{DATASET}?include_images=true&images_limit=10000"
                    ))
                    .await;
                if r.status != 200 {
                    let body = String::from_utf8_lossy(&r.bytes).into_owned();
                    log.lock()
                        .unwrap()
                        .violations
                        .push(format!("listing answered {}: {body}", r.status));
                    continue;
                }
                let listed = ids_of(&r.json()["dataset"]["images"]);
                *known.lock().unwrap() = listed;
                continue;
            }
        };
        let r = Client::send(c.request(method, &format!("batch/images/{op}")).json(&body)).await;
        let mut log = log.lock().unwrap();
        match r.status.as_u16() {
            200 => {
                *log.batches.entry(op).or_default() += 1;
                if op == "delete" && body["permanent"] == true {
                    let v = r.json();
                    for id in v["succeeded"].as_array().unwrap() {
                        log.purged.insert(id.as_str().unwrap().to_string());
                    }
                }
            }
            // Every id unknown (purged meanwhile): a clean 404 is the documented answer.
            404 => {}
            other => log.violations.push(format!(
                "{op} {body} answered {other}: {}",
                String::from_utf8_lossy(&r.bytes)
            )),
        }
    }
}

fn ids_of(images: &Value) -> Vec<String> {
    images
        .as_array()
        .map(|a| a.iter().map(|i| s(i, "id")).collect())
        .unwrap_or_default()
}

/// Reads an original's version, then saves a unique annotation: conditionally on that version
/// (or, one time in five, unconditionally as the official client does), and now and then
/// deliberately on an older version, which must be refused.
async fn save(
    c: &Client,
    rng: &mut StdRng,
    originals: &[String],
    log: &Mutex<Log>,
    seed: u64,
    seq: u64,
) {
    let image = pick(rng, originals).clone();
    let path = format!("annotations/{image}");
    let got = c.get(&path).await;
    if got.status == 404 {
        return;
    }
    if got.status != 200 {
        log.lock()
            .unwrap()
            .violations
            .push(format!("GET {path} answered {}", got.status));
        return;
    }
    let current = got.json()["version"].as_i64().expect("version");
    let tag = format!("c{seed}-{seq}");
    let (expected, deliberately_stale) = match rng.random_range(0..10) {
        0 | 1 => (None, false),
        2 if current > 1 => (Some(current - 1), true),
        _ => (Some(current), false),
    };
    let mut rb = c.request(Method::POST, &path);
    let mut body = json!({"image_id": image, "annotations": annotation(&tag)});
    if let Some(v) = expected {
        if rng.random_bool(0.5) {
            rb = rb.header("If-Match", format!("\"{v}\""));
        } else {
            body["expected_version"] = json!(v);
        }
    }
    let r = Client::send(rb.json(&body)).await;
    let mut log = log.lock().unwrap();
    match r.status.as_u16() {
        200 => {
            if deliberately_stale {
                log.violations.push(format!(
                    "a save on version {} of {image} was accepted after the image had reached {current}",
                    current - 1
                ));
            }
            let version = r.json()["version"].as_i64().expect("version");
            log.saves.push(Save {
                image,
                expected,
                version,
                tag,
            });
        }
        409 if expected.is_some() => log.stale += 1,
        404 => {}
        other => log.violations.push(format!(
            "save {body} (expected {expected:?}) answered {other}: {}",
            String::from_utf8_lossy(&r.bytes)
        )),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_writers_keep_every_invariant() {
    let t = TestServer::start().await;
    let ds = t
        .owner
        .create_dataset_with(&json!({"name": DATASET, "classes": ["thing"]}))
        .await;
    let ds_id = s(&ds, "id");
    let mut originals = Vec::new();
    for i in 0..IMAGES {
        let img = t
            .owner
            .upload_png(&ds_id, "/", &format!("img{i}.png"), i as u8)
            .await;
        originals.push(s(&img, "id"));
    }
    let originals = Arc::new(originals);
    let known = Arc::new(Mutex::new(originals.to_vec()));
    let log = Arc::new(Mutex::new(Log::default()));
    let secs = soak_secs();
    let until = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|n| {
            tokio::spawn(client_loop(
                t.admin.clone(),
                n as u64 + 1,
                originals.clone(),
                known.clone(),
                log.clone(),
                until,
            ))
        })
        .collect();
    for task in tasks {
        task.await.expect("client task");
    }
    let log = Arc::try_unwrap(log).ok().unwrap().into_inner().unwrap();
    println!(
        "soak {secs}s: {} saves acknowledged, {} stale saves refused, batches {:?}, {} purged",
        log.saves.len(),
        log.stale,
        log.batches,
        log.purged.len()
    );
    assert!(log.violations.is_empty(), "{:#?}", log.violations);
    assert!(!log.saves.is_empty(), "no save was acknowledged");
    assert!(
        log.stale > 0,
        "no stale save was refused: the check never ran"
    );
    for op in ["move", "copy", "delete", "update"] {
        assert!(log.batches.get(op).copied().unwrap_or(0) > 0, "no {op} ran");
    }

    // No lost update: each acknowledged versioned save was made on the version it named, and
    // no two acknowledged saves of an image produced the same version.
    let mut by_image: HashMap<&str, Vec<&Save>> = HashMap::new();
    for sv in &log.saves {
        if let Some(e) = sv.expected {
            assert_eq!(sv.version, e + 1, "save {sv:?} skipped versions");
        }
        by_image.entry(sv.image.as_str()).or_default().push(sv);
    }
    for (image, saves) in &by_image {
        let versions: HashSet<i64> = saves.iter().map(|s| s.version).collect();
        assert_eq!(
            versions.len(),
            saves.len(),
            "two saves of {image} made one version: {saves:?}"
        );
    }

    // Stored annotations of each surviving original are its last acknowledged save.
    let pool = t.db().await;
    for id in originals.iter() {
        let r = t.admin.get(&format!("annotations/{id}")).await;
        if r.status == 404 {
            continue;
        }
        let stored = r.ok_json(200)["annotations"].clone();
        let expected = by_image
            .get(id.as_str())
            .and_then(|saves| saves.iter().max_by_key(|s| s.version))
            .map(|s| annotation(&s.tag))
            .unwrap_or_else(|| json!([]));
        assert_eq!(stored, expected, "annotations of {id}");
    }

    // Purged images are gone, whatever route asks.
    for id in &log.purged {
        t.admin
            .get(&format!("images/{id}/metadata"))
            .await
            .expect(404);
        t.admin.get(&format!("annotations/{id}")).await.expect(404);
    }

    // Rows: one per id, one live name per folder, counters equal to the rows.
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT id, folder, filename, is_archived, status, file_size, annotation_count \
         FROM images WHERE dataset_seq = (SELECT seq FROM datasets WHERE id = $1)",
    )
    .bind(&ds_id)
    .fetch_all(&pool)
    .await
    .expect("rows");
    let mut ids = HashSet::new();
    let mut live_names = HashSet::new();
    let (mut live, mut completed, mut archived, mut size, mut notes) = (0i64, 0i64, 0i64, 0, 0);
    for r in &rows {
        let id: String = r.get("id");
        let folder: String = r.get("folder");
        let filename: String = r.get("filename");
        assert!(ids.insert(id.clone()), "id {id} twice");
        assert!(!log.purged.contains(&id), "purged {id} still has a row");
        assert!(
            FOLDERS.contains(&folder.as_str()),
            "{id} in unknown folder {folder}"
        );
        if r.get::<i64, _>("is_archived") == 0 {
            assert!(
                live_names.insert((folder.clone(), filename.clone())),
                "two live images named {filename} in {folder}"
            );
            live += 1;
            completed += i64::from(r.get::<String, _>("status") == "complete");
            size += r.get::<i64, _>("file_size");
            notes += r.get::<i64, _>("annotation_count");
        } else {
            archived += 1;
        }
    }
    assert_eq!(
        t.admin.counts(DATASET).await,
        Counts {
            images: live,
            completed,
            archived,
            total_size: size,
            annotations: notes,
        },
        "dataset counters against {} rows",
        rows.len()
    );
    let listed = t.admin.images(DATASET).await;
    let listed_ids: HashSet<String> = listed.iter().map(|i| s(i, "id")).collect();
    assert_eq!(listed_ids.len(), listed.len(), "an image listed twice");
    assert_eq!(listed.len() as i64, live, "listing against live rows");
    pool.close().await;

    // After the storm: a stale version is refused and changes nothing, and the official
    // client's plain save still works (on a new image when a long soak left none live).
    let survivor = match originals.iter().find(|id| listed_ids.contains(*id)) {
        Some(id) => id.clone(),
        None if !listed.is_empty() => s(&listed[0], "id"),
        None => s(
            &t.owner.upload_png(&ds_id, "/", "after.png", 99).await,
            "id",
        ),
    };
    let path = format!("annotations/{survivor}");
    let v = t.admin.get(&path).await.ok_json(200)["version"]
        .as_i64()
        .unwrap();
    let first = json!({"annotations": annotation("first"), "expected_version": v});
    t.admin.post(&path, &first).await.expect(200);
    let stale = json!({"annotations": annotation("late"), "expected_version": v});
    t.admin.post(&path, &stale).await.error(409, "conflict");
    assert_eq!(
        t.admin.get(&path).await.ok_json(200)["annotations"],
        annotation("first")
    );
    let plain = json!({"image_id": survivor, "annotations": annotation("plain")});
    t.member.post(&path, &plain).await.expect(200);
    assert_eq!(
        t.admin.get(&path).await.ok_json(200)["annotations"],
        annotation("plain")
    );
    t.stop().await;
}

/// Uploads of the same bytes, purges that leave them unreferenced, and sweeps with no grace
/// period, all at once: an upload may be refused (its bytes were freed before it was
/// registered, a clean 422), but a registered image never loses its bytes. Two uploaders take
/// turns: each reads its image back a little after its register, then purges it, so the bytes
/// become unreferenced (and are freed by the purge or a sweep) while the other one is storing
/// the same bytes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sweeps_beside_uploads_never_free_registered_bytes() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("race").await;
    let ds_id = s(&ds, "id");
    let bytes = png_seeded(8, 6, 9);
    let hash = sha256_hex(&bytes);
    let until = Instant::now() + Duration::from_secs(soak_secs().div_ceil(2));
    let state = t.app().state.clone();
    let sweeper = tokio::spawn(async move {
        let mut sweeps = 0;
        while Instant::now() < until {
            pictograph_server::services::maintenance::sweep(&state)
                .await
                .expect("sweep");
            sweeps += 1;
        }
        sweeps
    });
    let uploaders: Vec<_> = (0..2)
        .map(|n| {
            let (c, ds_id, bytes, hash) =
                (t.admin.clone(), ds_id.clone(), bytes.clone(), hash.clone());
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(100 + n);
                let (mut checked, mut refused, mut problems) = (0, 0, Vec::new());
                let mut i = 0;
                while Instant::now() < until {
                    i += 1;
                    let name = format!("u{n}-{i}.png");
                    let signed = c
                        .upload_url(&ds_id, "/", &name, "image/png")
                        .await
                        .ok_json(200);
                    let url = signed["upload_url"].as_str().unwrap();
                    c.put_bytes(url, &bytes, "image/png").await.expect(200);
                    let reg = Register {
                        dataset_id: &ds_id,
                        folder: "/",
                        filename: &name,
                        file_size: bytes.len(),
                        mime_type: "image/png",
                        width: None,
                        height: None,
                        idempotency_key: None,
                    };
                    let r = c.register(&signed, &reg).await;
                    match r.status.as_u16() {
                        201 => {}
                        422 => {
                            refused += 1;
                            continue;
                        }
                        other => {
                            problems.push(format!("register answered {other}"));
                            continue;
                        }
                    }
                    let id = r.json()["image_id"].as_str().unwrap().to_string();
                    let pause = rng.random_range(50..200);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    let got = c.get(&format!("images/{id}")).await;
                    checked += 1;
                    if got.status != 200 || sha256_hex(&got.bytes) != hash {
                        problems.push(format!("{id}, {pause} ms after register: {}", got.status));
                    }
                    let body =
                        json!({"dataset_name": "race", "image_ids": [id], "permanent": true});
                    c.batch("delete", &body).await.expect(200);
                }
                (checked, refused, problems)
            })
        })
        .collect();
    let (mut checked, mut refused, mut problems) = (0, 0, Vec::new());
    for u in uploaders {
        let (c, r, p) = u.await.expect("uploader");
        checked += c;
        refused += r;
        problems.extend(p);
    }
    let sweeps = sweeper.await.expect("sweeper");
    println!(
        "{sweeps} sweeps beside uploads: {checked} images read back, {refused} uploads refused"
    );
    assert!(
        problems.is_empty(),
        "registered images lost their bytes: {problems:#?}"
    );
    assert!(checked > 0 && sweeps > 0);
    t.stop().await;
}

/// A sweep freeing some bytes while an upload of the same bytes stores them: the upload's
/// record waits for the sweep's transaction. On the local disk the upload writes its bytes
/// meanwhile and the sweep deletes that file; once its record is committed the upload finds
/// its bytes gone and writes them again, so the PUT's 200 still means the bytes are there.
/// In an object store (bytes PUT straight into the bucket, taken in at register) nothing is
/// stored under the hash until the record is committed. Either way the image registers and
/// reads back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bytes_a_sweep_frees_while_an_upload_stores_them_are_written_again() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("freed").await;
    let ds_id = s(&ds, "id");
    let bytes = png_seeded(9, 7, 21);
    let hash = sha256_hex(&bytes);
    let state = t.app().state.clone();
    let local = state.blobs.is_local();
    let signed = t
        .admin
        .upload_url(&ds_id, "/", "a.png", "image/png")
        .await
        .ok_json(200);
    let url = s(&signed, "upload_url");
    let register = {
        let (c, signed, ds_id, size) =
            (t.admin.clone(), signed.clone(), ds_id.clone(), bytes.len());
        move || async move {
            let reg = Register {
                dataset_id: &ds_id,
                folder: "/",
                filename: "a.png",
                file_size: size,
                mime_type: "image/png",
                width: None,
                height: None,
                idempotency_key: None,
            };
            c.register(&signed, &reg).await
        }
    };

    // A sweep takes the (not yet recorded) hash and holds its transaction open until told to
    // delete the bytes.
    let (locked_tx, locked) = tokio::sync::oneshot::channel();
    let (go, go_rx) = tokio::sync::oneshot::channel::<()>();
    let sweep = {
        let (state, hash) = (state.clone(), hash.clone());
        tokio::spawn(async move {
            let blobs = &state.blobs;
            state
                .store
                .free_blobs(&[hash], "9999", false, |taken| async move {
                    locked_tx.send(()).unwrap();
                    go_rx.await.unwrap();
                    blobs.delete_many(&taken).await?;
                    Ok(())
                })
                .await
                .expect("free")
        })
    };
    locked.await.expect("the sweep holds the hash");

    let storing = if local {
        let (c, bytes) = (t.admin.clone(), bytes.clone());
        tokio::spawn(async move { c.put_bytes(&url, &bytes, "image/png").await })
    } else {
        t.admin
            .put_bytes(&url, &bytes, "image/png")
            .await
            .expect(200);
        let register = register.clone();
        tokio::spawn(async move { register().await })
    };
    if local {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !state.blobs.exists(&hash).await {
            assert!(
                Instant::now() < deadline,
                "the upload did not write its bytes while its record waited"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    } else {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !state.blobs.exists(&hash).await,
            "bytes were stored in the object store before their record"
        );
    }
    assert!(
        !storing.is_finished(),
        "the upload answered before its record"
    );
    go.send(()).unwrap();
    assert_eq!(sweep.await.unwrap(), vec![hash.clone()]);
    let stored = storing.await.unwrap();
    let registered = if local {
        stored.expect(200);
        register().await
    } else {
        stored
    };
    let id = s(&registered.ok_json(201), "image_id");
    assert!(
        state.blobs.exists(&hash).await,
        "the bytes the sweep deleted were not written again"
    );
    let got = t.admin.get(&format!("images/{id}")).await;
    assert_eq!(got.status.as_u16(), 200);
    assert_eq!(sha256_hex(&got.bytes), hash);
    t.stop().await;
}

/// A commit returns before its log is on disk (SQLite's, or PostgreSQL's WAL): the answer to
/// a request that may write waits for a sync of the log begun after its handler finished
/// (shared with the requests finishing meanwhile); a read waits for none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_answered_once_on_disk() {
    let t = TestServer::start().await;
    let store = &t.app().state.store;
    let syncs = || {
        store
            .log_syncs()
            .expect("the server's store groups its commits")
    };
    let before = syncs();
    let ds = t
        .owner
        .create_dataset_with(&json!({"name": "durable"}))
        .await;
    assert!(
        syncs() > before,
        "a write was answered before its commit was synced"
    );
    let before = syncs();
    t.owner
        .get(&format!("datasets/{}", s(&ds, "id")))
        .await
        .expect(200);
    t.owner.get("datasets/").await.expect(200);
    assert_eq!(syncs(), before, "a read waited for a sync");

    // Writers at once: every answer is acknowledged and what it wrote is there.
    let ds_id = s(&ds, "id");
    let saves: Vec<_> = (0..16u8)
        .map(|i| {
            let (owner, ds_id) = (t.owner.clone(), ds_id.clone());
            tokio::spawn(async move { owner.upload_png(&ds_id, "/", &format!("{i}.png"), i).await })
        })
        .collect();
    let mut ids = HashSet::new();
    for save in saves {
        ids.insert(s(&save.await.expect("upload task"), "id"));
    }
    let listed = t
        .owner
        .get(&format!("images/?dataset={ds_id}&limit=100"))
        .await
        .ok_json(200);
    let listed: HashSet<String> = listed["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| s(i, "id"))
        .collect();
    assert_eq!(listed, ids);
}

/// Another writer on the same database (an admin command, a second server on one SQLite file)
/// holds its write lock for a moment: a batch and an annotation save, which read before they
/// write, wait for it and succeed instead of answering "database is locked".
#[tokio::test]
async fn writes_wait_for_another_writer_on_the_database() {
    let t = TestServer::start().await;
    let ds = t
        .owner
        .create_dataset_with(&json!({"name": "held", "classes": ["thing"]}))
        .await;
    let ds_id = s(&ds, "id");
    let a = s(&t.owner.upload_png(&ds_id, "/", "a.png", 1).await, "id");
    let b = s(&t.owner.upload_png(&ds_id, "/", "b.png", 2).await, "id");

    let pool = t.db().await;
    let mut other = pool.begin().await.expect("begin");
    sqlx::query("UPDATE datasets SET name = name WHERE id = $1")
        .bind(&ds_id)
        .execute(&mut *other)
        .await
        .expect("the other writer takes the lock");
    let held = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        other.commit().await.expect("the other writer commits");
    });
    let move_body =
        json!({"dataset_name": "held", "image_ids": [a], "target_directory_path": "/moved"});
    let (save_path, save_body) = (
        format!("annotations/{b}"),
        json!({"image_id": b, "annotations": annotation("held")}),
    );
    let (moved, saved) = tokio::join!(
        t.owner.batch("move", &move_body),
        t.owner.post(&save_path, &save_body)
    );
    held.await.expect("lock holder");

    let moved = moved.ok_json(200);
    assert_eq!(
        (&moved["processed"], &moved["success"]),
        (&json!(1), &json!(true)),
        "{moved}"
    );
    saved.expect(200);
    assert_eq!(t.owner.image(&a).await["virtual_folder_path"], "/moved");
    let stored = t.owner.get(&format!("annotations/{b}")).await.ok_json(200);
    assert_eq!(stored["annotations"], annotation("held"));
}
