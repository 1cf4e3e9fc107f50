//! Memory budgets: how many bytes of received uploads, of pixels decoded to check them, and
//! of parsed JSON request bodies the server holds at once. A request that would go over a budget waits for
//! memory to be freed instead of growing the process until the system kills it; requests
//! are served in the order they asked.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// Memory is reserved in units of this many bytes.
const UNIT: u64 = 1024;

/// A budget of bytes shared by concurrent requests.
pub struct MemoryBudget {
    /// Free units; `None` when the budget is unlimited.
    units: Option<Arc<Semaphore>>,
    total: u32,
    waits: AtomicU64,
    /// Free units of each party's share (see [`MemoryBudget::reserve_for`]).
    shares: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Memory reserved from a [`MemoryBudget`], given back when dropped.
#[must_use = "the memory is given back when this is dropped"]
pub struct Reserved {
    _share: Option<OwnedSemaphorePermit>,
    _units: Option<OwnedSemaphorePermit>,
}

impl MemoryBudget {
    /// A budget of `bytes`; 0 means no limit.
    pub fn new(bytes: u64) -> MemoryBudget {
        let total = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX);
        MemoryBudget {
            units: (total > 0).then(|| Arc::new(Semaphore::new(total as usize))),
            total,
            waits: AtomicU64::new(0),
            shares: Mutex::new(HashMap::new()),
        }
    }

    /// The semaphore of `party`'s share, and the units of it that `bytes` take.
    fn share(&self, party: &str, bytes: u64) -> (Arc<Semaphore>, u32) {
        let share_total = (self.total / 2).max(1);
        let share = self
            .shares
            .lock()
            .unwrap()
            .entry(party.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(share_total as usize)))
            .clone();
        let want = u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .min(share_total);
        (share, want)
    }

    /// Reserves `bytes` for `party` (an organisation): as [`MemoryBudget::reserve`], and
    /// within half the budget for any one party, so that one party's requests (slow ones
    /// above all: a reservation is held while a body arrives) never take all of it and keep
    /// every other party waiting. The party's share is taken first, then the budget's; a
    /// reservation larger than the share waits until the party holds nothing else, and then
    /// holds the whole share.
    pub async fn reserve_for(&self, party: &str, bytes: u64) -> Reserved {
        if self.units.is_none() || bytes == 0 {
            return self.reserve(bytes).await;
        }
        let (share, want) = self.share(party, bytes);
        let share = match share.clone().try_acquire_many_owned(want) {
            Ok(permit) => permit,
            Err(_) => {
                self.waits.fetch_add(1, Ordering::Relaxed);
                share
                    .acquire_many_owned(want)
                    .await
                    .expect("a share's semaphore is never closed")
            }
        };
        let mut reserved = self.reserve(u64::from(want) * UNIT).await;
        reserved._share = Some(share);
        reserved
    }

    /// Reserves `bytes` for `party` as [`MemoryBudget::reserve_for`] does, when that much is
    /// free now; `None` instead of waiting.
    pub fn try_reserve_for(&self, party: &str, bytes: u64) -> Option<Reserved> {
        let Some(units) = self.units.as_ref().filter(|_| bytes > 0) else {
            return Some(Reserved {
                _share: None,
                _units: None,
            });
        };
        let (share, want) = self.share(party, bytes);
        let share = share.try_acquire_many_owned(want).ok()?;
        let units = units.clone().try_acquire_many_owned(want).ok()?;
        Some(Reserved {
            _share: Some(share),
            _units: Some(units),
        })
    }

    /// Reserves `bytes`, waiting until that much is free. A reservation larger than the whole
    /// budget waits until nothing else is reserved and then holds all of it, so one large
    /// file is still served, alone.
    pub async fn reserve(&self, bytes: u64) -> Reserved {
        let Some(units) = self.units.as_ref().filter(|_| bytes > 0) else {
            return Reserved {
                _share: None,
                _units: None,
            };
        };
        let want = u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .min(self.total);
        let permit = match units.clone().try_acquire_many_owned(want) {
            Ok(permit) => permit,
            Err(TryAcquireError::NoPermits) => {
                self.waits.fetch_add(1, Ordering::Relaxed);
                units
                    .clone()
                    .acquire_many_owned(want)
                    .await
                    .expect("the budget's semaphore is never closed")
            }
            Err(TryAcquireError::Closed) => unreachable!("the budget's semaphore is never closed"),
        };
        Reserved {
            _share: None,
            _units: Some(permit),
        }
    }

    /// Bytes reserved now (0 for an unlimited budget).
    pub fn in_use(&self) -> u64 {
        self.units.as_ref().map_or(0, |u| {
            u64::from(self.total).saturating_sub(u.available_permits() as u64) * UNIT
        })
    }

    /// The budget in bytes; 0 when unlimited.
    pub fn limit(&self) -> u64 {
        u64::from(self.total) * UNIT
    }

    /// How many reservations had to wait for memory since the server started.
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }
}

/// Bytes one JSON value may take once parsed, at most: a `serde_json::Value` and its slot in
/// a growing array, or a struct field; an object member's key is counted as a value too.
pub const PARSED_VALUE: u64 = 64;

