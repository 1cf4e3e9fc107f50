//! `pictograph download NAME OUT_DIR`: a dataset's images and annotation files to disk,
//! virtual folders as sub-directories; a re-run fetches only what is missing.

use super::progress::{timing, Progress};
use super::{
    finish, human_bytes, parse_status, print_json, shown, CliError, CliResult, ClientArgs, Ctx,
};
use pictograph::{DownloadKind, DownloadMode, DownloadOptions, Status};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

/// What to fetch.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Mode {
    /// Images and their annotation files (`<image>.json`).
    Full,
    /// Images only.
    #[value(alias = "images_only")]
    ImagesOnly,
    /// Annotation files only.
    #[value(alias = "annotations_only")]
    AnnotationsOnly,
}

/// Arguments of `pictograph download`.
#[derive(clap::Args, Debug)]
pub struct DownloadArgs {
    #[command(flatten)]
    conn: ClientArgs,
    /// Dataset name.
    dataset: String,
    /// Directory to write into (created when missing); each image's virtual folder becomes a
    /// sub-directory.
    #[arg(value_hint = clap::ValueHint::DirPath)]
    out_dir: PathBuf,
    /// What to fetch.
    #[arg(long, value_enum, default_value = "full")]
    mode: Mode,
    /// Only images with this status: new, annotate, review or complete.
    #[arg(long, value_name = "STATUS", value_parser = parse_status)]
    status: Option<Status>,
    /// Files fetched at once.
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: u16,
}

/// Runs `pictograph download`.
pub async fn run(args: DownloadArgs) -> anyhow::Result<()> {
    let json = args.conn.json;
    finish(json, download(args).await)
}

async fn download(args: DownloadArgs) -> CliResult {
    let ctx = Ctx::connect(&args.conn)?;
    let mode = match args.mode {
        Mode::Full => DownloadMode::Full,
        Mode::ImagesOnly => DownloadMode::ImagesOnly,
        Mode::AnnotationsOnly => DownloadMode::AnnotationsOnly,
    };
    let progress = Arc::new(Progress::new("download", 0, None, ctx.json));
    let mut options = DownloadOptions::default()
        .mode(mode)
        .max_workers(args.workers as usize);
    if let Some(s) = args.status {
        options = options.status_filter(s);
    }
    let options = {
        let (p, out) = (progress.clone(), args.out_dir.clone());
        let started = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
        options.progress(move |_, total, file| {
            p.set_total_files(total as u64);
            // Bytes written by this run: files left alone (already present) are older.
            let bytes = file
                .and_then(|f| std::fs::metadata(out.join(f)).ok())
                .filter(|m| m.modified().is_ok_and(|t| t >= started))
                .map_or(0, |m| m.len());
            p.file_done(bytes);
        })
    };
    if progress.lines() {
        eprintln!(
            "download: dataset '{}' ({}) into {} with {} workers",
            args.dataset,
            mode.as_str(),
            args.out_dir.display(),
            args.workers
        );
    }
    let result = ctx
        .client
        .datasets()
        .download(&args.dataset, &args.out_dir, options)
        .await;
    progress.finish();
    let report = match result {
        Err(e) if e.is_disk_full() => {
            return Err(CliError::Other(anyhow::anyhow!(
                "{e}: the disk is full; free space and run the same command again (files \
                 already written are skipped)"
            )))
        }
        other => other?,
    };
    let elapsed = progress.elapsed();
    let bytes = progress.bytes();
    let failed = report.failures.len();
    if ctx.json {
        print_json(&json!({
            "dataset": args.dataset,
            "dataset_id": report.dataset_id,
            "output_dir": report.output_dir,
            "mode": mode.as_str(),
            "status": args.status.map(Status::as_str),
            "images_downloaded": report.images_downloaded,
            "images_skipped": report.images_skipped,
            "annotations_downloaded": report.annotations_downloaded,
            "failed": failed,
            "bytes": bytes,
            "elapsed_secs": elapsed.as_secs_f64(),
            "success": failed == 0,
            "failures": report.failures.iter().map(|f| json!({
                "image_id": f.image_id,
                "file": f.filename,
                "kind": match f.kind { DownloadKind::Image => "image", DownloadKind::Annotation => "annotation" },
                "reason": f.reason,
            })).collect::<Vec<_>>(),
        }));
    } else {
        println!(
            "Dataset '{}' into {}: {} images downloaded, {} already present, {} annotation files, {} failed; {} written in {}",
            args.dataset,
            report.output_dir.display(),
            report.images_downloaded,
            report.images_skipped,
            report.annotations_downloaded,
            failed,
            human_bytes(bytes),
            timing(
                report.images_downloaded + report.images_skipped + report.annotations_downloaded + failed,
                Some(bytes),
                elapsed
            ),
        );
    }
    if failed > 0 {
        for f in &report.failures {
            eprintln!(
                "failed: {} ({}): {}",
                shown(&f.filename),
                f.image_id,
                f.reason
            );
        }
        return Err(super::CliError::Failed(format!(
            "{failed} files failed; re-run the same command to fetch them (files already present are skipped)"
        )));
    }
    Ok(())
}
