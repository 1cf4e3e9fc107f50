//! A blocking client: the same calls as [`crate::Client`] for programs without an async
//! runtime, in the style of the Python SDK's examples.
//!
//! It owns a small Tokio runtime and waits for each call on it, so its calls must not be made
//! from inside an async task (use [`crate::Client`] there). Dropping it closes its connection
//! pool and runtime: the Rust counterpart of the Python client's context manager. Dropping it
//! is safe anywhere, inside an async task too.
//!
//! | [`Client`] | calls |
//! | --- | --- |
//! | [`Client::datasets`] | `list`, `list_page`, `iter` (an [`Iterator`]), `list_images`, `image_pages`, `get`, `get_with`, `get_by_id`, `download` |
//! | [`Client::projects`] | `create`, `update`, `delete`, `get`, `list`, `iter` |
//! | [`Client::images`] | `get`, `upload`, `download`, `delete` |
//! | [`Client::annotations`] | `get`, `save`, `delete`, `create_bbox` / `_polygon` / `_polyline` / `_keypoint` |
//! | [`Client::batch`] | `move_images`, `copy`, `delete`, `update` |
//! | [`crate::workflows`] | [`Client::upload_dataset_from_folder`], [`Client::upload_scanned_folder`] |
//! | [`crate::formats`] | [`Client::export_dataset`], [`Client::import_folder`], [`Client::export_archive`], [`Client::start_server_export`], [`Client::server_export`], [`Client::list_server_exports`], [`Client::stop_server_export`] |
//! | anything else | [`Client::block_on`] runs any future of the async API |
//!
//! The free functions of [`crate::workflows`] and [`crate::formats`] are methods here: the
//! same names, arguments (the client being `self`) and results.
//!
//! ```no_run
//! use pictograph::blocking::Client;
//! use pictograph::{DownloadMode, DownloadOptions};
//!
//! # fn run() -> Result<(), pictograph::Error> {
//! let client = Client::new("pk_live_your_key_here")?;
//! for d in client.datasets().list(100)? {
//!     println!("{}: {} images", d.name, d.image_count);
//! }
//! let report = client.datasets().download(
//!     "road-signs",
//!     "./my_dataset",
//!     DownloadOptions::default().mode(DownloadMode::Full).max_workers(20).show_progress(true),
//! )?;
//! println!("Downloaded {} images", report.images_downloaded);
//! # Ok(()) }
//! ```

use crate::annotations::{Annotation, BoundingBox, DeleteResult, Point, SaveResult};
use crate::batch::{BatchResult, CopyOptions, ImageUpdate};
use crate::datasets::{DownloadOptions, DownloadReport, GetOptions, ImageListOptions, ImagePage};
use crate::error::{Error, Result};
use crate::formats::{
    ExportJob, ExportJobPage, ExportOptions, ExportReport, Format, ImportOptions, ImportReport,
    ServerExportOptions, StoppedExport,
};
use crate::images::UploadOptions;
use crate::models::{Dataset, DeleteSummary, Image, Project};
use crate::projects::{CreateProject, UpdateProject};
use crate::workflows::{FolderScan, FolderUploadOptions, UploadReport};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

/// A blocking Pictograph client. Cheap to clone; clones share the pool and runtime.
#[derive(Debug, Clone)]
pub struct Client {
    inner: crate::Client,
    runtime: Arc<Runtime>,
}

/// The client's runtime, shut down without waiting when the last clone is dropped inside an
/// async context (where a plain drop of a runtime panics).
struct Runtime(Option<tokio::runtime::Runtime>);

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Runtime")
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                rt.shutdown_background();
            }
        }
    }
}

impl Client {
    /// A client for `api_key` with the defaults (and `PICTOGRAPH_*` environment for the rest).
    pub fn new(api_key: impl Into<String>) -> Result<Client> {
        Client::wrap(crate::Client::new(api_key)?)
    }

    /// A client configured from `PICTOGRAPH_API_KEY`, `PICTOGRAPH_BASE_URL`, ....
    pub fn from_env() -> Result<Client> {
        Client::wrap(crate::Client::from_env()?)
    }

