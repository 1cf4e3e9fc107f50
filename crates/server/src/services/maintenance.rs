//! Background upkeep: expired uploads, stored responses, bytes nothing refers to, and export
//! jobs whose task is gone.

use crate::store::fmt_time;
use crate::AppState;
use std::time::Duration;

/// How often the sweep runs.
const PERIOD: Duration = Duration::from_secs(60);

/// Runs the sweep forever.
pub async fn run(state: AppState) {
    let mut tick = tokio::time::interval(PERIOD);
    loop {
        tick.tick().await;
        if let Err(e) = sweep(&state).await {
            tracing::warn!(error = %e, "maintenance sweep failed");
        }
    }
}

/// One pass: drop expired pending uploads and day-old idempotent responses, free orphan bytes.
pub async fn sweep(state: &AppState) -> anyhow::Result<usize> {
    for id in state.store.expire_pending_uploads().await? {
        state.blobs.delete_upload(&id).await?;
    }
    let day_ago = chrono::Utc::now() - chrono::Duration::hours(24);
    state.store.expire_responses(&fmt_time(day_ago)).await?;
    state
        .blobs
        .clear_stale_temp(Duration::from_secs(3600))
        .await?;
    let upload_age = Duration::from_secs(state.config.url_ttl_secs + state.config.blob_grace_secs);
    for id in state.blobs.stale_uploads(upload_age).await? {
        if state.store.pending_upload(&id).await?.is_none() {
            state.blobs.delete_upload(&id).await?;
        }
    }
    let stale = chrono::Utc::now()
        - chrono::Duration::from_std(super::exports::STALE_AFTER).unwrap_or_default();
    let failed = state
        .store
        .fail_interrupted_export_jobs(&fmt_time(stale))
        .await?;
    if failed > 0 {
        tracing::warn!(jobs = failed, "export jobs stopped moving; marked failed");
    }
    let expired = chrono::Utc::now()
        - chrono::Duration::from_std(super::exports::KEPT_FOR).unwrap_or_default();
    for hash in state.store.expire_export_jobs(&fmt_time(expired)).await? {
        state.blobs.delete(&hash).await?;
    }
    free_orphans(state).await
}

async fn free_orphans(state: &AppState) -> anyhow::Result<usize> {
    let cutoff =
        chrono::Utc::now() - chrono::Duration::seconds(state.config.blob_grace_secs as i64);
    let hashes = state.store.take_orphan_blobs(&fmt_time(cutoff)).await?;
    for h in &hashes {
        state.blobs.delete(h).await?;
    }
    Ok(hashes.len())
}

/// Called after rows referring to `hashes` were deleted: frees the bytes that nothing refers to
/// any more and whose grace period has passed. Returns how many were freed now; the rest are
/// left to the periodic sweep.
pub async fn release(state: &AppState, hashes: Vec<String>) -> usize {
    if hashes.is_empty() {
        return 0;
    }
    match free_orphans(state).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "freeing released blobs failed");
            0
        }
    }
}
