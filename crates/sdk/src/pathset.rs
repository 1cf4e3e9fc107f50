//! The set of local paths a download has given out, as 64-bit hashes: the latest in memory,
//! up to a bound, and the rest in one sorted file on disk, so that the memory a download
//! holds stays the same whatever the dataset's size.

use pictograph_core::hashes::HashSet64;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::PathBuf;

/// Entries held in memory before they go to disk: about 5 MB of them.
const IN_MEMORY: usize = 1 << 19;

/// Entries in a page of the file on disk (4 KiB), the unit one lookup reads.
const PAGE: usize = 512;

/// A set of 64-bit hashes that moves its entries to a file of its own in `dir` once it holds
/// more than its bound: an unnamed file, gone when the set is dropped or the process ends.
/// Memory holds the latest entries and the first entry of each page of the file (8 bytes
/// per 512 entries); a lookup of an older entry reads one page. Where no file can be made,
/// the set keeps everything in memory. Only reading the file back can fail.
pub(crate) struct PathSet {
    recent: HashSet64,
    bound: usize,
    dir: PathBuf,
    disk: Option<OnDisk>,
}

/// The entries moved to disk: sorted, 8 bytes each, little-endian.
struct OnDisk {
    file: File,
    len: usize,
    /// The first entry of each page.
    firsts: Vec<u64>,
}

impl PathSet {
    /// An empty set whose file, when it needs one, goes in `dir`.
    pub(crate) fn new(dir: PathBuf) -> PathSet {
        PathSet::with_bound(dir, IN_MEMORY)
    }

    /// An empty set that keeps at most `bound` entries in memory.
    pub(crate) fn with_bound(dir: PathBuf, bound: usize) -> PathSet {
        PathSet {
            recent: HashSet64::default(),
            bound: bound.max(1),
            dir,
            disk: None,
        }
    }

    /// Whether `hash` is in the set.
    pub(crate) fn contains(&self, hash: u64) -> std::io::Result<bool> {
        if self.recent.contains(hash) {
            return Ok(true);
        }
        match &self.disk {
            Some(disk) => disk.contains(hash),
            None => Ok(false),
        }
    }

    /// Adds `hash`; false when it was there already.
    pub(crate) fn insert(&mut self, hash: u64) -> std::io::Result<bool> {
        if self.contains(hash)? {
            return Ok(false);
        }
        self.add(hash);
        Ok(true)
    }

    /// Adds `hash`, which the caller has just found absent, without looking it up again
    /// (that lookup reads a page of the file once the set has spilled).
    pub(crate) fn add(&mut self, hash: u64) {
        self.recent.insert(hash);
        if self.recent.len() >= self.bound && self.spill().is_err() {
            // No file can be made or written there: all in memory from now on, as a set
            // without a bound.
            self.bound = usize::MAX;
        }
    }

    /// Entries in the set.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.recent.len() + self.disk.as_ref().map_or(0, |d| d.len)
    }

    /// Merges the entries in memory with those on disk into a new file, which replaces the
    /// old one; when that fails, the entries stay in memory and the old file in use.
    fn spill(&mut self) -> std::io::Result<()> {
        let mut older = match self.disk.as_mut() {
            Some(disk) => {
                disk.file.rewind()?;
                Some(Entries::new(BufReader::with_capacity(64 << 10, &disk.file)))
            }
            None => None,
        };
        let mut out = BufWriter::with_capacity(64 << 10, tempfile::tempfile_in(&self.dir)?);
        let mut firsts = Vec::new();
        let mut len = 0usize;
        let mut put = |h: u64| -> std::io::Result<()> {
            if len.is_multiple_of(PAGE) {
                firsts.push(h);
            }
            len += 1;
            out.write_all(&h.to_le_bytes())
        };
        let mut next_older = match older.as_mut() {
            Some(e) => e.next()?,
            None => None,
        };
        for h in self.recent.iter_sorted() {
            while let Some(o) = next_older.filter(|o| *o < h) {
                put(o)?;
                next_older = older.as_mut().map_or(Ok(None), Entries::next)?;
            }
            put(h)?;
        }
        while let Some(o) = next_older {
            put(o)?;
            next_older = older.as_mut().map_or(Ok(None), Entries::next)?;
        }
        drop(older);
        let file = out.into_inner().map_err(|e| e.into_error())?;
        self.disk = Some(OnDisk { file, len, firsts });
        self.recent = HashSet64::default();
        Ok(())
    }
}

