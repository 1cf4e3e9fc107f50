//! Request budgets: a token bucket per organisation and tier that refills its hourly budget
//! evenly.
//!
//! One process on SQLite keeps the buckets in memory. Servers sharing PostgreSQL keep them in
//! the database (one upsert per request), so every process sees the same budget.

use crate::store::{Store, StoreResult};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// The outcome of taking one request from a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed: requests left, and seconds until the bucket is full again.
    Allowed {
        /// Requests left now.
        remaining: u32,
        /// Seconds until the budget is whole again.
        reset: u64,
    },
    /// Refused: seconds until one request will be allowed.
    Refused {
        /// Seconds to wait.
        retry_after: u64,
    },
}

impl Verdict {
    fn from_tokens(ok: bool, tokens: f64, capacity: f64, rate_per_sec: f64) -> Verdict {
        if ok {
            Verdict::Allowed {
                remaining: tokens.max(0.0).floor() as u32,
                reset: ((capacity - tokens) / rate_per_sec).ceil().max(0.0) as u64,
            }
        } else {
            Verdict::Refused {
                retry_after: ((1.0 - tokens) / rate_per_sec).ceil().max(1.0) as u64,
            }
        }
    }
}

/// One key's bucket in memory.
#[derive(Debug)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Where buckets live.
#[derive(Debug)]
pub enum Limiter {
    /// In this process.
    Memory(Mutex<HashMap<String, Bucket>>),
    /// In the shared database.
    Database,
}

impl Limiter {
    /// An in-memory limiter.
    pub fn memory() -> Limiter {
        Limiter::Memory(Mutex::new(HashMap::new()))
    }

    /// Takes one request from `key`'s budget of `per_hour`.
    pub async fn check(&self, store: &Store, key: &str, per_hour: u32) -> StoreResult<Verdict> {
        let capacity = f64::from(per_hour.max(1));
        let rate = capacity / 3600.0;
        match self {
            Limiter::Memory(buckets) => {
                let now = Instant::now();
                let mut map = buckets.lock().unwrap_or_else(|e| e.into_inner());
                let b = map.entry(key.to_string()).or_insert(Bucket {
                    tokens: capacity,
                    last: now,
                });
                b.tokens =
                    (b.tokens + now.duration_since(b.last).as_secs_f64() * rate).min(capacity);
                b.last = now;
                let ok = b.tokens >= 1.0;
                if ok {
                    b.tokens -= 1.0;
                }
                Ok(Verdict::from_tokens(ok, b.tokens, capacity, rate))
            }
            Limiter::Database => {
                let now_ms = chrono::Utc::now().timestamp_millis();
                let (ok, tokens) = store
                    .take_token(key, capacity, now_ms, rate / 1000.0)
                    .await?;
                Ok(Verdict::from_tokens(ok, tokens, capacity, rate))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn budget_is_spent_then_refused_with_a_wait() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.unwrap();
        for limiter in [Limiter::memory(), Limiter::Database] {
            for i in 0..5 {
                match limiter.check(&store, "k", 5).await.unwrap() {
                    Verdict::Allowed { remaining, .. } => assert_eq!(remaining, 4 - i),
                    v => panic!("request {i} refused: {v:?}"),
                }
            }
            match limiter.check(&store, "k", 5).await.unwrap() {
                Verdict::Refused { retry_after } => {
                    assert!(
                        (700..=720).contains(&retry_after),
                        "one token per 720 s, got {retry_after}"
                    )
                }
                v => panic!("sixth request allowed: {v:?}"),
            }
            assert!(matches!(
                limiter.check(&store, "other", 5).await.unwrap(),
                Verdict::Allowed { .. }
            ));
        }
    }
}
