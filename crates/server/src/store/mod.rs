//! Metadata: organisations, keys, datasets, images, annotations, uploads, idempotency.
//!
//! One `Store` over an `sqlx::AnyPool`: every query is written once in SQL that SQLite and
//! PostgreSQL both accept (`$n` parameters, `RETURNING`, `ON CONFLICT`, partial indexes). The
//! few dialect differences (id lists, write transactions) are isolated in [`Dialect`].
//! Dataset counters are kept by triggers, so every statement that touches an image keeps them true.
//! On SQLite, point reads on the request path (a key, an image, a dataset, a pending upload)
//! run on the calling thread through read-only connections (the `inline` module); the same SQL goes
//! through the pool on PostgreSQL or whenever that path cannot answer.

mod cache;
pub mod compact;
mod datasets;
mod exports;
mod gather;
mod images;
mod inline;
mod keys;
mod log_sync;
pub mod snapshot;
mod transfer;
mod uploads;

pub use datasets::{DatasetCounts, DatasetPatch, DatasetRow, HiddenDataset, DELETING_ORG};
pub use exports::{ExportImage, ExportJobRow, NewExport, StoppedJob};
pub use gather::GatherStats;
pub use images::{
    BatchOutcome, CopyMode, ImageFile, ImageFilter, ImageRow, ImageUpdate, NewImage,
    SavedAnnotations, NOT_FOUND_REASON,
};
pub use keys::{KeyRow, OrgRow};
pub use transfer::TableReport;
pub use uploads::{BlobInfo, PendingUpload, StoredResponse};

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, AssertSqlSafe, Executor, SqlSafeStr, Transaction};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A store failure; unique-constraint violations are told apart so callers can answer 409.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated.
    #[error("unique constraint violated")]
    Conflict,
    /// The row the operation names is gone (deleted by a concurrent request).
    #[error("row not found")]
    NotFound,
    /// Any other database failure.
    #[error(transparent)]
    Db(sqlx::Error),
    /// Stored JSON that could not be read back.
    #[error("corrupt stored json: {0}")]
    Json(#[from] serde_json::Error),
    /// The database did not accept a connection at start; the last attempt's error.
    #[error("cannot connect to the database: {0}")]
    Unreachable(sqlx::Error),
    /// A failure of a SQLite file opened directly ([`snapshot`]).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file next to a database could not be read or written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                return StoreError::Conflict;
            }
        }
        StoreError::Db(e)
    }
}

/// Store result.
pub type StoreResult<T> = Result<T, StoreError>;

/// Which SQL dialect the pool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (embedded default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The condition that an image of `images` is live, written as the last key of its name
/// index (`images_name`), which is empty exactly for live images, so that SQLite can answer it
/// from the index alone. Unqualified: inside a sub-select it names that sub-select's row.
const LIVE_NAME_KEY: &str = "(CASE WHEN is_archived = 0 THEN '' ELSE id END) = ''";

impl Dialect {
    /// The statement that opens a write transaction. SQLite's plain `BEGIN` takes the write
    /// lock only at the first write, and a transaction that read before it finds the lock
    /// held (by another process on the file) fails at once with "database is locked" instead
    /// of waiting; `BEGIN IMMEDIATE` takes the lock first, waiting up to the busy timeout.
    fn begin_write(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }

    /// A sub-select yielding the strings of a JSON array bound as parameter `$n`.
    ///
    /// Statements that pick rows by such a list of ids check their dataset as
    /// `dataset_id || '' = $k`: the expression can use no index, so the planner always looks
    /// each id up by primary key instead of walking the dataset's index (which SQLite
    /// otherwise may do, once per id, on a connection opened before its statistics existed).
    fn json_strings(self, n: u32) -> String {
        match self {
            Dialect::Sqlite => format!("SELECT value FROM json_each(${n})"),
            Dialect::Postgres => format!("SELECT jsonb_array_elements_text(${n}::jsonb)"),
        }
    }

    /// `column` written so that no index on it answers a condition on it or an order by it,
    /// where the planner cannot weigh that index itself (`None` where it can). Where a folder
    /// narrows a listing, which of two indexes reads it best depends on how much of the
    /// dataset the folder holds. SQLite keeps no statistics: it reads a folder by the name
    /// index, then sorts all its images, even when the folder holds nearly the whole dataset;
    /// so the listing decides ([`Store::spelling`]) and a unary `+` takes the other index out
    /// of its reach. PostgreSQL weighs them by its statistics, given the folder's name (see
    /// [`Dialect::plans_each_folder`]).
    fn unindexed(self, column: &str) -> Option<String> {
        match self {
            Dialect::Sqlite => Some(format!("+{column}")),
            Dialect::Postgres => None,
        }
    }

    /// Whether a listing narrowed to a folder is planned anew for each folder, not prepared
    /// once. PostgreSQL plans a prepared statement for any parameters after a few runs, and
    /// for a folder that plan read the name index and sorted: a page 400,000 images into a
    /// folder of a million took 2.2 s instead of 0.27, counting them 1.5 s instead of 0.28.
    /// SQLite plans the same way for any folder (see [`Dialect::unindexed`]).
    fn plans_each_folder(self) -> bool {
        matches!(self, Dialect::Postgres)
    }

