//! `pictograph export NAME OUT --format coco|yolo|voc|pictograph`: a dataset in the layout
//! training code reads, built image by image through the SDK (or, with `--server`, built by
//! the server as an export job and saved as one tar archive); what the format cannot hold is
//! printed as warnings.
//!
//! OUT keeps a manifest of what the export wrote (`.pictograph-export`): exporting again into
//! it leaves exactly the current dataset (files of the earlier export that the dataset no
//! longer has are removed; files someone else put there never are), and an export that
//! stops midway leaves a folder marked unfinished, never one that looks complete. A
//! non-empty OUT that holds no export is refused unless `--force`.

use super::progress::{timing, Progress};
use super::CliError;
use super::{finish, human_bytes, parse_status, print_json, usage, CliResult, ClientArgs, Ctx};
use pictograph::formats::{
    export_archive, export_dataset, ExportOptions, Format, ServerExportOptions,
};
use pictograph::Status;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

/// A format on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum FormatArg {
    /// COCO JSON: `annotations/instances.json` and `images/`.
    Coco,
    /// Ultralytics YOLO detection: `data.yaml`, `images/<split>/`, `labels/<split>/`.
    Yolo,
    /// Pascal VOC: `Annotations/*.xml`, `JPEGImages/`, `ImageSets/Main/trainval.txt`.
    Voc,
    /// Lossless pictograph JSON Lines: `annotations.jsonl`, `dataset.json`, `images/`.
    Pictograph,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Coco => Format::Coco,
            FormatArg::Yolo => Format::Yolo,
            FormatArg::Voc => Format::Voc,
            FormatArg::Pictograph => Format::Pictograph,
        }
    }
}

/// Arguments of `pictograph export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    conn: ClientArgs,
    /// Dataset name.
    dataset: String,
    /// Folder to write into (created when missing); with `--server`, the tar file to save.
    /// A folder holding an earlier export is brought up to date: files of that export the
    /// dataset no longer has are removed.
    out_dir: PathBuf,
    /// Output format.
    #[arg(long, short = 'f', value_enum)]
    format: FormatArg,
    /// Only images with this status: new, annotate, review or complete.
    #[arg(long, value_name = "STATUS", value_parser = parse_status)]
    status: Option<Status>,
    /// YOLO and VOC: write polygons as their bounding boxes instead of dropping them.
    #[arg(long)]
    polygons_as_boxes: bool,
    /// Have the server build the export (an export job) and save its tar archive at OUT.
    #[arg(long)]
    server: bool,
    /// Write into a non-empty folder that holds no earlier export (refused otherwise). Its
    /// files are kept, except those at a path the export writes.
    #[arg(long)]
    force: bool,
    /// Images fetched at once.
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: u16,
}

/// Runs `pictograph export`.
pub async fn run(args: ExportArgs) -> anyhow::Result<()> {
    let json = args.conn.json;
    finish(json, export(args).await)
}

