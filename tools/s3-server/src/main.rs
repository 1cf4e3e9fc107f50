//! An S3-compatible server over a local directory, for tests and benchmarks on 127.0.0.1.
//!
//! It serves `s3s-fs` (each subdirectory of the root is a bucket) as the `s3s-fs` binary
//! does, with one difference that matters for measurements: every connection has
//! `TCP_NODELAY`. Without it a response's body, written after its headers, waits for the
//! client to acknowledge them, which a client delays by up to 40 ms on a kept-alive
//! connection, so each read took at least that long.

use anyhow::Context;
use clap::Parser;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use std::path::PathBuf;

/// Command line, the same as the `s3s-fs` binary's for the options it shares.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 8014)]
    port: u16,
    /// The one access key accepted.
    #[arg(long)]
    access_key: String,
    /// Its secret key.
    #[arg(long)]
    secret_key: String,
    /// Directory served; each subdirectory is a bucket.
    root: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let fs = s3s_fs::FileSystem::new(&args.root)
        .map_err(|e| anyhow::anyhow!("serving {}: {e:?}", args.root.display()))?;
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(
        args.access_key.as_str(),
        args.secret_key.as_str(),
    ));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("listening on {}:{}", args.host, args.port))?;
    println!("listening on http://{}", listener.local_addr()?);
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
