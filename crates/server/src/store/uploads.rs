//! Pending uploads, blobs and stored idempotent responses.

use super::{get, json_list, now, Col, Dialect, FromCells, Store, StoreError, StoreResult};
use futures::TryStreamExt;
use sqlx::AssertSqlSafe;
use std::collections::HashSet;

/// A signed upload URL that was handed out, and what its PUT stored.
#[derive(Debug, Clone)]
pub struct PendingUpload {
    /// Id, the opaque part of the URL.
    pub id: String,
    /// Organisation of the key that asked for it.
    pub org_id: String,
    /// Target dataset.
    pub dataset_id: String,
    /// Target folder.
    pub folder: String,
    /// Target file name.
    pub filename: String,
    /// Content type the URL was signed for.
    pub content_type: String,
    /// When the URL stops working.
    pub expires_at: String,
    /// Bytes stored by the PUT, once it happened.
    pub blob_hash: Option<String>,
    /// Size of the stored bytes.
    pub size: Option<i64>,
    /// MIME type of the stored bytes (PNG after a HEIC conversion).
    pub mime: Option<String>,
    /// Pixel width.
    pub width: Option<i64>,
    /// Pixel height.
    pub height: Option<i64>,
}

impl FromCells for PendingUpload {
    fn from_row<R: super::inline::Cells>(r: &R) -> StoreResult<PendingUpload> {
        Ok(PendingUpload {
            id: get(r, "id")?,
            org_id: get(r, "org_id")?,
            dataset_id: get(r, "dataset_id")?,
            folder: get(r, "folder")?,
            filename: get(r, "filename")?,
            content_type: get(r, "content_type")?,
            expires_at: get(r, "expires_at")?,
            blob_hash: get(r, "blob_hash")?,
            size: get(r, "size")?,
            mime: get(r, "mime")?,
            width: get(r, "width")?,
            height: get(r, "height")?,
        })
    }
}

/// The read of pending uploads' columns, for a `WHERE` to follow.
pub(super) const PENDING_SELECT: &str = "SELECT id, org_id, dataset_id, folder, filename, \
     content_type, expires_at, blob_hash, size, mime, width, height FROM pending_uploads";

/// Metadata of stored bytes.
#[derive(Debug, Clone)]
pub struct BlobInfo {
    /// SHA-256, hex.
    pub hash: String,
    /// Size in bytes.
    pub size: i64,
    /// MIME type.
    pub mime: String,
    /// Pixel width.
    pub width: Option<i64>,
    /// Pixel height.
    pub height: Option<i64>,
}

/// A stored response to a write.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    /// Method of the first request.
    pub method: String,
    /// Path of the first request.
    pub path: String,
    /// Status answered.
    pub status: u16,
    /// Body answered; empty when it was too large to keep (`body_kept` false).
    pub body: String,
    /// Whether `body` is the body answered.
    pub body_kept: bool,
    /// SHA-256 (hex) of the first request's body; none for responses stored before it was.
    pub request_hash: Option<String>,
    /// When the key was first used, or (while its request runs) last renewed.
    pub created_at: String,
    /// Whether the request's write was applied (recorded in its own transaction).
    pub applied: bool,
}

impl StoredResponse {
    /// Whether the first request with this key is still running: no answer yet.
    pub fn pending(&self) -> bool {
        self.status == 0
    }
}

impl FromCells for StoredResponse {
    fn from_row<R: super::inline::Cells>(r: &R) -> StoreResult<StoredResponse> {
        Ok(StoredResponse {
            method: get(r, "method")?,
            path: get(r, "path")?,
            status: get::<i64>(r, "status")? as u16,
            body: get(r, "body")?,
            body_kept: get::<i64>(r, "body_kept")? != 0,
            request_hash: get(r, "request_hash")?,
            created_at: get(r, "created_at")?,
            applied: get::<i64>(r, "applied")? != 0,
        })
    }
}

/// An attachment waiting in the group-commit queue, with the channel its outcome goes to.
pub(super) struct Attach {
    upload_id: String,
    blob: BlobInfo,
    done: tokio::sync::oneshot::Sender<StoreResult<()>>,
}

