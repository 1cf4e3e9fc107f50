//! Bytes in object storage through `object_store`: S3 and S3-compatible servers, Google Cloud
//! Storage, and Azure Blob Storage.

use super::{BlobError, ByteStream};
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::path::Path as ObjectPath;
use object_store::signer::{Method, Signer};
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Part size of multipart uploads.
const PART: usize = 8 * 1024 * 1024;

/// Largest object written from memory in one PUT. Uploads are held in memory up to the
/// upload limit (50 MiB by default); S3 takes 5 GiB in one PUT, Azure about 5,000 MiB and GCS
/// 5 TiB.
const SINGLE_PUT: usize = 256 * 1024 * 1024;

/// An object being read: its size and stored type known, its bytes not yet taken.
#[derive(Debug)]
pub struct RemoteObject {
    /// Size in bytes.
    pub size: u64,
    /// The Content-Type the object was stored with, as the store reports it.
    pub content_type: Option<String>,
    body: object_store::GetResult,
}

impl RemoteObject {
    /// Reads all the bytes.
    pub async fn bytes(self) -> Result<bytes::Bytes, BlobError> {
        Ok(self.body.bytes().await?)
    }

    /// The bytes as they arrive.
    pub fn stream(self) -> ByteStream {
        byte_stream(self.body)
    }
}

/// The bytes of a read as they arrive.
fn byte_stream(got: object_store::GetResult) -> ByteStream {
    got.into_stream()
        .map(|r| r.map_err(std::io::Error::other))
        .boxed()
}

/// A bucket (or container) and a key prefix.
#[derive(Debug, Clone)]
pub struct RemoteBlobs {
    store: Arc<dyn ObjectStore>,
    /// Signs upload URLs, for stores that take a signed PUT as the official client sends it
    /// (S3 and GCS). Azure has none: a PUT there must also carry an `x-ms-blob-type` header,
    /// which that client does not send, so uploads to Azure go through the server.
    signer: Option<Arc<dyn Signer>>,
    prefix: String,
}

/// The URL forms [`RemoteBlobs::open`] takes, for error messages.
const FORMS: &str = "file://…, s3://bucket/prefix, gs://bucket/prefix or az://container/prefix";

