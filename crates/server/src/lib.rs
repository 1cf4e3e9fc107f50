//! The Pictograph developer API server.
//!
//! `api` parses requests and renders answers, `services` decide, `store` keeps metadata,
//! `blobs` keeps bytes. [`App::start`] builds everything from a [`Config`] and serves it.

pub mod api;
pub mod auth;
pub mod blobs;
pub mod clock;
pub mod config;
pub mod error;
pub mod idempotency;
pub mod memory;
pub mod metrics;
pub mod ratelimit;
pub mod render;
mod repeating;
pub mod services;
pub mod signing;
pub mod store;

pub use config::{Config, RateLimits, MAX_IMAGE_PIXELS, MIN_SIGNING_SECRET};

use anyhow::Context;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What every handler can reach: one shared [`Shared`], so the clone axum makes for each
/// extractor and middleware of a request is one reference count.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The server's parts.
pub struct Shared {
    /// Configuration in effect.
    pub config: Arc<Config>,
    /// Metadata.
    pub store: store::Store,
    /// Bytes.
    pub blobs: blobs::Blobs,
    /// Signs URLs.
    pub signer: signing::Signer,
    /// Rate limits.
    pub limiter: Arc<ratelimit::Limiter>,
    /// Request counters, when a metrics listener is configured.
    pub metrics: Option<Arc<metrics::Metrics>>,
    /// Bytes of received uploads held at once.
    pub upload_memory: memory::MemoryBudget,
    /// Bytes of pixels decoded at once to check uploads.
    pub decode_memory: memory::MemoryBudget,
    /// Bytes of JSON request bodies parsed at once.
    pub json_memory: memory::MemoryBudget,
    /// This server's clock minus the database's, as last measured (PostgreSQL only).
    pub clock_skew: clock::LastSkew,
    /// The `Idempotency-Key` claims of the requests this server is running.
    pub running_claims: idempotency::RunningClaims,
}

/// Opens the store and blobs of a configuration.
pub async fn open_state(config: Config) -> anyhow::Result<AppState> {
    config.check()?;
    create_private_dir(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let url = config.database_url();
    // Requests wait for their commits to be on disk before they are answered
    // (`api::durable_writes`), so commits of concurrent requests share a sync.
    let store = store::Store::connect_with(&url, store::Commits::Grouped)
        .await
        .context("opening the metadata store")?
        .with_read_cache(&url, Duration::from_millis(config.read_cache_ttl_ms));
    let clock_skew = clock::LastSkew::new();
    if let Some(skew) = clock::check_at_start(&store).await? {
        clock_skew.set(skew);
    }
    let blobs = blobs::Blobs::open(&config.data_dir, config.blobs_url.as_deref())
        .await
        .context("opening the blob store")?;
    let secret = match (&config.signing_secret, store.dialect()) {
        (Some(s), _) => s.clone().into_bytes(),
        (None, store::Dialect::Sqlite) => load_or_create_secret(&config.data_dir).await?,
        // Servers sharing a database share one key, so a URL one signs works on every other.
        (None, store::Dialect::Postgres) => store
            .shared_setting("url_signing_key", &hex::encode(rand::random::<[u8; 32]>()))
            .await
            .context("reading the URL-signing key kept in the database")?
            .into_bytes(),
    };
    let metrics = config
        .metrics_listen
        .map(|_| Arc::new(metrics::Metrics::new()));
    Ok(AppState(Arc::new(Shared {
        metrics,
        upload_memory: memory::MemoryBudget::new(config.upload_memory_bytes),
        decode_memory: memory::MemoryBudget::new(config.decode_memory_bytes),
        json_memory: memory::MemoryBudget::new(config.json_memory_bytes),
        clock_skew,
        running_claims: idempotency::RunningClaims::default(),
        config: Arc::new(config),
        store: store.clone(),
        blobs,
        signer: signing::Signer::new(&secret),
        limiter: Arc::new(match store.dialect() {
            store::Dialect::Sqlite => ratelimit::Limiter::memory(),
            store::Dialect::Postgres => ratelimit::Limiter::Database,
        }),
    })))
}

/// Makes `dir` when it is missing (its missing parents as usual), readable and writable by
/// its owner only: a data directory or a backup holds every organisation's images and
/// metadata. A directory already there is left as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        other => other,
    }
}

/// The URL-signing key kept in the data directory, made on the first start. Every server
/// started on the directory must sign with the same key, also those that start together on
/// a new one: a new key is written to a file of this process's own and synced, then linked
/// into place, which fails rather than replace a key already there; the loser reads the
/// winner's key. The file never appears half-written.
async fn load_or_create_secret(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || secret_in(&dir)).await?
}