/// The group commit of blob attachments: the queue, and the turn of the one task that
/// commits at a time. While it commits, later attachments queue up and go together in the
/// next commit. (On SQLite the single write connection would serialise the commits anyway;
/// on PostgreSQL, without the turn, each would take a pooled connection and commit alone.)
#[derive(Default)]
pub(super) struct Attaching {
    queue: std::sync::Mutex<Vec<Attach>>,
    turn: tokio::sync::Mutex<()>,
}

/// Records the bytes of each `(upload id, blob)` (refreshing their sweep clock) and attaches
/// them to their uploads: two statements whatever the number, within the caller's transaction.
/// Answers `None` when every upload exists (and so was attached), or else the ids of those
/// that do.
async fn attach_all(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    dialect: Dialect,
    list: &[(&str, &BlobInfo)],
) -> Result<Option<HashSet<String>>, sqlx::Error> {
    let rows: Vec<_> = list
        .iter()
        .map(|(id, b)| (id, &b.hash, b.size, &b.mime, b.width, b.height))
        .collect();
    let rows = json_list(&rows);
    let select = dialect.json_rows(
        1,
        &[
            Col::Text("id"),
            Col::Text("hash"),
            Col::Int("size"),
            Col::Text("mime"),
            Col::Int("width"),
            Col::Int("height"),
        ],
    );
    // The same bytes twice in a group are one record (equal bytes are described equally).
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO blobs (hash, size, mime, width, height, touched_at) \
         SELECT DISTINCT hash, size, mime, width, height, $2 FROM ({select}) j WHERE true \
         ON CONFLICT (hash) DO UPDATE SET touched_at = excluded.touched_at"
    )))
    .bind(&rows)
    .bind(now())
    .execute(&mut **tx)
    .await?;
    let updated = sqlx::query(AssertSqlSafe(format!(
        "UPDATE pending_uploads SET blob_hash = j.hash, size = j.size, mime = j.mime, \
         width = j.width, height = j.height FROM ({select}) j WHERE pending_uploads.id = j.id"
    )))
    .bind(&rows)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let ids: HashSet<&str> = list.iter().map(|(id, _)| *id).collect();
    if updated == ids.len() as u64 {
        return Ok(None);
    }
    // Some upload is gone (registered or dropped): find which, within the transaction.
    let ids: Vec<&str> = ids.into_iter().collect();
    let found = sqlx::query(AssertSqlSafe(format!(
        "SELECT id FROM pending_uploads WHERE {}",
        dialect.id_in("id", 1)
    )))
    .bind(json_list(&ids))
    .fetch_all(&mut **tx)
    .await?;
    found
        .iter()
        .map(|r| sqlx::Row::try_get::<String, _>(r, 0))
        .collect::<Result<_, _>>()
        .map(Some)
}

/// [`StoreError::NotFound`] unless the upload was found.
fn found(exists: bool) -> StoreResult<()> {
    if exists {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

/// Pending uploads this server handed out lately, as they were recorded, so that their PUTs
/// (most often sent to the server that signed them) need no read of their own. Each is
/// taken by the first PUT that asks; bounded, and an upload not kept is read instead.
#[derive(Default)]
pub(super) struct Handed {
    uploads: std::sync::Mutex<std::collections::HashMap<String, PendingUpload>>,
}

/// Handed-out uploads kept at most (about 400 bytes each).
const HANDED: usize = 8_192;

impl Handed {
    /// Keeps uploads just recorded; when full, drops the expired ones first, and keeps no
    /// more than [`HANDED`].
    fn remember(&self, list: &[PendingUpload]) {
        let mut uploads = self.uploads.lock().unwrap();
        if uploads.len() + list.len() > HANDED {
            let now = now();
            uploads.retain(|_, p| p.expires_at >= now);
        }
        for p in list {
            if uploads.len() >= HANDED {
                break;
            }
            uploads.insert(p.id.clone(), p.clone());
        }
    }

    /// Takes the upload with this id, unless it has expired.
    fn take(&self, id: &str) -> Option<PendingUpload> {
        let p = self.uploads.lock().unwrap().remove(id)?;
        (p.expires_at >= now()).then_some(p)
    }
}

/// The condition that the `blobs` row's bytes are used by no image, pending upload or
/// export archive (images' references keep the hash as bytes, the others as text).
fn unreferenced(dialect: Dialect) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM {} i WHERE i.blob_hash = {}) \
         AND NOT EXISTS (SELECT 1 FROM pending_uploads p WHERE p.blob_hash = blobs.hash) \
         AND NOT EXISTS (SELECT 1 FROM export_jobs e WHERE e.archive_hash = blobs.hash)",
        dialect.blob_users(),
        dialect.unhex("blobs.hash")
    )
}

