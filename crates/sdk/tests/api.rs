//! Every resource call against the real server, and errors mapped to their types.

mod common;

use futures::TryStreamExt;
use pictograph::{
    Annotation, CopyOptions, CreateProject, DatasetClass, DuplicateHandling, Error, GetOptions,
    ImageUpdate, Status, UpdateProject, UploadOptions,
};
use pictograph_server::auth::Role;

#[tokio::test]
async fn datasets_and_projects() {
    let s = common::start().await;
    let c = &s.client;
    assert!(c.datasets().list(100).await.unwrap().is_empty());

    let p = c
        .projects()
        .create(
            "road signs/é",
            CreateProject::default()
                .description("signs")
                .annotation_types(["bbox", "polygon"])
                .classes(vec![DatasetClass::new("stop"), DatasetClass::new("yield")]),
        )
        .await
        .unwrap();
    assert_eq!(p.name, "road signs/é");
    assert_eq!(p.description.as_deref(), Some("signs"));
    assert_eq!(p.classes.len(), 2);
    assert!(p.classes[0].color.is_some(), "the server assigns colours");
    assert_eq!(p.annotation_types, vec!["bbox", "polygon"]);
    for i in 0..4 {
        c.projects()
            .create(&format!("ds-{i}"), CreateProject::default())
            .await
            .unwrap();
    }

    // list, iter with page_size and max_total, all(), first()
    assert_eq!(c.datasets().list(3).await.unwrap().len(), 3);
    let all = c.datasets().iter().page_size(2).all().await.unwrap();
    assert_eq!(all.len(), 5);
    let some: Vec<_> = c
        .datasets()
        .iter()
        .page_size(2)
        .max_total(3)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(some.len(), 3);
    assert!(c.datasets().iter().first().await.unwrap().is_some());
    assert_eq!(c.projects().list(10, 4).await.unwrap().len(), 1);
    assert_eq!(
        c.projects().iter().page_size(3).all().await.unwrap().len(),
        5
    );

    // get by name (with a name needing percent-encoding), by id
    let ds = c.datasets().get("road signs/é").await.unwrap();
    assert_eq!(ds.id, p.id);
    assert!(ds.images.is_none());
    assert_eq!(c.datasets().get_by_id(&p.id).await.unwrap().name, p.name);
    assert_eq!(c.projects().get("ds-1").await.unwrap().name, "ds-1");

    // update: rename and description; classes replace the set
    let up = c
        .projects()
        .update(
            "ds-0",
            UpdateProject::default()
                .new_name("ds-zero")
                .description("renamed")
                .classes(vec![DatasetClass::new("car")]),
        )
        .await
        .unwrap();
    assert_eq!(up.name, "ds-zero");
    assert_eq!(up.description.as_deref(), Some("renamed"));
    assert_eq!(up.classes.len(), 1);
    assert!(matches!(
        c.projects().update("ds-1", UpdateProject::default()).await,
        Err(Error::InvalidArgument(_))
    ));

    // delete
    let gone = c.projects().delete("ds-zero").await.unwrap();
    assert_eq!(gone.name, "ds-zero");
    assert_eq!(gone.images_deleted, 0);
    assert!(c
        .datasets()
        .get("ds-zero")
        .await
        .unwrap_err()
        .is_not_found());
}

#[tokio::test]
async fn deleting_a_project_says_which_bytes_are_freed_now_and_which_later() {
    // The default grace period: bytes uploaded just now are freed by a later sweep.
    let s = common::start().await;
    let c = &s.client;
    let tmp = common::tempdir();
    let ds = c
        .projects()
        .create("short-lived", CreateProject::default())
        .await
        .unwrap();
    for i in 0..3u8 {
        let path = tmp.path().join(format!("{i}.png"));
        common::write_image(&path, 6, 4, i);
        c.images()
            .upload(&ds.id, &path, UploadOptions::default())
            .await
            .unwrap();
    }
    let gone = c.projects().delete("short-lived").await.unwrap();
    assert_eq!(gone.images_deleted, 3);
    assert_eq!((gone.blobs_deleted, gone.gcs_blobs_deleted), (0, 0));
    assert_eq!(gone.blobs_freed_after_grace, 3);
}