    /// The condition that an image is live, written where a count may read the name index
    /// alone. That index ends in a key that is empty exactly for live images; SQLite answers
    /// a condition on the key from the index without reading rows (a million-image folder
    /// counted in 0.25 s instead of 1.5), where `is_archived = 0` makes it read every row.
    /// PostgreSQL reads the rows for an expression of an index either way, and chooses its
    /// partial listing indexes by `is_archived = 0`.
    fn live_by_name(self) -> &'static str {
        match self {
            Dialect::Sqlite => LIVE_NAME_KEY,
            Dialect::Postgres => "is_archived = 0",
        }
    }

    /// Whether live and archived images are in separate listing indexes, so that a listing of
    /// both merges two reads in listing order (see [`Store::listed`]). PostgreSQL writes an
    /// entry in every index on images for each row an update moves, and an index of every
    /// image would be one more for each moved, restored or copied image. SQLite updates only
    /// the indexes whose columns changed, so there that index costs moves, archives and
    /// restores nothing.
    fn splits_archived(self) -> bool {
        matches!(self, Dialect::Postgres)
    }

    /// Whether a page deep into a listing is read as its ids first, then their rows.
    /// PostgreSQL reads from the table every row an OFFSET skips unless a sub-select asks the
    /// listing index for ids alone; SQLite skips index entries without reading their rows
    /// either way, and the second lookup would only cost it time.
    fn pages_by_ids(self) -> bool {
        matches!(self, Dialect::Postgres)
    }

    /// The condition that `column` is one of the strings of a JSON array bound as `$n`.
    ///
    /// PostgreSQL gets the list as an array, so that it looks the ids up in key order (its
    /// semi-join would visit them in hash order: random pages of a table larger than its
    /// buffers, read and written back again and again).
    fn id_in(self, column: &str, n: u32) -> String {
        match self {
            Dialect::Sqlite => format!("{column} IN ({})", self.json_strings(n)),
            Dialect::Postgres => format!("{column} = ANY(ARRAY({}))", self.json_strings(n)),
        }
    }

    /// An aggregate that answers the rows a query selects as one JSON array text, each row
    /// an array of the expressions `cols` (`[]` when there are none). A batch reads its
    /// thousands of rows in one value: passed to the caller row by row, they cost the driver
    /// more than the database takes to find them.
    fn json_agg(self, cols: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json_group_array(json_array({cols}))"),
            Dialect::Postgres => {
                format!("COALESCE(CAST(json_agg(json_build_array({cols})) AS TEXT), '[]')")
            }
        }
    }

    /// ` FOR UPDATE` on PostgreSQL, to end a SELECT whose rows the transaction goes on to
    /// change; nothing on SQLite, whose write transaction excludes every other writer.
    fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }

    /// The bytes of `expr`, hex text: how an image's hash (32 bytes in `images`) is compared
    /// with the hashes other tables keep as text.
    fn unhex(self, expr: &str) -> String {
        match self {
            Dialect::Sqlite => format!("unhex({expr})"),
            Dialect::Postgres => format!("decode({expr}, 'hex')"),
        }
    }

    /// The table that says which images use which stored bytes (column `blob_hash`, the
    /// bytes' hash as 32 bytes): `images` itself on SQLite, through its index on the hash;
    /// `image_blobs` on PostgreSQL, kept by triggers, so that the updates of `images` that
    /// write a new version of a row do not also add an entry to an index on the hash.
    fn blob_users(self) -> &'static str {
        match self {
            Dialect::Sqlite => "images",
            Dialect::Postgres => "image_blobs",
        }
    }

    /// The lowercase hex text of the bytes `expr`.
    fn hex(self, expr: &str) -> String {
        match self {
            Dialect::Sqlite => format!("lower(hex({expr}))"),
            Dialect::Postgres => format!("encode({expr}, 'hex')"),
        }
    }

    /// `sql`, a statement that changes rows and ends in `RETURNING {cols}`, made to answer
    /// one row whose column `found` holds every returned row as a JSON array of arrays, on
    /// PostgreSQL, whose changing statements may feed a query; `None` on SQLite, which
    /// cannot. A permanent delete so needs no read of its rows first; for updates that
    /// return rows anyway it measured a few percent slower than the rows themselves.
    fn returned_as_json(self, sql: &str, cols: &str) -> Option<String> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some(format!(
                "WITH changed AS ({sql}) SELECT {} AS found FROM changed",
                self.json_agg(cols)
            )),
        }
    }

    /// `UPDATE` for a statement that changes many rows inside a transaction.
    ///
    /// On SQLite it is `UPDATE OR FAIL`: a failing row then stops the statement without
    /// undoing the rows before it, so SQLite keeps no statement journal (a copy of every page
    /// the statement changes, written to a temporary file: about a fifth of the time of a
    /// 100,000-row update). The rows it left changed never show: an error rolls the whole
    /// transaction back.
    fn update_many(self) -> &'static str {
        match self {
            Dialect::Sqlite => "UPDATE OR FAIL",
            Dialect::Postgres => "UPDATE",
        }
    }

    /// `INSERT INTO` for a statement that inserts many rows inside a transaction; see
    /// [`Dialect::update_many`].
    fn insert_many(self) -> &'static str {
        match self {
            Dialect::Sqlite => "INSERT OR FAIL INTO",
            Dialect::Postgres => "INSERT INTO",
        }
    }

    /// A sub-select yielding one row per element of a JSON array of arrays bound as `$n`:
    /// column `cols[i]` is element `i` of each inner array, and `ord` the element's position,
    /// so a statement can keep the array's order. Whole numbers and nulls come out as
    /// integers and NULLs on both dialects.
    fn json_rows(self, n: u32, cols: &[Col]) -> String {
        let mut select = Vec::with_capacity(cols.len() + 1);
        for (i, col) in cols.iter().enumerate() {
            select.push(match (self, col) {
                (Dialect::Sqlite, Col::Text(c) | Col::Int(c)) => {
                    format!("json_extract(value, '$[{i}]') AS {c}")
                }
                (Dialect::Postgres, Col::Text(c)) => format!("e->>{i} AS {c}"),
                (Dialect::Postgres, Col::Int(c)) => format!("(e->>{i})::bigint AS {c}"),
            });
        }
        match self {
            Dialect::Sqlite => {
                select.push("key AS ord".into());
                format!("SELECT {} FROM json_each(${n})", select.join(", "))
            }
            Dialect::Postgres => {
                select.push("ord".into());
                format!(
                    "SELECT {} FROM jsonb_array_elements(${n}::jsonb) WITH ORDINALITY AS t(e, ord)",
                    select.join(", ")
                )
            }
        }
    }
}

