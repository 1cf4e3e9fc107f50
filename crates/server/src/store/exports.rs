//! Export jobs: what was asked, how far the background task got, and the archive it made.

use super::images::Spelling;
use super::{blob_hash, get, now, ImageFilter, Store, StoreError, StoreResult};
use sqlx::any::AnyRow;

/// An export job.
#[derive(Debug, Clone)]
pub struct ExportJobRow {
    /// Id (UUID).
    pub id: String,
    /// Owning organisation.
    pub org_id: String,
    /// The exported dataset.
    pub dataset_id: String,
    /// `coco`, `yolo`, `voc` or `pictograph`.
    pub format: String,
    /// Only images with this status, when set.
    pub status_filter: Option<String>,
    /// YOLO and VOC: polygons written as their boxes.
    pub polygons_as_boxes: bool,
    /// `queued`, `running`, `complete`, `failed` or `cancelled`.
    pub state: String,
    /// Images to export (known once running).
    pub images_total: i64,
    /// Images written so far.
    pub images_done: i64,
    /// Annotations read so far.
    pub annotations: i64,
    /// The warnings (JSON list), once complete.
    pub warnings: String,
    /// Why it failed.
    pub error: Option<String>,
    /// SHA-256 of the archive, once complete.
    pub archive_hash: Option<String>,
    /// Size of the archive, once complete.
    pub archive_size: Option<i64>,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

const COLUMNS: &str = "id, org_id, dataset_id, format, status_filter, polygons_as_boxes, state, \
     images_total, images_done, annotations, warnings, error, archive_hash, archive_size, \
     created_at, updated_at";

/// One image as an export job reads it: what the writers need, and its place in the
/// dataset's `(created_at, id)` order.
#[derive(Debug, Clone)]
pub struct ExportImage {
    /// Id (UUID).
    pub id: String,
    /// Virtual folder.
    pub folder: String,
    /// File name.
    pub filename: String,
    /// new, annotate, review or complete.
    pub status: String,
    /// SHA-256 of the stored bytes.
    pub blob_hash: String,
    /// Size of the stored bytes.
    pub file_size: i64,
    /// Pixel width.
    pub width: Option<i64>,
    /// Pixel height.
    pub height: Option<i64>,
    /// The annotation list (JSON).
    pub annotations: String,
    /// Creation time: with `id`, the position the next page starts after.
    pub created_at: String,
}

/// What [`Store::stop_export_job`] did.
#[derive(Debug, Clone)]
pub enum StoppedJob {
    /// The job was queued or running and is now `cancelled`; its task stops at its next check.
    Cancelled(Box<ExportJobRow>),
    /// The job had ended and is forgotten; its archive's hash, when no other job shares it.
    Deleted(Option<String>),
}

const STOP_REASON: &str = "cancelled on request";

impl ExportJobRow {
    fn from_row(r: &AnyRow) -> StoreResult<ExportJobRow> {
        Ok(ExportJobRow {
            id: get(r, "id")?,
            org_id: get(r, "org_id")?,
            dataset_id: get(r, "dataset_id")?,
            format: get(r, "format")?,
            status_filter: get(r, "status_filter")?,
            polygons_as_boxes: get::<i64>(r, "polygons_as_boxes")? != 0,
            state: get(r, "state")?,
            images_total: get(r, "images_total")?,
            images_done: get(r, "images_done")?,
            annotations: get(r, "annotations")?,
            warnings: get(r, "warnings")?,
            error: get(r, "error")?,
            archive_hash: get(r, "archive_hash")?,
            archive_size: get(r, "archive_size")?,
            created_at: get(r, "created_at")?,
            updated_at: get(r, "updated_at")?,
        })
    }
}

/// What [`Store::create_export_job_once`] did.
#[derive(Debug, Clone)]
pub enum NewExport {
    /// A new job was recorded.
    Created(ExportJobRow),
    /// An equal job is queued or running: this one.
    Joined(ExportJobRow),
    /// The organisation has this many jobs unfinished, the most it may have.
    Full(usize),
}

/// The organisation's jobs that are queued or running, oldest first, read on `conn`.
async fn unfinished_on(
    conn: &mut sqlx::AnyConnection,
    org_id: &str,
) -> StoreResult<Vec<ExportJobRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM export_jobs WHERE org_id = $1 \
         AND state IN ('queued', 'running') ORDER BY created_at, id"
    ));
    let rows = sqlx::query(sql).bind(org_id).fetch_all(&mut *conn).await?;
    rows.iter().map(ExportJobRow::from_row).collect()
}

