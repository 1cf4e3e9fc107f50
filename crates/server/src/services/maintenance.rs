//! Upkeep: expired uploads, stored responses, abandoned staged files, bytes nothing refers
//! to, and export jobs whose task is gone or whose archive has been kept long enough. The
//! server runs it in the background; `pictograph gc` runs it once.
//!
//! It is safe beside running servers: bytes are freed only once their grace period has passed
//! since an upload last touched them, and each is freed under its record's lock, which an
//! upload of the same bytes takes before moving them into place (see
//! [`crate::store::Store::free_blobs`]).

use crate::store::{fmt_time, HiddenDataset};
use crate::AppState;
use serde::Serialize;
use std::collections::HashSet;
use std::time::Duration;

/// How often the background sweep runs.
const PERIOD: Duration = Duration::from_secs(60);

/// The background sweep also lists the whole blob store for bytes without a record (left by a
/// crash between storing bytes and recording them, or by older versions) on its first pass
/// after start and then once every this many passes.
const SCAN_EVERY: u64 = 60;

/// Staged files older than this are abandoned writes.
pub const TEMP_AGE: Duration = Duration::from_secs(3600);

/// A hidden dataset whose deletion made no progress for this long was left by a server that
/// stopped while deleting it; the sweep finishes it. A deletion under way stamps its dataset
/// after every chunk, far more often.
pub const DELETION_STALLED_AFTER: Duration = Duration::from_secs(120);

/// Images deleted per transaction when a dataset is deleted: a few tens of milliseconds of
/// the write lock at a time, so that other writes go on between the chunks.
const REAPED_AT_ONCE: i64 = 2_000;

/// Stored responses to writes are replayed for this long.
const RESPONSE_AGE: chrono::Duration = chrono::Duration::hours(24);

/// What one pass does.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Unreferenced bytes are freed only when untouched for this long.
    pub blob_grace: Duration,
    /// Staged files older than this are removed.
    pub temp_age: Duration,
    /// Also list the blob store for bytes that have no record.
    pub scan_store: bool,
    /// Report what would be removed, remove nothing.
    pub dry_run: bool,
    /// Deleted datasets whose deletion made no progress for this long are finished.
    pub deletion_stalled_after: Duration,
}

impl SweepOptions {
    /// The options a server's configuration implies.
    pub fn for_state(state: &AppState) -> SweepOptions {
        SweepOptions {
            blob_grace: Duration::from_secs(state.config.blob_grace_secs),
            temp_age: TEMP_AGE,
            scan_store: false,
            dry_run: false,
            deletion_stalled_after: DELETION_STALLED_AFTER,
        }
    }
}

/// What a pass removed (or, in a dry run, would remove).
#[derive(Debug, Default, Clone, Serialize)]
pub struct SweepReport {
    /// Whether nothing was removed.
    pub dry_run: bool,
    /// Signed upload URLs that expired unregistered.
    pub expired_uploads: Vec<String>,
    /// Stored idempotent responses past their replay window.
    pub expired_responses: u64,
    /// Staged files of abandoned writes.
    pub temp_files: Vec<String>,
    /// Objects PUT through presigned URLs (S3, GCS) that no pending upload claims.
    pub staged_objects: Vec<String>,
    /// Recorded bytes that nothing refers to.
    pub orphan_blobs: Vec<String>,
    /// Stored bytes without a record.
    pub unrecorded_blobs: Vec<String>,
    /// Export jobs past their keeping time (their archives are freed with them).
    pub expired_exports: Vec<String>,
    /// Deleted datasets whose images a stopped server had left (ids).
    pub finished_deletions: Vec<String>,
}

