//! An export written into a local folder, so that exporting again into the same folder leaves
//! exactly the current dataset there, never deletes a file that is not ours, and a crash
//! midway never leaves a folder that looks complete.
//!
//! The folder's [`MANIFEST`] (`.pictograph-export`) lists every file an export of ours wrote
//! there: a header line (JSON: `{"pictograph_export": 1, "state": …, "format": …, "dataset":
//! …}`) and then one JSON string per file, its path relative to the folder.
//!
//! * [`OutputDir::open`] refuses a folder that is not empty and holds no manifest (files of
//!   someone else's), unless asked to write into it anyway; then nothing that was there is
//!   removed (a file at a path the export writes is replaced).
//! * Before anything is written, the manifest is marked `writing` (it still lists the files of
//!   the earlier export) and the earlier export's index files (`data.yaml`, the COCO JSON, the
//!   VOC image list, `dataset.json`, `annotations.jsonl`), which make a folder look complete
//!   to training code, are removed. Every file is listed in the manifest before it is
//!   written, and index files are written whole to a temporary file renamed into place.
//! * [`OutputDir::finish`] removes the files the earlier export (or a crashed one) wrote and
//!   this one did not (images since removed from the dataset, their label files), and the
//!   folders that leaves empty, then marks the manifest `complete` with this export's files
//!   only (written whole and renamed into place).
//!
//! A crash at any point leaves the manifest `writing`: the importers refuse such a folder
//! ([`unfinished`]), and the next export into it cleans up whatever the crashed one wrote.
//! Memory holds a 64-bit hash per file, never the list.

use crate::{Body, Format};
use pictograph_core::hashes::{hash_of, HashSet64};
use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};

/// The manifest of an export folder, at its root.
pub const MANIFEST: &str = ".pictograph-export";

/// Where the manifest is written before it is renamed into place.
const MANIFEST_TMP: &str = ".pictograph-export.tmp";

/// The files that make an export folder look complete to training code and importers.
const INDEX_FILES: [&str; 5] = [
    "data.yaml",
    crate::coco::ANNOTATIONS_PATH,
    crate::voc::IMAGE_SET_PATH,
    crate::native::DATASET_PATH,
    crate::native::LINES_PATH,
];

