//! Export jobs: a dataset written in a training format (COCO, YOLO, Pascal VOC or the
//! lossless pictograph JSON Lines) into one tar archive, by a background task.
//!
//! The task walks the dataset a page of images at a time, each page starting after the last
//! image of the one before in `(created_at, id)` order (so images deleted or added meanwhile
//! never make it skip or repeat another), and, for each image, hands its annotations to the
//! format's writer and streams its bytes from the blob store into the archive, which is
//! staged on local disk as it grows and then stored among the blobs. Memory stays flat
//! whatever the dataset size. Progress is written to the job after every page and every few
//! seconds (that also shows the task is alive: the maintenance sweep fails jobs that stop
//! moving), and each write finds out whether the job was cancelled, so a cancelled task stops
//! within a page and discards its staged archive. Finished jobs and their archives are kept
//! for a day unless deleted sooner.

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::repeating::Repeating;
use crate::services::datasets::by_ref;
use crate::services::maintenance;
use crate::store::{DatasetRow, ExportJobRow, NewExport, StoppedJob};
use crate::AppState;
use anyhow::Context;
use futures::StreamExt;
use pictograph_core::names::Status;
use pictograph_formats::{Body, ExportOptions, Format, ImageInfo};
use serde::Deserialize;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// Images read per query.
pub const PAGE: i64 = 500;

/// How often a running job writes its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Finished jobs and their archives are kept this long, then freed by the sweep.
pub const KEPT_FOR: Duration = Duration::from_secs(24 * 3600);

/// Body of `POST /datasets/{dataset}/exports`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateExport {
    /// `coco`, `yolo`, `voc` or `pictograph`.
    pub format: String,
    /// Only images with this status.
    #[serde(default)]
    pub status: Option<String>,
    /// YOLO and VOC: write polygons as their boxes instead of dropping them.
    #[serde(default)]
    pub polygons_as_boxes: bool,
}

/// Most export jobs one organisation may have queued or running at once: each reads a whole
/// dataset and writes a full archive, kept for a day.
pub const MAX_UNFINISHED: usize = 4;

/// Checks the request, records the job and starts its task. The same request while an
/// equal job is still queued or running answers that job instead of starting another; an
/// organisation with [`MAX_UNFINISHED`] jobs unfinished is refused (409) until one ends.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    dataset: &str,
    body: CreateExport,
) -> ApiResult<(ExportJobRow, DatasetRow)> {
    let format = Format::parse(&body.format).ok_or_else(|| {
        ApiError::field(
            &["body", "format"],
            format!(
                "unknown format '{}': use coco, yolo, voc or pictograph",
                body.format
            ),
        )
    })?;
    let status = match body.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            ApiError::field(
                &["body", "status"],
                format!("'{s}' is not a status: use new, annotate, review or complete"),
            )
        })?),
    };
    let d = by_ref(state, caller, dataset).await?;
    let job = match state
        .store
        .create_export_job_once(
            &caller.org_id,
            &d.id,
            format.as_str(),
            status.map(Status::as_str),
            body.polygons_as_boxes,
            MAX_UNFINISHED,
        )
        .await?
    {
        NewExport::Created(job) => job,
        NewExport::Joined(same) => return Ok((same, d)),
        NewExport::Full(n) => {
            return Err(ApiError::Conflict(format!(
                "The organisation has {n} exports queued or running, the most it may have at \
                 once: wait for one to finish, or cancel one, before starting another"
            )))
        }
    };
    tokio::spawn(run(state.clone(), job.clone(), d.clone()));
    Ok((job, d))
}

/// A job of the caller's organisation on this dataset, or 404.
pub async fn get(
    state: &AppState,
    caller: &Caller,
    dataset: &str,
    id: &str,
) -> ApiResult<(ExportJobRow, DatasetRow)> {
    let d = by_ref(state, caller, dataset).await?;
    let job = state
        .store
        .export_job(&caller.org_id, id)
        .await?
        .filter(|j| j.dataset_id == d.id)
        .ok_or_else(|| ApiError::NotFound(format!("Export '{id}' not found")))?;
    Ok((job, d))
}

/// Largest page of `GET /datasets/{dataset}/exports`.
pub const LIST_CAP: i64 = 200;

