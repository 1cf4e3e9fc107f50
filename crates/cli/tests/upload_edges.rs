//! `pictograph upload` at the edges, against a real server started in-process: names that
//! collide within one run, symbolic links, folders that cannot be read, paths that are not
//! folders, and what error messages show.

mod harness;

use harness::*;
use std::path::{Path, PathBuf};
use std::process::Command;

impl Server {
    /// The images of `dataset` as `folder|filename|size`, sorted.
    fn placed(&self, dataset: &str) -> Vec<String> {
        let out = self.run(&["images", "list", "--dataset", dataset, "--json"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let mut v: Vec<String> = out.json()["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                format!(
                    "{}|{}|{}",
                    i["virtual_folder_path"].as_str().unwrap(),
                    i["filename"].as_str().unwrap(),
                    i["file_size"]
                )
            })
            .collect();
        v.sort();
        v
    }
}

/// Writes a small JPEG or PNG (by extension) whose pixels depend on `seed`.
fn write_image(path: &Path, seed: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let w = 8 + seed as u32 % 5;
    let img = image::RgbImage::from_fn(w, 9, |x, y| {
        image::Rgb([seed, (x * 20) as u8, (y * 25) as u8])
    });
    img.save(path).unwrap();
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_names_in_one_run_fail_naming_the_file_that_took_the_name() {
    let s = start().await;
    let nest = s.path("nest");
    write_image(&nest.join("cats/day/1.jpg"), 1);
    write_image(&nest.join("cats/night/1.jpg"), 2);
    let folder = nest.to_str().unwrap();

    for _ in 0..2 {
        let out = s.run(&["upload", folder, "-d", "nest"]);
        assert!(
            out.stdout.contains(" 1 failed of 2 image files"),
            "{}",
            out.stdout
        );
        assert!(
            out.stderr.contains(
                "failed: cats/night/1.jpg: another file of this folder, cats/day/1.jpg, is \
                 uploaded as /cats/1.jpg (nested folders go to their first-level folder)"
            ),
            "{}",
            out.stderr
        );
        let line = out.error_line();
        assert!(
            line.contains("1 of 2 files failed") && line.contains("re-running will not help"),
            "{line}"
        );
    }
    assert_eq!(
        s.placed("nest"),
        [format!(
            "/cats|1.jpg|{}",
            size(&nest.join("cats/day/1.jpg"))
        )]
    );

    let flat = s.path("flat");
    write_image(&flat.join("a/1.jpg"), 3);
    write_image(&flat.join("b/1.jpg"), 4);
    let out = s.run(&[
        "upload",
        flat.to_str().unwrap(),
        "-d",
        "flat",
        "--flat",
        "--json",
    ]);
    assert_eq!(out.code, 1);
    let v = out.json();
    assert_eq!(
        (v["uploaded"].as_u64(), v["failed"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(v["success"], false);
    assert_eq!(
        v["failures"],
        serde_json::json!([{
            "path": "b/1.jpg",
            "reason": "another file of this folder, a/1.jpg, is uploaded as /1.jpg (every file \
                       goes to /)",
            "retryable": false,
        }])
    );
    s.app.stop().await.unwrap();
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symbolic_links_are_followed_loops_noted_and_broken_links_fail() {
    use std::os::unix::fs::symlink;
    let s = start().await;
    write_image(&s.path("imgs/class_0/a.png"), 1);
    write_image(&s.path("imgs/class_0/b.png"), 2);
    let linked = s.path("linked");
    write_image(&linked.join("top.png"), 3);
    symlink("../imgs/class_0", linked.join("cats")).unwrap();
    symlink(".", linked.join("again")).unwrap();
    let out = s.run(&["upload", linked.to_str().unwrap(), "-d", "linked"]);
    assert_eq!(out.code, 0, "a loop is no failure: {}", out.stderr);
    assert!(
        out.stdout
            .contains("3 uploaded, 0 skipped (already there), 0 failed of 3 image files"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("note: skipped again: it links back to a folder above it (a loop)\n"),
        "{}",
        out.stdout
    );
    let placed: Vec<String> = s
        .placed("linked")
        .into_iter()
        .map(|p| p.rsplit_once('|').unwrap().0.to_string())
        .collect();
    assert_eq!(placed, ["/cats|a.png", "/cats|b.png", "/|top.png"]);

    let broken = s.path("broken");
    write_image(&broken.join("ok.png"), 4);
    symlink("missing.png", broken.join("gone.png")).unwrap();
    let out = s.run(&["upload", broken.to_str().unwrap(), "-d", "broken", "--json"]);
    assert_eq!(out.code, 1);
    let v = out.json();
    assert_eq!(
        (v["files"].as_u64(), v["uploaded"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        v["failures"],
        serde_json::json!([{
            "path": "gone.png",
            "reason": "broken symbolic link: its target missing.png does not exist",
            "retryable": false,
        }])
    );
    assert_eq!(v["notes"], serde_json::json!([]));

    let help = s.run(&["upload", "--help"]);
    assert!(
        help.stdout
            .contains("Symbolic links to files and folders are followed")
            && help.stdout.contains("(a loop) is skipped with a note"),
        "{}",
        help.stdout
    );
    s.app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_sub_folder_is_named_and_the_rest_uploads() {
    let s = start().await;
    let root = s.path("perm");
    write_image(&root.join("top.png"), 1);
    write_image(&root.join("cats/a.png"), 2);
    // Nested until the path is longer than the system allows: reading the deepest folder
    // fails even for root.
    let seg = "d".repeat(200);
    let half = [seg.as_str(); 12].join("/");
    let made = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "mkdir -p locked/{half} && cd locked/{half} && mkdir -p {half}"
        ))
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(made.success());
    let mut deepest = PathBuf::from("locked");
    while root.join(&deepest).as_os_str().len() < 4096 {
        deepest.push(&seg);
    }

    let out = s.run(&["upload", root.to_str().unwrap(), "-d", "perm"]);
    assert!(
        out.stdout
            .contains("2 uploaded, 0 skipped (already there), 0 failed of 2 image files"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("1 folder(s) could not be read; their images were not uploaded"),
        "{}",
        out.stdout
    );
    let failed = format!("failed: {}: cannot read this folder: ", deepest.display());
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with(&failed) && l.contains("too long")),
        "{}",
        out.stderr
    );
    let line = out.error_line();
    assert!(
        line.starts_with("error: 1 folder(s) could not be read; ")
            && line.contains("re-running will not help"),
        "{line}"
    );
    assert_eq!(s.placed("perm").len(), 2);

    let out = s.run(&["upload", root.to_str().unwrap(), "-d", "perm", "--json"]);
    assert_eq!(out.code, 1);
    let v = out.json();
    assert_eq!(
        (
            v["skipped"].as_u64(),
            v["failed"].as_u64(),
            v["unreadable_folders"].as_u64()
        ),
        (Some(2), Some(0), Some(1))
    );
    assert_eq!(v["failures"][0]["path"], deepest.to_str().unwrap());
    s.app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_folder_and_a_file_are_told_apart() {
    let s = start().await;
    let missing = s.path("nope");
    let out = s.run(&["upload", missing.to_str().unwrap(), "-d", "x"]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.error_line(),
        format!("error: {} does not exist", missing.display())
    );
    let file = s.path("one.png");
    write_image(&file, 1);
    let out = s.run(&["upload", file.to_str().unwrap(), "-d", "x"]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.error_line(),
        format!("error: {} is not a folder", file.display())
    );
    s.app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sends_never_show_the_signed_query() {
    // Upload URLs point where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let s = start_with(|c| c.public_url = Some(format!("http://127.0.0.1:{port}"))).await;
    write_image(&s.path("net/a.png"), 1);
    let out = s.run_with(
        &["upload", s.path("net").to_str().unwrap(), "-d", "net"],
        &[("PICTOGRAPH_MAX_RETRIES", "0")],
    );
    let failed = out
        .stderr
        .lines()
        .find(|l| l.starts_with("failed: a.png: transport error: "))
        .unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(failed.contains(&format!("127.0.0.1:{port}/")), "{failed}");
    for secret in ["?", "sig", "expires"] {
        assert!(!failed.contains(secret), "{failed}");
    }
    assert!(
        out.error_line()
            .contains("re-run the same command to retry them"),
        "{}",
        out.stderr
    );
    s.app.stop().await.unwrap();
}

/// `human_bytes` of the CLI: `652 B`, `2.7 KiB`.
fn human(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB"];
    let (mut v, mut unit) = (n as f64, 0);
    while v >= 1024.0 && unit + 1 < units.len() {
        v /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} B"),
        _ => format!("{v:.1} {}", units[unit]),
    }
}

/// The plain progress lines of a run (stderr is not a terminal).
fn progress_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("upload: ") && l.contains(" files, "))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_reaches_every_file_and_counts_the_bytes_of_failed_files() {
    let s = start().await;
    let root = s.path("mixed");
    write_image(&root.join("cats/day/1.png"), 1);
    write_image(&root.join("cats/night/1.png"), 2);
    write_image(&root.join("dogs/d.png"), 3);
    write_image(&root.join("top.png"), 4);
    let total: u64 = [
        "cats/day/1.png",
        "cats/night/1.png",
        "dogs/d.png",
        "top.png",
    ]
    .iter()
    .map(|p| size(&root.join(p)))
    .sum();
    // The second file named /cats/1.png fails; the three others go.
    let failed = size(&root.join("cats/night/1.png"));
    let sent = total - failed;
    let folder = root.to_str().unwrap();

    let out = s.run(&["upload", folder, "-d", "mixed"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let lines = progress_lines(&out.stderr);
    // The byte total is that of every file, failed ones included, on every line: it never
    // shrinks when a file fails.
    for line in &lines {
        assert!(
            line.contains(&format!("/{}, ", human(total))),
            "{line}\n{}",
            out.stderr
        );
    }
    // The last line says every file is done, the failure with its bytes, and the bytes sent:
    // those and the failed ones make the total.
    let last = *lines.last().unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(
        last.starts_with(&format!(
            "upload: 4/4 files, 1 failed ({}), {}/{}, ",
            human(failed),
            human(sent),
            human(total)
        )) && last.ends_with("/s, done"),
        "{}",
        out.stderr
    );
    // The summary splits the bytes the same way.
    assert!(
        out.stdout.contains(&format!(
            "3 uploaded, 0 skipped (already there), 1 failed of 4 image files ({}: {} uploaded, \
             {} failed) in ",
            human(total),
            human(sent),
            human(failed)
        )),
        "{}",
        out.stdout
    );

    // A re-run skips the three files sent: they leave the total, the failed one stays.
    let out = s.run(&["upload", folder, "-d", "mixed"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let last = *progress_lines(&out.stderr).last().unwrap();
    assert!(
        last.starts_with(&format!(
            "upload: 4/4 files, 1 failed ({}), 3 skipped, 0 B/{}, 0 B/s, done",
            human(failed),
            human(failed)
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains(&format!(
            "0 uploaded, 3 skipped (already there), 1 failed of 4 image files ({}: 0 B \
             uploaded, {} already there, {} failed) in ",
            human(total),
            human(sent),
            human(failed)
        )),
        "{}",
        out.stdout
    );

    // --json has the same split, and no progress lines.
    let out = s.run(&["upload", folder, "-d", "mixed", "--json"]);
    assert_eq!(out.code, 1);
    let v = out.json();
    assert_eq!(
        (
            v["bytes"].as_u64(),
            v["bytes_uploaded"].as_u64(),
            v["bytes_skipped"].as_u64(),
            v["bytes_failed"].as_u64()
        ),
        (Some(total), Some(0), Some(sent), Some(failed))
    );
    assert!(progress_lines(&out.stderr).is_empty(), "{}", out.stderr);
    s.app.stop().await.unwrap();
}
