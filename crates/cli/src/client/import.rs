//! `pictograph import FOLDER --format coco|yolo|voc|pictograph --dataset NAME`: a folder in
//! a training format into a dataset, images and annotations; idempotent (a re-run uploads
//! nothing new and leaves equal annotations alone).

use super::export::FormatArg;
use super::progress::{timing, Progress};
use super::{finish, print_json, shown, usage, CliError, CliResult, ClientArgs, Ctx};
use pictograph::formats::{import_folder, Format, ImportOptions};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments of `pictograph import`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    conn: ClientArgs,
    /// Folder to import (for COCO also the JSON file itself).
    folder: PathBuf,
    /// The folder's format.
    #[arg(long, short = 'f', value_enum)]
    format: FormatArg,
    /// Dataset to import into.
    #[arg(long, short = 'd', value_name = "NAME")]
    dataset: String,
    /// Create the dataset (with the folder's classes) when it does not exist.
    #[arg(long)]
    create: bool,
    /// Images handled at once.
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: u16,
}

/// Runs `pictograph import`.
pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let json = args.conn.json;
    finish(json, import(args).await)
}

async fn import(args: ImportArgs) -> CliResult {
    let name = args.dataset.trim().to_string();
    if name.is_empty() {
        return usage("--dataset must not be blank");
    }
    if !args.folder.exists() {
        return usage(format!("{} does not exist", args.folder.display()));
    }
    let ctx = Ctx::connect(&args.conn)?;
    let format = Format::from(args.format);
    let progress = Arc::new(Progress::new("import", 0, None, ctx.json).files_only());
    if progress.lines() {
        eprintln!(
            "import: {} ({format}) into dataset '{name}'",
            args.folder.display()
        );
    }
    let options = {
        let p = progress.clone();
        ImportOptions {
            create_if_missing: args.create,
            max_workers: args.workers as usize,
            progress: Some(Arc::new(move |_, total, _: Option<&str>| {
                p.set_total_files(total as u64);
                p.file_done(0);
            })),
        }
    };
    let result = import_folder(&ctx.client, &args.folder, format, &name, options).await;
    progress.finish();
    let report = result.map_err(|e| match e {
        pictograph::Error::NotFound(_) if !args.create => {
            CliError::Hinted(Box::new(e), "add --create to create it")
        }
        e => e.into(),
    })?;
    let elapsed = progress.elapsed();
    let failed = report.failures.len();
    if ctx.json {
        print_json(&json!({
            "dataset": name,
            "dataset_id": report.dataset_id,
            "format": format.as_str(),
            "created": report.created,
            "classes_added": report.classes_added,
            "images": report.images,
            "uploaded": report.uploaded,
            "existing": report.existing,
            "annotations": report.annotations,
            "annotations_saved": report.annotations_saved,
            "annotations_unchanged": report.annotations_unchanged,
            "failed": failed,
            "failures": report.failures.iter().map(|f| json!({
                "path": f.path, "reason": f.reason, "retryable": f.retryable
            })).collect::<Vec<_>>(),
            "warnings": report.warnings,
            "elapsed_secs": elapsed.as_secs_f64(),
            "success": failed == 0,
        }));
    } else {
        println!(
            "Imported {} ({format}) into dataset '{name}'{}: {} images ({} uploaded, {} already there), {} annotations; lists saved for {} images, {} unchanged, {} failed in {}",
            args.folder.display(),
            if report.created { " (created)" } else { "" },
            report.images,
            report.uploaded,
            report.existing,
            report.annotations,
            report.annotations_saved,
            report.annotations_unchanged,
            failed,
            timing(report.images, None, elapsed),
        );
        if !report.classes_added.is_empty() {
            println!(
                "classes added to the dataset: {}",
                report.classes_added.join(", ")
            );
        }
    }
    for w in &report.warnings {
        eprintln!("warning: {}", w.message);
    }
    if failed > 0 {
        for f in &report.failures {
            eprintln!(
                "failed: {}: {}",
                shown(&f.path.display().to_string()),
                f.reason
            );
        }
        let refused = report.failures.iter().filter(|f| !f.retryable).count();
        return Err(CliError::Failed(format!(
            "{failed} of {} images failed; {}",
            report.images,
            super::failure_hint(failed - refused, refused, false)
        )));
    }
    Ok(())
}
