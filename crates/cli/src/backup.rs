//! `pictograph backup`: a consistent copy of an embedded installation, taken while servers run.

use crate::client::human_bytes;
use crate::client::progress::{timing, Progress};
use crate::DataArgs;
use pictograph_server::services::backup::{self, BackupEvent, BackupOptions, BackupReport};
use std::path::PathBuf;

/// Arguments of `backup`.
#[derive(clap::Args)]
pub struct BackupArgs {
    /// Directory to back up into: new, empty, or an earlier backup (then only what changed
    /// is copied). It is a data directory: `pictograph serve --data-dir DIR` starts from it.
    #[arg(value_hint = clap::ValueHint::DirPath)]
    pub out: PathBuf,
    /// TOML file with settings, the one `serve` reads; environment variables and flags
    /// override it.
    #[arg(long, env = "PICTOGRAPH_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Also re-hash the bytes an earlier backup left there (replacing any that differ) and
    /// check the database copy's structure.
    #[arg(long)]
    pub verify: bool,
    /// Files copied at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub workers: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the backup and prints what it did.
pub async fn run(args: BackupArgs) -> anyhow::Result<()> {
    let config = args.data.config();
    let options = BackupOptions {
        verify: args.verify,
        workers: args.workers as usize,
    };
    let bar = Progress::new("backup", 0, None, args.json);
    let on_event = |event: BackupEvent| match event {
        BackupEvent::Planned { blobs } => bar.set_total_files(blobs),
        BackupEvent::Copied { bytes } => bar.file_done(bytes),
        BackupEvent::Kept => bar.file_not_sent(0, true),
    };
    let report = backup::backup(&config, &args.out, &options, &on_event).await;
    bar.finish();
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

fn print_report(r: &BackupReport) {
    println!(
        "Backed up {} organisation(s), {} dataset(s), {} image(s) as of {} into {}",
        r.organizations, r.datasets, r.images, r.taken_at, r.target
    );
    let files = (r.copied + r.repaired) as usize;
    let took = std::time::Duration::from_secs_f64(r.seconds);
    let took = match files {
        0 => format!("{:.2} s", r.seconds),
        _ => timing(files, Some(r.copied_bytes), took),
    };
    println!(
        "  stored files: {} referenced: {} copied ({}), {} already there; {took}",
        r.blobs,
        files,
        human_bytes(r.copied_bytes),
        r.present
    );
    if r.verified {
        println!("  verified: every file already there re-hashed, database structure checked");
    }
    for (count, what) in [
        (r.repaired, "damaged file(s) in the backup copied again"),
        (
            r.pruned,
            "file(s) no longer referenced removed from the backup",
        ),
        (
            r.unavailable,
            "unregistered upload(s) gone from the source, not needed",
        ),
    ] {
        if count > 0 {
            println!("  {count} {what}");
        }
    }
    if !r.signing_key {
        println!(
            "  no generated URL-signing key in the data directory: keep the --signing-secret \
             the servers use with this backup"
        );
    }
}