/// The dataset's jobs, newest first, with how many there are in all.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    dataset: &str,
    limit: i64,
    offset: i64,
) -> ApiResult<(Vec<ExportJobRow>, i64, DatasetRow)> {
    let d = by_ref(state, caller, dataset).await?;
    let (jobs, total) = state
        .store
        .list_export_jobs(&caller.org_id, &d.id, limit, offset)
        .await?;
    Ok((jobs, total, d))
}

/// What `DELETE /datasets/{dataset}/exports/{id}` did.
#[derive(Debug)]
pub enum Stopped {
    /// The job was queued or running: it is now `cancelled` and its task stops.
    Cancelled(Box<ExportJobRow>),
    /// The job had ended: it is forgotten and its archive freed.
    Deleted(Box<ExportJobRow>),
}

/// Cancels a queued or running job, or deletes an ended one with its archive. Any key of the
/// organisation may, as any may start one: a job holds nothing that is not in the dataset.
pub async fn stop(
    state: &AppState,
    caller: &Caller,
    dataset: &str,
    id: &str,
) -> ApiResult<(Stopped, DatasetRow)> {
    caller.require(Role::Member, "Cancelling or deleting an export")?;
    let (job, d) = get(state, caller, dataset, id).await?;
    let stopped = state
        .store
        .stop_export_job(&caller.org_id, &d.id, &job.id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Export '{id}' not found")))?;
    Ok(match stopped {
        StoppedJob::Cancelled(row) => (Stopped::Cancelled(row), d),
        StoppedJob::Deleted(hash) => {
            if let Some(hash) = hash {
                maintenance::release_archive(state, &hash).await;
            }
            (Stopped::Deleted(Box::new(job)), d)
        }
    })
}

async fn run(state: AppState, job: ExportJobRow, dataset: DatasetRow) {
    if let Err(e) = run_paged(&state, &job, &dataset, PAGE, |_| async {}).await {
        tracing::warn!(job = %job.id, error = format!("{e:#}"), "export failed");
        let msg = format!("export failed: {e:#}");
        if let Err(e) = state.store.fail_export_job(&job.id, &msg).await {
            tracing::warn!(job = %job.id, error = %e, "recording the export failure failed");
        }
    }
}

/// How a job's task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// The archive is stored and the job complete.
    Complete,
    /// The job was cancelled (or deleted) meanwhile; nothing was kept.
    Stopped,
}

/// Runs the export task of `job`: reads the dataset `page` images at a time in
/// `(created_at, id)` order, each page starting after the last image of the one before, and
/// calls `after_page` with the images written so far after each page. The server runs it in
/// the background with [`PAGE`] and nothing after pages; tests run it directly to change the
/// dataset or cancel the job between pages.
pub async fn run_paged<F, Fut>(
    state: &AppState,
    job: &ExportJobRow,
    dataset: &DatasetRow,
    page: i64,
    mut after_page: F,
) -> anyhow::Result<Ran>
where
    F: FnMut(i64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    // Alive while it runs, whatever a step takes (storing a large archive in a bucket can
    // take longer than `export_stale_secs`): the sweep of any server fails only jobs nobody
    // runs.
    let _alive = heartbeat(state, &job.id);
    let mut tar = Tar::new(state.blobs.incoming().await?);
    let out = export(state, job, dataset, page, &mut after_page, &mut tar).await;
    match out {
        Ok(Some(warnings)) => {
            let (tmp, hash, size) = tar.finish().await?;
            // Recorded before the bytes are stored: equal bytes of another job, freed when
            // that job is deleted, are then never freed from under this one.
            if !state.store.claim_export_archive(&job.id, &hash).await? {
                state.blobs.discard(&tmp).await;
                return Ok(Ran::Stopped);
            }
            if let Err(e) = state.blobs.commit(&tmp, &hash).await {
                state.blobs.discard(&tmp).await;
                return Err(e.into());
            }
            let kept = state
                .store
                .finish_export_job(&job.id, &hash, size as i64, &warnings)
                .await?;
            if kept {
                return Ok(Ran::Complete);
            }
            state.store.forget_export_archive(&job.id).await?;
            maintenance::release_archive(state, &hash).await;
            Ok(Ran::Stopped)
        }
        Ok(None) => {
            state.blobs.discard(tar.out.path()).await;
            Ok(Ran::Stopped)
        }
        Err(e) => {
            state.blobs.discard(tar.out.path()).await;
            Err(e)
        }
    }
}