/// Inserts a queued export job on `conn`.
async fn insert_export_job(
    conn: &mut sqlx::AnyConnection,
    org_id: &str,
    dataset_id: &str,
    format: &str,
    status_filter: Option<&str>,
    polygons_as_boxes: bool,
) -> StoreResult<ExportJobRow> {
    let id = uuid::Uuid::new_v4().to_string();
    let at = now();
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO export_jobs (id, org_id, dataset_id, format, status_filter, \
         polygons_as_boxes, state, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $7) RETURNING {COLUMNS}"
    ));
    let row = sqlx::query(sql)
        .bind(&id)
        .bind(org_id)
        .bind(dataset_id)
        .bind(format)
        .bind(status_filter)
        .bind(i64::from(polygons_as_boxes))
        .bind(&at)
        .fetch_one(&mut *conn)
        .await?;
    ExportJobRow::from_row(&row)
}

impl Store {
    /// Records a queued export job.
    pub async fn create_export_job(
        &self,
        org_id: &str,
        dataset_id: &str,
        format: &str,
        status_filter: Option<&str>,
        polygons_as_boxes: bool,
    ) -> StoreResult<ExportJobRow> {
        let mut conn = self.write.acquire().await?;
        insert_export_job(
            &mut conn,
            org_id,
            dataset_id,
            format,
            status_filter,
            polygons_as_boxes,
        )
        .await
    }

    /// Records a queued export job unless the organisation has an equal one queued or
    /// running (answered instead) or `most` unfinished ones already; decided and recorded in
    /// one transaction that holds the organisation's lock, so requests at once, on any
    /// server, make one job and never pass the cap.
    pub async fn create_export_job_once(
        &self,
        org_id: &str,
        dataset_id: &str,
        format: &str,
        status_filter: Option<&str>,
        polygons_as_boxes: bool,
        most: usize,
    ) -> StoreResult<NewExport> {
        let mut tx = self.tx().await?;
        if self.dialect == super::Dialect::Postgres {
            sqlx::query("SELECT id FROM organizations WHERE id = $1 FOR UPDATE")
                .bind(org_id)
                .fetch_optional(&mut *tx)
                .await?;
        }
        let unfinished = unfinished_on(&mut tx, org_id).await?;
        if let Some(same) = unfinished.iter().find(|j| {
            j.dataset_id == dataset_id
                && j.format == format
                && j.status_filter.as_deref() == status_filter
                && j.polygons_as_boxes == polygons_as_boxes
        }) {
            return Ok(NewExport::Joined(same.clone()));
        }
        if unfinished.len() >= most {
            return Ok(NewExport::Full(unfinished.len()));
        }
        let row = insert_export_job(
            &mut tx,
            org_id,
            dataset_id,
            format,
            status_filter,
            polygons_as_boxes,
        )
        .await?;
        tx.commit().await?;
        Ok(NewExport::Created(row))
    }