    /// Wraps an async client built with [`crate::Client::builder`] (base URL, timeout,
    /// retries, user agent).
    pub fn wrap(inner: crate::Client) -> Result<Client> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pictograph-blocking")
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("cannot start the client's runtime: {e}")))?;
        Ok(Client {
            inner,
            runtime: Arc::new(Runtime(Some(runtime))),
        })
    }

    /// The async client underneath.
    pub fn as_async(&self) -> &crate::Client {
        &self.inner
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        self.inner.base_url()
    }

    /// Runs any future of the async API to completion (for calls without a blocking twin).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime
            .0
            .as_ref()
            .expect("the runtime lives as long as the client")
            .block_on(future)
    }

    /// Datasets: list, iter, get, get_by_id, list_images, image_pages, download.
    pub fn datasets(&self) -> Datasets<'_> {
        Datasets(self)
    }

    /// Projects: create, update, delete, get, list, iter.
    pub fn projects(&self) -> Projects<'_> {
        Projects(self)
    }

    /// Single images: get, upload, download, delete.
    pub fn images(&self) -> Images<'_> {
        Images(self)
    }

    /// Annotations: get, save, delete and the `create_*` helpers.
    pub fn annotations(&self) -> Annotations<'_> {
        Annotations(self)
    }

    /// Batch operations: move, copy, delete, update.
    pub fn batch(&self) -> Batch<'_> {
        Batch(self)
    }

    /// Uploads a folder as [`crate::workflows::upload_dataset_from_folder`] does.
    pub fn upload_dataset_from_folder(
        &self,
        dataset_name: &str,
        folder: impl AsRef<Path>,
        options: FolderUploadOptions,
    ) -> Result<UploadReport> {
        self.block_on(crate::workflows::upload_dataset_from_folder(
            &self.inner,
            dataset_name,
            folder,
            options,
        ))
    }

    /// Uploads what [`crate::workflows::scan_folder`] found, as
    /// [`crate::workflows::upload_scanned_folder`] does: for callers that show totals before
    /// the upload starts, without walking the folder twice.
    pub fn upload_scanned_folder(
        &self,
        dataset_name: &str,
        scan: FolderScan,
        options: FolderUploadOptions,
    ) -> Result<UploadReport> {
        self.block_on(crate::workflows::upload_scanned_folder(
            &self.inner,
            dataset_name,
            scan,
            options,
        ))
    }

    /// Exports a dataset (name or id) in `format` into the folder `out_dir`, as
    /// [`crate::formats::export_dataset`] does.
    pub fn export_dataset(
        &self,
        dataset: &str,
        format: Format,
        out_dir: impl AsRef<Path>,
        options: ExportOptions,
    ) -> Result<ExportReport> {
        self.block_on(crate::formats::export_dataset(
            &self.inner,
            dataset,
            format,
            out_dir,
            options,
        ))
    }

    /// Imports the folder `folder` in `format` into the dataset `dataset`, as
    /// [`crate::formats::import_folder`] does.
    pub fn import_folder(
        &self,
        folder: impl AsRef<Path>,
        format: Format,
        dataset: &str,
        options: ImportOptions,
    ) -> Result<ImportReport> {
        self.block_on(crate::formats::import_folder(
            &self.inner,
            folder,
            format,
            dataset,
            options,
        ))
    }

    /// Starts an export job of the dataset (name or id) on the server, as
    /// [`crate::formats::start_server_export`] does.
    pub fn start_server_export(
        &self,
        dataset: &str,
        format: Format,
        options: &ServerExportOptions,
    ) -> Result<ExportJob> {
        self.block_on(crate::formats::start_server_export(
            &self.inner,
            dataset,
            format,
            options,
        ))
    }

    /// The state of an export job (see [`crate::formats::server_export`]).
    pub fn server_export(&self, dataset: &str, id: &str) -> Result<ExportJob> {
        self.block_on(crate::formats::server_export(&self.inner, dataset, id))
    }

    /// The dataset's export jobs, newest first: `limit` (at most 200) from `offset` (see
    /// [`crate::formats::list_server_exports`]).
    pub fn list_server_exports(
        &self,
        dataset: &str,
        limit: usize,
        offset: usize,
    ) -> Result<ExportJobPage> {
        self.block_on(crate::formats::list_server_exports(
            &self.inner,
            dataset,
            limit,
            offset,
        ))
    }

    /// Cancels a queued or running export job, or deletes an ended one with its archive (see
    /// [`crate::formats::stop_server_export`]).
    pub fn stop_server_export(&self, dataset: &str, id: &str) -> Result<StoppedExport> {
        self.block_on(crate::formats::stop_server_export(&self.inner, dataset, id))
    }

    /// Has the server export the dataset, waits for the job and saves its tar archive at
    /// `dest`, as [`crate::formats::export_archive`] does.
    pub fn export_archive(
        &self,
        dataset: &str,
        format: Format,
        dest: impl AsRef<Path>,
        options: ServerExportOptions,
    ) -> Result<ExportJob> {
        self.block_on(crate::formats::export_archive(
            &self.inner,
            dataset,
            format,
            dest,
            options,
        ))
    }
}

