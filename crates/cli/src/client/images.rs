//! `pictograph images list|get|download|delete`.

use super::{
    finish, human_bytes, parse_status, print_json, print_table, read_ids, to_json, usage, CliError,
    CliResult, ClientArgs, Ctx,
};
use pictograph::{Image, ImageListOptions, Status};
use serde_json::json;
use std::path::PathBuf;

/// Arguments of `pictograph images`.
#[derive(clap::Args, Debug)]
pub struct ImagesArgs {
    #[command(flatten)]
    conn: ClientArgs,
    #[command(subcommand)]
    cmd: ImagesCommand,
}

#[derive(clap::Subcommand, Debug)]
enum ImagesCommand {
    /// List a dataset's images, filtered by status and folder.
    List {
        /// Dataset name (or id).
        #[arg(long, short = 'd', value_name = "NAME")]
        dataset: String,
        /// Only images with this status: new, annotate, review or complete.
        #[arg(long, value_name = "STATUS", value_parser = parse_status)]
        status: Option<Status>,
        /// Only images in this virtual folder, e.g. `/cats`.
        #[arg(long, value_name = "FOLDER")]
        folder: Option<String>,
        /// With --folder: its sub-folders too.
        #[arg(long)]
        recursive: bool,
        /// Archived images too.
        #[arg(long)]
        include_archived: bool,
        /// At most this many images.
        #[arg(long, value_name = "N", default_value_t = 1000)]
        limit: usize,
        /// Skip this many first.
        #[arg(long, value_name = "N", default_value_t = 0)]
        offset: usize,
        /// Print only the ids, one per line (for `pictograph batch …`).
        #[arg(long)]
        ids: bool,
    },
    /// Show one image's metadata.
    Get {
        /// Image id.
        id: String,
    },
    /// Save one image's bytes.
    Download {
        /// Image id.
        id: String,
        /// File or existing directory to write to (default: the image's name in the current
        /// directory).
        out: Option<PathBuf>,
    },
    /// Archive images (or remove them for good with --permanent).
    Delete {
        /// Image ids (default: one per line on standard input).
        ids: Vec<String>,
        /// Remove the images and their bytes instead of archiving them.
        #[arg(long)]
        permanent: bool,
    },
}

/// Runs `pictograph images …`.
pub async fn run(args: ImagesArgs) -> anyhow::Result<()> {
    let json = args.conn.json;
    finish(json, images(args).await)
}

/// Largest page asked for.
const PAGE: usize = 1000;

/// Up to `limit` images from `offset`, fetched in pages; with the total and whether more follow.
#[allow(clippy::too_many_arguments)]
async fn list(
    ctx: &Ctx,
    dataset: &str,
    status: Option<Status>,
    folder: Option<&str>,
    recursive: bool,
    include_archived: bool,
    limit: usize,
    offset: usize,
) -> CliResult<(Vec<Image>, u64, bool)> {
    let mut out: Vec<Image> = Vec::new();
    let (mut total, mut has_more) = (0, false);
    while out.len() < limit {
        let options = ImageListOptions {
            status,
            folder: folder.map(str::to_string),
            recursive,
            include_archived,
            limit: Some((limit - out.len()).min(PAGE)),
            offset: offset + out.len(),
        };
        let page = ctx.client.datasets().list_images(dataset, options).await?;
        total = page.total;
        has_more = page.has_more;
        let n = page.images.len();
        out.extend(page.images);
        if n == 0 || !has_more {
            break;
        }
    }
    Ok((out, total, has_more))
}

fn dims(i: &Image) -> String {
    match (i.width, i.height) {
        (Some(w), Some(h)) => format!("{w}x{h}"),
        _ => "-".into(),
    }
}

