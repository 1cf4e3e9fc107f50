//! `upload_dataset_from_folder` and `datasets().download` against the real server.

mod common;

use pictograph::workflows::{upload_dataset_from_folder, FileOutcome, FolderUploadOptions};
use pictograph::{
    CreateProject, DownloadMode, DownloadOptions, Error, ImageUpdate, Status, UploadOptions,
};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// ./road_signs/{stop/001.png, stop/002.jpg, stop/night/005.png, yield/003.png, 004.png}
/// plus files the workflow ignores.
fn road_signs(root: &Path) {
    common::write_image(&root.join("stop/001.png"), 5, 5, 1);
    common::write_image(&root.join("stop/002.jpg"), 6, 5, 2);
    common::write_image(&root.join("stop/night/005.png"), 5, 6, 3);
    common::write_image(&root.join("yield/003.png"), 4, 4, 4);
    common::write_image(&root.join("004.png"), 3, 3, 5);
    std::fs::write(root.join("README.txt"), "not an image").unwrap();
    std::fs::write(root.join("stop/notes.heif"), "ignored too").unwrap();
}

/// An `on_file` callback that records each file's relative path and outcome in `into`.
fn record(
    into: Arc<Mutex<Vec<(String, FileOutcome)>>>,
) -> impl Fn(&Path, u64, FileOutcome) + Send + Sync + 'static {
    move |file, _size, outcome| {
        into.lock()
            .unwrap()
            .push((file.to_string_lossy().into_owned(), outcome))
    }
}

