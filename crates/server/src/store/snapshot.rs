//! Consistent copies of an embedded (SQLite) database, for `pictograph backup`: one is taken
//! in a single read transaction while servers go on writing, then read for the bytes it
//! refers to.

use super::StoreResult;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};

/// The database file a `sqlite:` URL names; `None` for other databases and in-memory ones.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// Bytes a snapshot refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBytes {
    /// SHA-256 of the bytes, lowercase hex.
    pub hash: String,
    /// Whether the snapshot cannot do without them: an image's bytes or a finished export's
    /// archive. Bytes a signed upload stored but nobody registered yet are wanted, not needed.
    pub needed: bool,
}

/// What a snapshot holds, in rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotCounts {
    /// Organisations.
    pub organizations: u64,
    /// Datasets.
    pub datasets: u64,
    /// Images, archived ones included.
    pub images: u64,
    /// Distinct stored files: images' bytes, export archives and unregistered uploads.
    pub blobs: u64,
}

/// Hashes besides the images': finished exports' archives (needed) and the bytes of signed
/// uploads not registered yet (wanted), each with whether it is needed, in hash order. There
/// are few of these; the images' come from their index, in order, without sorting.
const OTHERS: &str = "SELECT hash, MAX(needed) FROM ( \
     SELECT archive_hash AS hash, 1 AS needed FROM export_jobs WHERE archive_hash IS NOT NULL \
     UNION ALL SELECT blob_hash, 0 FROM pending_uploads WHERE blob_hash IS NOT NULL \
 ) GROUP BY hash ORDER BY hash";

/// A consistent copy of a database, open for reading.
pub struct Snapshot {
    conn: Connection,
}

impl Snapshot {
    /// Writes what the SQLite database at `source` holds at one instant into a new file
    /// `dest` (replacing any file there) and opens it. The pages are copied in one step of
    /// SQLite's online backup, inside one read transaction, so servers keep writing
    /// meanwhile; the copy is switched to rollback-journal mode (one self-contained file)
    /// and is on disk when this returns. Blocking.
    pub fn take(source: &Path, dest: &Path) -> StoreResult<Snapshot> {
        if !source.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no database at {}", source.display()),
            )
            .into());
        }
        for stale in [dest.to_path_buf(), journal_of(dest)] {
            match std::fs::remove_file(&stale) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        let src = Connection::open_with_flags(
            source,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        src.busy_timeout(std::time::Duration::from_secs(30))?;
        let mut conn = Connection::open_with_flags(
            dest,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // SQLite syncs the copy as it commits it, so the file is never opened beside `conn`:
        // closing another descriptor of it would drop the connection's locks.
        conn.pragma_update(None, "synchronous", "FULL")?;
        {
            let backup = rusqlite::backup::Backup::new(&src, &mut conn)?;
            // -1: every page in one step, so one read transaction covers the whole copy.
            match backup.step(-1)? {
                rusqlite::backup::StepResult::Done => {}
                other => {
                    return Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        Some(format!("the database copy did not finish: {other:?}")),
                    )
                    .into())
                }
            }
        }
        drop(src);
        conn.pragma_update(None, "journal_mode", "DELETE")?;
        Ok(Snapshot { conn })
    }

    /// Rows the snapshot holds, and the number of distinct bytes it refers to.
    pub fn counts(&self) -> StoreResult<SnapshotCounts> {
        let count = |sql: &str| -> StoreResult<u64> {
            Ok(self.conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
        };
        Ok(SnapshotCounts {
            organizations: count("SELECT COUNT(*) FROM organizations")?,
            datasets: count("SELECT COUNT(*) FROM datasets")?,
            images: count("SELECT COUNT(*) FROM images")?,
            blobs: count("SELECT COUNT(DISTINCT blob_hash) FROM images")?
                + count(&format!(
                    "SELECT COUNT(*) FROM ({OTHERS}) o \
                     WHERE NOT EXISTS (SELECT 1 FROM images WHERE blob_hash = unhex(o.hash))"
                ))?,
        })
    }

    /// Hands every hash the snapshot refers to to `each`, once, in hash order and in pages
    /// of at most `page`, while `each` returns true. The images' hashes (kept as bytes, which
    /// sort as their hex text does) are read in order from their index and merged with the
    /// few others, so memory stays that of one page whatever the number of images.
    pub fn each_held(
        &self,
        page: usize,
        mut each: impl FnMut(Vec<HeldBytes>) -> bool,
    ) -> StoreResult<()> {
        let mut others = self
            .conn
            .prepare(OTHERS)?
            .query_map([], |r| {
                Ok(HeldBytes {
                    hash: r.get(0)?,
                    needed: r.get::<_, i64>(1)? != 0,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .peekable();
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT blob_hash FROM images ORDER BY blob_hash")?;
        let mut rows = stmt.query([])?;
        let mut batch = Vec::with_capacity(page);
        let mut push = |held: HeldBytes, batch: &mut Vec<HeldBytes>| -> bool {
            batch.push(held);
            batch.len() < page || each(std::mem::replace(batch, Vec::with_capacity(page)))
        };
        while let Some(row) = rows.next()? {
            let hash = hex::encode(row.get::<_, Vec<u8>>(0)?);
            while let Some(other) = others.next_if(|o| o.hash < hash) {
                if !push(other, &mut batch) {
                    return Ok(());
                }
            }
            others.next_if(|o| o.hash == hash);
            if !push(HeldBytes { hash, needed: true }, &mut batch) {
                return Ok(());
            }
        }
        for other in others {
            if !push(other, &mut batch) {
                return Ok(());
            }
        }
        if !batch.is_empty() {
            each(batch);
        }
        Ok(())
    }

    /// Whether the snapshot refers to the bytes of `hash`.
    pub fn holds(&self, hash: &str) -> StoreResult<bool> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM images WHERE blob_hash = unhex(?1)) \
                 OR EXISTS (SELECT 1 FROM export_jobs WHERE archive_hash = ?1) \
                 OR EXISTS (SELECT 1 FROM pending_uploads WHERE blob_hash = ?1)",
        )?;
        Ok(stmt.query_row([hash], |r| r.get::<_, bool>(0))?)
    }

    /// Checks the copy's structure (`PRAGMA quick_check`): `None` when sound, otherwise what
    /// SQLite found.
    pub fn check(&self) -> StoreResult<Option<String>> {
        let found: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        Ok((found != "ok").then_some(found))
    }
}

/// The rollback journal SQLite keeps beside `db` while it writes it.
/// How long a hold lasts unless renewed: a backup that stops without releasing its hold
/// (killed) delays freeing bytes for this long at most.
pub const HOLD_FOR: std::time::Duration = std::time::Duration::from_secs(300);

/// A hold on freeing stored bytes, recorded in a live SQLite database: while it is valid no
/// server frees any bytes ([`super::Store::free_blobs`]), so the bytes a database copy taken
/// after it refers to stay until they are copied. Renew it at least every [`HOLD_FOR`];
/// released when dropped. A database whose servers predate holds has nowhere to record one,
/// and nothing is held there.
pub struct BlobHold {
    conn: Option<Connection>,
    id: String,
}

impl BlobHold {
    /// Records a hold in the database at `source`, valid for [`HOLD_FOR`]. Blocking.
    pub fn take(source: &Path) -> StoreResult<BlobHold> {
        let conn = Connection::open_with_flags(
            source,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        let known: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'blob_holds')",
            [],
            |r| r.get(0),
        )?;
        let mut hold = BlobHold {
            conn: known.then_some(conn),
            id: uuid::Uuid::new_v4().simple().to_string(),
        };
        hold.renew()?;
        Ok(hold)
    }

    /// Makes the hold valid for another [`HOLD_FOR`]. Blocking.
    pub fn renew(&mut self) -> StoreResult<()> {
        if let Some(conn) = &self.conn {
            let until = super::fmt_time(
                chrono::Utc::now() + chrono::Duration::from_std(HOLD_FOR).unwrap_or_default(),
            );
            conn.execute(
                "INSERT INTO blob_holds (id, until) VALUES (?1, ?2) \
                 ON CONFLICT (id) DO UPDATE SET until = excluded.until",
                (&self.id, &until),
            )?;
        }
        Ok(())
    }
}

