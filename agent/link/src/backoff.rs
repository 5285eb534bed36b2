//! Reconnect delays: exponential from 500 ms to 30 s, each one drawn at random from its upper
//! half, so that a fleet that lost its coordinator at one moment does not dial back at one
//! moment (no stampede); back to the start after a session the coordinator welcomed.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_millis(500), Duration::from_secs(30))
    }
}

impl Backoff {
    pub fn new(first: Duration, cap: Duration) -> Backoff {
        Backoff {
            first,
            cap,
            next: first,
        }
    }

    /// The delay before the next attempt: uniform in the upper half of the current step.
    pub fn delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(self.cap);
        let half = step / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    /// A welcomed session: the next failure starts from the first step again.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_jitter_and_reset() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(4));
        let steps = [500, 1000, 2000, 4000, 4000];
        for ms in steps {
            let d = b.delay().as_millis() as u64;
            assert!(d >= ms / 2 && d <= ms, "{d} ms outside [{}, {ms}]", ms / 2);
        }
        b.reset();
        assert!(b.delay() <= Duration::from_millis(500));
        // Jitter: a thousand first delays are not all one value.
        let firsts: std::collections::BTreeSet<u128> = (0..1000)
            .map(|_| Backoff::default().delay().as_millis())
            .collect();
        assert!(firsts.len() > 50, "{} distinct delays", firsts.len());
    }
}
