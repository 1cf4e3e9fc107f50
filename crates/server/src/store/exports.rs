//! Export jobs: what was asked, how far the background task got, and the archive it made.

use super::{get, now, Store, StoreResult};
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
    /// `queued`, `running`, `complete` or `failed`.
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
            .fetch_one(&self.write)
            .await?;
        ExportJobRow::from_row(&row)
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

    /// Marks a job running, or moves its progress on.
    pub async fn export_progress(
        &self,
        id: &str,
        total: i64,
        done: i64,
        annotations: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE export_jobs SET state = 'running', images_total = $2, images_done = $3, \
             annotations = $4, updated_at = $5 WHERE id = $1",
        )
        .bind(id)
        .bind(total)
        .bind(done)
        .bind(annotations)
        .bind(now())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Marks a job complete with its archive and warnings.
    pub async fn finish_export_job(
        &self,
        id: &str,
        hash: &str,
        size: i64,
        warnings: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE export_jobs SET state = 'complete', archive_hash = $2, archive_size = $3, \
             warnings = $4, images_total = images_done, updated_at = $5 WHERE id = $1",
        )
        .bind(id)
        .bind(hash)
        .bind(size)
        .bind(warnings)
        .bind(now())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Marks a job failed.
    pub async fn fail_export_job(&self, id: &str, error: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE export_jobs SET state = 'failed', error = $2, updated_at = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(error)
        .bind(now())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Fails the jobs a stopped process left queued or running (their task is gone).
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
            "DELETE FROM export_jobs WHERE updated_at < $1 AND state IN ('complete', 'failed') \
             RETURNING archive_hash",
        )
        .bind(before)
        .fetch_all(&self.write)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let Some(hash) = get::<Option<String>>(r, "archive_hash")? else {
                continue;
            };
            let still = sqlx::query("SELECT 1 AS one FROM export_jobs WHERE archive_hash = $1")
                .bind(&hash)
                .fetch_optional(&self.write)
                .await?;
            if still.is_none() && !out.contains(&hash) {
                out.push(hash);
            }
        }
        Ok(out)
    }

    /// The archive hashes [`Store::expire_export_jobs`] would forget now (a dry run).
    pub async fn expired_export_archives(&self, before: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT DISTINCT archive_hash FROM export_jobs WHERE updated_at < $1 \
             AND state IN ('complete', 'failed') AND archive_hash IS NOT NULL",
        )
        .bind(before)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|r| get(r, "archive_hash")).collect()
    }
}
