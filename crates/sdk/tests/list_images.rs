//! `datasets().list_images` and `list_page` against the real server.

mod common;

use pictograph::{ImageListOptions, Status, UploadOptions};
use pictograph_server::auth::Role;

#[tokio::test]
async fn list_images_filters_and_pages() {
    let server = common::start().await;
    let key = server.key("org", Role::Owner).await;
    let client = server.client(&key);
    let project = client
        .projects()
        .create("zoo", Default::default())
        .await
        .unwrap();
    let dir = common::tempdir();
    let mut ids = Vec::new();
    for (i, folder) in ["/cats", "/cats/big", "/dogs"].iter().enumerate() {
        let path = dir.path().join(format!("p{i}.png"));
        common::write_image(&path, 6, 5, i as u8);
        let opts = UploadOptions {
            folder_path: Some(folder.to_string()),
            ..Default::default()
        };
        ids.push(
            client
                .images()
                .upload(&project.id, &path, opts)
                .await
                .unwrap()
                .id,
        );
    }
    client
        .batch()
        .update(
            "zoo",
            &ids[2..],
            pictograph::ImageUpdate {
                status: Some(Status::Review),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let all = client
        .datasets()
        .list_images("zoo", ImageListOptions::default())
        .await
        .unwrap();
    assert_eq!(all.total, 3);
    assert!(!all.has_more);
    let names = |p: &pictograph::ImagePage| {
        p.images
            .iter()
            .map(|i| i.filename.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&all), ["p0.png", "p1.png", "p2.png"]);

    let cats = ImageListOptions {
        folder: Some("/cats".into()),
        recursive: true,
        ..Default::default()
    };
    assert_eq!(
        names(&client.datasets().list_images("zoo", cats).await.unwrap()),
        ["p0.png", "p1.png"]
    );
    let review = ImageListOptions {
        status: Some(Status::Review),
        ..Default::default()
    };
    assert_eq!(
        names(
            &client
                .datasets()
                .list_images(&project.id, review)
                .await
                .unwrap()
        ),
        ["p2.png"]
    );
    let first = ImageListOptions {
        limit: Some(2),
        ..Default::default()
    };
    let page = client.datasets().list_images("zoo", first).await.unwrap();
    assert_eq!((page.images.len(), page.has_more), (2, true));
    assert_eq!(page.after, None);
    // The next page by key: it starts after the last image of this one, and says so.
    let last = page.images[1].id.clone();
    let next = ImageListOptions {
        limit: Some(2),
        after: Some(last.clone()),
        ..Default::default()
    };
    let rest = client.datasets().list_images("zoo", next).await.unwrap();
    assert_eq!(names(&rest), ["p2.png"]);
    assert_eq!((rest.has_more, rest.total), (false, 3));
    assert_eq!(rest.after, Some(last));
    // Walked a page of one at a time: pages after the first go by key.
    let mut pages = client
        .datasets()
        .image_pages("zoo", ImageListOptions::default());
    let mut walked = Vec::new();
    while let Some(page) = pages.next_page(1).await.unwrap() {
        assert_eq!(page.after.is_some(), !walked.is_empty());
        walked.extend(page.images.iter().map(|i| i.filename.clone()));
    }
    assert_eq!(walked, ["p0.png", "p1.png", "p2.png"]);

    // By file name: the same name in two folders, or in one of them.
    let again = dir.path().join("p0.png");
    let opts = UploadOptions {
        folder_path: Some("/dogs".into()),
        ..Default::default()
    };
    let dog = client.images().upload(&project.id, &again, opts).await;
    let named = |folder: Option<&str>| ImageListOptions {
        filename: Some("p0.png".into()),
        folder: folder.map(str::to_string),
        ..Default::default()
    };
    let both = client.datasets().list_images("zoo", named(None)).await;
    let both = both.unwrap();
    assert_eq!(both.total, 2);
    assert_eq!(
        both.images
            .iter()
            .map(|i| i.id.as_str())
            .collect::<Vec<_>>(),
        [ids[0].as_str(), dog.unwrap().id.as_str()]
    );
    let dogs = client
        .datasets()
        .list_images("zoo", named(Some("/dogs")))
        .await;
    assert_eq!(dogs.unwrap().total, 1);

    let err = client
        .datasets()
        .list_images("nope", ImageListOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, pictograph::Error::NotFound(_)), "{err:?}");

    client
        .projects()
        .create("zoo-2", Default::default())
        .await
        .unwrap();
    let second = client.datasets().list_page(1, 1).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].name, "zoo-2");
}

/// The blocking client walks a listing page by page as the async one does: the first page
/// by offset, the next ones by key, with the same filters.
#[test]
fn the_blocking_client_walks_image_pages() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(common::start());
    let client = pictograph::blocking::Client::wrap(server.client.clone()).unwrap();
    let project = client.projects().create("zoo", Default::default()).unwrap();
    let dir = common::tempdir();
    for (i, folder) in ["/cats", "/cats/big", "/dogs", "/cats"].iter().enumerate() {
        let path = dir.path().join(format!("p{i}.png"));
        common::write_image(&path, 6, 5, i as u8);
        client
            .images()
            .upload(
                &project.id,
                &path,
                UploadOptions::default().folder_path(*folder),
            )
            .unwrap();
    }

    // Every page of one image; pages after the first start after the last image seen.
    let mut pages = client
        .datasets()
        .image_pages("zoo", ImageListOptions::default());
    let mut walked = Vec::new();
    let mut afters = Vec::new();
    while let Some(page) = pages.next_page(1).unwrap() {
        assert_eq!(page.total, 4);
        afters.push(page.after.clone());
        walked.extend(page.images.iter().map(|i| i.filename.clone()));
    }
    assert_eq!(walked, ["p0.png", "p1.png", "p2.png", "p3.png"]);
    assert_eq!(afters[0], None, "the first page goes by offset");
    assert!(afters[1..].iter().all(Option::is_some), "{afters:?}");
    assert!(
        pages.next_page(1).unwrap().is_none(),
        "an ended walk stays ended"
    );

    // The same pages as the async client's, filtered and from an offset.
    let cats = ImageListOptions {
        folder: Some("/cats".into()),
        recursive: true,
        offset: 1,
        ..Default::default()
    };
    let mut blocking = Vec::new();
    let mut pages = client.datasets().image_pages("zoo", cats.clone());
    while let Some(page) = pages.next_page(2).unwrap() {
        blocking.push(page.images.iter().map(|i| i.id.clone()).collect::<Vec<_>>());
    }
    let asynchronous = rt.block_on(async {
        let mut out = Vec::new();
        let mut pages = server.client.datasets().image_pages("zoo", cats);
        while let Some(page) = pages.next_page(2).await.unwrap() {
            out.push(page.images.iter().map(|i| i.id.clone()).collect::<Vec<_>>());
        }
        out
    });
    assert_eq!(blocking, asynchronous);
    assert_eq!(blocking.iter().map(Vec::len).collect::<Vec<_>>(), [2]);

    // An unknown dataset fails on the first page.
    let err = client
        .datasets()
        .image_pages("nope", ImageListOptions::default())
        .next_page(10)
        .unwrap_err();
    assert!(matches!(err, pictograph::Error::NotFound(_)), "{err:?}");
    drop(client);
    rt.block_on(server.app.stop()).unwrap();
}
