//! Server export jobs through the SDK: start and wait, list newest first, cancel a queued job,
//! delete an ended one. Local exports: a re-export into the same folder leaves exactly the
//! current dataset, and never removes a file someone else put there.

mod common;

use pictograph::formats::{
    export_archive, export_dataset, list_server_exports, stop_server_export, ExportOptions, Format,
    ServerExportOptions, StoppedExport,
};
use pictograph::{Annotation, CreateProject, Error, UploadOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_jobs_are_listed_cancelled_and_deleted() {
    let s = common::start().await;
    let c = &s.client;
    let tmp = common::tempdir();
    let ds = c
        .projects()
        .create("jobs", CreateProject::default())
        .await
        .unwrap();
    let img = tmp.path().join("a.png");
    common::write_image(&img, 5, 4, 1);
    c.images()
        .upload(&ds.id, &img, UploadOptions::default())
        .await
        .unwrap();

    let done = export_archive(
        c,
        "jobs",
        Format::Yolo,
        tmp.path().join("yolo.tar"),
        ServerExportOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(done.state, "complete");
    assert!(done.created_at.is_some());

    // A job recorded but not started stays queued until cancelled.
    let store = &s.app.state.store;
    let org = store.ensure_org("org-a").await.unwrap().id;
    let queued = store
        .create_export_job(&org, &ds.id, "coco", None, false)
        .await
        .unwrap();
    let page = list_server_exports(c, "jobs", 10, 0).await.unwrap();
    assert_eq!(page.total, 2);
    let ids: Vec<&str> = page.exports.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, [queued.id.as_str(), done.id.as_str()]);
    assert_eq!(page.exports[0].state, "queued");

    match stop_server_export(c, &ds.id, &queued.id).await.unwrap() {
        StoppedExport::Cancelled(job) => assert_eq!(job.state, "cancelled"),
        other => panic!("{other:?}"),
    }
    match stop_server_export(c, "jobs", &done.id).await.unwrap() {
        StoppedExport::Deleted(job) => {
            assert_eq!(job.state, "complete");
            assert!(job.download_url.is_none());
        }
        other => panic!("{other:?}"),
    }
    let page = list_server_exports(c, "jobs", 10, 0).await.unwrap();
    assert_eq!(page.total, 1);
    assert!(matches!(
        stop_server_export(c, "jobs", &done.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        list_server_exports(c, "jobs", 0, 0).await,
        Err(Error::Validation(_))
    ));
}

/// The manifest a local export keeps in its folder.
const MANIFEST: &str = ".pictograph-export";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_export_into_the_same_folder_leaves_exactly_the_dataset() {
    let s = common::start().await;
    let c = &s.client;
    let tmp = common::tempdir();
    let ds = c
        .projects()
        .create("again", CreateProject::default())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for (i, (folder, name)) in [("/", "a.png"), ("/", "b.png"), ("/sub", "c.png")]
        .iter()
        .enumerate()
    {
        let file = tmp.path().join(format!("up/{i}/{name}"));
        common::write_image(&file, 8, 6, i as u8);
        let img = c
            .images()
            .upload(&ds.id, &file, UploadOptions::default().folder_path(*folder))
            .await
            .unwrap();
        let ann = Annotation::bbox("b", "car", [1.0, 1.0, 2.0, 2.0]);
        c.annotations().save(&img.id, &[ann]).await.unwrap();
        ids.push(img.id);
    }
    let out = tmp.path().join("out");
    let first = export_dataset(c, "again", Format::Yolo, &out, ExportOptions::default())
        .await
        .unwrap();
    assert_eq!((first.images, first.files_removed), (3, 0));
    assert_eq!(
        common::files_under(&out),
        [
            MANIFEST,
            "data.yaml",
            "images/train/a.png",
            "images/train/b.png",
            "images/train/sub/c.png",
            "labels/train/a.txt",
            "labels/train/b.txt",
            "labels/train/sub/c.txt",
        ]
    );
    // Files of the user's own beside the export.
    std::fs::write(out.join("notes.txt"), b"mine").unwrap();
    std::fs::write(out.join("images/train/extra.png"), b"mine").unwrap();

    // Two images leave the dataset: the re-export removes their files and nothing else.
    c.images().delete(&ids[1], false).await.unwrap();
    c.images().delete(&ids[2], true).await.unwrap();
    let again = export_dataset(c, "again", Format::Yolo, &out, ExportOptions::default())
        .await
        .unwrap();
    assert_eq!((again.images, again.images_present), (1, 1));
    assert_eq!(again.files_removed, 4);
    assert_eq!(
        common::files_under(&out),
        [
            MANIFEST,
            "data.yaml",
            "images/train/a.png",
            "images/train/extra.png",
            "labels/train/a.txt",
            "notes.txt",
        ]
    );
    assert!(
        !out.join("images/train/sub").exists(),
        "emptied folders go too"
    );

    // Another format into the same folder: the earlier format's files go, the user's stay.
    let coco = export_dataset(c, "again", Format::Coco, &out, ExportOptions::default())
        .await
        .unwrap();
    // `data.yaml`, `images/train/a.png`, `labels/train/a.txt`.
    assert_eq!(coco.files_removed, 3);
    assert_eq!(
        common::files_under(&out),
        [
            MANIFEST,
            "annotations/instances.json",
            "images/a.png",
            "images/train/extra.png",
            "notes.txt",
        ]
    );

    // A folder of someone else's files is refused, untouched, unless asked.
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::write(theirs.join("data.yaml"), b"theirs").unwrap();
    let refused = export_dataset(c, "again", Format::Yolo, &theirs, ExportOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, Error::InvalidArgument(m) if m.contains("not empty")),
        "{refused}"
    );
    assert_eq!(common::files_under(&theirs), ["data.yaml"]);
    std::fs::write(theirs.join("keep.txt"), b"theirs").unwrap();
    let forced = export_dataset(
        c,
        "again",
        Format::Yolo,
        &theirs,
        ExportOptions {
            allow_non_empty: true,
            ..ExportOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(forced.images, 1);
    assert_eq!(std::fs::read(theirs.join("keep.txt")).unwrap(), b"theirs");
    assert_ne!(std::fs::read(theirs.join("data.yaml")).unwrap(), b"theirs");
}
