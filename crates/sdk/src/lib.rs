//! Rust SDK for the Pictograph developer API.
//!
//! The same surface as the official Python SDK, async and streaming:
//!
//! | resource | calls |
//! | --- | --- |
//! | [`Client::datasets`] | `list`, `list_page`, `iter` (a [`futures::Stream`]), `list_images`, `image_pages`, `get`, `get_with`, `get_by_id`, `download` |
//! | [`Client::projects`] | `create`, `update`, `delete`, `get`, `list`, `iter` |
//! | [`Client::images`] | `get`, `upload`, `download`, `delete` |
//! | [`Client::annotations`] | `get`, `save`, `delete`, `create_bbox` / `_polygon` / `_polyline` / `_keypoint` |
//! | [`Client::batch`] | `move_images`, `copy`, `delete`, `update` → [`BatchResult`] |
//! | [`workflows`] | [`workflows::upload_dataset_from_folder`], [`workflows::upload_scanned_folder`] → [`UploadReport`] |
//! | [`formats`] | [`formats::export_dataset`] (COCO, YOLO, VOC, pictograph) → [`formats::ExportReport`], [`formats::import_folder`] → [`formats::ImportReport`] |
//!
//! [`blocking::Client`] offers the same calls without async, for scripts (it owns a small
//! runtime; dropping a client closes its pool, like the Python client's `with` block).
//!
//! Every request is retried on transport errors, 408, 429 and 5xx with exponential backoff
//! and jitter; a 429's `Retry-After` is waited out up to a bound (default 120 s), beyond
//! which [`Error::RateLimit`] is returned with `retry_after`. Every write carries an
//! `Idempotency-Key` that its retries reuse, so a retried write never happens twice.
//! Uploads stream files from disk and downloads stream to disk: memory stays flat whatever
//! the file and dataset sizes.
//!
//! ```no_run
//! use pictograph::{Annotation, Client};
//! use pictograph::workflows::{upload_dataset_from_folder, FolderUploadOptions};
//!
//! # async fn run() -> Result<(), pictograph::Error> {
//! let client = Client::builder("pk_live_...").base_url("http://127.0.0.1:8080").build()?;
//! let report = upload_dataset_from_folder(&client, "road-signs", "./road_signs",
//!     FolderUploadOptions::default()).await?;
//! let ds = client.datasets().get_with("road-signs", pictograph::GetOptions {
//!     include_images: true, ..Default::default() }).await?;
//! let image = &ds.images.unwrap_or_default()[0];
//! client.annotations().save(&image.id, &[
//!     Annotation::bbox("ann-1", "stop", [10.0, 20.0, 30.0, 40.0]).with_confidence(0.9),
//! ]).await?;
//! # Ok(()) }
//! ```
//!
//! Errors are typed: [`Error::Auth`] ([`AuthenticationError`]), [`Error::Forbidden`],
//! [`Error::NotFound`] ([`NotFoundError`]), [`Error::Conflict`], [`Error::Validation`]
//! (with [`FieldError`]s), [`Error::RateLimit`] ([`RateLimitError`]), [`Error::Server`],
//! [`Error::Api`] (any other status, e.g. 413 and 415) and [`Error::Transport`]. Each API
//! error carries its status, message and `x-request-id`. [`Error::is_transient`] tells
//! failures that may pass when tried again (network, 5xx, 429) from refusals; a folder
//! upload's [`UploadFailure::retryable`] says the same of each failed file.

#![deny(missing_docs)]

pub mod annotations;
pub mod batch;
pub mod blocking;
mod bulk;
mod client;
pub mod datasets;
pub mod error;
pub mod formats;
mod http;
pub mod images;
pub mod models;
mod pager;
mod pathset;
pub mod projects;
pub mod workflows;

pub use annotations::{
    Annotation, Annotations, BoundingBox, DeleteResult, Point, PolygonGeometry, PolylineGeometry,
    SaveResult,
};
pub use batch::{Batch, BatchFailure, BatchResult, CopyOptions, DuplicateHandling, ImageUpdate};
pub use client::{
    Client, ClientBuilder, DEFAULT_BASE_URL, DEFAULT_MAX_RETRIES, DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_TIMEOUT,
};
pub use datasets::{
    Datasets, DownloadFailure, DownloadKind, DownloadMode, DownloadOptions, DownloadOutcome,
    DownloadReport, GetOptions, ImageListOptions, ImagePage, ImagePages, Progress,
};
pub use error::{
    ApiError, AuthError, AuthenticationError, ConflictError, Error, FieldError, ForbiddenError,
    NotFoundError, RateLimitError, Result, ServerError, ValidationError,
};
pub use http::RetryNotice;
pub use images::{Images, UploadOptions};
pub use models::{Dataset, DatasetClass, DeleteSummary, Image, Project, Status, StatusCounts};
pub use pager::Pager;
pub use projects::{CreateProject, Projects, UpdateProject};
pub use workflows::{FileOutcome, FolderUploadOptions, UploadFailure, UploadReport};