impl SweepReport {
    /// `(kind, count)` per kind, in report order.
    pub fn counts(&self) -> [(&'static str, u64); 8] {
        [
            ("expired uploads", self.expired_uploads.len() as u64),
            ("expired idempotency records", self.expired_responses),
            ("temp files", self.temp_files.len() as u64),
            ("staged upload objects", self.staged_objects.len() as u64),
            ("orphan blobs", self.orphan_blobs.len() as u64),
            ("unrecorded blob files", self.unrecorded_blobs.len() as u64),
            ("expired export archives", self.expired_exports.len() as u64),
            (
                "unfinished dataset deletions",
                self.finished_deletions.len() as u64,
            ),
        ]
    }
}

/// Runs the sweep forever.
pub async fn run(state: AppState) {
    let mut tick = tokio::time::interval(PERIOD);
    let mut passes = 0u64;
    loop {
        tick.tick().await;
        let mut opts = SweepOptions::for_state(&state);
        opts.scan_store = passes.is_multiple_of(SCAN_EVERY);
        passes += 1;
        crate::clock::check_again(&state.store, &state.clock_skew).await;
        if let Err(e) = sweep_with(&state, &opts).await {
            tracing::warn!(error = %e, "maintenance sweep failed");
        }
    }
}

/// One pass with the server's settings (no store scan).
pub async fn sweep(state: &AppState) -> anyhow::Result<SweepReport> {
    sweep_with(state, &SweepOptions::for_state(state)).await
}

/// One pass: drop expired pending uploads and day-old idempotent responses, remove abandoned
/// staged files and objects, free bytes nothing refers to.
pub async fn sweep_with(state: &AppState, opts: &SweepOptions) -> anyhow::Result<SweepReport> {
    let mut report = SweepReport {
        dry_run: opts.dry_run,
        ..SweepReport::default()
    };
    let store = &state.store;
    let blobs = &state.blobs;

    report.expired_uploads = if opts.dry_run {
        store.expired_pending_uploads().await?
    } else {
        let ids = store.expire_pending_uploads().await?;
        blobs.delete_uploads(&ids).await?;
        ids
    };

    let day_ago = fmt_time(chrono::Utc::now() - RESPONSE_AGE);
    report.expired_responses = if opts.dry_run {
        store.count_responses_before(&day_ago).await?
    } else {
        store.expire_responses(&day_ago).await?
    };

    let temp = blobs.stale_temp(opts.temp_age).await?;
    for path in &temp {
        if opts.dry_run || tokio::fs::remove_file(path).await.is_ok() {
            report.temp_files.push(path.display().to_string());
        }
    }

    let upload_age = Duration::from_secs(state.config.url_ttl_secs) + opts.blob_grace;
    for id in blobs.stale_uploads(upload_age).await? {
        if store.pending_upload(&id).await?.is_none() {
            report.staged_objects.push(id);
        }
    }
    if !opts.dry_run {
        blobs.delete_uploads(&report.staged_objects).await?;
    }

    let ago = |d: Duration| {
        fmt_time(chrono::Utc::now() - chrono::Duration::from_std(d).unwrap_or_default())
    };
    let kept_until = ago(super::exports::KEPT_FOR);
    report.expired_exports = if opts.dry_run {
        store.expired_export_archives(&kept_until).await?
    } else {
        let failed = store
            .fail_interrupted_export_jobs(&ago(super::exports::stale_after(state)))
            .await?;
        if failed > 0 {
            tracing::warn!(jobs = failed, "export jobs stopped moving; marked failed");
        }
        let hashes = store.expire_export_jobs(&kept_until).await?;
        free(state, hashes, &fmt_time(chrono::Utc::now()), false, false).await?
    };

    let stalled = store
        .stalled_deletions(&ago(opts.deletion_stalled_after))
        .await?;
    for id in stalled {
        if !opts.dry_run {
            finish_deletion(state, &id, HiddenDataset::default()).await?;
        }
        report.finished_deletions.push(id);
    }

    let cutoff = ago(opts.blob_grace);
    let orphans = store.orphan_blobs(&cutoff).await?;
    report.orphan_blobs = free(state, orphans, &cutoff, opts.dry_run, true).await?;

    if opts.scan_store {
        let stored = blobs.hashes_older_than(opts.blob_grace).await?;
        let recorded = store.recorded_blobs(&stored).await?;
        let unrecorded = stored
            .into_iter()
            .filter(|h| !recorded.contains(h))
            .collect();
        report.unrecorded_blobs = free(state, unrecorded, &cutoff, opts.dry_run, false).await?;
    }
    Ok(report)
}

/// Hashes freed in one transaction.
const FREED_AT_ONCE: usize = 500;

/// Frees each of `hashes` that is still unreferenced and untouched since `cutoff`; returns the
/// ones freed (all of them in a dry run). `recorded`: the hashes had records when listed, so
/// one without a record now was freed by another freer and is not returned again (see
/// [`crate::store::Store::free_blobs`]).
async fn free(
    state: &AppState,
    hashes: Vec<String>,
    cutoff: &str,
    dry_run: bool,
    recorded: bool,
) -> anyhow::Result<Vec<String>> {
    if dry_run {
        return Ok(hashes);
    }
    let mut freed = Vec::new();
    for chunk in hashes.chunks(FREED_AT_ONCE) {
        let blobs = &state.blobs;
        let done = state
            .store
            .free_blobs(chunk, cutoff, recorded, |taken| async move {
                blobs.delete_many(&taken).await?;
                Ok(())
            })
            .await?;
        freed.extend(done);
    }
    Ok(freed)
}

/// What deleting a dataset's images did with their bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FreedBytes {
    /// Blobs freed now.
    pub freed: u64,
    /// Blobs nothing uses any more but uploaded within the grace period: the sweep frees them
    /// once it has passed.
    pub freed_after_grace: u64,
}

