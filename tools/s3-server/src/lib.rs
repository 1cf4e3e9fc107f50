//! An S3-compatible server over a local directory, for tests and benchmarks on 127.0.0.1:
//! the `s3-test-server` binary, and the in-process server of the server crate's tests.
//!
//! It serves `s3s-fs` (each subdirectory of the root is a bucket) as the `s3s-fs` binary
//! does, with one difference that matters for measurements: every connection has
//! `TCP_NODELAY`. Without it a response's body, written after its headers, waits for the
//! client to acknowledge them, which a client delays by up to 40 ms on a kept-alive
//! connection, so each read took at least that long.

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::service::S3Service;
use std::path::Path;

/// The S3 service over `root`, accepting the one key pair given.
pub fn service(root: &Path, access_key: &str, secret_key: &str) -> anyhow::Result<S3Service> {
    let fs = s3s_fs::FileSystem::new(root)
        .map_err(|e| anyhow::anyhow!("serving {}: {e:?}", root.display()))?;
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(access_key, secret_key));
    Ok(builder.build())
}

/// Serves `service` on every connection `listener` accepts, with `TCP_NODELAY`; runs until
/// dropped.
pub async fn serve(listener: tokio::net::TcpListener, service: S3Service) {
    let http = ConnBuilder::new(TokioExecutor::new());
    loop {
        let (socket, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, say: wait a little rather than spin.
                eprintln!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(e) = socket.set_nodelay(true) {
            eprintln!("TCP_NODELAY: {e}");
        }
        let conn = http
            .serve_connection(TokioIo::new(socket), service.clone())
            .into_owned();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                eprintln!("connection: {e}");
            }
        });
    }
}