impl Store {
    /// Records a handed-out upload URL.
    pub async fn create_pending_upload(&self, p: &PendingUpload) -> StoreResult<()> {
        self.create_pending_uploads(std::slice::from_ref(p)).await
    }

    /// Records several pending uploads in one statement.
    pub async fn create_pending_uploads(&self, list: &[PendingUpload]) -> StoreResult<()> {
        let rows: Vec<_> = list
            .iter()
            .map(|p| {
                (
                    &p.id,
                    &p.org_id,
                    &p.dataset_id,
                    &p.folder,
                    &p.filename,
                    &p.content_type,
                    &p.expires_at,
                )
            })
            .collect();
        let sql = AssertSqlSafe(format!(
            "INSERT INTO pending_uploads (id, org_id, dataset_id, folder, filename, content_type, \
             expires_at, created_at) SELECT id, org_id, dataset_id, folder, filename, content_type, \
             expires_at, $2 FROM ({}) j",
            self.dialect.json_rows(
                1,
                &[
                    Col::Text("id"),
                    Col::Text("org_id"),
                    Col::Text("dataset_id"),
                    Col::Text("folder"),
                    Col::Text("filename"),
                    Col::Text("content_type"),
                    Col::Text("expires_at"),
                ],
            )
        ));
        sqlx::query(sql)
            .bind(serde_json::to_string(&rows)?)
            .bind(now())
            .execute(&self.write)
            .await?;
        self.handed.remember(list);
        Ok(())
    }

    /// Forgets the uploads this server handed out lately, as a restart does: their PUTs read
    /// them, as PUTs sent to another server do.
    pub fn forget_handed_uploads(&self) {
        self.handed.uploads.lock().unwrap().clear();
    }

    /// The pending upload with this id, as a PUT of its bytes needs it (whose it is and the
    /// type it was signed for): from memory when this server handed it out lately, otherwise
    /// read. What its PUT stored is not known from memory: read it with
    /// [`Store::pending_upload`]. An upload since registered or expired may still be found
    /// in memory; attaching bytes to it fails ([`Store::attach_blob`]).
    pub async fn pending_upload_to_receive(&self, id: &str) -> StoreResult<Option<PendingUpload>> {
        match self.handed.take(id) {
            Some(p) => Ok(Some(p)),
            None => self.pending_upload(id).await,
        }
    }

