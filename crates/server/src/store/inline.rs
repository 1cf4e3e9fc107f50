//! Point reads answered on the calling thread (SQLite only).
//!
//! A query through the sqlx pool is handed to the connection's worker thread and its rows are
//! handed back: two thread wake-ups per query, which is most of the cost of a request that
//! reads one key and one image. Such lookups instead run here, synchronously, on a read-only
//! connection of the same database file. They are index lookups of a few microseconds, so they
//! do not hold up the async worker. Anything unexpected (a busy database, a missing table, a
//! value that does not decode) makes the caller take the pooled path instead, so this path can
//! only ever be faster, never answer differently.

use super::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::Mutex;

/// SQLite's planner flag for the use of `sqlite_stat4` samples (`SQLITE_Stat4`).
const STAT4_OPTIMIZATION: std::ffi::c_uint = 0x0000_0800;

/// Idle connections kept for reuse; more may be open at once, the surplus is closed.
const IDLE_MAX: usize = 8;

/// Read-only connections to the store's SQLite file.
pub(super) struct Inline {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Inline {
    /// Inline reads of the database file at `path`, if a read-only connection opens on it.
    pub(super) fn open(path: PathBuf) -> Option<Inline> {
        let inline = Inline {
            path,
            idle: Mutex::new(Vec::new()),
        };
        let conn = inline.connect().ok()?;
        inline.put(conn);
        if shared_page_cache() {
            tracing::warn!(
                "this SQLite build shares one page cache among its connections \
                 (SQLITE_ENABLE_MEMORY_MANAGEMENT): after large reads, point reads re-read \
                 their pages at every request; build in the workspace, whose \
                 .cargo/config.toml leaves the option out"
            );
        }
        Some(inline)
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Never wait for a lock on an async worker thread: a busy database sends the read
        // to the pool, whose threads may wait.
        conn.busy_timeout(std::time::Duration::ZERO)?;
        conn.set_prepared_statement_cache_capacity(32);
        // With `sqlite_stat4` present (after an ANALYZE), SQLite re-prepares a statement on
        // every new binding of a parameter its plan estimates from; these lookups by unique
        // keys plan the same without those samples, so they are kept prepared.
        // SAFETY: the handle is this open connection's; the call only sets its planner mask.
        unsafe {
            rusqlite::ffi::sqlite3_test_control(
                rusqlite::ffi::SQLITE_TESTCTRL_OPTIMIZATIONS,
                conn.handle(),
                STAT4_OPTIMIZATION,
            );
        }
        Ok(conn)
    }

    fn take(&self) -> rusqlite::Result<Connection> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => self.connect(),
        }
    }

    fn put(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE_MAX {
            idle.push(conn);
        }
    }

    /// The first row of `sql` with text parameters `$1…$n` bound to `args`, decoded by
    /// `decode`; `None` when this path could not answer and the pool must.
    pub(super) fn first<T>(
        &self,
        sql: &str,
        args: &[&str],
        decode: impl FnOnce(&InlineRow<'_, '_>) -> StoreResult<T>,
    ) -> Option<Option<T>> {
        let conn = self.take().ok()?;
        let found = Self::run(&conn, sql, args, decode);
        // A connection whose statement failed may hold a read transaction open; drop it.
        if found.is_some() {
            self.put(conn);
        }
        found
    }

    fn run<T>(
        conn: &Connection,
        sql: &str,
        args: &[&str],
        decode: impl FnOnce(&InlineRow<'_, '_>) -> StoreResult<T>,
    ) -> Option<Option<T>> {
        let mut stmt = conn.prepare_cached(sql).ok()?;
        for (i, arg) in args.iter().enumerate() {
            let index = stmt.parameter_index(&format!("${}", i + 1)).ok()??;
            stmt.raw_bind_parameter(index, arg).ok()?;
        }
        let mut rows = stmt.raw_query();
        match rows.next().ok()? {
            None => Some(None),
            Some(row) => decode(&InlineRow::new(row).ok()?).ok().map(Some),
        }
    }
}

