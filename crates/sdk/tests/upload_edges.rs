//! Folder uploads at the edges: names that collide within one run, files that cannot be read
//! when they are sent, folders that cannot be read, symbolic links, and what error messages
//! show.

mod common;

use pictograph::workflows::{
    scan_folder, upload_dataset_from_folder, upload_scanned_folder, FileOutcome,
    FolderUploadOptions, UploadReport,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every image of `dataset` as `folder|filename|size`, sorted.
async fn placed(c: &pictograph::Client, dataset: &str) -> Vec<String> {
    let mut v: Vec<String> = common::images_of(c, dataset)
        .await
        .iter()
        .map(|i| format!("{}|{}|{}", i.folder(), i.filename, i.file_size))
        .collect();
    v.sort();
    v
}

/// The failures of `r` as `(path relative to root, reason, retryable)`, sorted by path.
fn failures(r: &UploadReport, root: &Path) -> Vec<(String, String, bool)> {
    let mut v: Vec<_> = r
        .failures
        .iter()
        .map(|f| {
            let rel = f.path.strip_prefix(root).unwrap_or(&f.path);
            (rel.display().to_string(), f.reason.clone(), f.retryable)
        })
        .collect();
    v.sort();
    v
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

#[tokio::test]
async fn names_taken_twice_in_one_run_upload_the_first_and_fail_the_others() {
    let s = common::start().await;
    let c = &s.client;
    let tmp = common::tempdir();
    let root = tmp.path().join("nest");
    // 40 names twice: the pairs fall into different batches of the run.
    for i in 0..40u8 {
        common::write_image(&root.join(format!("cats/day/{i:02}.jpg")), 4, 4, i);
        common::write_image(&root.join(format!("cats/night/{i:02}.jpg")), 6, 5, i);
    }
    common::write_image(&root.join("cats/2.png"), 3, 3, 1);

    let told = Arc::new(Mutex::new(Vec::new()));
    let into = told.clone();
    let options = FolderUploadOptions::default().on_file(move |f, size, how| {
        into.lock()
            .unwrap()
            .push((f.to_string_lossy().into_owned(), size, how))
    });
    let r = upload_dataset_from_folder(c, "nest", &root, options.clone())
        .await
        .unwrap();
    assert_eq!(
        (r.images_attempted, r.images_uploaded, r.images_skipped),
        (81, 41, 0),
        "{r:?}"
    );
    let failed = failures(&r, &root);
    assert_eq!(failed.len(), 40);
    let (path, reason, retryable) = &failed[0];
    assert_eq!(path, "cats/night/00.jpg");
    assert_eq!(
        reason,
        "another file of this folder, cats/day/00.jpg, is uploaded as /cats/00.jpg \
         (nested folders go to their first-level folder)"
    );
    assert!(!retryable, "the name stays taken");
    assert!(!r.success());
    // The one uploaded is the first in path order: day's.
    let on_server = placed(c, "nest").await;
    assert_eq!(on_server.len(), 41);
    assert!(
        on_server.contains(&format!(
            "/cats|00.jpg|{}",
            size(&root.join("cats/day/00.jpg"))
        )),
        "{on_server:?}"
    );
    let night = told
        .lock()
        .unwrap()
        .iter()
        .filter(|(f, _, how)| f.starts_with("cats/night/") && *how == FileOutcome::Failed)
        .count();
    assert_eq!(night, 40, "on_file tells each one failed");
    let sizes: Vec<(String, u64)> = told
        .lock()
        .unwrap()
        .iter()
        .filter(|(f, _, _)| f.ends_with("/00.jpg"))
        .map(|(f, size, _)| (f.clone(), *size))
        .collect();
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    for (f, told) in sizes {
        assert_eq!(told, size(&root.join(&f)), "on_file tells {f}'s size");
    }

    // A re-run skips what the first run uploaded and fails the same others again: a name
    // taken by this run is never "already there".
    let again = upload_dataset_from_folder(c, "nest", &root, options)
        .await
        .unwrap();
    assert_eq!(
        (again.images_uploaded, again.images_skipped),
        (0, 41),
        "{again:?}"
    );
    assert_eq!(failures(&again, &root), failed);

    // Flat: any two files of one name collide.
    let flat = tmp.path().join("flat");
    common::write_image(&flat.join("a/1.png"), 3, 3, 1);
    common::write_image(&flat.join("b/1.png"), 5, 5, 2);
    common::write_image(&flat.join("b/2.png"), 5, 5, 3);
    let r = upload_dataset_from_folder(
        c,
        "flat",
        &flat,
        FolderUploadOptions::default().organize_by_class(false),
    )
    .await
    .unwrap();
    assert_eq!((r.images_uploaded, r.images_skipped), (2, 0));
    assert_eq!(
        failures(&r, &flat),
        [(
            "b/1.png".to_string(),
            "another file of this folder, a/1.png, is uploaded as /1.png (every file goes to /)"
                .to_string(),
            false
        )]
    );
    assert!(placed(c, "flat")
        .await
        .contains(&format!("/|1.png|{}", size(&flat.join("a/1.png")))));
}

#[tokio::test]
async fn files_unreadable_when_sent_fail_at_once_naming_their_path() {
    let s = common::start().await;
    // Retries that take seconds: a failure retried would show in the time taken.
    let c = pictograph::Client::builder(s.key.clone())
        .base_url(s.base_url())
        .retry_backoff(Duration::from_secs(2), Duration::from_secs(4))
        .max_retries(3)
        .build()
        .unwrap();
    let tmp = common::tempdir();
    let root = tmp.path().join("changing");
    common::write_image(&root.join("ok.png"), 3, 3, 1);
    common::write_image(&root.join("deleted.png"), 3, 3, 2);
    common::write_image(&root.join("now-a-folder.png"), 3, 3, 3);
    common::write_image(&root.join("grown.png"), 3, 3, 4);
    // Larger than what is read in one piece: streamed.
    std::fs::write(root.join("big.png"), vec![0u8; 5 << 20]).unwrap();

    let scan = scan_folder(&root).unwrap();
    assert_eq!(scan.files.len(), 5);
    let listed = size(&root.join("grown.png"));
    std::fs::remove_file(root.join("deleted.png")).unwrap();
    std::fs::remove_file(root.join("now-a-folder.png")).unwrap();
    std::fs::create_dir(root.join("now-a-folder.png")).unwrap();
    std::fs::write(root.join("grown.png"), vec![1u8; 100]).unwrap();
    std::fs::write(root.join("big.png"), vec![0u8; 10]).unwrap();

    let started = Instant::now();
    let r = upload_scanned_folder(&c, "changing", scan, FolderUploadOptions::default())
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "not retried: {:?}",
        started.elapsed()
    );
    assert_eq!(r.images_uploaded, 1, "{r:?}");
    let at = |name: &str| root.join(name).display().to_string();
    assert_eq!(
        failures(&r, &root),
        [
            (
                "big.png".to_string(),
                format!(
                    "I/O error on {}: its size changed from {} to 10 bytes since it was listed",
                    at("big.png"),
                    5 << 20
                ),
                false
            ),
            (
                "deleted.png".to_string(),
                format!("file not found: {}", at("deleted.png")),
                false
            ),
            (
                "grown.png".to_string(),
                format!(
                    "I/O error on {}: its size changed from {listed} to 100 bytes since it \
                     was listed",
                    at("grown.png")
                ),
                false
            ),
            (
                "now-a-folder.png".to_string(),
                format!(
                    "I/O error on {}: no longer a regular file",
                    at("now-a-folder.png")
                ),
                false
            ),
        ]
    );
}

#[tokio::test]
async fn transport_errors_never_show_a_signed_query() {
    // Upload URLs point where nothing listens: every PUT fails to connect.
    let (s, port) = common::start_with_unreachable_uploads().await;
    let tmp = common::tempdir();
    let root = tmp.path().join("unreachable");
    common::write_image(&root.join("a.png"), 3, 3, 1);
    let r = upload_dataset_from_folder(&s.client, "unreachable", &root, Default::default())
        .await
        .unwrap();
    let [f] = &r.failures[..] else {
        panic!("{r:?}")
    };
    assert!(f.retryable, "the network may come back");
    assert!(
        f.reason.starts_with("transport error: ")
            && f.reason.contains(&format!("127.0.0.1:{port}/")),
        "{}",
        f.reason
    );
    for secret in ["?", "sig", "expires"] {
        assert!(!f.reason.contains(secret), "{}", f.reason);
    }
}

#[cfg(unix)]
#[tokio::test]
async fn symbolic_links_are_followed_and_loops_noted() {
    use std::os::unix::fs::symlink;
    let s = common::start().await;
    let c = &s.client;
    let tmp = common::tempdir();
    let imgs = tmp.path().join("imgs");
    common::write_image(&imgs.join("class_0/a.png"), 3, 3, 1);
    common::write_image(&imgs.join("class_0/b.png"), 4, 3, 2);
    common::write_image(&imgs.join("single.png"), 5, 3, 3);
    let root = tmp.path().join("linked");
    common::write_image(&root.join("top.png"), 3, 3, 4);
    symlink("../imgs/class_0", root.join("cats")).unwrap();
    // The same folder under a second name is walked again: it is not a loop.
    symlink(imgs.join("class_0"), root.join("kittens")).unwrap();
    symlink("../imgs/single.png", root.join("one.png")).unwrap();
    symlink(".", root.join("again")).unwrap();
    symlink("../../linked", imgs.join("class_0/up")).unwrap();

    let r = upload_dataset_from_folder(c, "linked", &root, Default::default())
        .await
        .unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert!(r.success());
    let mut notes = r.notes.clone();
    notes.sort();
    assert_eq!(
        notes,
        [
            "skipped again: it links back to a folder above it (a loop)",
            "skipped cats/up: it links back to a folder above it (a loop)",
            "skipped kittens/up: it links back to a folder above it (a loop)",
        ]
    );
    assert_eq!(
        placed(c, "linked")
            .await
            .iter()
            .map(|p| p.rsplit_once('|').unwrap().0)
            .collect::<Vec<_>>(),
        [
            "/cats|a.png",
            "/cats|b.png",
            "/kittens|a.png",
            "/kittens|b.png",
            "/|one.png",
            "/|top.png",
        ]
    );

    // A broken link named like an image fails; any other is a note.
    let broken = tmp.path().join("broken");
    common::write_image(&broken.join("ok.png"), 3, 3, 5);
    symlink("missing.png", broken.join("gone.png")).unwrap();
    symlink("../nowhere", broken.join("dogs")).unwrap();
    let r = upload_dataset_from_folder(c, "broken", &broken, Default::default())
        .await
        .unwrap();
    assert_eq!((r.images_attempted, r.images_uploaded), (2, 1));
    assert_eq!(
        failures(&r, &broken),
        [(
            "gone.png".to_string(),
            "broken symbolic link: its target missing.png does not exist".to_string(),
            false
        )]
    );
    assert_eq!(
        r.notes,
        ["skipped dogs: broken symbolic link: its target ../nowhere does not exist"]
    );
}

/// Makes `root/deep/d…/d…` nested until its path is longer than the system allows, so
/// that reading the deepest folder fails even for root; answers the first folder whose
/// path is too long.
fn too_deep(root: &Path) -> PathBuf {
    let seg = "d".repeat(200);
    let half = [seg.as_str(); 12].join("/");
    let made = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "mkdir -p deep/{half} && cd deep/{half} && mkdir -p {half}"
        ))
        .current_dir(root)
        .status()
        .unwrap();
    assert!(made.success());
    let mut p = root.join("deep");
    while p.as_os_str().len() < 4096 {
        p.push(&seg);
    }
    p
}

#[tokio::test]
async fn an_unreadable_sub_folder_is_a_failure_naming_it_and_the_rest_uploads() {
    let s = common::start().await;
    let c = &s.client;
    let tmp = common::tempdir();
    let root = tmp.path().join("perm");
    common::write_image(&root.join("top.png"), 3, 3, 1);
    common::write_image(&root.join("cats/a.png"), 3, 3, 2);
    let deepest = too_deep(&root);

    let r = upload_dataset_from_folder(c, "perm", &root, Default::default())
        .await
        .unwrap();
    assert_eq!((r.images_attempted, r.images_uploaded), (2, 2), "{r:?}");
    let [f] = &r.failures[..] else {
        panic!("{r:?}")
    };
    assert_eq!(f.path, deepest);
    assert!(
        f.reason.starts_with("cannot read this folder: ") && f.reason.contains("too long"),
        "{}",
        f.reason
    );
    assert!(!f.retryable);
    assert!(!r.success());

    // The folder itself unreadable is an error naming it.
    let e = scan_folder(&deepest).unwrap_err();
    assert!(e.to_string().contains("too long"), "{e}");
}
