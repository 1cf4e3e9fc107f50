//! `pictograph exports list|cancel`: a dataset's export jobs on the server (`pictograph
//! export --server` starts them).

use super::{finish, human_bytes, print_json, print_table, to_json, CliResult, ClientArgs, Ctx};
use pictograph::formats::{list_server_exports, stop_server_export, ExportJob, StoppedExport};
use serde_json::json;

/// Arguments of `pictograph exports`.
#[derive(clap::Args, Debug)]
pub struct ExportsArgs {
    #[command(flatten)]
    conn: ClientArgs,
    #[command(subcommand)]
    cmd: ExportsCommand,
}

#[derive(clap::Subcommand, Debug)]
enum ExportsCommand {
    /// List a dataset's export jobs, newest first.
    List {
        /// Dataset name or id.
        name: String,
        /// At most this many, 1 to 200 (the most the server serves at once).
        #[arg(long, value_name = "N", default_value_t = 50,
              value_parser = clap::value_parser!(u16).range(1..=200))]
        limit: u16,
        /// Skip this many newest first.
        #[arg(long, value_name = "N", default_value_t = 0)]
        offset: usize,
    },
    /// Cancel a queued or running export job, or delete an ended one and free its archive.
    Cancel {
        /// Dataset name or id.
        name: String,
        /// The job's id.
        id: String,
    },
}

/// Runs `pictograph exports …`.
pub async fn run(args: ExportsArgs) -> anyhow::Result<()> {
    let json = args.conn.json;
    finish(json, exports(args).await)
}

fn size(job: &ExportJob) -> String {
    job.archive
        .as_ref()
        .map_or_else(String::new, |a| human_bytes(a.size))
}

async fn exports(args: ExportsArgs) -> CliResult {
    let ctx = Ctx::connect(&args.conn)?;
    match args.cmd {
        ExportsCommand::List {
            name,
            limit,
            offset,
        } => {
            let page = list_server_exports(&ctx.client, &name, limit.into(), offset).await?;
            if ctx.json {
                print_json(&json!({
                    "exports": to_json(&page.exports),
                    "total": page.total,
                    "offset": offset,
                }));
            } else {
                let rows: Vec<Vec<String>> = page
                    .exports
                    .iter()
                    .map(|j| {
                        vec![
                            j.id.clone(),
                            j.format.clone(),
                            j.state.clone(),
                            format!("{}/{}", j.images_done, j.images_total),
                            size(j),
                            j.created_at.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                print_table(
                    &["ID", "FORMAT", "STATE", "IMAGES", "SIZE", "CREATED"],
                    &rows,
                );
            }
            if ((offset + page.exports.len()) as u64) < page.total {
                eprintln!(
                    "{} of {} export jobs shown; use --limit/--offset for more",
                    page.exports.len(),
                    page.total
                );
            }
        }
        ExportsCommand::Cancel { name, id } => {
            let stopped = stop_server_export(&ctx.client, &name, &id).await?;
            match (&stopped, ctx.json) {
                (StoppedExport::Cancelled(job), true) => {
                    print_json(&json!({"cancelled": to_json(job)}))
                }
                (StoppedExport::Deleted(job), true) => {
                    print_json(&json!({"deleted": to_json(job)}))
                }
                (StoppedExport::Cancelled(job), false) => println!(
                    "Cancelled export {} ({}) of '{}' after {} of {} images",
                    job.id, job.format, job.dataset, job.images_done, job.images_total
                ),
                (StoppedExport::Deleted(job), false) => println!(
                    "Deleted export {} ({}, {}) of '{}'{}",
                    job.id,
                    job.format,
                    job.state,
                    job.dataset,
                    job.archive.as_ref().map_or_else(String::new, |a| format!(
                        "; freed its archive of {}",
                        human_bytes(a.size)
                    )),
                ),
            }
        }
    }
    Ok(())
}
