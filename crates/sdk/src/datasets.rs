//! The read paths of datasets, and bulk download: `client.datasets()`.

use crate::client::Client;
use crate::error::{Error, Result};
use crate::http::{field, segment, Req};
use crate::models::{Dataset, Image, Status};
use crate::pager::Pager;
use crate::pathset::PathSet;
use crate::projects::{list_page, LIST_CAP};
use futures::StreamExt;
use pictograph_core::hashes::hash_of;
use pictograph_core::names;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A progress callback: `(completed, total, file)`, fired once per file whatever its outcome.
pub type Progress = Arc<dyn Fn(usize, usize, Option<&str>) + Send + Sync>;

/// How one file of a download ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadOutcome {
    /// Fetched and written: this many bytes.
    Written(u64),
    /// An image already present with the listed size, left alone.
    Skipped,
    /// It is in [`DownloadReport::failures`].
    Failed,
}

/// A callback of [`DownloadOptions::on_file`]: the file's path relative to the output
/// directory, which file of its image it is, and how it ended.
pub type DownloadFileCallback = Arc<dyn Fn(&Path, DownloadKind, DownloadOutcome) + Send + Sync>;

/// Options of [`Datasets::get_with`].
#[derive(Debug, Clone)]
pub struct GetOptions {
    /// Embed a page of the dataset's images in [`Dataset::images`].
    pub include_images: bool,
    /// Images per page (server cap 10,000). Default 1000.
    pub images_limit: usize,
    /// Offset of the page.
    pub images_offset: usize,
}

impl Default for GetOptions {
    fn default() -> Self {
        GetOptions {
            include_images: false,
            images_limit: 1000,
            images_offset: 0,
        }
    }
}

/// What [`Datasets::download`] fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DownloadMode {
    /// Images and their annotation files.
    #[default]
    Full,
    /// Images only.
    ImagesOnly,
    /// Annotation files only.
    AnnotationsOnly,
}

impl DownloadMode {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DownloadMode::Full => "full",
            DownloadMode::ImagesOnly => "images_only",
            DownloadMode::AnnotationsOnly => "annotations_only",
        }
    }

    fn images(self) -> bool {
        self != DownloadMode::AnnotationsOnly
    }

    fn annotations(self) -> bool {
        self != DownloadMode::ImagesOnly
    }
}

/// Options of [`Datasets::download`].
#[derive(Clone)]
pub struct DownloadOptions {
    /// What to fetch. Default [`DownloadMode::Full`].
    pub mode: DownloadMode,
    /// Only images with this status.
    pub status_filter: Option<Status>,
    /// Files fetched at once. Default 10.
    pub max_workers: usize,
    /// Called after each file.
    pub progress: Option<Progress>,
    /// Called after each file (after `progress`) with how it ended.
    pub on_file: Option<DownloadFileCallback>,
    /// Draw a progress bar (files, rate, ETA) on stderr while downloading; nothing is drawn
    /// when stderr is not a terminal. Default off.
    pub show_progress: bool,
    /// Images per listing request. Default 2,000: memory holds about one page.
    pub page_size: usize,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            mode: DownloadMode::Full,
            status_filter: None,
            max_workers: 10,
            progress: None,
            on_file: None,
            show_progress: false,
            page_size: DOWNLOAD_PAGE,
        }
    }
}

impl std::fmt::Debug for DownloadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadOptions")
            .field("mode", &self.mode)
            .field("status_filter", &self.status_filter)
            .field("max_workers", &self.max_workers)
            .field("progress", &self.progress.is_some())
            .field("on_file", &self.on_file.is_some())
            .field("show_progress", &self.show_progress)
            .field("page_size", &self.page_size)
            .finish()
    }
}

impl DownloadOptions {
    /// Sets the mode.
    pub fn mode(mut self, mode: DownloadMode) -> Self {
        self.mode = mode;
        self
    }

    /// Restricts to one status.
    pub fn status_filter(mut self, status: Status) -> Self {
        self.status_filter = Some(status);
        self
    }

    /// Sets the parallelism (at least 1): files fetched at once. Files too large to hold in
    /// memory whole (beyond 4 MiB, or beyond what the process's 8 MiB for whole files has
    /// left) are streamed to disk at most four at a time, whatever the parallelism, so
    /// memory stays flat as it grows.
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max_workers = n.max(1);
        self
    }

    /// Draws a progress bar on stderr when it is a terminal (the Python SDK's
    /// `show_progress=True`).
    pub fn show_progress(mut self, yes: bool) -> Self {
        self.show_progress = yes;
        self
    }

    /// Sets how many images each listing request asks for (1 to 10,000).
    pub fn page_size(mut self, n: usize) -> Self {
        self.page_size = n.clamp(1, 10_000);
        self
    }

    /// Sets the progress callback.
    pub fn progress(
        mut self,
        f: impl Fn(usize, usize, Option<&str>) + Send + Sync + 'static,
    ) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    /// Sets the callback told how each file ended (written, skipped or failed), e.g. to
    /// count only the bytes actually fetched.
    pub fn on_file(
        mut self,
        f: impl Fn(&Path, DownloadKind, DownloadOutcome) + Send + Sync + 'static,
    ) -> Self {
        self.on_file = Some(Arc::new(f));
        self
    }
}

/// Which file of an image a download failure is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadKind {
    /// The image bytes.
    Image,
    /// The annotation JSON.
    Annotation,
}

