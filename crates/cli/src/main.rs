//! `pictograph`: run the server, and administer its keys.

mod backup;
mod client;
mod compact;
mod file_config;
mod gc;
mod keys;
mod migrate;

use anyhow::Context;
use clap::{Parser, Subcommand};
use pictograph_server::{App, Config, RateLimits, MAX_IMAGE_PIXELS};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "pictograph",
    version,
    about = "Self-hosted computer-vision dataset and annotation server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the server keeps its data; shared by every command that opens it.
#[derive(clap::Args, Clone)]
struct DataArgs {
    /// Directory holding the database, image bytes and the URL-signing key.
    #[arg(long, env = "PICTOGRAPH_DATA_DIR", default_value = "./pictograph-data", value_hint = clap::ValueHint::DirPath)]
    data_dir: PathBuf,
    /// Metadata database URL: `sqlite://path` or `postgres://…` (default: SQLite inside the
    /// data directory).
    #[arg(long, alias = "database", env = "PICTOGRAPH_DATABASE_URL")]
    database_url: Option<String>,
    /// Image bytes: `file://path`, `s3://bucket/prefix`, `gs://bucket/prefix` or
    /// `az://container/prefix?account=NAME` (default: the data directory). Credentials come
    /// from the usual `AWS_*`, `GOOGLE_*` and `AZURE_*` variables; `?uploads=server` on S3 or
    /// GCS sends uploads through the server instead of presigned URLs (see README, "Running
    /// at scale").
    #[arg(long = "blobs", env = "PICTOGRAPH_BLOBS_URL")]
    blobs_url: Option<String>,
}

