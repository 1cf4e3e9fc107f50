//! Shared helpers: the real server in-process, keys, clients, and small images on disk.
#![allow(dead_code)]

use pictograph_server::auth::Role;
use std::path::Path;
use std::time::Duration;

/// A running server with an owner key and a client for it.
pub struct Server {
    pub app: pictograph_server::App,
    pub dir: tempfile::TempDir,
    pub key: String,
    pub client: pictograph::Client,
}

impl Server {
    /// The server's base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.app.addr)
    }

    /// A new key of `role` in organisation `org`.
    pub async fn key(&self, org: &str, role: Role) -> String {
        pictograph_server::auth::create_key(&self.app.state.store, org, role, "unlimited")
            .await
            .expect("create key")
    }

    /// A client for `key` with fast retries.
    pub fn client(&self, key: &str) -> pictograph::Client {
        pictograph::Client::builder(key)
            .base_url(self.base_url())
            .retry_backoff(Duration::from_millis(10), Duration::from_millis(50))
            .build()
            .expect("client")
    }
}

/// Starts the real server on a free port with an owner key of `org-a`.
pub async fn start() -> Server {
    start_with(|_| {}).await
}

/// A server whose upload URLs point at a port where nothing listens (as behind a proxy that
/// is down): every PUT to them fails to connect. Answers the server and that port.
pub async fn start_with_unreachable_uploads() -> (Server, u16) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let server = start_with(|c| c.public_url = Some(format!("http://127.0.0.1:{port}"))).await;
    (server, port)
}

/// Like [`start`], after `tweak` adjusted the configuration.
pub async fn start_with(tweak: impl FnOnce(&mut pictograph_server::Config)) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = pictograph_server::Config::new(dir.path().join("data"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    tweak(&mut config);
    let app = pictograph_server::App::start(config)
        .await
        .expect("start server");
    let key =
        pictograph_server::auth::create_key(&app.state.store, "org-a", Role::Owner, "unlimited")
            .await
            .expect("create key");
    let client = pictograph::Client::builder(key.clone())
        .base_url(format!("http://{}", app.addr))
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .build()
        .expect("client");
    Server {
        app,
        dir,
        key,
        client,
    }
}

/// Writes a small image whose pixels depend on `seed` (so files differ); the format follows
/// the extension.
pub fn write_image(path: &Path, w: u32, h: u32, seed: u8) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x as u8).wrapping_mul(31).wrapping_add(seed),
            (y as u8).wrapping_mul(17),
            seed,
        ])
    });
    img.save(path).expect("write image");
}

/// Every image of `dataset`, from `datasets().get_with` with its images.
pub async fn images_of(c: &pictograph::Client, dataset: &str) -> Vec<pictograph::Image> {
    c.datasets()
        .get_with(
            dataset,
            pictograph::GetOptions {
                include_images: true,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .images
        .unwrap_or_default()
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Every file under `root`, relative, sorted, with `/` separators.
pub fn files_under(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap();
                out.push(
                    rel.components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/"),
                );
            }
        }
    }
    let mut out = Vec::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out.sort();
    out
}