#[tokio::test]
async fn images_upload_get_download_delete() {
    let s = common::start().await;
    let c = &s.client;
    let tmp = common::tempdir();
    let ds = c
        .projects()
        .create("imgs", CreateProject::default())
        .await
        .unwrap();
    let png = tmp.path().join("photo.png");
    let jpg = tmp.path().join("photo.jpg");
    common::write_image(&png, 6, 4, 1);
    common::write_image(&jpg, 8, 5, 2);

    let img = c
        .images()
        .upload(&ds.id, &png, UploadOptions::default().folder_path("cars/"))
        .await
        .unwrap();
    assert_eq!(img.filename, "photo.png");
    assert_eq!(img.folder(), "/cars", "the folder is normalised");
    assert_eq!((img.width, img.height), (Some(6), Some(4)));
    assert_eq!(img.file_size, std::fs::metadata(&png).unwrap().len());
    assert_eq!(img.mime_type.as_deref(), Some("image/png"));
    assert_eq!(img.status_enum(), Some(Status::New));

    // filename override, jpeg
    let renamed = c
        .images()
        .upload(
            &ds.id,
            &jpg,
            UploadOptions::default().filename("custom.jpg"),
        )
        .await
        .unwrap();
    assert_eq!(renamed.filename, "custom.jpg");
    assert_eq!(renamed.folder(), "/");
    assert_eq!(renamed.mime_type.as_deref(), Some("image/jpeg"));

    // get
    let got = c.images().get(&img.id).await.unwrap();
    assert_eq!(got.id, img.id);
    assert_eq!(got.dataset_id.as_deref(), Some(ds.id.as_str()));

    // embedded images
    let with = c
        .datasets()
        .get_with(
            "imgs",
            GetOptions {
                include_images: true,
                images_limit: 1,
                images_offset: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!(with.image_count, 2);
    assert_eq!(with.images.as_ref().map(Vec::len), Some(1));

    // download: exact bytes, nested output path created, no .part left
    let out = tmp.path().join("out/nested/p.png");
    let n = c.images().download(&img.id, &out).await.unwrap();
    assert_eq!(n, img.file_size);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&png).unwrap());
    assert_eq!(
        common::files_under(&tmp.path().join("out")),
        ["nested/p.png"]
    );

    // same name in the same folder → Conflict; in another folder it is fine
    let e = c
        .images()
        .upload(&ds.id, &png, UploadOptions::default().folder_path("/cars"))
        .await
        .unwrap_err();
    assert!(e.is_conflict(), "{e}");
    assert!(e.to_string().contains("already exists"));
    c.images()
        .upload(&ds.id, &png, UploadOptions::default().folder_path("/bikes"))
        .await
        .unwrap();

    // missing file
    assert!(matches!(
        c.images()
            .upload(
                &ds.id,
                tmp.path().join("nope.png"),
                UploadOptions::default()
            )
            .await,
        Err(Error::FileNotFound(_))
    ));

    // unsupported type → generic API error carrying 415
    let txt = tmp.path().join("notes.txt");
    std::fs::write(&txt, "hello").unwrap();
    let e = c
        .images()
        .upload(&ds.id, &txt, UploadOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Api(ref a) if a.status == 415), "{e:?}");

    // delete: archive, then permanent
    c.images().delete(&renamed.id, false).await.unwrap();
    assert!(c.images().get(&renamed.id).await.unwrap().is_archived);
    c.images().delete(&renamed.id, true).await.unwrap();
    assert!(c
        .images()
        .get(&renamed.id)
        .await
        .unwrap_err()
        .is_not_found());
}

