//! `pictograph images list|get|download|delete`.

use super::{
    finish, human_bytes, parse_status, print_json, print_table, read_ids, to_json, usage, CliError,
    CliResult, ClientArgs, Ctx,
};
use pictograph::{Image, ImageListOptions, Status};
use serde_json::json;
use std::path::{Path, PathBuf};

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
    /// List a dataset's images, filtered by status, folder and file name.
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
        /// Only images with this exact file name, in any folder (or in --folder).
        #[arg(long, value_name = "NAME")]
        filename: Option<String>,
        /// At most this many images [default: 1000, and no limit with --ids].
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Skip this many first.
        #[arg(long, value_name = "N", default_value_t = 0)]
        offset: usize,
        /// Print only the ids, one per line as the pages arrive (for `pictograph batch …`);
        /// with --json, an `ids` list.
        #[arg(long)]
        ids: bool,
    },
    /// Show one image's metadata.
    Get {
        /// Image id.
        #[arg(value_parser = super::parse_id)]
        id: String,
    },
    /// Save one image's bytes.
    Download {
        /// Image id.
        #[arg(value_parser = super::parse_id)]
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

/// Images listed without --ids when no --limit is given.
const DEFAULT_LIMIT: usize = 1000;

/// What an image listing selects (every page the same).
struct Selection<'a> {
    dataset: &'a str,
    status: Option<Status>,
    folder: Option<&'a str>,
    recursive: bool,
    include_archived: bool,
    filename: Option<&'a str>,
}

/// How a listing ended.
struct Listed {
    /// Images handed over.
    count: usize,
    /// How many images match in all.
    total: u64,
    /// Whether more images follow the last one handed over.
    has_more: bool,
    /// The consumer stopped the listing (its reader went away).
    stopped: bool,
}

impl Listed {
    /// Prints on standard error that a limit cut the output, when it did.
    fn note_cut(&self) {
        if self.has_more && !self.stopped {
            eprintln!(
                "{} of {} images shown; use --limit/--offset for more",
                self.count, self.total
            );
        }
    }
}

/// Up to `limit` images (all without one) from `offset`, fetched a page at a time and handed
/// to `each` (until it answers false); pages after the first are found by key, so each costs
/// the server the same however deep it lies ([`pictograph::Datasets::image_pages`]).
async fn list(
    ctx: &Ctx,
    what: &Selection<'_>,
    limit: Option<usize>,
    offset: usize,
    mut each: impl FnMut(Vec<Image>) -> bool,
) -> CliResult<Listed> {
    let options = ImageListOptions {
        status: what.status,
        folder: what.folder.map(str::to_string),
        recursive: what.recursive,
        include_archived: what.include_archived,
        filename: what.filename.map(str::to_string),
        offset,
        ..ImageListOptions::default()
    };
    let mut pages = ctx.client.datasets().image_pages(what.dataset, options);
    let mut listed = Listed {
        count: 0,
        total: 0,
        has_more: false,
        stopped: false,
    };
    if limit == Some(0) {
        // The server takes no page of 0: one of 1 still checks the dataset and answers the
        // total, and its image is not handed over.
        if let Some(page) = pages.next_page(1).await? {
            listed.total = page.total;
            listed.has_more = !page.images.is_empty();
        }
        return Ok(listed);
    }
    while limit.is_none_or(|l| listed.count < l) {
        let want = limit.map_or(PAGE, |l| (l - listed.count).min(PAGE));
        let Some(page) = pages.next_page(want).await? else {
            break;
        };
        listed.total = page.total;
        listed.has_more = page.has_more;
        listed.count += page.images.len();
        if !each(page.images) {
            listed.stopped = true;
            break;
        }
    }
    Ok(listed)
}

/// Whether `out` is meant as a directory: it ends with a path separator.
fn names_a_directory(out: &Path) -> bool {
    out.as_os_str()
        .to_string_lossy()
        .ends_with(std::path::is_separator)
}