/// A job that has not moved for this long lost its task (the server stopped).
pub fn stale_after(state: &AppState) -> Duration {
    Duration::from_secs(state.config.export_stale_secs)
}

/// Touches the job every tenth of [`stale_after`] until dropped.
fn heartbeat(state: &AppState, id: &str) -> Repeating {
    let (store, id) = (state.store.clone(), id.to_string());
    Repeating::every(stale_after(state) / 10, move || {
        let (store, id) = (store.clone(), id.clone());
        async move {
            if let Err(e) = store.touch_export_job(&id).await {
                tracing::warn!(error = %e, job = %id, "recording an export job alive failed");
            }
        }
    })
}

/// Image reads an export from an object store keeps started ahead of the one it writes.
const OPENED_AHEAD: usize = 16;

/// Writes the job's archive into `tar`; answers its warnings (JSON), or `None` when the job
/// was cancelled or deleted meanwhile.
async fn export<F, Fut>(
    state: &AppState,
    job: &ExportJobRow,
    dataset: &DatasetRow,
    page: i64,
    after_page: &mut F,
    tar: &mut Tar,
) -> anyhow::Result<Option<String>>
where
    F: FnMut(i64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let format = Format::parse(&job.format).context("unknown format")?;
    let mut writer = pictograph_formats::writer(
        format,
        ExportOptions {
            dataset: dataset.name.clone(),
            classes: dataset.class_names(),
            polygons_as_boxes: job.polygons_as_boxes,
        },
    )?;
    let status = job.status_filter.as_deref();
    let store = &state.store;
    let filter = crate::store::ImageFilter {
        status: status.map(str::to_string),
        ..crate::store::ImageFilter::default()
    };
    let total = store.count_images(&dataset.id, &filter).await?;
    if !store.export_progress(&job.id, total, 0, 0).await? {
        return Ok(None);
    }
    let (mut done, mut annotations) = (0i64, 0i64);
    let mut last_progress = Instant::now();
    let mut after: Option<(String, String)> = None;
    loop {
        let rows = store
            .export_images_after(
                &dataset.id,
                status,
                after.as_ref().map(|(at, id)| (at.as_str(), id.as_str())),
                page,
            )
            .await?;
        // From an object store, the next images' reads are started while one is written: each
        // costs a round trip before its first byte. Their bodies wait in the connections.
        let ahead = if state.blobs.is_remote() {
            OPENED_AHEAD
        } else {
            1
        };
        let blobs = &state.blobs;
        let hashes: Vec<String> = rows.iter().map(|img| img.blob_hash.clone()).collect();
        let mut opened = futures::stream::iter(hashes)
            .map(|hash| async move { blobs.stream(&hash, None).await })
            .buffered(ahead);
        for img in &rows {
            let mut bytes = opened
                .next()
                .await
                .context("an image's bytes were not opened")??;
            let info = ImageInfo {
                folder: img.folder.clone(),
                filename: img.filename.clone(),
                width: img.width.unwrap_or(0).max(0) as u32,
                height: img.height.unwrap_or(0).max(0) as u32,
                status: img.status.clone(),
            };
            let list = match serde_json::from_str(&img.annotations)? {
                serde_json::Value::Array(a) => a,
                _ => Vec::new(),
            };
            let size = img.file_size as u64;
            let place = writer.place(&info);
            tar.header(&place.path, size).await?;
            let mut sent = 0u64;
            while let Some(chunk) = bytes.next().await {
                let chunk = chunk?;
                sent += chunk.len() as u64;
                anyhow::ensure!(sent <= size, "image {} is larger than recorded", img.id);
                tar.write(&chunk).await?;
            }
            anyhow::ensure!(sent == size, "image {} is shorter than recorded", img.id);
            tar.pad(size).await?;
            for file in writer.add(&info, &place, &list)? {
                tar.file(&file.path, file.body).await?;
            }
            done += 1;
            annotations += list.len() as i64;
            if last_progress.elapsed() >= PROGRESS_EVERY {
                if !store
                    .export_progress(&job.id, total.max(done), done, annotations)
                    .await?
                {
                    return Ok(None);
                }
                last_progress = Instant::now();
            }
        }
        let Some(last) = rows.last() else { break };
        after = Some((last.created_at.clone(), last.id.clone()));
        // Every page checks that the job still stands, so a cancel stops it within a page.
        if !store
            .export_progress(&job.id, total.max(done), done, annotations)
            .await?
        {
            return Ok(None);
        }
        last_progress = Instant::now();
        after_page(done).await;
        if (rows.len() as i64) < page {
            break;
        }
    }
    if !store
        .export_progress(&job.id, done, done, annotations)
        .await?
    {
        return Ok(None);
    }
    let finished = writer.finish()?;
    for file in finished.files {
        tar.file(&file.path, file.body).await?;
    }
    Ok(Some(serde_json::to_string(&finished.warnings)?))
}