/// Whether this SQLite build shares one page cache among all its connections
/// (`SQLITE_ENABLE_MEMORY_MANAGEMENT`). Shared, a connection that reads many pages takes the
/// least recently used pages of the others and keeps them, so the group stays full; a page an
/// inline connection then reads is freed as soon as it is released, and every request reads
/// its pages again. The workspace builds SQLite without it (`.cargo/config.toml`).
pub(super) fn shared_page_cache() -> bool {
    // SAFETY: a NUL-terminated option name; the call only reads SQLite's compile-time list.
    unsafe { rusqlite::ffi::sqlite3_compileoption_used(c"ENABLE_MEMORY_MANAGEMENT".as_ptr()) == 1 }
}

/// A value readable from a row of any driver the store uses.
pub trait Column:
    for<'r> sqlx::Decode<'r, sqlx::Any>
    + sqlx::Type<sqlx::Any>
    + for<'r> sqlx::Decode<'r, sqlx::Postgres>
    + sqlx::Type<sqlx::Postgres>
    + rusqlite::types::FromSql
{
}

impl<T> Column for T where
    T: for<'r> sqlx::Decode<'r, sqlx::Any>
        + sqlx::Type<sqlx::Any>
        + for<'r> sqlx::Decode<'r, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
        + rusqlite::types::FromSql
{
}

/// A result row of any driver: the pool's, a native PostgreSQL one or an inline one.
pub trait Cells {
    /// The value of column `col`.
    fn cell<T: Column>(&self, col: &str) -> StoreResult<T>;
}

impl Cells for sqlx::any::AnyRow {
    fn cell<T: Column>(&self, col: &str) -> StoreResult<T> {
        use sqlx::Row;
        Ok(self.try_get::<T, _>(col)?)
    }
}

impl Cells for sqlx::postgres::PgRow {
    fn cell<T: Column>(&self, col: &str) -> StoreResult<T> {
        use sqlx::Row;
        Ok(self.try_get::<T, _>(col)?)
    }
}

/// A row of an inline read, with its column names read once. rusqlite finds a column by
/// name by asking SQLite for every column's name until one matches: decoding an image (16
/// columns) that way took about 130 such calls, 6% of the server's time serving image
/// metadata.
pub struct InlineRow<'r, 's> {
    row: &'r rusqlite::Row<'s>,
    names: Vec<&'r str>,
    /// Where to look first: rows are mostly decoded in the order their columns are selected.
    next: std::cell::Cell<usize>,
}

impl<'r, 's> InlineRow<'r, 's> {
    /// The row with its column names; an error (SQLite could not allocate a name) sends the
    /// read to the pool.
    fn new(row: &'r rusqlite::Row<'s>) -> rusqlite::Result<Self> {
        let stmt = row.as_ref();
        let names = (0..stmt.column_count())
            .map(|i| stmt.column_name(i))
            .collect::<rusqlite::Result<_>>()?;
        Ok(InlineRow {
            row,
            names,
            next: std::cell::Cell::new(0),
        })
    }

    /// The index of column `col` (named as rusqlite names it: ASCII case ignored).
    fn index(&self, col: &str) -> Option<usize> {
        let n = self.names.len();
        let start = self.next.get();
        let found = (start..n)
            .chain(0..start.min(n))
            .find(|&i| self.names[i].eq_ignore_ascii_case(col))?;
        self.next.set(found + 1);
        Some(found)
    }
}

impl Cells for InlineRow<'_, '_> {
    fn cell<T: Column>(&self, col: &str) -> StoreResult<T> {
        let decoded = match self.index(col) {
            Some(i) => self.row.get::<_, T>(i),
            None => Err(rusqlite::Error::InvalidColumnName(col.into())),
        };
        decoded.map_err(|e| StoreError::Db(sqlx::Error::Decode(Box::new(e))))
    }
}

#[cfg(test)]
mod tests {
    use super::Inline;
    use crate::store::{get, Store};
    use std::sync::Arc;

    const LIVE_KEY: &str = "SELECT org_id, prefix FROM api_keys \
         WHERE prefix = $2 AND key_hash = $1 AND revoked_at IS NULL";

