//! Image bytes: content-addressed by SHA-256, written once, never modified.
//!
//! Bytes live on the local disk (`file://`, the default) or in object storage
//! (`s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`). Bytes are hashed
//! before they are stored under their hash, and a half-written object is never visible
//! there: a local file is written under a temporary name, synced and then renamed; an object
//! store's PUT (or a multipart upload's completion) makes the whole object appear at once.

mod local;

pub(crate) use local::{sync_dir, write_synced};
mod remote;

pub use local::{Incoming, LocalBlobs};
pub use remote::{RemoteBlobs, RemoteObject};

use bytes::Bytes;
use futures::stream::BoxStream;
use pictograph_core::names;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A blob store failure.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// An I/O failure.
    #[error("blob i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The hash is not a SHA-256 hex string.
    #[error("invalid blob hash")]
    BadHash,
    /// An object store failure.
    #[error("object store: {0}")]
    Remote(#[from] object_store::Error),
    /// A blob store URL that cannot be used.
    #[error("blob store configuration: {0}")]
    Config(String),
}

/// Where an object's bytes are stored, relative to the store's root: `blobs/ab/cd/<hash>`.
fn blob_key(hash: &str) -> Result<String, BlobError> {
    let [a, b, name] = names::blob_segments(hash).ok_or(BlobError::BadHash)?;
    Ok(format!("blobs/{a}/{b}/{name}"))
}

/// Read size when streaming bytes from disk: large enough that a download is not a storm of
/// small reads and wake-ups.
const STREAM_CHUNK: usize = 256 * 1024;

/// What [`Blobs::load`] found.
pub enum Loaded {
    /// All the bytes.
    Whole(Bytes),
    /// Too large to hold: the size, to stream them.
    Large(u64),
    /// Too large to hold, in an object store: the size, and the whole object already being
    /// read (a range is read with a request of its own).
    Streaming(u64, ByteStream),
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Loaded::Whole(b) => f.debug_tuple("Whole").field(&b.len()).finish(),
            Loaded::Large(n) => f.debug_tuple("Large").field(n).finish(),
            Loaded::Streaming(n, _) => f.debug_tuple("Streaming").field(n).finish(),
        }
    }
}

/// A stream of a blob's bytes.
pub type ByteStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// The byte store: local staging always, and optionally a remote object store.
#[derive(Debug, Clone)]
pub struct Blobs {
    local: LocalBlobs,
    remote: Option<RemoteBlobs>,
}

