//! The [`Client`] and its [`ClientBuilder`]: configuration, and the resources hanging off it.

use crate::annotations::Annotations;
use crate::batch::Batch;
use crate::datasets::Datasets;
use crate::error::{Error, Result};
use crate::http::{RetryHook, RetryNotice, RetryPolicy, Transport};
use crate::images::Images;
use crate::projects::Projects;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Base URL used when neither the builder nor `PICTOGRAPH_BASE_URL` sets one: where
/// `pictograph serve` listens by default.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8080";
/// Request timeout used when neither the builder nor `PICTOGRAPH_TIMEOUT` sets one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Retries used when neither the builder nor `PICTOGRAPH_MAX_RETRIES` sets them.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Longest `Retry-After` waited out by default before a 429 is returned as an error.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// A Pictograph API client. Cheap to clone: every clone and every resource shares one
/// connection pool. Its `Debug` output shows the base URL and retries, never the API key.
///
/// ```no_run
/// # async fn run() -> pictograph::Result<()> {
/// let client = pictograph::Client::builder("pk_live_...")
///     .base_url("http://127.0.0.1:8080")
///     .build()?;
/// for ds in client.datasets().list(100).await? {
///     println!("{} {}", ds.name, ds.image_count);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) transport: Arc<Transport>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.transport.base_url)
            .field("max_retries", &self.transport.retry.max_retries)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `api_key`; other settings come from the environment or the defaults.
    pub fn new(api_key: impl Into<String>) -> Result<Client> {
        Client::builder(api_key).build()
    }

    /// A client configured entirely from `PICTOGRAPH_API_KEY`, `PICTOGRAPH_BASE_URL`,
    /// `PICTOGRAPH_TIMEOUT` (seconds) and `PICTOGRAPH_MAX_RETRIES`.
    pub fn from_env() -> Result<Client> {
        ClientBuilder::default().build()
    }

    /// A builder for `api_key`. Settings left unset fall back to the `PICTOGRAPH_*`
    /// environment variables, then to the defaults.
    pub fn builder(api_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            api_key: Some(api_key.into()),
            ..ClientBuilder::default()
        }
    }

    /// The base URL requests go to (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.transport.base_url
    }

    /// Read paths of datasets: list, iter, get, get_by_id, download.
    pub fn datasets(&self) -> Datasets {
        Datasets::new(self.clone())
    }

    /// Write paths of datasets: create, update, delete (and get/list by name).
    pub fn projects(&self) -> Projects {
        Projects::new(self.clone())
    }

    /// Single images: get, upload, download, delete.
    pub fn images(&self) -> Images {
        Images::new(self.clone())
    }

    /// Annotations of an image: get, save, delete, and typed constructors.
    pub fn annotations(&self) -> Annotations {
        Annotations::new(self.clone())
    }

    /// Bulk move, copy, delete and update of images in one dataset.
    pub fn batch(&self) -> Batch {
        Batch::new(self.clone())
    }
}

/// Configures a [`Client`]. Precedence for every setting: the builder, then the
/// `PICTOGRAPH_*` environment variable, then the default.
///
/// Its `Debug` output never shows the API key, only whether one is set.
#[derive(Clone, Default)]
pub struct ClientBuilder {
    api_key: Option<String>,
    base_url: Option<String>,
    timeout: Option<Duration>,
    max_retries: Option<u32>,
    user_agent: Option<String>,
    max_retry_after: Option<Duration>,
    backoff: Option<(Duration, Duration)>,
    on_retry: Option<RetryHook>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("user_agent", &self.user_agent)
            .field("max_retry_after", &self.max_retry_after)
            .field("backoff", &self.backoff)
            .field("on_retry", &self.on_retry)
            .finish()
    }
}

