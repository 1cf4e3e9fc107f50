//! Exports of a dataset into the formats training code reads (COCO, YOLO, Pascal VOC and the
//! lossless "pictograph" JSON Lines), and imports of COCO, YOLO, VOC (and pictograph)
//! folders into a dataset.
//!
//! [`export_dataset`] streams: it lists the images a page at a time, fetches each image's
//! bytes and annotations and hands them to the format's writer one image at a time, so
//! memory stays flat whatever the dataset size. What the format cannot hold is reported as
//! [`Warning`]s (one per kind, with its count), never dropped silently.
//!
//! The output folder keeps a manifest of what the export wrote (`.pictograph-export`), so
//! an export into a folder that holds an earlier one leaves exactly the current dataset:
//! files the earlier export wrote and this one does not (images removed from the dataset
//! since, their label files) are removed, and files someone else put there never are. A
//! non-empty folder without a manifest is refused unless
//! [`ExportOptions::allow_non_empty`]. A crash midway leaves the manifest marked as being
//! written and the format's index files (`data.yaml`, the COCO JSON, …) absent, so the folder
//! never looks complete; the importers refuse it, and the next export cleans it up.
//!
//! [`export_archive`] has the server build the export instead (an export job) and saves the
//! resulting tar archive; [`start_server_export`] and [`server_export`] are its two calls.
//! [`list_server_exports`] lists a dataset's jobs and [`stop_server_export`] cancels or
//! deletes one.
//!
//! [`import_folder`] is idempotent: images already in the dataset (same folder and name) are
//! not uploaded again, and an image whose annotations already equal the folder's is left
//! alone, so a re-run changes nothing. It reads the folder a chunk of images at a time and
//! looks each image up in the dataset by name, so memory stays flat whatever the size of the
//! folder or of the dataset.

use crate::annotations::Annotation;
use crate::batch::ImageUpdate;
use crate::client::Client;
use crate::datasets::{ImageListOptions, Progress};
use crate::error::{Error, Result};
use crate::http::{field, segment, Req};
use crate::images::UploadOptions;
use crate::models::{DatasetClass, Image, Status};
use crate::projects::{CreateProject, UpdateProject};
use crate::workflows::UploadFailure;
use futures::StreamExt;
use pictograph_core::names;
use pictograph_formats::output::{OutputDir, OutputError};
use pictograph_formats::{
    ExportOptions as WriterOptions, ImageInfo, ImportItem, ImportReader, Placement,
};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub use pictograph_formats::{Format, Warning};

/// Images listed per request while exporting or importing.
const PAGE: usize = 500;

/// Options of [`export_dataset`].
#[derive(Clone, Default)]
pub struct ExportOptions {
    /// Only images with this status.
    pub status: Option<Status>,
    /// YOLO and VOC: write polygons as their bounding boxes instead of dropping them.
    pub polygons_as_boxes: bool,
    /// Images fetched at once (default 8).
    pub max_workers: usize,
    /// `(done, total, file)` after each image.
    pub progress: Option<Progress>,
    /// Write into a folder that is not empty and holds no earlier export (by default such a
    /// folder is refused with [`Error::InvalidArgument`]). Its files are kept, except any at
    /// a path the export writes; only files an export wrote are ever removed.
    pub allow_non_empty: bool,
}

impl std::fmt::Debug for ExportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportOptions")
            .field("status", &self.status)
            .field("polygons_as_boxes", &self.polygons_as_boxes)
            .field("max_workers", &self.max_workers)
            .field("allow_non_empty", &self.allow_non_empty)
            .finish()
    }
}

