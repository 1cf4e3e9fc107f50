//! Edge cases met using the SDK as a demanding user would: limits of 0 and 1, pages larger
//! than the server serves, names with `/`, unicode and spaces, empty datasets in every
//! download mode, errors carrying the server's detail and field errors, the API key never
//! shown by `Debug`, and the blocking client's iterator and drop.

mod common;

use pictograph::{CreateProject, DownloadMode, DownloadOptions, Error, Status, UploadOptions};

const NAMES: [&str; 4] = ["a b", "x/y", "é ü", "q?#%"];
const MODES: [DownloadMode; 3] = [
    DownloadMode::Full,
    DownloadMode::ImagesOnly,
    DownloadMode::AnnotationsOnly,
];

async fn with_datasets() -> common::Server {
    let s = common::start().await;
    for n in NAMES {
        s.client
            .projects()
            .create(n, CreateProject::default())
            .await
            .unwrap();
    }
    s
}

fn names(list: &[pictograph::Dataset]) -> Vec<&str> {
    list.iter().map(|d| d.name.as_str()).collect()
}

#[tokio::test]
async fn list_limits_of_zero_one_and_beyond_the_cap() {
    let s = with_datasets().await;
    let d = s.client.datasets();
    // A limit of 0 is an empty page, not one dataset.
    assert!(d.list(0).await.unwrap().is_empty());
    assert!(d.list_page(0, 1).await.unwrap().is_empty());
    assert!(s.client.projects().list(0, 0).await.unwrap().is_empty());
    assert_eq!(names(&d.list(1).await.unwrap()), ["a b"]);
    assert_eq!(names(&d.list_page(1, 3).await.unwrap()), ["q?#%"]);
    assert_eq!(names(&d.list(1000).await.unwrap()), NAMES, "oldest first");
    // Beyond the cap: the server's detail and field error come through.
    let e = d.list(1001).await.unwrap_err();
    let Error::Validation(v) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(v.message, "limit must be between 1 and 1000");
    assert_eq!(e.field_errors()[0].location(), "query.limit");

    // The pager: page sizes 0, 1 and beyond the cap; max_total 0 and 1.
    assert_eq!(names(&d.iter().page_size(1).all().await.unwrap()), NAMES);
    assert_eq!(d.iter().page_size(0).all().await.unwrap().len(), 4);
    assert_eq!(names(&d.iter().page_size(5000).all().await.unwrap()), NAMES);
    let p = s.client.projects();
    assert_eq!(p.iter().page_size(5000).all().await.unwrap().len(), 4);
    assert!(d.iter().max_total(0).all().await.unwrap().is_empty());
    assert_eq!(names(&d.iter().max_total(1).all().await.unwrap()), ["a b"]);
    let two = d.iter().page_size(1).max_total(2).all().await.unwrap();
    assert_eq!(names(&two), ["a b", "x/y"]);
}