#[tokio::test]
async fn folder_upload_is_idempotent_and_collapses_nested_folders() {
    let s = common::start().await;
    let c = &s.client;
    let tmp = common::tempdir();
    let root = tmp.path().join("road_signs");
    road_signs(&root);

    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = calls.clone();
    let ended = Arc::new(Mutex::new(Vec::new()));
    let opts = FolderUploadOptions::default()
        .max_workers(3)
        .progress(move |done, total, file| {
            seen.lock()
                .unwrap()
                .push((done, total, file.unwrap_or_default().to_string()))
        })
        .on_file(record(ended.clone()));
    // Each file's outcome, sorted by path, then forgotten.
    let outcomes = |ended: &Mutex<Vec<(String, FileOutcome)>>| {
        let mut v = std::mem::take(&mut *ended.lock().unwrap());
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let first = upload_dataset_from_folder(c, "road-signs", &root, opts.clone())
        .await
        .unwrap();
    assert_eq!(first.dataset_name, "road-signs");
    assert_eq!(
        (
            first.images_attempted,
            first.images_uploaded,
            first.images_skipped
        ),
        (5, 5, 0)
    );
    assert!(first.failures.is_empty(), "{:?}", first.failures);
    assert!(first.success());

    // progress: once per file, counting up to the total
    let calls_now = calls.lock().unwrap().clone();
    assert_eq!(calls_now.len(), 5);
    assert_eq!(
        calls_now.iter().map(|c| c.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert!(calls_now.iter().all(|c| c.1 == 5));
    let mut files: Vec<_> = calls_now.iter().map(|c| c.2.clone()).collect();
    files.sort();
    assert_eq!(
        files,
        [
            "004.png",
            "stop/001.png",
            "stop/002.jpg",
            "stop/night/005.png",
            "yield/003.png"
        ]
    );

    // on_file: every file, told it was uploaded, by the same relative path as progress
    let told_first = outcomes(&ended);
    assert_eq!(
        told_first.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(),
        files
    );
    assert!(told_first.iter().all(|t| t.1 == FileOutcome::Uploaded));

    // virtual folders: first level only
    let mut placed: Vec<_> = common::images_of(c, "road-signs")
        .await
        .iter()
        .map(|i| format!("{}:{}", i.folder(), i.filename))
        .collect();
    placed.sort();
    assert_eq!(
        placed,
        [
            "/:004.png",
            "/stop:001.png",
            "/stop:002.jpg",
            "/stop:005.png",
            "/yield:003.png"
        ]
    );

    // second run: nothing uploaded, everything skipped
    calls.lock().unwrap().clear();
    let second = upload_dataset_from_folder(c, "road-signs", &root, opts)
        .await
        .unwrap();
    assert_eq!(
        (
            second.images_attempted,
            second.images_uploaded,
            second.images_skipped
        ),
        (5, 0, 5)
    );
    assert!(second.failures.is_empty());
    assert!(!second.success(), "nothing uploaded is not a success");
    assert_eq!(calls.lock().unwrap().len(), 5);
    let told_second = outcomes(&ended);
    assert_eq!(told_second.len(), 5);
    assert!(told_second.iter().all(|t| t.1 == FileOutcome::Skipped));

    // skip_existing=false: conflicts become failures
    let third = upload_dataset_from_folder(
        c,
        "road-signs",
        &root,
        FolderUploadOptions::default()
            .skip_existing(false)
            .parallel(false)
            .on_file(record(ended.clone())),
    )
    .await
    .unwrap();
    assert_eq!(third.failures.len(), 5);
    let told_third = outcomes(&ended);
    assert_eq!(told_third.len(), 5);
    assert!(told_third.iter().all(|t| t.1 == FileOutcome::Failed));
    assert!(third.failures[0].reason.starts_with("conflict: "));
    assert!(
        third.failures.iter().all(|f| !f.retryable),
        "a taken name stays taken"
    );
    assert!(third.failures.iter().all(|f| f.path.starts_with(&root)));
}

#[tokio::test]
async fn folder_upload_flat_empty_missing_and_not_created() {
    let s = common::start().await;
    let c = &s.client;
    let tmp = common::tempdir();
    let root = tmp.path().join("flat");
    common::write_image(&root.join("a/x.png"), 3, 3, 1);
    common::write_image(&root.join("b/y.png"), 3, 3, 2);

    let r = upload_dataset_from_folder(
        c,
        "flat",
        &root,
        FolderUploadOptions::default()
            .organize_by_class(false)
            .parallel(false),
    )
    .await
    .unwrap();
    assert_eq!(r.images_uploaded, 2);
    let flat = common::images_of(c, "flat").await;
    assert_eq!(flat.len(), 2);
    assert!(flat.iter().all(|i| i.folder() == "/"));

    // an empty folder: a report, not a success
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let r = upload_dataset_from_folder(c, "empty-ds", &empty, FolderUploadOptions::default())
        .await
        .unwrap();
    assert_eq!((r.images_attempted, r.images_uploaded), (0, 0));
    assert!(!r.success());

    // a missing folder, or a file instead of a folder: FileNotFound before any request
    let missing = tmp.path().join("nope");
    assert!(matches!(
        upload_dataset_from_folder(c, "never", &missing, FolderUploadOptions::default()).await,
        Err(Error::FileNotFound(p)) if p == missing
    ));
    assert!(matches!(
        upload_dataset_from_folder(
            c,
            "never",
            root.join("a/x.png"),
            FolderUploadOptions::default()
        )
        .await,
        Err(Error::FileNotFound(_))
    ));
    assert!(c.datasets().get("never").await.unwrap_err().is_not_found());

    // create_if_missing=false on a missing dataset: NotFound
    let e = upload_dataset_from_folder(
        c,
        "absent",
        &root,
        FolderUploadOptions::default().create_if_missing(false),
    )
    .await
    .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
}

#[tokio::test]
async fn folder_upload_records_per_file_errors() {
    let s = common::start().await;
    let c = &s.client;
    let tmp = common::tempdir();
    let root = tmp.path().join("mixed");
    common::write_image(&root.join("good.png"), 3, 3, 1);
    // A .png whose bytes are not an image: the server refuses it, the run goes on.
    std::fs::write(root.join("broken.png"), b"definitely not a png").unwrap();
    let r = upload_dataset_from_folder(c, "mixed", &root, FolderUploadOptions::default())
        .await
        .unwrap();
    assert_eq!((r.images_attempted, r.images_uploaded), (2, 1));
    assert_eq!(r.failures.len(), 1);
    assert!(r.failures[0].path.ends_with("broken.png"));
    assert!(!r.failures[0].retryable, "a refused file is refused again");
    assert!(!r.success());

    // A name the server refuses fails only that file, not the batch it was sent in; the
    // re-run skips what is there and fails the same two again.
    let root = tmp.path().join("names");
    for i in 0..40 {
        common::write_image(&root.join(format!("ok-{i:02}.png")), 3, 3, i as u8);
    }
    common::write_image(&root.join("back\\slash.png"), 3, 3, 99);
    std::fs::write(root.join("broken.png"), b"definitely not a png").unwrap();
    let r = upload_dataset_from_folder(c, "names", &root, FolderUploadOptions::default())
        .await
        .unwrap();
    assert_eq!((r.images_attempted, r.images_uploaded), (42, 40), "{r:?}");
    let mut failed: Vec<String> = r
        .failures
        .iter()
        .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    failed.sort();
    assert_eq!(failed, ["back\\slash.png", "broken.png"]);
    let again = upload_dataset_from_folder(c, "names", &root, FolderUploadOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (
            again.images_uploaded,
            again.images_skipped,
            again.failures.len()
        ),
        (0, 40, 2)
    );
}

#[tokio::test]
async fn folder_upload_marks_failures_a_rerun_may_fix() {
    // The server hands out upload URLs on a public URL where nothing listens (as behind a
    // proxy that is down): every PUT fails to connect, which a later run may not.
    let (s, _) = common::start_with_unreachable_uploads().await;
    let tmp = common::tempdir();
    let root = tmp.path().join("unreachable");
    common::write_image(&root.join("a.png"), 3, 3, 1);
    common::write_image(&root.join("b.png"), 3, 3, 2);
    let options = FolderUploadOptions::default().max_workers(2);
    let r = upload_dataset_from_folder(&s.client, "unreachable", &root, options)
        .await
        .unwrap();
    assert_eq!((r.images_uploaded, r.failures.len()), (0, 2), "{r:?}");
    assert!(r.failures.iter().all(|f| f.retryable), "{:?}", r.failures);
}

/// A dataset with equal file names in two folders, one complete image, and annotations.
async fn seeded(s: &common::Server, tmp: &Path) -> (String, Vec<(String, String, u64)>) {
    let c = &s.client;
    let ds = c
        .projects()
        .create("dl", CreateProject::default())
        .await
        .unwrap();
    let mut out = Vec::new();
    for (i, folder) in ["/", "/cars", "/cars/red", "/bikes"].iter().enumerate() {
        let f = tmp.join(format!("src{i}/same.png"));
        common::write_image(&f, 4 + i as u32, 4, i as u8);
        let img = c
            .images()
            .upload(&ds.id, &f, UploadOptions::default().folder_path(*folder))
            .await
            .unwrap();
        out.push((img.id, folder.to_string(), img.file_size));
    }
    c.annotations()
        .save(
            &out[1].0,
            &[pictograph::Annotation::bbox(
                "a",
                "car",
                [0.0, 0.0, 2.0, 2.0],
            )],
        )
        .await
        .unwrap();
    c.batch()
        .update(
            "dl",
            &[out[1].0.as_str()],
            ImageUpdate::default().status(Status::Complete),
        )
        .await
        .unwrap();
    (ds.id, out)
}

#[tokio::test]
async fn download_modes_folders_and_status_filter() {
    let s = common::start().await;
    let c = &s.client;
    let tmp = common::tempdir();
    let (ds_id, imgs) = seeded(&s, tmp.path()).await;

    // full: images and annotation files, each in its folder
    let out = tmp.path().join("full");
    let progress = Arc::new(Mutex::new(0usize));
    let p = progress.clone();
    let r = c
        .datasets()
        .download(
            "dl",
            &out,
            DownloadOptions::default()
                .max_workers(3)
                .progress(move |_, total, _| {
                    assert_eq!(total, 8);
                    *p.lock().unwrap() += 1;
                }),
        )
        .await
        .unwrap();
    assert!(r.success(), "{:?}", r.failures);
    assert_eq!(r.dataset_id, ds_id);
    assert_eq!(
        (
            r.images_downloaded,
            r.annotations_downloaded,
            r.images_skipped
        ),
        (4, 4, 0)
    );
    assert_eq!(*progress.lock().unwrap(), 8);
    assert_eq!(
        common::files_under(&out),
        [
            "bikes/same.png",
            "bikes/same.png.json",
            "cars/red/same.png",
            "cars/red/same.png.json",
            "cars/same.png",
            "cars/same.png.json",
            "same.png",
            "same.png.json"
        ]
    );
    let bytes = std::fs::read(out.join("cars/same.png")).unwrap();
    assert_eq!(bytes.len() as u64, imgs[1].2);
    assert_eq!(
        bytes,
        std::fs::read(tmp.path().join("src1/same.png")).unwrap()
    );
    let ann: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("cars/same.png.json")).unwrap()).unwrap();
    assert_eq!(ann["image_id"], imgs[1].0.as_str());
    assert_eq!(ann["annotations"][0]["bounding_box"]["w"], 2.0);

    // The same, a page of the listing at a time (pages of 1 and 3 of the 4 images): the
    // same files, and the last progress call knows the whole total.
    for page in [1, 3] {
        let paged = tmp.path().join(format!("paged-{page}"));
        let last = Arc::new(Mutex::new((0usize, 0usize)));
        let l = last.clone();
        let r = c
            .datasets()
            .download(
                "dl",
                &paged,
                DownloadOptions::default()
                    .page_size(page)
                    .max_workers(2)
                    .progress(move |done, total, _| *l.lock().unwrap() = (done, total)),
            )
            .await
            .unwrap();
        assert!(r.success(), "{:?}", r.failures);
        assert_eq!((r.images_downloaded, r.annotations_downloaded), (4, 4));
        assert_eq!(*last.lock().unwrap(), (8, 8));
        assert_eq!(common::files_under(&paged), common::files_under(&out));
    }

    // images_only
    let out = tmp.path().join("images");
    let r = c
        .datasets()
        .download(
            "dl",
            &out,
            DownloadOptions::default().mode(DownloadMode::ImagesOnly),
        )
        .await
        .unwrap();
    assert_eq!((r.images_downloaded, r.annotations_downloaded), (4, 0));
    assert!(common::files_under(&out)
        .iter()
        .all(|f| f.ends_with(".png")));

    // annotations_only + status_filter
    let out = tmp.path().join("ann");
    let r = c
        .datasets()
        .download(
            "dl",
            &out,
            DownloadOptions::default()
                .mode(DownloadMode::AnnotationsOnly)
                .status_filter(Status::Complete),
        )
        .await
        .unwrap();
    assert_eq!((r.images_downloaded, r.annotations_downloaded), (0, 1));
    assert_eq!(common::files_under(&out), ["cars/same.png.json"]);

    // images_only + status_filter with no match
    let out = tmp.path().join("none");
    let r = c
        .datasets()
        .download(
            "dl",
            &out,
            DownloadOptions::default()
                .mode(DownloadMode::ImagesOnly)
                .status_filter(Status::Review),
        )
        .await
        .unwrap();
    assert_eq!(r.images_downloaded, 0);
    assert!(common::files_under(&out).is_empty());

    // unknown dataset: the listing call fails, and no output directory is left behind
    assert!(c
        .datasets()
        .download("nope", tmp.path().join("x"), DownloadOptions::default())
        .await
        .unwrap_err()
        .is_not_found());
    assert!(!tmp.path().join("x").exists());
}

#[tokio::test]
async fn download_is_atomic_and_skips_complete_files_on_rerun() {
    let s = common::start().await;
    let c = &s.client;
    let tmp = common::tempdir();
    let (_, imgs) = seeded(&s, tmp.path()).await;
    let out = tmp.path().join("out");
    let opts = || DownloadOptions::default().mode(DownloadMode::ImagesOnly);

    let r = c.datasets().download("dl", &out, opts()).await.unwrap();
    assert_eq!((r.images_downloaded, r.images_skipped), (4, 0));
    assert!(
        common::files_under(&out)
            .iter()
            .all(|f| !f.ends_with(".part")),
        "no temporary file is left behind"
    );

    // Simulate an interrupted earlier run: one image truncated in place (as a non-atomic
    // writer would leave it) and a stale .part file beside another.
    let truncated = out.join("cars/same.png");
    let full = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &full[..full.len() / 2]).unwrap();
    std::fs::write(out.join("bikes/same.png.part"), b"half").unwrap();
    // A file with the right size is trusted and kept as it is.
    let kept = out.join("same.png");
    let marker = vec![b'k'; imgs[0].2 as usize];
    std::fs::write(&kept, &marker).unwrap();

    let r = c.datasets().download("dl", &out, opts()).await.unwrap();
    assert!(r.success(), "{:?}", r.failures);
    assert_eq!((r.images_downloaded, r.images_skipped), (1, 3));
    assert_eq!(
        std::fs::read(&truncated).unwrap(),
        full,
        "the truncated file was fetched again"
    );
    assert_eq!(
        std::fs::read(&kept).unwrap(),
        marker,
        "right-sized files are skipped"
    );
    assert!(common::files_under(&out)
        .iter()
        .all(|f| !f.ends_with(".part")));

    // Removing a file and re-running fetches just that one.
    std::fs::remove_file(out.join("cars/red/same.png")).unwrap();
    let r = c.datasets().download("dl", &out, opts()).await.unwrap();
    assert_eq!((r.images_downloaded, r.images_skipped), (1, 3));
}

