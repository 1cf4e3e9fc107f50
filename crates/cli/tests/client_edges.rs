//! Client commands at their edges, against a real server started in-process: listings cut
//! by a limit, answers from other servers, usage errors with `--json`, batches of more than
//! one request, and downloads that local files get in the way of.

mod harness;

use harness::*;
use pictograph::{CopyOptions, CreateProject, ImageListOptions, UploadOptions};
use pictograph_server::auth::{create_key, Role};
use serde_json::Value;
use std::io::{Read, Write};

impl Server {
    /// Uploads a small PNG per name into `folder` of a new dataset; answers the image ids.
    async fn dataset(&self, name: &str, folder: &str, files: &[&str]) -> Vec<String> {
        let ds = self
            .client()
            .projects()
            .create(name, CreateProject::default())
            .await
            .unwrap();
        let mut ids = Vec::new();
        for (i, file) in files.iter().enumerate() {
            let src = self.path(&format!("src-{name}-{i}.png"));
            std::fs::write(&src, png(i as u8)).unwrap();
            let opts = UploadOptions::default().folder_path(folder).filename(*file);
            let image = self.client().images().upload(&ds.id, &src, opts).await;
            ids.push(image.unwrap().id);
        }
        ids
    }

    /// Every image id of `dataset`, in listing order.
    async fn ids(&self, dataset: &str) -> Vec<String> {
        let mut pages = self
            .client()
            .datasets()
            .image_pages(dataset, ImageListOptions::default());
        let mut ids = Vec::new();
        while let Some(page) = pages.next_page(10_000).await.unwrap() {
            ids.extend(page.images.into_iter().map(|i| i.id));
        }
        ids
    }
}

