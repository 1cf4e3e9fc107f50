//! The blocking client's exports and imports against the real server, from plain threads:
//! a dataset exported into a folder in every format and imported back into new datasets
//! with the same images and annotations, and the server's export jobs started, polled,
//! listed, downloaded as an archive, cancelled and deleted.

mod common;

use pictograph::blocking::Client;
use pictograph::formats::{
    ExportJob, ExportOptions, Format, ImportOptions, ServerExportOptions, StoppedExport,
};
use pictograph::{
    Annotation, CreateProject, Error, ImageListOptions, ImageUpdate, Status, UploadOptions,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The real server on a runtime of the test's own, and a blocking client for it: the test
/// body blocks as a script would.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    server: common::Server,
    client: Client,
}

impl Fixture {
    fn start() -> Fixture {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let server = runtime.block_on(common::start());
        let client = Client::wrap(server.client.clone()).unwrap();
        Fixture {
            runtime,
            server,
            client,
        }
    }

    fn stop(self) {
        let Fixture {
            runtime,
            server,
            client,
        } = self;
        drop(client);
        runtime.block_on(server.app.stop()).unwrap();
    }
}

/// The manifest a local export keeps in its folder.
const MANIFEST: &str = ".pictograph-export";

/// Creates `name` with three images (two at the root, one in `/sub`) and three boxes: two on
/// `a.png`, one on `sub/c.png`, none on `b.png`.
fn seed(client: &Client, dir: &Path, name: &str) {
    let ds = client
        .projects()
        .create(name, CreateProject::default())
        .unwrap();
    let boxes: [(&str, &str, Vec<Annotation>); 3] = [
        (
            "/",
            "a.png",
            vec![
                Annotation::bbox("a1", "car", [2.0, 3.0, 10.0, 6.0]),
                Annotation::bbox("a2", "sign", [20.0, 4.0, 8.0, 8.0]),
            ],
        ),
        ("/", "b.png", vec![]),
        (
            "/sub",
            "c.png",
            vec![Annotation::bbox("c1", "car", [1.0, 1.0, 4.0, 2.0])],
        ),
    ];
    for (i, (folder, file, annotations)) in boxes.into_iter().enumerate() {
        let path = dir.join(format!("{name}-up/{i}/{file}"));
        common::write_image(&path, 40, 20, i as u8);
        let image = client
            .images()
            .upload(&ds.id, &path, UploadOptions::default().folder_path(folder))
            .unwrap();
        if !annotations.is_empty() {
            client.annotations().save(&image.id, &annotations).unwrap();
        }
    }
}

/// Every image of `dataset` as `folder/filename` → its boxes as `(class, [x, y, w, h])`,
/// sorted.
fn contents(client: &Client, dataset: &str) -> BTreeMap<String, Vec<(String, [f64; 4])>> {
    let page = client
        .datasets()
        .list_images(
            dataset,
            ImageListOptions {
                limit: Some(100),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(page.total as usize, page.images.len(), "one page holds all");
    let mut out = BTreeMap::new();
    for image in &page.images {
        let mut boxes: Vec<(String, [f64; 4])> = client
            .annotations()
            .get(&image.id)
            .unwrap()
            .into_iter()
            .map(|a| match a {
                Annotation::BBox {
                    name, bounding_box, ..
                } => (
                    name,
                    [
                        bounding_box.x,
                        bounding_box.y,
                        bounding_box.w,
                        bounding_box.h,
                    ],
                ),
                other => panic!("only boxes were exported: {other:?}"),
            })
            .collect();
        boxes.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(boxes.len() as u64, image.annotation_count);
        let key = format!(
            "{}/{}",
            image.folder().trim_end_matches('/'),
            image.filename
        );
        out.insert(key, boxes);
    }
    out
}

/// Equal images, and equal boxes within `tol` (YOLO stores coordinates normalised).
fn assert_same_contents(
    a: &BTreeMap<String, Vec<(String, [f64; 4])>>,
    b: &BTreeMap<String, Vec<(String, [f64; 4])>>,
    what: &str,
) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{what}"
    );
    for (image, boxes) in a {
        let other = &b[image];
        assert_eq!(boxes.len(), other.len(), "{what}: {image}");
        for ((name, bbox), (other_name, other_bbox)) in boxes.iter().zip(other) {
            assert_eq!(name, other_name, "{what}: {image}");
            for (x, y) in bbox.iter().zip(other_bbox) {
                assert!(
                    (x - y).abs() < 1e-6,
                    "{what}: {image}: {bbox:?} != {other_bbox:?}"
                );
            }
        }
    }
}