/// What parsing `body` as JSON may take in memory, at most: its own bytes (the strings are
/// copied out of it) and [`PARSED_VALUE`] for each value it holds. Values are counted, not
/// parsed: every `,` `:` `[` and `{` outside strings starts one. A list of small numbers
/// takes many times its text (`0,0,0,…` over 30 bytes a byte), which is what bounding the
/// parse by its body's size alone misses.
pub fn json_parse_bytes(body: &[u8]) -> u64 {
    let mut values: u64 = 1;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else {
            match b {
                b'"' => in_string = true,
                b',' | b':' | b'[' | b'{' => values += 1,
                _ => {}
            }
        }
    }
    body.len() as u64 + values * PARSED_VALUE
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_json_body_is_counted_by_its_values_not_its_strings() {
        assert_eq!(json_parse_bytes(b""), PARSED_VALUE);
        let ids = br#"{"image_ids":["a,b:c[d{","e\"f,g"]}"#;
        // The body's value, and one each for `{`, `:`, `[` and the `,` between the two ids:
        // the characters inside the strings, after an escaped quote too, start none.
        assert_eq!(json_parse_bytes(ids), ids.len() as u64 + 5 * PARSED_VALUE);
        let zeros = "0,".repeat(1000);
        assert!(json_parse_bytes(zeros.as_bytes()) > 30 * zeros.len() as u64);
    }

    async fn blocked(budget: &MemoryBudget, bytes: u64) -> bool {
        tokio::time::timeout(Duration::from_millis(50), budget.reserve(bytes))
            .await
            .is_err()
    }

    #[tokio::test]
    async fn reservations_wait_for_memory_and_get_it_back() {
        let budget = MemoryBudget::new(10 * UNIT);
        let first = budget.reserve(6 * UNIT).await;
        let second = budget.reserve(4 * UNIT).await;
        assert_eq!(budget.in_use(), 10 * UNIT);
        assert!(blocked(&budget, 1).await, "a full budget made room");
        assert_eq!(budget.waits(), 1);
        drop(second);
        let third = budget.reserve(3 * UNIT).await;
        assert_eq!(budget.in_use(), 9 * UNIT);
        drop((first, third));
        assert_eq!(budget.in_use(), 0);
    }

    #[tokio::test]
    async fn a_reservation_over_the_budget_runs_alone() {
        let budget = MemoryBudget::new(10 * UNIT);
        let small = budget.reserve(UNIT).await;
        assert!(blocked(&budget, 100 * UNIT).await, "ran beside another");
        drop(small);
        let big = budget.reserve(100 * UNIT).await;
        assert_eq!(budget.in_use(), 10 * UNIT);
        assert!(blocked(&budget, 1).await, "another ran beside it");
        drop(big);
        assert_eq!(budget.in_use(), 0);
    }

    #[tokio::test]
    async fn one_party_takes_at_most_half_and_never_blocks_another() {
        let budget = Arc::new(MemoryBudget::new(10 * UNIT));
        let first = budget.reserve_for("slow", 4 * UNIT).await;
        let waiting = tokio::time::timeout(
            Duration::from_millis(50),
            budget.reserve_for("slow", 2 * UNIT),
        )
        .await;
        assert!(waiting.is_err(), "a party waits past half the budget");
        let other = budget.reserve_for("other", 5 * UNIT).await;
        assert_eq!(budget.in_use(), 9 * UNIT);
        drop(first);
        let more = budget.reserve_for("slow", 2 * UNIT).await;
        assert_eq!(budget.in_use(), 7 * UNIT);
        // A reservation over the share waits until the party holds nothing else; other
        // parties go on meanwhile.
        drop(other);
        let big = tokio::spawn({
            let budget = Arc::clone(&budget);
            async move { budget.reserve_for("slow", 9 * UNIT).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!big.is_finished());
        let _other = budget.reserve_for("other", UNIT).await;
        drop(more);
        let _big = big.await.unwrap();
        assert_eq!(budget.in_use(), 6 * UNIT);
    }

    #[tokio::test]
    async fn a_try_takes_what_is_free_and_otherwise_nothing() {
        let budget = MemoryBudget::new(10 * UNIT);
        let first = budget.try_reserve_for("a", 4 * UNIT).expect("free memory");
        assert!(
            budget.try_reserve_for("a", 2 * UNIT).is_none(),
            "a party took past half the budget"
        );
        let other = budget.try_reserve_for("b", 5 * UNIT).expect("b's share");
        assert_eq!(budget.in_use(), 9 * UNIT);
        assert!(
            budget.try_reserve_for("c", 2 * UNIT).is_none(),
            "over budget"
        );
        assert_eq!(budget.in_use(), 9 * UNIT, "a refused try holds nothing");
        drop((first, other));
        assert_eq!(budget.in_use(), 0);
        assert_eq!(budget.waits(), 0, "a try never waits");
        assert!(MemoryBudget::new(0)
            .try_reserve_for("a", u64::MAX)
            .is_some());
    }

    #[tokio::test]
    async fn zero_means_no_limit() {
        let budget = MemoryBudget::new(0);
        let held: Vec<Reserved> =
            futures::future::join_all((0..4).map(|_| budget.reserve(u64::MAX))).await;
        assert_eq!((held.len(), budget.in_use(), budget.waits()), (4, 0, 0));
        assert_eq!(budget.limit(), 0);
    }
}