    /// The job with this id, if it belongs to the organisation.
    pub async fn export_job(&self, org_id: &str, id: &str) -> StoreResult<Option<ExportJobRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM export_jobs WHERE id = $1 AND org_id = $2"
        ));
        let row = sqlx::query(sql)
            .bind(id)
            .bind(org_id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(ExportJobRow::from_row).transpose()
    }

    /// The job with this id, whoever owns it (for signed downloads).
    pub async fn export_job_any(&self, id: &str) -> StoreResult<Option<ExportJobRow>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM export_jobs WHERE id = $1"));
        let row = sqlx::query(sql).bind(id).fetch_optional(&self.read).await?;
        row.as_ref().map(ExportJobRow::from_row).transpose()
    }

    /// The organisation's jobs that are queued or running, oldest first.
    pub async fn unfinished_export_jobs(&self, org_id: &str) -> StoreResult<Vec<ExportJobRow>> {
        let mut conn = self.write.acquire().await?;
        unfinished_on(&mut conn, org_id).await
    }

    /// The dataset's jobs, newest first, with how many there are in all.
    pub async fn list_export_jobs(
        &self,
        org_id: &str,
        dataset_id: &str,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<ExportJobRow>, i64)> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM export_jobs WHERE dataset_id = $1 AND org_id = $2 \
             ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
        ));
        let rows = sqlx::query(sql)
            .bind(dataset_id)
            .bind(org_id)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.read)
            .await?;
        let total = sqlx::query(
            "SELECT COUNT(*) AS n FROM export_jobs WHERE dataset_id = $1 AND org_id = $2",
        )
        .bind(dataset_id)
        .bind(org_id)
        .fetch_one(&self.read)
        .await?;
        let list = rows
            .iter()
            .map(ExportJobRow::from_row)
            .collect::<StoreResult<_>>()?;
        Ok((list, get(&total, "n")?))
    }

    /// The next `limit` live images of the dataset (only those with `status`, when set) in
    /// `(created_at, id)` order, starting after the image at `after` (from the start when
    /// `None`). Paging by position rather than by count means images deleted or added between
    /// pages never make a reader skip or repeat one that is still there.
    pub async fn export_images_after(
        &self,
        dataset_id: &str,
        status: Option<&str>,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> StoreResult<Vec<ExportImage>> {
        let filter = ImageFilter {
            status: status.map(str::to_string),
            ..ImageFilter::default()
        };
        let spelling = Spelling::default();
        let (condition, binds) = filter.condition(dataset_id, after, &spelling);
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT id, folder, filename, status, blob_hash, file_size, width, height, \
             a.annotations, annotation_count, created_at \
             FROM images LEFT JOIN image_annotations a ON a.image_id = id \
             WHERE {condition} ORDER BY created_at, id LIMIT {}",
            limit.max(0)
        ));
        let mut q = sqlx::query(sql);
        for b in &binds {
            q = q.bind(b.as_ref());
        }
        let rows = q.fetch_all(&self.read).await?;
        rows.iter()
            .map(|r| {
                let count: i64 = get(r, "annotation_count")?;
                Ok(ExportImage {
                    id: get(r, "id")?,
                    folder: get(r, "folder")?,
                    filename: get(r, "filename")?,
                    status: get(r, "status")?,
                    blob_hash: blob_hash(r)?,
                    file_size: get(r, "file_size")?,
                    width: get(r, "width")?,
                    height: get(r, "height")?,
                    annotations: if count > 0 {
                        get(r, "annotations")?
                    } else {
                        "[]".to_string()
                    },
                    created_at: super::time_of(get(r, "created_at")?),
                })
            })
            .collect()
    }

    /// Records that a queued or running job's task is alive, so no server's sweep takes it
    /// for one a stopped server left.
    pub async fn touch_export_job(&self, id: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE export_jobs SET updated_at = $2 WHERE id = $1 AND state IN ('queued', 'running')",
        )
        .bind(id)
        .bind(now())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Marks a job running, or moves its progress on. Answers false when the job is no longer
    /// queued or running (cancelled, or gone): its task should stop.
    pub async fn export_progress(
        &self,
        id: &str,
        total: i64,
        done: i64,
        annotations: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE export_jobs SET state = 'running', images_total = $2, images_done = $3, \
             annotations = $4, updated_at = $5 WHERE id = $1 AND state IN ('queued', 'running')",
        )
        .bind(id)
        .bind(total)
        .bind(done)
        .bind(annotations)
        .bind(now())
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Marks a running job complete with its archive and warnings. Answers false when the job
    /// was cancelled or deleted meanwhile (the archive is then not referred to by it).
    /// Records `hash` as the running job's archive before its bytes are stored, so no
    /// freeing of equal bytes (another job's, deleted meanwhile) takes them from under it.
    /// False when the job is no longer running (nothing recorded).
    pub async fn claim_export_archive(&self, id: &str, hash: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE export_jobs SET archive_hash = $2 WHERE id = $1 AND state = 'running'",
        )
        .bind(id)
        .bind(hash)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Forgets the archive of a job that stopped before it completed, so its bytes can be
    /// freed.
    pub async fn forget_export_archive(&self, id: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE export_jobs SET archive_hash = NULL \
             WHERE id = $1 AND state <> 'complete'",
        )
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn finish_export_job(
        &self,
        id: &str,
        hash: &str,
        size: i64,
        warnings: &str,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE export_jobs SET state = 'complete', archive_hash = $2, archive_size = $3, \
             warnings = $4, images_total = images_done, updated_at = $5 \
             WHERE id = $1 AND state = 'running'",
        )
        .bind(id)
        .bind(hash)
        .bind(size)
        .bind(warnings)
        .bind(now())
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Marks a queued or running job failed (a cancelled one stays cancelled).
    pub async fn fail_export_job(&self, id: &str, error: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE export_jobs SET state = 'failed', error = $2, updated_at = $3 \
             WHERE id = $1 AND state IN ('queued', 'running')",
        )
        .bind(id)
        .bind(error)
        .bind(now())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Stops the organisation's job `id` on the dataset: a queued or running one is marked
    /// `cancelled` (its task notices and stops), an ended one is deleted. `None` when there
    /// is no such job.
    pub async fn stop_export_job(
        &self,
        org_id: &str,
        dataset_id: &str,
        id: &str,
    ) -> StoreResult<Option<StoppedJob>> {
        // A job can end between the two statements; a second round then deletes it.
        for _ in 0..3 {
            let sql = sqlx::AssertSqlSafe(format!(
                "UPDATE export_jobs SET state = 'cancelled', error = $4, updated_at = $5 \
                 WHERE id = $1 AND org_id = $2 AND dataset_id = $3 \
                 AND state IN ('queued', 'running') RETURNING {COLUMNS}"
            ));
            let row = sqlx::query(sql)
                .bind(id)
                .bind(org_id)
                .bind(dataset_id)
                .bind(STOP_REASON)
                .bind(now())
                .fetch_optional(&self.write)
                .await?;
            if let Some(row) = row {
                return Ok(Some(StoppedJob::Cancelled(Box::new(
                    ExportJobRow::from_row(&row)?,
                ))));
            }
            let row = sqlx::query(
                "DELETE FROM export_jobs WHERE id = $1 AND org_id = $2 AND dataset_id = $3 \
                 AND state NOT IN ('queued', 'running') RETURNING archive_hash",
            )
            .bind(id)
            .bind(org_id)
            .bind(dataset_id)
            .fetch_optional(&self.write)
            .await?;
            if let Some(row) = row {
                let hash = match get::<Option<String>>(&row, "archive_hash")? {
                    Some(h) if !self.export_archive_shared(&h).await? => Some(h),
                    _ => None,
                };
                return Ok(Some(StoppedJob::Deleted(hash)));
            }
            if self.export_job(org_id, id).await?.is_none() {
                return Ok(None);
            }
        }
        Err(StoreError::Conflict)
    }

    /// Whether any job refers to the archive `hash`.
    async fn export_archive_shared(&self, hash: &str) -> StoreResult<bool> {
        let still = sqlx::query("SELECT 1 AS one FROM export_jobs WHERE archive_hash = $1")
            .bind(hash)
            .fetch_optional(&self.write)
            .await?;
        Ok(still.is_some())
    }

    /// Archive hashes of complete jobs, in order, a page at a time (for copying their bytes).
    pub async fn export_archive_hashes(&self, after: &str, limit: i64) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT DISTINCT archive_hash FROM export_jobs \
             WHERE archive_hash IS NOT NULL AND archive_hash > $1 \
             ORDER BY archive_hash LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|r| get(r, "archive_hash")).collect()
    }

    /// Fails the jobs a stopped process left queued or running (their task is gone).
    /// Cancelled jobs stay cancelled.
    pub async fn fail_interrupted_export_jobs(&self, before: &str) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE export_jobs SET state = 'failed', \
             error = 'interrupted: the server stopped during the export; start a new one', \
             updated_at = $2 WHERE state IN ('queued', 'running') AND updated_at < $1",
        )
        .bind(before)
        .bind(now())
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }

    /// Forgets jobs last changed before `before`; answers the archive hashes no remaining
    /// job refers to (their bytes can be freed).
    pub async fn expire_export_jobs(&self, before: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "DELETE FROM export_jobs WHERE updated_at < $1 \
             AND state IN ('complete', 'failed', 'cancelled') RETURNING archive_hash",
        )
        .bind(before)
        .fetch_all(&self.write)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let Some(hash) = get::<Option<String>>(r, "archive_hash")? else {
                continue;
            };
            if !self.export_archive_shared(&hash).await? && !out.contains(&hash) {
                out.push(hash);
            }
        }
        Ok(out)
    }

    /// The archive hashes [`Store::expire_export_jobs`] would forget now (a dry run).
    pub async fn expired_export_archives(&self, before: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT DISTINCT archive_hash FROM export_jobs WHERE updated_at < $1 \
             AND state IN ('complete', 'failed', 'cancelled') AND archive_hash IS NOT NULL",
        )
        .bind(before)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|r| get(r, "archive_hash")).collect()
    }
}