/// A local export in each format, imported back into a new dataset: the same images in the
/// same folders with the same boxes; a second import changes nothing; what the async calls
/// refuse is refused here too.
#[test]
fn the_blocking_client_exports_and_imports_folders_in_every_format() {
    let f = Fixture::start();
    let c = &f.client;
    let tmp = common::tempdir();
    seed(c, tmp.path(), "cars");
    let original = contents(c, "cars");
    assert_eq!(original.len(), 3);
    assert_eq!(original.values().map(Vec::len).sum::<usize>(), 3);

    for format in Format::ALL {
        let name = format.as_str();
        let out = tmp.path().join(format!("out-{name}"));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = calls.clone();
        let exported = c
            .export_dataset(
                "cars",
                format,
                &out,
                ExportOptions {
                    max_workers: 2,
                    progress: Some(Arc::new(move |done, total, _| {
                        seen.lock().unwrap().push((done, total));
                    })),
                    ..ExportOptions::default()
                },
            )
            .unwrap();
        assert_eq!(
            (exported.images, exported.annotations),
            (3, 3),
            "{name}: {exported:?}"
        );
        assert_eq!(
            (exported.images_downloaded, exported.images_present),
            (3, 0),
            "{name}"
        );
        assert!(exported.warnings.is_empty(), "{name}: {exported:?}");
        assert_eq!(exported.output_dir, out);
        assert_eq!(*calls.lock().unwrap(), [(1, 3), (2, 3), (3, 3)], "{name}");

        let files = common::files_under(&out);
        assert!(files.contains(&MANIFEST.to_string()), "{name}: {files:?}");
        let expected: &[&str] = match format {
            Format::Coco => &[
                MANIFEST,
                "annotations/instances.json",
                "images/a.png",
                "images/b.png",
                "images/sub/c.png",
            ],
            Format::Yolo => &[
                MANIFEST,
                "data.yaml",
                "images/train/a.png",
                "images/train/b.png",
                "images/train/sub/c.png",
                "labels/train/a.txt",
                "labels/train/b.txt",
                "labels/train/sub/c.txt",
            ],
            _ => &[],
        };
        if expected.is_empty() {
            // VOC and pictograph: their index files and one image file per image.
            let index: &[&str] = if format == Format::Voc {
                &["ImageSets/Main/trainval.txt"]
            } else {
                &["annotations.jsonl", "dataset.json"]
            };
            for file in index {
                assert!(files.contains(&file.to_string()), "{name}: {files:?}");
            }
            let images = files.iter().filter(|f| f.ends_with(".png")).count();
            assert_eq!(images, 3, "{name}: {files:?}");
        } else {
            assert_eq!(files, expected, "{name}");
        }
        if format == Format::Yolo {
            let label = std::fs::read_to_string(out.join("labels/train/a.txt")).unwrap();
            assert_eq!(label.lines().count(), 2, "{label}");
            let empty = std::fs::read_to_string(out.join("labels/train/b.txt")).unwrap();
            assert!(empty.trim().is_empty(), "{empty}");
        }

        // Imported back into a dataset the import creates.
        let copy = format!("cars-{name}");
        let imported = c
            .import_folder(
                &out,
                format,
                &copy,
                ImportOptions {
                    create_if_missing: true,
                    max_workers: 2,
                    ..ImportOptions::default()
                },
            )
            .unwrap();
        assert!(imported.success(), "{name}: {:?}", imported.failures);
        assert!(imported.created, "{name}");
        assert_eq!(
            (imported.images, imported.uploaded, imported.existing),
            (3, 3, 0),
            "{name}: {imported:?}"
        );
        assert_eq!(imported.annotations, 3, "{name}: {imported:?}");
        let ds = c.datasets().get(&copy).unwrap();
        assert_eq!(imported.dataset_id, ds.id);
        assert_eq!(ds.image_count, 3, "{name}");
        assert_same_contents(&original, &contents(c, &copy), name);

        // A second import finds everything there and changes nothing.
        let again = c
            .import_folder(&out, format, &copy, ImportOptions::default())
            .unwrap();
        assert!(!again.created, "{name}");
        assert_eq!(
            (again.uploaded, again.existing, again.annotations_saved),
            (0, 3, 0),
            "{name}: {again:?}"
        );
        assert_eq!(c.datasets().get(&copy).unwrap().image_count, 3, "{name}");
    }

    // A re-export into the same folder fetches nothing and removes nothing.
    let out = tmp.path().join("out-yolo");
    let again = c
        .export_dataset("cars", Format::Yolo, &out, ExportOptions::default())
        .unwrap();
    assert_eq!(
        (
            again.images_present,
            again.images_downloaded,
            again.files_removed
        ),
        (3, 0, 0)
    );

    // Errors come through as the async calls answer them: a missing dataset is not created
    // unless asked, a folder in another format is refused before anything is uploaded, and
    // a folder of someone else's files is not exported into.
    let e = c
        .import_folder(&out, Format::Yolo, "absent", ImportOptions::default())
        .unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    let e = c
        .import_folder(
            &out,
            Format::Coco,
            "never",
            ImportOptions {
                create_if_missing: true,
                ..ImportOptions::default()
            },
        )
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
    assert!(c.datasets().get("never").unwrap_err().is_not_found());
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::write(theirs.join("notes.txt"), b"mine").unwrap();
    let e = c
        .export_dataset("cars", Format::Coco, &theirs, ExportOptions::default())
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
    assert_eq!(common::files_under(&theirs), ["notes.txt"]);
    let e = c
        .export_dataset(
            "absent",
            Format::Coco,
            tmp.path().join("none"),
            ExportOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    f.stop();
}

/// The names of the files in a tar archive (ustar headers, with pax `path` records for long
/// names), in archive order.
fn tar_entries(archive: &[u8]) -> Vec<String> {
    fn field(bytes: &[u8]) -> String {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    }
    let mut names = Vec::new();
    let mut long_name: Option<String> = None;
    let mut at = 0;
    while at + 512 <= archive.len() {
        let header = &archive[at..at + 512];
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let size = u64::from_str_radix(field(&header[124..136]).trim(), 8).unwrap() as usize;
        let body = &archive[at + 512..at + 512 + size];
        match header[156] {
            b'x' => {
                // Records `<len> <key>=<value>\n`.
                let text = String::from_utf8_lossy(body);
                for record in text.split_terminator('\n') {
                    if let Some((_, kv)) = record.split_once(' ') {
                        if let Some(path) = kv.strip_prefix("path=") {
                            long_name = Some(path.to_string());
                        }
                    }
                }
            }
            b'0' | 0 => {
                let name = long_name.take().unwrap_or_else(|| {
                    let (prefix, name) = (field(&header[345..500]), field(&header[0..100]));
                    if prefix.is_empty() {
                        name
                    } else {
                        format!("{prefix}/{name}")
                    }
                });
                names.push(name);
            }
            _ => {}
        }
        at += 512 + size.div_ceil(512) * 512;
    }
    names
}

/// Polls a job until it has ended (a few seconds at most).
fn wait(client: &Client, job: ExportJob) -> ExportJob {
    let mut job = job;
    for _ in 0..300 {
        if !job.pending() {
            return job;
        }
        std::thread::sleep(Duration::from_millis(20));
        job = client.server_export(&job.dataset_id, &job.id).unwrap();
    }
    panic!("the job did not end: {job:?}");
}

/// Server export jobs from a plain thread: one started and polled until complete (with a
/// status filter), one run by `export_archive` with its archive saved and checked, both
/// listed newest first; a queued job cancelled, an ended one deleted with its archive.
#[test]
fn the_blocking_client_runs_server_export_jobs() {
    let f = Fixture::start();
    let c = &f.client;
    let tmp = common::tempdir();
    seed(c, tmp.path(), "jobs");
    let ds = c.datasets().get("jobs").unwrap();
    let a = c
        .datasets()
        .list_images("jobs", ImageListOptions::default())
        .unwrap()
        .images
        .into_iter()
        .find(|i| i.filename == "a.png")
        .unwrap();
    c.batch()
        .update(
            "jobs",
            &[a.id.as_str()],
            ImageUpdate::default().status(Status::Complete),
        )
        .unwrap();

    // Started, then polled until it ends: only the complete image, with its two boxes.
    let started = c
        .start_server_export(
            "jobs",
            Format::Coco,
            &ServerExportOptions {
                status: Some(Status::Complete),
                ..ServerExportOptions::default()
            },
        )
        .unwrap();
    assert_eq!(
        (started.format.as_str(), started.dataset_id.as_str()),
        ("coco", ds.id.as_str())
    );
    assert_eq!(started.dataset, "jobs");
    let coco = wait(c, started.clone());
    assert_eq!(coco.id, started.id);
    assert_eq!(coco.state, "complete", "{coco:?}");
    assert_eq!(
        (coco.images_total, coco.images_done, coco.annotations),
        (1, 1, 2),
        "{coco:?}"
    );
    assert!(coco.error.is_none() && coco.warnings.is_empty(), "{coco:?}");
    let archive = coco.archive.clone().expect("a complete job has an archive");
    assert_eq!(archive.format, "tar");
    assert!(archive.size > 0);
    assert!(coco.download_url.is_some());
    // The same job by the dataset's id as by its name.
    let by_id = c.server_export(&ds.id, &coco.id).unwrap();
    assert_eq!(
        (by_id.id, by_id.state, by_id.archive),
        (coco.id.clone(), coco.state.clone(), coco.archive.clone())
    );

    // Run to the end and its archive saved: every image and label file of the dataset.
    let dest = tmp.path().join("archives/yolo.tar");
    let polls = Arc::new(Mutex::new(Vec::new()));
    let seen = polls.clone();
    let yolo = c
        .export_archive(
            "jobs",
            Format::Yolo,
            &dest,
            ServerExportOptions {
                progress: Some(Arc::new(move |done, total, file| {
                    assert!(file.is_none());
                    seen.lock().unwrap().push((done, total));
                })),
                ..ServerExportOptions::default()
            },
        )
        .unwrap();
    assert_eq!(yolo.state, "complete", "{yolo:?}");
    assert_eq!(
        (yolo.images_total, yolo.images_done, yolo.annotations),
        (3, 3, 3),
        "{yolo:?}"
    );
    if let Some(&last) = polls.lock().unwrap().last() {
        assert_eq!(last, (3, 3));
    }
    let bytes = std::fs::read(&dest).unwrap();
    let saved = yolo.archive.clone().unwrap();
    assert_eq!(bytes.len() as u64, saved.size);
    let mut entries = tar_entries(&bytes);
    entries.sort();
    assert_eq!(
        entries,
        [
            "data.yaml",
            "images/train/a.png",
            "images/train/b.png",
            "images/train/sub/c.png",
            "labels/train/a.txt",
            "labels/train/b.txt",
            "labels/train/sub/c.txt",
        ]
    );
    assert_eq!(
        common::files_under(dest.parent().unwrap()),
        ["yolo.tar"],
        "no temporary file is left beside the archive"
    );

    // Listed newest first, a page at a time.
    let page = c.list_server_exports("jobs", 10, 0).unwrap();
    assert_eq!(page.total, 2);
    let ids: Vec<&str> = page.exports.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, [yolo.id.as_str(), coco.id.as_str()]);
    let second = c.list_server_exports("jobs", 1, 1).unwrap();
    assert_eq!((second.total, second.exports.len()), (2, 1));
    assert_eq!(second.exports[0].id, coco.id);

    // A job recorded but not started stays queued until cancelled.
    let queued = f
        .runtime
        .block_on(async {
            let store = &f.server.app.state.store;
            let org = store.ensure_org("org-a").await.unwrap().id;
            store
                .create_export_job(&org, &ds.id, "voc", None, false)
                .await
        })
        .unwrap();
    let listed = c.list_server_exports(&ds.id, 10, 0).unwrap();
    assert_eq!(listed.total, 3);
    assert_eq!(listed.exports[0].id, queued.id);
    assert!(listed.exports[0].pending(), "{:?}", listed.exports[0]);
    match c.stop_server_export("jobs", &queued.id).unwrap() {
        StoppedExport::Cancelled(job) => {
            assert_eq!(
                (job.id.as_str(), job.state.as_str()),
                (queued.id.as_str(), "cancelled")
            );
            assert!(job.archive.is_none());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.server_export("jobs", &queued.id).unwrap().state,
        "cancelled"
    );

    // An ended job is deleted with its archive, and is gone.
    match c.stop_server_export(&ds.id, &coco.id).unwrap() {
        StoppedExport::Deleted(job) => {
            assert_eq!(
                (job.id.as_str(), job.state.as_str()),
                (coco.id.as_str(), "complete")
            );
            assert!(job.download_url.is_none());
        }
        other => panic!("{other:?}"),
    }
    let e = c.server_export("jobs", &coco.id).unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    let e = c.stop_server_export("jobs", &coco.id).unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    let left: Vec<String> = c
        .list_server_exports("jobs", 10, 0)
        .unwrap()
        .exports
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(left, [queued.id.clone(), yolo.id.clone()]);

    // Refusals come through typed.
    let e = c.list_server_exports("jobs", 0, 0).unwrap_err();
    assert!(matches!(e, Error::Validation(_)), "{e:?}");
    let e = c
        .start_server_export("absent", Format::Coco, &ServerExportOptions::default())
        .unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    let e = c
        .export_archive(
            "absent",
            Format::Voc,
            tmp.path().join("absent.tar"),
            ServerExportOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    assert!(!tmp.path().join("absent.tar").exists());
    f.stop();
}
