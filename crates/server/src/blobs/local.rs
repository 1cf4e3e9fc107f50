//! Image bytes on the local disk under `<data>/blobs/ab/<hash>`.
//!
//! Stores written by earlier versions kept them one level deeper, under `blobs/ab/cd/<hash>`;
//! such files are still found, served and freed where they are (new bytes go to the
//! one-level place). One level makes at most 256 directories: with two, nearly every one of
//! the first tens of thousands of files stored made a directory of its own, and with it
//! a directory creation and two more syncs.
//!
//! Incoming bytes are written to a temporary file under the data directory, hashed as they
//! arrive (or before, when held in memory), fsynced, then renamed under their hash (atomic; an
//! existing copy is identical by construction), and the directory is fsynced.

use super::BlobError;
use pictograph_core::names;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;

/// Bytes on disk, plus the temporary directory every backend stages writes in.
#[derive(Debug, Clone)]
pub struct LocalBlobs {
    root: PathBuf,
    tmp: PathBuf,
    dirs: Arc<Dirs>,
}

/// The blob directories whose entries in their parents, and their parents' up to the root,
/// are known to be on disk, so that a file moved into one is durable once the directory
/// itself is synced. Each directory's chain is synced once per process, the first time a
/// blob is stored in it.
#[derive(Debug)]
struct Dirs {
    root: PathBuf,
    durable: Mutex<HashSet<PathBuf>>,
}

impl Dirs {
    /// Renames a synced file to `dest` and makes the move durable: `dest`'s directory is
    /// created when missing, synced, and its chain of entries up to the root made durable.
    fn move_durably(&self, tmp: &Path, dest: &Path) -> std::io::Result<()> {
        let dir = dest.parent().unwrap_or(&self.root);
        // A missing directory is created and the move tried again, also when it exists by
        // the time this looks: another first write into it may have created it meanwhile.
        match std::fs::rename(tmp, dest) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir)?;
                std::fs::rename(tmp, dest)?;
            }
            done => done?,
        }
        sync_dir(dir)?;
        self.link(dir)
    }

    /// Makes `dir`'s entry, and those of its ancestors below the root, durable: the parents
    /// of the ones not yet known to be are synced top-down, and each is recorded only once
    /// everything above it is on disk.
    fn link(&self, dir: &Path) -> std::io::Result<()> {
        let known = |d: &Path| d == self.root || self.durable.lock().unwrap().contains(d);
        let mut chain = Vec::new();
        let mut at = dir;
        while !known(at) {
            chain.push(at);
            match at.parent() {
                Some(p) => at = p,
                None => break,
            }
        }
        for d in chain.into_iter().rev() {
            sync_dir(d.parent().unwrap_or(&self.root))?;
            self.durable.lock().unwrap().insert(d.to_path_buf());
        }
        Ok(())
    }
}

/// Most blocking calls that remove files for one [`LocalBlobs::delete_many`].
const UNLINKERS: usize = 8;
/// Fewest paths one of those calls is given (each path of a blob and its older place).
const UNLINKED_AT_LEAST: usize = 32;

/// Whether a file of `size` bytes is at `path`.
fn holds_at(path: &Path, size: u64) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == size)
}

pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` (replacing any file there) with permissions `mode`, and syncs
/// the file; its directory entry is the caller's to place and sync.
pub(crate) fn write_synced(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = opts.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// A temporary file being written, with its running hash and size.
pub struct Incoming {
    path: PathBuf,
    file: tokio::fs::File,
    hasher: Sha256,
    size: u64,
}

impl Incoming {
    /// Appends a chunk.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        self.file.write_all(chunk).await?;
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The temporary file's path (for reading it back before it is committed).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes to disk and returns (temp path, SHA-256 hex, size).
    pub async fn finish(mut self) -> Result<(PathBuf, String, u64), BlobError> {
        self.file.flush().await?;
        self.file.sync_all().await?;
        Ok((self.path, hex::encode(self.hasher.finalize()), self.size))
    }
}

impl LocalBlobs {
    /// Opens (creating) the store under a data directory.
    pub async fn open(data_dir: &Path) -> Result<LocalBlobs, BlobError> {
        let root = data_dir.join("blobs");
        let tmp = data_dir.join("tmp");
        tokio::fs::create_dir_all(&root).await?;
        tokio::fs::create_dir_all(&tmp).await?;
        let durable_root = root.clone();
        tokio::task::spawn_blocking(move || {
            sync_dir(durable_root.parent().unwrap_or(&durable_root))
        })
        .await
        .map_err(std::io::Error::other)??;
        let dirs = Arc::new(Dirs {
            root: root.clone(),
            durable: Mutex::default(),
        });
        Ok(LocalBlobs { root, tmp, dirs })
    }

    /// Where the bytes of `hash` are written. Only well-formed hashes map to a path.
    pub fn path(&self, hash: &str) -> Result<PathBuf, BlobError> {
        let [a, _, name] = names::blob_segments(hash).ok_or(BlobError::BadHash)?;
        Ok(self.root.join(a).join(name))
    }

    /// Where earlier versions wrote the bytes of `hash`.
    pub(super) fn legacy_path(&self, hash: &str) -> Result<PathBuf, BlobError> {
        let [a, b, name] = names::blob_segments(hash).ok_or(BlobError::BadHash)?;
        Ok(self.root.join(a).join(b).join(name))
    }

    /// The file holding the bytes of `hash`: at [`LocalBlobs::path`], or at the legacy place
    /// when only that one exists (the former when neither does).
    pub fn located(&self, hash: &str) -> Result<PathBuf, BlobError> {
        let path = self.path(hash)?;
        if path.exists() {
            return Ok(path);
        }
        let legacy = self.legacy_path(hash)?;
        Ok(if legacy.exists() { legacy } else { path })
    }

    /// Starts a new temporary file.
    pub async fn incoming(&self) -> Result<Incoming, BlobError> {
        let path = self.tmp.join(uuid::Uuid::new_v4().to_string());
        let file = tokio::fs::File::create(&path).await?;
        Ok(Incoming {
            path,
            file,
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Moves a finished temporary file under its hash.
    pub async fn commit(&self, tmp: &Path, hash: &str) -> Result<(), BlobError> {
        let dest = self.path(hash)?;
        let (tmp, dirs) = (tmp.to_path_buf(), self.dirs.clone());
        tokio::task::spawn_blocking(move || dirs.move_durably(&tmp, &dest))
            .await
            .map_err(std::io::Error::other)??;
        Ok(())
    }

    /// Stores bytes already hashed to `hash`: written to a temporary file, synced, and moved
    /// under the hash, all in one blocking call. On failure nothing is left behind. Bytes
    /// already stored are not written again: every writer syncs a file before moving it in,
    /// so only its directory is synced, in case the move that put it there is not yet durable.
    pub async fn put_hashed<B>(&self, bytes: B, hash: &str) -> Result<(), BlobError>
    where
        B: AsRef<[u8]> + Send + 'static,
    {
        let dest = self.path(hash)?;
        let legacy = self.legacy_path(hash)?;
        let tmp = self.tmp.join(uuid::Uuid::new_v4().to_string());
        let dirs = self.dirs.clone();
        tokio::task::spawn_blocking(move || {
            let bytes = bytes.as_ref();
            let stored = |p: &Path| holds_at(p, bytes.len() as u64);
            if let Some(present) = [&dest, &legacy].into_iter().find(|p| stored(p)) {
                let dir = present.parent().unwrap_or(&dirs.root);
                return sync_dir(dir).and_then(|()| dirs.link(dir));
            }
            let stored = std::fs::File::create(&tmp)
                .and_then(|mut f| {
                    std::io::Write::write_all(&mut f, bytes)?;
                    f.sync_all()
                })
                .and_then(|()| dirs.move_durably(&tmp, &dest));
            if stored.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            stored
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(())
    }

    /// Whether `size` bytes are stored under `hash` (where this version writes them, or where
    /// earlier ones did).
    pub async fn holds(&self, hash: &str, size: u64) -> bool {
        let (Ok(path), Ok(legacy)) = (self.path(hash), self.legacy_path(hash)) else {
            return false;
        };
        tokio::task::spawn_blocking(move || holds_at(&path, size) || holds_at(&legacy, size))
            .await
            .unwrap_or(false)
    }

    /// Removes a temporary file, ignoring one that is already gone.
    pub async fn discard(&self, tmp: &Path) {
        let _ = tokio::fs::remove_file(tmp).await;
    }

    /// Temporary files older than `age`: writes that a crash or a dropped connection
    /// abandoned.
    pub async fn stale_temp(&self, age: std::time::Duration) -> Result<Vec<PathBuf>, BlobError> {
        let mut out = Vec::new();
        let mut dir = tokio::fs::read_dir(&self.tmp).await?;
        while let Some(entry) = dir.next_entry().await? {
            if older_than(&entry, age).await {
                out.push(entry.path());
            }
        }
        Ok(out)
    }

    /// Removes temporary files older than `age`; returns how many.
    pub async fn clear_stale_temp(&self, age: std::time::Duration) -> Result<usize, BlobError> {
        let mut removed = 0;
        for path in self.stale_temp(age).await? {
            if tokio::fs::remove_file(path).await.is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Hashes of the stored blobs whose files are older than `age`.
    pub async fn hashes_older_than(
        &self,
        age: std::time::Duration,
    ) -> Result<Vec<String>, BlobError> {
        let mut out = Vec::new();
        let mut dirs = vec![self.root.clone()];
        while let Some(dir) = dirs.pop() {
            let mut entries = tokio::fs::read_dir(&dir).await?;
            while let Some(entry) = entries.next_entry().await? {
                let kind = entry.file_type().await?;
                if kind.is_dir() {
                    dirs.push(entry.path());
                } else if let Some(name) = entry.file_name().to_str() {
                    if names::is_blob_hash(name) && older_than(&entry, age).await {
                        out.push(name.to_string());
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Opens the bytes of `hash` for reading.
    pub async fn open_blob(&self, hash: &str) -> Result<tokio::fs::File, BlobError> {
        let (path, legacy) = (self.path(hash)?, self.legacy_path(hash)?);
        let file = tokio::task::spawn_blocking(move || open_either(&path, &legacy))
            .await
            .map_err(std::io::Error::other)??;
        Ok(tokio::fs::File::from_std(file))
    }

    /// Whether the bytes of `hash` are present.
    pub async fn exists(&self, hash: &str) -> bool {
        match (self.path(hash), self.legacy_path(hash)) {
            (Ok(p), Ok(legacy)) => {
                tokio::fs::try_exists(p).await.unwrap_or(false)
                    || tokio::fs::try_exists(legacy).await.unwrap_or(false)
            }
            _ => false,
        }
    }

    /// Frees the bytes of each of `hashes`, wherever they are; a missing file is not an
    /// error. The files are removed by up to eight blocking calls at once: removing a file
    /// mostly waits for the disk, so several removals overlap their waits (20,000 files went
    /// about four times as fast with eight as with one).
    pub async fn delete_many(&self, hashes: &[String]) -> Result<(), BlobError> {
        let mut paths = Vec::with_capacity(2 * hashes.len());
        for h in hashes {
            paths.push(self.path(h)?);
            paths.push(self.legacy_path(h)?);
        }
        let per_call = paths.len().div_ceil(UNLINKERS).max(UNLINKED_AT_LEAST);
        let mut calls = Vec::with_capacity(UNLINKERS);
        while !paths.is_empty() {
            let part = paths.split_off(paths.len().saturating_sub(per_call));
            calls.push(tokio::task::spawn_blocking(move || {
                part.into_iter()
                    .try_for_each(|path| match std::fs::remove_file(path) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                        _ => Ok(()),
                    })
            }));
        }
        // Every call is waited for, so none is still removing files when this returns.
        let mut outcome = Ok(());
        for done in futures::future::join_all(calls).await {
            let done = done.map_err(std::io::Error::other).and_then(|r| r);
            if let (Ok(()), Err(e)) = (&outcome, done) {
                outcome = Err(BlobError::Io(e));
            }
        }
        outcome
    }
}

/// Opens the file at `path`, or at `legacy` (where earlier versions wrote the same bytes) when
/// there is none at `path`. Blocking.
pub(super) fn open_either(path: &Path, legacy: &Path) -> std::io::Result<std::fs::File> {
    match std::fs::File::open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::File::open(legacy),
        opened => opened,
    }
}

async fn older_than(entry: &tokio::fs::DirEntry, age: std::time::Duration) -> bool {
    entry
        .metadata()
        .await
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|e| e >= age)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::{Blobs, Loaded};
    use tokio::io::AsyncReadExt;

    fn hash_of(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    #[tokio::test]
    async fn bytes_an_earlier_version_stored_two_levels_deep_are_served_and_freed() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path(), None).await.unwrap();
        let bytes = b"stored by an earlier version".to_vec();
        let hash = hash_of(&bytes);
        let legacy = dir
            .path()
            .join("blobs")
            .join(&hash[..2])
            .join(&hash[2..4])
            .join(&hash);
        std::fs::create_dir_all(legacy.parent().unwrap()).unwrap();
        std::fs::write(&legacy, &bytes).unwrap();

        assert!(blobs.exists(&hash).await);
        assert_eq!(blobs.path(&hash).unwrap(), legacy);
        assert_eq!(blobs.len(&hash).await.unwrap(), bytes.len() as u64);
        match blobs.load(&hash, 1 << 20).await.unwrap() {
            Loaded::Whole(b) => assert_eq!(&b[..], &bytes[..]),
            other => panic!("{other:?}: not loaded"),
        }
        let mut read = Vec::new();
        let mut file = blobs.local.open_blob(&hash).await.unwrap();
        file.read_to_end(&mut read).await.unwrap();
        assert_eq!(read, bytes);
        let listed = blobs.local.hashes_older_than(std::time::Duration::ZERO);
        assert_eq!(listed.await.unwrap(), vec![hash.clone()]);

        // The same bytes stored again are found where they are; no second copy is written.
        blobs.put_hashed(bytes.clone().into(), &hash).await.unwrap();
        assert!(!blobs.local.path(&hash).unwrap().exists());

        blobs.delete(&hash).await.unwrap();
        assert!(!legacy.exists());
        assert!(!blobs.exists(&hash).await);
    }

    #[test]
    fn first_writes_racing_into_a_new_directory_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("blobs");
        std::fs::create_dir_all(&root).unwrap();
        let dirs = Arc::new(Dirs {
            root: root.clone(),
            durable: Mutex::default(),
        });
        for round in 0..40 {
            let writers = 8;
            let start = Arc::new(std::sync::Barrier::new(writers));
            let handles: Vec<_> = (0..writers)
                .map(|w| {
                    let (dirs, start) = (dirs.clone(), start.clone());
                    let tmp = dir.path().join(format!("tmp-{round}-{w}"));
                    std::fs::write(&tmp, [w as u8]).unwrap();
                    let dest = root.join(format!("{round:02x}")).join(format!("{w}"));
                    std::thread::spawn(move || {
                        start.wait();
                        dirs.move_durably(&tmp, &dest).map(|()| dest)
                    })
                })
                .collect();
            for (w, handle) in handles.into_iter().enumerate() {
                let dest = handle
                    .join()
                    .unwrap()
                    .unwrap_or_else(|e| panic!("round {round}: writer {w} failed: {e}"));
                assert_eq!(std::fs::read(dest).unwrap(), [w as u8]);
            }
        }
    }

    #[tokio::test]
    async fn many_blobs_are_freed_at_once_and_a_failure_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path(), None).await.unwrap();
        let mut hashes = Vec::new();
        for i in 0..300u32 {
            let bytes = format!("blob {i}").into_bytes();
            let hash = hash_of(&bytes);
            blobs.put_hashed(bytes.into(), &hash).await.unwrap();
            hashes.push(hash);
        }
        // Two hundred of them, and hashes never stored (not an error), across many calls.
        let mut freed = hashes[..200].to_vec();
        freed.extend((0..50u32).map(|i| hash_of(format!("never stored {i}").as_bytes())));
        blobs.local.delete_many(&freed).await.unwrap();
        for (i, hash) in hashes.iter().enumerate() {
            assert_eq!(blobs.exists(hash).await, i >= 200, "blob {i}");
        }

        // A path that cannot be removed fails the whole call, after every part has run: the
        // first hash and the last are in different parts, and only the middle one is blocked.
        let (first, blocked, last) = (&hashes[200], &hashes[250], &hashes[299]);
        let path = blobs.local.path(blocked).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir_all(path.join("in the way")).unwrap();
        let err = blobs.local.delete_many(&hashes[200..]).await.unwrap_err();
        assert!(matches!(err, BlobError::Io(_)), "{err:?}");
        assert!(!blobs.exists(first).await);
        assert!(!blobs.exists(last).await);
        assert!(path.is_dir());
    }

    #[tokio::test]
    async fn new_bytes_go_one_level_deep() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path(), None).await.unwrap();
        let bytes = b"new bytes".to_vec();
        let hash = hash_of(&bytes);
        blobs.put_hashed(bytes.clone().into(), &hash).await.unwrap();
        let file = dir.path().join("blobs").join(&hash[..2]).join(&hash);
        assert_eq!(std::fs::read(&file).unwrap(), bytes);
        assert_eq!(blobs.path(&hash).unwrap(), file);
        let (other, size) = blobs.put_bytes(b"streamed bytes").await.unwrap();
        assert_eq!(size, 14);
        assert!(dir
            .path()
            .join("blobs")
            .join(&other[..2])
            .join(&other)
            .is_file());
    }
}