    /// A store in a fresh file with one organisation holding key `pk_a` (hash `hash-a`), its
    /// inline reader, and the organisation's id; the directory lives as long as the store
    /// is used.
    async fn store_with_key() -> (tempfile::TempDir, Store, Arc<Inline>, String) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.unwrap();
        let inline = store.inline.clone().expect("a file database reads inline");
        let org = store.ensure_org("o").await.unwrap();
        store
            .insert_key(&org.id, "pk_a", "hash-a", "owner", "free")
            .await
            .unwrap();
        (dir, store, inline, org.id)
    }

    #[tokio::test]
    async fn point_reads_answer_on_this_thread_and_see_every_commit() {
        let (_dir, store, inline, org_id) = store_with_key().await;
        // Statistics make SQLite re-plan parametrised statements; answers must not change.
        sqlx::query("ANALYZE").execute(&store.write).await.unwrap();
        let read = |hash: &'static str, prefix: &'static str| {
            inline.first(LIVE_KEY, &[hash, prefix], |r| {
                Ok((get::<String>(r, "org_id")?, get::<String>(r, "prefix")?))
            })
        };
        // `$2` comes first in the text: parameters are bound by number, not by position.
        assert_eq!(
            read("hash-a", "pk_a"),
            Some(Some((org_id.clone(), "pk_a".to_string())))
        );
        assert_eq!(read("hash-a", "pk_b"), Some(None));
        assert!(store.revoke_key("pk_a").await.unwrap());
        assert_eq!(
            read("hash-a", "pk_a"),
            Some(None),
            "a revoke is seen at once"
        );
        // A statement SQLite rejects is left to the pool, which reports it.
        assert!(inline
            .first("SELECT nope FROM nowhere", &[], |_| Ok(()))
            .is_none());
        assert!(store.key_by_hash("hash-a").await.unwrap().is_none());
    }

    /// Columns are found by name whatever the order they are read in, ASCII case ignored.
    #[tokio::test]
    async fn columns_are_found_by_name_in_any_order() {
        let (_dir, _store, inline, org_id) = store_with_key().await;
        let sql = "SELECT prefix, org_id, 7 AS n FROM api_keys WHERE prefix = $1";
        let read = inline.first(sql, &["pk_a"], |r| {
            Ok((
                get::<i64>(r, "n")?,
                get::<String>(r, "org_id")?,
                get::<String>(r, "PREFIX")?,
                get::<String>(r, "org_id")?,
            ))
        });
        assert_eq!(
            read,
            Some(Some((7, org_id.clone(), "pk_a".to_string(), org_id)))
        );
        // A column the statement does not have sends the read to the pool.
        assert!(inline
            .first(sql, &["pk_a"], |r| get::<String>(r, "nope"))
            .is_none());
    }

    /// Page reads an inline connection has had to make so far.
    fn cache_misses(conn: &rusqlite::Connection) -> i32 {
        let (mut now, mut high) = (0, 0);
        // SAFETY: the handle is this open connection's; the call only reads its counters.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_db_status(
                conn.handle(),
                rusqlite::ffi::SQLITE_DBSTATUS_CACHE_MISS,
                &mut now,
                &mut high,
                0,
            )
        };
        assert_eq!(rc, rusqlite::ffi::SQLITE_OK);
        now
    }

    #[tokio::test]
    async fn point_reads_keep_their_pages_after_large_reads_elsewhere() {
        let (_dir, store, inline, org_id) = store_with_key().await;
        // About 24 MB: more pages than the caches of every connection together hold.
        crate::store::testing::fill(&store, 8000, 3000).await;
        let conn = inline.take().unwrap();
        let lookup = |conn: &rusqlite::Connection| {
            Inline::run(conn, LIVE_KEY, &["hash-a", "pk_a"], |r| {
                get::<String>(r, "org_id")
            })
        };
        assert_eq!(lookup(&conn), Some(Some(org_id.clone())));
        // Large reads through both pools, as download listings and writes make: with one
        // cache shared by all connections, each takes the others' least recently used pages
        // and then grows back, until together they hold every page the group allows.
        for _ in 0..3 {
            for pool in [&store.read, &store.write] {
                let total: i64 = sqlx::query_scalar("SELECT sum(length(x)) FROM filler")
                    .fetch_one(pool)
                    .await
                    .unwrap();
                assert_eq!(total, 8000 * 3000);
            }
        }
        assert_eq!(lookup(&conn), Some(Some(org_id.clone())));
        let before = cache_misses(&conn);
        for _ in 0..20 {
            assert_eq!(lookup(&conn), Some(Some(org_id.clone())));
        }
        assert_eq!(
            cache_misses(&conn) - before,
            0,
            "repeated point reads are answered from the connection's cache"
        );
        inline.put(conn);
        assert!(
            !super::shared_page_cache(),
            "SQLite is built with a page cache per connection"
        );
    }
}