    /// The pending upload with this id. On PostgreSQL the read shares a statement with the
    /// reads around it (each PUT makes one); should that statement fail, it is read alone.
    pub async fn pending_upload(&self, id: &str) -> StoreResult<Option<PendingUpload>> {
        static SQL: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| format!("{PENDING_SELECT} WHERE id = $1"));
        if let Some(gather) = &self.gather_pending {
            if let Some(found) = gather.pending_upload(id).await {
                return Ok(found);
            }
        }
        self.read_first(&SQL, &[id]).await
    }

    /// The pending uploads with these ids, by id (those that exist).
    pub async fn pending_uploads(
        &self,
        ids: &[&str],
    ) -> StoreResult<std::collections::HashMap<String, PendingUpload>> {
        let sql = AssertSqlSafe(format!(
            "{PENDING_SELECT} WHERE {}",
            self.dialect.id_in("id", 1)
        ));
        let rows = sqlx::query(sql)
            .bind(serde_json::to_string(ids)?)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| PendingUpload::from_row(r).map(|p| (p.id.clone(), p)))
            .collect()
    }

    /// The pending upload of the organisation for this dataset, folder and file name, for a
    /// register that names no upload: the newest one whose bytes arrived, or else the newest.
    pub async fn pending_upload_for(
        &self,
        org_id: &str,
        dataset_id: &str,
        folder: &str,
        filename: &str,
    ) -> StoreResult<Option<PendingUpload>> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "{PENDING_SELECT} \
                 WHERE org_id = $1 AND dataset_id = $2 AND folder = $3 AND filename = $4 \
                 ORDER BY CASE WHEN blob_hash IS NULL THEN 1 ELSE 0 END, created_at DESC, \
                 id DESC LIMIT 1"
            )
        });
        self.read_first(&SQL, &[org_id, dataset_id, folder, filename])
            .await
    }

    /// Records stored bytes (refreshing their sweep clock) and attaches them to the upload,
    /// committed when it returns; [`StoreError::NotFound`] when there is no such upload
    /// (registered or expired meanwhile: the bytes are recorded unreferenced, for the sweep).
    ///
    /// Group commit: attachments that arrive while the previous group commits wait for it
    /// and then commit together in one transaction, so concurrent PUTs share one commit
    /// (and, on a store that syncs in every commit, its sync) instead of queueing for one
    /// each. When a group fails, each of
    /// its attachments is retried in a transaction of its own, so every caller gets its own
    /// outcome.
    pub async fn attach_blob(&self, upload_id: &str, blob: &BlobInfo) -> StoreResult<()> {
        let (done, outcome) = tokio::sync::oneshot::channel();
        self.attaching.queue.lock().unwrap().push(Attach {
            upload_id: upload_id.to_string(),
            blob: blob.clone(),
            done,
        });
        // Committed by a task of its own: a caller that goes away must not take the group's
        // commit, and with it the other callers' answers, along.
        let store = self.clone();
        tokio::spawn(async move { store.commit_attachments().await });
        outcome
            .await
            .unwrap_or(Err(StoreError::Db(sqlx::Error::WorkerCrashed)))
    }

    /// Commits every queued attachment, once the previous group is committed.
    async fn commit_attachments(&self) {
        use sqlx::Connection;
        let _turn = self.attaching.turn.lock().await;
        if self.attaching.queue.lock().unwrap().is_empty() {
            return;
        }
        let conn = self.write.acquire().await;
        // Only the holder of the turn takes from the queue: it is not empty.
        let group = std::mem::take(&mut *self.attaching.queue.lock().unwrap());
        let mut conn = match conn {
            Ok(c) => c,
            Err(e) => {
                for a in group {
                    let _ = a
                        .done
                        .send(Err(StoreError::Db(sqlx::Error::Protocol(e.to_string()))));
                }
                return;
            }
        };
        if group.len() > 1 {
            let together = async {
                let mut tx = conn.begin_with(self.dialect.begin_write()).await?;
                let list: Vec<_> = group
                    .iter()
                    .map(|a| (a.upload_id.as_str(), &a.blob))
                    .collect();
                let attached = attach_all(&mut tx, self.dialect, &list).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(attached)
            };
            if let Ok(attached) = together.await {
                for a in group {
                    let exists = attached.as_ref().is_none_or(|s| s.contains(&a.upload_id));
                    let _ = a.done.send(found(exists));
                }
                return;
            }
        }
        for a in group {
            let alone = async {
                let mut tx = conn.begin_with(self.dialect.begin_write()).await?;
                let attached =
                    attach_all(&mut tx, self.dialect, &[(a.upload_id.as_str(), &a.blob)]).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(attached.is_none_or(|s| !s.is_empty()))
            };
            let _ = a.done.send(match alone.await {
                Ok(exists) => found(exists),
                Err(e) => Err(e.into()),
            });
        }
    }

    /// Drops expired pending uploads; returns their ids.
    pub async fn expire_pending_uploads(&self) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("DELETE FROM pending_uploads WHERE expires_at < $1 RETURNING id")
            .bind(now())
            .fetch_all(&self.write)
            .await?;
        rows.iter().map(|r| get(r, "id")).collect()
    }

    /// Ids of the pending uploads that have expired (what [`Store::expire_pending_uploads`]
    /// would drop).
    pub async fn expired_pending_uploads(&self) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM pending_uploads WHERE expires_at < $1")
            .bind(now())
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| get(r, "id")).collect()
    }

    /// Hashes of recorded blobs that nothing refers to and that were last touched before
    /// `cutoff`.
    pub async fn orphan_blobs(&self, cutoff: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT hash FROM blobs WHERE touched_at < $1 AND {} ORDER BY hash",
            unreferenced(self.dialect)
        )))
        .bind(cutoff)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|r| get(r, "hash")).collect()
    }

    /// How many of `hashes` are recorded and used by nothing: bytes a sweep frees once their
    /// grace period has passed.
    pub async fn unreferenced_blobs(&self, hashes: &[String]) -> StoreResult<u64> {
        let sql = format!(
            "SELECT COUNT(*) AS n FROM blobs WHERE {} AND {}",
            self.dialect.id_in("hash", 1),
            unreferenced(self.dialect)
        );
        let mut n = 0;
        for chunk in hashes.chunks(500) {
            let list = serde_json::Value::from(chunk.to_vec()).to_string();
            let row = sqlx::query(AssertSqlSafe(sql.as_str()))
                .bind(list)
                .fetch_one(&self.read)
                .await?;
            n += get::<i64>(&row, "n")? as u64;
        }
        Ok(n)
    }

    /// Which of `hashes` the database knows: bytes with a blob record, and export archives
    /// (which have none).
    pub async fn recorded_blobs(
        &self,
        hashes: &[String],
    ) -> StoreResult<std::collections::HashSet<String>> {
        let mut out = std::collections::HashSet::new();
        for chunk in hashes.chunks(500) {
            let list = serde_json::Value::from(chunk.to_vec()).to_string();
            let listed = self.dialect.json_strings(1);
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT hash FROM blobs WHERE hash IN ({listed}) \
                 UNION SELECT archive_hash FROM export_jobs WHERE archive_hash IN ({listed})"
            ));
            for r in sqlx::query(sql).bind(list).fetch_all(&self.read).await? {
                out.insert(get(&r, "hash")?);
            }
        }
        Ok(out)
    }

    /// Frees the bytes of each of `hashes` that nothing refers to and that were last touched
    /// before `cutoff` (bytes with no record at all count as untouched): in one transaction,
    /// forgets their records, runs `delete` on the bytes of those, and commits only if that
    /// succeeded. The records' locks are held meanwhile, so an upload of the same bytes
    /// ([`Store::attach_blob`]) waits and then stores them afresh. Returns the hashes freed.
    ///
    /// With `recorded`, the hashes had records when they were listed (bytes of deleted
    /// images, orphans the store listed): one found without a record was freed meanwhile by
    /// another freer. Its bytes are deleted once more (harmless), but it is not returned, so
    /// two freers at once never both report it.
    ///
    /// Give it a few hundred hashes at a time: one transaction for each instead of one per
    /// hash is what makes freeing a million images' bytes take seconds, not many minutes.
    /// Nothing is freed while a hold is valid (see [`super::snapshot::BlobHold`]).
    pub async fn free_blobs<F, Fut>(
        &self,
        hashes: &[String],
        cutoff: &str,
        recorded: bool,
        delete: F,
    ) -> anyhow::Result<Vec<String>>
    where
        F: FnOnce(Vec<String>) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>>,
    {
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        let list = serde_json::Value::from(hashes.to_vec()).to_string();
        let mut tx = self.tx().await?;
        let insert = sqlx::AssertSqlSafe(format!(
            "INSERT INTO blobs (hash, size, mime, touched_at) \
             SELECT *, 0, 'application/octet-stream', '' FROM ({}) AS listed WHERE true \
             ON CONFLICT (hash) DO NOTHING RETURNING hash",
            self.dialect.json_strings(1)
        ));
        let mut unrecorded = HashSet::new();
        let mut rows = sqlx::query(insert).bind(&list).fetch(&mut *tx);
        while let Some(r) = rows.try_next().await? {
            unrecorded.insert(get::<String>(&r, "hash")?);
        }
        drop(rows);
        let take = sqlx::AssertSqlSafe(format!(
            "DELETE FROM blobs WHERE {} AND touched_at < $2 AND {} \
             AND NOT EXISTS (SELECT 1 FROM blob_holds h WHERE h.until > $3) \
             RETURNING hash",
            self.dialect.id_in("hash", 1),
            unreferenced(self.dialect)
        ));
        let taken = sqlx::query(take)
            .bind(&list)
            .bind(cutoff)
            .bind(now())
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| get::<String>(r, "hash"))
            .collect::<StoreResult<Vec<_>>>()?;
        if taken.is_empty() {
            tx.rollback().await?;
            return Ok(taken);
        }
        // What made the bytes unreferenced (an image's deletion, say) was committed before;
        // it must be on disk before they go.
        self.durable().await?;
        delete(taken.clone()).await?;
        tx.commit().await?;
        if recorded {
            return Ok(taken
                .into_iter()
                .filter(|h| !unrecorded.contains(h))
                .collect());
        }
        Ok(taken)
    }

    /// Whether any image or pending upload refers to the blob.
    pub async fn blob_referenced(&self, hash: &str) -> StoreResult<bool> {
        let sql = AssertSqlSafe(format!(
            "SELECT (SELECT COUNT(*) FROM {} WHERE blob_hash = {}) \
             + (SELECT COUNT(*) FROM pending_uploads WHERE blob_hash = $1) AS n",
            self.dialect.blob_users(),
            self.dialect.unhex("$1")
        ));
        let row = sqlx::query(sql).bind(hash).fetch_one(&self.read).await?;
        Ok(get::<i64>(&row, "n")? > 0)
    }

    /// The response stored for this key's Idempotency-Key, if any.
    pub async fn stored_response(
        &self,
        key_id: &str,
        idem_key: &str,
    ) -> StoreResult<Option<StoredResponse>> {
        self.read_first(
            "SELECT method, path, status, body, body_kept, request_hash, created_at, applied \
             FROM idempotency WHERE key_id = $1 AND idem_key = $2",
            &[key_id, idem_key],
        )
        .await
    }

    /// Claims this key's Idempotency-Key for a request about to run, recorded as running
    /// (status 0) with the request's method, path and body hash. False when the key is
    /// recorded already, running or answered.
    pub async fn claim_response(
        &self,
        key_id: &str,
        idem_key: &str,
        method: &str,
        path: &str,
        request_hash: &str,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO idempotency \
             (key_id, idem_key, method, path, status, body, body_kept, request_hash, created_at) \
             VALUES ($1, $2, $3, $4, 0, '', 0, $5, $6) ON CONFLICT (key_id, idem_key) DO NOTHING",
        )
        .bind(key_id)
        .bind(idem_key)
        .bind(method)
        .bind(path)
        .bind(request_hash)
        .bind(now())
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records that the request holding a claim is still running, so no server takes the
    /// claim for one a stopped server left.
    pub async fn touch_claim(&self, key_id: &str, idem_key: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE idempotency SET created_at = $3 \
             WHERE key_id = $1 AND idem_key = $2 AND status = 0",
        )
        .bind(key_id)
        .bind(idem_key)
        .bind(now())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Records the answer of a request whose key was claimed.
    pub async fn complete_response(
        &self,
        key_id: &str,
        idem_key: &str,
        resp: &StoredResponse,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE idempotency SET status = $3, body = $4, body_kept = $5 \
             WHERE key_id = $1 AND idem_key = $2 AND status = 0",
        )
        .bind(key_id)
        .bind(idem_key)
        .bind(i64::from(resp.status))
        .bind(&resp.body)
        .bind(i64::from(resp.body_kept))
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Ends a claim that has no answer to keep: its request failed in a way a retry may mend,
    /// or (with `claimed_before`, the claim last renewed before then) its server stopped
    /// before answering. A claim whose write was not applied is forgotten, so that a retry
    /// runs the request; one whose write was applied keeps `lost` (status and JSON body) as
    /// its answer, so that a retry is told so instead of running the write a second time.
    pub async fn end_unanswered(
        &self,
        key_id: &str,
        idem_key: &str,
        lost: (u16, &str),
        claimed_before: Option<&str>,
    ) -> StoreResult<()> {
        let before = claimed_before.unwrap_or("");
        sqlx::query(
            "UPDATE idempotency SET status = $4, body = $5, body_kept = 1 \
             WHERE key_id = $1 AND idem_key = $2 AND status = 0 AND applied = 1 \
             AND ($3 = '' OR created_at < $3)",
        )
        .bind(key_id)
        .bind(idem_key)
        .bind(before)
        .bind(i64::from(lost.0))
        .bind(lost.1)
        .execute(&self.write)
        .await?;
        sqlx::query(
            "DELETE FROM idempotency \
             WHERE key_id = $1 AND idem_key = $2 AND status = 0 AND applied = 0 \
             AND ($3 = '' OR created_at < $3)",
        )
        .bind(key_id)
        .bind(idem_key)
        .bind(before)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// How many stored responses are older than `cutoff`.
    pub async fn count_responses_before(&self, cutoff: &str) -> StoreResult<u64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM idempotency WHERE created_at < $1")
            .bind(cutoff)
            .fetch_one(&self.read)
            .await?;
        Ok(get::<i64>(&row, "n")? as u64)
    }

    /// Forgets stored responses older than `cutoff`.
    pub async fn expire_responses(&self, cutoff: &str) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM idempotency WHERE created_at < $1")
            .bind(cutoff)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected())
    }
}

