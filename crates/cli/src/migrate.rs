//! `pictograph migrate`: moves a whole installation to other stores (SQLite to PostgreSQL,
//! disk to S3), export jobs and their archives included, verifies counts and content hashes,
//! and can be re-run after an interruption.

use anyhow::{bail, Context};
use pictograph_server::blobs::Blobs;
use pictograph_server::store::Store;
use std::path::PathBuf;

/// Arguments of `pictograph migrate`.
#[derive(clap::Args)]
pub struct MigrateArgs {
    /// Source metadata database (`sqlite://path` or `postgres://…`).
    #[arg(long)]
    from: String,
    /// Target metadata database.
    #[arg(long)]
    to: String,
    /// Source image bytes (`file://dir`, `s3://…`, `gs://…` or `az://…`); default: the data
    /// directory.
    #[arg(long)]
    from_blobs: Option<String>,
    /// Target image bytes; default: the same as the source (bytes are not moved).
    #[arg(long)]
    to_blobs: Option<String>,
    /// Directory for staging files while copying, and the default source of bytes.
    #[arg(long, env = "PICTOGRAPH_DATA_DIR", default_value = "./pictograph-data", value_hint = clap::ValueHint::DirPath)]
    data_dir: PathBuf,
}

/// Runs the migration and prints what it did.
pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    if args.from == args.to {
        bail!("--from and --to name the same database");
    }
    let source = Store::connect(&args.from)
        .await
        .context("opening the source database")?;
    let target = Store::connect(&args.to)
        .await
        .context("opening the target database")?;
    println!("copying metadata");
    let reports = source
        .copy_into(&target, |_, _| {})
        .await
        .context("copying rows")?;
    let mut ok = true;
    for r in &reports {
        let verdict = if r.target_rows >= r.source_rows {
            "ok"
        } else {
            "MISSING ROWS"
        };
        ok &= r.target_rows >= r.source_rows;
        println!(
            "  {:<14} source {:>9}  copied now {:>9}  target {:>9}  {verdict}",
            r.table, r.source_rows, r.inserted, r.target_rows
        );
    }
    let (a, b) = (
        source.dataset_counters().await?,
        target.dataset_counters().await?,
    );
    let same = a
        .iter()
        .all(|(id, c)| b.iter().any(|(id2, c2)| id == id2 && c == c2));
    println!(
        "  dataset counters {}",
        if same { "match" } else { "DIFFER" }
    );
    ok &= same;

    if let Some(to_blobs) = &args.to_blobs {
        let staging = args.data_dir.join("migrate-staging");
        let from = Blobs::open(&args.data_dir, args.from_blobs.as_deref())
            .await
            .context("opening the source blob store")?;
        let to = Blobs::open(&staging, Some(to_blobs))
            .await
            .context("opening the target blob store")?;
        println!("copying image bytes");
        let (mut copied, mut present, mut after) = (0u64, 0u64, String::new());
        loop {
            let hashes = target.blob_hashes(&after, 1000).await?;
            let Some(last) = hashes.last() else { break };
            after = last.clone();
            for h in &hashes {
                if to
                    .copy_from(&from, h)
                    .await
                    .with_context(|| format!("copying blob {h}"))?
                {
                    copied += 1;
                } else {
                    present += 1;
                }
            }
        }
        println!(
            "  blobs copied now {copied}, already there {present}, each verified by its SHA-256"
        );
        println!("copying export archives");
        let (mut copied, mut present, mut missing) = (0u64, 0u64, 0u64);
        let mut after = String::new();
        loop {
            let hashes = target.export_archive_hashes(&after, 1000).await?;
            let Some(last) = hashes.last() else { break };
            after = last.clone();
            for h in &hashes {
                // An archive the source's sweep freed as its job expired is gone from both.
                if !to.exists(h).await && !from.exists(h).await {
                    missing += 1;
                } else if to
                    .copy_from(&from, h)
                    .await
                    .with_context(|| format!("copying export archive {h}"))?
                {
                    copied += 1;
                } else {
                    present += 1;
                }
            }
        }
        println!(
            "  export archives copied now {copied}, already there {present}, gone from the source {missing}"
        );
    }
    if !ok {
        bail!("verification failed: the target does not hold everything the source does");
    }
    println!("migration verified");
    Ok(())
}