fn secret_in(dir: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::ErrorKind;
    let path = dir.join("signing.key");
    let read = |path: &Path| -> anyhow::Result<Vec<u8>> {
        let key = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        if key.len() < 32 {
            anyhow::bail!(
                "{} holds {} bytes, too few for a signing key: restore it from a backup, or \
                 delete it to make a new key (URLs signed with the old one stop working)",
                path.display(),
                key.len()
            );
        }
        Ok(key)
    };
    if path.exists() {
        return read(&path);
    }
    let secret = hex::encode(rand::random::<[u8; 32]>()).into_bytes();
    let tmp = dir.join(format!(
        "signing.key.{}-{:016x}.tmp",
        std::process::id(),
        rand::random::<u64>()
    ));
    let written = blobs::write_synced(&tmp, &secret, 0o600);
    let placed = written.and_then(|()| match std::fs::hard_link(&tmp, &path) {
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) if e.kind() == ErrorKind::Unsupported || e.kind() == ErrorKind::PermissionDenied => {
            // A file system without hard links: the rename may replace a key another server
            // made at the same moment.
            std::fs::rename(&tmp, &path).map(|()| true)
        }
        other => other.map(|()| true),
    });
    let _ = std::fs::remove_file(&tmp);
    if !placed.with_context(|| format!("writing {}", path.display()))? {
        return read(&path);
    }
    blobs::sync_dir(dir).with_context(|| format!("syncing {}", dir.display()))?;
    Ok(secret)
}

/// A running server.
pub struct App {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The address its metrics listener listens on, when it has one.
    pub metrics_addr: Option<SocketAddr>,
    /// Its state (store, blobs, configuration).
    pub state: AppState,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
    metrics_handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

/// `listener`, with Nagle's algorithm off on every connection it accepts. An answer is written
/// in parts (its head, then its body, a streamed body chunk by chunk); with the algorithm on,
/// a small last part waits until the client acknowledges the one before, which a client that
/// delays its acknowledgements does 40 ms later. Listings of a few images took 44 ms that way.
fn without_delay(
    listener: tokio::net::TcpListener,
) -> axum::serve::TapIo<tokio::net::TcpListener, fn(&mut tokio::net::TcpStream)> {
    use axum::serve::ListenerExt;
    listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY could not be set on a connection: {e}");
        }
    })
}

impl App {
    /// Binds the configured address (port 0 picks one) and serves in the background.
    pub async fn start(config: Config) -> anyhow::Result<App> {
        let listen = config.listen;
        let state = open_state(config).await?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let addr = listener.local_addr()?;
        let listener = without_delay(listener);
        tokio::spawn(services::maintenance::run(state.clone()));
        let router = api::router(state.clone());
        let (shutdown, mut rx) = tokio::sync::watch::channel(false);
        let (metrics_addr, metrics_handle) = match state.config.metrics_listen {
            Some(at) => {
                let listener = tokio::net::TcpListener::bind(at)
                    .await
                    .with_context(|| format!("binding the metrics listener {at}"))?;
                let metrics_addr = listener.local_addr()?;
                let listener = without_delay(listener);
                let router = axum::Router::new()
                    .route("/metrics", axum::routing::get(metrics::scrape))
                    .with_state(state.clone());
                let mut stop = shutdown.subscribe();
                let handle = tokio::spawn(async move {
                    axum::serve(listener, router)
                        .with_graceful_shutdown(async move {
                            let _ = stop.wait_for(|v| *v).await;
                        })
                        .await
                });
                (Some(metrics_addr), Some(handle))
            }
            None => (None, None),
        };
        let handle = tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = rx.wait_for(|v| *v).await;
            })
            .await
        });
        Ok(App {
            addr,
            metrics_addr,
            state,
            handle,
            metrics_handle,
            shutdown,
        })
    }

    /// Stops accepting, lets in-flight requests finish, and waits.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        if let Some(metrics) = self.metrics_handle {
            metrics.abort();
        }
        match tokio::time::timeout(Duration::from_secs(30), self.handle).await {
            Ok(joined) => joined??,
            Err(_) => anyhow::bail!("shutdown timed out"),
        }
        // Background work (the sweep) may have committed since the last answer.
        Ok(self.state.store.durable().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_send_without_delay() {
        use axum::serve::Listener;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut listener = without_delay(listener);
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert!(
            !client.nodelay().unwrap(),
            "a new socket starts with Nagle on"
        );
        let (accepted, _) = listener.accept().await;
        assert!(accepted.nodelay().unwrap());
    }

    #[cfg(unix)]
    #[test]
    fn a_new_data_directory_is_its_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("parent").join("data");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        // A directory already there keeps its permissions.
        let shared = tmp.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&shared).unwrap();
        assert_eq!(mode(&shared), 0o755);
    }
}