/// A tar archive (POSIX ustar, with pax records for long paths) written into a staged blob.
struct Tar {
    out: crate::blobs::Incoming,
}

const BLOCK: usize = 512;

impl Tar {
    fn new(out: crate::blobs::Incoming) -> Tar {
        Tar { out }
    }

    async fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        Ok(self.out.write(bytes).await?)
    }

    /// Zeros up to the next block boundary after `size` bytes of data.
    async fn pad(&mut self, size: u64) -> anyhow::Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.write(&[0u8; BLOCK][..BLOCK - rem]).await?;
        }
        Ok(())
    }

    /// The header of a regular file of `size` bytes at `path`.
    async fn header(&mut self, path: &str, size: u64) -> anyhow::Result<()> {
        const MAX_OCTAL_SIZE: u64 = 0o77777777777;
        let mut pax = String::new();
        if path.len() > 100 {
            pax.push_str(&pax_record("path", path));
        }
        if size > MAX_OCTAL_SIZE {
            pax.push_str(&pax_record("size", &size.to_string()));
        }
        if !pax.is_empty() {
            let block = ustar_header("PaxHeader", pax.len() as u64, b'x');
            self.write(&block).await?;
            self.write(pax.as_bytes()).await?;
            self.pad(pax.len() as u64).await?;
        }
        let short: String = if path.len() > 100 {
            let mut end = 100;
            while !path.is_char_boundary(end) {
                end -= 1;
            }
            path[..end].to_string()
        } else {
            path.to_string()
        };
        let block = ustar_header(&short, size.min(MAX_OCTAL_SIZE), b'0');
        self.write(&block).await
    }

    /// A whole file.
    async fn file(&mut self, path: &str, body: Body) -> anyhow::Result<()> {
        match body {
            Body::Bytes(b) => {
                self.header(path, b.len() as u64).await?;
                self.write(&b).await?;
                self.pad(b.len() as u64).await
            }
            Body::File(f) => {
                let size = f.metadata()?.len();
                self.header(path, size).await?;
                let mut f = tokio::fs::File::from_std(f);
                let mut buf = vec![0u8; 256 * 1024];
                let mut sent = 0u64;
                loop {
                    let n = f.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    sent += n as u64;
                    self.write(&buf[..n]).await?;
                }
                anyhow::ensure!(sent == size, "{path} changed while being archived");
                self.pad(size).await
            }
        }
    }

    /// Ends the archive; answers the staged file, its SHA-256 and size.
    async fn finish(mut self) -> anyhow::Result<(std::path::PathBuf, String, u64)> {
        self.write(&[0u8; 2 * BLOCK]).await?;
        Ok(self.out.finish().await?)
    }
}

/// One pax extended-header record: `"<len> <key>=<value>\n"`, `len` counting itself.
fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while len.to_string().len() + body.len() != len {
        len = len.to_string().len() + body.len();
    }
    format!("{len}{body}")
}

/// A ustar header block.
fn ustar_header(name: &str, size: u64, kind: u8) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let octal = |field: &mut [u8], v: u64| {
        let s = format!("{:0width$o}", v, width = field.len() - 1);
        field[..s.len()].copy_from_slice(s.as_bytes());
    };
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(
        &mut h[136..148],
        chrono::Utc::now().timestamp().max(0) as u64,
    );
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| b as u64).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        let r = pax_record("path", "a/b");
        assert_eq!(r, "12 path=a/b\n");
        assert_eq!(r.len(), 12);
        let long = "x".repeat(95);
        let r = pax_record("path", &long);
        assert_eq!(r.len().to_string(), r.split(' ').next().unwrap());
    }

    #[test]
    fn header_checksum_is_valid() {
        let h = ustar_header("a.txt", 5, b'0');
        let stored = u64::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        let mut copy = h;
        copy[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, copy.iter().map(|&b| b as u64).sum::<u64>());
        assert_eq!(&h[124..135], b"00000000005");
    }
}