/// Blocking [`crate::Datasets`].
#[derive(Debug)]
pub struct Datasets<'a>(&'a Client);

impl<'a> Datasets<'a> {
    /// Up to `limit` datasets, oldest first (see [`crate::Datasets::list`]).
    pub fn list(&self, limit: usize) -> Result<Vec<Dataset>> {
        self.0.block_on(self.0.inner.datasets().list(limit))
    }

    /// Every dataset, oldest first, fetched a page at a time as the iterator advances (see
    /// [`crate::Datasets::iter`]).
    ///
    /// ```no_run
    /// # fn run(client: pictograph::blocking::Client) -> pictograph::Result<()> {
    /// for ds in client.datasets().iter().page_size(100) {
    ///     println!("{}", ds?.name);
    /// }
    /// let all = client.datasets().iter().all()?;
    /// # Ok(()) }
    /// ```
    pub fn iter(&self) -> Pager<'a, Dataset> {
        Pager {
            client: self.0,
            inner: self.0.inner.datasets().iter(),
        }
    }

    /// One page: `limit` datasets after skipping `offset`.
    pub fn list_page(&self, limit: usize, offset: usize) -> Result<Vec<Dataset>> {
        self.0
            .block_on(self.0.inner.datasets().list_page(limit, offset))
    }

    /// A dataset by name.
    pub fn get(&self, name: &str) -> Result<Dataset> {
        self.0.block_on(self.0.inner.datasets().get(name))
    }

    /// A dataset by name, with its images when asked.
    pub fn get_with(&self, name: &str, options: GetOptions) -> Result<Dataset> {
        self.0
            .block_on(self.0.inner.datasets().get_with(name, options))
    }

    /// A dataset by id.
    pub fn get_by_id(&self, id: &str) -> Result<Dataset> {
        self.0.block_on(self.0.inner.datasets().get_by_id(id))
    }

    /// A page of a dataset's images, filtered by status and folder.
    pub fn list_images(&self, dataset: &str, options: ImageListOptions) -> Result<ImagePage> {
        self.0
            .block_on(self.0.inner.datasets().list_images(dataset, options))
    }

    /// Walks the images `options` select, a page at a time (see
    /// [`crate::Datasets::image_pages`]): the first page by offset, the next ones by key, so
    /// every page costs the server the same however deep it lies. Nothing is fetched before
    /// the first [`ImagePages::next_page`].
    ///
    /// ```no_run
    /// # fn run(client: pictograph::blocking::Client) -> pictograph::Result<()> {
    /// let mut pages = client.datasets().image_pages("road-signs", Default::default());
    /// while let Some(page) = pages.next_page(1000)? {
    ///     for image in &page.images {
    ///         println!("{}", image.filename);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn image_pages(&self, dataset: &str, options: ImageListOptions) -> ImagePages<'a> {
        ImagePages {
            client: self.0,
            inner: self.0.inner.datasets().image_pages(dataset, options),
        }
    }

    /// Downloads a dataset (see [`crate::Datasets::download`]); with
    /// [`DownloadOptions::show_progress`] a bar is drawn on a terminal.
    pub fn download(
        &self,
        name: &str,
        output_dir: impl AsRef<Path>,
        options: DownloadOptions,
    ) -> Result<DownloadReport> {
        self.0
            .block_on(self.0.inner.datasets().download(name, output_dir, options))
    }
}

