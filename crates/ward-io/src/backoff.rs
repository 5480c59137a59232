//! The one backoff: exponential with full jitter, floored at a minimum. The agent's
//! reconnects (`retry-min`, `retry-max`, `retry-multiplier`), the backend's PostgreSQL
//! reconnects, its accept loop when file descriptors run out, and `ward bench`'s simulated
//! agents all wait by it.
//!
//! Each wait is drawn uniformly between the minimum and a ceiling; the ceiling starts at
//! `min × multiplier` and is multiplied again after every failure, up to `max`. The draw
//! spreads a fleet of agents that lost the same backend at the same moment (Sensu's
//! reconnect storms, sensu-go#4825) instead of bringing them back in step. A success (a
//! session that lasted) resets the ceiling and the count of failures.

use std::time::Duration;

/// The state of one retry loop's backoff.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    multiplier: f64,
    ceiling: Duration,
    failures: u32,
}

impl Backoff {
    /// `min ≤ max` and `multiplier ≥ 1` (the configuration checks both).
    pub fn new(min: Duration, max: Duration, multiplier: f64) -> Backoff {
        let mut b = Backoff {
            min,
            max: max.max(min),
            multiplier: multiplier.max(1.0),
            ceiling: min,
            failures: 0,
        };
        b.reset();
        b
    }

    /// Counts a failure and returns the wait before the next attempt, in `[min, ceiling]`;
    /// the ceiling grows.
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let lo = self.min.as_secs_f64();
        let hi = self.ceiling.as_secs_f64();
        let d = Duration::from_secs_f64(lo + fastrand::f64() * (hi - lo));
        self.ceiling = self.grow(self.ceiling);
        d
    }

    /// The current ceiling (for logs and tests).
    pub fn ceiling(&self) -> Duration {
        self.ceiling
    }

    /// Failures since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Back to the first step, after a success (a session that lasted).
    pub fn reset(&mut self) {
        self.ceiling = self.grow(self.min);
        self.failures = 0;
    }

    fn grow(&self, d: Duration) -> Duration {
        let next = d.as_secs_f64() * self.multiplier;
        if next >= self.max.as_secs_f64() {
            self.max
        } else {
            Duration::from_secs_f64(next)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_between_min_and_max_and_the_ceiling_grows_to_max() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(120));
        let mut b = Backoff::new(min, max, 2.0);
        let mut ceilings = Vec::new();
        for _ in 0..20 {
            let c = b.ceiling();
            let d = b.next_delay();
            assert!(d >= min && d <= c, "{d:?} outside [{min:?}, {c:?}]");
            ceilings.push(c.as_secs());
        }
        assert_eq!(&ceilings[..8], [2, 4, 8, 16, 32, 64, 120, 120]);
        assert_eq!(b.ceiling(), max);
        assert_eq!(b.failures(), 20);
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_secs(2));
        assert_eq!(b.failures(), 0);
    }

    #[test]
    fn delays_are_jittered() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1000), 2.0);
        for _ in 0..6 {
            b.next_delay();
        }
        let draws: Vec<Duration> = (0..50)
            .map(|_| {
                let mut c = b.clone();
                c.next_delay()
            })
            .collect();
        let distinct: std::collections::BTreeSet<_> = draws.iter().collect();
        assert!(distinct.len() > 40, "{distinct:?}");
        let mean = draws.iter().map(Duration::as_secs_f64).sum::<f64>() / 50.0;
        assert_eq!(b.ceiling(), Duration::from_secs(128));
        assert!(
            mean > 40.0 && mean < 90.0,
            "mean {mean} of draws in [1, 128]"
        );
    }

    #[test]
    fn a_multiplier_of_one_keeps_a_constant_ceiling() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_secs(1), 1.0);
        for _ in 0..5 {
            assert!(b.next_delay() <= Duration::from_millis(10));
        }
    }
}