/// A column of [`Dialect::json_rows`], by its type.
#[derive(Debug, Clone, Copy)]
enum Col {
    /// Text.
    Text(&'static str),
    /// A 64-bit integer (or NULL).
    Int(&'static str),
}

/// The metadata store.
#[derive(Clone)]
pub struct Store {
    read: AnyPool,
    write: AnyPool,
    dialect: Dialect,
    /// Blob attachments waiting for the next group commit ([`Store::attach_blob`]).
    attaching: std::sync::Arc<uploads::Attaching>,
    /// Pending uploads handed out lately ([`Store::pending_upload_to_receive`]).
    handed: std::sync::Arc<uploads::Handed>,
    /// Point reads on the calling thread (SQLite with a database file only).
    inline: Option<std::sync::Arc<inline::Inline>>,
    /// Recently read keys and images (servers on PostgreSQL; [`Store::with_read_cache`]).
    cache: Option<std::sync::Arc<cache::ReadCache>>,
    /// Syncs of the write-ahead log shared by the commits made meanwhile (a store opened
    /// with [`Commits::Grouped`] only).
    log_sync: Option<std::sync::Arc<log_sync::LogSync>>,
    /// Point reads of images gathered into shared statements (PostgreSQL only).
    gather: Option<std::sync::Arc<gather::Gather<images::ImageRow>>>,
    /// Point reads of pending uploads (each upload's PUT) gathered likewise.
    gather_pending: Option<std::sync::Arc<gather::Gather<uploads::PendingUpload>>>,
    /// Point reads of one image's annotation list gathered likewise.
    gather_annotations: Option<std::sync::Arc<gather::Gather<String>>>,
    /// Dataset counter changes this store has folded into their rows (PostgreSQL only).
    folded: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

/// The items (ids, or the rows a statement reads) as one JSON array, written straight from
/// the slice.
fn json_list<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// Now, as the fixed-width RFC 3339 text stored in every timestamp column (sorts as it reads).
pub fn now() -> String {
    fmt_time(chrono::Utc::now())
}

/// The `seq` of the dataset whose id is bound as `$n`: images name their dataset by it (an
/// integer instead of the 36-character id, in the table and in every index led by it).
fn dataset_seq(n: u32) -> String {
    format!("(SELECT seq FROM datasets WHERE id = ${n})")
}

/// Now, as microseconds since 1970: how `images` keeps its times.
fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// A time of `images` (microseconds since 1970) as the text every answer shows ([`now`]),
/// written field by field: a listing page formats two for each of its thousands of images,
/// and chrono's general formatter takes several times as long.
fn time_of(micros: i64) -> String {
    use chrono::{Datelike, Timelike};
    use std::fmt::Write;
    let Some(t) = chrono::DateTime::from_timestamp_micros(micros) else {
        return String::new();
    };
    let mut out = String::with_capacity(27);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        micros.rem_euclid(1_000_000)
    );
    out
}

/// The microseconds since 1970 of a time as [`now`] writes it; `None` for any other text.
fn micros_of(time: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(time)
        .ok()
        .map(|t| t.timestamp_micros())
}

/// Formats a time as stored.
pub fn fmt_time(t: chrono::DateTime<chrono::Utc>) -> String {
    time_of(t.timestamp_micros())
}

/// Turns off SQLite's process-wide memory statistics, which take one global lock around
/// every allocation SQLite makes on any connection. Call it once, before any thread opens a
/// database (SQLite's configuration is not thread-safe); later calls have no effect.
pub fn configure_sqlite_process() {
    // SAFETY: called before SQLite is initialised (per the contract above); with an
    // initialised library it returns SQLITE_MISUSE and changes nothing.
    unsafe {
        rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS, 0);
    }
}

/// Whether the SQLite write connection comes back to its pool out of any transaction, once
/// the rollback of a transaction dropped uncommitted has run. A connection still counted in
/// one is closed, which rolls back whatever SQLite still holds, and the pool opens a new one:
/// after SQLite rolled a transaction back by itself (a full disk, for one), the driver's
/// rollback fails and its count stays up, and every later transaction would have been a
/// savepoint inside one that never commits, each answered as committed.
async fn settled(conn: &mut sqlx::AnyConnection) -> bool {
    use sqlx::Connection;
    // The count is exact unless a rollback is still queued; only then is it waited for.
    if !conn.is_in_transaction() {
        return true;
    }
    if conn.ping().await.is_err() {
        return false;
    }
    if conn.is_in_transaction() {
        tracing::warn!("the database write connection was left inside a transaction; reopening it");
        return false;
    }
    true
}

/// How long a server waits for its PostgreSQL database to accept a connection at start.
const REACH_FOR: Duration = Duration::from_secs(30);

/// Waits until the database at `url` accepts a connection, trying again every half second for
/// [`REACH_FOR`] (a server may start before its database does), and answers the last
/// connection error when it never does: a pool would only report that it timed out.
async fn reach(url: &str) -> StoreResult<()> {
    use sqlx::Connection;
    let deadline = tokio::time::Instant::now() + REACH_FOR;
    loop {
        let tried = tokio::time::timeout_at(deadline, sqlx::AnyConnection::connect(url)).await;
        let error = match tried {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                return Ok(());
            }
            Ok(Err(e)) => e,
            Err(_) => sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {} s", REACH_FOR.as_secs()),
            )),
        };
        let fatal = matches!(&error, sqlx::Error::Configuration(_) | sqlx::Error::Tls(_))
            || error.as_database_error().is_some_and(|db| {
                db.code()
                    .is_some_and(|c| c.starts_with("28") || c == "3D000")
            });
        if fatal || tokio::time::Instant::now() >= deadline {
            return Err(StoreError::Unreachable(error));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Released PostgreSQL migrations whose SQL was corrected afterwards, by version. A database
/// runs the correction when the migration is still to apply; one that applied the release
/// keeps what it made, as the correction ends the same for the server's own tables.
const CORRECTED_POSTGRES: &[(i64, &str)] = &[(
    16,
    include_str!("../../migrations/corrected/postgres/0016_byte_order_text.sql"),
)];

/// `migrator` with the SQL of each migration `fixes` names replaced. The checksum stays the
/// released file's, which databases that applied it recorded: sqlx refuses to start on a
/// database whose applied migration's checksum differs from the one it was built with.
fn corrected(migrator: Migrator, fixes: &[(i64, &'static str)]) -> Migrator {
    let migrations = migrator
        .iter()
        .cloned()
        .map(|mut m| {
            if let Some((_, sql)) = fixes.iter().find(|(v, _)| *v == m.version) {
                m.sql = sql.into_sql_str();
            }
            m
        })
        .collect();
    Migrator::with_migrations(migrations)
}

/// Waits for an exclusive lock on `<database>.lock` (made when missing) and answers the open
/// file, which holds the lock until it is dropped. The lock is `flock`'s, on a file of its
/// own: a lock taken or released through a descriptor of the database file would drop
/// SQLite's own POSIX locks on it.
async fn lock_beside(database: &Path) -> StoreResult<std::fs::File> {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    let locked = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(std::io::Error::other)??;
    Ok(locked)
}

/// When a store's commit is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commits {
    /// Each commit syncs the log before it returns (SQLite with `synchronous = FULL`;
    /// PostgreSQL as its server is configured).
    Synced,
    /// A commit returns once it is in the log, and [`Store::durable`] makes every commit
    /// made so far durable, commits made while one sync runs sharing the next (SQLite's
    /// write connection runs with `synchronous = NORMAL`, PostgreSQL's connections with
    /// `synchronous_commit = off`: the `log_sync` module). Whoever answers for a write calls
    /// it before answering: the server does for every request that may write. Readers can
    /// see a commit before it is on disk.
    Grouped,
}

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) and brings the schema up to date;
    /// each commit is on disk when it returns ([`Commits::Synced`]).
    pub async fn connect(url: &str) -> StoreResult<Store> {
        Store::connect_with(url, Commits::Synced).await
    }

    /// [`Store::connect`], with commits on disk as `commits` says.
    pub async fn connect_with(url: &str, commits: Commits) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("postgres") {
            Dialect::Postgres
        } else {
            Dialect::Sqlite
        };
        // Whether the connections that write leave the log's sync to `durable`: asked for,
        // and given up when a SQLite database turns out to have no file whose log could be
        // synced.
        let grouped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(
            commits == Commits::Grouped,
        ));
        let opts = |grouped: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>| {
            AnyPoolOptions::new()
                .acquire_timeout(Duration::from_secs(30))
                // A connection is checked before use only when it sat idle for a while (a
                // PostgreSQL server restarted or a proxy dropped it meanwhile): a check before
                // every use is one more round trip per query, and under load connections
                // never sit idle. A SQLite connection is a file handle in this process and is
                // never checked.
                .test_before_acquire(false)
                .before_acquire(move |conn, meta| {
                    Box::pin(async move {
                        if dialect == Dialect::Postgres && meta.idle_for >= POOL_CHECK_IDLE {
                            sqlx::Connection::ping(conn).await?;
                        }
                        Ok(true)
                    })
                })
                .after_connect(move |conn, _| {
                    let relaxed = grouped
                        .as_ref()
                        .is_some_and(|g| g.load(std::sync::atomic::Ordering::SeqCst));
                    let synchronous = if relaxed { "NORMAL" } else { "FULL" };
                    Box::pin(async move {
                        if dialect == Dialect::Postgres && relaxed {
                            // A commit returns before its WAL is flushed; `durable` flushes.
                            conn.execute("SET synchronous_commit = off").await?;
                        }
                        if dialect == Dialect::Sqlite {
                            // The WAL is copied back into the database by a background task
                            // ([`checkpoint_in_background`]), not by the request that commits;
                            // a commit checkpoints by itself only past SQLITE_WAL_LIMIT pages.
                            conn.execute(AssertSqlSafe(format!(
                                "PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; \
                                 PRAGMA synchronous = {synchronous}; \
                                 PRAGMA wal_autocheckpoint = {SQLITE_WAL_LIMIT}; \
                                 PRAGMA journal_size_limit = {SQLITE_WAL_KEEP};"
                            )))
                            .await?;
                        }
                        Ok(())
                    })
                })
        };
        // Set whenever the write pool gets a connection back (so after every commit), and
        // cleared by the background checkpoint once the log is copied.
        let uncopied = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (read, write) = match dialect {
            Dialect::Sqlite => {
                let written = uncopied.clone();
                let write = opts(Some(grouped.clone()))
                    .max_connections(1)
                    .after_release(move |conn, _| {
                        written.store(true, std::sync::atomic::Ordering::SeqCst);
                        Box::pin(async move { Ok(settled(conn).await) })
                    })
                    .connect(url)
                    .await?;
                // The page size applies only to a database that has no tables yet, so it is
                // set before the log mode (which writes the file's first page).
                write
                    .execute(AssertSqlSafe(format!(
                        "PRAGMA page_size = {SQLITE_PAGE_SIZE}; PRAGMA journal_mode = WAL"
                    )))
                    .await?;
                let page: i64 = sqlx::query_scalar("PRAGMA page_size")
                    .fetch_one(&write)
                    .await?;
                if page < i64::from(SQLITE_PAGE_SIZE) {
                    tracing::info!(
                        page_size = page,
                        "the database has pages of {page} bytes; `pictograph compact`, run \
                         with the servers stopped, rewrites it with {SQLITE_PAGE_SIZE}, which \
                         makes batches over large datasets 10-20% faster"
                    );
                }
                let read = opts(None).max_connections(8).connect(url).await?;
                (read, write)
            }
            Dialect::Postgres => {
                reach(url).await?;
                let pool = opts(Some(grouped.clone()))
                    .max_connections(16)
                    .connect(url)
                    .await?;
                (pool.clone(), pool)
            }
        };
        let gather = (dialect == Dialect::Postgres).then(|| gather::Gather::images(url));
        let gather_pending =
            (dialect == Dialect::Postgres).then(|| gather::Gather::pending_uploads(url));
        let gather_annotations =
            (dialect == Dialect::Postgres).then(|| gather::Gather::annotation_texts(url));
        let store = Store {
            read,
            write,
            dialect,
            attaching: Default::default(),
            handed: Default::default(),
            inline: None,
            cache: None,
            log_sync: None,
            gather,
            gather_pending,
            gather_annotations,
            folded: (dialect == Dialect::Postgres).then(Default::default),
        };
        store.migrate().await?;
        let file = store.sqlite_file().await;
        if dialect == Dialect::Sqlite
            && file.is_none()
            && grouped.swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            store.write.execute("PRAGMA synchronous = FULL").await?;
        }
        let log_sync = match &file {
            _ if !grouped.load(std::sync::atomic::Ordering::SeqCst) => None,
            Some(file) => Some(log_sync::LogSync::of_sqlite(file)),
            // PostgreSQL (a SQLite database without a file gave grouping up above).
            None => Some(log_sync::LogSync::of_postgres(url)),
        };
        let store = Store {
            log_sync: log_sync.map(std::sync::Arc::new),
            ..store
        };
        if let Some(folded) = &store.folded {
            fold_in_background(
                store.write.clone(),
                folded.clone(),
                std::sync::Arc::downgrade(&store.attaching),
            );
        }
        Ok(match file {
            Some(file) => {
                checkpoint_in_background(
                    store.read.clone(),
                    uncopied,
                    std::sync::Arc::downgrade(&store.attaching),
                );
                Store {
                    inline: inline::Inline::open(file).map(std::sync::Arc::new),
                    ..store
                }
            }
            None => store,
        })
    }

    /// This store with a read cache of keys and images whose values live at most `ttl`,
    /// kept coherent with every other server on the database at `url` (the `cache` module). Only
    /// PostgreSQL sends the change notices the cache relies on; a SQLite store is returned
    /// as it is (its point reads never leave the process anyway).
    pub fn with_read_cache(self, url: &str, ttl: Duration) -> Store {
        if self.dialect != Dialect::Postgres || ttl.is_zero() {
            return self;
        }
        let cache = std::sync::Arc::new(cache::ReadCache::new(ttl));
        cache.listen(url);
        Store {
            cache: Some(cache),
            ..self
        }
    }

    /// Drops one part of this process's read cache. Every write of this store to images or
    /// keys calls it for that part once it is committed (or failed), before it returns: a
    /// caller reads its own writes through the same server at once, without waiting for the
    /// database's change notice.
    fn forget_cached(&self, part: cache::Part) {
        if let Some(cache) = &self.cache {
            cache.forget(part);
        }
    }

    /// Returns once every commit made before the call is on disk: at once unless the store
    /// groups its commits ([`Commits::Grouped`]), else after a sync (PostgreSQL: a flush)
    /// of the log that began after the call, shared with whoever else waits meanwhile.
    pub async fn durable(&self) -> StoreResult<()> {
        match &self.log_sync {
            Some(log) => log.durable().await,
            None => Ok(()),
        }
    }

    /// Dataset counter changes this store has folded into their rows so far; `None` on SQLite,
    /// which keeps none.
    pub fn folded_counter_changes(&self) -> Option<u64> {
        use std::sync::atomic::Ordering;
        self.folded.as_ref().map(|n| n.load(Ordering::Relaxed))
    }

    /// Syncs of the log that grouped commits have waited for so far; `None` unless the store
    /// groups its commits.
    pub fn log_syncs(&self) -> Option<u64> {
        self.log_sync.as_ref().map(|log| log.syncs())
    }

    /// Commits a write's transaction. Within [`keyed_write`], the transaction first records
    /// that the write of the claimed `Idempotency-Key` was applied, so that the record and
    /// the write become durable together.
    async fn commit(&self, mut tx: Transaction<'static, sqlx::Any>) -> StoreResult<()> {
        if let Ok(write) = KEYED_WRITE.try_with(Clone::clone) {
            sqlx::query(
                "UPDATE idempotency SET applied = 1 \
                 WHERE key_id = $1 AND idem_key = $2 AND status = 0",
            )
            .bind(write.key_id)
            .bind(write.idem_key)
            .execute(&mut *tx)
            .await?;
        }
        Ok(tx.commit().await?)
    }

    /// Commits a transaction that changed images (and so perhaps what the read cache holds of
    /// them), then [`Store::forget_cached`] the images, whether the commit succeeded or not.
    async fn commit_changes(&self, tx: Transaction<'static, sqlx::Any>) -> StoreResult<()> {
        let done = self.commit(tx).await;
        self.forget_cached(cache::Part::Images);
        done
    }

    /// The database file, when the store is a SQLite file (not in memory).
    async fn sqlite_file(&self) -> Option<PathBuf> {
        if self.dialect != Dialect::Sqlite {
            return None;
        }
        sqlx::query("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_optional(&self.read)
            .await
            .ok()
            .flatten()
            .and_then(|row| get::<String>(&row, "file").ok())
            .filter(|f| !f.is_empty())
            .map(PathBuf::from)
    }

    /// The first row of a point read: `sql` with text parameters `$1…$n`. On SQLite it runs
    /// on this thread ([`inline`]), through the read pool otherwise or when that cannot answer.
    async fn read_first<T: FromCells>(
        &self,
        sql: &'static str,
        args: &[&str],
    ) -> StoreResult<Option<T>> {
        if let Some(found) = self
            .inline
            .as_ref()
            .and_then(|i| i.first(sql, args, |row| T::from_row(row)))
        {
            return Ok(found);
        }
        let mut query = sqlx::query(sql);
        for arg in args {
            query = query.bind(*arg);
        }
        let row = query.fetch_optional(&self.read).await?;
        row.as_ref().map(T::from_row).transpose()
    }

    /// `read` (a point read, run only when needed) through the read cache, when there is
    /// one: answered by `cached` when the cache holds the value, otherwise read and handed to
    /// `keep` (which the cache refuses if anything was dropped since the read began).
    async fn read_through<T>(
        &self,
        read: impl std::future::Future<Output = StoreResult<Option<T>>>,
        cached: impl FnOnce(&cache::ReadCache) -> Option<T>,
        keep: impl FnOnce(&cache::ReadCache, cache::Ticket, &T),
    ) -> StoreResult<Option<T>> {
        if let Some(value) = self.cache.as_deref().and_then(cached) {
            return Ok(Some(value));
        }
        self.read_keeping(read, |cache, ticket, found| {
            if let Some(value) = found {
                keep(cache, ticket, value);
            }
        })
        .await
    }

    /// `read`, whose answer is handed to `keep` when there is a read cache (which refuses
    /// what `keep` puts in if anything was dropped since the read began).
    async fn read_keeping<T, E>(
        &self,
        read: impl std::future::Future<Output = Result<T, E>>,
        keep: impl FnOnce(&cache::ReadCache, cache::Ticket, &T),
    ) -> Result<T, E> {
        let Some(cache) = &self.cache else {
            return read.await;
        };
        let ticket = cache.ticket();
        let found = read.await?;
        if let Some(ticket) = ticket {
            keep(cache, ticket, &found);
        }
        Ok(found)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let migrator = match self.dialect {
            Dialect::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Dialect::Postgres => {
                corrected(sqlx::migrate!("./migrations/postgres"), CORRECTED_POSTGRES)
            }
        };
        // sqlx serialises migrations with an advisory lock on PostgreSQL only. Processes that
        // start together on one SQLite file would each apply what is pending, and all but the
        // first fail; they take turns under a lock on a file beside the database instead.
        let _turn = match self.sqlite_file().await {
            Some(db) => Some(lock_beside(&db).await?),
            None => None,
        };
        migrator
            .run(&self.write)
            .await
            .map_err(|e| StoreError::Db(e.into()))
    }

    /// Begins a write transaction.
    async fn tx(&self) -> StoreResult<Transaction<'static, sqlx::Any>> {
        Ok(self.write.begin_with(self.dialect.begin_write()).await?)
    }

    /// The dialect of the database.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Point reads of images gathered into shared statements so far; `None` on SQLite,
    /// whose reads never leave the process.
    pub fn gather_stats(&self) -> Option<GatherStats> {
        self.gather.as_ref().map(|g| g.stats())
    }

    /// Reads of pending uploads (one per upload PUT) gathered so far; `None` on SQLite.
    pub fn pending_gather_stats(&self) -> Option<GatherStats> {
        self.gather_pending.as_ref().map(|g| g.stats())
    }

    /// Reads of one image's annotation list gathered so far; `None` on SQLite.
    pub fn annotation_gather_stats(&self) -> Option<GatherStats> {
        self.gather_annotations.as_ref().map(|g| g.stats())
    }

    /// The connection pools' state now: one pool on PostgreSQL, the read and the write pool
    /// on SQLite.
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        let stats = |name, pool: &AnyPool| PoolStats {
            name,
            open: pool.size(),
            idle: pool.num_idle() as u32,
        };
        match self.dialect {
            Dialect::Sqlite => vec![stats("read", &self.read), stats("write", &self.write)],
            Dialect::Postgres => vec![stats("main", &self.write)],
        }
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }
}

