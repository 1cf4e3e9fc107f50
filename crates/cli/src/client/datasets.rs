//! `pictograph datasets list|get|create|rename|delete`.

use super::{
    finish, human_bytes, print_json, print_table, to_json, usage, CliResult, ClientArgs, Ctx,
};
use futures::TryStreamExt;
use pictograph::{CreateProject, Dataset, DatasetClass, UpdateProject};
use serde_json::json;
use std::io::{BufRead, IsTerminal};

/// Arguments of `pictograph datasets`.
#[derive(clap::Args, Debug)]
pub struct DatasetsArgs {
    #[command(flatten)]
    conn: ClientArgs,
    #[command(subcommand)]
    cmd: DatasetsCommand,
}

#[derive(clap::Subcommand, Debug)]
enum DatasetsCommand {
    /// List the organisation's datasets.
    List {
        /// At most this many (default: all).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Show one dataset.
    Get {
        /// Dataset name (case-sensitive).
        name: String,
    },
    /// Create an empty dataset.
    Create {
        /// Dataset name, unique in the organisation.
        name: String,
        /// Free text.
        #[arg(long)]
        description: Option<String>,
        /// Annotation types, comma-separated: bbox, polygon, polyline, keypoint.
        #[arg(long, value_delimiter = ',', value_name = "TYPES")]
        annotation_types: Vec<String>,
        /// Class names, comma-separated; when set, annotations must use them.
        #[arg(long, value_delimiter = ',', value_name = "NAMES")]
        classes: Vec<String>,
    },
    /// Rename a dataset.
    Rename {
        /// Current name.
        name: String,
        /// New name.
        new_name: String,
    },
    /// Delete a dataset with all its images and annotations (admin role or higher).
    Delete {
        /// Dataset name.
        name: String,
        /// Do not ask for confirmation (required when standard input is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// Runs `pictograph datasets …`.
pub async fn run(args: DatasetsArgs) -> anyhow::Result<()> {
    let json = args.conn.json;
    finish(json, datasets(args).await)
}

/// The live images by status, as `new 3, annotate 0, review 1, complete 2` (empty when the
/// server keeps no such counts).
fn by_status(d: &Dataset) -> String {
    d.status_counts
        .map(|c| {
            format!(
                "new {}, annotate {}, review {}, complete {}",
                c.new, c.annotate, c.review, c.complete
            )
        })
        .unwrap_or_default()
}

fn show(d: &Dataset) {
    let lines = [
        ("name", d.name.clone()),
        ("id", d.id.clone()),
        ("description", d.description.clone().unwrap_or_default()),
        ("images", d.image_count.to_string()),
        ("complete", d.completed_image_count.to_string()),
        ("by status", by_status(d)),
        ("archived", d.archived_images.to_string()),
        ("size", human_bytes(d.total_size)),
        (
            "classes",
            d.classes
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("annotation types", d.annotation_types.join(", ")),
        ("created", d.created_at.to_rfc3339()),
    ];
    for (k, v) in lines {
        println!("{k:<17} {v}");
    }
}

async fn datasets(args: DatasetsArgs) -> CliResult {
    let ctx = Ctx::connect(&args.conn)?;
    match args.cmd {
        DatasetsCommand::List { limit } => {
            let mut pager = ctx.client.datasets().iter().page_size(500);
            if let Some(n) = limit {
                // One more than asked for tells whether the list was cut.
                pager = pager.max_total(n.saturating_add(1));
            }
            let mut list: Vec<Dataset> = pager.try_collect().await?;
            let has_more = limit.is_some_and(|n| list.len() > n);
            if let Some(n) = limit {
                list.truncate(n);
            }
            if has_more && !ctx.json {
                eprintln!(
                    "{} datasets shown; more exist (leave out --limit to list them all)",
                    list.len()
                );
            }
            if ctx.json {
                print_json(&json!({
                    "datasets": to_json(&list),
                    "count": list.len(),
                    "has_more": has_more,
                }));
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|d| {
                        vec![
                            d.name.clone(),
                            d.image_count.to_string(),
                            d.completed_image_count.to_string(),
                            human_bytes(d.total_size),
                            d.id.clone(),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "IMAGES", "COMPLETE", "SIZE", "ID"], &rows);
            }
        }
        DatasetsCommand::Get { name } => {
            let d = ctx.client.datasets().get(&name).await?;
            if ctx.json {
                print_json(&json!({ "dataset": to_json(&d) }));
            } else {
                show(&d);
            }
        }
        DatasetsCommand::Create {
            name,
            description,
            annotation_types,
            classes,
        } => {
            let mut options = CreateProject::default();
            if let Some(d) = description {
                options = options.description(d);
            }
            let types: Vec<String> = annotation_types
                .into_iter()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect();
            if !types.is_empty() {
                options = options.annotation_types(types);
            }
            let classes: Vec<DatasetClass> = classes
                .iter()
                .map(|c| c.trim())
                .filter(|c| !c.is_empty())
                .map(DatasetClass::new)
                .collect();
            if !classes.is_empty() {
                options = options.classes(classes);
            }
            let d = ctx.client.projects().create(&name, options).await?;
            if ctx.json {
                print_json(&json!({ "dataset": to_json(&d) }));
            } else {
                println!("Created dataset '{}' ({})", d.name, d.id);
            }
        }
        DatasetsCommand::Rename { name, new_name } => {
            let d = ctx
                .client
                .projects()
                .update(&name, UpdateProject::default().new_name(new_name))
                .await?;
            if ctx.json {
                print_json(&json!({ "dataset": to_json(&d) }));
            } else {
                println!("Renamed dataset '{name}' to '{}' ({})", d.name, d.id);
            }
        }
        DatasetsCommand::Delete { name, yes } => {
            if !yes {
                confirm(&name)?;
            }
            let s = ctx.client.projects().delete(&name).await?;
            if ctx.json {
                print_json(&json!({ "deleted": to_json(&s) }));
            } else {
                println!(
                    "Deleted dataset '{name}' ({}): {} images, {} folders, {} stored files freed{}",
                    s.id,
                    s.images_deleted,
                    s.folders_deleted,
                    s.blobs_deleted,
                    match s.blobs_freed_after_grace {
                        0 => String::new(),
                        n => format!(" ({n} more once the server's grace period has passed)"),
                    }
                );
            }
        }
    }
    Ok(())
}

/// Asks on the terminal to type the dataset's name; refuses without a terminal.
fn confirm(name: &str) -> CliResult {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return usage(format!(
            "deleting dataset '{name}' removes all its images: pass --yes to confirm"
        ));
    }
    eprint!(
        "Delete dataset '{name}' with all its images and annotations? Type its name to confirm: "
    );
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    if line.trim() != name {
        return usage("not confirmed; nothing deleted");
    }
    Ok(())
}