/// Names as long as the server allows (255 bytes, a folder segment of more) are downloaded
/// under shortened names that leave room for the annotation and temporary files beside them,
/// the same names on every run.
#[tokio::test]
async fn the_longest_names_the_server_allows_are_downloaded() {
    let s = common::start().await;
    let c = &s.client;
    let tmp = common::tempdir();
    let ds = c
        .projects()
        .create("long", CreateProject::default())
        .await
        .unwrap();
    let folder = format!("/{}", "d".repeat(300));
    let src = tmp.path().join("src.png");
    common::write_image(&src, 5, 5, 1);
    for last in ['a', 'b'] {
        let name = format!("{}{last}.png", "n".repeat(250));
        assert_eq!(name.len(), 255);
        let opts = UploadOptions::default()
            .filename(&name)
            .folder_path(&folder);
        let img = c.images().upload(&ds.id, &src, opts).await.unwrap();
        c.annotations()
            .save(
                &img.id,
                &[pictograph::Annotation::bbox("a", "x", [0.0, 0.0, 1.0, 1.0])],
            )
            .await
            .unwrap();
    }
    let out = tmp.path().join("out");
    let r = c
        .datasets()
        .download("long", &out, DownloadOptions::default())
        .await
        .unwrap();
    assert!(r.success(), "{:?}", r.failures);
    assert_eq!((r.images_downloaded, r.annotations_downloaded), (2, 2));
    let files = common::files_under(&out);
    assert_eq!(files.len(), 4, "{files:?}");
    for f in &files {
        let parts: Vec<&str> = f.split('/').collect();
        assert_eq!(parts.len(), 2, "the folder is one directory: {f}");
        assert!(parts.iter().all(|p| p.len() <= 255), "{f}");
        assert!(f.ends_with(".png") || f.ends_with(".png.json"), "{f}");
    }
    let again = c
        .datasets()
        .download("long", &out, DownloadOptions::default())
        .await
        .unwrap();
    assert_eq!((again.images_downloaded, again.images_skipped), (0, 2));
    assert_eq!(common::files_under(&out), files);
}

