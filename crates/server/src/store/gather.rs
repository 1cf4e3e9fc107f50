//! Point reads by id (of images, of their annotation lists and of pending uploads), gathered
//! into shared statements (PostgreSQL).
//!
//! On PostgreSQL every point read is a round trip, and the round trip (a pooled connection,
//! the protocol on both sides, the wake-ups of two processes) costs many times the index
//! lookup itself. A read that arrives while a statement is already under way waits in a
//! queue; when that statement ends, the next one takes everything queued and looks it all
//! up at once. A read alone runs at once, as before; under load one statement answers dozens
//! of requests.
//!
//! The statement of images finds each image with its dataset's organisation, and a read gets
//! the image only if that is its own organisation: exactly what the single read's join
//! answers. An annotation list is read by its image's id alone: its reader has just read
//! the image, checked against the organisation. A pending upload is read by its id alone, as
//! its PUT is (the signature is its authority).
//!
//! Statements run in tasks of their own, so a request that goes away (its client hung up)
//! never strands the reads queued behind it. A failed statement hands its reads back; each
//! then reads alone and meets the error itself.
//!
//! Statements run on a connection the gatherer keeps, outside the pool: a pooled connection
//! is checked with a round trip of its own each time it goes back, which under load cost
//! about as much as the statements. It is a PostgreSQL connection of the native driver, so
//! the ids go as one array and rows decode without the `Any` driver's conversion of each
//! cell. A connection whose statement failed is dropped and the next reader opens another.

use super::images::{columns_of, ImageRow};
use super::uploads::PendingUpload;
use super::{get, FromCells, StoreResult};
use futures::TryStreamExt;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// Statements under way at once. One: under load each statement then takes every read that
/// arrived while the last one ran. With 64 clients reading spread ids, one reader served
/// 15–20% more requests than two, with a lower p99, and two more than four: the database
/// shares the cores with the server, and fewer, larger statements cost both less per read.
const READERS: usize = 1;

/// The most reads one statement answers; more wait for the next one.
const PER_STATEMENT: usize = 256;

/// A row a gathered statement found: its id, the organisation it belongs to when reads are
/// checked against one, and the value read.
type Found<T> = (String, Option<String>, T);

/// Gathers point reads of `T` by id into shared statements.
pub(super) struct Gather<T> {
    /// The database's URL, for the connections.
    url: String,
    /// The statement, with the ids as its one array parameter.
    sql: String,
    /// Decodes one row of `sql`.
    decode: fn(&PgRow) -> StoreResult<Found<T>>,
    state: Mutex<State<T>>,
    /// Connections between readers, kept out of the pool.
    idle: Mutex<Vec<PgConnection>>,
    reads: AtomicU64,
    statements: AtomicU64,
}

/// The reads waiting, and how many statements are under way.
struct State<T> {
    queue: Vec<Waiting<T>>,
    readers: usize,
}

/// One read waiting for a statement: the id, the organisation asking (when the value must
/// be its own), and where its answer goes.
struct Waiting<T> {
    id: String,
    org_id: Option<String>,
    reply: oneshot::Sender<Option<T>>,
}

/// Reads gathered so far and the statements that answered them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GatherStats {
    /// Point reads answered by a gathered statement.
    pub reads: u64,
    /// Statements that answered them.
    pub statements: u64,
}

impl Gather<ImageRow> {
    /// Gathered reads of images in the PostgreSQL database at `url`.
    pub(super) fn images(url: &str) -> Arc<Self> {
        let sql = format!(
            "SELECT d.org_id AS org_of_image, {} FROM images i \
             JOIN datasets d ON d.seq = i.dataset_seq WHERE i.id = ANY($1)",
            columns_of("i", "d"),
        );
        Gather::new(url, sql, |row| {
            let image = ImageRow::from_row(row)?;
            Ok((image.id.clone(), Some(get(row, "org_of_image")?), image))
        })
    }

    /// The image `id` if its dataset belongs to `org_id`, read in a statement shared with
    /// the reads around it; `None` when that statement failed (the caller then reads alone).
    pub(super) async fn image(
        self: &Arc<Self>,
        org_id: &str,
        id: &str,
    ) -> Option<Option<ImageRow>> {
        self.read_gathered(id, Some(org_id)).await
    }
}

impl Gather<PendingUpload> {
    /// Gathered reads of pending uploads in the PostgreSQL database at `url`.
    pub(super) fn pending_uploads(url: &str) -> Arc<Self> {
        let sql = format!("{} WHERE id = ANY($1)", super::uploads::PENDING_SELECT);
        Gather::new(url, sql, |row| {
            let pending = PendingUpload::from_row(row)?;
            Ok((pending.id.clone(), None, pending))
        })
    }

    /// The pending upload `id`, read in a statement shared with the reads around it; `None`
    /// when that statement failed (the caller then reads alone).
    pub(super) async fn pending_upload(
        self: &Arc<Self>,
        id: &str,
    ) -> Option<Option<PendingUpload>> {
        self.read_gathered(id, None).await
    }
}