/// `e` naming `dest` where it named the temporary file the download was written to
/// (`dest` plus `.part`), which the user never asked for.
fn naming(e: pictograph::Error, dest: &Path) -> pictograph::Error {
    let is_part = |p: &Path| {
        p != dest
            && p.parent() == dest.parent()
            && p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".part"))
    };
    match e {
        pictograph::Error::Io { path, source } if is_part(&path) => pictograph::Error::Io {
            path: dest.to_path_buf(),
            source,
        },
        pictograph::Error::FileNotFound(path) if is_part(&path) => {
            pictograph::Error::FileNotFound(dest.to_path_buf())
        }
        other => other,
    }
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
            filename,
            limit,
            offset,
            ids,
        } => {
            let what = Selection {
                dataset: &dataset,
                status,
                folder: folder.as_deref(),
                recursive,
                include_archived,
                filename: filename.as_deref(),
            };
            if ids && !ctx.json {
                // Printed page by page: a million ids never sit in memory at once.
                use std::io::Write;
                // A reader that stops early (`head`) ends the listing, without an error.
                let mut out = std::io::stdout().lock();
                let listed = list(&ctx, &what, limit, offset, |page| {
                    page.iter().all(|i| writeln!(out, "{}", i.id).is_ok()) && out.flush().is_ok()
                })
                .await?;
                listed.note_cut();
                return Ok(());
            }
            if ids {
                let mut listed_ids: Vec<String> = Vec::new();
                let listed = list(&ctx, &what, limit, offset, |page| {
                    listed_ids.extend(page.into_iter().map(|i| i.id));
                    true
                })
                .await?;
                print_json(&json!({
                    "ids": listed_ids,
                    "count": listed.count,
                    "total": listed.total,
                    "offset": offset,
                    "has_more": listed.has_more,
                }));
                listed.note_cut();
                return Ok(());
            }
            let mut images: Vec<Image> = Vec::new();
            let limit = Some(limit.unwrap_or(DEFAULT_LIMIT));
            let listed = list(&ctx, &what, limit, offset, |page| {
                images.extend(page);
                true
            })
            .await?;
            if ctx.json {
                print_json(&json!({
                    "images": to_json(&images),
                    "count": listed.count,
                    "total": listed.total,
                    "offset": offset,
                    "has_more": listed.has_more,
                }));
            } else {
                let rows: Vec<Vec<String>> = images
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
            }
            listed.note_cut();
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
            let into = match out {
                None => Ok(std::path::PathBuf::new()),
                Some(p) if names_a_directory(&p) || p.is_dir() => Ok(p),
                Some(file) => Err(file),
            };
            let dest = match into {
                Err(file) => file,
                Ok(dir) => {
                    // The image is looked up first: an unknown id leaves no new directory.
                    let meta = ctx.client.images().get(&id).await?;
                    if !dir.as_os_str().is_empty() {
                        std::fs::create_dir_all(&dir).map_err(|e| {
                            CliError::Other(anyhow::anyhow!("creating {}: {e}", dir.display()))
                        })?;
                    }
                    dir.join(pictograph::datasets::sanitize_component(&meta.filename))
                }
            };
            if dest.as_os_str().is_empty() {
                return usage("no output path");
            }
            if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
                if !parent.is_dir() {
                    return usage(format!(
                        "no directory {}: give an existing directory, or end the path with / \
                         to create one",
                        parent.display()
                    ));
                }
            }
            let bytes = ctx
                .client
                .images()
                .download(&id, &dest)
                .await
                .map_err(|e| naming(e, &dest))?;
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
            let verb = if permanent { "deleted" } else { "archived" };
            for (i, id) in ids.iter().enumerate() {
                match ctx.client.images().delete(id, permanent).await {
                    Ok(()) => done.push(id.clone()),
                    // This image's own refusal: the others may still go.
                    Err(
                        e @ (pictograph::Error::NotFound(_)
                        | pictograph::Error::Conflict(_)
                        | pictograph::Error::Validation(_)),
                    ) => failures.push((id.clone(), super::describe_sdk(&e).0)),
                    // The key, the role, the network or the server: every further image would
                    // fail the same way, so stop here.
                    Err(e) => {
                        return Err(stopped_deleting(e, &ids[i..], &done, &failures, verb));
                    }
                }
            }
            if ctx.json {
                print_json(&json!({
                    "operation": verb,
                    "requested": ids.len(),
                    "succeeded": done,
                    "failed": failures.len(),
                    "failures": failures.iter().map(|(id, r)| json!({"image_id": id, "reason": r})).collect::<Vec<_>>(),
                    "success": failures.is_empty(),
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

/// The error of `images delete` stopped by `e` with `rest` (the image it failed on and those
/// after it) remaining: what was done before it, and whether a re-run can help.
fn stopped_deleting(
    e: pictograph::Error,
    rest: &[String],
    done: &[String],
    failures: &[(String, String)],
    verb: &str,
) -> CliError {
    for (id, r) in failures {
        eprintln!("failed: {id}: {r}");
    }
    let requested = done.len() + failures.len() + rest.len();
    let mut text = format!(
        "stopped at image {} of {requested}: {} {verb} before it, {} failed, {} remaining (it \
         and those after it)",
        done.len() + failures.len() + 1,
        done.len(),
        failures.len(),
        rest.len()
    );
    if e.is_transient() {
        text.push_str("; re-run the same command to retry them");
        if verb == "deleted" {
            text.push_str(" (the images already deleted then fail as not found)");
        }
    }
    CliError::Partial {
        error: Box::new(e),
        done: text,
        report: json!({
            "operation": verb,
            "requested": requested,
            "succeeded": done,
            "failed": failures.len(),
            "failures": failures
                .iter()
                .map(|(id, r)| json!({"image_id": id, "reason": r}))
                .collect::<Vec<_>>(),
            "remaining": rest,
            "success": false,
        }),
    }
}
