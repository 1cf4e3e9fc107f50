//! Multi-step workflows built on the resources.

use crate::bulk;
use crate::client::Client;
use crate::datasets::Progress;
use crate::error::{Error, Result};
use crate::images::{is_supported, mime_for_extension};
use crate::projects::CreateProject;
use futures::StreamExt;
use pictograph_core::names;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Options of [`upload_dataset_from_folder`].
#[derive(Clone)]
pub struct FolderUploadOptions {
    /// First-level sub-directories become virtual folders (`stop/night/5.jpg` → `/stop`);
    /// otherwise everything goes to `/`. Default true.
    pub organize_by_class: bool,
    /// Upload several files at once. Default true.
    pub parallel: bool,
    /// Files uploaded at once when `parallel`. Default 8.
    pub max_workers: usize,
    /// Count name conflicts as skips rather than failures. Default true.
    pub skip_existing: bool,
    /// Create the dataset when it does not exist (else [`Error::NotFound`]). Default true.
    pub create_if_missing: bool,
    /// `(completed, total, file)` after each file, whatever its outcome; `file` is the path
    /// relative to the folder.
    pub progress: Option<Progress>,
    /// Called after each file with how it ended, before `progress`.
    pub on_file: Option<FileCallback>,
}

/// How one file of a folder upload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOutcome {
    /// Its bytes were sent and registered.
    Uploaded,
    /// An image of its name was already in its folder (with `skip_existing`); nothing sent.
    Skipped,
    /// It is in [`UploadReport::failures`].
    Failed,
}

/// A callback of [`FolderUploadOptions::on_file`]: the file's path relative to the folder,
/// and how it ended.
pub type FileCallback = Arc<dyn Fn(&Path, FileOutcome) + Send + Sync>;

impl Default for FolderUploadOptions {
    fn default() -> Self {
        FolderUploadOptions {
            organize_by_class: true,
            parallel: true,
            max_workers: 8,
            skip_existing: true,
            create_if_missing: true,
            progress: None,
            on_file: None,
        }
    }
}

impl std::fmt::Debug for FolderUploadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FolderUploadOptions")
            .field("organize_by_class", &self.organize_by_class)
            .field("parallel", &self.parallel)
            .field("max_workers", &self.max_workers)
            .field("skip_existing", &self.skip_existing)
            .field("create_if_missing", &self.create_if_missing)
            .field("progress", &self.progress.is_some())
            .field("on_file", &self.on_file.is_some())
            .finish()
    }
}

impl FolderUploadOptions {
    /// Sets `organize_by_class`.
    pub fn organize_by_class(mut self, yes: bool) -> Self {
        self.organize_by_class = yes;
        self
    }

    /// Sets `parallel`.
    pub fn parallel(mut self, yes: bool) -> Self {
        self.parallel = yes;
        self
    }

    /// Sets `max_workers` (at least 1).
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max_workers = n.max(1);
        self
    }

    /// Sets `skip_existing`.
    pub fn skip_existing(mut self, yes: bool) -> Self {
        self.skip_existing = yes;
        self
    }

    /// Sets `create_if_missing`.
    pub fn create_if_missing(mut self, yes: bool) -> Self {
        self.create_if_missing = yes;
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

    /// Sets the callback told how each file ended (uploaded, skipped or failed), e.g. to
    /// count only the bytes actually sent.
    pub fn on_file(mut self, f: impl Fn(&Path, FileOutcome) + Send + Sync + 'static) -> Self {
        self.on_file = Some(Arc::new(f));
        self
    }
}

/// A file that was not uploaded.
#[derive(Debug, Clone)]
pub struct UploadFailure {
    /// The local file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
    /// Whether running the upload again may succeed for this file (the network or the
    /// server failed), rather than the server refusing it (not a valid image, too large, its
    /// name taken without skipping) or the file being unreadable.
    pub retryable: bool,
}

/// What [`upload_dataset_from_folder`] did.
#[derive(Debug, Clone, Default)]
pub struct UploadReport {
    /// The dataset.
    pub dataset_name: String,
    /// Its id.
    pub dataset_id: String,
    /// Image files found.
    pub images_attempted: usize,
    /// Uploaded now.
    pub images_uploaded: usize,
    /// Already there (name conflicts, with `skip_existing`).
    pub images_skipped: usize,
    /// Files that failed.
    pub failures: Vec<UploadFailure>,
}

impl UploadReport {
    /// True only with no failure and at least one upload (an empty folder is not a success).
    pub fn success(&self) -> bool {
        self.failures.is_empty() && self.images_uploaded > 0
    }
}