/// A connection pool's state.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    /// `read`, `write` or `main`.
    pub name: &'static str,
    /// Connections open.
    pub open: u32,
    /// Of those, the ones waiting for work.
    pub idle: u32,
}

/// How long a pooled PostgreSQL connection may sit idle and still be used without a check.
const POOL_CHECK_IDLE: Duration = Duration::from_secs(1);

/// Bytes of a page of a SQLite database this server creates (SQLite's default is 4,096). A
/// batch over images spread through a large dataset changes a row or two in nearly every
/// page of the table and of the indexes it touches, and its time goes mostly into reading
/// and logging those pages: with pages twice as large, half as many reads and writes carry
/// the same bytes: 100,000 images spread over a million moved 10% faster, archived and
/// restored 13% faster (medians of `bench/batch_ab.sh --seed-each`).
/// A database keeps the page size it was created with.
const SQLITE_PAGE_SIZE: u32 = 8192;

/// WAL pages past which a SQLite commit checkpoints by itself (the background task keeps the
/// WAL far below this unless it falls behind). About 1 GB of 8 KB pages: a batch that changes
/// 100,000 images spread over a million writes about 50,000 of them, and its commit then only
/// syncs them instead of also copying them all into the database (0.8 s of a 2 s request).
const SQLITE_WAL_LIMIT: u32 = 125_000;

