//! Datasets (the client's "projects" on the write paths).

use super::{blob_hash, dataset_seq, get, now, FromCells, Store, StoreError, StoreResult};
use futures::{StreamExt, TryStreamExt};
use sqlx::AssertSqlSafe;
use std::sync::LazyLock;

/// The organisation that holds datasets while they are being deleted. No key belongs to it:
/// keys are made for organisations by trimmed names, and its name starts with a space.
pub const DELETING_ORG: &str = "datasets-being-deleted";
const DELETING_ORG_NAME: &str = " datasets being deleted";

/// What hiding a dataset released at once: the bytes of its pending uploads and export
/// archives, to be freed when nothing else refers to them.
#[derive(Debug, Default)]
pub struct HiddenDataset {
    /// Blob hashes of the pending uploads deleted with it.
    pub released_blobs: Vec<String>,
    /// Archive hashes of the export jobs deleted with it.
    pub released_archives: Vec<String>,
}

/// A dataset's own row, without its counters: what resolving a dataset needs for anything
/// but showing it (read from `datasets` alone; what it counts is [`DatasetCounts`]).
#[derive(Debug, Clone)]
pub struct DatasetRow {
    /// Id (UUID).
    pub id: String,
    /// Owning organisation.
    pub org_id: String,
    /// Name, unique within the organisation.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Classes as stored (a JSON array of objects).
    pub classes: serde_json::Value,
    /// Annotation types (a JSON array of strings).
    pub annotation_types: serde_json::Value,
    /// Creation time.
    pub created_at: String,
    /// Last change to the dataset row.
    pub updated_at: String,
}

/// What a dataset counts of its images. Read through the view `counted_datasets`, which on
/// PostgreSQL adds the changes not yet folded into the dataset's row: reading them costs more
/// than the row, and most requests that name a dataset show no counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DatasetCounts {
    /// Live images.
    pub image_count: i64,
    /// Live images whose status is new.
    pub new_image_count: i64,
    /// Live images whose status is annotate.
    pub annotate_image_count: i64,
    /// Live images whose status is review.
    pub review_image_count: i64,
    /// Live images whose status is complete.
    pub completed_image_count: i64,
    /// Archived images.
    pub archived_images: i64,
    /// Bytes of live images.
    pub total_size: i64,
    /// Annotations on live images.
    pub annotation_count: i64,
}

impl FromCells for DatasetRow {
    fn from_row<R: super::inline::Cells>(r: &R) -> StoreResult<DatasetRow> {
        Ok(DatasetRow {
            id: get(r, "id")?,
            org_id: get(r, "org_id")?,
            name: get(r, "name")?,
            description: get(r, "description")?,
            classes: serde_json::from_str(&get::<String>(r, "classes")?)?,
            annotation_types: serde_json::from_str(&get::<String>(r, "annotation_types")?)?,
            created_at: get(r, "created_at")?,
            updated_at: get(r, "updated_at")?,
        })
    }
}

impl FromCells for DatasetCounts {
    fn from_row<R: super::inline::Cells>(r: &R) -> StoreResult<DatasetCounts> {
        Ok(DatasetCounts {
            image_count: get(r, "image_count")?,
            new_image_count: get(r, "new_image_count")?,
            annotate_image_count: get(r, "annotate_image_count")?,
            review_image_count: get(r, "review_image_count")?,
            completed_image_count: get(r, "completed_image_count")?,
            archived_images: get(r, "archived_images")?,
            total_size: get(r, "total_size")?,
            annotation_count: get(r, "annotation_count")?,
        })
    }
}