/// One file that could not be fetched. When [`DownloadFailure::retryable`], downloading again
/// may fetch it (present files are skipped); otherwise fix what is in the way first.
#[derive(Debug, Clone)]
pub struct DownloadFailure {
    /// The image.
    pub image_id: String,
    /// Path of the file relative to the output directory.
    pub filename: String,
    /// Image or annotation file.
    pub kind: DownloadKind,
    /// What went wrong, in one line; an error of the file itself leaves out its path
    /// (`filename` names it), so one cause reads the same for every file it hit.
    pub reason: String,
    /// Whether downloading again may fetch it (the network or the server failed), rather
    /// than a local file or folder being in the way or not writable.
    pub retryable: bool,
}

/// What a download did. Individual file errors land in `failures`, never in an `Err`.
#[derive(Debug, Clone, Default)]
pub struct DownloadReport {
    /// The dataset's id.
    pub dataset_id: String,
    /// Where the files went.
    pub output_dir: PathBuf,
    /// Image files written.
    pub images_downloaded: usize,
    /// Image files already present with the right size, left alone.
    pub images_skipped: usize,
    /// Annotation files written.
    pub annotations_downloaded: usize,
    /// Bytes of the files written (none of those skipped).
    pub bytes_written: u64,
    /// Files that failed.
    pub failures: Vec<DownloadFailure>,
}

impl DownloadReport {
    /// No file failed.
    pub fn success(&self) -> bool {
        self.failures.is_empty()
    }
}

/// One item of the download listing.
#[derive(Debug, Deserialize)]
struct Item {
    id: String,
    filename: String,
    #[serde(default)]
    original_filename: Option<String>,
    #[serde(default)]
    virtual_folder_path: Option<String>,
    #[serde(default)]
    file_size: Option<u64>,
    #[serde(default)]
    image_url: Option<String>,
    #[serde(default)]
    annotation_url: Option<String>,
    /// The annotation list, when the server embeds it in the listing.
    #[serde(default)]
    annotations: Option<Value>,
    #[serde(default)]
    version: Option<i64>,
}

/// Filters and paging of [`Datasets::list_images`].
#[derive(Debug, Clone, Default)]
pub struct ImageListOptions {
    /// Only images with this status.
    pub status: Option<Status>,
    /// Only images in this virtual folder (`/cars`).
    pub folder: Option<String>,
    /// With `folder`: its sub-folders too.
    pub recursive: bool,
    /// Include archived images.
    pub include_archived: bool,
    /// Only images with this exact file name (in any folder unless `folder` is set).
    pub filename: Option<String>,
    /// Page size (default 100, server cap 10,000).
    pub limit: Option<usize>,
    /// Images to skip.
    pub offset: usize,
    /// Start right after this image (an id from the previous page) instead of at `offset`:
    /// every page then costs the server the same however deep it is. A pictograph server's
    /// extension; `offset` must be 0 with it.
    pub after: Option<String>,
}

/// One page of images.
#[derive(Debug, Clone)]
pub struct ImagePage {
    /// The images of this page.
    pub images: Vec<Image>,
    /// How many images match in all.
    pub total: u64,
    /// Whether another page follows.
    pub has_more: bool,
    /// The image this page starts after, as the server confirmed it: `None` when
    /// [`ImageListOptions::after`] was not given, or when the server does not page by key
    /// (it then answered the page at `offset` instead).
    pub after: Option<String>,
}

/// Largest listing page the server serves.
/// Images per download-listing page by default: a page's items stay a few MB.
const DOWNLOAD_PAGE: usize = 2_000;

/// The datasets resource.
#[derive(Debug, Clone)]
pub struct Datasets {
    client: Client,
}

impl Datasets {
    pub(crate) fn new(client: Client) -> Datasets {
        Datasets { client }
    }

    /// The first `limit` datasets of the organisation, oldest first (server cap 1000, a
    /// larger `limit` is [`Error::Validation`]; 0 answers an empty list without a request).
    pub async fn list(&self, limit: usize) -> Result<Vec<Dataset>> {
        list_page(&self.client, "/datasets/", "datasets", limit, 0).await
    }

    /// One page of datasets: `limit` (server cap 1000; 0 answers an empty list without a
    /// request) starting at `offset`, oldest first.
    pub async fn list_page(&self, limit: usize, offset: usize) -> Result<Vec<Dataset>> {
        list_page(&self.client, "/datasets/", "datasets", limit, offset).await
    }

    /// One page of a dataset's images (the dataset named by name or id), filtered by status,
    /// folder and file name, oldest first, with the total that match.
    pub async fn list_images(&self, dataset: &str, options: ImageListOptions) -> Result<ImagePage> {
        let mut req = Req::api(Method::GET, "/images/")
            .query("dataset", dataset)
            .query("limit", options.limit.unwrap_or(100))
            .query("offset", options.offset);
        if let Some(status) = options.status {
            req = req.query("status", status.as_str());
        }
        if let Some(folder) = &options.folder {
            req = req.query("folder_path", folder);
        }
        if options.recursive {
            req = req.query("recursive", "true");
        }
        if options.include_archived {
            req = req.query("include_archived", "true");
        }
        if let Some(filename) = &options.filename {
            req = req.query("filename", filename);
        }
        if let Some(after) = &options.after {
            req = req.query("after", after);
        }
        let page: ImagesPage = self.client.transport.parse(req).await?;
        let images = match (page.images, page.data) {
            (Some(images), _) => images,
            (None, Some(data)) => {
                serde_json::from_str(data.get()).map_err(|e| Error::Decode(e.to_string()))?
            }
            (None, None) => {
                return Err(Error::Decode(
                    "response has none of the keys images, data".into(),
                ))
            }
        };
        let pagination = page.pagination.unwrap_or_default();
        Ok(ImagePage {
            images,
            total: page.total.unwrap_or(0),
            has_more: pagination.has_more.unwrap_or(false),
            after: pagination.after.filter(|_| options.after.is_some()),
        })
    }

