//! `pictograph gc`: one maintenance sweep over a server's stores, from the command line.

use crate::DataArgs;
use pictograph_server::services::maintenance::{self, SweepOptions, SweepReport, TEMP_AGE};
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `gc`.
#[derive(clap::Args)]
pub struct GcArgs {
    /// TOML file with settings, the one `serve` reads; environment variables and flags
    /// override it.
    #[arg(long, env = "PICTOGRAPH_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Seconds unreferenced bytes must have been untouched before they are freed (the
    /// servers' blob grace); staged files older than this or an hour, whichever is less, are
    /// removed too, and deleted datasets whose deletion made no progress for this long or two
    /// minutes, whichever is less, are finished. 0 frees everything unreferenced: only safe
    /// when no upload is in flight.
    #[arg(
        long = "grace-secs",
        env = "PICTOGRAPH_BLOB_GRACE_SECS",
        default_value_t = 900
    )]
    pub blob_grace_secs: u64,
    /// How long signed upload URLs stay valid, as the servers have it: presigned upload
    /// objects older than this plus the grace are abandoned.
    #[arg(long, env = "PICTOGRAPH_URL_TTL_SECS", default_value_t = 3600)]
    pub url_ttl_secs: u64,
    /// List what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs one sweep, scanning the whole blob store for bytes without a record too.
pub async fn run(args: GcArgs) -> anyhow::Result<()> {
    let mut config = args.data.config();
    if config.database_url.is_none() && !config.data_dir.join("pictograph.db").is_file() {
        anyhow::bail!(
            "no server data in {}: pass the --data-dir (or --database-url) the server uses",
            config.data_dir.display()
        );
    }
    config.blob_grace_secs = args.blob_grace_secs;
    config.url_ttl_secs = args.url_ttl_secs;
    config.read_cache_ttl_ms = 0;
    let state = pictograph_server::open_state(config).await?;
    let grace = Duration::from_secs(args.blob_grace_secs);
    let opts = SweepOptions {
        blob_grace: grace,
        temp_age: grace.min(TEMP_AGE),
        scan_store: true,
        dry_run: args.dry_run,
        deletion_stalled_after: grace.min(maintenance::DELETION_STALLED_AFTER),
    };
    let report = maintenance::sweep_with(&state, &opts).await?;
    state.store.durable().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

fn print_report(report: &SweepReport) {
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let items: [&[String]; 8] = [
        &report.expired_uploads,
        &[],
        &report.temp_files,
        &report.staged_objects,
        &report.orphan_blobs,
        &report.unrecorded_blobs,
        &report.expired_exports,
        &report.finished_deletions,
    ];
    for ((kind, n), listed) in report.counts().into_iter().zip(items) {
        println!("{kind}: {verb} {n}");
        if report.dry_run {
            for item in listed {
                println!("  {item}");
            }
        }
    }
}