/// Uploads every supported image under `folder` (recursively) into the dataset `dataset_name`.
///
/// Creates the dataset when missing (unless `create_if_missing` is off), maps first-level
/// sub-directories to virtual folders, and is idempotent: a second run skips every file the
/// first one uploaded. Supported extensions: jpg, jpeg, png, webp, bmp, tif, tiff, gif, heic.
///
/// [`Error::FileNotFound`] when `folder` does not exist or is not a directory (before any
/// request). Per-file errors (network, validation, conflict) go to
/// [`UploadReport::failures`], never to an `Err`.
///
/// ```no_run
/// # async fn run(client: pictograph::Client) -> pictograph::Result<()> {
/// use pictograph::workflows::{upload_dataset_from_folder, FolderUploadOptions};
/// let report = upload_dataset_from_folder(&client, "road-signs", "./road_signs",
///     FolderUploadOptions::default()).await?;
/// println!("{} uploaded, {} skipped", report.images_uploaded, report.images_skipped);
/// # Ok(()) }
/// ```
pub async fn upload_dataset_from_folder(
    client: &Client,
    dataset_name: &str,
    folder: impl AsRef<Path>,
    options: FolderUploadOptions,
) -> Result<UploadReport> {
    let root = folder.as_ref().to_path_buf();
    match tokio::fs::metadata(&root).await {
        Ok(m) if m.is_dir() => {}
        _ => return Err(Error::FileNotFound(root)),
    }
    let dataset = match client.projects().get(dataset_name).await {
        Ok(d) => d,
        Err(Error::NotFound(_)) if options.create_if_missing => {
            match client
                .projects()
                .create(dataset_name, CreateProject::default())
                .await
            {
                Ok(d) => d,
                // Someone else created it meanwhile.
                Err(Error::Conflict(_)) => client.projects().get(dataset_name).await?,
                Err(e) => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };

    let walk_root = root.clone();
    let files = tokio::task::spawn_blocking(move || walk(&walk_root))
        .await
        .map_err(|e| Error::io(&root, std::io::Error::other(e)))?
        .map_err(|(p, e)| Error::io(p, e))?;

    let total = files.len();
    let mut report = UploadReport {
        dataset_name: dataset_name.to_string(),
        dataset_id: dataset.id.clone(),
        images_attempted: total,
        ..UploadReport::default()
    };
    let workers = if options.parallel {
        options.max_workers.max(1)
    } else {
        1
    };
    // Batches are signed and registered in one request each; two run at once so that one
    // batch's PUTs overlap the other's bookkeeping.
    let batches: Vec<Vec<PathBuf>> = files.chunks(bulk::BATCH).map(<[_]>::to_vec).collect();
    let in_flight = if workers > 1 { 2 } else { 1 };
    let halt = bulk::Halt::default();
    let mut results = futures::stream::iter(batches)
        .map(|batch| {
            let client = client.clone();
            let halt = halt.clone();
            let dataset_id = dataset.id.clone();
            let root = root.clone();
            let organize = options.organize_by_class;
            let skip = options.skip_existing;
            async move {
                let mut planned = Vec::new();
                let mut outcomes: Vec<Option<bulk::Outcome>> = Vec::new();
                for rel in &batch {
                    match plan(&root, rel, organize).await {
                        Ok(p) => {
                            planned.push(p);
                            outcomes.push(None);
                        }
                        Err(e) => outcomes.push(Some(bulk::Outcome::refused(e.to_string()))),
                    }
                }
                let per_batch = workers.div_ceil(in_flight);
                let mut sent =
                    bulk::upload_batch(&client, &dataset_id, &planned, skip, per_batch, &halt)
                        .await
                        .into_iter();
                let outcomes: Vec<bulk::Outcome> = outcomes
                    .into_iter()
                    .map(|o| {
                        o.or_else(|| sent.next())
                            .unwrap_or_else(bulk::Outcome::missing)
                    })
                    .collect();
                (batch, root, outcomes)
            }
        })
        .buffer_unordered(in_flight);
    let mut done = 0;
    while let Some((batch, root, outcomes)) = results.next().await {
        for (rel, outcome) in batch.into_iter().zip(outcomes) {
            done += 1;
            let ended = match outcome {
                bulk::Outcome::Uploaded => {
                    report.images_uploaded += 1;
                    FileOutcome::Uploaded
                }
                bulk::Outcome::Exists(_) if options.skip_existing => {
                    report.images_skipped += 1;
                    FileOutcome::Skipped
                }
                bulk::Outcome::Exists(reason) => {
                    report.failures.push(UploadFailure {
                        path: root.join(&rel),
                        reason: format!("conflict: {reason}"),
                        retryable: false,
                    });
                    FileOutcome::Failed
                }
                bulk::Outcome::Failed { reason, retryable } => {
                    report.failures.push(UploadFailure {
                        path: root.join(&rel),
                        reason,
                        retryable,
                    });
                    FileOutcome::Failed
                }
            };
            if let Some(f) = &options.on_file {
                f(&rel, ended);
            }
            if let Some(p) = &options.progress {
                p(done, total, Some(&rel.to_string_lossy()));
            }
        }
    }
    Ok(report)
}

/// Where and how one file goes: its virtual folder (the first-level sub-directory with
/// `organize_by_class`), name, size and type.
async fn plan(root: &Path, rel: &Path, organize_by_class: bool) -> Result<bulk::Planned> {
    let folder = match rel.parent().and_then(|p| p.components().next()) {
        Some(first) if organize_by_class => {
            names::folder_path(&first.as_os_str().to_string_lossy())
                .map_err(|e| Error::InvalidArgument(e.0))?
        }
        _ => "/".to_string(),
    };
    let path = root.join(rel);
    let meta = tokio::fs::metadata(&path)
        .await
        .map_err(|e| Error::io(&path, e))?;
    let filename = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::InvalidArgument(format!("{} has no file name", rel.display())))?;
    let content_type = names::extension(&filename)
        .and_then(|e| mime_for_extension(&e))
        .unwrap_or("application/octet-stream")
        .to_string();
    Ok(bulk::Planned {
        path,
        folder,
        filename,
        size: meta.len(),
        content_type,
    })
}

/// Supported image files under `root`, as sorted paths relative to it. Symlinked files are
/// followed; symlinked directories are not (no cycles).
fn walk(root: &Path) -> std::result::Result<Vec<PathBuf>, (PathBuf, std::io::Error)> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let entries = std::fs::read_dir(&dir).map_err(|e| (dir.clone(), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| (dir.clone(), e))?;
            let child = rel.join(entry.file_name());
            let ft = entry.file_type().map_err(|e| (entry.path(), e))?;
            if ft.is_dir() {
                stack.push(child);
            } else if (ft.is_file() || (ft.is_symlink() && entry.path().is_file()))
                && is_supported(&child)
            {
                out.push(child);
            }
        }
    }
    out.sort();
    Ok(out)
}