fn png(seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(6, 5, |x, y| {
        image::Rgb([seed, (x * 20) as u8, (y * 25) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// `n` ids no dataset has.
fn unknown_ids(n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| uuid::Uuid::from_u128(i as u128).to_string())
        .collect()
}

/// The lines of `stderr` that are not progress or failure lines.
fn notes(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| !l.is_empty()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_ids_has_no_limit_and_a_cut_listing_says_so() {
    let s = start().await;
    s.dataset("many", "/", &["a.png", "b.png", "c.png", "d.png", "e.png"])
        .await;
    // Each copy of every image into the root doubles the dataset: 5 × 2⁸ = 1,280 images.
    for _ in 0..8 {
        let ids = s.ids("many").await;
        s.client()
            .batch()
            .copy("many", &ids, CopyOptions::to("/"))
            .await
            .unwrap();
    }
    let every = s.ids("many").await;
    assert_eq!(every.len(), 1280);

    let out = s.run(&["images", "list", "-d", "many", "--ids"]);
    let listed: Vec<&str> = out.ok().stdout.lines().collect();
    assert_eq!(listed, every, "--ids lists every id, in order");
    assert_eq!(out.stderr, "", "nothing was cut");

    let out = s.run(&["images", "list", "-d", "many", "--ids", "--limit", "1100"]);
    assert_eq!(out.ok().stdout.lines().count(), 1100);
    assert_eq!(
        notes(&out.stderr),
        ["1100 of 1280 images shown; use --limit/--offset for more"]
    );

    // The table keeps its default of 1,000 rows, and says it is cut.
    let out = s.run(&["images", "list", "-d", "many"]);
    assert_eq!(
        out.ok().stdout.lines().count(),
        1001,
        "header and 1000 rows"
    );
    assert_eq!(
        notes(&out.stderr),
        ["1000 of 1280 images shown; use --limit/--offset for more"]
    );

    let out = s.run(&["images", "list", "-d", "many", "--json", "--limit", "3"]);
    let v = out.ok().json();
    assert_eq!(
        (v["count"].as_u64(), v["has_more"].as_bool()),
        (Some(3), Some(true))
    );
    assert_eq!(
        notes(&out.stderr),
        ["3 of 1280 images shown; use --limit/--offset for more"]
    );

    let out = s.run(&["images", "list", "-d", "many", "--json", "--ids"]);
    let v = out.ok().json();
    let ids: Vec<&str> = v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert_eq!(ids, every);
    assert_eq!(
        (v["count"].as_u64(), v["has_more"].as_bool()),
        (Some(1280), Some(false))
    );
    assert_eq!(out.stderr, "");
    s.app.stop().await.unwrap();
}

/// A web server that is not a Pictograph API: every request gets an HTML 404 page, as
/// `python3 -m http.server` answers. Answers its URL.
fn foreign_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let page = "<!DOCTYPE HTML>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
                        <title>Error response</title>\n</head>\n<body>\n<h1>Error response</h1>\n\
                        <p>Error code: 404</p>\n<p>Message: File not found.</p>\n</body>\n</html>\n";
            let answer = format!(
                "HTTP/1.0 404 File not found\r\nContent-Type: text/html;charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_from_another_server_is_one_line_naming_it() {
    let url = foreign_server();
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let mut c = bare(dir.path());
        c.env("PICTOGRAPH_API_KEY", "pk_live_any");
        let mut args = vec!["datasets", "list", "--base-url", &url];
        args.extend(extra);
        exec(c, &args, None)
    };
    let expected =
        format!("HTTP 404 Not Found from {url}: not a Pictograph API answer (text/html)");
    let out = run(&[]);
    assert_eq!(out.code, 1);
    assert_eq!(out.stderr, format!("error: {expected}\n"));

    let out = run(&["--json"]);
    assert_eq!(out.code, 1);
    let v = out.json();
    assert_eq!(v["error"]["message"], expected.as_str());
    assert_eq!(v["error"]["status"], 404);
}

/// A server that answers its first request with a 429 asking for a one-second wait, and
/// every later one with a list of one dataset. Answers its URL.
fn rate_limiting_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let (status, extra, body) = if n == 0 {
                (
                    "429 Too Many Requests",
                    "Retry-After: 1\r\n",
                    r#"{"detail":"slow down"}"#,
                )
            } else {
                (
                    "200 OK",
                    "",
                    r#"{"datasets":[{"id":"d1","name":"cats","created_at":"2026-01-01T00:00:00Z"}]}"#,
                )
            };
            let answer = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    url
}

#[test]
fn a_rate_limited_wait_is_said_not_silent() {
    let url = rate_limiting_server();
    let dir = tempfile::tempdir().unwrap();
    let mut c = bare(dir.path());
    c.env("PICTOGRAPH_API_KEY", "pk_live_any");
    let out = exec(c, &["datasets", "list", "--base-url", &url], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("cats"), "{}", out.stdout);
    assert_eq!(
        out.stderr,
        "rate limited by the server (HTTP 429): waiting 1.0 s as it asks (retry 1 of 3)\n"
    );
}

#[test]
fn usage_errors_with_json_print_an_error_document() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &["download", "dl", "x", "--status", "bogus", "--json"],
            "invalid value 'bogus' for '--status <STATUS>'",
        ),
        (
            &["images", "list", "--json"],
            "the following required arguments were not provided: --dataset <NAME>",
        ),
        (
            &["upload", "imgs", "-d", "x", "--workers", "0", "--json"],
            "invalid value '0' for '--workers <N>'",
        ),
        (
            &["batch", "--json"],
            "'pictograph batch' requires a subcommand",
        ),
        (
            &["images", "list", "-d", "x", "--json=true"],
            "unexpected value 'true' for '--json' found",
        ),
        // An empty variable as the target folder is not the root folder.
        (
            &["batch", "move", "-d", "x", "--to", "", "id1", "--json"],
            "invalid value '' for '--to <FOLDER>': the folder must not be blank",
        ),
    ];
    for (args, message) in cases {
        let out = exec(bare(dir.path()), args, None);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        let v = out.json();
        let got = v["error"]["message"].as_str().unwrap();
        assert!(got.starts_with(message), "{args:?}: {got}");
        assert!(!got.contains('\n') && !got.contains('\u{1b}'), "{got:?}");
        assert_eq!(v["error"]["status"], Value::Null);
        assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    }

    // Without --json, stdout stays empty; help and version print as always.
    let out = exec(bare(dir.path()), &["images", "list"], None);
    assert_eq!((out.code, out.stdout.as_str()), (2, ""));
    let out = exec(
        bare(dir.path()),
        &["images", "list", "--json", "--help"],
        None,
    );
    assert!(
        out.ok().stdout.starts_with("List a dataset's images"),
        "{}",
        out.stdout
    );
    let out = exec(bare(dir.path()), &["--version"], None);
    assert!(out.ok().stdout.starts_with("pictograph "), "{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_goes_on_past_a_request_of_unknown_ids() {
    let s = start().await;
    let real = s.dataset("basic", "/", &["a.png", "b.png", "c.png"]).await;
    let mut ids = real.clone();
    ids.extend(unknown_ids(100_000));
    let out = s.run_in(
        &[
            "batch", "update", "-d", "basic", "--status", "complete", "--json",
        ],
        &ids.join("\n"),
    );
    let v = out.json();
    assert_eq!(v["requested"], 100_003);
    assert_eq!(v["processed"], 3);
    assert_eq!(v["succeeded"].as_array().unwrap().len(), 3);
    assert_eq!(v["failed"], 100_000);
    assert_eq!(v["failures"][99_999]["image_id"], ids[100_002].as_str());
    assert!(
        out.error_line().contains("100000 of 100003 images failed"),
        "{}",
        out.error_line()
    );
    for id in &real {
        assert_eq!(
            s.client().images().get(id).await.unwrap().status,
            "complete"
        );
    }
    // An unknown dataset is still an error of its own.
    let out = s.run_in(
        &["batch", "update", "-d", "nope", "--status", "new"],
        &ids.join("\n"),
    );
    assert!(out.error_line().contains("404"), "{}", out.stderr);
    assert!(!out.stderr.contains("failed: "), "{}", out.stderr);
    s.app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_stopped_midway_says_what_was_applied() {
    // A budget of one request an hour (per organisation and tier, so one tier a run): the
    // first request of 100,000 ids goes through, the second is refused with a wait longer
    // than the client waits out.
    let s = start_with(|c| {
        c.rate_limits.free = 1;
        c.rate_limits.core = 1;
    })
    .await;
    let real = s.dataset("basic", "/", &["a.png"]).await;
    let mut ids = real.clone();
    ids.extend(unknown_ids(100_000));
    let ids = ids.join("\n");

    let free = create_key(&s.app.state.store, "org", Role::Owner, "free")
        .await
        .unwrap();
    let args = ["batch", "update", "-d", "basic", "--status", "complete"];
    let out = exec(s.cmd_with(&free), &args, Some(&ids));
    let line = out.error_line();
    assert!(line.contains("HTTP 429"), "{line}");
    assert!(
        line.ends_with(
            "stopped at chunk 2 of 2 (id 100001): chunk 1 applied before it (1 of 100000 \
             images updated, 99999 failed), chunk 2 not applied"
        ),
        "{line}"
    );
    assert_eq!(out.code, 1);
    assert_eq!(
        s.client().images().get(&real[0]).await.unwrap().status,
        "complete"
    );

    let core = create_key(&s.app.state.store, "org", Role::Owner, "core")
        .await
        .unwrap();
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let out = exec(s.cmd_with(&core), &json_args, Some(&ids));
    assert_eq!(out.code, 1);
    let v = out.json();
    assert_eq!(v["error"]["status"], 429);
    assert_eq!(
        (
            v["chunks"].as_u64(),
            v["chunks_applied"].as_u64(),
            v["processed"].as_u64(),
            v["failed"].as_u64()
        ),
        (Some(2), Some(1), Some(1), Some(99_999))
    );
    assert_eq!(v["succeeded"], serde_json::json!(real));
    assert_eq!(v["success"], false);
    s.app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_count_fetched_bytes_and_say_when_a_rerun_cannot_help() {
    let s = start().await;
    let ids = s.dataset("dl", "/cats", &["x.png", "y.png"]).await;
    let out_dir = s.path("out");
    let out = out_dir.to_str().unwrap();
    let images_only = ["--mode", "images-only"];

    let first = s.run(&[&["download", "dl", out, "--json"][..], &images_only].concat());
    let v = first.ok().json();
    let on_disk = std::fs::metadata(out_dir.join("cats/x.png")).unwrap().len()
        + std::fs::metadata(out_dir.join("cats/y.png")).unwrap().len();
    assert_eq!(v["bytes"].as_u64(), Some(on_disk));
    let again = s.run(&[&["download", "dl", out, "--json"][..], &images_only].concat());
    let v = again.ok().json();
    assert_eq!(
        (v["images_skipped"].as_u64(), v["bytes"].as_u64()),
        (Some(2), Some(0)),
        "a re-run writes nothing"
    );
    let again = s.run(&[&["download", "dl", out][..], &images_only].concat());
    let summary = again.ok().stdout.as_str();
    assert!(
        summary.contains("0 images downloaded, 2 already present")
            && summary.contains("; 0 B written"),
        "{summary}"
    );

    // An output that is a file.
    let file = s.path("file.txt");
    std::fs::write(&file, "x").unwrap();
    let out = s.run(&["download", "dl", file.to_str().unwrap()]);
    assert_eq!(out.code, 2);
    assert!(
        out.error_line()
            .ends_with("file.txt is not a directory: give a directory to download into"),
        "{}",
        out.stderr
    );

    // A file where the folder's directory goes: one line for both images, and no re-run hint.
    let blocked = s.path("blocked");
    std::fs::create_dir_all(&blocked).unwrap();
    std::fs::write(blocked.join("cats"), "in the way").unwrap();
    let blocked = blocked.to_str().unwrap();
    let out = s.run(&[&["download", "dl", blocked][..], &images_only].concat());
    let failed: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("failed: "))
        .collect();
    assert_eq!(failed.len(), 1, "{}", out.stderr);
    assert!(
        failed[0].starts_with("failed: 2 files (cats/x.png, cats/y.png): I/O error on ")
            && failed[0].ends_with("cats: exists and is not a directory"),
        "{}",
        failed[0]
    );
    let line = out.error_line();
    assert!(
        line.starts_with("error: 2 files failed; ")
            && line.contains("re-running alone will not help")
            && !line.contains("re-run the same command"),
        "{line}"
    );
    let out = s.run(&["download", "dl", blocked, "--json"]);
    let v = out.json();
    assert_eq!(v["failed"], 4, "both images and their annotation files");
    assert!(v["failures"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["retryable"] == false));

    // One image: a path ending in / is a directory to create, once the image is known;
    // errors name the path given.
    let missing = format!("{}/", s.path("nodir").display());
    let out = s.run(&["images", "download", "no-such-image", &missing]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        !s.path("nodir").exists(),
        "no directory for an unknown image"
    );
    let newdir = format!("{}/", s.path("newdir").display());
    s.run(&["images", "download", &ids[0], &newdir]).ok();
    assert!(s.path("newdir/x.png").is_file());
    let dest = s.path("one.png");
    std::fs::create_dir_all(s.path("one.png.part")).unwrap();
    let out = s.run(&["images", "download", &ids[0], dest.to_str().unwrap()]);
    let line = out.error_line();
    assert!(
        line.contains(&format!("I/O error on {}:", dest.display())) && !line.contains(".part"),
        "{line}"
    );
    s.app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_flag_is_refused_and_a_field_error_is_said_once() {
    let s = start().await;
    for flag in ["--api-key", "--base-url"] {
        let out = s.run(&["datasets", "list", flag, ""]);
        assert_eq!(out.code, 2);
        assert!(
            out.error_line().contains(&format!("{flag} is empty")),
            "{}",
            out.stderr
        );
    }
    let long = "n".repeat(201);
    let out = s.run(&["datasets", "create", &long]);
    let line = out.error_line();
    assert_eq!(
        line.matches("at most 200 characters").count(),
        1,
        "said once: {line}"
    );
    assert!(line.contains("(at body.name)"), "{line}");
    s.app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_id_with_a_line_ending_still_names_the_image() {
    let s = start().await;
    let ids = s.dataset("crlf", "/", &["a.png"]).await;
    let padded = format!("{}\r\n", ids[0]);
    let out = s.run(&["images", "get", &padded, "--json"]);
    assert_eq!(out.ok().json()["image"]["id"], ids[0].as_str());
    let out = s.run(&["annotations", "get", &format!(" {}\r", ids[0]), "--json"]);
    assert_eq!(out.ok().json()["image_id"], ids[0].as_str());
    let out = s.run_in(&["annotations", "set", &padded, "--json"], "[]");
    assert_eq!(out.ok().json()["saved"]["image_id"], ids[0].as_str());
    let out = s.run(&["annotations", "delete", &padded]);
    out.ok();
    let dest = s.path("one.png");
    let out = s.run(&["images", "download", &padded, dest.to_str().unwrap()]);
    out.ok();
    assert_eq!(std::fs::read(&dest).unwrap(), png(0));
    // Ids on standard input as a Windows editor saves them: a byte order mark, CRLF.
    let out = s.run_in(
        &[
            "batch", "update", "-d", "crlf", "--status", "review", "--json",
        ],
        &format!("\u{feff}{}\r\n", ids[0]),
    );
    assert_eq!(out.ok().json()["succeeded"][0], ids[0].as_str());
    let file = s.path("bom.json");
    std::fs::write(&file, "\u{feff}[]\r\n").unwrap();
    let out = s.run(&["annotations", "set", &ids[0], file.to_str().unwrap()]);
    out.ok();
    // A blank id is a usage error, named, before anything is sent.
    let out = s.run(&["images", "get", " ", "--json"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let message = out.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("must not be blank"), "{message}");
    s.app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_limited_to_nothing_still_checks_and_counts() {
    let s = start().await;
    s.dataset("three", "/", &["a.png", "b.png", "c.png"]).await;
    let out = s.run(&["images", "list", "-d", "three", "--limit", "0", "--json"]);
    let v = out.ok().json();
    assert_eq!(
        (v["count"].as_u64(), v["total"].as_u64()),
        (Some(0), Some(3))
    );
    assert_eq!(v["images"], serde_json::json!([]));
    assert_eq!(v["has_more"], true);
    assert_eq!(
        notes(&out.stderr),
        ["0 of 3 images shown; use --limit/--offset for more"]
    );
    let out = s.run(&["images", "list", "-d", "three", "--limit", "0", "--ids"]);
    assert_eq!(out.ok().stdout, "");
    // An unknown dataset is an error however few images are asked for.
    let out = s.run(&["images", "list", "-d", "nope", "--limit", "0", "--json"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert_eq!(out.json()["error"]["status"], 404);
    s.app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_images_stops_at_a_refused_key_instead_of_trying_each() {
    let s = start().await;
    let ids = s.dataset("keep", "/", &["a.png", "b.png"]).await;
    let input = format!("{}\nnope\n{}\n", ids[0], ids[1]);
    let out = exec(
        s.cmd_with("pk_live_revoked"),
        &["images", "delete", "--json"],
        Some(&input),
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let v = out.json();
    assert_eq!(v["error"]["status"], 401);
    assert_eq!(v["requested"], 3);
    assert_eq!(v["remaining"].as_array().unwrap().len(), 3);
    assert_eq!(v["success"], false);
    // One error line, not one per id.
    assert!(!out.stderr.contains("failed: "), "{}", out.stderr);
    assert!(
        out.error_line().ends_with("stopped at image 1 of 3: 0 archived before it, 0 failed, 3 remaining (it and those after it)"),
        "{}",
        out.error_line()
    );
    // An unknown id is that id's failure, and the others still go.
    let out = s.run_in(&["images", "delete", "--json"], &input);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let v = out.json();
    assert_eq!(v["succeeded"].as_array().unwrap().len(), 2);
    assert_eq!(v["failures"][0]["image_id"], "nope");
    assert_eq!(
        (v["requested"].as_u64(), v["success"].as_bool()),
        (Some(3), Some(false))
    );
    s.app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_job_listings_take_only_what_the_server_serves_and_say_when_cut() {
    let s = start().await;
    s.dataset("jobs", "/", &["a.png"]).await;
    for limit in ["0", "201"] {
        let out = s.run(&["exports", "list", "jobs", "--limit", limit, "--json"]);
        assert_eq!(out.code, 2, "{limit}: {}", out.stderr);
        let message = out.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains("--limit <N>"), "{message}");
    }
    use pictograph::formats::{start_server_export, Format, ServerExportOptions};
    for format in [Format::Coco, Format::Yolo] {
        start_server_export(&s.client(), "jobs", format, &ServerExportOptions::default())
            .await
            .unwrap();
    }
    let out = s.run(&["exports", "list", "jobs", "--limit", "1"]);
    assert_eq!(out.ok().stdout.lines().count(), 2, "{}", out.stdout);
    assert_eq!(
        notes(&out.stderr),
        ["1 of 2 export jobs shown; use --limit/--offset for more"]
    );
    let out = s.run(&[
        "exports", "list", "jobs", "--limit", "1", "--offset", "1", "--json",
    ]);
    let v = out.ok().json();
    assert_eq!(
        (v["total"].as_u64(), v["offset"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(v["exports"][0]["format"], "coco");
    assert_eq!(notes(&out.stderr), Vec::<&str>::new());
    s.app.stop().await.unwrap();
}

#[test]
fn a_login_nobody_answers_says_the_key_was_not_saved() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = bare(dir.path());
    c.env("PICTOGRAPH_MAX_RETRIES", "0");
    let args = [
        "login",
        "--api-key",
        "pk_live_any",
        "--base-url",
        "http://127.0.0.1:9",
        "--json",
    ];
    let out = exec(c, &args, None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let line = out.error_line();
    assert!(line.contains("cannot reach the server"), "{line}");
    assert!(
        line.ends_with(
            "the key was not saved: check --base-url, or pass --no-verify to save it unchecked"
        ),
        "{line}"
    );
    assert!(out.json()["error"]["hint"].is_string(), "{}", out.stdout);
    assert!(!dir.path().join("credentials.toml").exists());
}