#[tokio::test]
async fn odd_names_and_empty_datasets_download_in_every_mode() {
    let s = with_datasets().await;
    let c = &s.client;
    for n in NAMES {
        let ds = c.datasets().get(n).await.unwrap();
        assert_eq!(ds.name, n);
        assert_eq!(c.projects().get(n).await.unwrap().id, ds.id);
        for mode in MODES {
            for filter in [None, Some(Status::Complete)] {
                let tmp = common::tempdir();
                let out = tmp.path().join("out");
                let mut options = DownloadOptions::default().mode(mode);
                options.status_filter = filter;
                let r = c.datasets().download(n, &out, options).await.unwrap();
                assert_eq!(r.dataset_id, ds.id);
                assert_eq!(
                    (r.images_downloaded, r.annotations_downloaded),
                    (0, 0),
                    "{n} {mode:?}"
                );
                assert!(r.success() && out.is_dir());
                assert!(common::files_under(&out).is_empty());
            }
        }
    }

    // One image with spaces and unicode, in a folder with spaces, of the dataset `x/y`.
    let ds = c.datasets().get("x/y").await.unwrap();
    let tmp = common::tempdir();
    let file = tmp.path().join("my pic é.png");
    common::write_image(&file, 4, 4, 1);
    let up = UploadOptions::default().folder_path("/sub dir/é");
    let img = c.images().upload(&ds.id, &file, up.clone()).await.unwrap();
    assert_eq!(
        (img.filename.as_str(), img.folder()),
        ("my pic é.png", "/sub dir/é")
    );
    let e = c.images().upload(&ds.id, &file, up).await.unwrap_err();
    assert!(e.is_conflict(), "{e:?}");
    assert!(e.to_string().contains("already exists"), "{e}");
    let expected = [
        (
            DownloadMode::Full,
            vec!["sub dir/é/my pic é.png", "sub dir/é/my pic é.png.json"],
        ),
        (DownloadMode::ImagesOnly, vec!["sub dir/é/my pic é.png"]),
        (
            DownloadMode::AnnotationsOnly,
            vec!["sub dir/é/my pic é.png.json"],
        ),
    ];
    for (mode, files) in expected {
        let out = common::tempdir();
        let none = DownloadOptions::default()
            .mode(mode)
            .status_filter(Status::Review);
        let r = c
            .datasets()
            .download("x/y", out.path(), none)
            .await
            .unwrap();
        assert_eq!(r.images_downloaded + r.annotations_downloaded, 0);
        let new = DownloadOptions::default()
            .mode(mode)
            .status_filter(Status::New);
        let r = c.datasets().download("x/y", out.path(), new).await.unwrap();
        assert_eq!(r.images_downloaded + r.annotations_downloaded, files.len());
        assert_eq!(common::files_under(out.path()), files);
    }
}

#[tokio::test]
async fn debug_output_never_shows_the_api_key() {
    let s = common::start().await;
    let secret = "pk_live_do_not_print_me";
    let builder = pictograph::Client::builder(secret).base_url(s.base_url());
    let shown = format!("{builder:?}");
    assert!(!shown.contains(secret), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
    let client = builder.build().unwrap();
    assert!(!format!("{client:?}").contains(secret));
    let e = client.datasets().list(1).await.unwrap_err();
    assert!(matches!(e, Error::Auth(_)), "{e:?}");
    assert!(!format!("{e:?}{e}").contains(secret));
    assert!(!format!("{:?}", s.client).contains(&s.key));
}

#[test]
fn blocking_client_iterates_and_may_be_dropped_inside_an_async_task() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = rt.block_on(with_datasets());
    let client = pictograph::blocking::Client::wrap(s.client.clone()).unwrap();
    assert!(!format!("{client:?}").contains(&s.key));
    let all: Vec<String> = client
        .datasets()
        .iter()
        .page_size(1)
        .map(|d| d.unwrap().name)
        .collect();
    assert_eq!(all, NAMES);
    assert_eq!(
        client.datasets().iter().max_total(2).all().unwrap().len(),
        2
    );
    assert!(client
        .datasets()
        .iter()
        .max_total(0)
        .all()
        .unwrap()
        .is_empty());
    assert_eq!(
        client.projects().iter().first().unwrap().unwrap().name,
        "a b"
    );
    assert!(client.datasets().list(0).unwrap().is_empty());
    // A pager kept in a variable outlives the `datasets()` or `projects()` it came from (it
    // used to borrow that temporary, so only a chain in one statement compiled).
    let mut datasets = client.datasets().iter().page_size(3);
    assert_eq!(datasets.next().unwrap().unwrap().name, NAMES[0]);
    assert_eq!(datasets.count(), NAMES.len() - 1);
    let mut projects = client.projects().iter();
    assert_eq!(projects.next().unwrap().unwrap().name, NAMES[0]);
    // Dropping the last clone inside an async task used to panic ("Cannot drop a runtime
    // in a context where blocking is not allowed").
    let clone = client.clone();
    drop(client);
    rt.block_on(async move { drop(clone) });
}
