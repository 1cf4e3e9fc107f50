//! Group commit for SQLite: commits that share one sync of the write-ahead log.
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

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Syncs of one database's write-ahead log, shared by the commits made meanwhile.
#[derive(Debug)]
pub(super) struct LogSync {
    log: PathBuf,
    /// Held by the caller whose sync runs; the others wait for it, then check whether it
    /// covered them.
    turn: tokio::sync::Mutex<()>,
    /// Syncs begun so far.
    begun: AtomicU64,
    /// The number of the last sync that completed (they complete in order).
    done: AtomicU64,
}

impl LogSync {
    /// The syncs of the log of the SQLite database in `file`.
    pub(super) fn of_database(file: &Path) -> LogSync {
        let mut log = file.as_os_str().to_owned();
        log.push("-wal");
        LogSync {
            log: PathBuf::from(log),
            turn: tokio::sync::Mutex::new(()),
            begun: AtomicU64::new(0),
            done: AtomicU64::new(0),
        }
    }

    /// Returns once a sync of the log that began after this call has completed, so every
    /// commit that returned before the call is on disk. Callers that arrive while a sync runs
    /// share the next one.
    pub(super) async fn durable(&self) -> std::io::Result<()> {
        let seen = self.begun.load(Ordering::SeqCst);
        let _turn = self.turn.lock().await;
        // A sync numbered above `seen` began after this call.
        if self.done.load(Ordering::SeqCst) > seen {
            return Ok(());
        }
        let number = self.begun.fetch_add(1, Ordering::SeqCst) + 1;
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || sync_file(&log))
            .await
            .map_err(std::io::Error::other)??;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn callers_waiting_for_one_sync_share_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        std::fs::write(dir.path().join("t.db-wal"), b"frames").unwrap();
        let sync = LogSync::of_database(&db);
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
        let sync = LogSync::of_database(&dir.path().join("t.db"));
        sync.durable().await.unwrap();
        assert_eq!(sync.syncs(), 1);
    }

    #[tokio::test]
    async fn a_log_that_cannot_be_opened_fails_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        // The "log" is a directory inside a file's path: opening it fails, not with NotFound.
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        let sync = LogSync::of_database(&file.join("t.db"));
        assert!(sync.durable().await.is_err());
        assert_eq!(sync.syncs(), 0, "a failed sync is not counted as done");
    }
}