#[tokio::test]
async fn explicit_idempotency_key_dedupes_an_upload() {
    let s = common::start().await;
    let c = &s.client;
    let tmp = common::tempdir();
    let ds = c
        .projects()
        .create("idem", CreateProject::default())
        .await
        .unwrap();
    let f = tmp.path().join("a.png");
    common::write_image(&f, 3, 3, 7);
    let opts = UploadOptions::default().idempotency_key("my-upload-0001");
    let first = c.images().upload(&ds.id, &f, opts.clone()).await.unwrap();
    let again = c.images().upload(&ds.id, &f, opts).await.unwrap();
    assert_eq!(first.id, again.id, "the same key answers the same image");
    assert_eq!(c.datasets().get("idem").await.unwrap().image_count, 1);
    // Without the key, the second upload is a conflict.
    assert!(c
        .images()
        .upload(&ds.id, &f, UploadOptions::default())
        .await
        .unwrap_err()
        .is_conflict());
    assert!(matches!(
        c.images()
            .upload(
                &ds.id,
                &f,
                UploadOptions::default().idempotency_key("bad key")
            )
            .await,
        Err(Error::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn annotations_get_save_delete() {
    let s = common::start().await;
    let c = &s.client;
    let tmp = common::tempdir();
    let ds = c
        .projects()
        .create("ann", CreateProject::default())
        .await
        .unwrap();
    let f = tmp.path().join("a.png");
    common::write_image(&f, 200, 200, 3);
    let img = c
        .images()
        .upload(&ds.id, &f, UploadOptions::default())
        .await
        .unwrap();
    assert!(c.annotations().get(&img.id).await.unwrap().is_empty());

    let a = c.annotations();
    let list = vec![
        a.create_bbox("ann-1", "person", [100.0, 120.0, 50.0, 80.0])
            .with_confidence(0.95),
        a.create_polygon(
            "ann-2",
            "car",
            [[10.0, 20.0], [30.0, 40.0], [50.0, 60.0], [10.0, 20.0]],
        ),
        a.create_polyline(
            "ann-3",
            "road",
            [[0.0, 100.0], [50.0, 100.0], [100.0, 100.0]],
        ),
        a.create_keypoint("ann-4", "landmark", [150.0, 200.0])
            .with_attributes(vec![serde_json::json!({"visible": true})]),
    ];
    let saved = a.save(&img.id, &list).await.unwrap();
    assert_eq!(
        (
            saved.image_id.as_str(),
            saved.previous_count,
            saved.new_count
        ),
        (img.id.as_str(), 0, 4)
    );
    assert_eq!(saved.status, "new");
    let back = a.get(&img.id).await.unwrap();
    assert_eq!(back, list, "stored and returned bit for bit");
    assert_eq!(c.images().get(&img.id).await.unwrap().annotation_count, 4);

    let replaced = a
        .save(&img.id, &[Annotation::keypoint("k", "nose", [1.0, 2.0])])
        .await
        .unwrap();
    assert_eq!((replaced.previous_count, replaced.new_count), (4, 1));

    let del = a.delete(&img.id).await.unwrap();
    assert_eq!(
        (del.image_id.as_str(), del.deleted_count),
        (img.id.as_str(), 1)
    );
    assert!(a.get(&img.id).await.unwrap().is_empty());

    // 422 with field errors from the detail list
    let bad = Annotation::bbox("b", "x", [0.0, 0.0, 0.0, 5.0]);
    let e = a.save(&img.id, &[bad]).await.unwrap_err();
    let Error::Validation(v) = &e else {
        panic!("expected a validation error, got {e:?}")
    };
    assert_eq!(v.status, 422);
    assert!(!v.field_errors.is_empty());
    assert!(v.field_errors[0]
        .location()
        .starts_with("body.annotations.0"));
    assert!(e.request_id().is_some());

    assert!(a
        .get("00000000-0000-4000-8000-000000000000")
        .await
        .unwrap_err()
        .is_not_found());
}

#[tokio::test]
async fn batch_move_copy_update_delete() {
    let s = common::start().await;
    let c = &s.client;
    let tmp = common::tempdir();
    let ds = c
        .projects()
        .create("batch", CreateProject::default())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        let f = tmp.path().join(format!("{i}.png"));
        common::write_image(&f, 4, 4, i);
        ids.push(
            c.images()
                .upload(&ds.id, &f, UploadOptions::default())
                .await
                .unwrap()
                .id,
        );
    }
    let b = c.batch();

    let moved = b
        .move_images("batch", &ids[..2], "/sorted/cars")
        .await
        .unwrap();
    assert!(moved.success());
    assert_eq!(moved.succeeded.len(), 2);
    assert_eq!(moved.failed_count(), 0);
    assert_eq!(
        c.images().get(&ids[0]).await.unwrap().folder(),
        "/sorted/cars"
    );

    // partial failure does not raise
    let mixed = b
        .move_images("batch", &[ids[2].as_str(), "nope"], "/x")
        .await
        .unwrap();
    assert!(!mixed.success());
    assert_eq!(mixed.succeeded, vec![ids[2].clone()]);
    assert_eq!(mixed.failures[0].image_id, "nope");
    assert_eq!(mixed.failed_count(), 1);

    let copied = b
        .copy(
            "batch",
            &ids[..1],
            CopyOptions::to("/copies")
                .duplicate_handling(DuplicateHandling::Rename)
                .copy_annotations(true),
        )
        .await
        .unwrap();
    assert!(copied.success(), "{copied:?}");
    assert_eq!(c.datasets().get("batch").await.unwrap().image_count, 4);

    let updated = b
        .update(
            "batch",
            &ids,
            ImageUpdate::default()
                .status(Status::Complete)
                .display_name("d"),
        )
        .await
        .unwrap();
    assert_eq!(updated.succeeded.len(), 3);
    assert_eq!(c.images().get(&ids[1]).await.unwrap().status, "complete");
    // The copy made before kept the status it had.
    let by_status = c.datasets().get("batch").await.unwrap().status_counts;
    let expected = pictograph::StatusCounts {
        new: 1,
        complete: 3,
        ..Default::default()
    };
    assert_eq!(by_status, Some(expected));
    let e = b
        .update("batch", &ids, ImageUpdate::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Validation(_)), "empty update: {e:?}");

    let archived = b.delete("batch", &ids[..1], false).await.unwrap();
    assert!(archived.success());
    assert!(c.images().get(&ids[0]).await.unwrap().is_archived);
    let restored = b
        .update(
            "batch",
            &ids[..1],
            ImageUpdate::default().is_archived(false),
        )
        .await
        .unwrap();
    assert!(restored.success());
    let purged = b.delete("batch", &ids[..1], true).await.unwrap();
    assert!(purged.success());

    assert!(b
        .delete("batch", &["missing-1", "missing-2"], false)
        .await
        .unwrap_err()
        .is_not_found());
    assert!(b
        .move_images("no-such-ds", &ids, "/")
        .await
        .unwrap_err()
        .is_not_found());
}

#[tokio::test]
async fn errors_map_to_types() {
    let s = common::start().await;
    let c = &s.client;
    c.projects()
        .create("taken", CreateProject::default())
        .await
        .unwrap();

    // 404 with message, code and request id
    let e = c.datasets().get("missing").await.unwrap_err();
    let Error::NotFound(nf) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(nf.status, 404);
    assert!(nf.message.contains("missing"), "{}", nf.message);
    assert_eq!(nf.code.as_deref(), Some("not_found"));
    assert!(nf.request_id.is_some());
    let alias: &pictograph::NotFoundError = nf;
    assert!(alias.to_string().contains("status=404"));

    // 409
    let e = c
        .projects()
        .create("taken", CreateProject::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Conflict(_)), "{e:?}");
    assert_eq!(e.status(), Some(409));

    // 403 with a member key; the member can still read and create
    let member = s.client(&s.key("org-a", Role::Member).await);
    let e = member.projects().delete("taken").await.unwrap_err();
    assert!(matches!(e, Error::Forbidden(_)), "{e:?}");
    assert_eq!(e.status(), Some(403));
    member.datasets().get("taken").await.unwrap();

    // Another organisation sees nothing: 404, not 403
    let other = s.client(&s.key("org-b", Role::Owner).await);
    assert!(other
        .datasets()
        .get("taken")
        .await
        .unwrap_err()
        .is_not_found());

    // 422 field errors from a bad create
    let e = c
        .projects()
        .create(
            "bad-types",
            CreateProject::default().annotation_types(["circle"]),
        )
        .await
        .unwrap_err();
    assert_eq!(e.field_errors()[0].location(), "body.annotation_types");

    // 401 with a bad key: typed, and the README's name exists
    let bad = s.client("pk_live_not_a_key");
    let e = bad.datasets().list(10).await.unwrap_err();
    match &e {
        Error::Auth(a) => {
            let a: &pictograph::AuthenticationError = a;
            assert_eq!(a.status, 401);
        }
        other => panic!("{other:?}"),
    }

    // No server at all: a transport error after retries
    let dead = pictograph::Client::builder("k")
        .base_url("http://127.0.0.1:9")
        .max_retries(1)
        .retry_backoff(
            std::time::Duration::from_millis(1),
            std::time::Duration::from_millis(1),
        )
        .build()
        .unwrap();
    assert!(matches!(
        dead.datasets().list(1).await,
        Err(Error::Transport(_))
    ));
}

#[tokio::test]
async fn an_oversized_upload_is_a_413_api_error() {
    let s = common::start_with(|c| c.max_upload_bytes = 2000).await;
    let c = &s.client;
    let tmp = common::tempdir();
    let ds = c
        .projects()
        .create("big", CreateProject::default())
        .await
        .unwrap();
    let f = tmp.path().join("big.bmp");
    common::write_image(&f, 64, 64, 9);
    assert!(std::fs::metadata(&f).unwrap().len() > 2000);
    let e = c
        .images()
        .upload(&ds.id, &f, UploadOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Api(ref a) if a.status == 413), "{e:?}");
    assert_eq!(c.datasets().get("big").await.unwrap().image_count, 0);
}