/// What [`export_dataset`] wrote.
#[derive(Debug, Clone, Default)]
pub struct ExportReport {
    /// The dataset's id.
    pub dataset_id: String,
    /// The output folder.
    pub output_dir: PathBuf,
    /// Images exported.
    pub images: usize,
    /// Image files fetched now.
    pub images_downloaded: usize,
    /// Image files already present with the right size (a re-run).
    pub images_present: usize,
    /// Annotations read from the dataset.
    pub annotations: usize,
    /// Files of an earlier export into the folder that this one no longer has, removed.
    pub files_removed: usize,
    /// What the format could not hold.
    pub warnings: Vec<Warning>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

/// Exports the dataset `dataset` (name or id) in `format` into `out_dir`: image files plus the
/// format's annotation files, in the layout the format's readers expect. A re-run into the
/// same folder fetches only the image files missing there, and removes the files of the
/// earlier export that this one no longer has (see the module docs); a non-empty folder that
/// holds no export is refused ([`Error::InvalidArgument`]) unless
/// [`ExportOptions::allow_non_empty`]. No two images share a file: one
/// whose file or label file an earlier image (in listing order) has, or whose name a folder
/// has, is numbered (`a-2.png`), the same way on every run and in the server's archive, and
/// counted in the `renamed_to_avoid_collision` warning.
pub async fn export_dataset(
    client: &Client,
    dataset: &str,
    format: Format,
    out_dir: impl AsRef<Path>,
    options: ExportOptions,
) -> Result<ExportReport> {
    let root = out_dir.as_ref().to_path_buf();
    let ds = client.datasets().get(dataset).await?;
    let mut out =
        OutputDir::open(&root, format, &ds.name, options.allow_non_empty).map_err(|e| match e {
            OutputError::NotEmpty(_) | OutputError::BadManifest(..) => {
                Error::InvalidArgument(e.to_string())
            }
            OutputError::Io(path, e) => Error::io(path, e),
        })?;
    let mut writer = pictograph_formats::writer(
        format,
        WriterOptions {
            dataset: ds.name.clone(),
            classes: ds.classes.iter().map(|c| c.name.clone()).collect(),
            polygons_as_boxes: options.polygons_as_boxes,
        },
    )
    .map_err(io_err(&root))?;
    let mut report = ExportReport {
        dataset_id: ds.id.clone(),
        output_dir: root.clone(),
        ..ExportReport::default()
    };
    let workers = options.max_workers.max(1);
    let mut pages = client.datasets().image_pages(
        &ds.id,
        ImageListOptions {
            status: options.status,
            ..ImageListOptions::default()
        },
    );
    while let Some(page) = pages.next_page(PAGE).await? {
        let total = page.total as usize;
        // Placed in the listing's order (the server's export jobs use the same), so an image
        // whose name an earlier one took is numbered the same way on every run.
        let jobs: Vec<(Image, ImageInfo, Placement)> = page
            .images
            .into_iter()
            .map(|image| {
                let info = ImageInfo {
                    folder: image.folder().to_string(),
                    filename: image.filename.clone(),
                    width: image.width.unwrap_or(0),
                    height: image.height.unwrap_or(0),
                    status: image.status.clone(),
                };
                let place = writer.place(&info);
                (image, info, place)
            })
            .collect();
        // Listed in the folder's manifest before anything is written, partial downloads too.
        for (_, _, place) in &jobs {
            let dest = out
                .claim(&place.path)
                .map_err(io_err(&root.join(&place.path)))?;
            if let Some(part) = crate::http::part_path(&dest).file_name() {
                let part = part.to_string_lossy();
                let rel = match place.path.rsplit_once('/') {
                    Some((dir, _)) => format!("{dir}/{part}"),
                    None => part.into_owned(),
                };
                out.scratch(&rel).map_err(io_err(&root))?;
            }
        }
        let fetched = futures::stream::iter(jobs)
            .map(|(image, info, place)| {
                let dest = root.join(&place.path);
                let client = client.clone();
                async move {
                    let present = tokio::fs::metadata(&dest)
                        .await
                        .is_ok_and(|m| m.is_file() && m.len() == image.file_size);
                    if !present {
                        client.images().download(&image.id, &dest).await?;
                    }
                    let annotations = if image.annotation_count > 0 {
                        client.annotations().get(&image.id).await?
                    } else {
                        Vec::new()
                    };
                    Ok::<_, Error>((info, place, present, annotations))
                }
            })
            .buffered(workers);
        futures::pin_mut!(fetched);
        while let Some(item) = fetched.next().await {
            let (info, place, present, annotations) = item?;
            let values: Vec<Value> = annotations
                .iter()
                .map(|a| serde_json::to_value(a).map_err(|e| Error::Decode(e.to_string())))
                .collect::<Result<_>>()?;
            for file in writer.add(&info, &place, &values).map_err(io_err(&root))? {
                let dest = root.join(&file.path);
                out.write(&file.path, file.body).map_err(io_err(&dest))?;
            }
            report.images += 1;
            report.annotations += values.len();
            if present {
                report.images_present += 1;
            } else {
                report.images_downloaded += 1;
            }
            if let Some(p) = &options.progress {
                p(report.images, total.max(report.images), Some(&place.path));
            }
        }
    }
    let finished = writer.finish().map_err(io_err(&root))?;
    for file in finished.files {
        let dest = root.join(&file.path);
        out.write(&file.path, file.body).map_err(io_err(&dest))?;
    }
    report.files_removed = out.finish().map_err(io_err(&root))?;
    report.warnings = finished.warnings;
    Ok(report)
}

/// Options of [`import_folder`].
#[derive(Clone)]
pub struct ImportOptions {
    /// Create the dataset when it does not exist (with the folder's classes). Default false.
    pub create_if_missing: bool,
    /// Images handled at once (default 8).
    pub max_workers: usize,
    /// `(done, total, file)` after each image.
    pub progress: Option<Progress>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            create_if_missing: false,
            max_workers: 8,
            progress: None,
        }
    }
}