impl OnDisk {
    fn contains(&self, hash: u64) -> std::io::Result<bool> {
        let page = match self.firsts.partition_point(|first| *first <= hash) {
            0 => return Ok(false),
            i => i - 1,
        };
        let start = page * PAGE;
        let n = PAGE.min(self.len - start);
        let mut buf = [0u8; PAGE * 8];
        read_at(&self.file, &mut buf[..n * 8], (start * 8) as u64)?;
        let mut entries = [0u64; PAGE];
        for (e, b) in entries.iter_mut().zip(buf[..n * 8].chunks_exact(8)) {
            *e = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        }
        Ok(entries[..n].binary_search(&hash).is_ok())
    }
}

/// Reads exactly `buf.len()` bytes of `file` at `offset`, leaving its position alone.
#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

/// Reads exactly `buf.len()` bytes of `file` at `offset`.
#[cfg(windows)]
fn read_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// The entries of a file on disk, in order.
struct Entries<R> {
    reader: R,
}

impl<R: Read> Entries<R> {
    fn new(reader: R) -> Self {
        Entries { reader }
    }

    fn next(&mut self) -> std::io::Result<Option<u64>> {
        let mut b = [0u8; 8];
        match self.reader.read_exact(&mut b) {
            Ok(()) => Ok(Some(u64::from_le_bytes(b))),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn answers_like_a_hash_set_through_many_spills() {
        let dir = tempfile::tempdir().unwrap();
        let mut ours = PathSet::with_bound(dir.path().to_path_buf(), 1000);
        let mut std = HashSet::new();
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Repeats too: a third of the values come from a small range.
            let v = if i % 3 == 0 { x % 5_000 } else { x };
            // Every other value the way a download adds: looked up, then added if absent.
            let inserted = if i % 2 == 0 {
                ours.insert(v).unwrap()
            } else {
                let absent = !ours.contains(v).unwrap();
                if absent {
                    ours.add(v);
                }
                absent
            };
            assert_eq!(inserted, std.insert(v), "insert {v} (step {i})");
            if i % 7 == 0 {
                let probe = x.rotate_left(11) % 6_000;
                assert_eq!(
                    ours.contains(probe).unwrap(),
                    std.contains(&probe),
                    "{probe}"
                );
            }
        }
        assert_eq!(ours.len(), std.len());
        assert!(std.iter().all(|v| ours.contains(*v).unwrap()));
        let disk = ours.disk.as_ref().expect("spilled");
        assert!(disk.len > std.len() - 1000 && ours.recent.len() < 1000);
        assert_eq!(disk.firsts.len(), disk.len.div_ceil(PAGE));
        // Nothing of it shows in the directory: the file has no name.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // The extremes of the range are found or not like anything else.
        for v in [0, 1, u64::MAX] {
            assert_eq!(ours.contains(v).unwrap(), std.contains(&v));
            assert_eq!(ours.insert(v).unwrap(), std.insert(v));
            assert!(ours.contains(v).unwrap());
        }
    }

    #[test]
    fn a_set_that_cannot_make_its_file_keeps_its_entries_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut set = PathSet::with_bound(dir.path().join("missing"), 2);
        for v in 0..100 {
            assert!(set.insert(v).unwrap());
        }
        assert!(set.disk.is_none() && set.recent.len() == 100);
        assert!((0..100).all(|v| set.contains(v).unwrap()));
        assert!(!set.insert(7).unwrap() && !set.contains(100).unwrap());
    }
}