async fn export(args: ExportArgs) -> CliResult {
    if args.dataset.trim().is_empty() {
        return usage("the dataset name must not be blank");
    }
    let ctx = Ctx::connect(&args.conn)?;
    let format = Format::from(args.format);
    if args.server {
        return server_export(&ctx, &args, format).await;
    }
    let progress = Arc::new(Progress::new("export", 0, None, ctx.json));
    if progress.lines() {
        eprintln!(
            "export: dataset '{}' as {format} into {}",
            args.dataset,
            args.out_dir.display()
        );
    }
    let options = {
        let (p, out) = (progress.clone(), args.out_dir.clone());
        ExportOptions {
            status: args.status,
            polygons_as_boxes: args.polygons_as_boxes,
            max_workers: args.workers as usize,
            progress: Some(Arc::new(move |_, total, file: Option<&str>| {
                p.set_total_files(total as u64);
                let bytes = file
                    .and_then(|f| std::fs::metadata(out.join(f)).ok())
                    .map_or(0, |m| m.len());
                p.file_done(bytes);
            })),
            allow_non_empty: args.force,
        }
    };
    let result = export_dataset(&ctx.client, &args.dataset, format, &args.out_dir, options).await;
    progress.finish();
    let report = result.map_err(|e| match e {
        pictograph::Error::InvalidArgument(_) if !args.force => {
            CliError::Hinted(Box::new(e), "add --force to write into it anyway")
        }
        e => e.into(),
    })?;
    let elapsed = progress.elapsed();
    if ctx.json {
        print_json(&json!({
            "dataset": args.dataset,
            "dataset_id": report.dataset_id,
            "format": format.as_str(),
            "output_dir": report.output_dir,
            "status": args.status.map(Status::as_str),
            "images": report.images,
            "images_downloaded": report.images_downloaded,
            "images_present": report.images_present,
            "annotations": report.annotations,
            "files_removed": report.files_removed,
            "warnings": report.warnings,
            "elapsed_secs": elapsed.as_secs_f64(),
        }));
    } else {
        println!(
            "Dataset '{}' exported as {format} into {}: {} images ({} fetched, {} already there), {} annotations read, {} in {}{}",
            args.dataset,
            report.output_dir.display(),
            report.images,
            report.images_downloaded,
            report.images_present,
            report.annotations,
            human_bytes(progress.bytes()),
            timing(report.images, Some(progress.bytes()), elapsed),
            match report.files_removed {
                0 => String::new(),
                n => format!("; {n} files of the earlier export removed"),
            },
        );
    }
    for w in &report.warnings {
        eprintln!("warning: {}", w.message);
    }
    Ok(())
}

async fn server_export(ctx: &Ctx, args: &ExportArgs, format: Format) -> CliResult {
    // The server reports images done, not bytes: the archive's bytes come at the end.
    let progress = Arc::new(Progress::new("export", 0, None, ctx.json).files_only());
    if progress.lines() {
        eprintln!(
            "export: dataset '{}' as {format} on the server, archive to {}",
            args.dataset,
            args.out_dir.display()
        );
    }
    let options = {
        let p = progress.clone();
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        ServerExportOptions {
            status: args.status,
            polygons_as_boxes: args.polygons_as_boxes,
            progress: Some(Arc::new(move |done, total, _: Option<&str>| {
                p.set_total_files(total as u64);
                let before = seen.swap(done, std::sync::atomic::Ordering::SeqCst);
                for _ in before..done {
                    p.file_done(0);
                }
            })),
        }
    };
    let result = export_archive(&ctx.client, &args.dataset, format, &args.out_dir, options).await;
    progress.finish();
    let job = result?;
    if job.state != "complete" {
        return Err(CliError::Failed(format!(
            "export job {} {}: {}",
            job.id,
            job.state,
            job.error.as_deref().unwrap_or("no reason given")
        )));
    }
    let size = job.archive.as_ref().map_or(0, |a| a.size);
    if ctx.json {
        print_json(&json!({
            "dataset": args.dataset,
            "dataset_id": job.dataset_id,
            "format": format.as_str(),
            "job_id": job.id,
            "archive": args.out_dir,
            "archive_bytes": size,
            "sha256": job.archive.as_ref().map(|a| a.sha256.clone()),
            "status": args.status.map(Status::as_str),
            "images": job.images_done,
            "annotations": job.annotations,
            "warnings": job.warnings,
            "elapsed_secs": progress.elapsed().as_secs_f64(),
        }));
    } else {
        println!(
            "Dataset '{}' exported as {format} by the server (job {}): {} images, {} annotations; archive {} ({}) in {}",
            args.dataset,
            job.id,
            job.images_done,
            job.annotations,
            args.out_dir.display(),
            human_bytes(size),
            timing(job.images_done as usize, Some(size), progress.elapsed()),
        );
    }
    for w in &job.warnings {
        eprintln!("warning: {}", w.message);
    }
    Ok(())
}