impl std::fmt::Debug for ImportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportOptions")
            .field("create_if_missing", &self.create_if_missing)
            .field("max_workers", &self.max_workers)
            .finish()
    }
}

/// What [`import_folder`] did.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// The dataset's id.
    pub dataset_id: String,
    /// The dataset was created by this import.
    pub created: bool,
    /// Classes added to the dataset's class set.
    pub classes_added: Vec<String>,
    /// Images in the folder.
    pub images: usize,
    /// Images uploaded now.
    pub uploaded: usize,
    /// Images already in the dataset (not uploaded again).
    pub existing: usize,
    /// Images whose annotation list was saved now.
    pub annotations_saved: usize,
    /// Images whose annotations already equalled the folder's.
    pub annotations_unchanged: usize,
    /// Annotations in the folder.
    pub annotations: usize,
    /// Images that failed.
    pub failures: Vec<UploadFailure>,
    /// What could not be read or held.
    pub warnings: Vec<Warning>,
}

impl ImportReport {
    /// True when no image failed.
    pub fn success(&self) -> bool {
        self.failures.is_empty()
    }
}

enum Outcome {
    Uploaded,
    Existing,
}

/// Images read from the folder and handled per round: memory holds one chunk of images and
/// their annotations, whatever the size of the folder or of the dataset.
const IMPORT_CHUNK: usize = 256;

