//! An S3-compatible server (s3s-fs, served as `tools/s3-server` serves it) in-process on
//! 127.0.0.1 for the tests.

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
    let service = s3_test_server::service(root, ACCESS_KEY, SECRET_KEY).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(s3_test_server::serve(listener, service));
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