/// A download whose disk fills up stops at the first file it cannot write, with an error that
/// says so, rather than fetching every remaining file only to fail writing it; a re-run once
/// there is space fetches what is missing.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_full_disk_stops_the_download_at_the_first_file() {
    let s = common::start().await;
    let c = &s.client;
    let tmp = common::tempdir();
    seeded(&s, tmp.path()).await;
    let one_at_a_time = || {
        DownloadOptions::default()
            .mode(DownloadMode::ImagesOnly)
            .max_workers(1)
    };
    // The order files are fetched in, one at a time.
    let order = Arc::new(Mutex::new(Vec::new()));
    let seen = order.clone();
    c.datasets()
        .download(
            "dl",
            tmp.path().join("first"),
            one_at_a_time().progress(move |_, _, file| {
                seen.lock()
                    .unwrap()
                    .push(file.unwrap_or_default().to_string())
            }),
        )
        .await
        .unwrap();
    let first = order.lock().unwrap()[0].clone();

    // The first file's temporary name leads to /dev/full, where every write fails with
    // "no space left on device".
    let out = tmp.path().join("out");
    let part = out.join(format!("{first}.part"));
    std::fs::create_dir_all(part.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/dev/full", &part).unwrap();
    let err = c
        .datasets()
        .download("dl", &out, one_at_a_time())
        .await
        .unwrap_err();
    assert!(err.is_disk_full(), "{err}");
    let said = err.to_string();
    assert!(
        said.contains(&first) && !said.contains(".part"),
        "names the image, not its temporary file: {said}"
    );
    assert_eq!(
        common::files_under(&out),
        Vec::<String>::new(),
        "nothing fetched after the first failure, and its temporary file removed"
    );

    let r = c
        .datasets()
        .download("dl", &out, one_at_a_time())
        .await
        .unwrap();
    assert!(r.success(), "{:?}", r.failures);
    assert_eq!((r.images_downloaded, r.images_skipped), (4, 0));
}

