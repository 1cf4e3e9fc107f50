//! Bytes in S3-compatible object storage through `object_store`.

use super::{BlobError, ByteStream};
use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::signer::{Method, Signer};
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Part size of multipart uploads.
const PART: usize = 8 * 1024 * 1024;

/// A bucket and a key prefix.
#[derive(Debug, Clone)]
pub struct RemoteBlobs {
    store: Arc<AmazonS3>,
    prefix: String,
}

impl RemoteBlobs {
    /// Parses `s3://bucket[/prefix][?endpoint=…&region=…]`; credentials (and, unless the URL
    /// names them, region and endpoint) come from the usual `AWS_*` variables.
    pub fn open(url: &str) -> Result<RemoteBlobs, BlobError> {
        let (url, query) = url.split_once('?').unwrap_or((url, ""));
        let rest = url.strip_prefix("s3://").ok_or_else(|| {
            BlobError::Config(format!(
                "unsupported blob store URL '{url}': use file://… or s3://bucket/prefix"
            ))
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(BlobError::Config("the s3:// URL needs a bucket".into()));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        let mut endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("endpoint", v)) => endpoint = Some(v.to_string()),
                Some(("region", v)) => builder = builder.with_region(v),
                _ => {
                    return Err(BlobError::Config(format!(
                        "unknown blob store URL option '{pair}': use endpoint= or region="
                    )))
                }
            }
        }
        if let Some(endpoint) = endpoint {
            builder = builder
                .with_allow_http(endpoint.starts_with("http://"))
                .with_endpoint(endpoint);
        }
        Ok(RemoteBlobs {
            store: Arc::new(builder.build()?),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }

    fn path(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    /// Uploads a local file, in parts when it is large.
    pub async fn put_file(&self, key: &str, file: &Path) -> Result<(), BlobError> {
        let path = self.path(key);
        let mut f = tokio::fs::File::open(file).await?;
        let len = f.metadata().await?.len();
        if len as usize <= PART {
            let mut buf = Vec::with_capacity(len as usize);
            f.read_to_end(&mut buf).await?;
            self.store.put(&path, buf.into()).await?;
            return Ok(());
        }
        let upload = self.store.put_multipart(&path).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buf = vec![0u8; PART];
        loop {
            let n = f.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            writer.wait_for_capacity(2).await?;
            writer.write(&buf[..n]);
        }
        writer.finish().await?;
        Ok(())
    }

    /// Stores bytes held in memory as one object (multipart above the part size).
    pub async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        let path = self.path(key);
        if bytes.len() <= PART {
            self.store.put(&path, bytes.into()).await?;
            return Ok(());
        }
        let upload = self.store.put_multipart(&path).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        for part in bytes.chunks(PART) {
            writer.wait_for_capacity(2).await?;
            writer.write(part);
        }
        writer.finish().await?;
        Ok(())
    }

    /// The size of an object.
    pub async fn size(&self, key: &str) -> Result<u64, BlobError> {
        Ok(self.store.head(&self.path(key)).await?.size)
    }

    /// Deletes an object; a missing one is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Streams an object, or the inclusive range `start..=end` of it.
    pub async fn stream(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
    ) -> Result<ByteStream, BlobError> {
        let opts = GetOptions {
            range: range.map(|(s, e)| GetRange::Bounded(s..e + 1)),
            ..Default::default()
        };
        let got = self.store.get_opts(&self.path(key), opts).await?;
        Ok(got
            .into_stream()
            .map(|r| r.map_err(std::io::Error::other))
            .boxed())
    }

    /// Streams a whole object, with the Content-Type it was stored with, if any.
    pub async fn stream_typed(&self, key: &str) -> Result<(Option<String>, ByteStream), BlobError> {
        let got = self.store.get(&self.path(key)).await?;
        let content_type = got
            .attributes
            .get(&object_store::Attribute::ContentType)
            .map(|v| v.to_string());
        let stream = got
            .into_stream()
            .map(|r| r.map_err(std::io::Error::other))
            .boxed();
        Ok((content_type, stream))
    }

    /// Keys under `dir/` whose objects were last written more than `age` ago, without `dir/`.
    pub async fn older_than(&self, dir: &str, age: Duration) -> Result<Vec<String>, BlobError> {
        let cutoff = chrono::Utc::now() - chrono::Duration::from_std(age).unwrap_or_default();
        let prefix = self.path(dir);
        let mut listing = self.store.list(Some(&prefix));
        let mut out = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            if meta.last_modified < cutoff {
                if let Some(name) = meta.location.filename() {
                    out.push(name.to_string());
                }
            }
        }
        Ok(out)
    }

    /// A presigned PUT URL for an object.
    pub async fn presign_put(&self, key: &str, ttl: Duration) -> Result<String, BlobError> {
        let url = self
            .store
            .signed_url(Method::PUT, &self.path(key), ttl)
            .await?;
        Ok(url.to_string())
    }
}
