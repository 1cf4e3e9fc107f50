//! Multi-step workflows built on the resources.

use crate::bulk;
use crate::client::Client;
use crate::datasets::Progress;
use crate::error::{Error, Result};
use crate::images::{is_supported, mime_for_extension};
use crate::pathset::PathSet;
use crate::projects::CreateProject;
use futures::StreamExt;
use pictograph_core::hashes::hash_of;
use pictograph_core::names;
use std::collections::HashMap;
use std::ffi::OsString;
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
/// its size in bytes, and how it ended.
pub type FileCallback = Arc<dyn Fn(&Path, u64, FileOutcome) + Send + Sync>;

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
    pub fn on_file(mut self, f: impl Fn(&Path, u64, FileOutcome) + Send + Sync + 'static) -> Self {
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
    /// Sub-folders that could not be read (each is also in `failures`).
    pub unreadable_folders: usize,
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
/// first in sorted path order is uploaded, each other one is a failure naming it (these
/// failures are told last, once the file that took the name is known). Only names already
/// on the server before the run count as skipped.
///
/// The folder is walked in sorted path order while files are sent, never listed whole:
/// memory holds the batches in flight, up to 65,536 names of each directory being walked
/// (a larger one is listed again for each further 65,536) and an 8-byte hash of each of
/// the latest half million files (to find names taken twice); older hashes go to an
/// unnamed file in the temporary directory, so memory stays the same however many files
/// there are.
/// With a [`FolderUploadOptions::progress`] callback, a first walk counts the files.
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
    // The walk starts here, so that a folder that cannot be read fails the call; with a
    // progress callback, a first walk counts the files for its total.
    let (walk_root, counting) = (root.clone(), options.progress.is_some());
    let (walk, total) = tokio::task::spawn_blocking(move || -> Result<_> {
        let total = match counting {
            true => {
                let summary = summarize_folder(&walk_root)?;
                summary.files + summary.broken_files
            }
            false => 0,
        };
        Ok((FolderWalk::new(&walk_root)?, total))
    })
    .await
    .map_err(|e| Error::io(&root, std::io::Error::other(e)))??;
    let dataset = dataset_for_upload(client, dataset_name, &options).await?;
    let report = UploadReport {
        dataset_name: dataset_name.to_string(),
        dataset_id: dataset.id,
        ..UploadReport::default()
    };
    let upload = Upload {
        files: Box::new(walk),
        source: Source::Folder(root.clone()),
        root,
        total,
    };
    upload_found(client, report, upload, options).await
}

/// Uploads what [`scan_folder`] found, as [`upload_dataset_from_folder`] does: for callers
/// that show totals before the upload starts, without walking the folder twice. The scan
/// holds every file's path; [`summarize_folder`] then [`upload_dataset_from_folder`] hold
/// none.
pub async fn upload_scanned_folder(
    client: &Client,
    dataset_name: &str,
    scan: FolderScan,
    options: FolderUploadOptions,
) -> Result<UploadReport> {
    let dataset = dataset_for_upload(client, dataset_name, &options).await?;
    let FolderScan {
        root,
        files,
        unreadable_folders,
        broken_files,
        notes,
        ..
    } = scan;
    let total = files.len() + broken_files.len();
    let report = UploadReport {
        dataset_name: dataset_name.to_string(),
        dataset_id: dataset.id,
        unreadable_folders: unreadable_folders.len(),
        failures: unreadable_folders,
        notes,
        ..UploadReport::default()
    };
    let source = Source::Scan(Arc::new(files));
    // Broken links first, then the files, as a walk of the folder finds them.
    let broken = broken_files.into_iter().map(Found::Broken);
    let upload = Upload {
        files: Box::new(broken.chain(source.found())),
        source,
        root,
        total,
    };
    upload_found(client, report, upload, options).await
}