impl DataArgs {
    fn config(&self) -> Config {
        let mut c = Config::new(&self.data_dir);
        c.database_url = self.database_url.clone();
        c.blobs_url = self.blobs_url.clone();
        c
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server.
    Serve(ServeArgs),
    /// Create, list and revoke API keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Move an installation to other stores (e.g. SQLite to PostgreSQL, disk to S3), verified
    /// and resumable.
    Migrate(migrate::MigrateArgs),
    /// Verify an API key and save it, with the server URL, for the client commands.
    Login(client::login::LoginArgs),
    /// Forget the key saved by `login`.
    Logout(client::login::LogoutArgs),
    /// Upload a folder of images into a dataset (idempotent: re-runs skip what is there).
    Upload(client::upload::UploadArgs),
    /// Download a dataset's images and annotations into a directory.
    Download(client::download::DownloadArgs),
    /// Export a dataset as COCO, YOLO, Pascal VOC or pictograph JSON (warns about what the
    /// format cannot hold).
    Export(client::export::ExportArgs),
    /// List a dataset's server export jobs, or cancel or delete one.
    Exports(client::exports::ExportsArgs),
    /// Import a COCO, YOLO, VOC or pictograph folder into a dataset, images and annotations
    /// (idempotent).
    Import(client::import::ImportArgs),
    /// List, show, create, rename and delete datasets.
    Datasets(client::datasets::DatasetsArgs),
    /// List, show, download and delete images.
    Images(client::images::ImagesArgs),
    /// Get, set and delete an image's annotations.
    Annotations(client::annotations::AnnotationsArgs),
    /// Move, copy, delete or update many images at once.
    Batch(client::batch::BatchArgs),
    /// Back up an embedded installation (database, image bytes, signing key) while servers
    /// run, into a directory that is itself a data directory; re-runs copy only what changed.
    Backup(backup::BackupArgs),
    /// Run the maintenance sweep once: expired uploads, abandoned staged files, old
    /// idempotency records, and bytes no image refers to. Safe while servers run.
    Gc(gc::GcArgs),
    /// Rewrite an embedded installation's database without free pages and with 8 KB pages
    /// (stop its servers first).
    Compact(compact::CompactArgs),
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell, e.g.
    /// `pictograph completions bash > ~/.local/share/bash-completion/completions/pictograph`.
    Completions(CompletionsArgs),
}

#[derive(clap::Args)]
struct CompletionsArgs {
    /// The shell the script is for.
    shell: clap_complete::Shell,
}

/// Writes the completion script of every command and flag for `shell` to standard output
/// (a reader that stops early, such as `head`, is not an error).
fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    use clap::CommandFactory;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "pictograph", &mut script);
    match std::io::stdout().write_all(&script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing the completion script")
        }
        _ => Ok(()),
    }
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML file with settings; environment variables and flags override it.
    #[arg(long, env = "PICTOGRAPH_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "PICTOGRAPH_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Absolute URL clients reach the server at (for signed upload and download links).
    #[arg(long, env = "PICTOGRAPH_PUBLIC_URL")]
    public_url: Option<String>,
    /// Secret for signing URLs; every server behind one load balancer needs the same one.
    #[arg(long, env = "PICTOGRAPH_SIGNING_SECRET", hide_env_values = true)]
    signing_secret: Option<String>,
    /// Requests per hour for free-tier keys.
    #[arg(long, env = "PICTOGRAPH_RATE_LIMIT_FREE", default_value_t = RateLimits::default().free)]
    rate_limit_free: u32,
    /// Requests per hour for core-tier keys.
    #[arg(long, env = "PICTOGRAPH_RATE_LIMIT_CORE", default_value_t = RateLimits::default().core)]
    rate_limit_core: u32,
    /// Requests per hour for pro-tier keys.
    #[arg(long, env = "PICTOGRAPH_RATE_LIMIT_PRO", default_value_t = RateLimits::default().pro)]
    rate_limit_pro: u32,
    /// Requests per hour for enterprise-tier keys.
    #[arg(long, env = "PICTOGRAPH_RATE_LIMIT_ENTERPRISE", default_value_t = RateLimits::default().enterprise)]
    rate_limit_enterprise: u32,
    /// Largest accepted upload in bytes.
    #[arg(long, env = "PICTOGRAPH_MAX_UPLOAD_BYTES", default_value_t = 50 * 1024 * 1024)]
    max_upload_bytes: u64,
    /// Most bytes of received uploads held in memory at once while they are checked and
    /// stored; further uploads wait (0: no limit).
    #[arg(long, env = "PICTOGRAPH_UPLOAD_MEMORY_BYTES", default_value_t = 256 * 1024 * 1024)]
    upload_memory_bytes: u64,
    /// Most bytes of pixels decoded at once to check GIF, BMP, TIFF, WebP and HEIC uploads
    /// (JPEG and PNG need none); further checks wait (0: no limit).
    #[arg(long, env = "PICTOGRAPH_DECODE_MEMORY_BYTES", default_value_t = 256 * 1024 * 1024)]
    decode_memory_bytes: u64,
    /// Most bytes that parsing JSON request bodies may take at once (a body's size plus 64
    /// bytes a JSON value); further requests wait, and a body that alone needs more is
    /// refused with 413 (0: no limit).
    #[arg(long, env = "PICTOGRAPH_JSON_MEMORY_BYTES", default_value_t = 512 * 1024 * 1024)]
    json_memory_bytes: u64,
    /// Seconds an upload body may take before it must arrive at 1 KiB/s or more on average;
    /// a slower one is refused with 408 and gives back the memory it held.
    #[arg(long, env = "PICTOGRAPH_UPLOAD_STALL_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    upload_stall_secs: u64,
    /// Most pixels (width times height) an uploaded image may have; larger ones are refused
    /// before anything is decoded. Lower it to bound the memory one check takes.
    #[arg(long, env = "PICTOGRAPH_MAX_IMAGE_PIXELS", default_value_t = MAX_IMAGE_PIXELS,
          value_parser = clap::value_parser!(u64).range(1..=MAX_IMAGE_PIXELS))]
    max_image_pixels: u64,
    /// Seconds unreferenced image bytes are kept before they are freed.
    #[arg(long, env = "PICTOGRAPH_BLOB_GRACE_SECS", default_value_t = 900)]
    blob_grace_secs: u64,
    /// Seconds signed upload and download URLs stay valid; an upload URL not registered by
    /// then expires, and the sweep drops it with its bytes.
    #[arg(long, env = "PICTOGRAPH_URL_TTL_SECS", default_value_t = 3600)]
    url_ttl_secs: u64,
    /// On PostgreSQL: milliseconds a server keeps a key or image it read, at most (any change
    /// drops them at once, on every server); 0 turns the cache off.
    #[arg(long, env = "PICTOGRAPH_READ_CACHE_TTL_MS", default_value_t = 5_000)]
    read_cache_ttl_ms: u64,
    /// Address of a second listener serving Prometheus metrics at `/metrics` (requests by
    /// route, method and status, latency histograms, pools, memory); off when unset. Keep it
    /// private: it needs no key.
    #[arg(long, env = "PICTOGRAPH_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
}