/// Imports the folder `folder` in `format` into the dataset `dataset`: uploads its images
/// (each into the virtual folder of its sub-directory) and saves their annotations.
///
/// The folder is read 256 images at a time, and each image is looked up in the
/// dataset by folder and name, so neither the folder's nor the dataset's whole list is held.
///
/// [`Error::InvalidArgument`] when the folder is not in the format (before any upload);
/// [`Error::NotFound`] when the dataset is missing and `create_if_missing` is off. Per-image
/// failures go to [`ImportReport::failures`].
pub async fn import_folder(
    client: &Client,
    folder: impl AsRef<Path>,
    format: Format,
    dataset: &str,
    options: ImportOptions,
) -> Result<ImportReport> {
    let root = folder.as_ref().to_path_buf();
    let read_root = root.clone();
    let mut reads = read_in_chunks(format, read_root);
    let (declared, total) = match reads.recv().await {
        Some(Read::Opened { classes, total }) => (classes, total),
        Some(Read::Failed(e)) => return Err(Error::InvalidArgument(e)),
        _ => {
            return Err(Error::io(
                &root,
                std::io::Error::other("the reader stopped"),
            ))
        }
    };
    let mut report = ImportReport::default();
    let ds = match client.projects().get(dataset).await {
        Ok(d) => d,
        Err(Error::NotFound(_)) if options.create_if_missing => {
            let classes = declared.iter().map(DatasetClass::new).collect();
            match client
                .projects()
                .create(dataset, CreateProject::default().classes(classes))
                .await
            {
                Ok(d) => {
                    report.created = true;
                    d
                }
                Err(Error::Conflict(_)) => client.projects().get(dataset).await?,
                Err(e) => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    report.dataset_id = ds.id.clone();
    // An empty class set allows any name; a set that lacks some of the folder's classes
    // would refuse their annotations, so they are added (the declared ones now, those only
    // annotations use as their chunk comes). A set this import made is kept complete too.
    let keep_classes = report.created || !ds.classes.is_empty();
    let mut classes: Vec<String> = ds.classes.iter().map(|c| c.name.clone()).collect();
    if keep_classes {
        add_classes(client, &ds.name, &mut classes, declared, &mut report).await?;
    }

    let workers = options.max_workers.max(1);
    let mut done = 0;
    loop {
        let chunk = match reads.recv().await {
            Some(Read::Chunk(chunk)) => chunk,
            Some(Read::Done(warnings)) => {
                report.warnings = warnings;
                break;
            }
            Some(Read::Failed(e)) => return Err(Error::InvalidArgument(e)),
            _ => {
                return Err(Error::io(
                    &root,
                    std::io::Error::other("the reader stopped"),
                ))
            }
        };
        if keep_classes {
            let used = chunk.iter().flat_map(ImportItem::class_names).collect();
            add_classes(client, &ds.name, &mut classes, used, &mut report).await?;
        }
        report.images += chunk.len();
        report.annotations += chunk.iter().map(ImportItem::len).sum::<usize>();
        let look_up = !report.created;
        let mut results = futures::stream::iter(chunk)
            .map(|item| {
                let client = client.clone();
                let (dataset_id, dataset_name) = (ds.id.clone(), ds.name.clone());
                async move {
                    let outcome =
                        import_one(&client, (&dataset_id, &dataset_name), look_up, &item).await;
                    (item, outcome)
                }
            })
            .buffer_unordered(workers);
        while let Some((item, outcome)) = results.next().await {
            done += 1;
            match outcome {
                Ok((how, saved)) => {
                    match how {
                        Outcome::Uploaded => report.uploaded += 1,
                        Outcome::Existing => report.existing += 1,
                    }
                    if saved {
                        report.annotations_saved += 1;
                    } else {
                        report.annotations_unchanged += 1;
                    }
                }
                Err(e) => report.failures.push(UploadFailure {
                    path: item.path.clone(),
                    reason: e.to_string(),
                    retryable: e.is_transient(),
                }),
            }
            if let Some(p) = &options.progress {
                let rel = item.path.strip_prefix(&root).unwrap_or(&item.path);
                p(done, total.max(done), Some(&rel.to_string_lossy()));
            }
        }
    }
    Ok(report)
}

/// What the thread reading an import folder sends.
enum Read {
    /// The folder is open: its declared classes and how many images it lists.
    Opened { classes: Vec<String>, total: usize },
    /// The next images.
    Chunk(Vec<ImportItem>),
    /// Every image was read; what could not be read or held.
    Done(Vec<Warning>),
    /// The folder could not be read.
    Failed(String),
}

/// Reads the folder on a thread of its own, a chunk ahead of the importer at most (so what
/// the reader allocates comes and goes in one place, and memory holds two chunks).
fn read_in_chunks(format: Format, root: PathBuf) -> tokio::sync::mpsc::Receiver<Read> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    std::thread::spawn(move || {
        let mut reader = match ImportReader::open(format, &root) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.blocking_send(Read::Failed(e));
                return;
            }
        };
        let opened = Read::Opened {
            classes: reader.classes().to_vec(),
            total: reader.total(),
        };
        if tx.blocking_send(opened).is_err() {
            return;
        }
        loop {
            let read = match reader.next_chunk(IMPORT_CHUNK) {
                Ok(Some(chunk)) => Read::Chunk(chunk),
                Ok(None) => Read::Done(reader.warnings()),
                Err(e) => Read::Failed(e),
            };
            let last = !matches!(read, Read::Chunk(_));
            // The importer stopped listening (it failed): nothing more to read for.
            if tx.blocking_send(read).is_err() || last {
                return;
            }
        }
    });
    rx
}

