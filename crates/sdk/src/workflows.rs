//! Multi-step workflows built on the resources.

use crate::bulk;
use crate::client::Client;
use crate::datasets::Progress;
use crate::error::{Error, Result};
use crate::images::{is_supported, mime_for_extension};
use crate::projects::CreateProject;
use futures::StreamExt;
use pictograph_core::names;
use std::collections::HashMap;
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
    /// Image files found (links to missing files named like an image included).
    pub images_attempted: usize,
    /// Uploaded now.
    pub images_uploaded: usize,
    /// Already there (name conflicts, with `skip_existing`).
    pub images_skipped: usize,
    /// Files that failed, and folders that could not be read.
    pub failures: Vec<UploadFailure>,
    /// What was passed over without being a failure: symbolic links that loop back into a
    /// folder above them, and broken links not named like an image. One line each.
    pub notes: Vec<String>,
}

impl UploadReport {
    /// True only with no failure and at least one upload (an empty folder is not a success).
    pub fn success(&self) -> bool {
        self.failures.is_empty() && self.images_uploaded > 0
    }
}

/// One image file found by [`scan_folder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedFile {
    /// Its path relative to the folder, through any symbolic links.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

/// What [`scan_folder`] found: the files a folder upload sends, and what it passes over.
#[derive(Debug, Clone, Default)]
pub struct FolderScan {
    /// The folder.
    pub root: PathBuf,
    /// Supported image files, sorted by path.
    pub files: Vec<ScannedFile>,
    /// Files of other types, not uploaded.
    pub ignored: usize,
    /// Sub-folders that could not be read (their path and the OS error), sorted by path.
    pub unreadable_folders: Vec<UploadFailure>,
    /// Entries named like an image that cannot be read (a link to a missing file), sorted by
    /// path.
    pub broken_files: Vec<UploadFailure>,
    /// Links passed over: loops, and broken links not named like an image.
    pub notes: Vec<String>,
}

/// Uploads every supported image under `folder` (recursively) into the dataset `dataset_name`.
///
/// Creates the dataset when missing (unless `create_if_missing` is off), maps first-level
/// sub-directories to virtual folders, and is idempotent: a second run skips every file the
/// first one uploaded. Supported extensions: jpg, jpeg, png, webp, bmp, tif, tiff, gif, heic.
///
/// Symbolic links to files and folders are followed (a link's name is the name used). A
/// link back into a folder above it is a loop, passed over with a note in
/// [`UploadReport::notes`]; a broken link named like an image is a failure. A sub-folder
/// that cannot be read is a failure naming it, and the rest is uploaded.
///
/// Two files that would land on the same name (`cats/day/1.jpg` and `cats/night/1.jpg` both
/// become `/cats/1.jpg`, and with `organize_by_class` off any two files of one name): the
/// first in sorted path order is uploaded, each other one is a failure naming it. Only names
/// already on the server before the run count as skipped.
///
/// [`Error::FileNotFound`] when `folder` does not exist or is not a directory (before any
/// request). Per-file errors (network, validation, conflict, unreadable file) go to
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
    let scan_root = root.clone();
    let scan = tokio::task::spawn_blocking(move || scan_folder(&scan_root))
        .await
        .map_err(|e| Error::io(&root, std::io::Error::other(e)))??;
    upload_scanned_folder(client, dataset_name, scan, options).await
}

