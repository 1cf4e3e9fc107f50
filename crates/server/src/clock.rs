//! Whether this server's clock agrees with the database's.
//!
//! Servers sharing a PostgreSQL database compare times other servers wrote: a running
//! request's claim on its `Idempotency-Key` (renewed every 30 s, taken over after 120 s
//! without renewal), a running export job's heartbeat, a dataset deletion under way, a
//! backup's hold on stored bytes, the grace period of bytes nothing refers to yet. A clock
//! 90 s ahead of the others takes a claim renewed 30 s ago for one a crashed server left,
//! and runs its write a second time. So a server measures its clock against the database's
//! when it starts, and refuses to start when they differ by [`REFUSE_AT`] or more; it
//! measures again on every maintenance pass, logs a warning from [`WARN_AT`] on, and shows
//! the figure as the `pictograph_clock_skew_seconds` metric. SQLite is one machine's file:
//! there is nothing to compare.

use crate::store::{Store, StoreResult};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// A difference from which each maintenance pass logs a warning.
pub const WARN_AT: Duration = Duration::from_secs(1);

/// A difference with which a server does not start (and from which each pass logs an error).
pub const REFUSE_AT: Duration = Duration::from_secs(60);

/// This server's clock minus the database's, in seconds (positive: this one is ahead), or
/// none on SQLite. The database's reading is taken as made halfway through the round trip.
pub async fn skew(store: &Store) -> StoreResult<Option<f64>> {
    let before = chrono::Utc::now();
    let Some(db) = store.database_clock().await? else {
        return Ok(None);
    };
    let after = chrono::Utc::now();
    Ok(Some(skew_of(before, db, after)))
}

/// The skew of a database reading `db` taken between local readings `before` and `after`.
fn skew_of(
    before: chrono::DateTime<chrono::Utc>,
    db: chrono::DateTime<chrono::Utc>,
    after: chrono::DateTime<chrono::Utc>,
) -> f64 {
    let halfway = before + (after - before) / 2;
    (halfway - db).as_seconds_f64()
}

/// How far off a skew is.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Under [`WARN_AT`].
    Agrees,
    /// From [`WARN_AT`] to under [`REFUSE_AT`].
    Drifting,
    /// [`REFUSE_AT`] or more.
    Unsafe,
}

/// Judges a skew in seconds.
pub fn verdict(skew: f64) -> Verdict {
    let off = skew.abs();
    if off >= REFUSE_AT.as_secs_f64() {
        Verdict::Unsafe
    } else if off >= WARN_AT.as_secs_f64() {
        Verdict::Drifting
    } else {
        Verdict::Agrees
    }
}

/// The sentence a server says about a skew that is not [`Verdict::Agrees`].
pub fn describe(skew: f64) -> String {
    format!(
        "this server's clock is {:.1} s {} the database's: servers sharing a database must \
         agree on the time (within {} s to start, and a second is already a sign of trouble), \
         since they compare times each other wrote; set the clock right (NTP)",
        skew.abs(),
        if skew > 0.0 { "ahead of" } else { "behind" },
        REFUSE_AT.as_secs()
    )
}

/// Measures at start: an error when the clocks differ by [`REFUSE_AT`] or more; a warning
/// is logged from [`WARN_AT`] on. Returns the skew measured (none on SQLite).
pub async fn check_at_start(store: &Store) -> anyhow::Result<Option<f64>> {
    let Some(skew) = skew(store).await? else {
        return Ok(None);
    };
    anyhow::ensure!(verdict(skew) != Verdict::Unsafe, "{}", describe(skew));
    log(skew);
    Ok(Some(skew))
}

/// Logs a skew the servers should not have: an error when unsafe, a warning when drifting.
fn log(skew: f64) {
    match verdict(skew) {
        Verdict::Unsafe => tracing::error!(skew_seconds = skew, "{}", describe(skew)),
        Verdict::Drifting => tracing::warn!(skew_seconds = skew, "{}", describe(skew)),
        Verdict::Agrees => {}
    }
}

/// The last skew measured, for the metrics.
#[derive(Debug)]
pub struct LastSkew {
    /// In microseconds; `i64::MIN` until measured.
    micros: AtomicI64,
}

impl LastSkew {
    /// Nothing measured yet.
    pub fn new() -> LastSkew {
        LastSkew {
            micros: AtomicI64::new(i64::MIN),
        }
    }

    /// Records a measurement (seconds).
    pub fn set(&self, skew: f64) {
        self.micros
            .store((skew * 1e6).round() as i64, Ordering::Relaxed);
    }

    /// The last measurement in seconds, if any.
    pub fn get(&self) -> Option<f64> {
        let micros = self.micros.load(Ordering::Relaxed);
        (micros != i64::MIN).then(|| micros as f64 / 1e6)
    }
}

impl Default for LastSkew {
    fn default() -> LastSkew {
        LastSkew::new()
    }
}

/// Measures again (a maintenance pass): records the skew, and logs it when off.
pub async fn check_again(store: &Store, last: &LastSkew) {
    match skew(store).await {
        Ok(Some(skew)) => {
            last.set(skew);
            log(skew);
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "reading the database's clock failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(micros: i64) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_micros(1_700_000_000_000_000 + micros).unwrap()
    }

    #[test]
    fn the_database_reading_counts_as_made_halfway_through_the_round_trip() {
        // Read between 0 and 10 ms here; the database said 5 ms: no skew.
        assert_eq!(skew_of(at(0), at(5_000), at(10_000)), 0.0);
        // The database said 2 s earlier than halfway: this clock is 2 s ahead.
        assert_eq!(skew_of(at(0), at(-1_995_000), at(10_000)), 2.0);
        assert_eq!(skew_of(at(0), at(3_005_000), at(10_000)), -3.0);
    }

    #[test]
    fn a_second_is_drifting_and_a_minute_is_unsafe_either_way() {
        assert_eq!(verdict(0.0), Verdict::Agrees);
        assert_eq!(verdict(-0.999), Verdict::Agrees);
        assert_eq!(verdict(1.0), Verdict::Drifting);
        assert_eq!(verdict(-59.9), Verdict::Drifting);
        assert_eq!(verdict(60.0), Verdict::Unsafe);
        assert_eq!(verdict(-3600.0), Verdict::Unsafe);
        assert!(describe(-90.0).contains("90.0 s behind the database's"));
        assert!(describe(2.5).contains("2.5 s ahead of the database's"));
    }

    #[test]
    fn the_last_skew_is_none_until_measured() {
        let last = LastSkew::new();
        assert_eq!(last.get(), None);
        last.set(-0.25);
        assert_eq!(last.get(), Some(-0.25));
    }
}