/// Adds the names of `wanted` missing from the dataset's `classes` to its class set.
async fn add_classes(
    client: &Client,
    dataset_name: &str,
    classes: &mut Vec<String>,
    wanted: Vec<String>,
    report: &mut ImportReport,
) -> Result<()> {
    let mut missing: Vec<String> = Vec::new();
    for name in wanted {
        if !classes.contains(&name) && !missing.contains(&name) {
            missing.push(name);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let all: Vec<DatasetClass> = classes
        .iter()
        .chain(&missing)
        .map(DatasetClass::new)
        .collect();
    client
        .projects()
        .update(dataset_name, UpdateProject::default().classes(all))
        .await?;
    classes.extend(missing.iter().cloned());
    if !report.created {
        report.classes_added.extend(missing);
    }
    Ok(())
}

/// The live image named `filename` in the dataset's folder `folder`, if any (one indexed
/// look-up by path).
async fn find_image(
    client: &Client,
    dataset_id: &str,
    folder: &str,
    filename: &str,
) -> Result<Option<Image>> {
    let mut path = format!("/images/{}", segment(dataset_id));
    for part in folder.split('/').filter(|p| !p.is_empty()) {
        path.push('/');
        path.push_str(&segment(part));
    }
    path.push('/');
    path.push_str(&segment(filename));
    path.push_str("/metadata");
    match client.transport.json(Req::api(Method::GET, &path)).await {
        Ok(v) => {
            let image: Image = field(v, &["image", "data"])?;
            Ok((!image.is_archived).then_some(image))
        }
        Err(Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Equal lists, ignoring the enclosing box the server may add to polygons and polylines.
fn same_annotations(a: &[Annotation], b: &[Annotation]) -> bool {
    let strip = |list: &[Annotation]| -> Vec<Value> {
        list.iter()
            .map(|x| {
                let mut v = serde_json::to_value(x).unwrap_or(Value::Null);
                if v["type"] != "bbox" {
                    if let Some(o) = v.as_object_mut() {
                        o.remove("bounding_box");
                    }
                }
                v
            })
            .collect()
    };
    a.len() == b.len() && strip(a) == strip(b)
}

/// Uploads one image when missing and saves its annotations when they differ; answers
/// whether it was uploaded and whether the annotations were saved. With `look_up`, the
/// dataset is asked for the image first (off when this import created the dataset: a name
/// taken meanwhile is then found after the upload is refused).
async fn import_one(
    client: &Client,
    (dataset_id, dataset_name): (&str, &str),
    look_up: bool,
    item: &ImportItem,
) -> Result<(Outcome, bool)> {
    let folder = names::folder_path(&item.folder).map_err(|e| Error::InvalidArgument(e.0))?;
    let found = if look_up {
        find_image(client, dataset_id, &folder, &item.filename).await?
    } else {
        None
    };
    let (image, how) = match found {
        Some(image) => (image, Outcome::Existing),
        None => {
            let uploaded = client
                .images()
                .upload(
                    dataset_id,
                    &item.path,
                    UploadOptions::default()
                        .folder_path(folder.clone())
                        .filename(item.filename.clone()),
                )
                .await;
            match uploaded {
                Ok(image) => (image, Outcome::Uploaded),
                Err(Error::Conflict(e)) => {
                    let image = find_image(client, dataset_id, &folder, &item.filename)
                        .await?
                        .ok_or(Error::Conflict(e))?;
                    (image, Outcome::Existing)
                }
                Err(e) => return Err(e),
            }
        }
    };
    let (width, height) = (image.width.unwrap_or(0), image.height.unwrap_or(0));
    if matches!(item.labels, pictograph_formats::Labels::Normalized(_))
        && !item.is_empty()
        && (width == 0 || height == 0)
    {
        return Err(Error::InvalidArgument(format!(
            "the server does not know the size of {}, so its normalised labels cannot be placed",
            item.filename
        )));
    }
    let wanted: Vec<Annotation> = item
        .annotations(width, height)
        .into_iter()
        .map(|v| serde_json::from_value(v).map_err(|e| Error::InvalidArgument(e.to_string())))
        .collect::<Result<_>>()?;
    let current = if image.annotation_count > 0 {
        client.annotations().get(&image.id).await?
    } else {
        Vec::new()
    };
    let saved = if same_annotations(&current, &wanted) {
        false
    } else {
        client.annotations().save(&image.id, &wanted).await?;
        true
    };
    if let Some(status) = item.status.as_deref().and_then(Status::parse) {
        if image.status_enum() != Some(status) {
            client
                .batch()
                .update(
                    dataset_name,
                    &[image.id.as_str()],
                    ImageUpdate::default().status(status),
                )
                .await?;
        }
    }
    Ok((how, saved))
}

/// Options of a server-side export ([`start_server_export`], [`export_archive`]).
#[derive(Clone, Default)]
pub struct ServerExportOptions {
    /// Only images with this status.
    pub status: Option<Status>,
    /// YOLO and VOC: write polygons as their bounding boxes instead of dropping them.
    pub polygons_as_boxes: bool,
    /// `(done, total, None)` each time the job is polled.
    pub progress: Option<Progress>,
}

impl std::fmt::Debug for ServerExportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerExportOptions")
            .field("status", &self.status)
            .field("polygons_as_boxes", &self.polygons_as_boxes)
            .finish()
    }
}

/// The archive of a complete export job.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ExportArchive {
    /// `tar`.
    pub format: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

/// An export job on the server.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ExportJob {
    /// Job id.
    pub id: String,
    /// The dataset's id.
    pub dataset_id: String,
    /// The dataset's name.
    #[serde(default)]
    pub dataset: String,
    /// `coco`, `yolo`, `voc` or `pictograph`.
    pub format: String,
    /// `queued`, `running`, `complete`, `failed` or `cancelled`.
    pub state: String,
    /// When it was started (RFC 3339).
    #[serde(default)]
    pub created_at: Option<String>,
    /// Images to export.
    #[serde(default)]
    pub images_total: u64,
    /// Images written so far.
    #[serde(default)]
    pub images_done: u64,
    /// Annotations read so far.
    #[serde(default)]
    pub annotations: u64,
    /// What the format could not hold (once complete).
    #[serde(default)]
    pub warnings: Vec<Warning>,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// The archive, once complete.
    #[serde(default)]
    pub archive: Option<ExportArchive>,
    /// Signed URL of the archive (no API key needed), once complete.
    #[serde(default)]
    pub download_url: Option<String>,
}

impl ExportJob {
    /// Still queued or running.
    pub fn pending(&self) -> bool {
        self.state == "queued" || self.state == "running"
    }
}

/// Starts an export job of the dataset (name or id) on the server.
pub async fn start_server_export(
    client: &Client,
    dataset: &str,
    format: Format,
    options: &ServerExportOptions,
) -> Result<ExportJob> {
    let req = Req::api(
        Method::POST,
        &format!("/datasets/{}/exports", segment(dataset)),
    )
    .json(&serde_json::json!({
        "format": format.as_str(),
        "status": options.status.map(Status::as_str),
        "polygons_as_boxes": options.polygons_as_boxes,
    }));
    client.transport.parse(req).await
}

/// The state of an export job.
pub async fn server_export(client: &Client, dataset: &str, id: &str) -> Result<ExportJob> {
    let req = Req::api(
        Method::GET,
        &format!("/datasets/{}/exports/{}", segment(dataset), segment(id)),
    );
    client.transport.parse(req).await
}

/// One page of a dataset's export jobs ([`list_server_exports`]).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ExportJobPage {
    /// The jobs, newest first.
    pub exports: Vec<ExportJob>,
    /// How many jobs the dataset has in all.
    pub total: u64,
}

/// The dataset's export jobs, newest first: `limit` (at most 200) from `offset`.
pub async fn list_server_exports(
    client: &Client,
    dataset: &str,
    limit: usize,
    offset: usize,
) -> Result<ExportJobPage> {
    let req = Req::api(
        Method::GET,
        &format!("/datasets/{}/exports", segment(dataset)),
    )
    .query("limit", limit)
    .query("offset", offset);
    client.transport.parse(req).await
}

/// What [`stop_server_export`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum StoppedExport {
    /// The job was queued or running; it is now `cancelled` and stops.
    Cancelled(ExportJob),
    /// The job had ended; it is deleted and its archive freed (the job as it was).
    Deleted(ExportJob),
}

