//! Rewriting an embedded (SQLite) database compactly, for `pictograph compact`: SQLite never
//! gives back the pages that deleted rows freed, and a database keeps the page size it was
//! created with, so a database created with pages smaller than the ones new databases get
//! (8 KB), or one that purged many images, gets either only through a rewrite.

use super::SQLITE_PAGE_SIZE;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// What compacting a database did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Compacted {
    /// Bytes of the database file before (its log copied in first).
    pub bytes_before: u64,
    /// Bytes after.
    pub bytes_after: u64,
    /// Page size before.
    pub page_size_before: u32,
    /// Page size after.
    pub page_size: u32,
}

/// Why a database was not compacted.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    /// Another connection (a running server, a backup) has the database open.
    #[error(
        "the database is in use: stop the servers (and any backup) that use {0} and run this again"
    )]
    InUse(String),
    /// Any other failure; the database is as it was.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file's size could not be read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Rewrites the database at `path` without free pages and with the pages new databases get
/// (8 KB; `VACUUM`), and leaves it in WAL mode, as servers run it.
/// Refuses, changing nothing, while another connection has the database open. The rewrite
/// runs under SQLite's rollback journal: a crash midway leaves the database as it was, and it
/// needs free space of about the database's size.
pub fn compact(path: &Path) -> Result<Compacted, CompactError> {
    let in_use = || CompactError::InUse(path.display().to_string());
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(2))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Leaving WAL mode needs the only connection to the database: a server or a backup that
    // has it open keeps it in WAL mode, and SQLite answers the mode it stays in.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                in_use()
            }
            _ => e.into(),
        })?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(in_use());
    }
    let page_size_before: u32 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let bytes_before = std::fs::metadata(path)?.len();
    conn.pragma_update(None, "page_size", SQLITE_PAGE_SIZE)?;
    let vacuumed = conn.execute_batch("VACUUM");
    // Back to WAL mode whether or not the rewrite went through.
    conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))?;
    vacuumed?;
    let page_size: u32 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    drop(conn);
    Ok(Compacted {
        bytes_before,
        bytes_after: std::fs::metadata(path)?.len(),
        page_size_before,
        page_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAL-mode database of 4 KB pages, as earlier versions made them, with `rows` rows of
    /// 1 KB, most of them deleted again.
    fn old_database(path: &Path, rows: u32) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL;
             CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
             INSERT INTO t SELECT i, randomblob(1000) FROM n;
             DELETE FROM t WHERE id % 10 <> 0;
             PRAGMA wal_checkpoint(TRUNCATE);"
        ))
        .unwrap();
        conn
    }

    fn sum_of_ids(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("SELECT SUM(id) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    /// Free pages go, pages become [`SQLITE_PAGE_SIZE`] bytes, every row stays, and the
    /// database is in WAL mode again.
    #[test]
    fn compacting_frees_pages_and_enlarges_them_keeping_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(old_database(&path, 4000));
        let before = sum_of_ids(&path);
        let done = compact(&path).unwrap();
        assert_eq!(done.page_size_before, 4096);
        assert_eq!(done.page_size, SQLITE_PAGE_SIZE);
        assert!(
            done.bytes_after * 3 < done.bytes_before,
            "{} bytes after, {} before",
            done.bytes_after,
            done.bytes_before
        );
        assert_eq!(sum_of_ids(&path), before);
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let size: u32 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        assert_eq!(size, SQLITE_PAGE_SIZE);
    }

    /// While another connection has the database open, nothing changes and the error says
    /// what to stop.
    #[test]
    fn a_database_in_use_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let other = old_database(&path, 400);
        let size = std::fs::metadata(&path).unwrap().len();
        let err = compact(&path).unwrap_err();
        assert!(matches!(err, CompactError::InUse(_)), "{err}");
        assert!(err.to_string().contains("stop the servers"), "{err}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
        let (mode, page): (String, u32) = other
            .query_row(
                "SELECT * FROM pragma_journal_mode, pragma_page_size",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((mode.as_str(), page), ("wal", 4096));
    }
}