    /// Walks the images `options` select, a page at a time from `options.offset`: the first
    /// page by offset, the next ones by key (each starting after the last image of the one
    /// before), so every page costs the server the same however deep it lies. A server that
    /// ignores [`ImageListOptions::after`] is paged by offset.
    pub fn image_pages(&self, dataset: &str, options: ImageListOptions) -> ImagePages {
        ImagePages {
            datasets: Datasets::new(self.client.clone()),
            dataset: dataset.to_string(),
            options,
            after: None,
            by_key: true,
            fetched: 0,
            done: false,
        }
    }

    /// Every dataset, oldest first, as an auto-paging stream (page size 100 unless set, at
    /// most 1000).
    pub fn iter(&self) -> Pager<Dataset> {
        let client = self.client.clone();
        Pager::new(100, LIST_CAP, move |offset, limit| {
            let client = client.clone();
            Box::pin(
                async move { list_page(&client, "/datasets/", "datasets", limit, offset).await },
            )
        })
    }

    /// A dataset by name (case-sensitive). [`Error::NotFound`] when missing.
    pub async fn get(&self, name: &str) -> Result<Dataset> {
        self.get_with(name, GetOptions::default()).await
    }

    /// A dataset by name, optionally with a page of its images.
    pub async fn get_with(&self, name: &str, options: GetOptions) -> Result<Dataset> {
        let mut req = Req::api(Method::GET, &format!("/datasets/by-name/{}", segment(name)));
        if options.include_images {
            req = req
                .query("include_images", "true")
                .query("images_limit", options.images_limit)
                .query("images_offset", options.images_offset);
        }
        let v = self.client.transport.json(req).await?;
        field(v, &["dataset", "data"])
    }

    /// A dataset by UUID.
    pub async fn get_by_id(&self, id: &str) -> Result<Dataset> {
        let v = self
            .client
            .transport
            .json(Req::api(Method::GET, &format!("/datasets/{}", segment(id))))
            .await?;
        field(v, &["dataset", "data"])
    }

