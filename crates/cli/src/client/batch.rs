//! `pictograph batch move|copy|delete|update`: one operation on many images of a dataset.
//! Ids come from the arguments or, one per line, from standard input.

use super::{
    finish, parse_status, print_json, read_ids, usage, CliError, CliResult, ClientArgs, Ctx,
};
use pictograph::{
    Batch, BatchFailure, BatchResult, CopyOptions, DuplicateHandling, ImageUpdate, Status,
};
use serde_json::json;

/// Arguments of `pictograph batch`.
#[derive(clap::Args, Debug)]
pub struct BatchArgs {
    #[command(flatten)]
    conn: ClientArgs,
    #[command(subcommand)]
    cmd: BatchCommand,
}

/// Name collision policy of a copy.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Duplicates {
    /// Append -2, -3, … to the copy's name.
    Rename,
    /// Leave the existing image; the source is reported as failed.
    Skip,
    /// Replace the existing image, deleting it for good (needs an admin or owner key).
    Overwrite,
}

#[derive(clap::Subcommand, Debug)]
enum BatchCommand {
    /// Move images to another virtual folder of their dataset.
    Move {
        /// Dataset name.
        #[arg(long, short = 'd', value_name = "NAME")]
        dataset: String,
        /// Target folder, e.g. `/cats` (`/` for the root folder).
        #[arg(long, value_name = "FOLDER", value_parser = super::parse_target_folder)]
        to: String,
        /// Image ids (default: one per line on standard input).
        ids: Vec<String>,
    },
    /// Copy images into a virtual folder (server-side; no bytes transferred).
    Copy {
        /// Dataset name.
        #[arg(long, short = 'd', value_name = "NAME")]
        dataset: String,
        /// Target folder, e.g. `/cats` (`/` for the root folder).
        #[arg(long, value_name = "FOLDER", value_parser = super::parse_target_folder)]
        to: String,
        /// What to do when a name is taken in the target folder.
        #[arg(long, value_enum, default_value = "rename")]
        duplicates: Duplicates,
        /// Copy annotations and status too.
        #[arg(long)]
        with_annotations: bool,
        /// Image ids (default: one per line on standard input).
        ids: Vec<String>,
    },
    /// Archive images, or remove them for good with --permanent (admin role or higher).
    Delete {
        /// Dataset name.
        #[arg(long, short = 'd', value_name = "NAME")]
        dataset: String,
        /// Remove the images and their bytes instead of archiving them.
        #[arg(long)]
        permanent: bool,
        /// Image ids (default: one per line on standard input).
        ids: Vec<String>,
    },
    /// Set the status, display name or archived flag of images.
    Update {
        /// Dataset name.
        #[arg(long, short = 'd', value_name = "NAME")]
        dataset: String,
        /// New status: new, annotate, review or complete.
        #[arg(long, value_name = "STATUS", value_parser = parse_status)]
        status: Option<Status>,
        /// New display name.
        #[arg(long, value_name = "NAME")]
        display_name: Option<String>,
        /// Archive the images.
        #[arg(long, conflicts_with = "restore")]
        archive: bool,
        /// Restore archived images.
        #[arg(long)]
        restore: bool,
        /// Image ids (default: one per line on standard input).
        ids: Vec<String>,
    },
}

/// Ids per request: the most a server takes in one (`MAX_IDS` of its batch service).
const CHUNK: usize = 100_000;

/// Why an id of a chunk the server found none of is reported failed (the server's reason
/// for an unknown id).
const NOT_FOUND: &str = "Image not found in dataset";

/// Runs `pictograph batch …`.
pub async fn run(args: BatchArgs) -> anyhow::Result<()> {
    let json = args.conn.json;
    finish(json, batch(args).await)
}

/// Sends one chunk of ids.
async fn send(
    batch: &Batch,
    cmd: &BatchCommand,
    chunk: &[String],
) -> pictograph::Result<BatchResult> {
    match cmd {
        BatchCommand::Move { dataset, to, .. } => batch.move_images(dataset, chunk, to).await,
        BatchCommand::Copy {
            dataset,
            to,
            duplicates,
            with_annotations,
            ..
        } => {
            let handling = match duplicates {
                Duplicates::Rename => DuplicateHandling::Rename,
                Duplicates::Skip => DuplicateHandling::Skip,
                Duplicates::Overwrite => DuplicateHandling::Overwrite,
            };
            let options = CopyOptions::to(to.clone())
                .duplicate_handling(handling)
                .copy_annotations(*with_annotations);
            batch.copy(dataset, chunk, options).await
        }
        BatchCommand::Delete {
            dataset, permanent, ..
        } => batch.delete(dataset, chunk, *permanent).await,
        BatchCommand::Update {
            dataset,
            status,
            display_name,
            archive,
            restore,
            ..
        } => {
            let mut update = ImageUpdate::default();
            if let Some(s) = status {
                update = update.status(*s);
            }
            if let Some(n) = display_name {
                update = update.display_name(n.clone());
            }
            if *archive || *restore {
                update = update.is_archived(*archive);
            }
            batch.update(dataset, chunk, update).await
        }
    }
}