impl ClientBuilder {
    /// Sets the API key (sent as `X-API-Key`; surrounding whitespace is stripped).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Sets the server, e.g. `http://127.0.0.1:8080`; a path prefix is kept.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Sets the timeout of one API request, and the connect and idle-read timeout of
    /// transfers (which have no total limit, so big files are fine).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets how many times a failed request is retried (0 disables retries).
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = Some(n);
        self
    }

    /// Sets the `User-Agent` header.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = Some(ua.into());
        self
    }

    /// Sets the longest `Retry-After` of a 429 that is waited out; a longer one is returned
    /// at once as [`Error::RateLimit`] carrying `retry_after`. Default 120 s.
    pub fn max_retry_after(mut self, bound: Duration) -> Self {
        self.max_retry_after = Some(bound);
        self
    }

    /// Sets the exponential backoff: `base * 2^attempt`, capped at `max`, with ±25 % jitter.
    /// Default 1 s and 30 s.
    pub fn retry_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff = Some((base, max));
        self
    }

    /// Calls `hook` before every retry's wait, with why and for how long: a command line
    /// can say "rate limited, waiting 30 s" instead of falling silent. It runs on the
    /// request's task, so it should return quickly.
    pub fn on_retry(mut self, hook: impl Fn(&RetryNotice) + Send + Sync + 'static) -> Self {
        self.on_retry = Some(RetryHook(Arc::new(hook)));
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client> {
        let env = |k: &str| {
            std::env::var(k)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let api_key = self
            .api_key
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .or_else(|| env("PICTOGRAPH_API_KEY"))
            .ok_or_else(|| {
                Error::Config("no API key: pass one or set PICTOGRAPH_API_KEY".into())
            })?;
        let base_url = self
            .base_url
            .or_else(|| env("PICTOGRAPH_BASE_URL"))
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        let base_url = base_url.trim().trim_end_matches('/').to_string();
        let parsed = reqwest::Url::parse(&base_url)
            .map_err(|e| Error::Config(format!("invalid base URL '{base_url}': {e}")))?;
        match parsed.scheme() {
            "http" => {}
            "https" if cfg!(feature = "rustls") => {}
            "https" => {
                return Err(Error::Config(format!(
                    "'{base_url}' needs HTTPS: build the pictograph crate with the `rustls` feature"
                )))
            }
            other => {
                return Err(Error::Config(format!(
                    "base URL scheme must be http or https, not '{other}'"
                )))
            }
        }
        let timeout = match self.timeout {
            Some(t) => t,
            None => match env("PICTOGRAPH_TIMEOUT") {
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "PICTOGRAPH_TIMEOUT must be a positive number of seconds, not '{v}'"
                        ))
                    })?,
                None => DEFAULT_TIMEOUT,
            },
        };
        if timeout.is_zero() {
            return Err(Error::Config("timeout must be positive".into()));
        }
        let max_retries = match self.max_retries {
            Some(n) => n,
            None => match env("PICTOGRAPH_MAX_RETRIES") {
                Some(v) => v.parse::<u32>().map_err(|_| {
                    Error::Config(format!(
                        "PICTOGRAPH_MAX_RETRIES must be a non-negative integer, not '{v}'"
                    ))
                })?,
                None => DEFAULT_MAX_RETRIES,
            },
        };
        let user_agent = self
            .user_agent
            .unwrap_or_else(|| format!("pictograph-rust/{}", env!("CARGO_PKG_VERSION")));
        let (base, max) = self
            .backoff
            .unwrap_or((Duration::from_secs(1), Duration::from_secs(30)));
        let http = reqwest::Client::builder()
            .user_agent(user_agent)
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(32)
            .build()
            .map_err(|e| Error::Config(format!("building the HTTP client: {e}")))?;
        Ok(Client {
            transport: Arc::new(Transport {
                http,
                base_url,
                api_key,
                timeout,
                retry: RetryPolicy {
                    max_retries,
                    base_delay: base,
                    max_delay: max,
                    max_retry_after: self.max_retry_after.unwrap_or(DEFAULT_MAX_RETRY_AFTER),
                    on_retry: self.on_retry,
                },
            }),
        })
    }
}