/// Rust allocations go to jemalloc: its per-thread caches take no lock on the request path,
/// where glibc's two shared arenas were contended by the async workers (a metadata read
/// under load spent an eighth of its time waiting on the arena lock).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read at start: two arenas, and freed pages handed back to the
/// system within half a second by a background thread.
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] =
    b"background_thread:true,narenas:2,dirty_decay_ms:500,muzzy_decay_ms:0\0";

fn main() {
    limit_malloc_arenas();
    pictograph_server::store::configure_sqlite_process();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the async runtime starts")
        .block_on(run());
}

/// Caps glibc's per-thread malloc arenas at two. glibc still serves SQLite's own allocations;
/// each arena keeps the peak of whatever ran on its threads, so with one per worker and
/// database thread the server grew to several times the memory any one request needs.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; it runs before any thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Hands memory SQLite freed after a large statement (a 100,000-id batch) back to the system
/// every few seconds; glibc otherwise keeps the top of each arena's peak.
fn trim_malloc_periodically() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    std::thread::spawn(|| loop {
        std::thread::sleep(std::time::Duration::from_secs(5));
        // SAFETY: malloc_trim only returns free pages of the allocator's heaps to the system.
        unsafe {
            libc::malloc_trim(0);
        }
    });
}

async fn run() {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command()
        .try_get_matches()
        .unwrap_or_else(|e| exit_on_usage_error(e));
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| exit_on_usage_error(e));
    let result = match cli.command {
        Command::Serve(mut args) => {
            let sub = matches.subcommand_matches("serve").expect("serve matched");
            match file_config::apply(&mut args, sub) {
                Ok(()) => {
                    trim_malloc_periodically();
                    serve(args).await
                }
                Err(e) => Err(e),
            }
        }
        Command::Keys(cmd) => keys::run(cmd).await,
        Command::Migrate(args) => migrate::run(args).await,
        Command::Login(args) => client::login::run(args).await,
        Command::Logout(args) => client::login::run_logout(args).await,
        Command::Upload(args) => client::upload::run(args).await,
        Command::Download(args) => client::download::run(args).await,
        Command::Export(args) => client::export::run(args).await,
        Command::Exports(args) => client::exports::run(args).await,
        Command::Import(args) => client::import::run(args).await,
        Command::Datasets(args) => client::datasets::run(args).await,
        Command::Images(args) => client::images::run(args).await,
        Command::Annotations(args) => client::annotations::run(args).await,
        Command::Batch(args) => client::batch::run(args).await,
        Command::Gc(mut args) => {
            let sub = matches.subcommand_matches("gc").expect("gc matched");
            match file_config::apply_gc(&mut args, sub) {
                Ok(()) => gc::run(args).await,
                Err(e) => Err(e),
            }
        }
        Command::Backup(mut args) => {
            let sub = matches
                .subcommand_matches("backup")
                .expect("backup matched");
            match file_config::apply_backup(&mut args, sub) {
                Ok(()) => backup::run(args).await,
                Err(e) => Err(e),
            }
        }
        Command::Compact(args) => compact::run(args).await,
        Command::Completions(args) => completions(args.shell),
    };
    if let Err(e) = result {
        eprintln!("error: {}", one_line(&e));
        std::process::exit(1);
    }
}

