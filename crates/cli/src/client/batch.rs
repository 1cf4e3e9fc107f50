//! `pictograph batch move|copy|delete|update`: one operation on many images of a dataset.
//! Ids come from the arguments or, one per line, from standard input.

use super::{
    finish, parse_status, print_json, read_ids, usage, CliError, CliResult, ClientArgs, Ctx,
};
use pictograph::{BatchResult, CopyOptions, DuplicateHandling, ImageUpdate, Status};
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
    /// Replace the existing image.
    Overwrite,
}

#[derive(clap::Subcommand, Debug)]
enum BatchCommand {
    /// Move images to another virtual folder of their dataset.
    Move {
        /// Dataset name.
        #[arg(long, short = 'd', value_name = "NAME")]
        dataset: String,
        /// Target folder, e.g. `/cats`.
        #[arg(long, value_name = "FOLDER")]
        to: String,
        /// Image ids (default: one per line on standard input).
        ids: Vec<String>,
    },
    /// Copy images into a virtual folder (server-side; no bytes transferred).
    Copy {
        /// Dataset name.
        #[arg(long, short = 'd', value_name = "NAME")]
        dataset: String,
        /// Target folder, e.g. `/cats`.
        #[arg(long, value_name = "FOLDER")]
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

/// Ids per request (the server's limit).
const CHUNK: usize = 10_000;

/// Runs `pictograph batch …`.
pub async fn run(args: BatchArgs) -> anyhow::Result<()> {
    let json = args.conn.json;
    finish(json, batch(args).await)
}

async fn batch(args: BatchArgs) -> CliResult {
    let (op, ids) = match &args.cmd {
        BatchCommand::Move { ids, .. } => ("moved", ids),
        BatchCommand::Copy { ids, .. } => ("copied", ids),
        BatchCommand::Delete { permanent, ids, .. } => {
            (if *permanent { "deleted" } else { "archived" }, ids)
        }
        BatchCommand::Update { ids, .. } => ("updated", ids),
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
    for chunk in ids.chunks(CHUNK) {
        let r = match &args.cmd {
            BatchCommand::Move { dataset, to, .. } => batch.move_images(dataset, chunk, to).await?,
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
                batch.copy(dataset, chunk, options).await?
            }
            BatchCommand::Delete {
                dataset, permanent, ..
            } => batch.delete(dataset, chunk, *permanent).await?,
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
                batch.update(dataset, chunk, update).await?
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
            "failures": total.failures.iter().map(|f| json!({"image_id": f.image_id, "reason": f.reason})).collect::<Vec<_>>(),
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
        for f in &total.failures {
            eprintln!("failed: {}: {}", f.image_id, f.reason);
        }
        return Err(CliError::Failed(format!(
            "{failed} of {} images failed",
            ids.len()
        )));
    }
    Ok(())
}
