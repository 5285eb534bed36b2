//! Per-user rate limit: a token bucket per user id, `rate` tokens a second up to `burst`. A
//! request takes one token; an empty bucket answers how long until the next. Buckets that
//! have refilled are forgotten when the table grows, so idle users cost nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before full ones are swept out.
const SWEEP_AT: usize = 10_000;

pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// `rate` 0 limits nothing.
    pub fn new(rate: f64, burst: u32) -> RateLimiter {
        RateLimiter {
            rate,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.rate > 0.0
    }

    /// Takes one of `who`'s tokens; `Err(wait)` with the time until one is back.
    pub fn take(&self, who: &str) -> Result<(), Duration> {
        self.take_at(who, Instant::now())
    }

    fn take_at(&self, who: &str, now: Instant) -> Result<(), Duration> {
        if !self.enabled() {
            return Ok(());
        }
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= SWEEP_AT && !map.contains_key(who) {
            let (rate, burst) = (self.rate, self.burst);
            map.retain(|_, b| refilled(b, rate, burst, now) < burst);
        }
        let b = map.entry(who.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        b.tokens = refilled(b, self.rate, self.burst, now);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.rate))
        }
    }
}

fn refilled(b: &Bucket, rate: f64, burst: f64, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
    (b.tokens + elapsed * rate).min(burst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate_then_recovery() {
        let l = RateLimiter::new(20.0, 100);
        let t0 = Instant::now();
        for _ in 0..100 {
            assert!(l.take_at("alice", t0).is_ok());
        }
        let wait = l.take_at("alice", t0).expect_err("the burst is spent");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(50),
            "{wait:?}"
        );
        assert!(l.take_at("bob", t0).is_ok(), "buckets are per user");
        let later = t0 + Duration::from_millis(100);
        assert!(
            l.take_at("alice", later).is_ok(),
            "two tokens back after 100 ms"
        );
        assert!(l.take_at("alice", later).is_ok());
        assert!(l.take_at("alice", later).is_err());
        let off = RateLimiter::new(0.0, 1);
        assert!((0..1000).all(|_| off.take("x").is_ok()));
    }
}
