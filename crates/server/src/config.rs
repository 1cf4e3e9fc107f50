//! Server configuration. The CLI fills it in layers: defaults, a TOML file, `PICTOGRAPH_*`
//! environment, flags.

use std::net::SocketAddr;
use std::path::PathBuf;

/// The most pixels an uploaded image may ever have: the ceiling of
/// [`Config::max_image_pixels`].
pub use pictograph_media::MAX_PIXELS as MAX_IMAGE_PIXELS;

/// Fewest bytes a configured URL-signing secret may have: anyone who knows or guesses the
/// secret can sign URLs that read and write every organisation's images.
pub const MIN_SIGNING_SECRET: usize = 32;

/// Longest a signed URL may stay valid, in seconds: seven days, the most S3 presigning allows.
/// A leaked URL works until it expires, so the bound keeps that window finite.
pub const MAX_URL_TTL_SECS: u64 = 7 * 24 * 3600;

/// Requests per hour allowed to one key of each tier.
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    /// Free tier.
    pub free: u32,
    /// Core tier.
    pub core: u32,
    /// Pro tier.
    pub pro: u32,
    /// Enterprise tier.
    pub enterprise: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            free: 1_000,
            core: 5_000,
            pro: 20_000,
            enterprise: 100_000,
        }
    }
}

impl RateLimits {
    /// The hourly budget for a tier; `None` means unlimited.
    pub fn for_tier(&self, tier: &str) -> Option<u32> {
        match tier {
            "free" => Some(self.free),
            "core" => Some(self.core),
            "pro" => Some(self.pro),
            "enterprise" => Some(self.enterprise),
            _ => None,
        }
    }
}

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the SQLite database, blobs and the signing secret live.
    pub data_dir: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Absolute base URL clients reach the server at; derived from the Host header when unset.
    pub public_url: Option<String>,
    /// Metadata database URL; SQLite under `data_dir` when unset.
    pub database_url: Option<String>,
    /// Blob store URL: `file://…`, `s3://bucket/prefix`, `gs://bucket/prefix` or
    /// `az://container/prefix`; the data directory when unset.
    pub blobs_url: Option<String>,
    /// Secret for signed URLs, at least [`MIN_SIGNING_SECRET`] bytes; generated and kept
    /// under `data_dir` when unset.
    pub signing_secret: Option<String>,
    /// Hourly request budgets.
    pub rate_limits: RateLimits,
    /// Largest accepted upload, in bytes.
    pub max_upload_bytes: u64,
    /// Most bytes of received uploads held in memory at once while they are checked and
    /// stored; further uploads wait. 0: no limit.
    pub upload_memory_bytes: u64,
    /// Most bytes of pixels decoded at once to check GIF, BMP, TIFF, WebP and HEIC uploads
    /// (JPEG and PNG are checked without decoding); further checks wait. 0: no limit.
    pub decode_memory_bytes: u64,
    /// Seconds an upload body may take before it must arrive at 1 KiB/s or more on average
    /// (counted from its start); a slower one is refused with 408 and gives its memory back.
    pub upload_stall_secs: u64,
    /// Most bytes that parsing JSON request bodies may take at once, as
    /// [`crate::memory::json_parse_bytes`] counts them; further requests wait, and a body that
    /// alone needs more is refused with 413. 0: no limit.
    pub json_memory_bytes: u64,
    /// Most pixels (width times height) an uploaded image may have; larger ones are refused
    /// with 422 before anything is decoded. At most [`MAX_IMAGE_PIXELS`], the default;
    /// lower it to bound what checking one GIF, BMP, TIFF, WebP or HEIC file takes.
    pub max_image_pixels: u64,
    /// How long signed upload and download URLs stay valid, in seconds: 1 to
    /// [`MAX_URL_TTL_SECS`].
    pub url_ttl_secs: u64,
    /// How long unreferenced bytes are kept before the sweep frees them, in seconds.
    pub blob_grace_secs: u64,
    /// How long a server on PostgreSQL keeps a key or image it read, in milliseconds, at
    /// most: changes drop them sooner, on every server (see the store's read cache). 0 turns
    /// the cache off.
    pub read_cache_ttl_ms: u64,
    /// Address of a second listener that serves Prometheus metrics at `/metrics`; none when
    /// unset (metrics are then not kept either).
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds after which a request running under an `Idempotency-Key` that another server
    /// claimed, and that has not renewed its claim, is taken for abandoned (its server
    /// stopped): the next request with the key then runs. A running request renews its claim
    /// four times as often. Every server of a deployment must use the same value, so it is not
    /// a command-line setting; tests shorten it.
    pub claim_stale_secs: u64,
    /// Seconds after which an export job that no server has recorded alive is failed by the
    /// sweep as interrupted. A running job records itself alive ten times as often. Every
    /// server of a deployment must use the same value, so it is not a command-line setting;
    /// tests shorten it.
    pub export_stale_secs: u64,
}

