//! An S3-compatible server (s3s-fs) in-process on 127.0.0.1 for the tests.

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use std::path::Path;

/// The bucket every test server has.
pub const BUCKET: &str = "pictures";
/// The access key every test server accepts.
pub const ACCESS_KEY: &str = "AKIATEST";
/// The secret key every test server accepts.
pub const SECRET_KEY: &str = "SECRETTEST";

/// Starts s3s-fs over `root` and returns its endpoint.
pub async fn start_s3(root: &Path) -> String {
    std::fs::create_dir_all(root.join(BUCKET)).unwrap();
    let fs = s3s_fs::FileSystem::new(root).unwrap();
    let mut b = s3s::service::S3ServiceBuilder::new(fs);
    b.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    let service = b.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            // Without it, a response's body waits for the client's delayed acknowledgement
            // of its headers (up to 40 ms a read).
            let _ = socket.set_nodelay(true);
            let conn = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(conn);
        }
    });
    format!("http://{addr}")
}

static ENV_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Sets the credentials every test S3 server accepts (the same for all, so tests running in
/// parallel may set them at once).
pub fn credentials_env() {
    let _guard = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_REGION", "us-east-1"),
    ] {
        std::env::set_var(k, v);
    }
}