    /// Downloads a dataset's images and/or annotation files into `output_dir`.
    ///
    /// Layout: each image keeps its virtual folder as sub-directories, so equal names in two
    /// folders never overwrite each other: `/cars/a.jpg` → `<output_dir>/cars/a.jpg`, and its
    /// annotations → `<output_dir>/cars/a.jpg.json` (`{"image_id", "annotations"}`). Every path
    /// component is sanitised: no `..`, no absolute paths, no separators inside a name.
    ///
    /// Files are written atomically (a `.part` file renamed when complete), so an interrupted
    /// download never leaves a truncated image. A re-run skips images already present with the
    /// right size (counted in `images_skipped`) and fetches the rest; annotation files are
    /// always fetched again since annotations change. Nothing is fsynced (like `cp`): after a
    /// power loss or an operating-system crash, files written just before it may be damaged,
    /// so download into a fresh directory then.
    ///
    /// A file and a virtual folder of the same name (an image `a.png` and a folder
    /// `/a.png`) never take the same path: the later one in the listing is numbered
    /// (`a-2.png`), the same way on every run.
    ///
    /// Memory holds one page of the listing (see [`DownloadOptions::page_size`]), the local
    /// directory of each virtual folder, and an 8-byte hash of each of the latest half
    /// million local paths given out; older hashes go to an unnamed file in `output_dir`
    /// (8 MB per million images, gone when the call returns), so memory stays the same
    /// whatever the dataset's size. Each page
    /// after the first is asked for as the one after the previous page's last image, where
    /// the server pages that way (this one does): each costs the server the same wherever
    /// it lies in the dataset, and images added or deleted meanwhile do not shift the pages.
    /// Elsewhere pages go by offset.
    ///
    /// Per-file errors go to [`DownloadReport::failures`]. The call fails when the listing
    /// request does, when `output_dir` exists and is not a directory, and when no file can
    /// be written: the output's disk or quota is full ([`Error::is_disk_full`]), or the
    /// output directory refuses new files (permissions, a read-only file system; an
    /// [`Error::Io`] on `output_dir`). It then stops at the first file that could not be
    /// written, instead of fetching every remaining file only to fail writing it; files
    /// written so far stay, and a re-run once that is fixed skips them.
    pub async fn download(
        &self,
        name: &str,
        output_dir: impl AsRef<Path>,
        options: DownloadOptions,
    ) -> Result<DownloadReport> {
        let out = output_dir.as_ref().to_path_buf();
        // Page by page, the next page fetched while this one's files are: memory holds one
        // page of the listing and the hashes of the latest paths given out.
        let mut taken = Taken::new(&out);
        let (mut done, mut total, mut offset) = (0, 0, 0);
        // Pages after the first go by key (the last image of the page before) where the
        // server can, by offset where it cannot.
        let mut by_key = true;
        let mut page = self.download_page(name, &options, offset, None).await?;
        // Only once the dataset is known to exist, so a mistyped name leaves nothing behind.
        if tokio::fs::metadata(&out).await.is_ok_and(|m| !m.is_dir()) {
            return Err(Error::Io {
                path: out,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    "exists and is not a directory",
                ),
            });
        }
        tokio::fs::create_dir_all(&out)
            .await
            .map_err(|e| Error::io(&out, e))?;
        let mut report = DownloadReport {
            output_dir: out.clone(),
            ..DownloadReport::default()
        };
        let bar = options.show_progress.then(|| progress_bar(0));
        let mut stop = None;
        loop {
            if report.dataset_id.is_empty() {
                report.dataset_id = page.dataset_id.clone();
            }
            let n = page.items.len();
            offset += n;
            let last = page.items.last().map(|i| i.id.clone());
            let tasks =
                tasks_of(page.items, &options, &mut taken).map_err(|e| Error::io(&out, e))?;
            total += tasks.len();
            let (tasks, prepared) = {
                let dir = out.clone();
                tokio::task::spawn_blocking(move || {
                    let prepared = prepare(&dir, &tasks);
                    (tasks, prepared)
                })
                .await
                .map_err(|e| Error::io(&out, std::io::Error::other(e)))?
            };
            if let Some(bar) = &bar {
                bar.set_length(total as u64);
            }
            let next = async {
                if n < options.page_size {
                    return Ok(None);
                }
                let keyed = last.filter(|id| by_key && !id.is_empty());
                if let Some(after) = keyed {
                    match self
                        .download_page(name, &options, offset, Some(&after))
                        .await
                    {
                        Ok(page) if page.paged_after => return Ok(Some(page)),
                        // The server answered from the start instead: by offset from here.
                        Ok(_) => by_key = false,
                        // The image paged from was deleted meanwhile: this page by offset.
                        Err(Error::Validation(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                self.download_page(name, &options, offset, None)
                    .await
                    .map(Some)
            };
            let files = async {
                let workers = options.max_workers.max(1);
                let mut results = futures::stream::iter(tasks.into_iter().zip(prepared))
                    .map(|(task, prepared)| {
                        let client = self.client.clone();
                        let out = out.clone();
                        async move {
                            let outcome = match prepared {
                                Prepared::Fetch => fetch(&client, &out, &task).await,
                                Prepared::Present => Ok(DownloadOutcome::Skipped),
                                Prepared::Failed(e) => Err(e),
                            };
                            (task, outcome)
                        }
                    })
                    .buffer_unordered(workers);
                while let Some((task, outcome)) = results.next().await {
                    done += 1;
                    if let Some(bar) = &bar {
                        bar.inc(1);
                    }
                    let shown = task.rel.to_string_lossy().into_owned();
                    let ended = match (outcome, task.kind) {
                        (Ok(DownloadOutcome::Written(bytes)), kind) => {
                            match kind {
                                DownloadKind::Image => report.images_downloaded += 1,
                                DownloadKind::Annotation => report.annotations_downloaded += 1,
                            }
                            report.bytes_written += bytes;
                            DownloadOutcome::Written(bytes)
                        }
                        (Ok(_), _) => {
                            report.images_skipped += 1;
                            DownloadOutcome::Skipped
                        }
                        (Err(e), _) if e.is_disk_full() => {
                            stop = Some(e);
                            break;
                        }
                        (Err(e), kind) => {
                            if let Some(fatal) = unwritable_output(&out, &e).await {
                                stop = Some(fatal);
                                break;
                            }
                            report.failures.push(DownloadFailure {
                                image_id: task.image_id.clone(),
                                filename: shown.clone(),
                                kind,
                                reason: failure_reason(&e, &out.join(&task.rel)),
                                retryable: !e.is_local(),
                            });
                            DownloadOutcome::Failed
                        }
                    };
                    if let Some(p) = &options.progress {
                        p(done, total, Some(&shown));
                    }
                    if let Some(f) = &options.on_file {
                        f(&task.rel, task.kind, ended);
                    }
                }
            };
            let (next, ()) = futures::join!(next, files);
            if let Some(e) = stop.take() {
                if let Some(bar) = bar {
                    bar.abandon();
                }
                return Err(e);
            }
            match next? {
                Some(p) => page = p,
                None => break,
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        Ok(report)
    }
}

/// When `e`, met on one file, is a refusal to write that every other file would meet too
/// (nothing can be created in the output directory `out`, for its permissions or a read-only
/// file system): the error of that directory, to stop the download with.
async fn unwritable_output(out: &Path, e: &Error) -> Option<Error> {
    let Error::Io { source, .. } = e else {
        return None;
    };
    use std::io::ErrorKind::{PermissionDenied, ReadOnlyFilesystem};
    if !matches!(source.kind(), PermissionDenied | ReadOnlyFilesystem) {
        return None;
    }
    let probe = out.join(format!(".pictograph-write-test-{}", std::process::id()));
    match tokio::fs::write(&probe, b"").await {
        Ok(()) => {
            let _ = tokio::fs::remove_file(&probe).await;
            None
        }
        Err(source) => Some(Error::Io {
            path: out.to_path_buf(),
            source,
        }),
    }
}

/// Why a file failed, in one line; an error about the file itself (or its temporary `.part`
/// file) leaves out its path, since the failure names the file, so the same cause reads the
/// same for every file it hit.
fn failure_reason(e: &Error, dest: &Path) -> String {
    let own = |p: &Path| p == dest || p == crate::http::part_path(dest);
    match e {
        Error::Io { path, source } if own(path) => format!("I/O error: {source}"),
        Error::FileNotFound(path) if own(path) => "I/O error: no such file or directory".into(),
        other => other.to_string(),
    }
}

/// One page of the download listing.
struct Page {
    dataset_id: String,
    items: Vec<Item>,
    /// Whether the server paged from the `after` asked for (it echoes it).
    paged_after: bool,
}

impl Datasets {
    async fn download_page(
        &self,
        name: &str,
        options: &DownloadOptions,
        offset: usize,
        after: Option<&str>,
    ) -> Result<Page> {
        let mut req = Req::api(
            Method::GET,
            &format!("/datasets/by-name/{}/download", segment(name)),
        )
        .query("mode", options.mode.as_str())
        .query("limit", options.page_size);
        if let Some(after) = after {
            req = req.query("after", after);
        } else if offset > 0 {
            req = req.query("offset", offset);
        }
        if let Some(s) = options.status_filter {
            req = req.query("status_filter", s.as_str());
        }
        if options.mode.annotations() {
            // Servers that can embed the lists save a request per image; others ignore
            // these and the files are fetched from each `annotation_url`.
            req = req
                .query("include_annotations", "true")
                .query("include", "metadata");
        }
        let page: ListingPage = self.client.transport.parse(req).await?;
        Ok(Page {
            dataset_id: page.dataset_id.unwrap_or_default(),
            items: page.items.unwrap_or_default(),
            paged_after: after.is_some() && page.after.as_deref() == after,
        })
    }
}

/// The pages of an image listing, one [`ImagePages::next_page`] at a time; see
/// [`Datasets::image_pages`].
#[derive(Debug)]
pub struct ImagePages {
    datasets: Datasets,
    dataset: String,
    options: ImageListOptions,
    after: Option<String>,
    by_key: bool,
    fetched: usize,
    done: bool,
}

impl ImagePages {
    /// The next page, of up to `limit` images (the server's cap is 10,000); `None` once the
    /// listing has ended.
    pub async fn next_page(&mut self, limit: usize) -> Result<Option<ImagePage>> {
        if self.done {
            return Ok(None);
        }
        loop {
            let keyed = self.after.clone().filter(|_| self.by_key);
            let options = ImageListOptions {
                limit: Some(limit),
                offset: if keyed.is_some() {
                    0
                } else {
                    self.options.offset + self.fetched
                },
                after: keyed.clone(),
                ..self.options.clone()
            };
            let page = self.datasets.list_images(&self.dataset, options).await?;
            if keyed.is_some() && page.after.is_none() {
                // The server answered from the start instead: page by offset from here.
                self.by_key = false;
                continue;
            }
            self.fetched += page.images.len();
            if let Some(last) = page.images.last() {
                self.after = Some(last.id.clone());
            }
            self.done = !page.has_more || page.images.len() < limit;
            return Ok(Some(page));
        }
    }
}

/// A page of `GET /images/` as sent: the images under `images` or `data` (the same list;
/// `data` is kept unparsed and read only when `images` is missing).
#[derive(Deserialize)]
struct ImagesPage {
    #[serde(default)]
    images: Option<Vec<Image>>,
    #[serde(default)]
    data: Option<Box<serde_json::value::RawValue>>,
    #[serde(default)]
    total: Option<u64>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Deserialize, Default)]
struct Pagination {
    #[serde(default)]
    has_more: Option<bool>,
    #[serde(default)]
    after: Option<String>,
}

/// A page of the download listing as sent (its copy of the items under `data` is skipped).
#[derive(Deserialize)]
struct ListingPage {
    #[serde(default)]
    dataset_id: Option<String>,
    #[serde(default)]
    items: Option<Vec<Item>>,
    /// The `after` of the request, echoed by a server that paged from it.
    #[serde(default)]
    after: Option<String>,
}

/// The files to fetch or write for a page of the listing.
fn tasks_of(
    items: Vec<Item>,
    options: &DownloadOptions,
    taken: &mut Taken,
) -> std::io::Result<Vec<Task>> {
    let mut tasks = Vec::new();
    for mut item in items {
        let rel = local_path(&item, taken)?;
        if options.mode.images() {
            if let Some(url) = item.image_url.as_deref().filter(|u| !u.is_empty()) {
                tasks.push(Task {
                    image_id: item.id.clone(),
                    kind: DownloadKind::Image,
                    rel: rel.clone(),
                    url: url.to_string(),
                    size: item.file_size,
                    inline: None,
                });
            }
        }
        if options.mode.annotations() {
            let url = item.annotation_url.as_deref().filter(|u| !u.is_empty());
            let inline = item.annotations.take().map(
                |list| json!({"image_id": item.id, "annotations": list, "version": item.version}),
            );
            if url.is_some() || inline.is_some() {
                tasks.push(Task {
                    image_id: item.id.clone(),
                    kind: DownloadKind::Annotation,
                    rel: annotation_path(&rel),
                    url: url.map(with_metadata).unwrap_or_default(),
                    size: None,
                    inline,
                });
            }
        }
    }
    Ok(tasks)
}

struct Task {
    image_id: String,
    kind: DownloadKind,
    /// Relative to the output directory.
    rel: PathBuf,
    url: String,
    size: Option<u64>,
    /// An annotation file's content, when the listing carried it.
    inline: Option<Value>,
}

/// Where a task stands before anything is fetched.
enum Prepared {
    /// To be fetched.
    Fetch,
    /// An image already present with the listed size (a leftover `.part` beside it is removed).
    Present,
    /// Its directory cannot be created.
    Failed(Error),
}

/// Creates the directories of every task and finds the images already present, in one pass
/// of blocking calls (each directory created once) rather than a few hops per file.
fn prepare(out: &Path, tasks: &[Task]) -> Vec<Prepared> {
    let mut dirs: HashMap<PathBuf, std::result::Result<(), DirError>> = HashMap::new();
    tasks
        .iter()
        .map(|task| {
            let dest = out.join(&task.rel);
            if let Some(parent) = dest.parent() {
                let made = dirs
                    .entry(parent.to_path_buf())
                    .or_insert_with(|| create_dir(parent));
                if let Err(e) = made {
                    let source = std::io::Error::new(e.kind, e.message.clone());
                    return Prepared::Failed(Error::io(&e.path, source));
                }
            }
            if let (DownloadKind::Image, Some(size)) = (task.kind, task.size) {
                if std::fs::metadata(&dest).is_ok_and(|m| m.is_file() && m.len() == size) {
                    // A leftover of an interrupted earlier run.
                    let _ = std::fs::remove_file(crate::http::part_path(&dest));
                    return Prepared::Present;
                }
            }
            Prepared::Fetch
        })
        .collect()
}

/// Why a directory could not be created, kept for every file it holds.
struct DirError {
    path: PathBuf,
    kind: std::io::ErrorKind,
    message: String,
}

/// Creates `dir` and its parents; a file in the way is named as the error's path.
fn create_dir(dir: &Path) -> std::result::Result<(), DirError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        match dir
            .ancestors()
            .find(|a| std::fs::metadata(a).is_ok_and(|m| !m.is_dir()))
        {
            Some(file) => DirError {
                path: file.to_path_buf(),
                kind: std::io::ErrorKind::NotADirectory,
                message: "exists and is not a directory".into(),
            },
            None => DirError {
                path: dir.to_path_buf(),
                kind: e.kind(),
                message: e.to_string(),
            },
        }
    })
}

/// Fetches one task whose directory exists.
async fn fetch(client: &Client, out: &Path, task: &Task) -> Result<DownloadOutcome> {
    let dest = out.join(&task.rel);
    let dest = dest.as_path();
    let t = &client.transport;
    let bytes = match task.kind {
        DownloadKind::Image => {
            let req = Req {
                method: Method::GET,
                url: task.url.clone(),
                query: Vec::new(),
                body: crate::http::ReqBody::Empty,
                auth: false,
                idempotency_key: None,
                timeout: None,
                range_from: None,
            };
            t.download(&req, dest, task.size).await?
        }
        DownloadKind::Annotation => {
            let v = match &task.inline {
                Some(v) => v.clone(),
                None => {
                    let mut req = Req::api(Method::GET, "");
                    req.url = t.pinned(&task.url);
                    t.json(req).await?
                }
            };
            let mut bytes = serde_json::to_vec_pretty(&v).unwrap_or_default();
            bytes.push(b'\n');
            let n = bytes.len() as u64;
            crate::http::write_whole(dest, bytes).await?;
            n
        }
    };
    Ok(DownloadOutcome::Written(bytes))
}

/// Longest path component a download writes, in bytes: file systems allow 255, and the
/// names written beside an image add up to `.json.part` (its annotations' temporary file).
pub const MAX_COMPONENT_BYTES: usize = 255 - ".json.part".len();

/// One safe path component: separators, NUL and control characters become `_`, an empty,
/// `.` or `..` component becomes `_`, and one longer than [`MAX_COMPONENT_BYTES`] is
/// shortened (see [`fit_component`]).
pub fn sanitize_component(raw: &str) -> String {
    fit_component(clean_component(raw))
}

/// A component of at most [`MAX_COMPONENT_BYTES`], shortened as
/// [`names::shorten`] does.
pub fn fit_component(name: String) -> String {
    if name.len() <= MAX_COMPONENT_BYTES {
        return name;
    }
    names::shorten(&name, MAX_COMPONENT_BYTES)
}

fn clean_component(raw: &str) -> String {
    let cleaned: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() || (cfg!(windows) && ":*?\"<>|".contains(c))
            {
                '_'
            } else {
                c
            }
        })
        .collect();
    match cleaned.as_str() {
        "" | "." | ".." => "_".to_string(),
        _ => cleaned,
    }
}