/// Deletes the images of a hidden dataset (see [`crate::store::Store::hide_dataset`]) a
/// chunk at a time, freeing the bytes nothing else refers to after each chunk, then the
/// dataset's row; answers what became of the bytes (bytes other datasets still use are kept
/// and not counted). `hidden` holds what hiding it released. Safe to run twice at once, and
/// to run again after it stopped half-way.
pub async fn finish_deletion(
    state: &AppState,
    dataset_id: &str,
    hidden: HiddenDataset,
) -> anyhow::Result<FreedBytes> {
    let mut out = FreedBytes::default();
    for hash in &hidden.released_archives {
        release_archive(state, hash).await;
    }
    let mut released = hidden.released_blobs;
    loop {
        if !released.is_empty() {
            released.sort();
            released.dedup();
            let freed: HashSet<String> = release_freeing(state, released.clone())
                .await
                .into_iter()
                .collect();
            out.freed += freed.len() as u64;
            // Of the rest, those nothing uses wait for their grace period; the others are
            // shared (or were freed by another freer meanwhile).
            released.retain(|h| !freed.contains(h));
            if !released.is_empty() {
                out.freed_after_grace += state.store.unreferenced_blobs(&released).await?;
            }
        }
        released = state.store.reap_images(dataset_id, REAPED_AT_ONCE).await?;
        if released.is_empty() {
            break;
        }
    }
    state.store.drop_hidden_dataset(dataset_id).await?;
    Ok(out)
}

/// Called after rows referring to `hashes` were deleted: frees the bytes that nothing refers to
/// any more and whose grace period has passed. Returns how many were freed now; the rest are
/// left to the periodic sweep.
pub async fn release(state: &AppState, hashes: Vec<String>) -> usize {
    release_freeing(state, hashes).await.len()
}

/// [`release`], answering the hashes freed.
async fn release_freeing(state: &AppState, hashes: Vec<String>) -> Vec<String> {
    if hashes.is_empty() {
        return Vec::new();
    }
    let cutoff = fmt_time(
        chrono::Utc::now() - chrono::Duration::seconds(state.config.blob_grace_secs as i64),
    );
    let mut unique = hashes;
    unique.sort();
    unique.dedup();
    match free(state, unique, &cutoff, false, true).await {
        Ok(freed) => freed,
        Err(e) => {
            tracing::warn!(error = %e, "freeing released blobs failed");
            Vec::new()
        }
    }
}

/// Called after the export job referring to the archive `hash` was deleted (or never came to
/// refer to it): frees its bytes now unless another job refers to them. Archives are not
/// shared with images or uploads, so no grace period applies, as when the sweep expires them.
pub async fn release_archive(state: &AppState, hash: &str) {
    let now = fmt_time(chrono::Utc::now());
    if let Err(e) = free(state, vec![hash.to_string()], &now, false, false).await {
        tracing::warn!(error = %e, hash, "freeing an export archive failed; the sweep's store scan frees it later");
    }
}
