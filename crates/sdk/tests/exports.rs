//! Server export jobs through the SDK: start and wait, list newest first, cancel a queued job,
//! delete an ended one.

mod common;

use pictograph::formats::{
    export_archive, list_server_exports, stop_server_export, Format, ServerExportOptions,
    StoppedExport,
};
use pictograph::{CreateProject, Error, UploadOptions};

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
