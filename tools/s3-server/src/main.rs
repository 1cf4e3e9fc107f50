//! `s3-test-server`: see the library's documentation.

use anyhow::Context;
use clap::Parser;
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
    let service = s3_test_server::service(&args.root, &args.access_key, &args.secret_key)?;
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("listening on {}:{}", args.host, args.port))?;
    println!("listening on http://{}", listener.local_addr()?);
    s3_test_server::serve(listener, service).await;
    Ok(())
}
