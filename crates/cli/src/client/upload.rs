//! `pictograph upload FOLDER --dataset NAME`: a folder of images into a dataset, through the
//! SDK's idempotent folder workflow.

use super::progress::{timing, Progress};
use super::{finish, human_bytes, print_json, shown, usage, CliError, CliResult, ClientArgs, Ctx};
use pictograph::workflows::{
    summarize_folder, upload_dataset_from_folder, FileOutcome, FolderUploadOptions,
};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments of `pictograph upload`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Symbolic links to files and folders are followed, under the link's name; a link back into a \
folder above it (a loop) is skipped with a note. A broken link named like an image, and a \
sub-folder that cannot be read, are failures; the rest is still uploaded.

Nested folders go to their first-level folder (cats/day/1.jpg -> /cats/1.jpg; with --flat, \
everything to /). When two files land on the same name, the first in sorted path order is \
uploaded and the others fail, naming it.")]
pub struct UploadArgs {
    #[command(flatten)]
    conn: ClientArgs,
    /// Folder to upload, recursively; only image files (jpg, jpeg, png, webp, bmp, tif, tiff,
    /// gif, heic) are sent.
    #[arg(value_hint = clap::ValueHint::DirPath)]
    folder: PathBuf,
    /// Dataset to upload into; created when missing.
    #[arg(long, short = 'd', value_name = "NAME")]
    dataset: String,
    /// Put every image in the root folder `/` instead of one virtual folder per first-level
    /// sub-folder (`cats/x/1.jpg` → `/cats`).
    #[arg(long)]
    flat: bool,
    /// Files uploaded at once.
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: u16,
    /// Report images whose name is already taken in their folder as failures instead of
    /// skipping them.
    #[arg(long)]
    no_skip_existing: bool,
    /// Fail when the dataset does not exist instead of creating it.
    #[arg(long)]
    no_create: bool,
}

/// Runs `pictograph upload`.
pub async fn run(args: UploadArgs) -> anyhow::Result<()> {
    let json = args.conn.json;
    finish(json, upload(args).await)
}