/// Bytes of log file kept once the log starts over; a larger file left by a large commit is
/// cut back to this.
const SQLITE_WAL_KEEP: u64 = 64 << 20;

/// Copies committed WAL pages back into the SQLite database every 200 ms, off the request
/// path: a commit then only writes and syncs its own pages. A passive checkpoint blocks no
/// reader or writer. It runs only after the write pool got a connection back (`uncopied`, set
/// once a commit has completed, sync included) and again until a checkpoint reports every
/// frame of the log copied: checkpoints of a fully copied log are not free (while they went
/// on every 200 ms, the inline read-only connections re-read every page from the file at
/// each read, about ten `pread`s per metadata request against none).
///
/// It never opens the `-shm` file itself: closing a descriptor of a file drops every POSIX
/// lock the process holds on it, SQLite's included, and another process opening the database
/// then takes the wal-index for abandoned, truncates it under this process's mapping (a
/// SIGBUS) and rebuilds it without this process's read marks. Stops once `alive` (a part of
/// the store every clone shares) is gone.
fn checkpoint_in_background<T: Send + Sync + 'static>(
    pool: AnyPool,
    uncopied: std::sync::Arc<std::sync::atomic::AtomicBool>,
    alive: std::sync::Weak<T>,
) {
    use std::sync::atomic::Ordering;
    while_alive(Duration::from_millis(200), alive, move || {
        let (pool, uncopied) = (pool.clone(), uncopied.clone());
        async move {
            if !uncopied.swap(false, Ordering::SeqCst) {
                return;
            }
            // (busy, frames in the log, frames copied); -1s when the file is not in WAL mode.
            match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&pool)
                .await
            {
                Ok(row) => {
                    let frames = sqlx::Row::try_get::<i64, _>(&row, 1).unwrap_or(0);
                    let copied = sqlx::Row::try_get::<i64, _>(&row, 2).unwrap_or(0);
                    if copied < frames {
                        uncopied.store(true, Ordering::SeqCst);
                    }
                }
                Err(e) => {
                    tracing::warn!("wal checkpoint: {e}");
                    uncopied.store(true, Ordering::SeqCst);
                }
            }
        }
    });
}

