//! A token bucket per credential (or per address for anonymous callers), in memory per server process.
//!
//! Replicas share the limit without sharing state per request: each knows how many replicas are alive (a
//! heartbeat row each in the database) and enforces its share, the limit divided by that count. A
//! balancer that spreads a caller's requests (round robin, least connections) lets the caller the whole
//! limit across the fleet, never N times it; one that pins a caller to a replica lets it a share.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

/// Buckets kept at most; memory stays bounded whoever calls.
const MAX_TRACKED: usize = 100_000;

pub struct RateLimiter {
    limit: f64,
    /// Replicas alive, this one included (at least 1).
    replicas: AtomicU32,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        Self {
            limit: f64::from(per_minute),
            replicas: AtomicU32::new(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// How many replicas share the limit now.
    pub fn set_replicas(&self, alive: u32) {
        self.replicas.store(alive.max(1), Ordering::Relaxed);
    }

    /// Takes one request from `key`'s bucket; when it is empty, the seconds until the next one.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        // This replica's share, never below one request a minute.
        let per_minute = (self.limit / f64::from(self.replicas.load(Ordering::Relaxed))).max(1.0);
        let rate = per_minute / 60.0;
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        if buckets.len() > MAX_TRACKED {
            // Forget callers whose buckets have refilled: they lose nothing.
            let full = per_minute;
            buckets.retain(|_, (tokens, at)| *tokens + at.elapsed().as_secs_f64() * rate < full);
            if buckets.len() > MAX_TRACKED {
                // Still too many callers (a flood of fresh addresses): start over rather than grow.
                buckets.clear();
            }
        }
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((per_minute, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(per_minute);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_share_the_limit() {
        let limiter = RateLimiter::new(60);
        limiter.set_replicas(3);
        for _ in 0..20 {
            limiter.check("a").unwrap();
        }
        assert!(
            limiter.check("a").is_err(),
            "a third of 60 on each of three replicas"
        );
    }

    #[test]
    fn a_burst_beyond_the_limit_is_refused_with_a_retry_time() {
        let limiter = RateLimiter::new(60);
        for _ in 0..60 {
            limiter.check("a").unwrap();
        }
        assert_eq!(limiter.check("a"), Err(1));
        assert!(limiter.check("b").is_ok(), "buckets are per key");
    }
}