impl Blobs {
    /// Opens the store: `url` is `None` or `file://…` for the data directory's disk, or an
    /// object store URL that [`RemoteBlobs::open`] takes.
    pub async fn open(data_dir: &Path, url: Option<&str>) -> Result<Blobs, BlobError> {
        let remote = match url {
            None => None,
            Some(u) if u.starts_with("file://") => None,
            Some(u) => Some(RemoteBlobs::open(u)?),
        };
        let local_root = match url.and_then(|u| u.strip_prefix("file://")) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => data_dir.to_path_buf(),
        };
        Ok(Blobs {
            local: LocalBlobs::open(&local_root).await?,
            remote,
        })
    }

    /// Whether bytes live in a remote object store.
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// The local file holding the bytes of `hash` (local stores only).
    pub fn path(&self, hash: &str) -> Result<PathBuf, BlobError> {
        self.local.located(hash)
    }

    /// Starts a staged write.
    pub async fn incoming(&self) -> Result<Incoming, BlobError> {
        self.local.incoming().await
    }

    /// Removes a staged file.
    pub async fn discard(&self, tmp: &Path) {
        self.local.discard(tmp).await
    }

    /// Stores a finished staged file under its hash.
    pub async fn commit(&self, tmp: &Path, hash: &str) -> Result<(), BlobError> {
        match &self.remote {
            Some(r) => {
                r.put_file(&blob_key(hash)?, tmp).await?;
                self.local.discard(tmp).await;
                Ok(())
            }
            None => self.local.commit(tmp, hash).await,
        }
    }

    /// Stores bytes held in memory that hash to `hash` (the caller hashed them). Durable when
    /// it returns.
    pub async fn put_hashed(&self, bytes: Bytes, hash: &str) -> Result<(), BlobError> {
        match &self.remote {
            Some(r) => r.put_bytes(&blob_key(hash)?, bytes).await,
            None => self.local.put_hashed(bytes, hash).await,
        }
    }

    /// Whether bytes are kept on the local disk rather than in an object store.
    pub fn is_local(&self) -> bool {
        self.remote.is_none()
    }

    /// Whether the local disk holds `size` bytes under `hash` (always false for an object
    /// store).
    pub async fn holds_locally(&self, hash: &str, size: u64) -> bool {
        self.is_local() && self.local.holds(hash, size).await
    }

    /// Stores bytes held in memory; returns (hash, size).
    pub async fn put_bytes(&self, bytes: &[u8]) -> Result<(String, u64), BlobError> {
        let mut inc = self.incoming().await?;
        inc.write(bytes).await?;
        let (tmp, hash, size) = inc.finish().await?;
        self.commit(&tmp, &hash).await?;
        Ok((hash, size))
    }

    /// Whether the bytes of `hash` are present.
    pub async fn exists(&self, hash: &str) -> bool {
        match &self.remote {
            Some(r) => match blob_key(hash) {
                Ok(k) => r.size(&k).await.is_ok(),
                Err(_) => false,
            },
            None => self.local.exists(hash).await,
        }
    }

    /// Frees the bytes of `hash`; missing bytes are not an error.
    pub async fn delete(&self, hash: &str) -> Result<(), BlobError> {
        match &self.remote {
            Some(r) => r.delete(&blob_key(hash)?).await,
            None => self.local.delete_many(&[hash.to_owned()]).await,
        }
    }

    /// Deletes the bytes of every one of `hashes` (those already gone are no error): local
    /// files in one blocking call, objects many to a request where the store takes that.
    pub async fn delete_many(&self, hashes: &[String]) -> Result<(), BlobError> {
        match &self.remote {
            Some(r) => {
                let keys = hashes
                    .iter()
                    .map(|h| blob_key(h))
                    .collect::<Result<Vec<_>, _>>()?;
                r.delete_all(&keys).await
            }
            None => self.local.delete_many(hashes).await,
        }
    }

    /// The size of the bytes of `hash`.
    pub async fn len(&self, hash: &str) -> Result<u64, BlobError> {
        match &self.remote {
            Some(r) => r.size(&blob_key(hash)?).await,
            None => Ok(self.local.open_blob(hash).await?.metadata().await?.len()),
        }
    }

    /// The bytes of `hash` when they are at most `limit` bytes: a local file read in one
    /// blocking call, an object in one request. Otherwise their size, for
    /// [`Blobs::stream`] (local), or their size and the object being read (object store).
    pub async fn load(&self, hash: &str, limit: u64) -> Result<Loaded, BlobError> {
        if let Some(r) = &self.remote {
            let object = r.read(&blob_key(hash)?).await?.ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "no object for the blob")
            })?;
            if object.size > limit {
                return Ok(Loaded::Streaming(object.size, object.stream()));
            }
            return Ok(Loaded::Whole(object.bytes().await?));
        }
        let (path, legacy) = (self.local.path(hash)?, self.local.legacy_path(hash)?);
        let loaded = tokio::task::spawn_blocking(move || -> std::io::Result<Loaded> {
            use std::io::Read;
            let mut file = local::open_either(&path, &legacy)?;
            let size = file.metadata()?.len();
            if size > limit {
                return Ok(Loaded::Large(size));
            }
            let mut buf = Vec::with_capacity(size as usize);
            file.read_to_end(&mut buf)?;
            Ok(Loaded::Whole(Bytes::from(buf)))
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(loaded)
    }

    /// Streams the bytes of `hash`, or the inclusive byte range `start..=end` of them.
    pub async fn stream(
        &self,
        hash: &str,
        range: Option<(u64, u64)>,
    ) -> Result<ByteStream, BlobError> {
        use futures::StreamExt;
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        match &self.remote {
            Some(r) => r.stream(&blob_key(hash)?, range).await,
            None => {
                let mut file = self.local.open_blob(hash).await?;
                let reader = match range {
                    Some((start, end)) => {
                        file.seek(std::io::SeekFrom::Start(start)).await?;
                        file.take(end - start + 1)
                    }
                    None => file.take(u64::MAX),
                };
                Ok(tokio_util::io::ReaderStream::with_capacity(reader, STREAM_CHUNK).boxed())
            }
        }
    }

    /// A presigned URL to PUT an upload's bytes straight into the object store, for remote
    /// stores that take one (S3, GCS); otherwise the bytes come through the server.
    pub async fn presign_upload(
        &self,
        upload_id: &str,
        ttl: Duration,
    ) -> Result<Option<String>, BlobError> {
        match &self.remote {
            Some(r) => r.presign_put(&upload_key(upload_id)?, ttl).await,
            None => Ok(None),
        }
    }

    /// Starts reading a presigned upload's object (one request): its size and the
    /// Content-Type it was PUT with are known before its bytes are read. `None` when nothing
    /// was uploaded, or when bytes are not kept in an object store.
    pub async fn open_upload(&self, upload_id: &str) -> Result<Option<RemoteObject>, BlobError> {
        match &self.remote {
            Some(r) => r.read(&upload_key(upload_id)?).await,
            None => Ok(None),
        }
    }

    /// Ids of presigned uploads whose objects are older than `age` (remote stores only): bytes
    /// a client PUT and never registered, or PUT again after register.
    pub async fn stale_uploads(&self, age: Duration) -> Result<Vec<String>, BlobError> {
        match &self.remote {
            Some(r) => r.older_than("uploads", age).await,
            None => Ok(Vec::new()),
        }
    }

    /// Removes a presigned upload's object.
    pub async fn delete_upload(&self, upload_id: &str) -> Result<(), BlobError> {
        match &self.remote {
            Some(r) => r.delete(&upload_key(upload_id)?).await,
            None => Ok(()),
        }
    }

    /// Removes the objects of presigned uploads, many in one request where the store takes
    /// that.
    pub async fn delete_uploads(&self, upload_ids: &[String]) -> Result<(), BlobError> {
        let Some(r) = &self.remote else {
            return Ok(());
        };
        let keys = upload_ids
            .iter()
            .map(|id| upload_key(id))
            .collect::<Result<Vec<_>, _>>()?;
        r.delete_all(&keys).await
    }

    /// Copies the bytes of `hash` from `source` unless they are here already, checking that what
    /// arrived hashes to `hash`. Returns whether bytes were copied.
    pub async fn copy_from(&self, source: &Blobs, hash: &str) -> Result<bool, BlobError> {
        use futures::StreamExt;
        if self.exists(hash).await {
            return Ok(false);
        }
        let mut inc = self.incoming().await?;
        let mut s = source.stream(hash, None).await?;
        while let Some(chunk) = s.next().await {
            inc.write(&chunk?).await?;
        }
        let (tmp, got, _) = inc.finish().await?;
        if got != hash {
            self.discard(&tmp).await;
            return Err(BlobError::Config(format!(
                "the source's bytes for {hash} hash to {got}: the source is corrupt"
            )));
        }
        self.commit(&tmp, hash).await?;
        Ok(true)
    }

    /// Removes staged files older than `age`.
    pub async fn clear_stale_temp(&self, age: Duration) -> Result<usize, BlobError> {
        self.local.clear_stale_temp(age).await
    }

    /// Staged files older than `age` (what [`Blobs::clear_stale_temp`] would remove).
    pub async fn stale_temp(&self, age: Duration) -> Result<Vec<PathBuf>, BlobError> {
        self.local.stale_temp(age).await
    }

    /// Hashes of every stored blob whose bytes were written more than `age` ago.
    pub async fn hashes_older_than(&self, age: Duration) -> Result<Vec<String>, BlobError> {
        match &self.remote {
            Some(r) => {
                let mut out: Vec<String> = r
                    .older_than("blobs", age)
                    .await?
                    .into_iter()
                    .filter(|h| names::is_blob_hash(h))
                    .collect();
                out.sort();
                Ok(out)
            }
            None => self.local.hashes_older_than(age).await,
        }
    }
}

/// Where a presigned upload lands before register moves it under its hash.
fn upload_key(upload_id: &str) -> Result<String, BlobError> {
    if !names::is_upload_id(upload_id) {
        return Err(BlobError::Config("invalid upload id".into()));
    }
    Ok(format!("uploads/{upload_id}"))
}