impl Store {
    /// Takes one token from `key`'s bucket, refilled at `rate_per_ms` up to `capacity`, in one
    /// statement. Returns whether a token was taken, and the tokens left.
    pub async fn take_token(
        &self,
        key: &str,
        capacity: f64,
        now_ms: i64,
        rate_per_ms: f64,
    ) -> StoreResult<(bool, f64)> {
        const REFILL: &str =
            "(CASE WHEN rate_buckets.tokens + ($3 - rate_buckets.updated_ms) * $4 > $2 \
             THEN $2 ELSE rate_buckets.tokens + ($3 - rate_buckets.updated_ms) * $4 END)";
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO rate_buckets (key_id, tokens, updated_ms, last_ok) VALUES ($1, $2 - 1, $3, 1) \
             ON CONFLICT (key_id) DO UPDATE SET \
               tokens = CASE WHEN {REFILL} >= 1 THEN {REFILL} - 1 ELSE {REFILL} END, \
               last_ok = CASE WHEN {REFILL} >= 1 THEN 1 ELSE 0 END, \
               updated_ms = $3 \
             RETURNING tokens, last_ok"
        ));
        let row = sqlx::query(sql)
            .bind(key)
            .bind(capacity)
            .bind(now_ms)
            .bind(rate_per_ms)
            .fetch_one(&self.write)
            .await?;
        Ok((get::<i64>(&row, "last_ok")? == 1, get(&row, "tokens")?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handed(id: &str, expires_at: &str) -> PendingUpload {
        PendingUpload {
            id: id.into(),
            org_id: "org".into(),
            dataset_id: "ds".into(),
            folder: "/".into(),
            filename: format!("{id}.png"),
            content_type: "image/png".into(),
            expires_at: expires_at.into(),
            blob_hash: None,
            size: None,
            mime: None,
            width: None,
            height: None,
        }
    }

    #[test]
    fn handed_uploads_are_taken_once_bounded_and_never_past_their_expiry() {
        let later = super::super::fmt_time(chrono::Utc::now() + chrono::Duration::hours(1));
        let past = "2000-01-01T00:00:00.000000Z";
        let h = Handed::default();
        h.remember(&[handed("a", &later), handed("old", past)]);
        assert_eq!(h.take("a").map(|p| p.filename), Some("a.png".into()));
        assert!(h.take("a").is_none(), "taken by the first PUT only");
        assert!(h.take("old").is_none(), "an expired upload is read instead");

        // Full: expired ones make room first, and no more than the bound are kept.
        let expired: Vec<_> = (0..HANDED)
            .map(|i| handed(&format!("x{i}"), past))
            .collect();
        h.remember(&expired);
        let fresh: Vec<_> = (0..HANDED + 10)
            .map(|i| handed(&format!("f{i}"), &later))
            .collect();
        h.remember(&fresh);
        let kept = h.uploads.lock().unwrap().len();
        assert_eq!(kept, HANDED);
        assert!(h.take("f0").is_some());
        assert!(
            h.take(&format!("f{}", HANDED + 9)).is_none(),
            "past the bound"
        );
    }
}