impl DatasetRow {
    /// The class names, in order.
    pub fn class_names(&self) -> Vec<String> {
        self.classes
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.get("name").and_then(|n| n.as_str()).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Changes to a dataset; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct DatasetPatch {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<Option<String>>,
    /// New class list (replaces the old one).
    pub classes: Option<serde_json::Value>,
    /// New annotation types.
    pub annotation_types: Option<serde_json::Value>,
}

/// The counters a dataset keeps of its images.
pub(super) const COUNTERS: [&str; 8] = [
    "image_count",
    "new_image_count",
    "annotate_image_count",
    "review_image_count",
    "completed_image_count",
    "archived_images",
    "total_size",
    "annotation_count",
];

/// Key of the PostgreSQL advisory lock a fold of counter changes runs under.
const FOLD_LOCK: i64 = 0x7069_6374_6f66_6c64;

/// The columns of [`DatasetRow`].
const COLUMNS: &str =
    "id, org_id, name, description, classes, annotation_types, created_at, updated_at";

impl Store {
    /// One page of the organisation's datasets, oldest first.
    pub async fn list_datasets(
        &self,
        org_id: &str,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<(DatasetRow, DatasetCounts)>, i64)> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS}, {} FROM counted_datasets WHERE org_id = $1 \
             ORDER BY created_at, id LIMIT $2 OFFSET $3",
            COUNTERS.join(", ")
        ));
        let rows = sqlx::query(sql)
            .bind(org_id)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.read)
            .await?;
        let total = sqlx::query("SELECT COUNT(*) AS n FROM datasets WHERE org_id = $1")
            .bind(org_id)
            .fetch_one(&self.read)
            .await?;
        let list = rows
            .iter()
            .map(|r| Ok((DatasetRow::from_row(r)?, DatasetCounts::from_row(r)?)))
            .collect::<StoreResult<_>>()?;
        Ok((list, get(&total, "n")?))
    }

    /// The dataset called `name` (case-sensitive) in the organisation.
    pub async fn dataset_by_name(
        &self,
        org_id: &str,
        name: &str,
    ) -> StoreResult<Option<DatasetRow>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!("SELECT {COLUMNS} FROM datasets WHERE org_id = $1 AND name = $2")
        });
        self.read_first(&SQL, &[org_id, name]).await
    }

    /// The dataset with this id in the organisation.
    pub async fn dataset_by_id(&self, org_id: &str, id: &str) -> StoreResult<Option<DatasetRow>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!("SELECT {COLUMNS} FROM datasets WHERE org_id = $1 AND id = $2")
        });
        self.read_first(&SQL, &[org_id, id]).await
    }

    /// What the dataset with this id counts of its images; `None` once it is gone.
    pub async fn dataset_counts(&self, id: &str) -> StoreResult<Option<DatasetCounts>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM counted_datasets WHERE id = $1",
                COUNTERS.join(", ")
            )
        });
        self.read_first(&SQL, &[id]).await
    }

    /// Creates a dataset; `Conflict` when the name is taken in the organisation.
    pub async fn create_dataset(
        &self,
        org_id: &str,
        name: &str,
        description: Option<&str>,
        classes: &serde_json::Value,
        annotation_types: &serde_json::Value,
    ) -> StoreResult<DatasetRow> {
        let id = uuid::Uuid::new_v4().to_string();
        let t = now();
        // In a transaction of its own, so that a keyed request records it applied.
        let mut tx = self.tx().await?;
        sqlx::query(
            "INSERT INTO datasets (id, org_id, name, description, classes, annotation_types, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(&id)
        .bind(org_id)
        .bind(name)
        .bind(description)
        .bind(classes.to_string())
        .bind(annotation_types.to_string())
        .bind(&t)
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        self.dataset_by_id(org_id, &id)
            .await?
            .ok_or(StoreError::Db(sqlx::Error::RowNotFound))
    }

    /// Applies a patch; `Conflict` when the new name is taken.
    pub async fn update_dataset(
        &self,
        org_id: &str,
        id: &str,
        patch: &DatasetPatch,
    ) -> StoreResult<Option<DatasetRow>> {
        sqlx::query(
            "UPDATE datasets SET \
               name = COALESCE($3, name), \
               description = CASE WHEN $4 = 1 THEN $5 ELSE description END, \
               classes = COALESCE($6, classes), \
               annotation_types = COALESCE($7, annotation_types), \
               updated_at = $8 \
             WHERE org_id = $1 AND id = $2",
        )
        .bind(org_id)
        .bind(id)
        .bind(patch.name.as_deref())
        .bind(i64::from(patch.description.is_some()))
        .bind(patch.description.clone().flatten())
        .bind(patch.classes.as_ref().map(|c| c.to_string()))
        .bind(patch.annotation_types.as_ref().map(|c| c.to_string()))
        .bind(now())
        .execute(&self.write)
        .await?;
        self.dataset_by_id(org_id, id).await
    }

    /// Hides a dataset of the organisation that is to be deleted, in one short transaction:
    /// the dataset moves to the organisation [`DELETING_ORG`], named by its id, so that no key
    /// reaches it or its images any more and its name is free at once; its pending uploads and
    /// export jobs are deleted. The images stay until [`Store::reap_images`] deletes them a
    /// chunk at a time, so that deleting a large dataset never holds the database's write lock
    /// for long. `None` when the organisation has no such dataset (any more).
    pub async fn hide_dataset(&self, org_id: &str, id: &str) -> StoreResult<Option<HiddenDataset>> {
        let mut tx = self.tx().await?;
        sqlx::query(
            "INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(DELETING_ORG)
        .bind(DELETING_ORG_NAME)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        let moved = sqlx::query(
            "UPDATE datasets SET org_id = $3, name = id, updated_at = $4 \
             WHERE org_id = $1 AND id = $2",
        )
        .bind(org_id)
        .bind(id)
        .bind(DELETING_ORG)
        .bind(now())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let uploads =
            sqlx::query("DELETE FROM pending_uploads WHERE dataset_id = $1 RETURNING blob_hash")
                .bind(id)
                .fetch(&mut *tx)
                .map(|r| get::<Option<String>>(&r?, "blob_hash"))
                .try_collect::<Vec<_>>()
                .await?;
        let archives =
            sqlx::query("DELETE FROM export_jobs WHERE dataset_id = $1 RETURNING archive_hash")
                .bind(id)
                .fetch(&mut *tx)
                .map(|r| get::<Option<String>>(&r?, "archive_hash"))
                .try_collect::<Vec<_>>()
                .await?;
        self.commit_changes(tx).await?;
        Ok(Some(HiddenDataset {
            released_blobs: uploads.into_iter().flatten().collect(),
            released_archives: archives.into_iter().flatten().collect(),
        }))
    }

    /// Deletes up to `limit` images of a hidden dataset (see [`Store::hide_dataset`]) in one
    /// transaction and answers the blob hashes they referred to; none once it has no images
    /// left, or when the dataset is not hidden (a live dataset is never touched). Each call
    /// also stamps the dataset's `updated_at`, by which the upkeep sweep tells a deletion
    /// under way from one that a stopped server left unfinished.
    pub async fn reap_images(&self, dataset_id: &str, limit: i64) -> StoreResult<Vec<String>> {
        let mut tx = self.tx().await?;
        self.lock_dataset(&mut tx, dataset_id).await?;
        let stamped =
            sqlx::query("UPDATE datasets SET updated_at = $3 WHERE id = $1 AND org_id = $2")
                .bind(dataset_id)
                .bind(DELETING_ORG)
                .bind(now())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if stamped == 0 {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "DELETE FROM images WHERE id IN \
                 (SELECT id FROM images WHERE dataset_seq = {} LIMIT $2) RETURNING blob_hash",
                dataset_seq(1)
            )
        });
        let hashes = sqlx::query(AssertSqlSafe(SQL.as_str()))
            .bind(dataset_id)
            .bind(limit)
            .fetch(&mut *tx)
            .map(|r| blob_hash(&r?))
            .try_collect::<Vec<_>>()
            .await?;
        self.commit_changes(tx).await?;
        Ok(hashes)
    }

    /// Deletes the row of a hidden dataset whose images [`Store::reap_images`] has deleted
    /// (with any that came in since, through writes that found the dataset before it was
    /// hidden).
    pub async fn drop_hidden_dataset(&self, dataset_id: &str) -> StoreResult<()> {
        let mut tx = self.tx().await?;
        self.lock_dataset(&mut tx, dataset_id).await?;
        sqlx::query("DELETE FROM datasets WHERE id = $1 AND org_id = $2")
            .bind(dataset_id)
            .bind(DELETING_ORG)
            .execute(&mut *tx)
            .await?;
        self.commit_changes(tx).await
    }

    /// Hidden datasets (see [`Store::hide_dataset`]) whose deletion made no progress since
    /// `before`: left by a server that stopped while deleting them.
    pub async fn stalled_deletions(&self, before: &str) -> StoreResult<Vec<String>> {
        sqlx::query("SELECT id FROM datasets WHERE org_id = $1 AND updated_at < $2 ORDER BY id")
            .bind(DELETING_ORG)
            .bind(before)
            .fetch(&self.read)
            .map(|r| get::<String>(&r?, "id"))
            .try_collect()
            .await
    }

    /// How many folders the dataset's images (archived ones too) are in.
    pub async fn count_folders(&self, dataset_id: &str) -> StoreResult<i64> {
        static COUNT_FOLDERS: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT COUNT(DISTINCT folder) AS n FROM images WHERE dataset_seq = {}",
                dataset_seq(1)
            )
        });
        let row = sqlx::query(AssertSqlSafe(COUNT_FOLDERS.as_str()))
            .bind(dataset_id)
            .fetch_one(&self.read)
            .await?;
        get(&row, "n")
    }
}