/// The local paths a download has given out so far: each image's file and each directory,
/// as hashes (an image's annotation file is known from its image's path).
struct Taken {
    /// Hashes of `(FILE, path)` and `(DIR, path)`.
    paths: PathSet,
    /// The local directory of each virtual folder seen (its sanitised path, hashed): a
    /// folder named like a file given out before is numbered, once for all its images.
    folders: HashMap<u64, PathBuf>,
}

impl Taken {
    const FILE: u8 = 0;
    const DIR: u8 = 1;

    /// Nothing given out yet; the older hashes go to a file in `dir` once there are many.
    fn new(dir: &Path) -> Taken {
        Taken {
            paths: PathSet::new(dir.to_path_buf()),
            folders: HashMap::new(),
        }
    }

    fn has(&self, kind: u8, p: &Path) -> std::io::Result<bool> {
        self.paths.contains(hash_of(&(kind, p)))
    }

    /// Whether `p` is given out as an image's file or annotation file, or as a directory.
    fn used(&self, p: &Path) -> std::io::Result<bool> {
        Ok(self.has(Self::FILE, p)?
            || self.has(Self::DIR, p)?
            || match annotated_image(p) {
                Some(image) => self.has(Self::FILE, &image)?,
                None => false,
            })
    }

    /// Whether an image may take `p`: neither it nor its annotation file is used.
    fn file_free(&self, p: &Path) -> std::io::Result<bool> {
        let annotation = annotation_path(p);
        Ok(!self.used(p)?
            && !self.has(Self::FILE, &annotation)?
            && !self.has(Self::DIR, &annotation)?)
    }

