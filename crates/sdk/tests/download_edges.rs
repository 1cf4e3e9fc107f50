//! `datasets().download` where local paths get in the way: folders named like images,
//! outputs that are files, blocked files; and what each file's outcome and byte count say.

mod common;

use pictograph::datasets::DownloadOutcome;
use pictograph::{
    CopyOptions, CreateProject, DownloadKind, DownloadMode, DownloadOptions, Error, UploadOptions,
};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Uploads `names` (images of `folder`) into a new dataset `dataset`; answers the image ids.
async fn dataset_of(
    s: &common::Server,
    dataset: &str,
    folder: &str,
    names: &[&str],
) -> Vec<String> {
    let c = &s.client;
    let ds = c
        .projects()
        .create(dataset, CreateProject::default())
        .await
        .unwrap();
    let tmp = common::tempdir();
    let mut ids = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let src = tmp.path().join(name);
        common::write_image(&src, 4 + i as u32, 4, i as u8);
        let opts = UploadOptions::default().folder_path(folder);
        ids.push(c.images().upload(&ds.id, &src, opts).await.unwrap().id);
    }
    ids
}

/// Each file's outcome, as the `on_file` callback told it, sorted by path.
type Outcomes = Arc<Mutex<Vec<(String, DownloadKind, DownloadOutcome)>>>;

fn recording(options: DownloadOptions) -> (DownloadOptions, Outcomes) {
    let seen: Outcomes = Arc::default();
    let into = seen.clone();
    let options = options.on_file(move |file, kind, outcome| {
        into.lock()
            .unwrap()
            .push((file.to_string_lossy().into_owned(), kind, outcome))
    });
    (options, seen)
}