impl Config {
    /// Defaults for a data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            database_url: None,
            blobs_url: None,
            signing_secret: None,
            rate_limits: RateLimits::default(),
            max_upload_bytes: 50 * 1024 * 1024,
            upload_memory_bytes: 256 * 1024 * 1024,
            decode_memory_bytes: 256 * 1024 * 1024,
            json_memory_bytes: 512 * 1024 * 1024,
            upload_stall_secs: 30,
            max_image_pixels: MAX_IMAGE_PIXELS,
            url_ttl_secs: 3600,
            blob_grace_secs: 900,
            read_cache_ttl_ms: 5_000,
            metrics_listen: None,
            claim_stale_secs: 120,
            export_stale_secs: 600,
        }
    }

    /// Refuses a configuration the server must not start with: a configured signing secret
    /// shorter than [`MIN_SIGNING_SECRET`] bytes (an empty one included), or an image pixel
    /// limit outside 1 to [`MAX_IMAGE_PIXELS`], or no grace at all for upload bodies.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(secret) = &self.signing_secret {
            anyhow::ensure!(
                secret.len() >= MIN_SIGNING_SECRET,
                "the signing secret has {} bytes, fewer than the {MIN_SIGNING_SECRET} a \
                 URL-signing key needs: give --signing-secret (PICTOGRAPH_SIGNING_SECRET) a \
                 random value of at least {MIN_SIGNING_SECRET} bytes, e.g. `openssl rand -hex \
                 32`, or leave it unset to use the key made in the data directory",
                secret.len()
            );
        }
        anyhow::ensure!(
            (1..=MAX_IMAGE_PIXELS).contains(&self.max_image_pixels),
            "max_image_pixels must be between 1 and {MAX_IMAGE_PIXELS}"
        );
        anyhow::ensure!(
            (1..=MAX_URL_TTL_SECS).contains(&self.url_ttl_secs),
            "url_ttl_secs is {}, outside 1 to {MAX_URL_TTL_SECS} (seven days, the longest a \
             signed URL may stay valid)",
            self.url_ttl_secs
        );
        anyhow::ensure!(
            self.upload_stall_secs >= 1,
            "upload_stall_secs must be at least 1"
        );
        anyhow::ensure!(
            self.claim_stale_secs >= 1 && self.export_stale_secs >= 1,
            "claim_stale_secs and export_stale_secs must be at least 1"
        );
        Ok(())
    }

    /// The metadata database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("pictograph.db").display()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_or_empty_signing_secret_is_refused() {
        let mut config = Config::new("data");
        config.check().unwrap();
        for short in ["", "secret", &"x".repeat(MIN_SIGNING_SECRET - 1)] {
            config.signing_secret = Some(short.to_string());
            let e = config.check().unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("the signing secret has {} bytes", short.len())),
                "{e}"
            );
        }
        config.signing_secret = Some("x".repeat(MIN_SIGNING_SECRET));
        config.check().unwrap();
    }

    #[test]
    fn a_pixel_limit_out_of_range_is_refused() {
        let mut config = Config::new("data");
        for bad in [0, MAX_IMAGE_PIXELS + 1] {
            config.max_image_pixels = bad;
            assert!(config.check().is_err());
        }
        config.max_image_pixels = 1;
        config.check().unwrap();
    }

    #[test]
    fn a_signed_url_lifetime_out_of_range_is_refused() {
        let mut config = Config::new("data");
        for bad in [0, MAX_URL_TTL_SECS + 1, u64::MAX] {
            config.url_ttl_secs = bad;
            let e = config.check().unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("url_ttl_secs is {bad}, outside 1 to")),
                "{e}"
            );
        }
        for good in [1, MAX_URL_TTL_SECS] {
            config.url_ttl_secs = good;
            config.check().unwrap();
        }
    }
}