/// Cancels a queued or running export job, or deletes an ended one with its archive.
pub async fn stop_server_export(client: &Client, dataset: &str, id: &str) -> Result<StoppedExport> {
    let req = Req::api(
        Method::DELETE,
        &format!("/datasets/{}/exports/{}", segment(dataset), segment(id)),
    );
    let v = client.transport.json(req).await?;
    if v.get("deleted").is_some() {
        Ok(StoppedExport::Deleted(field(v, &["deleted"])?))
    } else {
        serde_json::from_value(v)
            .map(StoppedExport::Cancelled)
            .map_err(|e| Error::Decode(e.to_string()))
    }
}

/// Has the server export the dataset in `format`, waits for the job, and saves its tar
/// archive at `dest` (written to a temporary file and renamed when complete). Answers the
/// finished job; a job that failed is answered too (with its `error`) and nothing is saved.
pub async fn export_archive(
    client: &Client,
    dataset: &str,
    format: Format,
    dest: impl AsRef<Path>,
    options: ServerExportOptions,
) -> Result<ExportJob> {
    let dest = dest.as_ref();
    let mut job = start_server_export(client, dataset, format, &options).await?;
    let mut delay = std::time::Duration::from_millis(100);
    while job.pending() {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(std::time::Duration::from_secs(2));
        job = server_export(client, &job.dataset_id, &job.id).await?;
        if let Some(p) = &options.progress {
            p(job.images_done as usize, job.images_total as usize, None);
        }
    }
    let Some(url) = job.download_url.clone().filter(|_| job.state == "complete") else {
        return Ok(job);
    };
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(io_err(parent))?;
    }
    let mut req = Req::api(Method::GET, "");
    req.url = client.transport.pinned(&url);
    req.auth = false;
    match &job.archive {
        // Resumed where it broke off, and checked against the archive's size and hash.
        Some(a) => {
            client
                .transport
                .download_verified(&req, dest, a.size, &a.sha256)
                .await?;
        }
        None => {
            client.transport.download(&req, dest, None).await?;
        }
    }
    Ok(job)
}
