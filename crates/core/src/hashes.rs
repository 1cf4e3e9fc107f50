//! Compact sets of 64-bit hashes: what downloads, uploads, exports and imports remember of
//! every path they have given out, 8 bytes a path whatever its length.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

/// The 64-bit hash of `value`: the same on every run of one build, so that paths numbered
/// from these hashes are numbered alike by every run.
pub fn hash_of<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// A set of 64-bit hashes: sorted blocks of at most 32,768 entries, each
/// allocated to its exact size, plus the latest insertions in a small hash set merged into
/// the blocks once they reach a sixteenth of them. A million entries take about 10 MB at
/// the peak of a merge (a `HashSet<u64>` takes 18 to 36 MB, twice that while it grows). A
/// merge rebuilds one block at a time, so the set never holds a second copy of itself, as a
/// single sorted vector does while it moves to a larger allocation; each insertion copies
/// 16 entries on average.
#[derive(Debug, Default)]
pub struct HashSet64 {
    /// Sorted blocks: every entry of a block is below every entry of the next one.
    blocks: Vec<Box<[u64]>>,
    /// The first entry of each block, to find the block that may hold a hash. Derivable from
    /// `blocks`, but searching this contiguous copy instead of each probed block's first entry
    /// makes inserting a million hashes about 10% faster, for 8 bytes a block.
    firsts: Vec<u64>,
    /// Entries in `blocks`.
    merged: usize,
    /// Insertions since the last merge.
    recent: HashSet<u64>,
}

impl HashSet64 {
    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fewest insertions held apart before a merge.
    const MIN_RECENT: usize = 4096;

    /// Entries in a block made by splitting a fuller one.
    const BLOCK: usize = 16 * 1024;

    /// Most entries in a block: one that a merge takes past this is split.
    const MAX_BLOCK: usize = 2 * Self::BLOCK;

    /// Whether `hash` is in the set.
    pub fn contains(&self, hash: u64) -> bool {
        self.recent.contains(&hash) || self.merged_contains(hash)
    }

    fn merged_contains(&self, hash: u64) -> bool {
        match self.firsts.partition_point(|first| *first <= hash) {
            0 => false,
            i => self.blocks[i - 1].binary_search(&hash).is_ok(),
        }
    }

    /// Adds `hash`; false when it was there already.
    pub fn insert(&mut self, hash: u64) -> bool {
        if self.merged_contains(hash) || !self.recent.insert(hash) {
            return false;
        }
        if self.recent.len() >= (self.merged / 16).max(Self::MIN_RECENT) {
            self.merge();
        }
        true
    }

    /// Entries in the set.
    pub fn len(&self) -> usize {
        self.merged + self.recent.len()
    }

    /// The entries in ascending order (merging the latest insertions first).
    pub fn iter_sorted(&mut self) -> impl Iterator<Item = u64> + '_ {
        if !self.recent.is_empty() {
            self.merge();
        }
        self.blocks.iter().flat_map(|b| b.iter().copied())
    }

    /// Moves the recent insertions into the blocks: each block that receives some is
    /// rebuilt at its new size (split when it grows past [`Self::MAX_BLOCK`]), the others
    /// are kept as they are.
    fn merge(&mut self) {
        let mut recent: Vec<u64> = self.recent.drain().collect();
        recent.sort_unstable();
        self.merged += recent.len();
        let old = std::mem::take(&mut self.blocks);
        let mut blocks = Vec::with_capacity(old.len() + recent.len() / Self::BLOCK + 1);
        let mut rest = recent.as_slice();
        for (i, block) in old.into_iter().enumerate() {
            // The last block takes what is left; the others what sorts before the next one.
            let take = match self.firsts.get(i + 1) {
                Some(next) => rest.partition_point(|h| h < next),
                None => rest.len(),
            };
            let (mine, later) = rest.split_at(take);
            rest = later;
            if mine.is_empty() {
                blocks.push(block);
            } else {
                push_merged(&mut blocks, &block, mine);
            }
        }
        if !rest.is_empty() {
            push_merged(&mut blocks, &[], rest);
        }
        self.firsts = blocks.iter().map(|b| b[0]).collect();
        self.blocks = blocks;
    }
}

/// Pushes the sorted union of `a` and `b` (disjoint, each sorted) onto `blocks`, in blocks of
/// [`HashSet64::BLOCK`] entries when it holds more than [`HashSet64::MAX_BLOCK`].
fn push_merged(blocks: &mut Vec<Box<[u64]>>, a: &[u64], b: &[u64]) {
    let total = a.len() + b.len();
    let parts = if total > HashSet64::MAX_BLOCK {
        total.div_ceil(HashSet64::BLOCK)
    } else {
        1
    };
    let (mut i, mut j) = (0, 0);
    for part in 0..parts {
        let size = total * (part + 1) / parts - total * part / parts;
        let mut out = Vec::with_capacity(size);
        while out.len() < size {
            if j == b.len() || (i < a.len() && a[i] < b[j]) {
                out.push(a[i]);
                i += 1;
            } else {
                out.push(b[j]);
                j += 1;
            }
        }
        blocks.push(out.into_boxed_slice());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_like_a_hash_set_through_many_merges() {
        let mut ours = HashSet64::default();
        let mut std = HashSet::new();
        // A fixed pseudo-random sequence with repeats: values drawn from a small range too.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = if i % 3 == 0 { x % 50_000 } else { x };
            assert_eq!(ours.insert(v), std.insert(v), "insert {v} (step {i})");
            if i % 97 == 0 {
                let probe = x.rotate_left(7) % 60_000;
                assert_eq!(ours.contains(probe), std.contains(&probe), "probe {probe}");
            }
        }
        assert_eq!(ours.len(), std.len());
        assert!(std.iter().all(|v| ours.contains(*v)));
        let merged: Vec<u64> = ours.blocks.iter().flat_map(|b| b.iter().copied()).collect();
        assert!(merged.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
        assert_eq!(merged.len(), ours.merged);
        assert!(ours.merged > ours.recent.len() * 8, "most entries merged");
        assert!(
            ours.blocks
                .iter()
                .all(|b| !b.is_empty() && b.len() <= HashSet64::MAX_BLOCK),
            "blocks split as they grow"
        );
        assert!(
            ours.blocks.len() > 4,
            "several blocks: {}",
            ours.blocks.len()
        );
        assert!(!ours.contains(u64::MAX - 1) || std.contains(&(u64::MAX - 1)));
        let mut sorted: Vec<u64> = std.iter().copied().collect();
        sorted.sort_unstable();
        assert!(ours.iter_sorted().eq(sorted.iter().copied()));
        assert!(ours.recent.is_empty() && ours.len() == sorted.len());
    }

    #[test]
    fn hashes_are_the_same_for_equal_values() {
        let a = hash_of(&(0u8, std::path::Path::new("a/b.png")));
        assert_eq!(a, hash_of(&(0u8, std::path::PathBuf::from("a/b.png"))));
        assert_ne!(a, hash_of(&(1u8, std::path::Path::new("a/b.png"))));
    }
}