/// The blocking client uploads a folder scanned beforehand, as the async workflow does: the
/// totals are known before the upload starts, and a re-run skips what is there.
#[test]
fn the_blocking_client_uploads_a_scanned_folder() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = rt.block_on(common::start());
    let client = pictograph::blocking::Client::wrap(s.client.clone()).unwrap();
    let tmp = common::tempdir();
    let root = tmp.path().join("road_signs");
    road_signs(&root);

    let scan = pictograph::workflows::scan_folder(&root).unwrap();
    assert_eq!((scan.files.len(), scan.ignored), (5, 2));
    let ended = Arc::new(Mutex::new(Vec::new()));
    let opts = FolderUploadOptions::default()
        .max_workers(2)
        .on_file(record(ended.clone()));
    let first = client
        .upload_scanned_folder("road-signs", scan.clone(), opts.clone())
        .unwrap();
    assert_eq!((first.images_attempted, first.images_uploaded), (5, 5));
    assert!(first.success(), "{:?}", first.failures);
    assert_eq!(ended.lock().unwrap().len(), 5);
    let mut placed: Vec<String> = client
        .datasets()
        .list_images("road-signs", Default::default())
        .unwrap()
        .images
        .iter()
        .map(|i| format!("{}/{}", i.folder().trim_end_matches('/'), i.filename))
        .collect();
    placed.sort();
    assert_eq!(
        placed,
        [
            "/004.png",
            "/stop/001.png",
            "/stop/002.jpg",
            "/stop/005.png",
            "/yield/003.png"
        ]
    );

    let again = client
        .upload_scanned_folder("road-signs", scan, opts)
        .unwrap();
    assert_eq!((again.images_uploaded, again.images_skipped), (0, 5));
    assert!(again.failures.is_empty(), "{:?}", again.failures);

    // A dataset that is missing and may not be created: NotFound, as from the async call.
    let scan = pictograph::workflows::scan_folder(&root).unwrap();
    let e = client
        .upload_scanned_folder(
            "absent",
            scan,
            FolderUploadOptions::default().create_if_missing(false),
        )
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    drop(client);
    rt.block_on(s.app.stop()).unwrap();
}