impl RemoteBlobs {
    /// Opens `s3://bucket[/prefix]`, `gs://bucket[/prefix]` or `az://container[/prefix]`, each
    /// with options after `?`:
    /// - `s3`: `endpoint=` and `region=`; credentials (and, unless the URL names them, region
    ///   and endpoint) from the usual `AWS_*` variables;
    /// - `gs`: `service_account=` (the path of a service account key file); otherwise
    ///   credentials from `GOOGLE_SERVICE_ACCOUNT`, `GOOGLE_APPLICATION_CREDENTIALS` or the
    ///   instance's metadata server;
    /// - `s3` and `gs`: `uploads=presigned` (the default: clients PUT into the bucket through
    ///   presigned URLs) or `uploads=server` (clients PUT to the server, which stores the
    ///   bytes under their hash);
    /// - `az`: `account=` and `endpoint=` (default `https://ACCOUNT.blob.core.windows.net`);
    ///   the account, when not in the URL, and the credentials (an account key, a SAS token,
    ///   a client secret or a managed identity) from the usual `AZURE_*` variables.
    pub fn open(url: &str) -> Result<RemoteBlobs, BlobError> {
        let (url, query) = url.split_once('?').unwrap_or((url, ""));
        let unsupported =
            || BlobError::Config(format!("unsupported blob store URL '{url}': use {FORMS}"));
        let (scheme, rest) = url.split_once("://").ok_or_else(unsupported)?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(BlobError::Config(format!(
                "the {scheme}:// URL needs a {}",
                if scheme == "az" {
                    "container"
                } else {
                    "bucket"
                }
            )));
        }
        let known: &[&str] = match scheme {
            "s3" => &["endpoint", "region", "uploads"],
            "gs" => &["service_account", "uploads"],
            "az" => &["account", "endpoint"],
            _ => return Err(unsupported()),
        };
        let mut options = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some((k, v)) if known.contains(&k) => options.push((k, v)),
                _ => {
                    return Err(BlobError::Config(format!(
                        "unknown {scheme}:// URL option '{pair}': use {}",
                        known
                            .iter()
                            .map(|k| format!("{k}="))
                            .collect::<Vec<_>>()
                            .join(" or ")
                    )))
                }
            }
        }
        let option = |name: &str| options.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        let presigned = match option("uploads") {
            None | Some("presigned") => true,
            Some("server") => false,
            Some(other) => {
                return Err(BlobError::Config(format!(
                    "unknown uploads={other} in the {scheme}:// URL: use uploads=presigned or uploads=server"
                )))
            }
        };
        let (store, signer): (Arc<dyn ObjectStore>, Option<Arc<dyn Signer>>) = match scheme {
            "s3" => {
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
                if let Some(region) = option("region") {
                    builder = builder.with_region(region);
                }
                let endpoint = option("endpoint")
                    .map(str::to_string)
                    .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
                if let Some(endpoint) = endpoint {
                    builder = builder
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_endpoint(endpoint);
                }
                let s3 = Arc::new(builder.build()?);
                (s3.clone(), Some(s3))
            }
            "gs" => {
                let mut builder = GoogleCloudStorageBuilder::from_env().with_bucket_name(bucket);
                if let Some(path) = option("service_account") {
                    builder = builder.with_service_account_path(path);
                }
                let gcs = Arc::new(builder.build()?);
                (gcs.clone(), Some(gcs))
            }
            _ => {
                let mut builder = MicrosoftAzureBuilder::from_env().with_container_name(bucket);
                if let Some(account) = option("account") {
                    builder = builder.with_account(account);
                }
                if let Some(endpoint) = option("endpoint") {
                    builder = builder
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_endpoint(endpoint.to_string());
                }
                (Arc::new(builder.build()?), None)
            }
        };
        Ok(RemoteBlobs {
            store,
            signer: signer.filter(|_| presigned),
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

    /// Stores bytes held in memory as one object: one PUT up to 256 MiB (every store
    /// takes far more in one request, and the bytes are in memory already), in parts above.
    pub async fn put_bytes(&self, key: &str, bytes: bytes::Bytes) -> Result<(), BlobError> {
        let path = self.path(key);
        if bytes.len() <= SINGLE_PUT {
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
        Ok(byte_stream(got))
    }

    /// Starts reading a whole object in one request: its size and the Content-Type it was
    /// stored with are known before its bytes are read. `None` when there is no such object.
    pub async fn read(&self, key: &str) -> Result<Option<RemoteObject>, BlobError> {
        let got = match self.store.get(&self.path(key)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(Some(RemoteObject {
            size: got.meta.size,
            content_type: got
                .attributes
                .get(&object_store::Attribute::ContentType)
                .map(|v| v.to_string()),
            body: got,
        }))
    }

    /// Deletes objects, many in each request where the store takes that (S3 up to 1,000);
    /// missing ones are not an error.
    pub async fn delete_all(&self, keys: &[String]) -> Result<(), BlobError> {
        let paths: Vec<object_store::Result<ObjectPath>> =
            keys.iter().map(|k| Ok(self.path(k))).collect();
        let mut deleted = self
            .store
            .delete_stream(futures::stream::iter(paths).boxed());
        while let Some(done) = deleted.next().await {
            match done {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
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

    /// A presigned PUT URL for an object, or `None` when uploads to this store go through the
    /// server.
    pub async fn presign_put(&self, key: &str, ttl: Duration) -> Result<Option<String>, BlobError> {
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        let url = signer.signed_url(Method::PUT, &self.path(key), ttl).await?;
        Ok(Some(url.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::RemoteBlobs;

    fn refusal(url: &str) -> String {
        RemoteBlobs::open(url)
            .expect_err("the URL is refused")
            .to_string()
    }

    #[test]
    fn urls_name_a_bucket_and_only_their_own_options() {
        assert!(refusal("ftp://bucket/p").contains("unsupported blob store URL 'ftp://bucket/p'"));
        assert!(refusal("bucket/p").contains("use file://…, s3://"));
        assert!(refusal("gs:///p").contains("the gs:// URL needs a bucket"));
        assert!(refusal("az://").contains("the az:// URL needs a container"));
        let wrong = refusal("gs://bucket/p?endpoint=http://127.0.0.1:1");
        assert!(
            wrong.contains("unknown gs:// URL option 'endpoint=http://127.0.0.1:1'")
                && wrong.contains("use service_account="),
            "{wrong}"
        );
        let wrong = refusal("s3://bucket/p?uploads=sometimes");
        assert!(
            wrong.contains("unknown uploads=sometimes") && wrong.contains("uploads=server"),
            "{wrong}"
        );
        let wrong = refusal("az://container?uploads=server");
        assert!(
            wrong.contains("unknown az:// URL option 'uploads=server'"),
            "{wrong}"
        );
        for (url, presigned) in [
            (
                "s3://bucket/p?endpoint=http://127.0.0.1:1&region=us-east-1",
                true,
            ),
            (
                "s3://bucket/p?endpoint=http://127.0.0.1:1&region=us-east-1&uploads=presigned",
                true,
            ),
            (
                "s3://bucket/p?endpoint=http://127.0.0.1:1&region=us-east-1&uploads=server",
                false,
            ),
        ] {
            let opened = RemoteBlobs::open(url).expect("the URL opens a store");
            assert_eq!(opened.signer.is_some(), presigned, "{url}");
        }
        let wrong = refusal("az://container?region=x");
        assert!(wrong.contains("use account= or endpoint="), "{wrong}");
        let opened = RemoteBlobs::open(
            "az://container/some/prefix/?account=acct&endpoint=http://127.0.0.1:1/acct",
        )
        .expect("a container, an account and an endpoint open a store");
        assert_eq!(opened.prefix, "some/prefix");
        assert!(
            opened.signer.is_none(),
            "Azure uploads go through the server"
        );
    }
}