    /// Whether a directory may take `p`.
    fn dir_free(&self, p: &Path) -> std::io::Result<bool> {
        Ok(!self.used(p)?)
    }

    /// Gives `p` out, which `file_free` or `dir_free` has just found free.
    fn claim(&mut self, kind: u8, p: &Path) {
        self.paths.add(hash_of(&(kind, p)));
    }
}

/// The image whose annotation file `p` would be: `p` without its `.json`.
fn annotated_image(p: &Path) -> Option<PathBuf> {
    let name = p.file_name()?.to_str()?;
    let image = name.strip_suffix(".json").filter(|n| !n.is_empty())?;
    Some(p.with_file_name(image))
}

/// The annotation file written beside the image at `rel`: its name plus `.json`.
fn annotation_path(rel: &Path) -> PathBuf {
    let mut name = rel.file_name().unwrap_or_default().to_os_string();
    name.push(".json");
    rel.with_file_name(name)
}

/// `name` in `dir`, numbered (`a-2.jpg`, `a-3.jpg`, …) until `free` accepts it.
fn first_free(
    dir: &Path,
    name: &str,
    free: impl Fn(&Path) -> std::io::Result<bool>,
) -> std::io::Result<PathBuf> {
    let mut candidate = dir.join(name);
    let mut n = 2;
    while !free(&candidate)? {
        candidate = dir.join(fit_component(names::numbered(name, n)));
        n += 1;
    }
    Ok(candidate)
}