/// Folds PostgreSQL's dataset counter changes into their rows every 250 ms
/// (`datasets::fold_counter_changes`), so that a read of a dataset adds up only the changes of
/// the last moments. Stops once `alive` (a part of the store every clone shares) is gone.
fn fold_in_background<T: Send + Sync + 'static>(
    pool: AnyPool,
    folded: std::sync::Arc<std::sync::atomic::AtomicU64>,
    alive: std::sync::Weak<T>,
) {
    while_alive(Duration::from_millis(250), alive, move || {
        let (pool, folded) = (pool.clone(), folded.clone());
        async move {
            if let Err(e) = datasets::fold_counter_changes(&pool, &folded).await {
                tracing::warn!("folding dataset counter changes: {e}");
            }
        }
    });
}

/// Runs `step` every `period` (a late run delays the next ones) until `alive` is gone.
fn while_alive<T, F, R>(period: Duration, alive: std::sync::Weak<T>, mut step: F)
where
    T: Send + Sync + 'static,
    F: FnMut() -> R + Send + 'static,
    R: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if alive.strong_count() == 0 {
                break;
            }
            step().await;
        }
    });
}

/// The claimed `Idempotency-Key` a request runs under.
#[derive(Debug, Clone)]
pub struct KeyedWrite {
    /// The API key's id.
    pub key_id: String,
    /// The `Idempotency-Key` it sent.
    pub idem_key: String,
}

