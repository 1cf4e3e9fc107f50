//! `pictograph compact`: rewrites an embedded installation's database without free pages and
//! with the page size new databases get, while its servers are stopped.

use crate::client::human_bytes;
use crate::DataArgs;
use pictograph_server::store::compact::{self, Compacted};
use pictograph_server::store::snapshot::sqlite_path;
use std::time::Instant;

/// Arguments of `compact`.
#[derive(clap::Args)]
pub struct CompactArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Compacts the database and prints what it did.
pub async fn run(args: CompactArgs) -> anyhow::Result<()> {
    let url = args.data.config().database_url();
    let Some(path) = sqlite_path(&url) else {
        anyhow::bail!(
            "compact rewrites the embedded SQLite database, and this installation's is not \
             one: on PostgreSQL, `VACUUM FULL images` rewrites the images table"
        );
    };
    if !path.is_file() {
        anyhow::bail!(
            "no server data in {}: pass the --data-dir (or --database-url) the server uses",
            args.data.data_dir.display()
        );
    }
    let started = Instant::now();
    let shown = path.display().to_string();
    let done: Compacted = tokio::task::spawn_blocking(move || compact::compact(&path)).await??;
    let secs = started.elapsed().as_secs_f64();
    if args.json {
        let mut report = serde_json::to_value(done)?;
        report["database"] = shown.into();
        report["seconds"] = secs.into();
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "Compacted {shown} in {secs:.1} s: {} → {}, pages of {} → {} bytes",
            human_bytes(done.bytes_before),
            human_bytes(done.bytes_after),
            done.page_size_before,
            done.page_size
        );
    }
    Ok(())
}