/// Why a folder cannot take an export.
#[derive(Debug)]
pub enum OutputError {
    /// The folder holds files but no manifest: not an export of ours.
    NotEmpty(PathBuf),
    /// The manifest cannot be read as one of ours.
    BadManifest(PathBuf, String),
    /// Reading or writing failed.
    Io(PathBuf, io::Error),
}

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputError::NotEmpty(p) => write!(
                f,
                "{} is not empty and holds no pictograph export: refusing to write into it \
                 (choose an empty or new folder, or allow a non-empty one: only files an \
                 export wrote are ever removed)",
                p.display()
            ),
            OutputError::BadManifest(p, why) => {
                write!(
                    f,
                    "{}: not a pictograph export manifest: {why}",
                    p.display()
                )
            }
            OutputError::Io(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for OutputError {}

/// A `/`-separated relative path of plain names (no `..`, not absolute, not empty).
fn plain(rel: &str) -> bool {
    !rel.is_empty()
        && Path::new(rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

fn header(state: &str, format: Format, dataset: &str) -> String {
    json!({
        "pictograph_export": 1,
        "state": state,
        "format": format.as_str(),
        "dataset": dataset,
    })
    .to_string()
}

/// The header of the manifest in `root`, if there is one; an error when it is not ours.
fn read_header(root: &Path) -> Result<Option<Value>, OutputError> {
    let path = root.join(MANIFEST);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(OutputError::Io(path, e)),
    };
    let mut first = String::new();
    BufReader::new(file)
        .read_line(&mut first)
        .map_err(|e| OutputError::Io(path.clone(), e))?;
    let v: Value = serde_json::from_str(first.trim())
        .map_err(|e| OutputError::BadManifest(path.clone(), e.to_string()))?;
    if v.get("pictograph_export").is_none() {
        return Err(OutputError::BadManifest(path, "no header line".into()));
    }
    Ok(Some(v))
}

/// When `root` holds an export of ours that did not finish (a crash, or one still being
/// written), what to tell; `None` otherwise.
pub fn unfinished(root: &Path) -> Option<String> {
    let state = match read_header(root) {
        Ok(Some(h)) => h.get("state").and_then(Value::as_str).map(String::from),
        _ => return None,
    };
    (state.as_deref() != Some("complete")).then(|| {
        format!(
            "{} holds an export that did not finish (its {MANIFEST} says {}): export into it \
             again before reading it",
            root.display(),
            state.unwrap_or_else(|| "nothing".into())
        )
    })
}

/// The file paths a manifest lists (after its header).
fn listed(path: &Path) -> io::Result<impl Iterator<Item = io::Result<String>>> {
    let lines = BufReader::new(File::open(path)?).lines().skip(1);
    Ok(lines.filter_map(|line| match line {
        Err(e) => Some(Err(e)),
        Ok(l) if l.trim().is_empty() => None,
        Ok(l) => serde_json::from_str::<String>(&l).ok().map(Ok),
    }))
}

/// A local folder being written by an export; see the module docs.
#[derive(Debug)]
pub struct OutputDir {
    root: PathBuf,
    format: Format,
    dataset: String,
    /// The manifest, marked `writing`: the earlier export's files, then each file claimed.
    journal: File,
    /// The files of the earlier export (hashes).
    earlier: HashSet64,
    /// The files of this export (hashes).
    written: HashSet64,
    /// The files of this export, in order: the manifest's list once complete.
    list: BufWriter<File>,
    /// The earlier export's index files, removed when opened.
    index_removed: Vec<String>,
}

impl OutputDir {
    /// Opens `root` (made when missing) for an export of `dataset` in `format`: refused when
    /// it holds files but no manifest, unless `allow_non_empty`. Marks it as being written and
    /// removes the earlier export's index files.
    pub fn open(
        root: &Path,
        format: Format,
        dataset: &str,
        allow_non_empty: bool,
    ) -> Result<OutputDir, OutputError> {
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |e| OutputError::Io(p, e)
        };
        std::fs::create_dir_all(root).map_err(io(root))?;
        let manifest = root.join(MANIFEST);
        let ours = read_header(root)?.is_some();
        if !ours && !allow_non_empty {
            let mut entries = std::fs::read_dir(root).map_err(io(root))?;
            if entries.next().is_some() {
                return Err(OutputError::NotEmpty(root.to_path_buf()));
            }
        }
        // The manifest marked `writing`, still listing the earlier export's files.
        let tmp = root.join(MANIFEST_TMP);
        let mut earlier = HashSet64::default();
        let mut index = Vec::new();
        {
            let mut out = BufWriter::new(File::create(&tmp).map_err(io(&tmp))?);
            writeln!(out, "{}", header("writing", format, dataset)).map_err(io(&tmp))?;
            if ours {
                for rel in listed(&manifest).map_err(io(&manifest))? {
                    let rel = rel.map_err(io(&manifest))?;
                    if earlier.insert(hash_of(&rel)) {
                        writeln!(out, "{}", Value::from(rel.as_str())).map_err(io(&tmp))?;
                    }
                    if INDEX_FILES.contains(&rel.as_str()) {
                        index.push(rel);
                    }
                }
            }
            let file = out
                .into_inner()
                .map_err(|e| OutputError::Io(tmp.clone(), e.into_error()))?;
            file.sync_all().map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, &manifest).map_err(io(&manifest))?;
        // Now that the folder says it is being written, it stops looking complete.
        let mut index_removed = Vec::new();
        for rel in index {
            if remove_file_of(root, &rel).map_err(io(&root.join(&rel)))? {
                index_removed.push(rel);
            }
        }
        let journal = OpenOptions::new()
            .append(true)
            .open(&manifest)
            .map_err(io(&manifest))?;
        Ok(OutputDir {
            root: root.to_path_buf(),
            format,
            dataset: dataset.to_string(),
            journal,
            earlier,
            written: HashSet64::default(),
            list: BufWriter::new(tempfile::tempfile().map_err(io(root))?),
            index_removed,
        })
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Lists `rel` in the manifest before it is written (so that a crash never leaves a file
    /// of ours unlisted); answers its path.
    fn note(&mut self, rel: &str) -> io::Result<PathBuf> {
        if !plain(rel) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{rel:?} is not a path inside the export folder"),
            ));
        }
        writeln!(self.journal, "{}", Value::from(rel))?;
        Ok(self.root.join(rel))
    }

    /// Claims `rel` (a `/`-separated path from a writer) as a file of this export, before the
    /// caller writes it: it is listed in the manifest, and a file or folder of the earlier
    /// export in its way (a file where it needs a folder, or the reverse) is removed. Answers
    /// the file's path.
    pub fn claim(&mut self, rel: &str) -> io::Result<PathBuf> {
        let dest = self.note(rel)?;
        if self.written.insert(hash_of(rel)) {
            writeln!(self.list, "{}", Value::from(rel))?;
        }
        self.clear_way(rel)?;
        Ok(dest)
    }

    /// Lists `rel` as a scratch file the caller may leave behind if it stops midway (a
    /// download's partial file): removed, if there, when the export finishes or by the next
    /// export after a crash.
    pub fn scratch(&mut self, rel: &str) -> io::Result<()> {
        self.note(rel).map(|_| ())
    }

    /// Writes a file of this export whole: to a scratch file beside it, renamed into place.
    pub fn write(&mut self, rel: &str, body: Body) -> io::Result<()> {
        let dest = self.claim(rel)?;
        let name = rel.rsplit('/').next().unwrap_or(rel);
        let tmp_name = format!(".{}.tmp", pictograph_core::names::shorten(name, 200));
        let tmp_rel = match rel.rsplit_once('/') {
            Some((dir, _)) => format!("{dir}/{tmp_name}"),
            None => tmp_name,
        };
        self.scratch(&tmp_rel)?;
        let tmp = self.root.join(&tmp_rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let written = (|| -> io::Result<()> {
            let mut out = BufWriter::new(File::create(&tmp)?);
            match body {
                Body::Bytes(b) => out.write_all(&b)?,
                Body::File(mut f) => {
                    f.seek(SeekFrom::Start(0))?;
                    io::copy(&mut f, &mut out)?;
                }
            }
            out.into_inner().map_err(|e| e.into_error())?;
            std::fs::rename(&tmp, &dest)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// Makes room for `rel`: a file of the earlier export where it needs a folder is removed,
    /// and so is a folder of the earlier export's files only where it needs a file. Anything
    /// else in the way is an error (nothing of someone else's is removed).
    fn clear_way(&mut self, rel: &str) -> io::Result<()> {
        let mut at = String::new();
        let parts: Vec<&str> = rel.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                at.push('/');
            }
            at.push_str(part);
            let path = self.root.join(&at);
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                return Ok(());
            };
            let last = i + 1 == parts.len();
            if !last && !meta.is_dir() {
                if self.earlier.contains(hash_of(&at)) {
                    std::fs::remove_file(&path)?;
                    return Ok(());
                }
                return Err(in_the_way(&path));
            }
            if last && meta.is_dir() {
                let mut files = Vec::new();
                collect_files(&self.root, &at, &mut files)?;
                if files.iter().all(|f| self.earlier.contains(hash_of(f))) {
                    std::fs::remove_dir_all(&path)?;
                } else {
                    return Err(in_the_way(&path));
                }
            }
        }
        Ok(())
    }

    /// Ends the export: removes what an earlier (or crashed) export wrote and this one did
    /// not, then marks the manifest complete with this export's files. Answers how many files
    /// of the earlier export are gone (its index files this one did not write again
    /// included).
    pub fn finish(self) -> io::Result<usize> {
        let OutputDir {
            root,
            format,
            dataset,
            journal,
            written,
            list,
            index_removed,
            ..
        } = self;
        journal.sync_all()?;
        drop(journal);
        let manifest = root.join(MANIFEST);
        // The earlier index files this export did not write again count as removed too.
        let mut removed = index_removed
            .iter()
            .filter(|rel| !written.contains(hash_of(rel)))
            .count();
        for rel in listed(&manifest)? {
            let rel = rel?;
            if !written.contains(hash_of(&rel)) && remove_file_of(&root, &rel)? {
                removed += 1;
            }
        }
        let tmp = root.join(MANIFEST_TMP);
        let mut out = BufWriter::new(File::create(&tmp)?);
        writeln!(out, "{}", header("complete", format, &dataset))?;
        let mut list = list.into_inner().map_err(|e| e.into_error())?;
        list.seek(SeekFrom::Start(0))?;
        io::copy(&mut list, &mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, &manifest)?;
        Ok(removed)
    }
}

fn in_the_way(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{} is in the way of an export file and was not written by an export",
            path.display()
        ),
    )
}