/// Adds the counter changes the images' triggers wrote (PostgreSQL keeps them as rows of
/// `dataset_counter_changes`, see its migration 0018) into their datasets' rows and deletes
/// them, in one transaction, so readers see the same totals before and after. Changes of a
/// dataset that is gone are dropped. One fold runs at a time across servers: another one
/// meanwhile does nothing. Adds the number of changes it folded to `folded`.
pub(super) async fn fold_counter_changes(
    pool: &sqlx::AnyPool,
    folded: &std::sync::atomic::AtomicU64,
) -> StoreResult<()> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        let sums: Vec<String> = COUNTERS
            .iter()
            .map(|c| format!("SUM({c}) AS {c}"))
            .collect();
        let adds: Vec<String> = COUNTERS
            .iter()
            .map(|c| format!("{c} = d.{c} + s.{c}"))
            .collect();
        format!(
            "WITH folded AS (DELETE FROM dataset_counter_changes RETURNING *), \
             sums AS (SELECT dataset_id, {} FROM folded GROUP BY dataset_id), \
             added AS (UPDATE datasets d SET {} FROM sums s WHERE d.id = s.dataset_id) \
             SELECT COUNT(*) AS n FROM folded",
            sums.join(", "),
            adds.join(", ")
        )
    });
    let mut tx = pool.begin().await?;
    let turn = sqlx::query("SELECT pg_try_advisory_xact_lock($1) AS turn")
        .bind(FOLD_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    if !get::<bool>(&turn, "turn")? {
        return Ok(());
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(SQL.as_str()))
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    let n = get::<i64>(&row, "n")? as u64;
    folded.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}
