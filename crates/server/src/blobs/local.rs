//! Image bytes on the local disk under `<data>/blobs/ab/cd/<hash>`.
//!
//! Incoming bytes are written to a temporary file under the data directory, hashed as they
//! arrive, fsynced, then renamed under their hash (atomic; an existing copy is identical by
//! construction).

use super::BlobError;
use pictograph_core::names;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// Bytes on disk, plus the temporary directory every backend stages writes in.
#[derive(Debug, Clone)]
pub struct LocalBlobs {
    root: PathBuf,
    tmp: PathBuf,
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
        Ok(LocalBlobs { root, tmp })
    }

    /// Where the bytes of `hash` live. Only well-formed hashes map to a path.
    pub fn path(&self, hash: &str) -> Result<PathBuf, BlobError> {
        let [a, b, name] = names::blob_segments(hash).ok_or(BlobError::BadHash)?;
        Ok(self.root.join(a).join(b).join(name))
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
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        tokio::fs::rename(tmp, &dest).await?;
        // The rename is durable only once its directory is: sync it before anyone is told.
        if let Some(dir) = dest.parent() {
            tokio::fs::File::open(dir).await?.sync_all().await?;
        }
        Ok(())
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
        Ok(out)
    }

    /// Opens the bytes of `hash` for reading.
    pub async fn open_blob(&self, hash: &str) -> Result<tokio::fs::File, BlobError> {
        Ok(tokio::fs::File::open(self.path(hash)?).await?)
    }

    /// Whether the bytes of `hash` are present.
    pub async fn exists(&self, hash: &str) -> bool {
        match self.path(hash) {
            Ok(p) => tokio::fs::try_exists(p).await.unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Frees the bytes of `hash`; a missing file is not an error.
    pub async fn delete(&self, hash: &str) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(hash)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
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