/// The files under `root`/`rel`, as paths relative to `root`.
fn collect_files(root: &Path, rel: &str, out: &mut Vec<String>) -> io::Result<()> {
    for entry in std::fs::read_dir(root.join(rel))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = format!("{rel}/{name}");
        if entry.file_type()?.is_dir() {
            collect_files(root, &child, out)?;
        } else {
            out.push(child);
        }
    }
    Ok(())
}

/// Removes the file `rel` below `root` if it is there (never through a symbolic link to a
/// folder, never outside `root`), then the folders that leaves empty; answers whether a file
/// was removed.
fn remove_file_of(root: &Path, rel: &str) -> io::Result<bool> {
    if !plain(rel) || rel == MANIFEST {
        return Ok(false);
    }
    let mut dir = root.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    for part in &parts[..parts.len() - 1] {
        dir.push(part);
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            _ => return Ok(false),
        }
    }
    let path = root.join(rel);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if !m.is_dir() => std::fs::remove_file(&path)?,
        _ => return Ok(false),
    }
    let mut parent = path.parent();
    while let Some(p) = parent.filter(|p| *p != root && p.starts_with(root)) {
        if std::fs::remove_dir(p).is_err() {
            break;
        }
        parent = p.parent();
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path) -> Vec<String> {
        let mut files = Vec::new();
        collect_files(root, ".", &mut files).unwrap();
        let mut files: Vec<String> = files
            .into_iter()
            .map(|f| f.trim_start_matches("./").to_string())
            .collect();
        files.sort();
        files
    }

    fn export(root: &Path, files: &[&str]) -> usize {
        let mut out = OutputDir::open(root, Format::Yolo, "d", false).unwrap();
        for f in files {
            out.write(f, Body::Bytes(f.as_bytes().to_vec())).unwrap();
        }
        out.finish().unwrap()
    }

    #[test]
    fn a_re_export_leaves_exactly_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("out");
        assert_eq!(
            export(&root, &["images/a.png", "images/sub/b.png", "data.yaml"]),
            0
        );
        assert_eq!(unfinished(&root), None);
        assert_eq!(
            export(&root, &["images/a.png", "images/c.png", "data.yaml"]),
            1
        );
        assert_eq!(
            tree(&root),
            [MANIFEST, "data.yaml", "images/a.png", "images/c.png"]
        );
        // A file of ours where a folder is now needed, and the reverse.
        export(&root, &["images/a.png/x.png", "images/c.png", "data.yaml"]);
        assert_eq!(
            tree(&root),
            [MANIFEST, "data.yaml", "images/a.png/x.png", "images/c.png"]
        );
        export(&root, &["images/a.png"]);
        assert_eq!(tree(&root), [MANIFEST, "images/a.png"]);
    }

    #[test]
    fn files_of_someone_else_are_never_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("out");
        std::fs::create_dir_all(root.join("images")).unwrap();
        std::fs::write(root.join("images/mine.png"), b"user").unwrap();
        let err = OutputDir::open(&root, Format::Coco, "d", false).unwrap_err();
        assert!(matches!(err, OutputError::NotEmpty(_)), "{err}");
        assert!(!root.join(MANIFEST).exists());
        let mut out = OutputDir::open(&root, Format::Coco, "d", true).unwrap();
        out.write("images/a.png", Body::Bytes(b"a".to_vec()))
            .unwrap();
        out.finish().unwrap();
        // Now ours: a re-export removes our `a.png`, never the user's file.
        assert_eq!(export(&root, &["images/b.png"]), 1);
        assert_eq!(tree(&root), [MANIFEST, "images/b.png", "images/mine.png"]);
        // A user's file in the way of an export file is an error, not removed.
        std::fs::write(root.join("images/c"), b"user").unwrap();
        let mut out = OutputDir::open(&root, Format::Coco, "d", false).unwrap();
        assert!(out.write("images/c/d.png", Body::Bytes(vec![])).is_err());
        assert_eq!(std::fs::read(root.join("images/c")).unwrap(), b"user");
        // A manifest that climbs out of the folder removes nothing outside it.
        std::fs::write(dir.path().join("outside.txt"), b"keep").unwrap();
        let manifest = format!(
            "{}\n\"../outside.txt\"\n\"/etc/hostname\"\n",
            header("complete", Format::Coco, "d")
        );
        std::fs::write(root.join(MANIFEST), manifest).unwrap();
        export(&root, &["images/b.png"]);
        assert!(dir.path().join("outside.txt").exists());
    }

    #[test]
    fn a_crash_leaves_a_folder_that_says_so_and_is_cleaned_next_time() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("out");
        export(&root, &["images/a.png", "data.yaml"]);
        // A second export stops midway (dropped without finishing).
        let mut out = OutputDir::open(&root, Format::Yolo, "d", false).unwrap();
        assert!(
            !root.join("data.yaml").exists(),
            "the index file goes first"
        );
        out.write("images/new.png", Body::Bytes(b"n".to_vec()))
            .unwrap();
        out.scratch("images/half.png.part").unwrap();
        std::fs::write(root.join("images/half.png.part"), b"h").unwrap();
        drop(out);
        let why = unfinished(&root).unwrap();
        assert!(why.contains("did not finish"), "{why}");
        // The next export cleans up what the crashed one left.
        assert_eq!(export(&root, &["images/a.png", "data.yaml"]), 2);
        assert_eq!(tree(&root), [MANIFEST, "data.yaml", "images/a.png"]);
        assert_eq!(unfinished(&root), None);
    }
}