/// The dataset a folder upload goes to, created when missing if the options allow.
async fn dataset_for_upload(
    client: &Client,
    dataset_name: &str,
    options: &FolderUploadOptions,
) -> Result<crate::models::Dataset> {
    match client.projects().get(dataset_name).await {
        Ok(d) => Ok(d),
        Err(Error::NotFound(_)) if options.create_if_missing => {
            match client
                .projects()
                .create(dataset_name, CreateProject::default())
                .await
            {
                Ok(d) => Ok(d),
                // Someone else created it meanwhile.
                Err(Error::Conflict(_)) => client.projects().get(dataset_name).await,
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Where the files of a folder upload come from, in sorted path order, as many times as
/// asked: a walk of the folder, or the list of a [`FolderScan`].
#[derive(Clone)]
enum Source {
    Folder(PathBuf),
    Scan(Arc<Vec<ScannedFile>>),
}

impl Source {
    /// What the source holds, from the start. A folder that can no longer be read yields
    /// nothing.
    fn found(&self) -> Box<dyn Iterator<Item = Found> + Send> {
        match self {
            Source::Folder(root) => match FolderWalk::new(root) {
                Ok(walk) => Box::new(walk),
                Err(_) => Box::new(std::iter::empty()),
            },
            Source::Scan(files) => {
                let files = files.clone();
                Box::new((0..files.len()).map(move |i| Found::File(files[i].clone())))
            }
        }
    }
}

/// A file whose name an earlier file of the run takes: refused once the run knows which.
struct Clash {
    rel: PathBuf,
    size: u64,
    key: u64,
    folder: String,
    filename: String,
}

/// What a folder upload sends.
struct Upload {
    /// The folder.
    root: PathBuf,
    /// A walk of `source`, started.
    files: Box<dyn Iterator<Item = Found> + Send>,
    /// Where the files come from, to walk again.
    source: Source,
    /// The progress callback's total.
    total: usize,
}

/// The upload itself: the files stream into batches, two batches in flight, so that memory
/// holds those batches and the hashes of the latest names, however many files there are.
async fn upload_found(
    client: &Client,
    mut report: UploadReport,
    upload: Upload,
    options: FolderUploadOptions,
) -> Result<UploadReport> {
    let Upload {
        root,
        files,
        source,
        total,
    } = upload;
    let mut done = 0;
    let mut attempted = 0;
    let mut ended = |report: &mut UploadReport, rel: &Path, size: u64, outcome: bulk::Outcome| {
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
            f(rel, size, how);
        }
        if let Some(p) = &options.progress {
            p(done, total.max(done), Some(&rel.to_string_lossy()));
        }
    };

    let workers = if options.parallel {
        options.max_workers.max(1)
    } else {
        1
    };
    // Batches are signed and registered in one request each; two run at once so that one
    // batch's PUTs overlap the other's bookkeeping.
    let in_flight = if workers > 1 { 2 } else { 1 };
    let per_batch = workers.div_ceil(in_flight);
    let halt = bulk::Halt::default();
    let (tx, mut rx) = tokio::sync::mpsc::channel(2 * bulk::BATCH);
    let producer = tokio::task::spawn_blocking(move || {
        for found in files {
            if tx.blocking_send(found).is_err() {
                break;
            }
        }
    });
    let dataset_id = report.dataset_id.clone();
    // A batch: each file's relative path and size, and its plan.
    type Batch = (Vec<(PathBuf, u64)>, Vec<bulk::Planned>);
    let run = |(files, planned): Batch| {
        let (client, halt, dataset_id) = (client.clone(), halt.clone(), dataset_id.clone());
        let skip = options.skip_existing;
        async move {
            let outcomes =
                bulk::upload_batch(&client, &dataset_id, &planned, skip, per_batch, &halt).await;
            (files, outcomes)
        }
    };
    let mut running = futures::stream::FuturesUnordered::new();
    let mut batch = Batch::default();
    // Past half a million files, the older hashes go to an unnamed file in the temporary
    // directory.
    let mut taken = PathSet::new(std::env::temp_dir());
    let mut clashes = Vec::new();
    let mut reading = true;
    enum Event<B> {
        Found(Option<Found>),
        Uploaded(B),
    }
    loop {
        let event = tokio::select! {
            found = rx.recv(), if reading && running.len() < in_flight => Event::Found(found),
            Some(uploaded) = running.next(), if !running.is_empty() => Event::Uploaded(uploaded),
            else => break,
        };
        match event {
            Event::Found(Some(Found::File(file))) => {
                attempted += 1;
                match plan(&root, &file, options.organize_by_class) {
                    Err(e) => ended(
                        &mut report,
                        &file.path,
                        file.size,
                        bulk::Outcome::refused(e.to_string()),
                    ),
                    Ok(p) => {
                        let key = name_key(&p);
                        // Should the set's file fail to read back, the file is sent, and
                        // the server answers it as any name already in use.
                        if taken.insert(key).unwrap_or(true) {
                            batch.0.push((file.path, file.size));
                            batch.1.push(p);
                            if batch.1.len() == bulk::BATCH {
                                running.push(run(std::mem::take(&mut batch)));
                            }
                        } else {
                            clashes.push(Clash {
                                rel: file.path,
                                size: file.size,
                                key,
                                folder: p.folder,
                                filename: p.filename,
                            });
                        }
                    }
                }
            }
            Event::Found(Some(Found::Broken(failure))) => {
                attempted += 1;
                let rel = failure
                    .path
                    .strip_prefix(&root)
                    .unwrap_or(&failure.path)
                    .to_path_buf();
                ended(&mut report, &rel, 0, bulk::Outcome::refused(failure.reason));
            }
            Event::Found(Some(Found::UnreadableFolder(failure))) => {
                report.unreadable_folders += 1;
                report.failures.push(failure);
            }
            Event::Found(Some(Found::Note(note))) => report.notes.push(note),
            Event::Found(Some(Found::Ignored)) => {}
            Event::Found(None) => {
                reading = false;
                if !batch.1.is_empty() {
                    running.push(run(std::mem::take(&mut batch)));
                }
            }
            Event::Uploaded((files, outcomes)) => {
                let mut outcomes = outcomes.into_iter();
                for (rel, size) in files {
                    let outcome = outcomes.next().unwrap_or_else(bulk::Outcome::missing);
                    ended(&mut report, &rel, size, outcome);
                }
            }
        }
    }
    producer
        .await
        .map_err(|e| Error::io(&root, std::io::Error::other(e)))?;

    // Name each clash's first file: the first of the run, in path order, with its key.
    if !clashes.is_empty() {
        let mut firsts: HashMap<u64, Option<PathBuf>> =
            clashes.iter().map(|c| (c.key, None)).collect();
        let organize = options.organize_by_class;
        let (scan_root, source) = (root.clone(), source.clone());
        firsts = tokio::task::spawn_blocking(move || {
            let mut left = firsts.len();
            for found in source.found() {
                let Found::File(file) = found else { continue };
                let Ok(p) = plan(&scan_root, &file, organize) else {
                    continue;
                };
                let key = name_key(&p);
                if let Some(first @ None) = firsts.get_mut(&key) {
                    *first = Some(file.path);
                    left -= 1;
                    if left == 0 {
                        break;
                    }
                }
            }
            firsts
        })
        .await
        .map_err(|e| Error::io(&root, std::io::Error::other(e)))?;
        for c in clashes {
            let first = firsts.get(&c.key).and_then(Option::as_deref);
            let reason = taken_by(first, &c.folder, &c.filename, options.organize_by_class);
            ended(&mut report, &c.rel, c.size, bulk::Outcome::refused(reason));
        }
    }
    report.images_attempted = attempted;
    Ok(report)
}

/// The hash of the name a planned file takes in its folder.
fn name_key(p: &bulk::Planned) -> u64 {
    hash_of(&(p.folder.as_str(), p.filename.trim()))
}

/// Why a file is not uploaded when `first`, earlier in the run, lands on its name
/// `filename` in `folder`.
fn taken_by(first: Option<&Path>, folder: &str, filename: &str, organize_by_class: bool) -> String {
    let target = match folder {
        "/" => format!("/{}", filename.trim()),
        folder => format!("{folder}/{}", filename.trim()),
    };
    let why = if organize_by_class {
        "nested folders go to their first-level folder"
    } else {
        "every file goes to /"
    };
    match first {
        Some(first) => format!(
            "another file of this folder, {}, is uploaded as {target} ({why})",
            first.display()
        ),
        None => format!("another file of this folder is uploaded as {target} ({why})"),
    }
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
type DirId = (u64, u64);

/// The identity of a directory, to tell when a link leads back into one being walked.
#[cfg(not(unix))]
type DirId = PathBuf;

/// The identity of the directory at `path`.
#[cfg(unix)]
fn dir_id(_path: &Path, meta: &std::fs::Metadata) -> Option<DirId> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

/// The identity of the directory at `path`.
#[cfg(not(unix))]
fn dir_id(path: &Path, _meta: &std::fs::Metadata) -> Option<DirId> {
    std::fs::canonicalize(path).ok()
}

/// One thing a walk of a folder found.
enum Found {
    /// A supported image file.
    File(ScannedFile),
    /// An entry named like an image that cannot be read.
    Broken(UploadFailure),
    /// A sub-folder that cannot be read.
    UnreadableFolder(UploadFailure),
    /// A link passed over.
    Note(String),
    /// A file of another type.
    Ignored,
}

/// A walk of a folder in sorted path order: each directory's names are read in sorted
/// windows (see [`Names`]), and its sub-folders are walked in their place among them. It
/// holds a window of names of each directory it is inside, never the files found before.
struct FolderWalk {
    root: PathBuf,
    levels: Vec<Level>,
}

/// A directory being walked.
struct Level {
    /// Its path relative to the root.
    rel: PathBuf,
    /// The identities of it and the directories above it.
    above: Vec<DirId>,
    /// Its names not walked yet.
    names: Names,
}

impl FolderWalk {
    /// [`Error::FileNotFound`] when `root` does not exist or is not a directory,
    /// [`Error::Io`] when it cannot be read.
    fn new(root: &Path) -> Result<FolderWalk> {
        let meta = std::fs::metadata(root).map_err(|e| Error::io(root, e))?;
        if !meta.is_dir() {
            return Err(Error::FileNotFound(root.to_path_buf()));
        }
        let names = Names::open(root).map_err(|e| Error::io(root, e))?;
        Ok(FolderWalk {
            root: root.to_path_buf(),
            levels: vec![Level {
                rel: PathBuf::new(),
                above: dir_id(root, &meta).into_iter().collect(),
                names,
            }],
        })
    }

    /// What the entry `name` of the innermost directory is; `None` when there is nothing to
    /// answer for it (a sub-folder entered, a file gone since its folder was read).
    fn visit(&mut self, name: OsString) -> Option<Found> {
        let level = self.levels.last()?;
        let child = level.rel.join(&name);
        let path = self.root.join(&child);
        let own = std::fs::symlink_metadata(&path);
        let is_link = own.as_ref().is_ok_and(|m| m.file_type().is_symlink());
        // Links are followed: the metadata is the target's.
        let meta = if is_link {
            std::fs::metadata(&path)
        } else {
            own
        };
        let meta = match meta {
            Ok(meta) => meta,
            // Gone since the folder was read.
            Err(e) if !is_link && e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) if is_supported(&child) => {
                return Some(Found::Broken(unreadable_file(path, is_link, &e)))
            }
            Err(e) if is_link => {
                let why = broken_link(&path, &e);
                return Some(Found::Note(format!("skipped {}: {why}", child.display())));
            }
            // Not named like an image: a folder out of reach, most likely (its path too long).
            Err(e) => return Some(Found::UnreadableFolder(unreadable_folder(path, &e))),
        };
        if meta.is_dir() {
            let id = dir_id(&path, &meta);
            if id.as_ref().is_some_and(|id| level.above.contains(id)) {
                return Some(Found::Note(format!(
                    "skipped {}: it links back to a folder above it (a loop)",
                    child.display()
                )));
            }
            let mut above = level.above.clone();
            above.extend(id);
            match Names::open(&path) {
                Ok(names) => {
                    self.levels.push(Level {
                        rel: child,
                        above,
                        names,
                    });
                    None
                }
                Err(e) => Some(Found::UnreadableFolder(unreadable_folder(path, &e))),
            }
        } else if meta.is_file() && is_supported(&child) {
            Some(Found::File(ScannedFile {
                path: child,
                size: meta.len(),
            }))
        } else {
            Some(Found::Ignored)
        }
    }
}

impl Iterator for FolderWalk {
    type Item = Found;

    fn next(&mut self) -> Option<Found> {
        loop {
            let level = self.levels.last_mut()?;
            match level.names.next_name() {
                Ok(None) => {
                    self.levels.pop();
                }
                Ok(Some(name)) => {
                    if let Some(found) = self.visit(name) {
                        return Some(found);
                    }
                }
                // Listing it again, or to its end, failed: what was read is walked.
                Err(e) => {
                    let path = self.root.join(&level.rel);
                    return Some(Found::UnreadableFolder(unreadable_folder(path, &e)));
                }
            }
        }
    }
}

/// The names of one directory in sorted order, a window at a time: each listing of the
/// directory keeps the [`Names::WINDOW`] smallest names after the last one answered. A
/// folder of up to that many names is listed once; a flat folder of a million files is
/// listed 16 times and never held whole.
struct Names {
    dir: PathBuf,
    window: std::vec::IntoIter<OsString>,
    /// The last name of the window.
    last: Option<OsString>,
    /// Whether no name comes after `last`.
    done: bool,
    /// What ended a listing early, told once the window is walked.
    failed: Option<std::io::Error>,
}

impl Names {
    /// Names held at once.
    #[cfg(not(test))]
    const WINDOW: usize = 65_536;
    /// Names held at once: few in unit tests, so that their folders take several windows.
    #[cfg(test)]
    const WINDOW: usize = 1_000;

    /// The names of `dir`, listed for their first window; an error when it cannot be listed.
    fn open(dir: &Path) -> std::io::Result<Names> {
        let mut names = Names {
            dir: dir.to_path_buf(),
            window: Vec::new().into_iter(),
            last: None,
            done: false,
            failed: None,
        };
        names.list()?;
        Ok(names)
    }

    /// The next name; `Ok(None)` after the last, an error when the directory stopped being
    /// listable (once; the names after the error are not answered).
    fn next_name(&mut self) -> std::io::Result<Option<OsString>> {
        loop {
            if let Some(name) = self.window.next() {
                return Ok(Some(name));
            }
            if let Some(e) = self.failed.take() {
                return Err(e);
            }
            if self.done {
                return Ok(None);
            }
            if let Err(e) = self.list() {
                self.done = true;
                return Err(e);
            }
        }
    }

    /// Lists the directory for the window after `last`.
    fn list(&mut self) -> std::io::Result<()> {
        let mut heap = std::collections::BinaryHeap::new();
        let mut more = false;
        for entry in std::fs::read_dir(&self.dir)? {
            let name = match entry {
                Ok(entry) => entry.file_name(),
                Err(e) => {
                    self.failed = Some(e);
                    break;
                }
            };
            if self.last.as_ref().is_some_and(|last| name <= *last) {
                continue;
            }
            if heap.len() < Self::WINDOW {
                heap.push(name);
                continue;
            }
            more = true;
            if let Some(mut largest) = heap.peek_mut() {
                if name < *largest {
                    *largest = name;
                }
            }
        }
        let window = heap.into_sorted_vec();
        self.done = !more || self.failed.is_some();
        self.last = window.last().cloned();
        self.window = window.into_iter();
        Ok(())
    }
}

/// What a folder upload of a folder would find, counted by [`summarize_folder`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FolderSummary {
    /// Supported image files.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Files of other types.
    pub ignored: usize,
    /// Entries named like an image that cannot be read (links to missing files).
    pub broken_files: usize,
    /// Sub-folders that cannot be read.
    pub unreadable_folders: usize,
}

/// Counts what a folder upload of `folder` would find, walking it as the upload does but
/// holding none of the paths (blocking: from async code, call it in `spawn_blocking`).
/// Errors as [`scan_folder`].
pub fn summarize_folder(folder: impl AsRef<Path>) -> Result<FolderSummary> {
    let mut summary = FolderSummary::default();
    for found in FolderWalk::new(folder.as_ref())? {
        match found {
            Found::File(f) => {
                summary.files += 1;
                summary.bytes += f.size;
            }
            Found::Broken(_) => summary.broken_files += 1,
            Found::UnreadableFolder(_) => summary.unreadable_folders += 1,
            Found::Ignored => summary.ignored += 1,
            Found::Note(_) => {}
        }
    }
    Ok(summary)
}

/// Walks `folder` for a folder upload and lists what it finds (blocking: from async code,
/// call it in `spawn_blocking`). The list holds every file's path: to count them only, use
/// [`summarize_folder`].
///
/// Recursive; symbolic links to files and folders are followed, a link back into a folder
/// above it (a loop) is passed over with a note, and a broken link is a broken file when
/// named like an image (else a note). A sub-folder that cannot be read is recorded with its
/// error and the walk goes on. [`Error::FileNotFound`] when `folder` does not exist or is not
/// a directory, [`Error::Io`] when it cannot be read itself.
pub fn scan_folder(folder: impl AsRef<Path>) -> Result<FolderScan> {
    let root = folder.as_ref().to_path_buf();
    let mut scan = FolderScan {
        root: root.clone(),
        ..FolderScan::default()
    };
    for found in FolderWalk::new(&root)? {
        match found {
            Found::File(f) => scan.files.push(f),
            Found::Broken(f) => scan.broken_files.push(f),
            Found::UnreadableFolder(f) => scan.unreadable_folders.push(f),
            Found::Note(note) => scan.notes.push(note),
            Found::Ignored => scan.ignored += 1,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn walked(root: &Path) -> Vec<PathBuf> {
        FolderWalk::new(root)
            .unwrap()
            .filter_map(|found| match found {
                Found::File(f) => Some(f.path),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_walk_answers_files_in_sorted_path_order() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let mut files = vec![
            "a.png",
            "a/b.png",
            "a/a.png",
            "a-b.png",
            "B.png",
            "a/z/0.png",
            "a/y.png",
            "ab/1.png",
            "é.png",
            "z.png",
        ];
        // One folder of many names: three windows and part of a fourth.
        let many: Vec<String> = (0..3000)
            .map(|i| format!("many/{}.png", (i * 7919) % 3000))
            .collect();
        files.extend(many.iter().map(String::as_str));
        // A sub-folder beyond the first window.
        files.push("many/2500/in.png");
        for f in &files {
            let path = root.join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"x").unwrap();
        }
        std::fs::write(root.join("a/notes.txt"), b"not an image").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            // Not UTF-8: no name on the server can hold it, so it is passed over.
            let raw = std::ffi::OsStr::from_bytes(b"raw\xff.png");
            std::fs::write(root.join("a").join(raw), b"x").unwrap();
        }
        let got = walked(root);
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(got, sorted, "in the order of sorted paths");
        let mut want: Vec<String> = files.iter().map(|f| f.to_string()).collect();
        want.sort();
        let mut have: Vec<String> = got
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        have.sort();
        assert_eq!(have, want, "every image once, nothing else");
        // A folder's files come before a name that extends the folder's name.
        let head = [
            "B.png",
            "a/a.png",
            "a/b.png",
            "a/y.png",
            "a/z/0.png",
            "a-b.png",
            "a.png",
            "ab/1.png",
            "many/0.png",
        ];
        let shown: Vec<String> = got[..head.len()]
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        assert_eq!(shown, head);
    }
}