impl BlobHold {
    /// Ends the hold now. Blocking (one small write).
    pub fn release(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Also drops holds others left behind that have run out.
            let _ = conn.execute(
                "DELETE FROM blob_holds WHERE id = ?1 OR until < ?2",
                (&self.id, super::now()),
            );
        }
    }
}

impl Drop for BlobHold {
    fn drop(&mut self) {
        self.release();
    }
}

fn journal_of(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-journal");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAL-mode database with just the tables and columns a snapshot reads.
    fn source(dir: &Path) -> (PathBuf, Connection) {
        let path = dir.join("source.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE organizations (id TEXT);
             CREATE TABLE datasets (id TEXT);
             CREATE TABLE images (id TEXT, blob_hash BLOB NOT NULL);
             CREATE INDEX images_blob ON images (blob_hash);
             CREATE TABLE export_jobs (id TEXT, archive_hash TEXT);
             CREATE TABLE pending_uploads (id TEXT, blob_hash TEXT);
             INSERT INTO organizations VALUES ('o');
             INSERT INTO datasets VALUES ('d');
             INSERT INTO images VALUES ('1', x'0b'), ('2', x'0d'), ('3', x'0d'), ('4', x'0f');
             INSERT INTO export_jobs VALUES ('e1', '0a'), ('e2', '0d'), ('e3', NULL);
             INSERT INTO pending_uploads VALUES
                 ('p1', '0c'), ('p2', '0f'), ('p3', '10'), ('p4', NULL);",
        )
        .unwrap();
        (path, conn)
    }

    #[test]
    fn every_held_hash_comes_once_in_order_with_what_needs_it() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = source(dir.path());
        // A write still open when the copy is taken is not in it.
        writer
            .execute_batch("BEGIN; INSERT INTO images VALUES ('5', x'11');")
            .unwrap();
        let snap = Snapshot::take(&path, &dir.path().join("copy.db")).unwrap();
        writer.execute_batch("COMMIT").unwrap();
        assert_eq!(
            snap.counts().unwrap(),
            SnapshotCounts {
                organizations: 1,
                datasets: 1,
                images: 4,
                blobs: 6,
            }
        );
        let mut pages = Vec::new();
        snap.each_held(2, |page| {
            pages.push(
                page.into_iter()
                    .map(|h| (h.hash, h.needed))
                    .collect::<Vec<_>>(),
            );
            true
        })
        .unwrap();
        let want = |h: &str, needed| (h.to_string(), needed);
        assert_eq!(
            pages,
            vec![
                vec![want("0a", true), want("0b", true)],
                vec![want("0c", false), want("0d", true)],
                vec![want("0f", true), want("10", false)],
            ]
        );
        let mut seen = 0;
        snap.each_held(2, |_| {
            seen += 1;
            false
        })
        .unwrap();
        assert_eq!(seen, 1, "the walk stops when asked");
        assert!(snap.holds("10").unwrap() && snap.holds("0a").unwrap());
        assert!(!snap.holds("11").unwrap());
        assert_eq!(snap.check().unwrap(), None);
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_path("sqlite:///var/lib/p/pictograph.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/p/pictograph.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:data.db"),
            Some(PathBuf::from("data.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://u@h/db"), None);
    }
}
