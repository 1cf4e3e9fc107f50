//! Group commit: commits that share one sync of the write-ahead log.
//!
//! SQLite syncs its log inside every commit (`synchronous = FULL`), while holding the
//! database's only write lock, so concurrent writers queue behind one disk flush each: 64
//! clients saving annotations made about 2,000 commits a second, each waiting for the ones
//! before. A store that groups its commits runs its write connection with
//! `synchronous = NORMAL` instead (a commit writes its pages into the log and returns; SQLite
//! still syncs the log before copying it into the database, and the database after) and
//! makes commits durable afterwards, with [`LogSync::durable`], outside the lock: every
//! commit made while one sync runs waits for the next, and that one sync covers them all.
//!
//! A sync of the log file covers whatever any connection, in any process, wrote into it
//! before the sync began. Frames already copied out of the log are in the database, which the
//! copy synced before the log could start over; a log that is gone was copied whole when the
//! last connection closed. The log file is opened for each sync (SQLite holds no lock on it,
//! so closing it drops none) and never kept: it may be replaced between two syncs.
//!
//! On PostgreSQL the same holds for the row locks a transaction keeps until its commit is
//! flushed (uploads and batches lock their dataset's row, saves their image's): the connections
//! commit with `synchronous_commit = off`, and a flush is the commit of a transaction that
//! wrote a record (`SELECT txid_current()`) on a connection of its own with the server's
//! default setting, which waits until the WAL is flushed up to that record, so up to every
//! commit made before it, by any server. Each flush takes a transaction id, at most one for
//! each write it covers (every write takes one of its own anyway).

use super::StoreResult;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Syncs of one database's write-ahead log, shared by the commits made meanwhile.
#[derive(Debug)]
pub(super) struct LogSync {
    log: Log,
    /// Held by the caller whose sync runs (with the connection a PostgreSQL flush commits
    /// on, once opened); the others wait for it, then check whether it covered them.
    turn: tokio::sync::Mutex<Option<sqlx::AnyConnection>>,
    /// Syncs begun so far.
    begun: AtomicU64,
    /// The number of the last sync that completed (they complete in order).
    done: AtomicU64,
}

/// The log a [`LogSync`] syncs.
#[derive(Debug)]
enum Log {
    /// A SQLite database's `-wal` file.
    File(PathBuf),
    /// The WAL of the PostgreSQL server at this URL.
    Postgres(String),
}

impl LogSync {
    /// The syncs of the log of the SQLite database in `file`.
    pub(super) fn of_sqlite(file: &Path) -> LogSync {
        let mut log = file.as_os_str().to_owned();
        log.push("-wal");
        LogSync::of(Log::File(PathBuf::from(log)))
    }

    /// The flushes of the WAL of the PostgreSQL database at `url`.
    pub(super) fn of_postgres(url: &str) -> LogSync {
        LogSync::of(Log::Postgres(url.to_string()))
    }

    fn of(log: Log) -> LogSync {
        LogSync {
            log,
            turn: tokio::sync::Mutex::new(None),
            begun: AtomicU64::new(0),
            done: AtomicU64::new(0),
        }
    }

    /// Returns once a sync of the log that began after this call has completed, so every
    /// commit that returned before the call is on disk. Callers that arrive while a sync runs
    /// share the next one.
    pub(super) async fn durable(&self) -> StoreResult<()> {
        let seen = self.begun.load(Ordering::SeqCst);
        let mut turn = self.turn.lock().await;
        // A sync numbered above `seen` began after this call.
        if self.done.load(Ordering::SeqCst) > seen {
            return Ok(());
        }
        let number = self.begun.fetch_add(1, Ordering::SeqCst) + 1;
        match &self.log {
            Log::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || sync_file(&path))
                    .await
                    .map_err(std::io::Error::other)??;
            }
            Log::Postgres(url) => flush_postgres(url, &mut turn).await?,
        }
        self.done.store(number, Ordering::SeqCst);
        Ok(())
    }

    /// Syncs completed so far.
    pub(super) fn syncs(&self) -> u64 {
        self.done.load(Ordering::SeqCst)
    }
}

/// Syncs the data of the file at `path`; a missing file has nothing to sync.
fn sync_file(path: &Path) -> std::io::Result<()> {
    match std::fs::File::open(path) {
        Ok(file) => file.sync_data(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Commits a transaction with a record of its own on `conn` (opened to `url` first when
/// there is none), which returns once the server's WAL is flushed past it. A connection
/// that failed is dropped (the next flush opens another).
async fn flush_postgres(url: &str, conn: &mut Option<sqlx::AnyConnection>) -> StoreResult<()> {
    use sqlx::Connection;
    let mut open = match conn.take() {
        Some(open) => open,
        None => sqlx::AnyConnection::connect(url).await?,
    };
    sqlx::query("SELECT txid_current()")
        .execute(&mut open)
        .await?;
    *conn = Some(open);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn callers_waiting_for_one_sync_share_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        std::fs::write(dir.path().join("t.db-wal"), b"frames").unwrap();
        let sync = LogSync::of_sqlite(&db);
        assert_eq!(sync.syncs(), 0);
        sync.durable().await.unwrap();
        assert_eq!(sync.syncs(), 1, "a caller alone syncs");
        // Polled in order in one task: the first begins sync 2; the 31 others arrive while it
        // runs, so it does not cover them, and they all share sync 3.
        let calls: Vec<_> = (0..32).map(|_| sync.durable()).collect();
        for r in futures::future::join_all(calls).await {
            r.unwrap();
        }
        assert_eq!(sync.syncs(), 3);
    }

    #[tokio::test]
    async fn a_database_without_a_log_has_nothing_to_sync() {
        let dir = tempfile::tempdir().unwrap();
        let sync = LogSync::of_sqlite(&dir.path().join("t.db"));
        sync.durable().await.unwrap();
        assert_eq!(sync.syncs(), 1);
    }

    #[tokio::test]
    async fn a_log_that_cannot_be_opened_fails_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        // The "log" is a directory inside a file's path: opening it fails, not with NotFound.
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        let sync = LogSync::of_sqlite(&file.join("t.db"));
        assert!(sync.durable().await.is_err());
        assert_eq!(sync.syncs(), 0, "a failed sync is not counted as done");
    }
}
