//! `pictograph upload FOLDER --dataset NAME`: a folder of images into a dataset, through the
//! SDK's idempotent folder workflow.

use super::progress::{timing, Progress};
use super::{finish, human_bytes, print_json, shown, usage, CliError, CliResult, ClientArgs, Ctx};
use pictograph::workflows::{upload_dataset_from_folder, FileOutcome, FolderUploadOptions};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Arguments of `pictograph upload`.
#[derive(clap::Args, Debug)]
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

/// The files the SDK's workflow will send (same rules: recursive, symlinked files followed,
/// symlinked directories not, supported extensions only), with their sizes, and the count
/// of other files.
fn scan(root: &Path) -> std::io::Result<(HashMap<String, u64>, usize)> {
    let mut files = HashMap::new();
    let mut ignored = 0;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(root.join(&rel))? {
            let entry = entry?;
            let child = rel.join(entry.file_name());
            let ft = entry.file_type()?;
            if ft.is_dir() {
                stack.push(child);
                continue;
            }
            let meta = if ft.is_symlink() {
                match std::fs::metadata(entry.path()) {
                    Ok(m) if m.is_file() => m,
                    _ => continue,
                }
            } else if ft.is_file() {
                entry.metadata()?
            } else {
                continue;
            };
            if pictograph::images::is_supported(&child) {
                files.insert(child.to_string_lossy().into_owned(), meta.len());
            } else {
                ignored += 1;
            }
        }
    }
    Ok((files, ignored))
}

/// Runs `pictograph upload`.
pub async fn run(args: UploadArgs) -> anyhow::Result<()> {
    let json = args.conn.json;
    finish(json, upload(args).await)
}

async fn upload(args: UploadArgs) -> CliResult {
    let folder = args.folder.clone();
    if !folder.is_dir() {
        return usage(format!("{} is not a folder", folder.display()));
    }
    let name = args.dataset.trim().to_string();
    if name.is_empty() {
        return usage("--dataset must not be blank");
    }
    let ctx = Ctx::connect(&args.conn)?;
    let scan_root = folder.clone();
    let (sizes, ignored) = tokio::task::spawn_blocking(move || scan(&scan_root))
        .await
        .map_err(|e| CliError::Other(e.into()))?
        .map_err(|e| {
            CliError::Other(anyhow::Error::new(e).context(format!("reading {}", folder.display())))
        })?;
    if sizes.is_empty() {
        return Err(CliError::Other(anyhow::anyhow!(
            "no image files under {} (supported: jpg, jpeg, png, webp, bmp, tif, tiff, gif, heic)",
            args.folder.display()
        )));
    }
    let total_bytes: u64 = sizes.values().sum();
    let total_files = sizes.len();
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
    let sizes = Arc::new(sizes);
    let options = {
        let (p, sizes) = (progress.clone(), sizes.clone());
        FolderUploadOptions::default()
            .organize_by_class(!args.flat)
            .max_workers(args.workers as usize)
            .skip_existing(!args.no_skip_existing)
            .create_if_missing(!args.no_create)
            .on_file(move |file, outcome| {
                let size = sizes.get(&*file.to_string_lossy()).copied().unwrap_or(0);
                match outcome {
                    FileOutcome::Uploaded => p.file_done(size),
                    FileOutcome::Skipped => p.file_not_sent(size, true),
                    FileOutcome::Failed => p.file_not_sent(size, false),
                }
            })
    };
    let result = upload_dataset_from_folder(&ctx.client, &name, &args.folder, options).await;
    progress.finish();
    let report = result.map_err(|e| match e {
        pictograph::Error::NotFound(_) if args.no_create => {
            CliError::Hinted(Box::new(e), "leave out --no-create to create it")
        }
        e => e.into(),
    })?;
    let elapsed = progress.elapsed();
    let failed = report.failures.len();
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
            "ignored": ignored,
            "bytes": total_bytes,
            "elapsed_secs": elapsed.as_secs_f64(),
            "success": failed == 0,
            "failures": failures
                .iter()
                .map(|(p, r, again)| json!({"path": p, "reason": r, "retryable": again}))
                .collect::<Vec<_>>(),
        }));
    } else {
        // A byte rate only means something when every file was sent.
        let sent = (report.images_uploaded == report.images_attempted).then_some(total_bytes);
        println!(
            "Dataset '{}' ({}): {} uploaded, {} skipped (already there), {} failed of {} image files ({}) in {}",
            report.dataset_name,
            report.dataset_id,
            report.images_uploaded,
            report.images_skipped,
            failed,
            report.images_attempted,
            human_bytes(total_bytes),
            timing(report.images_attempted, sent, elapsed),
        );
        if ignored > 0 {
            println!("{ignored} other file(s) ignored (not a supported image type)");
        }
    }
    if failed > 0 {
        for (path, reason, _) in &failures {
            eprintln!("failed: {}: {reason}", shown(path));
        }
        let refused = failures.iter().filter(|(_, _, again)| !again).count();
        return Err(CliError::Failed(format!(
            "{failed} of {} files failed; {}",
            report.images_attempted,
            super::failure_hint(failed - refused, refused, args.no_skip_existing)
        )));
    }
    Ok(())
}