/// Every id of `chunk` as not found.
fn none_found(chunk: &[String]) -> BatchResult {
    BatchResult {
        failures: chunk
            .iter()
            .map(|id| BatchFailure {
                image_id: id.clone(),
                reason: NOT_FOUND.into(),
            })
            .collect(),
        ..BatchResult::default()
    }
}

/// `ids 1-100000`, `chunk 1`: a range of 1-based numbers.
fn range(what: &str, first: usize, last: usize) -> String {
    if first == last {
        format!("{what} {first}")
    } else {
        format!("{what}s {first}-{last}")
    }
}

async fn batch(args: BatchArgs) -> CliResult {
    let (op, ids, dataset) = match &args.cmd {
        BatchCommand::Move { ids, dataset, .. } => ("moved", ids, dataset),
        BatchCommand::Copy { ids, dataset, .. } => ("copied", ids, dataset),
        BatchCommand::Delete {
            permanent,
            ids,
            dataset,
            ..
        } => (
            if *permanent { "deleted" } else { "archived" },
            ids,
            dataset,
        ),
        BatchCommand::Update { ids, dataset, .. } => ("updated", ids, dataset),
    };
    if let BatchCommand::Update {
        status: None,
        display_name: None,
        archive: false,
        restore: false,
        ..
    } = &args.cmd
    {
        return usage("nothing to update: give --status, --display-name, --archive or --restore");
    }
    let ids = read_ids(ids.clone())?;
    let ctx = Ctx::connect(&args.conn)?;
    let batch = ctx.client.batch();
    let mut total = BatchResult::default();
    let chunks = ids.len().div_ceil(CHUNK);
    let mut dataset_exists = None;
    for (i, chunk) in ids.chunks(CHUNK).enumerate() {
        let r = match send(&batch, &args.cmd, chunk).await {
            Ok(r) => r,
            // The server answers 404 for a chunk none of whose ids it has: with the dataset
            // there, those ids failed, and the other chunks go on.
            Err(e) if e.is_not_found() => {
                let exists = match dataset_exists {
                    Some(known) => known,
                    None => {
                        let known = ctx.client.datasets().get(dataset).await.is_ok();
                        *dataset_exists.insert(known)
                    }
                };
                if !exists {
                    return Err(e.into());
                }
                none_found(chunk)
            }
            Err(e) if i == 0 => return Err(e.into()),
            Err(e) => {
                let sent = i * CHUNK;
                let failed = total.failed_count();
                let done = format!(
                    "stopped at chunk {} of {chunks} ({}): {} applied before it ({} of {sent} \
                     images {op}, {failed} failed), {} not applied",
                    i + 1,
                    range("id", sent + 1, sent + chunk.len()),
                    range("chunk", 1, i),
                    total.processed,
                    range("chunk", i + 1, chunks),
                );
                print_failures(&total);
                return Err(CliError::Partial {
                    error: Box::new(e),
                    done,
                    report: json!({
                        "operation": op,
                        "requested": ids.len(),
                        "chunks": chunks,
                        "chunks_applied": i,
                        "ids_sent": sent,
                        "processed": total.processed,
                        "succeeded": total.succeeded,
                        "failed": failed,
                        "failures": failures_json(&total),
                        "affected_folders": total.affected_folders,
                        "success": false,
                    }),
                });
            }
        };
        total.succeeded.extend(r.succeeded);
        total.failures.extend(r.failures);
        total.processed += r.processed;
        for f in r.affected_folders {
            if !total.affected_folders.contains(&f) {
                total.affected_folders.push(f);
            }
        }
    }
    let failed = total.failed_count();
    if ctx.json {
        print_json(&json!({
            "operation": op,
            "requested": ids.len(),
            "processed": total.processed,
            "succeeded": total.succeeded,
            "failed": failed,
            "failures": failures_json(&total),
            "affected_folders": total.affected_folders,
            "success": failed == 0,
        }));
    } else {
        println!(
            "{} of {} images {op}; {failed} failed",
            total.processed,
            ids.len()
        );
    }
    if failed > 0 {
        print_failures(&total);
        return Err(CliError::Failed(format!(
            "{failed} of {} images failed",
            ids.len()
        )));
    }
    Ok(())
}

fn failures_json(total: &BatchResult) -> Vec<serde_json::Value> {
    total
        .failures
        .iter()
        .map(|f| json!({"image_id": f.image_id, "reason": f.reason}))
        .collect()
}

/// One `failed: ID: REASON` line per failed id, on standard error.
fn print_failures(total: &BatchResult) {
    for f in &total.failures {
        eprintln!("failed: {}: {}", f.image_id, f.reason);
    }
}