/// Photos of a few MiB each, more of them at once than the memory the client holds whole
/// files in (8 MiB): some are read and received whole, the others stream, and each one
/// reaches the server and comes back with its own bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn photos_beyond_the_whole_file_memory_arrive_with_their_own_bytes() {
    let s = common::start().await;
    let c = &s.client;
    let tmp = common::tempdir();
    let src = tmp.path().join("photos");
    for i in 0..12u8 {
        // 1024 × 1024 RGB: 3 MiB each, under the 4 MiB a file may be held whole.
        common::write_image(&src.join(format!("p{i:02}.bmp")), 1024, 1024, i);
    }
    let up = upload_dataset_from_folder(
        c,
        "photos",
        &src,
        FolderUploadOptions::default().max_workers(12),
    )
    .await
    .unwrap();
    assert!(up.success() && up.images_uploaded == 12, "{up:?}");
    let out = tmp.path().join("out");
    let down = c
        .datasets()
        .download(
            "photos",
            &out,
            DownloadOptions::default()
                .mode(DownloadMode::ImagesOnly)
                .max_workers(12),
        )
        .await
        .unwrap();
    assert_eq!(down.images_downloaded, 12, "{:?}", down.failures);
    for i in 0..12u8 {
        let name = format!("p{i:02}.bmp");
        let sent = std::fs::read(src.join(&name)).unwrap();
        assert!(sent.len() > 3 << 20);
        assert!(
            std::fs::read(out.join(&name)).unwrap() == sent,
            "{name} came back with other bytes"
        );
    }
}
