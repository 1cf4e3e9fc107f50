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

/// A set of 64-bit hashes: a sorted vector, plus the latest insertions in a small hash set
/// merged into it once they reach a sixteenth of it. A million entries take about 8.5 MB
/// (a `HashSet<u64>` takes 18 to 36 MB, twice that while it grows); each insertion moves 16
/// entries on average.
#[derive(Debug, Default)]
pub struct HashSet64 {
    sorted: Vec<u64>,
    recent: HashSet<u64>,
}

impl HashSet64 {
    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fewest insertions held apart before a merge.
    const MIN_RECENT: usize = 4096;

    /// Whether `hash` is in the set.
    pub fn contains(&self, hash: u64) -> bool {
        self.recent.contains(&hash) || self.sorted.binary_search(&hash).is_ok()
    }

    /// Adds `hash`; false when it was there already.
    pub fn insert(&mut self, hash: u64) -> bool {
        if self.sorted.binary_search(&hash).is_ok() || !self.recent.insert(hash) {
            return false;
        }
        if self.recent.len() >= (self.sorted.len() / 16).max(Self::MIN_RECENT) {
            self.merge();
        }
        true
    }

    /// Entries in the set.
    pub fn len(&self) -> usize {
        self.sorted.len() + self.recent.len()
    }

    /// Moves the recent insertions into the sorted vector, merging from its end so that no
    /// second vector is needed.
    fn merge(&mut self) {
        let mut recent: Vec<u64> = self.recent.drain().collect();
        recent.sort_unstable();
        let mut old = self.sorted.len();
        let mut new = recent.len();
        self.sorted.resize(old + new, 0);
        let mut at = self.sorted.len();
        while new > 0 {
            at -= 1;
            if old > 0 && self.sorted[old - 1] > recent[new - 1] {
                self.sorted[at] = self.sorted[old - 1];
                old -= 1;
            } else {
                self.sorted[at] = recent[new - 1];
                new -= 1;
            }
        }
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
        assert!(
            ours.sorted.windows(2).all(|w| w[0] < w[1]),
            "sorted, no repeats"
        );
        assert!(
            ours.sorted.len() > ours.recent.len() * 8,
            "most entries merged"
        );
        assert!(!ours.contains(u64::MAX - 1) || std.contains(&(u64::MAX - 1)));
    }

    #[test]
    fn hashes_are_the_same_for_equal_values() {
        let a = hash_of(&(0u8, std::path::Path::new("a/b.png")));
        assert_eq!(a, hash_of(&(0u8, std::path::PathBuf::from("a/b.png"))));
        assert_ne!(a, hash_of(&(1u8, std::path::Path::new("a/b.png"))));
    }
}