/// Blocking [`crate::ImagePages`]: the pages of an image listing, one
/// [`ImagePages::next_page`] at a time.
#[derive(Debug)]
pub struct ImagePages<'a> {
    client: &'a Client,
    inner: crate::ImagePages,
}

impl ImagePages<'_> {
    /// The next page, of up to `limit` images (the server's cap is 10,000); `None` once the
    /// listing has ended (see [`crate::ImagePages::next_page`]).
    pub fn next_page(&mut self, limit: usize) -> Result<Option<ImagePage>> {
        self.client.block_on(self.inner.next_page(limit))
    }
}

/// Blocking [`crate::Projects`].
#[derive(Debug)]
pub struct Projects<'a>(&'a Client);

impl<'a> Projects<'a> {
    /// Creates a dataset.
    pub fn create(&self, name: &str, options: CreateProject) -> Result<Project> {
        self.0
            .block_on(self.0.inner.projects().create(name, options))
    }

    /// Renames or edits a dataset.
    pub fn update(&self, name: &str, changes: UpdateProject) -> Result<Project> {
        self.0
            .block_on(self.0.inner.projects().update(name, changes))
    }

    /// Deletes a dataset and its images.
    pub fn delete(&self, name: &str) -> Result<DeleteSummary> {
        self.0.block_on(self.0.inner.projects().delete(name))
    }

    /// A dataset as a project.
    pub fn get(&self, name: &str) -> Result<Project> {
        self.0.block_on(self.0.inner.projects().get(name))
    }

    /// One page of projects.
    pub fn list(&self, limit: usize, offset: usize) -> Result<Vec<Project>> {
        self.0.block_on(self.0.inner.projects().list(limit, offset))
    }

    /// Every project, oldest first, a page at a time (see [`crate::Projects::iter`]).
    pub fn iter(&self) -> Pager<'a, Project> {
        Pager {
            client: self.0,
            inner: self.0.inner.projects().iter(),
        }
    }
}

/// A blocking [`crate::Pager`]: an [`Iterator`] of items that fetches the next page when the
/// current one is used up. Nothing is fetched before the first call to `next`.
#[derive(Debug)]
pub struct Pager<'a, T> {
    client: &'a Client,
    inner: crate::Pager<T>,
}

impl<T: Send + 'static> Pager<'_, T> {
    /// Items per request (see [`crate::Pager::page_size`]).
    pub fn page_size(mut self, n: usize) -> Self {
        self.inner = self.inner.page_size(n);
        self
    }

    /// Stops after `n` items (0 fetches nothing).
    pub fn max_total(mut self, n: usize) -> Self {
        self.inner = self.inner.max_total(n);
        self
    }

    /// Collects every item.
    pub fn all(self) -> Result<Vec<T>> {
        self.client.block_on(self.inner.all())
    }

    /// The first item, fetching a single page.
    pub fn first(self) -> Result<Option<T>> {
        self.client.block_on(self.inner.first())
    }
}

impl<T: Send + 'static> Iterator for Pager<'_, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        use futures::StreamExt;
        self.client.block_on(self.inner.next())
    }
}

/// Blocking [`crate::Images`].
#[derive(Debug)]
pub struct Images<'a>(&'a Client);

