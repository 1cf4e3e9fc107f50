//! The client commands of the `pictograph` binary against a real server started in-process:
//! output, `--json` documents, exit statuses and files written.

mod harness;

use harness::*;
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;

fn image_bytes(seed: u8, png: bool) -> Vec<u8> {
    let img = image::RgbImage::from_fn(12, 9, |x, y| {
        image::Rgb([seed, (x * 20) as u8, (y * 25) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    let format = if png {
        image::ImageFormat::Png
    } else {
        image::ImageFormat::Jpeg
    };
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// Image files of the generated folder, relative to it.
const TREE: [&str; 5] = [
    "cats/a.png",
    "cats/b.jpg",
    "cats/nested/c.png",
    "dogs/d.png",
    "e.jpg",
];

/// A folder with class sub-folders, a nested one, a root image and a non-image file.
fn make_tree(root: &Path) {
    for (i, rel) in TREE.iter().enumerate() {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, image_bytes(i as u8 * 40, rel.ends_with(".png"))).unwrap();
    }
    std::fs::write(root.join("cats/notes.txt"), "not an image\n").unwrap();
}

/// Uploads the generated tree into `dataset` and answers its image ids by file name.
fn upload_tree(s: &Server, dataset: &str) -> std::collections::HashMap<String, String> {
    let root = s.path(&format!("tree-{dataset}"));
    make_tree(&root);
    s.run(&["upload", root.to_str().unwrap(), "--dataset", dataset])
        .ok();
    let list = s
        .run(&["images", "list", "--dataset", dataset, "--json"])
        .ok()
        .json();
    list["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["filename"].as_str().unwrap().to_string(),
                i["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Every file under `root`, relative, sorted.
fn files(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(
                    p.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_is_idempotent_and_reports_counts() {
    let s = start().await;
    let root = s.path("tree");
    make_tree(&root);
    let folder = root.to_str().unwrap();

    let out = s.run(&["upload", folder, "--dataset", "pets"]);
    out.ok();
    assert!(
        out.stdout
            .contains("5 uploaded, 0 skipped (already there), 0 failed of 5 image files"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("1 other file(s) ignored"),
        "{}",
        out.stdout
    );
    // Not a terminal: plain progress lines on stderr, nothing fancy.
    assert!(out.stderr.contains("upload: 5 files"), "{}", out.stderr);
    assert!(
        !out.stderr.contains('\u{1b}'),
        "no escape codes off a terminal"
    );

    // A re-run skips everything; --json is one document with the counts.
    let out = s.run(&["upload", folder, "--dataset", "pets", "--json"]);
    let v = out.ok().json();
    assert_eq!(v["files"], 5);
    assert_eq!(v["uploaded"], 0);
    assert_eq!(v["skipped"], 5);
    assert_eq!(v["failed"], 0);
    assert_eq!(v["ignored"], 1);
    assert_eq!(v["success"], true);
    assert_eq!(v["dataset"], "pets");
    assert!(
        out.stderr.is_empty(),
        "nothing on stderr with --json: {}",
        out.stderr
    );

    // A re-run's progress lines count the skipped files and no bytes sent (no made-up rate).
    let out = s.run(&["upload", folder, "--dataset", "pets"]);
    out.ok();
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("upload: ") && l.contains(" files, "))
        .collect();
    assert!(!lines.is_empty(), "{}", out.stderr);
    for line in lines {
        assert!(
            line.contains(" skipped, 0 B/") && line.contains(", 0 B/s, "),
            "{line}"
        );
    }
    assert!(
        out.stdout
            .contains("0 uploaded, 5 skipped (already there), 0 failed of 5 image files"),
        "{}",
        out.stdout
    );

    // First-level sub-folders became virtual folders.
    let list = s
        .run(&["images", "list", "--dataset", "pets", "--json"])
        .ok()
        .json();
    assert_eq!(list["total"], 5);
    let mut placed: Vec<String> = list["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}|{}",
                i["virtual_folder_path"].as_str().unwrap(),
                i["filename"].as_str().unwrap()
            )
        })
        .collect();
    placed.sort();
    assert_eq!(
        placed,
        [
            "/cats|a.png",
            "/cats|b.jpg",
            "/cats|c.png",
            "/dogs|d.png",
            "/|e.jpg",
        ]
    );

    // Conflicts are failures with --no-skip-existing: listed, non-zero, with a hint.
    let out = s.run(&[
        "upload",
        folder,
        "--dataset",
        "pets",
        "--no-skip-existing",
        "--json",
    ]);
    assert_ne!(out.code, 0);
    let v = out.json();
    assert_eq!(v["failed"], 5);
    assert_eq!(v["failures"].as_array().unwrap().len(), 5);
    assert!(
        v["failures"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["retryable"] == false),
        "{v}"
    );
    // A taken name stays taken: the hint says what helps instead of a plain re-run.
    let line = out.error_line();
    assert!(
        line.contains("re-running will not help")
            && line.contains("without --no-skip-existing, names already taken count as skipped"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("failed: cats/a.png:"), "{}", out.stderr);

    // --flat puts everything at the root; --workers is honoured.
    let v = s
        .run(&[
            "upload",
            folder,
            "--dataset",
            "flat",
            "--flat",
            "--workers",
            "1",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["uploaded"], 5);
    let list = s
        .run(&[
            "images",
            "list",
            "--dataset",
            "flat",
            "--folder",
            "/",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(list["count"], 5);

    // --no-create refuses a missing dataset; a missing folder is a usage error.
    let out = s.run(&["upload", folder, "--dataset", "nope", "--no-create"]);
    let line = out.error_line();
    assert!(line.contains("404"), "{}", out.stderr);
    assert!(
        line.ends_with("; leave out --no-create to create it"),
        "{line}"
    );
    let out = s.run(&[
        "upload",
        folder,
        "--dataset",
        "nope",
        "--no-create",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["error"]["status"], 404);
    assert_eq!(v["error"]["hint"], "leave out --no-create to create it");
    let out = s.run(&[
        "upload",
        s.path("missing").to_str().unwrap(),
        "--dataset",
        "pets",
    ]);
    assert_eq!(out.code, 2);
    assert!(
        out.error_line().contains("does not exist"),
        "{}",
        out.error_line()
    );
    s.app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_modes_write_the_right_files() {
    let s = start().await;
    let ids = upload_tree(&s, "pets");
    let ann = r#"[{"type":"keypoint","id":"k1","name":"eye","keypoint":{"x":2,"y":3}}]"#;
    let ann_file = s.path("ann.json");
    std::fs::write(&ann_file, ann).unwrap();
    s.run(&[
        "annotations",
        "set",
        &ids["a.png"],
        ann_file.to_str().unwrap(),
    ])
    .ok();
    s.run(&[
        "batch",
        "update",
        "--dataset",
        "pets",
        "--status",
        "complete",
        &ids["d.png"],
    ])
    .ok();

    let images = [
        "cats/a.png",
        "cats/b.jpg",
        "cats/c.png",
        "dogs/d.png",
        "e.jpg",
    ];
    let with_json: Vec<String> = images.iter().map(|i| format!("{i}.json")).collect();

    // full
    let out_dir = s.path("full");
    let out = s.run(&["download", "pets", out_dir.to_str().unwrap()]);
    out.ok();
    assert!(out.stdout.contains("5 images downloaded"), "{}", out.stdout);
    let mut expected: Vec<String> = images.iter().map(|i| i.to_string()).collect();
    expected.extend(with_json.iter().cloned());
    expected.sort();
    assert_eq!(files(&out_dir), expected);
    let src = s.path("tree-pets");
    for (local, original) in images.iter().zip(TREE) {
        assert_eq!(
            std::fs::read(out_dir.join(local)).unwrap(),
            std::fs::read(src.join(original)).unwrap(),
            "{local}"
        );
    }
    let a: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("cats/a.png.json")).unwrap()).unwrap();
    assert_eq!(a["annotations"][0]["id"], "k1");

    // A re-run finds the images already there.
    let v = s
        .run(&["download", "pets", out_dir.to_str().unwrap(), "--json"])
        .ok()
        .json();
    assert_eq!(v["images_skipped"], 5);
    assert_eq!(v["images_downloaded"], 0);
    assert_eq!(v["annotations_downloaded"], 5);

    // images-only
    let out_dir = s.path("images");
    let v = s
        .run(&[
            "download",
            "pets",
            out_dir.to_str().unwrap(),
            "--mode",
            "images-only",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["images_downloaded"], 5);
    assert_eq!(v["annotations_downloaded"], 0);
    assert_eq!(v["mode"], "images_only");
    assert_eq!(files(&out_dir), images);

    // annotations-only
    let out_dir = s.path("anns");
    let v = s
        .run(&[
            "download",
            "pets",
            out_dir.to_str().unwrap(),
            "--mode",
            "annotations-only",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["images_downloaded"], 0);
    assert_eq!(v["annotations_downloaded"], 5);
    assert_eq!(files(&out_dir), with_json);

    // --status complete
    let out_dir = s.path("complete");
    let v = s
        .run(&[
            "download",
            "pets",
            out_dir.to_str().unwrap(),
            "--status",
            "complete",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["images_downloaded"], 1);
    assert_eq!(v["status"], "complete");
    assert_eq!(files(&out_dir), ["dogs/d.png", "dogs/d.png.json"]);

    // Unknown dataset and bad arguments.
    let out = s.run(&["download", "nope", s.path("x").to_str().unwrap()]);
    assert!(out.error_line().contains("404"), "{}", out.stderr);
    let out = s.run(&["download", "pets", "x", "--status", "done"]);
    assert_eq!(out.code, 2);
    s.app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_commands() {
    let s = start().await;
    let v = s
        .run(&[
            "datasets",
            "create",
            "birds",
            "--description",
            "feathers",
            "--classes",
            "owl,crow",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["dataset"]["name"], "birds");
    assert_eq!(v["dataset"]["classes"].as_array().unwrap().len(), 2);
    let out = s.run(&["datasets", "create", "fish"]);
    assert!(
        out.ok().stdout.starts_with("Created dataset 'fish'"),
        "{}",
        out.stdout
    );
    let out = s.run(&["datasets", "create", "fish"]);
    assert!(out.error_line().contains("409"), "{}", out.stderr);

    let v = s.run(&["datasets", "list", "--json"]).ok().json();
    assert_eq!(v["count"], 2);
    let out = s.run(&["datasets", "list"]);
    let text = &out.ok().stdout;
    assert!(text.starts_with("NAME"), "{text}");
    assert!(text.contains("birds") && text.contains("fish"), "{text}");
    let cut = s
        .run(&["datasets", "list", "--limit", "1", "--json"])
        .ok()
        .json();
    assert_eq!(
        (cut["count"].clone(), cut["has_more"].clone()),
        (1.into(), true.into())
    );
    let whole = s
        .run(&["datasets", "list", "--limit", "2", "--json"])
        .ok()
        .json();
    assert_eq!(
        (whole["count"].clone(), whole["has_more"].clone()),
        (2.into(), false.into())
    );
    let out = s.run(&["datasets", "list", "--limit", "1"]);
    let out = out.ok();
    assert!(
        out.stderr.contains("1 datasets shown; more exist"),
        "{}",
        out.stderr
    );

    let v = s.run(&["datasets", "get", "birds", "--json"]).ok().json();
    assert_eq!(v["dataset"]["description"], "feathers");
    assert_eq!(v["dataset"]["image_count"], 0);
    let out = s.run(&["datasets", "get", "birds"]);
    let out = out.ok();
    assert!(out.stdout.contains("owl, crow"), "{}", out.stdout);
    let by_status = "new 0, annotate 0, review 0, complete 0";
    assert!(out.stdout.contains(by_status), "{}", out.stdout);

    let v = s
        .run(&["datasets", "rename", "birds", "aves", "--json"])
        .ok()
        .json();
    assert_eq!(v["dataset"]["name"], "aves");
    let out = s.run(&["datasets", "get", "birds"]);
    let line = out.error_line();
    assert!(line.contains("404") && line.contains("birds"), "{line}");

    // Deleting asks for --yes when nobody can be asked.
    let out = s.run(&["datasets", "delete", "aves"]);
    assert_eq!(out.code, 2);
    assert!(out.error_line().contains("--yes"));
    let v = s
        .run(&["datasets", "delete", "aves", "--yes", "--json"])
        .ok()
        .json();
    assert_eq!(v["deleted"]["name"], "aves");
    let v = s.run(&["datasets", "list", "--json"]).ok().json();
    assert_eq!(v["count"], 1);
    assert_eq!(v["datasets"][0]["name"], "fish");
    s.app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_commands() {
    let s = start().await;
    let ids = upload_tree(&s, "pets");
    s.run(&[
        "batch",
        "update",
        "-d",
        "pets",
        "--status",
        "review",
        &ids["b.jpg"],
        &ids["e.jpg"],
    ])
    .ok();

    // Filters, limits, and --ids.
    let v = s
        .run(&[
            "images",
            "list",
            "--dataset",
            "pets",
            "--status",
            "review",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["count"], 2);
    let v = s
        .run(&[
            "images",
            "list",
            "--dataset",
            "pets",
            "--folder",
            "/cats",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["total"], 3);
    let v = s
        .run(&[
            "images",
            "list",
            "--dataset",
            "pets",
            "--limit",
            "2",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(
        (
            v["count"].as_u64(),
            v["total"].as_u64(),
            v["has_more"].as_bool()
        ),
        (Some(2), Some(5), Some(true))
    );
    let out = s.run(&[
        "images",
        "list",
        "--dataset",
        "pets",
        "--folder",
        "/dogs",
        "--ids",
    ]);
    assert_eq!(out.ok().stdout.trim(), ids["d.png"]);
    let named = |name: &str| {
        let args = ["images", "list", "-d", "pets", "--filename", name, "--json"];
        s.run(&args).ok().json()
    };
    let v = named("c.png");
    assert_eq!(
        (v["total"].as_u64(), v["count"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(v["images"][0]["id"], ids["c.png"].as_str());
    assert_eq!(named("nope.png")["total"], 0);
    let out = s.run(&["images", "list", "--dataset", "pets"]);
    assert!(out.ok().stdout.starts_with("ID"), "{}", out.stdout);
    assert_eq!(out.stdout.lines().count(), 6);
    let out = s.run(&["images", "list", "--dataset", "nope"]);
    assert!(out.error_line().contains("404"), "{}", out.stderr);
    let out = s.run(&["images", "list", "--dataset", "pets", "--status", "bogus"]);
    assert_eq!(out.code, 2);

    // get
    let v = s
        .run(&["images", "get", &ids["a.png"], "--json"])
        .ok()
        .json();
    assert_eq!(v["image"]["filename"], "a.png");
    assert_eq!(v["image"]["width"], 12);
    let out = s.run(&["images", "get", &ids["a.png"]]);
    assert!(out.ok().stdout.contains("12x9"), "{}", out.stdout);
    let out = s.run(&["images", "get", "00000000-0000-0000-0000-000000000000"]);
    assert!(out.error_line().contains("404"), "{}", out.stderr);

    // download: into a directory (by name) and to a file.
    let dir = s.path("dl");
    std::fs::create_dir_all(&dir).unwrap();
    let v = s
        .run(&[
            "images",
            "download",
            &ids["b.jpg"],
            dir.to_str().unwrap(),
            "--json",
        ])
        .ok()
        .json();
    let original = std::fs::read(s.path("tree-pets/cats/b.jpg")).unwrap();
    assert_eq!(v["bytes"], original.len());
    assert_eq!(std::fs::read(dir.join("b.jpg")).unwrap(), original);
    let file = dir.join("renamed.jpg");
    s.run(&["images", "download", &ids["b.jpg"], file.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(file).unwrap(), original);

    // delete: archive by argument, remove for good from stdin.
    let out = s.run(&["images", "delete", &ids["a.png"]]);
    assert!(
        out.ok().stdout.contains("1 of 1 images archived"),
        "{}",
        out.stdout
    );
    let v = s
        .run_in(
            &["images", "delete", "--permanent", "--json"],
            &format!("{}\n\n{}\n", ids["b.jpg"], ids["c.png"]),
        )
        .ok()
        .json();
    assert_eq!(v["succeeded"].as_array().unwrap().len(), 2);
    let v = s
        .run(&["images", "list", "--dataset", "pets", "--json"])
        .ok()
        .json();
    assert_eq!(v["total"], 2);
    let v = s
        .run(&[
            "images",
            "list",
            "--dataset",
            "pets",
            "--include-archived",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["total"], 3);
    let out = s.run(&[
        "images",
        "delete",
        &ids["d.png"],
        "00000000-0000-0000-0000-000000000000",
    ]);
    assert!(
        out.error_line().contains("1 of 2 images failed"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("404"), "{}", out.stderr);
    s.app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotations_commands() {
    let s = start().await;
    let ids = upload_tree(&s, "pets");
    let id = &ids["a.png"];

    // From a file: a bare list.
    let file = s.path("anns.json");
    std::fs::write(
        &file,
        r#"[{"type":"bbox","id":"b1","name":"cat","bounding_box":{"x":1,"y":1,"w":5,"h":4},"confidence":0.9},
            {"type":"keypoint","id":"k1","name":"eye","keypoint":{"x":2,"y":3}}]"#,
    )
    .unwrap();
    let out = s.run(&["annotations", "set", id, file.to_str().unwrap()]);
    assert!(
        out.ok().stdout.contains("Saved 2 annotations"),
        "{}",
        out.stdout
    );
    let got = s.run(&["annotations", "get", id, "--json"]).ok().json();
    assert_eq!(got["annotations"].as_array().unwrap().len(), 2);
    assert_eq!(got["annotations"][0]["bounding_box"]["w"], 5.0);
    let out = s.run(&["annotations", "get", id]);
    assert!(
        out.ok().stdout.contains("bbox") && out.stdout.contains("x=1 y=1 w=5 h=4"),
        "{}",
        out.stdout
    );

    // From stdin: an object with an "annotations" list (what `get --json` prints).
    let doc = r#"{"annotations":[{"type":"polygon","id":"p1","name":"cat","polygon":{"paths":[[{"x":0,"y":0},{"x":4,"y":0},{"x":4,"y":4}]]}}]}"#;
    let v = s
        .run_in(&["annotations", "set", id, "--json"], doc)
        .ok()
        .json();
    assert_eq!(v["saved"]["new_count"], 1);
    assert_eq!(v["saved"]["previous_count"], 2);
    // `-` is standard input too, and `get --json` round-trips.
    let again = s
        .run(&["annotations", "get", id, "--json"])
        .ok()
        .stdout
        .clone();
    s.run_in(&["annotations", "set", id, "-"], &again).ok();
    let got = s.run(&["annotations", "get", id, "--json"]).ok().json();
    assert_eq!(got["annotations"][0]["id"], "p1");

    // Bad input never reaches the server.
    let out = s.run_in(&["annotations", "set", id], "{not json");
    assert_eq!(out.code, 2);
    assert!(
        out.error_line().contains("standard input: not JSON"),
        "{}",
        out.stderr
    );
    let out = s.run_in(
        &["annotations", "set", id],
        r#"[{"type":"circle","id":"c","name":"x"}]"#,
    );
    assert_eq!(out.code, 2);
    // Geometry the server would refuse is refused before sending, every mistake at once.
    let out = s.run_in(
        &["annotations", "set", id],
        r#"[{"type":"bbox","id":"b","name":"x","bounding_box":{"x":1,"y":1,"w":-5,"h":4}},
            {"type":"keypoint","id":"b","name":"x"}]"#,
    );
    assert_eq!(out.code, 2);
    let line = out.error_line();
    assert!(
        line.contains("annotation 0: bounding_box.w: ") && line.contains("annotation 1: "),
        "{}",
        out.stderr
    );
    let got = s.run(&["annotations", "get", id, "--json"]).ok().json();
    assert_eq!(
        got["annotations"][0]["id"], "p1",
        "a refused list changes nothing"
    );
    // With --json the errors come field by field, shaped like the server's.
    let out = s.run_in(
        &["annotations", "set", id, "--json"],
        r#"[{"type":"bbox","id":"b","name":"x","bbox":[1,1,0,4]}]"#,
    );
    assert_eq!(out.code, 2);
    let v = out.json();
    assert_eq!(
        v["error"]["field_errors"][0]["loc"], "body.annotations.0.bbox.2",
        "{v}"
    );
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("annotation 0"));

    // The README's shorthand is taken, and an annotation without an id gets one.
    let out = s.run_in(
        &["annotations", "set", id],
        r#"[{"id":"s1","name":"person","type":"bbox","bbox":[100,200,50,80]},
            {"name":"road","type":"polyline","polyline":[[0,100],[50,100],[100,100]]}]"#,
    );
    assert!(
        out.ok().stdout.contains("Saved 2 annotations"),
        "{}",
        out.stdout
    );
    let got = s.run(&["annotations", "get", id, "--json"]).ok().json();
    assert_eq!(
        got["annotations"][0]["bounding_box"],
        serde_json::json!({"x": 100.0, "y": 200.0, "w": 50.0, "h": 80.0})
    );
    let made = got["annotations"][1]["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(made).is_ok(), "{made}");

    // What only the server can check (here the dataset's classes) comes back with its status.
    s.run(&["datasets", "create", "strict", "--classes", "dog"])
        .ok();
    let strict = upload_tree(&s, "strict");
    let out = s.run_in(
        &["annotations", "set", &strict["a.png"]],
        r#"[{"type":"bbox","id":"b","name":"cat","bounding_box":{"x":1,"y":1,"w":5,"h":4}}]"#,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.error_line().contains("HTTP 422"), "{}", out.stderr);

    let v = s.run(&["annotations", "delete", id, "--json"]).ok().json();
    assert_eq!(v["deleted"]["deleted_count"], 2);
    let out = s.run(&["annotations", "get", id]);
    assert!(out.ok().stdout.contains("no annotations"), "{}", out.stdout);
    s.app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_commands() {
    let s = start().await;
    let ids = upload_tree(&s, "pets");
    let folder_of = |name: &str| -> String {
        let v = s.run(&["images", "get", &ids[name], "--json"]).ok().json();
        v["image"]["virtual_folder_path"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // move: ids from the arguments.
    let v = s
        .run(&[
            "batch",
            "move",
            "--dataset",
            "pets",
            "--to",
            "/moved",
            &ids["a.png"],
            &ids["b.jpg"],
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["operation"], "moved");
    assert_eq!(v["succeeded"].as_array().unwrap().len(), 2);
    assert_eq!(folder_of("a.png"), "/moved");

    // copy: ids from stdin.
    let out = s.run_in(
        &["batch", "copy", "--dataset", "pets", "--to", "/copies"],
        &format!("{}\n{}\n", ids["d.png"], ids["e.jpg"]),
    );
    assert!(
        out.ok().stdout.contains("2 of 2 images copied; 0 failed"),
        "{}",
        out.stdout
    );
    let v = s
        .run(&[
            "images",
            "list",
            "--dataset",
            "pets",
            "--folder",
            "/copies",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["count"], 2);

    // update: ids from stdin, piped from `images list --ids`.
    let listed = s
        .run(&[
            "images",
            "list",
            "--dataset",
            "pets",
            "--folder",
            "/moved",
            "--ids",
        ])
        .ok()
        .stdout
        .clone();
    let v = s
        .run_in(
            &[
                "batch",
                "update",
                "--dataset",
                "pets",
                "--status",
                "complete",
                "--json",
            ],
            &listed,
        )
        .ok()
        .json();
    assert_eq!(v["succeeded"].as_array().unwrap().len(), 2);
    let v = s
        .run(&[
            "images",
            "list",
            "--dataset",
            "pets",
            "--status",
            "complete",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["count"], 2);
    let out = s.run(&["batch", "update", "--dataset", "pets", &ids["a.png"]]);
    assert_eq!(out.code, 2, "nothing to update is a usage error");

    // delete, with one unknown id: partial failure, listed, non-zero.
    let unknown = "00000000-0000-0000-0000-000000000000";
    let out = s.run(&[
        "batch",
        "delete",
        "--dataset",
        "pets",
        &ids["c.png"],
        unknown,
        "--json",
    ]);
    assert_ne!(out.code, 0);
    let v = out.json();
    assert_eq!(v["succeeded"], serde_json::json!([ids["c.png"]]));
    assert_eq!(v["failures"][0]["image_id"], unknown);
    assert!(
        out.error_line().contains("1 of 2 images failed"),
        "{}",
        out.stderr
    );
    let v = s
        .run(&["images", "list", "--dataset", "pets", "--json"])
        .ok()
        .json();
    assert_eq!(v["total"], 6, "5 uploaded + 2 copies - 1 archived");

    // No ids at all, and an unknown dataset.
    let out = s.run_in(&["batch", "delete", "--dataset", "pets"], "\n");
    assert_eq!(out.code, 2);
    let out = s.run(&[
        "batch",
        "move",
        "--dataset",
        "nope",
        "--to",
        "/x",
        &ids["a.png"],
    ]);
    assert!(out.error_line().contains("404"), "{}", out.stderr);
    s.app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_one_line_with_status_and_detail() {
    let s = start().await;
    let out = s.run(&["datasets", "get", "unknown-ds"]);
    let line = out.error_line();
    assert!(
        line.contains("404") && line.contains("unknown-ds"),
        "{line}"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);

    // --json: the error as a document on stdout too.
    let out = s.run(&["datasets", "get", "unknown-ds", "--json"]);
    assert_ne!(out.code, 0);
    let v = out.json();
    assert_eq!(v["error"]["status"], 404);
    assert!(v["error"]["detail"]
        .as_str()
        .unwrap()
        .contains("unknown-ds"));

    // A bad key.
    let mut c = s.cmd();
    c.env("PICTOGRAPH_API_KEY", "pk_live_not_a_real_key");
    let out = exec(c, &["datasets", "list"], None);
    assert!(out.error_line().contains("401"), "{}", out.stderr);
    // The flag beats the environment.
    let out = s.run(&["datasets", "list", "--api-key", "pk_live_wrong"]);
    assert!(out.error_line().contains("401"), "{}", out.stderr);

    // No key at all is a usage error; so is a bad URL.
    let out = exec(bare(&s.path("empty")), &["datasets", "list"], None);
    assert_eq!(out.code, 2);
    assert!(
        out.error_line().contains("pictograph login"),
        "{}",
        out.stderr
    );
    let out = s.run(&["datasets", "list", "--base-url", "ftp://x"]);
    assert_eq!(out.code, 2);

    // A failed file whose name holds a newline is still listed on one line.
    let folder = s.path("odd");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("line\nbreak.png"), image_bytes(1, true)).unwrap();
    let out = s.run(&["upload", folder.to_str().unwrap(), "--dataset", "odd"]);
    assert!(
        out.error_line().contains("1 of 1 files failed"),
        "{}",
        out.stderr
    );
    let listed: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("failed: "))
        .collect();
    assert_eq!(listed.len(), 1, "{}", out.stderr);
    assert!(
        listed[0].starts_with("failed: line\\nbreak.png: "),
        "{}",
        listed[0]
    );
    assert!(listed[0].contains("control characters"), "{}", listed[0]);

    // Nobody listening (no retries, to keep the test quick).
    let mut c = s.cmd();
    c.env("PICTOGRAPH_MAX_RETRIES", "0");
    let out = exec(
        c,
        &["datasets", "list", "--base-url", "http://127.0.0.1:9"],
        None,
    );
    assert!(
        out.error_line().contains("cannot reach the server"),
        "{}",
        out.stderr
    );
    s.app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_saves_a_private_file_used_without_env() {
    let s = start().await;
    let config = s.path("config");
    let file = config.join("credentials.toml");

    // A bad key is refused before anything is saved.
    let out = exec(
        bare(&config),
        &["login", "--api-key", "pk_live_bad", "--base-url", &s.url],
        None,
    );
    let line = out.error_line();
    assert!(
        line.contains("401")
            && line.contains("the key was not saved")
            && !line.contains("run `pictograph login`")
            && !line.contains("or `pictograph login`"),
        "{}",
        out.stderr
    );
    assert!(!file.exists());

    // The key from standard input, verified, saved.
    let out = exec(
        bare(&config),
        &["login", "--base-url", &s.url],
        Some(&format!("{}\n", s.key)),
    );
    assert!(out.ok().stdout.contains("key verified"), "{}", out.stdout);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(&s.key) && text.contains(&s.url));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }

    // Commands without any env now use it.
    s.run(&["datasets", "create", "saved"]).ok();
    let v = exec(bare(&config), &["datasets", "list", "--json"], None)
        .ok()
        .json();
    assert_eq!(v["datasets"][0]["name"], "saved");
    // The environment beats the file.
    let mut c = bare(&config);
    c.env("PICTOGRAPH_API_KEY", "pk_live_env_wins");
    assert!(exec(c, &["datasets", "list"], None)
        .error_line()
        .contains("401"));

    // --no-verify saves whatever it is given; --json reports it.
    let v = exec(
        bare(&config),
        &[
            "login",
            "--api-key",
            "pk_live_unchecked",
            "--base-url",
            &s.url,
            "--no-verify",
            "--json",
        ],
        None,
    )
    .ok()
    .json();
    assert_eq!(v["verified"], false);
    assert_eq!(v["replaced"], true);
    let out = exec(bare(&config), &["datasets", "list"], None);
    assert!(out.error_line().contains("401"), "{}", out.stderr);

    // logout removes the file.
    let out = exec(bare(&config), &["logout"], None);
    assert!(out.ok().stdout.starts_with("Removed"), "{}", out.stdout);
    assert!(!file.exists());
    let out = exec(bare(&config), &["datasets", "list"], None);
    assert_eq!(out.code, 2);
    s.app.stop().await.unwrap();
}

/// `images list` over more than one page (the CLI asks for 1,000 at a time): every image once,
/// in listing order, whichever way it is printed and wherever the window starts; `--ids` goes
/// out page by page and stops quietly when its reader does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_list_walks_many_pages() {
    let s = start().await;
    upload_tree(&s, "many");
    // `images list --dataset many` and then `extra`.
    let list_args = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut args = vec!["images", "list", "--dataset", "many"];
        args.extend(extra);
        args
    };
    const EVERY_ID: [&str; 3] = ["--limit", "100000", "--ids"];
    let all_ids = |s: &Server| -> Vec<String> {
        s.run(&list_args(&EVERY_ID))
            .ok()
            .stdout
            .lines()
            .map(str::to_string)
            .collect()
    };
    // Copying every image into the root doubles the dataset: 5 × 2⁹ = 2,560 images.
    for _ in 0..9 {
        let ids = all_ids(&s).join("\n");
        s.run_in(&["batch", "copy", "--dataset", "many", "--to", "/"], &ids)
            .ok();
    }
    let ids = all_ids(&s);
    assert_eq!(ids.len(), 2560);
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), 2560, "an image listed twice");

    let v = s
        .run(&list_args(&["--limit", "100000", "--json"]))
        .ok()
        .json();
    let listed: Vec<&str> = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ids, "--json and --ids list the same order");
    assert_eq!(
        (
            v["count"].as_u64(),
            v["total"].as_u64(),
            v["has_more"].as_bool()
        ),
        (Some(2560), Some(2560), Some(false))
    );

    let window = s
        .run(&list_args(&["--offset", "999", "--limit", "1502", "--ids"]))
        .ok()
        .stdout
        .lines()
        .map(str::to_string)
        .collect::<Vec<_>>();
    assert_eq!(window, ids[999..2501]);
    let v = s
        .run(&list_args(&["--limit", "1001", "--json"]))
        .ok()
        .json();
    assert_eq!(
        (v["count"].as_u64(), v["has_more"].as_bool()),
        (Some(1001), Some(true))
    );

    // A reader that takes one line and goes: no error, exit status 0.
    let mut child = s
        .cmd()
        .args(list_args(&EVERY_ID))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    {
        use std::io::BufRead;
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        reader.read_line(&mut first).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(first.trim(), ids[0]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
