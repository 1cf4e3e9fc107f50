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
    /// Their size as recorded.
    pub size: u64,
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
    /// Distinct bytes the snapshot refers to.
    pub blobs: u64,
    /// Their recorded sizes, summed.
    pub bytes: u64,
}

/// Every hash the snapshot refers to, each once with the largest size recorded for it and
/// whether anything needs it, in hash order.
const HELD: &str = "SELECT hash, MAX(size) AS size, MAX(needed) AS needed FROM ( \
     SELECT blob_hash AS hash, file_size AS size, 1 AS needed FROM images \
     UNION ALL SELECT archive_hash, COALESCE(archive_size, 0), 1 FROM export_jobs \
         WHERE archive_hash IS NOT NULL \
     UNION ALL SELECT blob_hash, COALESCE(size, 0), 0 FROM pending_uploads \
         WHERE blob_hash IS NOT NULL \
 ) GROUP BY hash ORDER BY hash";

/// A consistent copy of a database, open for reading.
pub struct Snapshot {
    conn: Connection,
}

impl Snapshot {
    /// Writes what the SQLite database at `source` holds at one instant into a new file
    /// `dest` (replacing any file there) and opens it. The copy is taken in one read
    /// transaction (`VACUUM INTO`), so servers keep writing meanwhile; it is compacted, in
    /// rollback-journal mode (one self-contained file), and synced before this returns.
    /// Blocking.
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
        let target = dest.to_str().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} is not valid UTF-8", dest.display()),
            )
        })?;
        src.execute("VACUUM INTO ?1", [target])?;
        drop(src);
        let conn = Connection::open_with_flags(
            dest,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.pragma_update(None, "journal_mode", "DELETE")?;
        std::fs::File::open(dest)?.sync_all()?;
        Ok(Snapshot { conn })
    }

    /// Rows and bytes the snapshot holds.
    pub fn counts(&self) -> StoreResult<SnapshotCounts> {
        let count = |sql: &str| -> StoreResult<u64> {
            Ok(self.conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
        };
        let (blobs, bytes) = self.conn.query_row(
            &format!("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM ({HELD})"),
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
        )?;
        Ok(SnapshotCounts {
            organizations: count("SELECT COUNT(*) FROM organizations")?,
            datasets: count("SELECT COUNT(*) FROM datasets")?,
            images: count("SELECT COUNT(*) FROM images")?,
            blobs: blobs as u64,
            bytes: bytes as u64,
        })
    }

    /// Hands every hash the snapshot refers to to `each`, in hash order and in pages of at
    /// most `page`, while `each` returns true. One statement walks them all, so memory stays
    /// that of one page whatever the number of images.
    pub fn each_held(
        &self,
        page: usize,
        mut each: impl FnMut(Vec<HeldBytes>) -> bool,
    ) -> StoreResult<()> {
        let mut stmt = self.conn.prepare(HELD)?;
        let mut rows = stmt.query([])?;
        let mut batch = Vec::with_capacity(page);
        while let Some(row) = rows.next()? {
            batch.push(HeldBytes {
                hash: row.get(0)?,
                size: row.get::<_, i64>(1)?.max(0) as u64,
                needed: row.get::<_, i64>(2)? != 0,
            });
            if batch.len() == page && !each(std::mem::replace(&mut batch, Vec::with_capacity(page)))
            {
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
            "SELECT EXISTS (SELECT 1 FROM images WHERE blob_hash = ?1) \
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
fn journal_of(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-journal");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

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
