//! The one token bucket: `rate` tokens a second, at most `burst` saved up. Sensu's
//! `events-rate-limit`/`events-burst-limit` and `assets-rate-limit`/`assets-burst-limit`
//! are such buckets (Go's `rate.Limiter`).

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket. A `rate` of 0 (or less) means no limit.
    pub fn new(rate: f64, burst: u32) -> Bucket {
        let burst = f64::from(burst.max(1));
        Bucket {
            rate,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Takes a token at `now`, or says how long until one is there.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let since = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now.max(self.last);
        self.tokens = (self.tokens + since * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
    }

    /// Takes a token, waiting for it when the bucket is empty; the wait is reserved
    /// (the token is spent now), so waiters are served in turn.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        match self.take(now) {
            Ok(()) => Duration::ZERO,
            Err(wait) => {
                self.tokens -= 1.0;
                wait
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let mut b = Bucket::new(2.0, 3);
        let mut r = Bucket::new(1.0, 1);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(b.take(t0), Ok(()));
        }
        let wait = b.take(t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        assert_eq!(b.take(t0 + Duration::from_millis(500)), Ok(()));
        assert!(b.take(t0 + Duration::from_millis(600)).is_err());
        // Never more than the burst saved up.
        let later = t0 + Duration::from_secs(100);
        for _ in 0..3 {
            assert_eq!(b.take(later), Ok(()));
        }
        assert!(b.take(later).is_err());
        // Reserving queues the waiters.
        assert_eq!(r.reserve(t0), Duration::ZERO);
        assert_eq!(r.reserve(t0), Duration::from_secs(1));
        assert_eq!(r.reserve(t0), Duration::from_secs(2));
        // Rate 0: no limit.
        let mut free = Bucket::new(0.0, 1);
        for _ in 0..1000 {
            assert_eq!(free.take(t0), Ok(()));
        }
    }
}