impl Gather<String> {
    /// Gathered reads of images' stored annotation lists (as their JSON text) in the
    /// PostgreSQL database at `url`.
    pub(super) fn annotation_texts(url: &str) -> Arc<Self> {
        let sql = "SELECT image_id, annotations FROM image_annotations WHERE image_id = ANY($1)";
        Gather::new(url, sql.to_string(), |row| {
            Ok((get(row, "image_id")?, None, get(row, "annotations")?))
        })
    }

    /// The annotation list of image `id` as stored (`Some(None)` when it has none), read in
    /// a statement shared with the reads around it; `None` when that statement failed (the
    /// caller then reads alone).
    pub(super) async fn annotation_text(self: &Arc<Self>, id: &str) -> Option<Option<String>> {
        self.read_gathered(id, None).await
    }
}

impl<T> Gather<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn idle(&self) -> MutexGuard<'_, Vec<PgConnection>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Clone + Send + 'static> Gather<T> {
    fn new(url: &str, sql: String, decode: fn(&PgRow) -> StoreResult<Found<T>>) -> Arc<Self> {
        Arc::new(Gather {
            url: url.to_string(),
            sql,
            decode,
            state: Mutex::new(State {
                queue: Vec::new(),
                readers: 0,
            }),
            idle: Mutex::default(),
            reads: AtomicU64::new(0),
            statements: AtomicU64::new(0),
        })
    }

    /// Value `id`, if it is there (and belongs to `org_id`, when given), read in a statement
    /// shared with the reads around it; `None` when that statement failed.
    async fn read_gathered(self: &Arc<Self>, id: &str, org_id: Option<&str>) -> Option<Option<T>> {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut state = self.lock();
            state.queue.push(Waiting {
                id: id.to_string(),
                org_id: org_id.map(str::to_string),
                reply,
            });
            let start = state.readers < READERS;
            if start {
                state.readers += 1;
            }
            start
        };
        if start {
            tokio::spawn(self.clone().read_queued());
        }
        answer.await.ok()
    }

    /// What has been gathered so far.
    pub(super) fn stats(&self) -> GatherStats {
        GatherStats {
            reads: self.reads.load(Ordering::Relaxed),
            statements: self.statements.load(Ordering::Relaxed),
        }
    }

    /// One reader: takes what is queued and answers it, until nothing is.
    async fn read_queued(self: Arc<Self>) {
        let mut reader = Reader {
            gather: &self,
            done: false,
        };
        let mut conn = self.idle().pop();
        loop {
            let batch: Vec<Waiting<T>> = {
                let mut state = self.lock();
                if state.queue.is_empty() {
                    state.readers -= 1;
                    reader.done = true;
                    drop(state);
                    if let Some(conn) = conn {
                        self.idle().push(conn);
                    }
                    return;
                }
                let n = state.queue.len().min(PER_STATEMENT);
                state.queue.drain(..n).collect()
            };
            match self.read(&mut conn, &batch).await {
                Ok(found) => {
                    self.statements.fetch_add(1, Ordering::Relaxed);
                    self.reads.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    for w in batch {
                        let row = match found.get(&w.id) {
                            Some((org, row)) if w.org_id.is_none() || *org == w.org_id => {
                                Some(row.clone())
                            }
                            _ => None,
                        };
                        let _ = w.reply.send(row);
                    }
                }
                Err(e) => {
                    conn = None;
                    tracing::debug!("a gathered read of {} ids failed: {e}", batch.len());
                }
            }
        }
    }

    /// The values of `batch` that exist, by id, with their organisation, read on `conn`
    /// (opened first if there is none).
    async fn read(
        &self,
        conn: &mut Option<PgConnection>,
        batch: &[Waiting<T>],
    ) -> StoreResult<HashMap<String, (Option<String>, T)>> {
        let conn = match conn {
            Some(conn) => conn,
            None => conn.insert(PgConnection::connect(&self.url).await?),
        };
        let ids: Vec<&str> = batch.iter().map(|w| w.id.as_str()).collect();
        let mut rows = sqlx::query(AssertSqlSafe(self.sql.as_str()))
            .bind(ids)
            .fetch(&mut *conn);
        let mut found = HashMap::with_capacity(batch.len());
        while let Some(row) = rows.try_next().await? {
            let (id, org, value) = (self.decode)(&row)?;
            found.insert(id, (org, value));
        }
        Ok(found)
    }
}

/// A running reader. Should its task end early (a panic), it gives its place up and, if it
/// was the last, drops the queue: those reads are then answered `None` and read alone.
struct Reader<'g, T> {
    gather: &'g Gather<T>,
    done: bool,
}

impl<T> Drop for Reader<'_, T> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut state = self.gather.lock();
        state.readers -= 1;
        if state.readers == 0 {
            state.queue.clear();
        }
    }
}
