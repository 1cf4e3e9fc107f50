//! Two stateless server processes on one PostgreSQL database and one S3 bucket: a client that
//! alternates between them sees one consistent service, and what one server changes reaches
//! the read cache of the other. Also: a server rides out losing its database connections.
//!
//! Needs PostgreSQL: `scripts/test` starts a throwaway cluster and runs these with
//! `PICTOGRAPH_TEST_POSTGRES` set; plain `cargo test` lists them as ignored.

mod pg;
mod s3_server;

use pg::fresh_database;
use pictograph_server::auth::{create_key, Role};
use pictograph_server::{App, Config};
use reqwest::StatusCode;
use s3_server::{credentials_env, start_s3, BUCKET};
use serde_json::{json, Value};
use sqlx::Connection;

struct Pair {
    _dir: tempfile::TempDir,
    db: String,
    a: App,
    b: App,
    http: reqwest::Client,
}

async fn start_pair() -> Pair {
    start_pair_with(|_| {}).await
}

async fn start_pair_with(tune: impl Fn(&mut Config)) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = start_s3(&dir.path().join("s3")).await;
    credentials_env();
    let db = fresh_database().await;
    let config = |name: &str| {
        let mut c = Config::new(dir.path().join(name));
        c.listen = "127.0.0.1:0".parse().unwrap();
        c.database_url = Some(db.clone());
        c.blobs_url = Some(format!(
            "s3://{BUCKET}/shared?endpoint={endpoint}&region=us-east-1"
        ));
        c.signing_secret = Some("one secret for every server behind the balancer".into());
        c.rate_limits.free = 6;
        tune(&mut c);
        c
    };
    // Both start at once: migrations must not race.
    let (a, b) = tokio::join!(App::start(config("a")), App::start(config("b")));
    Pair {
        _dir: dir,
        db,
        a: a.unwrap(),
        b: b.unwrap(),
        http: reqwest::Client::new(),
    }
}

impl Pair {
    fn url(&self, second: bool, path: &str) -> String {
        let app = if second { &self.b } else { &self.a };
        format!("http://{}/api/v1/developer{path}", app.addr)
    }
}