impl Images<'_> {
    /// An image's metadata.
    pub fn get(&self, image_id: &str) -> Result<Image> {
        self.0.block_on(self.0.inner.images().get(image_id))
    }

    /// Uploads a file into a dataset (by id), with an optional folder, filename override
    /// and idempotency key.
    pub fn upload(
        &self,
        dataset_id: &str,
        file_path: impl AsRef<Path>,
        options: UploadOptions,
    ) -> Result<Image> {
        self.0
            .block_on(self.0.inner.images().upload(dataset_id, file_path, options))
    }

    /// Downloads an image's bytes to `output_path`; answers the size.
    pub fn download(&self, image_id: &str, output_path: impl AsRef<Path>) -> Result<u64> {
        self.0
            .block_on(self.0.inner.images().download(image_id, output_path))
    }

    /// Archives the image, or removes it for good with `permanent`.
    pub fn delete(&self, image_id: &str, permanent: bool) -> Result<()> {
        self.0
            .block_on(self.0.inner.images().delete(image_id, permanent))
    }
}

/// Blocking [`crate::Annotations`].
#[derive(Debug)]
pub struct Annotations<'a>(&'a Client);

impl Annotations<'_> {
    /// The image's annotations, with their metadata.
    pub fn get(&self, image_id: &str) -> Result<Vec<Annotation>> {
        self.0.block_on(self.0.inner.annotations().get(image_id))
    }

    /// Replaces the image's annotations.
    pub fn save(&self, image_id: &str, annotations: &[Annotation]) -> Result<SaveResult> {
        self.0
            .block_on(self.0.inner.annotations().save(image_id, annotations))
    }

    /// Removes every annotation of the image.
    pub fn delete(&self, image_id: &str) -> Result<DeleteResult> {
        self.0.block_on(self.0.inner.annotations().delete(image_id))
    }

    /// A bounding box from `[x, y, width, height]`.
    pub fn create_bbox(
        &self,
        id: impl Into<String>,
        name: impl Into<String>,
        bbox: impl Into<BoundingBox>,
    ) -> Annotation {
        Annotation::bbox(id, name, bbox)
    }

    /// A polygon from `[x, y]` points.
    pub fn create_polygon<P: Into<Point>>(
        &self,
        id: impl Into<String>,
        name: impl Into<String>,
        points: impl IntoIterator<Item = P>,
    ) -> Annotation {
        Annotation::polygon(id, name, points)
    }

    /// A polyline from `[x, y]` points.
    pub fn create_polyline<P: Into<Point>>(
        &self,
        id: impl Into<String>,
        name: impl Into<String>,
        points: impl IntoIterator<Item = P>,
    ) -> Annotation {
        Annotation::polyline(id, name, points)
    }

    /// A keypoint at `[x, y]`.
    pub fn create_keypoint(
        &self,
        id: impl Into<String>,
        name: impl Into<String>,
        point: impl Into<Point>,
    ) -> Annotation {
        Annotation::keypoint(id, name, point)
    }
}

/// Blocking [`crate::Batch`].
#[derive(Debug)]
pub struct Batch<'a>(&'a Client);

impl Batch<'_> {
    /// Moves images to a folder.
    pub fn move_images<S: AsRef<str>>(
        &self,
        dataset_name: &str,
        image_ids: &[S],
        target_folder_path: &str,
    ) -> Result<BatchResult> {
        self.0.block_on(self.0.inner.batch().move_images(
            dataset_name,
            image_ids,
            target_folder_path,
        ))
    }

    /// Copies images to a folder.
    pub fn copy<S: AsRef<str>>(
        &self,
        dataset_name: &str,
        image_ids: &[S],
        options: CopyOptions,
    ) -> Result<BatchResult> {
        self.0
            .block_on(self.0.inner.batch().copy(dataset_name, image_ids, options))
    }

    /// Archives images, or removes them for good with `permanent`.
    pub fn delete<S: AsRef<str>>(
        &self,
        dataset_name: &str,
        image_ids: &[S],
        permanent: bool,
    ) -> Result<BatchResult> {
        self.0.block_on(
            self.0
                .inner
                .batch()
                .delete(dataset_name, image_ids, permanent),
        )
    }

    /// Updates status, display name or archive flag of images.
    pub fn update<S: AsRef<str>>(
        &self,
        dataset_name: &str,
        image_ids: &[S],
        update: ImageUpdate,
    ) -> Result<BatchResult> {
        self.0
            .block_on(self.0.inner.batch().update(dataset_name, image_ids, update))
    }
}