/// Uploads what [`scan_folder`] found, as [`upload_dataset_from_folder`] does: for callers
/// that show totals before the upload starts, without walking the folder twice.
pub async fn upload_scanned_folder(
    client: &Client,
    dataset_name: &str,
    scan: FolderScan,
    options: FolderUploadOptions,
) -> Result<UploadReport> {
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

    let FolderScan {
        root,
        files,
        unreadable_folders,
        broken_files,
        notes,
        ..
    } = scan;
    let total = files.len() + broken_files.len();
    let mut report = UploadReport {
        dataset_name: dataset_name.to_string(),
        dataset_id: dataset.id.clone(),
        images_attempted: total,
        failures: unreadable_folders,
        notes,
        ..UploadReport::default()
    };
    let mut done = 0;
    let mut ended = |report: &mut UploadReport, rel: &Path, outcome: bulk::Outcome| {
        done += 1;
        let how = match outcome {
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
                    path: root.join(rel),
                    reason: format!("conflict: {reason}"),
                    retryable: false,
                });
                FileOutcome::Failed
            }
            bulk::Outcome::Failed { reason, retryable } => {
                report.failures.push(UploadFailure {
                    path: root.join(rel),
                    reason,
                    retryable,
                });
                FileOutcome::Failed
            }
        };
        if let Some(f) = &options.on_file {
            f(rel, how);
        }
        if let Some(p) = &options.progress {
            p(done, total, Some(&rel.to_string_lossy()));
        }
    };

    // Files refused before any request: broken links, names no folder can take, and names
    // another file of this run takes.
    let mut planned = Vec::new();
    for failure in broken_files {
        let rel = failure.path.strip_prefix(&root).unwrap_or(&failure.path);
        ended(
            &mut report,
            rel,
            bulk::Outcome::refused(failure.reason.clone()),
        );
    }
    for (rel, plan) in plan_all(&root, files, options.organize_by_class) {
        match plan {
            Ok(p) => planned.push((rel, p)),
            Err(reason) => ended(&mut report, &rel, bulk::Outcome::refused(reason)),
        }
    }

    let workers = if options.parallel {
        options.max_workers.max(1)
    } else {
        1
    };
    // Batches are signed and registered in one request each; two run at once so that one
    // batch's PUTs overlap the other's bookkeeping.
    let batches: Vec<Vec<(PathBuf, bulk::Planned)>> =
        planned.chunks(bulk::BATCH).map(<[_]>::to_vec).collect();
    let in_flight = if workers > 1 { 2 } else { 1 };
    let halt = bulk::Halt::default();
    let mut results = futures::stream::iter(batches)
        .map(|batch| {
            let client = client.clone();
            let halt = halt.clone();
            let dataset_id = dataset.id.clone();
            let skip = options.skip_existing;
            async move {
                let (rels, files): (Vec<PathBuf>, Vec<bulk::Planned>) = batch.into_iter().unzip();
                let per_batch = workers.div_ceil(in_flight);
                let outcomes =
                    bulk::upload_batch(&client, &dataset_id, &files, skip, per_batch, &halt).await;
                (rels, outcomes)
            }
        })
        .buffer_unordered(in_flight);
    while let Some((rels, outcomes)) = results.next().await {
        let mut outcomes = outcomes.into_iter();
        for rel in rels {
            let outcome = outcomes.next().unwrap_or_else(bulk::Outcome::missing);
            ended(&mut report, &rel, outcome);
        }
    }
    Ok(report)
}

/// Where each file goes (see [`plan`]), in the order of `files` (sorted by path). A file
/// whose target name an earlier one of the run already takes is refused with a reason
/// naming that one, so that the run never conflicts with itself.
fn plan_all(
    root: &Path,
    files: Vec<ScannedFile>,
    organize_by_class: bool,
) -> Vec<(PathBuf, std::result::Result<bulk::Planned, String>)> {
    let mut taken: HashMap<(String, String), PathBuf> = HashMap::new();
    files
        .into_iter()
        .map(|f| {
            let planned = plan(root, &f, organize_by_class).map_err(|e| e.to_string());
            let planned = planned.and_then(|p| {
                let key = (p.folder.clone(), p.filename.trim().to_string());
                match taken.get(&key) {
                    Some(first) => Err(taken_by(first, &p, organize_by_class)),
                    None => {
                        taken.insert(key, f.path.clone());
                        Ok(p)
                    }
                }
            });
            (f.path, planned)
        })
        .collect()
}

/// Why a file is not uploaded when `first`, earlier in the run, lands on its name.
fn taken_by(first: &Path, p: &bulk::Planned, organize_by_class: bool) -> String {
    let target = match p.folder.as_str() {
        "/" => format!("/{}", p.filename.trim()),
        folder => format!("{folder}/{}", p.filename.trim()),
    };
    let why = if organize_by_class {
        "nested folders go to their first-level folder"
    } else {
        "every file goes to /"
    };
    format!(
        "another file of this folder, {}, is uploaded as {target} ({why})",
        first.display()
    )
}

/// Where and how one file goes: its virtual folder (the first-level sub-directory with
/// `organize_by_class`), name, size and type.
fn plan(root: &Path, file: &ScannedFile, organize_by_class: bool) -> Result<bulk::Planned> {
    let rel = &file.path;
    let folder = match rel.parent().and_then(|p| p.components().next()) {
        Some(first) if organize_by_class => {
            names::folder_path(&first.as_os_str().to_string_lossy())
                .map_err(|e| Error::InvalidArgument(e.0))?
        }
        _ => "/".to_string(),
    };
    let filename = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::InvalidArgument(format!("{} has no file name", rel.display())))?;
    let content_type = names::extension(&filename)
        .and_then(|e| mime_for_extension(&e))
        .unwrap_or("application/octet-stream")
        .to_string();
    Ok(bulk::Planned {
        path: root.join(rel),
        folder,
        filename,
        size: file.size,
        content_type,
    })
}