async fn json_of(r: reqwest::Response) -> (StatusCode, Value) {
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn png(seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(9, 7, |x, y| image::Rgb([seed, x as u8, y as u8]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test]
#[ignore = "needs PostgreSQL; scripts/test runs it"]
async fn alternating_clients_see_one_service() {
    let p = start_pair().await;
    let key = create_key(&p.a.state.store, "org", Role::Owner, "unlimited")
        .await
        .unwrap();
    let post = |second: bool, path: &str, body: Value, idem: Option<&str>| {
        let mut req = p
            .http
            .post(p.url(second, path))
            .header("x-api-key", &key)
            .json(&body);
        if let Some(k) = idem {
            req = req.header("idempotency-key", k);
        }
        req.send()
    };

    let (s, v) = json_of(
        post(false, "/projects/", json!({"name": "shared"}), None)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let ds = v["project"]["id"].as_str().unwrap().to_string();
    let (s, _) = get_json(&p, true, "/projects/shared", &key).await;
    assert_eq!(s, StatusCode::OK, "B sees what A wrote");

    // Twenty uploads, each step on alternating servers, all in parallel.
    let mut tasks = Vec::new();
    for i in 0..20u8 {
        let (http, key, ds) = (p.http.clone(), key.clone(), ds.clone());
        let (first, second) = (p.url(i % 2 == 0, ""), p.url(i % 2 == 1, ""));
        tasks.push(tokio::spawn(async move {
            let name = format!("img-{i}.png");
            let u: Value = http
                .post(format!("{first}/images/upload-url"))
                .header("x-api-key", &key)
                .json(&json!({"dataset_id": ds, "filename": name, "folder_path": "/", "content_type": "image/png"}))
                .send().await.unwrap().json().await.unwrap();
            let put = http.put(u["upload_url"].as_str().unwrap()).header("content-type", "image/png").body(png(i)).send().await.unwrap();
            assert!(put.status().is_success());
            let idem = format!("{:032x}", i as u128 + 1);
            let form = [("dataset_id", ds.as_str()), ("filename", name.as_str()), ("gcs_path", u["gcs_path"].as_str().unwrap()), ("folder_path", "/")];
            let first_try: Value = http.post(format!("{second}/images/register")).header("x-api-key", &key).header("idempotency-key", &idem).form(&form).send().await.unwrap().json().await.unwrap();
            // The retry lands on the other server and answers the first result.
            let retry = http.post(format!("{first}/images/register")).header("x-api-key", &key).header("idempotency-key", &idem).form(&form).send().await.unwrap();
            assert_eq!(retry.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
            let retry: Value = retry.json().await.unwrap();
            assert_eq!(first_try["image_id"], retry["image_id"]);
            first_try["image_id"].as_str().unwrap().to_string()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);

    for second in [false, true] {
        let (_, v) = json_of(
            p.http
                .get(p.url(
                    second,
                    "/datasets/by-name/shared?include_images=true&images_limit=100",
                ))
                .header("x-api-key", &key)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(v["dataset"]["image_count"], 20);
        assert_eq!(v["dataset"]["images"].as_array().unwrap().len(), 20);
    }
    // Bytes written through one server are served by the other.
    let bytes = p
        .http
        .get(p.url(true, &format!("/images/{}", ids[0])))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(bytes.status(), StatusCode::OK);
    assert!(bytes.bytes().await.unwrap().starts_with(b"\x89PNG"));

    // A batch on A is seen by B at once.
    let (s, v) = json_of(
        post(
            false,
            "/batch/images/move",
            json!({"dataset_name": "shared", "image_ids": ids, "target_folder_path": "/moved"}),
            None,
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["processed"], 20);
    let (_, v) = get_json(&p, true, &format!("/images/{}/metadata", ids[7]), &key).await;
    assert_eq!(v["image"]["virtual_folder_path"], "/moved");
}

#[tokio::test]
#[ignore = "needs PostgreSQL; scripts/test runs it"]
async fn servers_without_a_signing_secret_accept_each_others_urls() {
    let p = start_pair_with(|c| c.signing_secret = None).await;
    // Every signature one server makes, the other accepts: they sign with one key.
    let expires = chrono::Utc::now().timestamp() + 60;
    let sig = p.a.state.signer.sign("GET", "image-1", expires);
    assert!(p.b.state.signer.verify("GET", "image-1", expires, &sig));
    assert_eq!(sig, p.b.state.signer.sign("GET", "image-1", expires));
    // And a server started later takes the same key.
    let mut c = Config::new(p._dir.path().join("c"));
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.database_url = Some(p.db.clone());
    let third = App::start(c).await.unwrap();
    assert!(third.state.signer.verify("GET", "image-1", expires, &sig));
    third.stop().await.unwrap();
}

/// Each server measures its clock against the database's when it starts (one a minute or
/// more off would not start) and shows the figure as a metric; SQLite has nothing to compare.
#[tokio::test]
#[ignore = "needs PostgreSQL; scripts/test runs it"]
async fn servers_measure_their_clock_against_the_databases() {
    let p = start_pair_with(|c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    for app in [&p.a, &p.b] {
        let measured = app.state.clock_skew.get().expect("measured at start");
        assert!(measured.abs() < 1.0, "{measured}");
        let again = pictograph_server::clock::skew(&app.state.store)
            .await
            .unwrap()
            .expect("PostgreSQL has a clock");
        assert!(again.abs() < 1.0, "{again}");
        let shown = metric(&p.http, app, "pictograph_clock_skew_seconds").await;
        assert!(shown.abs() < 1.0, "{shown}");
    }
    let dir = tempfile::tempdir().unwrap();
    let sqlite = pictograph_server::open_state(Config::new(dir.path()))
        .await
        .unwrap();
    assert_eq!(sqlite.clock_skew.get(), None);
}

/// A server whose clock is a minute or more off the database's does not start, and says
/// why. The database here reads its clock 90 s ahead: a function of that name, found before
/// the built-in one on the database's search path.
#[tokio::test]
#[ignore = "needs PostgreSQL; scripts/test runs it"]
async fn a_server_whose_clock_is_off_the_databases_does_not_start() {
    let db = fresh_database().await;
    let name = db.rsplit('/').next().unwrap();
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&db).await.unwrap();
    for statement in [
        "CREATE FUNCTION public.clock_timestamp() RETURNS timestamptz LANGUAGE sql \
         AS $$ SELECT pg_catalog.clock_timestamp() + interval '90 seconds' $$"
            .to_string(),
        format!("ALTER DATABASE {name} SET search_path = public, pg_catalog"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    drop(conn);
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config::new(dir.path());
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.database_url = Some(db.clone());
    let refused = App::start(c)
        .await
        .err()
        .expect("the server does not start");
    let said = format!("{refused:#}");
    assert!(said.contains("s behind the database's"), "{said}");
    assert!(said.contains("NTP"), "{said}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL; scripts/test runs it"]
async fn one_rate_limit_across_servers() {
    let p = start_pair().await;
    let key = create_key(&p.a.state.store, "org", Role::Member, "free")
        .await
        .unwrap();
    let mut statuses = Vec::new();
    for i in 0..7 {
        let r = p
            .http
            .get(p.url(i % 2 == 1, "/datasets/"))
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap();
        statuses.push((
            r.status(),
            r.headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string()),
        ));
    }
    assert!(
        statuses[..6].iter().all(|(s, _)| *s == StatusCode::OK),
        "{statuses:?}"
    );
    let (last, retry) = &statuses[6];
    assert_eq!(
        *last,
        StatusCode::TOO_MANY_REQUESTS,
        "the budget of 6 is shared by both servers"
    );
    let retry: u64 = retry.as_deref().unwrap().parse().unwrap();
    assert!(retry > 120 && retry <= 600, "{retry}");
}

/// Connections the database dropped (a PostgreSQL restart, a proxy's idle timeout) are found
/// and replaced before use once they sat idle, so no request fails on one.
#[tokio::test]
#[ignore = "needs PostgreSQL; scripts/test runs it"]
async fn dropped_database_connections_are_replaced_before_use() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database().await;
    let mut config = Config::new(dir.path().join("a"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.database_url = Some(db.clone());
    let app = App::start(config).await.unwrap();
    let key = create_key(&app.state.store, "org", Role::Owner, "unlimited")
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let url = format!("http://{}/api/v1/developer/datasets/", app.addr);
    let list = || async {
        let requests = (0..8).map(|_| http.get(&url).header("x-api-key", &key).send());
        futures::future::join_all(requests)
            .await
            .into_iter()
            .map(|r| r.unwrap().status())
            .collect::<Vec<_>>()
    };
    // Eight at once, so the pool holds several connections.
    assert!(list().await.iter().all(|s| *s == StatusCode::OK));

    let name = db.rsplit('/').next().unwrap().to_string();
    let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", pg::admin_url()))
        .await
        .unwrap();
    let dropped: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&name)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!dropped.is_empty(), "the server held no connection");

    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let statuses = list().await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "requests after the connections were dropped: {statuses:?}"
    );
}

/// The connection image reads share is not the pool's: when the database drops it, the reads
/// of that moment are answered one by one and the reads after them share statements again,
/// on a new connection.
#[tokio::test]
#[ignore = "needs PostgreSQL; scripts/test runs it"]
async fn gathered_image_reads_recover_from_a_dropped_connection() {
    // No read cache: every metadata request reads the database.
    let p = start_pair_with(|c| {
        c.read_cache_ttl_ms = 0;
        c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let (key, ds) = owner_and_project(&p, "gathered").await;
    let mut ids = Vec::new();
    for i in 0..6u8 {
        ids.push(upload_png(&p, &key, &ds, &format!("g-{i}.png"), i).await);
    }
    let read_all = || async {
        let reads = ids.iter().map(|id| {
            p.http
                .get(p.url(false, &format!("/images/{id}/metadata")))
                .header("x-api-key", &key)
                .send()
        });
        let mut names = Vec::new();
        for r in futures::future::join_all(reads).await {
            let (s, v) = json_of(r.unwrap()).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            names.push(v["image"]["filename"].as_str().unwrap().to_string());
        }
        names
    };
    let expected: Vec<String> = (0..6).map(|i| format!("g-{i}.png")).collect();
    assert_eq!(read_all().await, expected);
    let before =
        p.a.state
            .store
            .gather_stats()
            .expect("PostgreSQL gathers reads");
    assert!(before.statements > 0, "no read was gathered: {before:?}");

    let name = p.db.rsplit('/').next().unwrap().to_string();
    let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", pg::admin_url()))
        .await
        .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
        .bind(&name)
        .execute(&mut admin)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    // Every read answers right; within a few rounds statements answer them again.
    for _ in 0..5 {
        assert_eq!(read_all().await, expected);
    }
    let after =
        p.a.state
            .store
            .gather_stats()
            .expect("PostgreSQL gathers reads");
    assert!(
        after.reads >= before.reads + 6,
        "no read shared a statement after the connection was dropped: {before:?} then {after:?}"
    );

    // The metrics listener shows the same counts.
    let shown = p.a.state.store.gather_stats().unwrap();
    let reads = metric(&p.http, &p.a, "pictograph_db_gathered_reads_total").await;
    let statements = metric(&p.http, &p.a, "pictograph_db_gathered_statements_total").await;
    assert_eq!(
        (reads, statements),
        (shown.reads as f64, shown.statements as f64)
    );
}

/// The value of the unlabelled series `name` on `app`'s metrics listener.
async fn metric(http: &reqwest::Client, app: &App, name: &str) -> f64 {
    let addr = app.metrics_addr.expect("a metrics listener");
    let text = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

/// Polls `read` every 20 ms for up to 10 s until `done` holds for what it returns; panics with
/// `what` otherwise. Returns how long it took.
async fn eventually<T: std::fmt::Debug, F: std::future::Future<Output = T>>(
    what: &str,
    mut read: impl FnMut() -> F,
    done: impl Fn(&T) -> bool,
) -> std::time::Duration {
    let started = std::time::Instant::now();
    loop {
        let got = read().await;
        if done(&got) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{what}: still {got:?} after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL; scripts/test runs it"]
async fn changes_through_one_server_reach_the_read_cache_of_the_other() {
    // Cached values live an hour: only the change notices can explain a fresh answer.
    let p = start_pair_with(|c| c.read_cache_ttl_ms = 3_600_000).await;
    let (key, ds) = owner_and_project(&p, "cached").await;
    let mut ids = Vec::new();
    for i in 0..2u8 {
        ids.push(upload_png(&p, &key, &ds, &format!("c-{i}.png"), i).await);
    }

    let metadata = |second: bool, id: &str, key: &str| {
        let req = p
            .http
            .get(p.url(second, &format!("/images/{id}/metadata")))
            .header("x-api-key", key)
            .send();
        async move {
            let (s, v) = json_of(req.await.unwrap()).await;
            (s, v["image"]["status"].as_str().unwrap_or("").to_string())
        }
    };
    let update = |second: bool, id: &str, status: &str| {
        p.http
            .patch(p.url(second, "/batch/images/update"))
            .header("x-api-key", &key)
            .json(&json!({"dataset_name": "cached", "image_ids": [id], "updates": {"status": status}}))
            .send()
    };
    // B reads (and keeps) both images, twice.
    for _ in 0..2 {
        for id in &ids {
            assert_eq!(metadata(true, id, &key).await.1, "new");
        }
    }

    // A change through A reaches B.
    assert!(update(false, &ids[0], "review")
        .await
        .unwrap()
        .status()
        .is_success());
    let took = eventually(
        "B's answer after A set the status",
        || metadata(true, &ids[0], &key),
        |(_, status)| status == "review",
    )
    .await;
    eprintln!("B saw A's change after {took:?}");

    // A change through B is read back through B at once, with no wait for the notice.
    assert!(update(true, &ids[0], "complete")
        .await
        .unwrap()
        .status()
        .is_success());
    assert_eq!(metadata(true, &ids[0], &key).await.1, "complete");

    // An image purged through A is gone from B.
    let purged = p
        .http
        .delete(p.url(false, &format!("/images/{}?permanent=true", ids[0])))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert!(purged.status().is_success());
    eventually(
        "B's answer for an image purged through A",
        || metadata(true, &ids[0], &key),
        |(s, _)| *s == StatusCode::NOT_FOUND,
    )
    .await;

    // A key revoked (here by a direct database write, as `pictograph keys revoke` does) stops
    // working on B, which had it cached.
    let second_key = create_key(&p.a.state.store, "org", Role::Owner, "unlimited")
        .await
        .unwrap();
    assert_eq!(metadata(true, &ids[1], &second_key).await.0, StatusCode::OK);
    assert_eq!(metadata(true, &ids[1], &second_key).await.0, StatusCode::OK);
    let revoker = pictograph_server::store::Store::connect(&p.db)
        .await
        .unwrap();
    let prefix = pictograph_server::auth::key_prefix(&second_key);
    assert!(revoker.revoke_key(&prefix).await.unwrap());
    eventually(
        "B's answer to a revoked key",
        || metadata(true, &ids[1], &second_key),
        |(s, _)| *s == StatusCode::UNAUTHORIZED,
    )
    .await;

    // A change that sends no notice (triggers off for its session) is not seen by B, which
    // answers from what it keeps; once B has lost its listening connection and listens again
    // (notices may have been missed meanwhile), it answers from the database.
    // Both read it once the notices of the changes above have surely landed.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for second in [false, true] {
        assert_eq!(metadata(second, &ids[1], &key).await.1, "new");
    }
    let mut silent = silent_connection(&p.db).await;
    sqlx::query("UPDATE images SET status = 'annotate', version = version + 1 WHERE id = $1")
        .bind(&ids[1])
        .execute(&mut silent)
        .await
        .unwrap();
    for second in [false, true] {
        let (_, status) = metadata(second, &ids[1], &key).await;
        assert_eq!(status, "new", "a server answers from its cache");
    }
    let name = p.db.rsplit('/').next().unwrap().to_string();
    let dropped: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND query LIKE 'LISTEN%'",
    )
    .bind(&name)
    .fetch_all(&mut silent)
    .await
    .unwrap();
    assert_eq!(dropped.len(), 2, "each server listens on one connection");
    for second in [false, true] {
        eventually(
            "an answer after the server listened again",
            || metadata(second, &ids[1], &key),
            |(_, status)| status == "annotate",
        )
        .await;
    }
}

/// The images of a download listing are kept by the server that listed them, so that the
/// fetches of their bytes by signed URL which follow need no database read each; a change to
/// images, or the dataset's deletion, through the other server drops them.
#[tokio::test]
#[ignore = "needs PostgreSQL; scripts/test runs it"]
async fn a_download_listing_keeps_its_images_for_the_fetches_that_follow() {
    let p = start_pair_with(|c| c.read_cache_ttl_ms = 3_600_000).await;
    let (key, ds) = owner_and_project(&p, "listed").await;
    let mut ids = Vec::new();
    for i in 0..3u8 {
        ids.push(upload_png(&p, &key, &ds, &format!("l-{i}.png"), i).await);
    }
    // Any change notice of the uploads lands before the listing.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (s, listing) = get_json(&p, true, "/datasets/listed/download?mode=images_only", &key).await;
    assert_eq!(s, StatusCode::OK, "{listing}");
    let url_of = |id: &str| {
        listing["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .and_then(|i| i["image_url"].as_str())
            .unwrap()
            .to_string()
    };
    let (b_addr, a_addr) = (p.b.addr.to_string(), p.a.addr.to_string());
    let fetch = |url: String, second: bool| {
        let url = if second {
            url
        } else {
            url.replace(&b_addr, &a_addr)
        };
        let req = p.http.get(url).send();
        async move {
            let r = req.await.unwrap();
            (r.status(), r.bytes().await.unwrap_or_default())
        }
    };
    // The first image's row goes behind both servers' backs (no change notice): B, which
    // listed it, still serves its bytes; A, which keeps nothing of it, finds no such image.
    let mut silent = silent_connection(&p.db).await;
    sqlx::query("DELETE FROM images WHERE id = $1")
        .bind(&ids[0])
        .execute(&mut silent)
        .await
        .unwrap();
    let (s, body) = fetch(url_of(&ids[0]), true).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        body.as_ref(),
        png(0).as_slice(),
        "B serves the listed bytes"
    );
    assert_eq!(fetch(url_of(&ids[0]), false).await.0, StatusCode::NOT_FOUND);

    // An image changed through A drops what B keeps: the silently deleted image is gone there too.
    let (s, v) = json_of(
        p.http
            .patch(p.url(false, "/batch/images/update"))
            .header("x-api-key", &key)
            .json(&json!({"dataset_name": "listed", "image_ids": [&ids[1]], "updates": {"status": "review"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(s.is_success(), "{v}");
    eventually(
        "B's answer for the silently deleted image after a change through A",
        || fetch(url_of(&ids[0]), true),
        |(s, _)| *s == StatusCode::NOT_FOUND,
    )
    .await;

    // Listed again through B, then the dataset deleted through A: its images' URLs stop
    // working on B too.
    let (s, _) = get_json(&p, true, "/datasets/listed/download?mode=images_only", &key).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(fetch(url_of(&ids[2]), true).await.0, StatusCode::OK);
    let deleted = p
        .http
        .delete(p.url(false, &format!("/datasets/{ds}")))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    eventually(
        "B's answer for an image of a deleted dataset",
        || fetch(url_of(&ids[2]), true),
        |(s, _)| *s == StatusCode::NOT_FOUND,
    )
    .await;
}

/// A GET of `path` through server B (`second`) or A with `key`: its status and JSON body.
async fn get_json(p: &Pair, second: bool, path: &str, key: &str) -> (StatusCode, Value) {
    json_of(
        p.http
            .get(p.url(second, path))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A connection to the database whose changes fire no triggers, so send no change notice.
async fn silent_connection(db: &str) -> sqlx::PgConnection {
    let mut silent = sqlx::PgConnection::connect(db).await.unwrap();
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut silent)
        .await
        .unwrap();
    silent
}

/// A new owner key of organisation `org` and a new project called `name`, made through
/// server A: the key and the project's id.
async fn owner_and_project(p: &Pair, name: &str) -> (String, String) {
    let key = create_key(&p.a.state.store, "org", Role::Owner, "unlimited")
        .await
        .unwrap();
    let (s, v) = json_of(
        p.http
            .post(p.url(false, "/projects/"))
            .header("x-api-key", &key)
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let ds = v["project"]["id"].as_str().unwrap().to_string();
    (key, ds)
}

/// Uploads a PNG through server A; answers the image's id.
async fn upload_png(p: &Pair, key: &str, dataset: &str, name: &str, seed: u8) -> String {
    let u: Value = p
        .http
        .post(p.url(false, "/images/upload-url"))
        .header("x-api-key", key)
        .json(&json!({"dataset_id": dataset, "filename": name, "folder_path": "/", "content_type": "image/png"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let put = p
        .http
        .put(u["upload_url"].as_str().unwrap())
        .header("content-type", "image/png")
        .body(png(seed))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    let form = [
        ("dataset_id", dataset),
        ("filename", name),
        ("gcs_path", u["gcs_path"].as_str().unwrap()),
        ("folder_path", "/"),
    ];
    let (s, v) = json_of(
        p.http
            .post(p.url(false, "/images/register"))
            .header("x-api-key", key)
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(s.is_success(), "{v}");
    v["image_id"].as_str().unwrap().to_string()
}

#[tokio::test]
#[ignore = "needs PostgreSQL; scripts/test runs it"]
async fn a_keyed_request_running_past_the_stale_time_keeps_its_claim_on_every_server() {
    // Claims go stale after a second here: the first request renews its claim while it waits
    // for the dataset, so its retry, on the other server and three seconds later, waits for
    // its answer instead of running the copy a second time.
    let p = start_pair_with(|c| c.claim_stale_secs = 1).await;
    let (key, ds) = owner_and_project(&p, "held").await;
    let mut ids = Vec::new();
    for i in 0..3u8 {
        ids.push(upload_png(&p, &key, &ds, &format!("h{i}.png"), i).await);
    }

    // Another session holds the dataset's row: every write to the dataset waits for it.
    let mut holder = sqlx::PgConnection::connect(&p.db).await.unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("SELECT id FROM datasets WHERE id = $1 FOR UPDATE")
        .bind(&ds)
        .execute(&mut holder)
        .await
        .unwrap();

    let copy = |second: bool| {
        p.http
            .post(p.url(second, "/batch/images/copy"))
            .header("x-api-key", &key)
            .header("idempotency-key", "held-copy-1")
            .json(
                &json!({"dataset_name": "held", "image_ids": ids, "target_folder_path": "/copies"}),
            )
            .send()
    };
    let first = tokio::spawn(copy(false));
    tokio::time::sleep(std::time::Duration::from_millis(3_500)).await;
    let retry = tokio::spawn(copy(true));
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    assert!(!first.is_finished() && !retry.is_finished());
    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();

    let (s1, v1) = json_of(first.await.unwrap().unwrap()).await;
    let retry = retry.await.unwrap().unwrap();
    assert_eq!(
        retry
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap().to_string()),
        Some("true".to_string()),
        "the retry answers the first request's answer"
    );
    let (s2, v2) = json_of(retry).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{v1} {v2}");
    assert_eq!(v1, v2);
    let copies: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM images WHERE dataset_seq = (SELECT seq FROM datasets WHERE id = $1) AND folder = '/copies'",
    )
    .bind(&ds)
    .fetch_one(&mut holder)
    .await
    .unwrap();
    assert_eq!(copies, 3, "the copy ran once");
}

/// The dataset's counters as its image rows say: live images, live annotations, archived
/// images, live images marked complete.
async fn recount(db: &str, dataset: &str) -> [i64; 4] {
    let mut conn = sqlx::PgConnection::connect(db).await.unwrap();
    let row: (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*) FILTER (WHERE is_archived = 0), \
         COALESCE(SUM(annotation_count) FILTER (WHERE is_archived = 0), 0)::bigint, \
         COUNT(*) FILTER (WHERE is_archived <> 0), \
         COUNT(*) FILTER (WHERE is_archived = 0 AND status = 'complete') \
         FROM images WHERE dataset_seq = (SELECT seq FROM datasets WHERE id = $1)",
    )
    .bind(dataset)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    [row.0, row.1, row.2, row.3]
}

/// The counters of dataset "counted" as a server answers them, in [`recount`]'s order.
async fn counted(p: &Pair, second: bool, key: &str) -> [i64; 4] {
    let (s, v) = get_json(p, second, "/datasets/by-name/counted", key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let n = |k: &str| v["dataset"][k].as_i64().unwrap();
    [
        n("image_count"),
        n("annotation_count"),
        n("archived_images"),
        n("completed_image_count"),
    ]
}

/// Annotation saves into one dataset through both servers at once, with batches between
/// them, leave counters that agree with the rows on both servers; the changes the triggers
/// wrote are folded into the dataset's row in the background (changes of a dataset that is
/// gone are dropped), and the totals read the same before and after.
#[tokio::test]
#[ignore = "needs PostgreSQL; scripts/test runs it"]
async fn counters_stay_true_while_both_servers_write_one_dataset() {
    let p = start_pair_with(|c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let folded_before = metric(&p.http, &p.a, FOLDED).await + metric(&p.http, &p.b, FOLDED).await;
    let (key, ds) = owner_and_project(&p, "counted").await;
    let mut ids = Vec::new();
    for i in 0..6u8 {
        ids.push(upload_png(&p, &key, &ds, &format!("c{i}.png"), i).await);
    }
    // Folding waits while this connection holds the folds' advisory lock, so the counters
    // below are read with the changes not yet folded.
    let mut db = sqlx::PgConnection::connect(&p.db).await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(FOLD_LOCK)
        .execute(&mut db)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for n in 0..48usize {
        let (http, key) = (p.http.clone(), key.clone());
        let url = p.url(n % 2 == 1, &format!("/annotations/{}", ids[n % ids.len()]));
        let list: Vec<Value> = (0..n % 4)
            .map(|k| {
                json!({"id": format!("a{n}-{k}"), "name": "thing", "type": "bbox",
                            "bounding_box": {"x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0}})
            })
            .collect();
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .header("x-api-key", &key)
                .json(&json!({"annotations": list}))
                .send()
                .await
                .unwrap();
            r.status()
        }));
    }
    let batch = |second: bool, op: &str, picked: &[String], body: Value| {
        let mut body = body;
        body["dataset_name"] = json!("counted");
        body["image_ids"] = json!(picked);
        let req = if op == "update" {
            p.http.patch(p.url(second, "/batch/images/update"))
        } else {
            p.http.post(p.url(second, &format!("/batch/images/{op}")))
        };
        req.header("x-api-key", &key).json(&body).send()
    };
    let done = batch(
        true,
        "update",
        &ids[..3],
        json!({"updates": {"status": "complete"}}),
    )
    .await
    .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    let done = batch(false, "delete", &ids[2..4], json!({"permanent": false}))
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }

    let truth = recount(&p.db, &ds).await;
    assert_eq!([truth[0], truth[2], truth[3]], [4, 2, 2]);
    assert_eq!(counted(&p, false, &key).await, truth, "server A");
    assert_eq!(counted(&p, true, &key).await, truth, "server B");
    let mut left = || {
        let db = p.db.clone();
        async move {
            let mut conn = sqlx::PgConnection::connect(&db).await.unwrap();
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM dataset_counter_changes")
                .fetch_one(&mut conn)
                .await
                .unwrap()
        }
    };
    let unfolded = left().await;
    assert!(unfolded > 0, "changes were folded under the lock");

    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(FOLD_LOCK)
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO dataset_counter_changes VALUES ('a dataset deleted meanwhile', \
         1, 1, 0, 0, 0, 0, 10, 2)",
    )
    .execute(&mut db)
    .await
    .unwrap();
    eventually("unfolded counter changes", &mut left, |n| *n == 0).await;
    let row: (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT image_count, annotation_count, archived_images, completed_image_count \
         FROM datasets WHERE id = $1",
    )
    .bind(&ds)
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!([row.0, row.1, row.2, row.3], truth, "the row after folding");
    assert_eq!(
        counted(&p, true, &key).await,
        truth,
        "server B after folding"
    );
    let folded = metric(&p.http, &p.a, FOLDED).await + metric(&p.http, &p.b, FOLDED).await;
    assert!(
        folded - folded_before >= unfolded as f64 + 1.0,
        "the servers say they folded {folded_before} → {folded}, with {unfolded} changes \
         and one of a deleted dataset waiting"
    );
}

/// The metric of the changes a server folded.
const FOLDED: &str = "pictograph_db_counter_changes_folded_total";

/// The key of the advisory lock the servers fold counter changes under (the store's
/// `FOLD_LOCK`).
const FOLD_LOCK: i64 = 0x7069_6374_6f66_6c64;