/// Ends the process on a command-line error as clap does (usage on standard error, exit
/// status 2; help and version print as asked). With `--json` on a command that takes it,
/// standard output gets the `{"error": …}` document the command prints for other errors.
fn exit_on_usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    let shown_as_asked = matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !shown_as_asked && json_asked(&std::env::args_os().collect::<Vec<_>>()) {
        client::print_json(&serde_json::json!({
            "error": {"message": usage_message(&e), "status": null}
        }));
    }
    e.exit()
}

/// The first paragraph of clap's message on one line, without the `error: ` label or
/// terminal colours: `the following required arguments were not provided: --dataset <NAME>`.
fn usage_message(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let paragraph: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let line = paragraph.join(" ");
    line.strip_prefix("error: ").unwrap_or(&line).to_string()
}

/// Whether the command line gives `--json` to a (sub-)command that has that flag.
fn json_asked(args: &[std::ffi::OsString]) -> bool {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let (mut has_flag, mut given) = (false, false);
    for arg in args.iter().skip(1).filter_map(|a| a.to_str()) {
        if arg == "--" {
            break;
        }
        // `--json=true` is a usage error too, and one asked for as JSON.
        if arg == "--json" || arg.starts_with("--json=") {
            given = true;
        } else if let Some(sub) = cmd.find_subcommand(arg).cloned() {
            has_flag |= sub.get_arguments().any(|a| a.get_id() == "json");
            cmd = sub;
        }
    }
    given && has_flag
}

/// An error and its causes on one line, `: `-separated, without the causes the text before
/// them already ends with (many errors print their source as the end of their own message).
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    let mut last = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if last.is_empty() || !last.ends_with(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        last = text;
    }
    line
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PICTOGRAPH_LOG")
                .unwrap_or_else(|_| "info,tower_http=info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log kept in a file or a journal stays plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut config = args.data.config();
    config.listen = args.listen;
    config.public_url = args.public_url;
    config.signing_secret = args.signing_secret;
    config.max_upload_bytes = args.max_upload_bytes;
    config.upload_memory_bytes = args.upload_memory_bytes;
    config.decode_memory_bytes = args.decode_memory_bytes;
    config.json_memory_bytes = args.json_memory_bytes;
    config.upload_stall_secs = args.upload_stall_secs;
    config.max_image_pixels = args.max_image_pixels;
    config.blob_grace_secs = args.blob_grace_secs;
    config.url_ttl_secs = args.url_ttl_secs;
    config.read_cache_ttl_ms = args.read_cache_ttl_ms;
    config.metrics_listen = args.metrics_listen;
    config.rate_limits = RateLimits {
        free: args.rate_limit_free,
        core: args.rate_limit_core,
        pro: args.rate_limit_pro,
        enterprise: args.rate_limit_enterprise,
    };
    config.check()?;
    if let Some(key) = keys::first_start(&config).await? {
        println!("Created organisation 'default' and an owner key (shown once, keep it safe):");
        println!("  {key}");
    }
    let app = App::start(config).await.context("starting the server")?;
    println!("listening on http://{}", app.addr);
    if let Some(at) = app.metrics_addr {
        println!("metrics on http://{at}/metrics");
    }
    std::io::stdout().flush()?;
    shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    app.stop().await
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    /// An error that prints its source at the end of its own message, as sqlx's do.
    #[derive(Debug)]
    struct Migration(std::io::Error);

    impl std::fmt::Display for Migration {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "while executing migration 1: {}", self.0)
        }
    }

    impl std::error::Error for Migration {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn an_error_line_names_each_cause_once() {
        let io = std::io::Error::other("table organizations already exists");
        let e = anyhow::Error::new(Migration(io)).context("opening the metadata store");
        assert_eq!(
            one_line(&e),
            "opening the metadata store: while executing migration 1: \
             table organizations already exists"
        );
        let plain = anyhow::anyhow!("no such dataset").context("downloading 'cats'");
        assert_eq!(one_line(&plain), "downloading 'cats': no such dataset");
    }
}