async fn upload(args: UploadArgs) -> CliResult {
    let folder = args.folder.clone();
    match std::fs::metadata(&folder) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return usage(format!("{} is not a folder", folder.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return usage(format!("{} does not exist", folder.display()))
        }
        Err(e) => {
            return Err(CliError::Other(anyhow::anyhow!(
                "cannot read {}: {e}",
                folder.display()
            )))
        }
    }
    let name = args.dataset.trim().to_string();
    if name.is_empty() {
        return usage("--dataset must not be blank");
    }
    let ctx = Ctx::connect(&args.conn)?;
    // Counted first (the walk holds no list of files), for the totals shown; the upload
    // walks the folder again.
    let counted = folder.clone();
    let summary = tokio::task::spawn_blocking(move || summarize_folder(&counted))
        .await
        .map_err(|e| CliError::Other(e.into()))??;
    if summary.files == 0 && summary.broken_files == 0 && summary.unreadable_folders == 0 {
        return Err(CliError::Other(anyhow::anyhow!(
            "no image files under {} (supported: jpg, jpeg, png, webp, bmp, tif, tiff, gif, heic)",
            args.folder.display()
        )));
    }
    let ignored = summary.ignored;
    let total_bytes = summary.bytes;
    let total_files = summary.files + summary.broken_files;
    let progress = Arc::new(Progress::new(
        "upload",
        total_files as u64,
        Some(total_bytes),
        ctx.json,
    ));
    if progress.lines() {
        eprintln!(
            "upload: {total_files} files ({}) from {} to dataset '{name}' with {} workers",
            human_bytes(total_bytes),
            args.folder.display(),
            args.workers
        );
    }
    let options = {
        let p = progress.clone();
        FolderUploadOptions::default()
            .organize_by_class(!args.flat)
            .max_workers(args.workers as usize)
            .skip_existing(!args.no_skip_existing)
            .create_if_missing(!args.no_create)
            .on_file(move |_, size, outcome| match outcome {
                FileOutcome::Uploaded => p.file_done(size),
                FileOutcome::Skipped => p.file_not_sent(size, true),
                FileOutcome::Failed => p.file_not_sent(size, false),
            })
    };
    let result = upload_dataset_from_folder(&ctx.client, &name, &folder, options).await;
    progress.finish();
    let report = result.map_err(|e| match e {
        pictograph::Error::NotFound(_) if args.no_create => {
            CliError::Hinted(Box::new(e), "leave out --no-create to create it")
        }
        e => e.into(),
    })?;
    let elapsed = progress.elapsed();
    // Every file found is uploaded, skipped or failed: its bytes are counted in one of these.
    let bytes_uploaded = progress.bytes();
    let (bytes_skipped, bytes_failed) = (progress.skipped_bytes(), progress.failed_bytes());
    // The failures include the folders that could not be read.
    let folders_failed = report.unreadable_folders;
    let failed = report.failures.len() - folders_failed;
    let failures: Vec<(String, &str, bool)> = report
        .failures
        .iter()
        .map(|f| {
            let rel = f.path.strip_prefix(&args.folder).unwrap_or(&f.path);
            (
                rel.to_string_lossy().into_owned(),
                f.reason.as_str(),
                f.retryable,
            )
        })
        .collect();

    if ctx.json {
        print_json(&json!({
            "dataset": report.dataset_name,
            "dataset_id": report.dataset_id,
            "folder": args.folder,
            "files": report.images_attempted,
            "uploaded": report.images_uploaded,
            "skipped": report.images_skipped,
            "failed": failed,
            "unreadable_folders": folders_failed,
            "ignored": ignored,
            "bytes": total_bytes,
            "bytes_uploaded": bytes_uploaded,
            "bytes_skipped": bytes_skipped,
            "bytes_failed": bytes_failed,
            "elapsed_secs": elapsed.as_secs_f64(),
            "success": failures.is_empty(),
            "failures": failures
                .iter()
                .map(|(p, r, again)| json!({"path": p, "reason": r, "retryable": again}))
                .collect::<Vec<_>>(),
            "notes": report.notes,
        }));
    } else {
        // The byte rate is that of the bytes sent, when some were.
        let sent = (bytes_uploaded > 0).then_some(bytes_uploaded);
        println!(
            "Dataset '{}' ({}): {} uploaded, {} skipped (already there), {} failed of {} image files ({}) in {}",
            report.dataset_name,
            report.dataset_id,
            report.images_uploaded,
            report.images_skipped,
            failed,
            report.images_attempted,
            byte_parts(total_bytes, bytes_uploaded, bytes_skipped, bytes_failed),
            timing(report.images_attempted, sent, elapsed),
        );
        if folders_failed > 0 {
            println!(
                "{folders_failed} folder(s) could not be read; their images were not uploaded"
            );
        }
        if ignored > 0 {
            println!("{ignored} other file(s) ignored (not a supported image type)");
        }
        for note in &report.notes {
            println!("note: {}", shown(note));
        }
    }
    if !failures.is_empty() {
        for (path, reason, _) in &failures {
            eprintln!("failed: {}: {reason}", shown(path));
        }
        let refused = failures.iter().filter(|(_, _, again)| !again).count();
        let mut what = Vec::new();
        if failed > 0 {
            what.push(format!(
                "{failed} of {} files failed",
                report.images_attempted
            ));
        }
        if folders_failed > 0 {
            what.push(format!("{folders_failed} folder(s) could not be read"));
        }
        return Err(CliError::Failed(format!(
            "{}; {}",
            what.join(" and "),
            super::failure_hint(failures.len() - refused, refused, args.no_skip_existing)
        )));
    }
    Ok(())
}

/// The bytes of the files found, and when not all of them were uploaded, how they split:
/// `2.7 KiB: 2.1 KiB uploaded, 652 B failed`.
fn byte_parts(total: u64, uploaded: u64, skipped: u64, failed: u64) -> String {
    if skipped == 0 && failed == 0 {
        return human_bytes(total);
    }
    let mut parts = vec![format!("{} uploaded", human_bytes(uploaded))];
    if skipped > 0 {
        parts.push(format!("{} already there", human_bytes(skipped)));
    }
    if failed > 0 {
        parts.push(format!("{} failed", human_bytes(failed)));
    }
    format!("{}: {}", human_bytes(total), parts.join(", "))
}