tokio::task_local! {
    static KEYED_WRITE: KeyedWrite;
}

/// Runs `request`, which holds the claim on `write`'s key: every write transaction the store
/// commits within it through its `commit` records, in that same transaction, that the
/// request was applied. Writes whose repetition does no harm (upload URLs, export jobs,
/// dataset patches) commit without it, so that a retry after a crash runs them again.
pub async fn keyed_write<F: std::future::Future>(write: KeyedWrite, request: F) -> F::Output {
    KEYED_WRITE.scope(write, request).await
}

fn get<T: inline::Column>(row: &impl inline::Cells, col: &str) -> StoreResult<T> {
    row.cell(col)
}

/// The image content hash of a row, which keeps it as 32 bytes, as the hex every answer and
/// the blob store show.
fn blob_hash(row: &impl inline::Cells) -> StoreResult<String> {
    Ok(hex::encode(get::<Vec<u8>>(row, "blob_hash")?))
}

/// A row type read from either driver's rows.
trait FromCells: Sized {
    /// Decodes one row.
    fn from_row<R: inline::Cells>(r: &R) -> StoreResult<Self>;
}

/// Store helpers shared by the unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::Store;

    /// Adds `rows` random blobs of `bytes` each to table `filler` (made when missing), in one
    /// transaction.
    pub(crate) async fn fill(store: &Store, rows: u32, bytes: u32) {
        sqlx::query("CREATE TABLE IF NOT EXISTS filler (x BLOB)")
            .execute(&store.write)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
             INSERT INTO filler SELECT randomblob({bytes}) FROM n"
        )))
        .execute(&store.write)
        .await
        .unwrap();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn image_times_read_back_as_the_text_written() {
        for text in [
            "2026-01-01T00:00:00.000000Z",
            "2026-03-04T05:06:07.123456Z",
            "1969-12-31T23:59:59.999999Z",
            "9999-12-31T23:59:59.000001Z",
        ] {
            let micros = super::micros_of(text).unwrap();
            assert_eq!(super::time_of(micros), text);
        }
        let now = chrono::Utc::now();
        let written = now.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        assert_eq!(super::now().len(), written.len());
        assert_eq!(super::fmt_time(now), written);
        assert_eq!(super::time_of(super::micros_of(&written).unwrap()), written);
        assert_eq!(super::micros_of("yesterday"), None);
    }

    use super::testing::fill;
    use super::*;

    /// The value of an integer `PRAGMA` on a connection of `pool`.
    async fn pragma(pool: &AnyPool, name: &str) -> i64 {
        sqlx::query_scalar(AssertSqlSafe(format!("PRAGMA {name}")))
            .fetch_one(pool)
            .await
            .unwrap()
    }

    /// Only the write connection of a store that groups its commits leaves the log's sync to
    /// [`Store::durable`]; other stores, and every read connection (whose checkpoints copy
    /// the log), sync as SQLite does by default in WAL mode with `FULL`.
    #[tokio::test]
    async fn only_a_grouping_store_commits_without_a_sync() {
        for (commits, write_level) in [(Commits::Synced, 2), (Commits::Grouped, 1)] {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
            let store = Store::connect_with(&url, commits).await.unwrap();
            assert_eq!(
                pragma(&store.write, "synchronous").await,
                write_level,
                "{commits:?}"
            );
            assert_eq!(pragma(&store.read, "synchronous").await, 2, "{commits:?}");
            fill(&store, 10, 100).await;
            store.durable().await.unwrap();
            let syncs = store.log_syncs();
            assert_eq!(
                syncs,
                (commits == Commits::Grouped).then_some(1),
                "{commits:?}"
            );
        }
        // A database without a file has no log to sync: its commits stay synced.
        let store = Store::connect_with("sqlite::memory:", Commits::Grouped)
            .await
            .unwrap();
        assert_eq!(pragma(&store.write, "synchronous").await, 2);
        assert_eq!(store.log_syncs(), None);
    }

    /// A database the store creates gets pages of [`SQLITE_PAGE_SIZE`] bytes; one created
    /// before keeps its own, and is migrated all the same.
    #[tokio::test]
    async fn new_databases_get_large_pages_and_older_ones_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let url = |name: &str| format!("sqlite://{}?mode=rwc", dir.path().join(name).display());
        let store = Store::connect(&url("new.db")).await.unwrap();
        assert_eq!(
            pragma(&store.write, "page_size").await,
            i64::from(SQLITE_PAGE_SIZE)
        );
        fill(&store, 10, 100).await;
        drop(store);
        let store = Store::connect(&url("new.db")).await.unwrap();
        assert_eq!(
            pragma(&store.write, "page_size").await,
            i64::from(SQLITE_PAGE_SIZE)
        );

        let old = rusqlite::Connection::open(dir.path().join("old.db")).unwrap();
        old.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE kept (a TEXT)")
            .unwrap();
        drop(old);
        let store = Store::connect(&url("old.db")).await.unwrap();
        assert_eq!(pragma(&store.write, "page_size").await, 4096);
        for table in ["images", "kept"] {
            sqlx::query(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&store.write)
                .await
                .unwrap();
        }
    }

    /// Large commits are copied into the database by the background task, whenever their
    /// writes and their sync fall between its runs: the database file grows by what each
    /// one added without anything else writing.
    #[tokio::test]
    async fn large_commits_are_copied_into_the_database_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let store = Store::connect(&url).await.unwrap();
        for round in 0..8u64 {
            // About 40 MB in one transaction: pages spill into the log before the commit,
            // whose sync then takes a while.
            fill(&store, 10_000, 4000).await;
            let mut copied = false;
            for _ in 0..50 {
                if std::fs::metadata(&file).unwrap().len() >= (round + 1) * 40_000_000 {
                    copied = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(
                copied,
                "round {round}: the log is not copied 5 s after the commit"
            );
        }
    }

    /// The store keeps its locks on the wal-index while it runs (see
    /// [`checkpoint_in_background`]): another process opening the database finds the file in
    /// use instead of resetting it under this one.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_wal_index_stays_locked_while_the_store_runs() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let store = Store::connect(&url).await.unwrap();
        fill(&store, 100, 100).await;
        // Several background runs, each after a commit.
        for _ in 0..4 {
            fill(&store, 10, 100).await;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let shm = std::fs::metadata(dir.path().join("t.db-shm")).unwrap();
        let inode = format!(":{}", shm.ino());
        let pid = std::process::id().to_string();
        let locks = std::fs::read_to_string("/proc/locks").unwrap();
        let held = locks.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 5 && f[4] == pid && f[5].ends_with(&inode)
        });
        assert!(held, "no lock of this process on the wal-index:\n{locks}");
    }

    /// SQLite can end a transaction by itself (a full disk fails a write midway): the
    /// driver's rollback then fails and it still counts the transaction, so it would make the
    /// next one a savepoint, which a failed statement rolls back only to its start, leaving
    /// the real transaction open; every later write would then be answered as committed and
    /// never reach the database. Such a connection is reopened as it returns to the pool.
    #[tokio::test]
    async fn a_transaction_sqlite_ended_by_itself_does_not_swallow_later_writes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let store = Store::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER PRIMARY KEY)")
            .execute(&store.write)
            .await
            .unwrap();

        // What SQLite does on a full disk, done by hand: the transaction ends under the
        // driver, whose rollback on drop then fails.
        let mut tx = store.tx().await.unwrap();
        sqlx::query("ROLLBACK").execute(&mut *tx).await.unwrap();
        drop(tx);
        // A transaction that fails and is dropped.
        let mut tx = store.tx().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut *tx)
            .await
            .unwrap();
        assert!(sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut *tx)
            .await
            .is_err());
        drop(tx);

        // A write answered as committed is in the database file.
        store.ensure_org("acme").await.unwrap();
        let mut tx = store.tx().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (2)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let other = rusqlite::Connection::open(&file).unwrap();
        let orgs: i64 = other
            .query_row(
                "SELECT COUNT(*) FROM organizations WHERE name = 'acme'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let rows: Vec<i64> = other
            .prepare("SELECT x FROM t ORDER BY x")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!((orgs, rows), (1, vec![2]));
    }
}
