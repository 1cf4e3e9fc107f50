//! Per-key request budgets: a token bucket per key that refills its hourly budget evenly.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// In-memory limiter shared by every request of this process.
#[derive(Debug, Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    /// Takes one request from `key`'s budget of `per_hour`. Ok((remaining, seconds until
    /// the bucket is full again)) or Err(seconds until one request is allowed).
    pub fn check(&self, key: &str, per_hour: u32) -> Result<(u32, u64), u64> {
        let capacity = f64::from(per_hour.max(1));
        let rate = capacity / 3600.0;
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = map.entry(key.to_string()).or_insert(Bucket {
            tokens: capacity,
            last: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * rate).min(capacity);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            let reset = ((capacity - b.tokens) / rate).ceil() as u64;
            Ok((b.tokens.floor() as u32, reset))
        } else {
            Err(((1.0 - b.tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_spent_then_refused_with_a_wait() {
        let l = Limiter::default();
        for i in 0..5 {
            let (remaining, _) = l.check("k", 5).expect("within budget");
            assert_eq!(remaining, 4 - i);
        }
        let wait = l.check("k", 5).unwrap_err();
        assert!(
            (700..=720).contains(&wait),
            "one token per 720 s, got {wait}"
        );
        assert!(l.check("other", 5).is_ok(), "budgets are per key");
    }
}