async fn images(args: ImagesArgs) -> CliResult {
    let ctx = Ctx::connect(&args.conn)?;
    match args.cmd {
        ImagesCommand::List {
            dataset,
            status,
            folder,
            recursive,
            include_archived,
            limit,
            offset,
            ids,
        } => {
            let (list, total, has_more) = list(
                &ctx,
                &dataset,
                status,
                folder.as_deref(),
                recursive,
                include_archived,
                limit,
                offset,
            )
            .await?;
            if ctx.json {
                print_json(&json!({
                    "images": to_json(&list),
                    "count": list.len(),
                    "total": total,
                    "offset": offset,
                    "has_more": has_more,
                }));
            } else if ids {
                for i in &list {
                    println!("{}", i.id);
                }
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|i| {
                        vec![
                            i.id.clone(),
                            i.folder().to_string(),
                            i.filename.clone(),
                            i.status.clone(),
                            i.annotation_count.to_string(),
                            dims(i),
                            human_bytes(i.file_size),
                        ]
                    })
                    .collect();
                print_table(
                    &["ID", "FOLDER", "FILENAME", "STATUS", "ANNS", "DIMS", "SIZE"],
                    &rows,
                );
                if has_more {
                    eprintln!(
                        "{} of {total} images shown; use --limit/--offset for more",
                        list.len()
                    );
                }
            }
        }
        ImagesCommand::Get { id } => {
            let i = ctx.client.images().get(&id).await?;
            if ctx.json {
                print_json(&json!({ "image": to_json(&i) }));
            } else {
                let lines = [
                    ("id", i.id.clone()),
                    ("filename", i.filename.clone()),
                    ("folder", i.folder().to_string()),
                    ("dataset id", i.dataset_id.clone().unwrap_or_default()),
                    ("status", i.status.clone()),
                    ("annotations", i.annotation_count.to_string()),
                    ("size", dims(&i)),
                    (
                        "bytes",
                        format!("{} ({})", i.file_size, human_bytes(i.file_size)),
                    ),
                    ("type", i.mime_type.clone().unwrap_or_default()),
                    ("archived", i.is_archived.to_string()),
                    ("created", i.created_at.to_rfc3339()),
                ];
                for (k, v) in lines {
                    println!("{k:<12} {v}");
                }
            }
        }
        ImagesCommand::Download { id, out } => {
            let dest = match out {
                Some(p) if !p.is_dir() => p,
                dir => {
                    let meta = ctx.client.images().get(&id).await?;
                    let name = pictograph::datasets::sanitize_component(&meta.filename);
                    dir.unwrap_or_default().join(name)
                }
            };
            if dest.as_os_str().is_empty() {
                return usage("no output path");
            }
            let bytes = ctx.client.images().download(&id, &dest).await?;
            if ctx.json {
                print_json(&json!({"image_id": id, "path": dest, "bytes": bytes}));
            } else {
                println!("Saved {} ({})", dest.display(), human_bytes(bytes));
            }
        }
        ImagesCommand::Delete { ids, permanent } => {
            let ids = read_ids(ids)?;
            let mut done = Vec::new();
            let mut failures = Vec::new();
            for id in &ids {
                match ctx.client.images().delete(id, permanent).await {
                    Ok(()) => done.push(id.clone()),
                    Err(e) => failures.push((id.clone(), super::describe_sdk(&e).0)),
                }
            }
            let verb = if permanent { "deleted" } else { "archived" };
            if ctx.json {
                print_json(&json!({
                    "operation": verb,
                    "succeeded": done,
                    "failed": failures.len(),
                    "failures": failures.iter().map(|(id, r)| json!({"image_id": id, "reason": r})).collect::<Vec<_>>(),
                }));
            } else {
                println!("{} of {} images {verb}", done.len(), ids.len());
            }
            if !failures.is_empty() {
                for (id, r) in &failures {
                    eprintln!("failed: {id}: {r}");
                }
                return Err(CliError::Failed(format!(
                    "{} of {} images failed",
                    failures.len(),
                    ids.len()
                )));
            }
        }
    }
    Ok(())
}