/// The relative local path of a listing item: its virtual folder as sub-directories, then
/// its original file name, made unique within this download. A file never takes the path
/// of a directory given out before, or the reverse: the later one is numbered. Given the
/// same listing, every run answers the same paths, so re-runs find the files written.
fn local_path(item: &Item, taken: &mut Taken) -> std::io::Result<PathBuf> {
    let mut folder = PathBuf::new();
    let mut dir = PathBuf::new();
    for seg in item
        .virtual_folder_path
        .as_deref()
        .unwrap_or("/")
        .split(['/', '\\'])
        .filter(|s| !s.trim().is_empty())
    {
        let seg = sanitize_component(seg);
        folder.push(&seg);
        let key = hash_of(&folder);
        dir = match taken.folders.get(&key) {
            Some(known) => known.clone(),
            None => {
                let local = first_free(&dir, &seg, |p| taken.dir_free(p))?;
                taken.claim(Taken::DIR, &local);
                taken.folders.insert(key, local.clone());
                local
            }
        };
    }
    let name = sanitize_component(item.original_filename.as_deref().unwrap_or(&item.filename));
    let path = first_free(&dir, &name, |p| taken.file_free(p))?;
    taken.claim(Taken::FILE, &path);
    Ok(path)
}

/// A bar of `total` files on stderr (hidden when stderr is not a terminal).
fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:30} {pos}/{len} files {per_sec} ETA {eta} {wide_msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// The annotation URL asking for each annotation's `metadata` too.
fn with_metadata(url: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}include=metadata")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn item(folder: &str, name: &str) -> Item {
        Item {
            id: "i".into(),
            filename: name.into(),
            original_filename: Some(name.into()),
            virtual_folder_path: Some(folder.into()),
            file_size: None,
            image_url: None,
            annotation_url: None,
            annotations: None,
            version: None,
        }
    }

    #[test]
    fn local_paths_are_sanitised_and_unique() {
        let mut taken = taken_with_bound(usize::MAX);
        let mut given = Vec::new();
        let mut p = |f: &str, n: &str, t: &mut Taken| {
            let path = local_path(&item(f, n), t).unwrap();
            given.push(path.clone());
            path
        };
        assert_eq!(p("/", "a.jpg", &mut taken), PathBuf::from("a.jpg"));
        assert_eq!(
            p("/stop/night", "a.jpg", &mut taken),
            PathBuf::from("stop/night/a.jpg")
        );
        assert_eq!(
            p("/../..", "../x.jpg", &mut taken),
            PathBuf::from("_/_/.._x.jpg")
        );
        assert_eq!(p("/", "a.jpg", &mut taken), PathBuf::from("a-2.jpg"));
        assert_eq!(p("//abs//", "..", &mut taken), PathBuf::from("abs/_"));
        assert_eq!(
            p("/", "/etc/passwd", &mut taken),
            PathBuf::from("_etc_passwd")
        );
        assert_eq!(sanitize_component("a\u{0}b\nc"), "a_b_c");
        // Names the server allows (255 bytes) get room for `.json.part` beside them.
        let long = format!("{}.jpeg", "é".repeat(125));
        let fitted = sanitize_component(&long);
        assert!(fitted.len() <= MAX_COMPONENT_BYTES, "{}", fitted.len());
        assert!(
            fitted.ends_with(".jpeg") && fitted.starts_with("éé"),
            "{fitted}"
        );
        assert_eq!(fitted, sanitize_component(&long), "the same name every run");
        let other = format!("{}b.jpeg", "é".repeat(124));
        assert_ne!(sanitize_component(&other), fitted);
        assert_eq!(sanitize_component("short.jpg"), "short.jpg");
        let at_limit = "x".repeat(MAX_COMPONENT_BYTES);
        assert_eq!(sanitize_component(&at_limit), at_limit);
        // A second image of that name is numbered, and still fits.
        let first = p("/", &at_limit, &mut taken);
        let second = p("/", &at_limit, &mut taken);
        assert_eq!(first, PathBuf::from(&at_limit));
        assert!(second != first && second.as_os_str().len() <= MAX_COMPONENT_BYTES);
        let distinct: HashSet<&PathBuf> = given.iter().collect();
        assert_eq!(distinct.len(), given.len());
        for p in given {
            assert!(p.is_relative());
            assert!(p
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_))));
        }
    }

    /// A fresh set of taken paths that keeps at most `bound` hashes in memory.
    fn taken_with_bound(bound: usize) -> Taken {
        Taken {
            paths: PathSet::with_bound(std::env::temp_dir(), bound),
            folders: HashMap::new(),
        }
    }

    /// Paths given to a listing, in order, on a fresh run: the same whether the hashes of
    /// the paths given out stay in memory or all go to disk at once.
    fn layout(items: &[(&str, &str)]) -> Vec<PathBuf> {
        let given = |bound| {
            let mut taken = taken_with_bound(bound);
            items
                .iter()
                .map(|(f, n)| local_path(&item(f, n), &mut taken).unwrap())
                .collect::<Vec<_>>()
        };
        let in_memory = given(usize::MAX);
        assert_eq!(given(1), in_memory, "on disk as in memory");
        in_memory
    }

    #[test]
    fn files_and_folders_never_take_each_others_paths() {
        let items = [
            ("/", "img_1.png"),
            ("/img_1.png", "img_1.png"),
            ("/img_1.png", "b.png"),
            ("/img_1.png/deep", "c.png"),
            ("/", "deep.png"),
            ("/", "img_1.png.json"),
            ("/sub", "x.png"),
            ("/", "sub"),
        ];
        let paths = layout(&items);
        let expected = [
            "img_1.png",
            "img_1-2.png/img_1.png",
            "img_1-2.png/b.png",
            "img_1-2.png/deep/c.png",
            "deep.png",
            "img_1.png-2.json",
            "sub/x.png",
            "sub-2",
        ];
        assert_eq!(
            paths,
            expected.iter().map(PathBuf::from).collect::<Vec<_>>()
        );
        assert_eq!(layout(&items), paths, "the same paths on every run");
        // No path is both a file (or its annotation file) and a directory of another.
        let mut files: HashSet<PathBuf> = paths.iter().cloned().collect();
        files.extend(paths.iter().map(|p| annotation_path(p)));
        for p in &paths {
            for dir in p.ancestors().skip(1) {
                assert!(
                    !files.contains(dir),
                    "{} is a file and a folder",
                    dir.display()
                );
            }
        }
    }

    #[test]
    fn annotation_files_never_clash_with_files_or_folders() {
        let items = [
            ("/", "y.png.json"),
            // Its annotation file would be the image above.
            ("/", "y.png"),
            ("/", "z"),
            // A folder where the annotation file of the image `z` goes.
            ("/z.json", "in.png"),
            ("/q.json", "in.png"),
            // Its annotation file would be the folder above.
            ("/", "q"),
            // A folder beside a file of its name plus `.json` is no clash.
            ("/", "w.json"),
            ("/w", "in.png"),
            ("/", "y.png.json"),
        ];
        let paths = layout(&items);
        let expected = [
            "y.png.json",
            "y-2.png",
            "z",
            "z-2.json/in.png",
            "q.json/in.png",
            "q-2",
            "w.json",
            "w/in.png",
            "y.png-2.json",
        ];
        assert_eq!(
            paths,
            expected.iter().map(PathBuf::from).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_large_listing_gets_distinct_paths() {
        // Enough images for many merges of the set of taken paths, and for many moves of
        // its hashes to disk, with repeated names.
        let mut taken = taken_with_bound(3_000);
        let mut seen = HashSet::new();
        for i in 0..40_000 {
            let folder = format!("/f{}", i % 7);
            let path =
                local_path(&item(&folder, &format!("{}.png", i % 5_000)), &mut taken).unwrap();
            assert!(seen.insert(path.clone()), "{} given twice", path.display());
            assert!(seen.insert(annotation_path(&path)));
        }
        assert!(seen.contains(Path::new("f0/0.png")) && seen.contains(Path::new("f0/0-2.png")));
    }
}
