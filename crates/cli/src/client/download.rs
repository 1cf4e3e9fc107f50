//! `pictograph download NAME OUT_DIR`: a dataset's images and annotation files to disk,
//! virtual folders as sub-directories; a re-run fetches only what is missing.

use super::progress::{timing, Progress};
use super::{
    count, finish, human_bytes, parse_status, print_json, shown, usage, CliError, CliResult,
    ClientArgs, Ctx,
};
use pictograph::datasets::DownloadOutcome;
use pictograph::{DownloadFailure, DownloadKind, DownloadMode, DownloadOptions, Status};
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
    /// Files fetched at once (files of more than a few MiB stream to disk at most four at a
    /// time, whatever N).
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
    if args.out_dir.exists() && !args.out_dir.is_dir() {
        return usage(format!(
            "{} is not a directory: give a directory to download into",
            args.out_dir.display()
        ));
    }
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
        let p = progress.clone();
        options.progress(move |_, total, _| p.set_total_files(total as u64))
    };
    let options = {
        let p = progress.clone();
        options.on_file(move |_, _, outcome| match outcome {
            DownloadOutcome::Written(bytes) => p.file_done(bytes),
            DownloadOutcome::Skipped => p.file_not_sent(0, true),
            DownloadOutcome::Failed => p.file_not_sent(0, false),
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
        Err(e) if e.is_local() => {
            return Err(CliError::Other(anyhow::anyhow!(
                "{e}; no file can be written there: fix that, then run the same command again \
                 (files already written are skipped)"
            )))
        }
        other => other?,
    };
    let elapsed = progress.elapsed();
    let bytes = report.bytes_written;
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
                "retryable": f.retryable,
            })).collect::<Vec<_>>(),
        }));
    } else {
        println!(
            "Dataset '{}' into {}: {}, {} already present, {}, {} failed; {} written in {}",
            args.dataset,
            report.output_dir.display(),
            count(report.images_downloaded, "image", "images") + " downloaded",
            report.images_skipped,
            count(
                report.annotations_downloaded,
                "annotation file",
                "annotation files"
            ),
            failed,
            human_bytes(bytes),
            timing(
                report.images_downloaded
                    + report.images_skipped
                    + report.annotations_downloaded
                    + failed,
                Some(bytes),
                elapsed
            ),
        );
    }
    if failed == 0 {
        return Ok(());
    }
    print_failures(&report.failures);
    let retryable = report.failures.iter().filter(|f| f.retryable).count();
    let what = count(failed, "file failed", "files failed");
    let hint = match (retryable, failed - retryable) {
        (_, 0) => {
            "re-run the same command to fetch them (files already present are skipped)".to_string()
        }
        (0, _) => "they could not be written: fix the cause above, re-running alone will not help"
            .to_string(),
        (r, l) => format!(
            "{r} may succeed if you re-run the same command (files already present are \
             skipped); {l} could not be written: fix the cause above for those"
        ),
    };
    Err(CliError::Failed(format!("{what}; {hint}")))
}

/// Most files named in one collapsed failure line.
const NAMED: usize = 3;

/// Lists the failures on standard error, one line per distinct reason: a reason shared by
/// many files (every file of an unwritable folder, say) is printed once with their count.
fn print_failures(failures: &[DownloadFailure]) {
    let mut groups: Vec<(&str, Vec<&DownloadFailure>)> = Vec::new();
    for f in failures {
        match groups.iter_mut().find(|(reason, _)| *reason == f.reason) {
            Some((_, files)) => files.push(f),
            None => groups.push((&f.reason, vec![f])),
        }
    }
    for (reason, files) in groups {
        match files.as_slice() {
            [f] => eprintln!("failed: {} ({}): {reason}", shown(&f.filename), f.image_id),
            _ => {
                let mut named: Vec<String> = files
                    .iter()
                    .take(NAMED)
                    .map(|f| shown(&f.filename).into_owned())
                    .collect();
                if files.len() > NAMED {
                    named.push("…".into());
                }
                eprintln!(
                    "failed: {} files ({}): {reason}",
                    files.len(),
                    named.join(", ")
                );
            }
        }
    }
}