fn taken(seen: &Outcomes) -> Vec<(String, DownloadKind, DownloadOutcome)> {
    let mut v = std::mem::take(&mut *seen.lock().unwrap());
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

#[tokio::test]
async fn a_folder_named_like_an_image_leaves_both_whole_on_every_run() {
    let s = common::start().await;
    let c = &s.client;
    let ids = dataset_of(&s, "clash", "/", &["img_1.png", "img_2.png"]).await;
    c.batch()
        .copy("clash", &ids[..1], CopyOptions::to("/img_1.png"))
        .await
        .unwrap();
    let tmp = common::tempdir();
    let out = tmp.path().join("out");
    let options = DownloadOptions::default().mode(DownloadMode::ImagesOnly);

    let first = c
        .datasets()
        .download("clash", &out, options.clone())
        .await
        .unwrap();
    assert!(first.success(), "{:?}", first.failures);
    assert_eq!((first.images_downloaded, first.images_skipped), (3, 0));
    assert_eq!(
        common::files_under(&out),
        ["img_1-2.png/img_1.png", "img_1.png", "img_2.png"]
    );
    assert_eq!(
        std::fs::read(out.join("img_1.png")).unwrap(),
        std::fs::read(out.join("img_1-2.png/img_1.png")).unwrap(),
        "the copy holds the same bytes"
    );

    let again = c.datasets().download("clash", &out, options).await.unwrap();
    assert!(again.success(), "{:?}", again.failures);
    assert_eq!(
        (again.images_downloaded, again.images_skipped),
        (0, 3),
        "a re-run finds every file where the first run put it"
    );
    assert_eq!(common::files_under(&out).len(), 3);
    s.app.stop().await.unwrap();
}

#[tokio::test]
async fn outcomes_and_bytes_count_only_what_was_fetched() {
    let s = common::start().await;
    let c = &s.client;
    dataset_of(&s, "bytes", "/cats", &["a.png", "b.png"]).await;
    let tmp = common::tempdir();
    let out = tmp.path().join("out");

    let (options, seen) = recording(DownloadOptions::default().mode(DownloadMode::Full));
    let first = c
        .datasets()
        .download("bytes", &out, options.clone())
        .await
        .unwrap();
    let on_disk: u64 = common::files_under(&out)
        .iter()
        .map(|f| size(&out.join(f)))
        .sum();
    assert_eq!(first.bytes_written, on_disk);
    let outcomes = taken(&seen);
    let expected: Vec<(String, DownloadKind, DownloadOutcome)> = [
        ("cats/a.png", DownloadKind::Image),
        ("cats/a.png.json", DownloadKind::Annotation),
        ("cats/b.png", DownloadKind::Image),
        ("cats/b.png.json", DownloadKind::Annotation),
    ]
    .into_iter()
    .map(|(f, kind)| {
        (
            f.to_string(),
            kind,
            DownloadOutcome::Written(size(&out.join(f))),
        )
    })
    .collect();
    assert_eq!(outcomes, expected);

    // A re-run: the images are skipped, only the annotation files are fetched again.
    let again = c.datasets().download("bytes", &out, options).await.unwrap();
    let annotation_bytes = size(&out.join("cats/a.png.json")) + size(&out.join("cats/b.png.json"));
    assert_eq!(again.bytes_written, annotation_bytes);
    let outcomes = taken(&seen);
    assert_eq!(outcomes[0].2, DownloadOutcome::Skipped);
    assert_eq!(outcomes[2].2, DownloadOutcome::Skipped);

    let images_only = c
        .datasets()
        .download(
            "bytes",
            &out,
            DownloadOptions::default().mode(DownloadMode::ImagesOnly),
        )
        .await
        .unwrap();
    assert_eq!(
        (images_only.images_skipped, images_only.bytes_written),
        (2, 0)
    );
    s.app.stop().await.unwrap();
}

#[tokio::test]
async fn an_output_that_is_a_file_is_refused_and_left_alone() {
    let s = common::start().await;
    dataset_of(&s, "plain", "/", &["a.png"]).await;
    let tmp = common::tempdir();
    let file = tmp.path().join("notes.txt");
    std::fs::write(&file, "keep me").unwrap();
    let err = s
        .client
        .datasets()
        .download("plain", &file, DownloadOptions::default())
        .await
        .unwrap_err();
    match &err {
        Error::Io { path, source } => {
            assert_eq!(path, &file);
            assert_eq!(source.kind(), std::io::ErrorKind::NotADirectory);
        }
        other => panic!("expected an I/O error on the output, got {other:?}"),
    }
    assert!(err.to_string().contains("not a directory"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    s.app.stop().await.unwrap();
}

#[tokio::test]
async fn a_blocked_file_fails_alone_naming_its_own_path() {
    let s = common::start().await;
    dataset_of(&s, "blocked", "/", &["a.png", "b.png", "c.png"]).await;
    dataset_of(&s, "blocked-dir", "/cats", &["x.png", "y.png"]).await;
    let tmp = common::tempdir();
    let out = tmp.path().join("out");
    // Something in the way of `b.png`'s temporary file.
    std::fs::create_dir_all(out.join("b.png.part")).unwrap();
    let report = s
        .client
        .datasets()
        .download(
            "blocked",
            &out,
            DownloadOptions::default().mode(DownloadMode::ImagesOnly),
        )
        .await
        .unwrap();
    assert_eq!(report.images_downloaded, 2);
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    let f = &report.failures[0];
    assert_eq!(f.filename, "b.png");
    assert!(
        !f.retryable,
        "a local obstacle is not fixed by running again"
    );
    assert!(
        !f.reason.contains(".part") && f.reason.starts_with("I/O error"),
        "{}",
        f.reason
    );

    // A file where a folder's directory goes: every image of the folder fails the same way.
    let out = tmp.path().join("out2");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("cats"), "a file").unwrap();
    let report = s
        .client
        .datasets()
        .download(
            "blocked-dir",
            &out,
            DownloadOptions::default().mode(DownloadMode::ImagesOnly),
        )
        .await
        .unwrap();
    assert_eq!(report.failures.len(), 2);
    assert_eq!(report.failures[0].reason, report.failures[1].reason);
    assert_eq!(
        report.failures[0].reason,
        format!(
            "I/O error on {}: exists and is not a directory",
            out.join("cats").display()
        )
    );
    assert!(report.failures.iter().all(|f| !f.retryable));
    assert_eq!(std::fs::read_to_string(out.join("cats")).unwrap(), "a file");
    s.app.stop().await.unwrap();
}