/// The identity of a directory, to tell when a link leads back into one being walked.
#[cfg(unix)]
fn dir_id(_path: &Path, meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

/// The identity of a directory, to tell when a link leads back into one being walked.
#[cfg(not(unix))]
fn dir_id(path: &Path, _meta: &std::fs::Metadata) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok()
}

/// Walks `folder` for a folder upload (blocking: from async code, call it in
/// `spawn_blocking`).
///
/// Recursive; symbolic links to files and folders are followed, a link back into a folder
/// above it (a loop) is passed over with a note, and a broken link is a broken file when
/// named like an image (else a note). A sub-folder that cannot be read is recorded with its
/// error and the walk goes on. [`Error::FileNotFound`] when `folder` does not exist or is not
/// a directory, [`Error::Io`] when it cannot be read itself.
pub fn scan_folder(folder: impl AsRef<Path>) -> Result<FolderScan> {
    let root = folder.as_ref().to_path_buf();
    let root_meta = std::fs::metadata(&root).map_err(|e| Error::io(&root, e))?;
    if !root_meta.is_dir() {
        return Err(Error::FileNotFound(root));
    }
    let mut scan = FolderScan {
        root: root.clone(),
        ..FolderScan::default()
    };
    // Each folder to read, with the identities of it and the folders above it.
    let mut stack = vec![(
        PathBuf::new(),
        dir_id(&root, &root_meta).into_iter().collect::<Vec<_>>(),
    )];
    let mut first = true;
    while let Some((rel, above)) = stack.pop() {
        let dir = root.join(&rel);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if first => return Err(Error::io(&dir, e)),
            Err(e) => {
                scan.unreadable_folders.push(unreadable_folder(dir, &e));
                continue;
            }
        };
        first = false;
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    scan.unreadable_folders
                        .push(unreadable_folder(dir.clone(), &e));
                    break;
                }
            };
            let child = rel.join(entry.file_name());
            let path = entry.path();
            let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
            // Links are followed: the metadata is the target's.
            let meta = if is_link {
                std::fs::metadata(&path)
            } else {
                entry.metadata()
            };
            let meta = match meta {
                Ok(meta) => meta,
                // Gone since the folder was listed.
                Err(e) if !is_link && e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) if is_supported(&child) => {
                    scan.broken_files.push(unreadable_file(path, is_link, &e));
                    continue;
                }
                Err(e) if is_link => {
                    scan.notes.push(format!(
                        "skipped {}: {}",
                        child.display(),
                        broken_link(&path, &e)
                    ));
                    continue;
                }
                // Not named like an image: a folder that cannot be entered, most likely.
                Err(e) => {
                    scan.unreadable_folders.push(UploadFailure {
                        path,
                        reason: format!("cannot read it: {e}"),
                        retryable: false,
                    });
                    continue;
                }
            };
            if meta.is_dir() {
                let id = dir_id(&path, &meta);
                if id.as_ref().is_some_and(|id| above.contains(id)) {
                    scan.notes.push(format!(
                        "skipped {}: it links back to a folder above it (a loop)",
                        child.display()
                    ));
                    continue;
                }
                let mut below = above.clone();
                below.extend(id);
                stack.push((child, below));
            } else if !meta.is_file() {
                scan.ignored += 1;
            } else if is_supported(&child) {
                scan.files.push(ScannedFile {
                    path: child,
                    size: meta.len(),
                });
            } else {
                scan.ignored += 1;
            }
        }
    }
    scan.files.sort_by(|a, b| a.path.cmp(&b.path));
    scan.unreadable_folders.sort_by(|a, b| a.path.cmp(&b.path));
    scan.broken_files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(scan)
}

/// The failure of a sub-folder that cannot be read.
fn unreadable_folder(path: PathBuf, e: &std::io::Error) -> UploadFailure {
    UploadFailure {
        path,
        reason: format!("cannot read this folder: {e}"),
        retryable: false,
    }
}

/// The failure of an entry named like an image whose metadata cannot be read.
fn unreadable_file(path: PathBuf, is_link: bool, e: &std::io::Error) -> UploadFailure {
    let reason = if is_link {
        broken_link(&path, e)
    } else {
        format!("cannot read it: {e}")
    };
    UploadFailure {
        path,
        reason,
        retryable: false,
    }
}

/// Why the link at `path` leads nowhere.
fn broken_link(path: &Path, e: &std::io::Error) -> String {
    let target = std::fs::read_link(path)
        .map(|t| t.display().to_string())
        .unwrap_or_default();
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("broken symbolic link: its target {target} does not exist")
        }
        _ => format!("symbolic link to {target} cannot be followed: {e}"),
    }
}
