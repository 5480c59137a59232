//! Counters and the latency histogram: what the simulated agents record and the report reads.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

pub(super) const BUCKETS: usize = 64 * 8;

/// Log-linear latency buckets (microseconds): exact below 8, then 8 per power of two
/// (within an eighth).
pub(super) fn bucket(us: u64) -> usize {
    if us < 8 {
        return us as usize;
    }
    let e = 63 - us.leading_zeros() as usize;
    let m = ((us >> (e - 3)) & 7) as usize;
    (8 + (e - 3) * 8 + m).min(BUCKETS - 1)
}

pub(super) fn bucket_value(b: usize) -> u64 {
    if b < 8 {
        return b as u64;
    }
    let (e, m) = ((b - 8) / 8 + 3, ((b - 8) % 8) as u64);
    (8 + m) << (e - 3)
}

pub(super) struct Stats {
    pub(super) sessions: AtomicI64,
    pub(super) handshakes: AtomicU64,
    pub(super) connect_errors: AtomicU64,
    pub(super) sent: AtomicU64,
    pub(super) stored: AtomicU64,
    pub(super) retried: AtomicU64,
    pub(super) rejected: AtomicU64,
    pub(super) hist: Vec<AtomicU64>,
}

impl Stats {
    pub(super) fn new() -> Self {
        Stats {
            sessions: AtomicI64::new(0),
            handshakes: AtomicU64::new(0),
            connect_errors: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            hist: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(super) fn snapshot(&self) -> Snapshot {
        Snapshot {
            sessions: self.sessions.load(Ordering::Relaxed),
            handshakes: self.handshakes.load(Ordering::Relaxed),
            connect_errors: self.connect_errors.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            stored: self.stored.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            hist: self
                .hist
                .iter()
                .map(|h| h.load(Ordering::Relaxed))
                .collect(),
        }
    }
}

/// Cumulative counters (summed over workers).
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Snapshot {
    pub(super) sessions: i64,
    pub(super) handshakes: u64,
    pub(super) connect_errors: u64,
    pub(super) sent: u64,
    pub(super) stored: u64,
    pub(super) retried: u64,
    pub(super) rejected: u64,
    pub(super) hist: Vec<u64>,
}

impl Snapshot {
    pub(super) fn add(&mut self, o: &Snapshot) {
        self.sessions += o.sessions;
        self.handshakes += o.handshakes;
        self.connect_errors += o.connect_errors;
        self.sent += o.sent;
        self.stored += o.stored;
        self.retried += o.retried;
        self.rejected += o.rejected;
        if self.hist.len() < o.hist.len() {
            self.hist.resize(o.hist.len(), 0);
        }
        for (a, b) in self.hist.iter_mut().zip(&o.hist) {
            *a += b;
        }
    }

    /// Latency percentile (ms) of the events acknowledged between `earlier` and `self`.
    pub(super) fn percentile(&self, earlier: &Snapshot, p: f64) -> Option<f64> {
        let diff: Vec<u64> = self
            .hist
            .iter()
            .enumerate()
            .map(|(i, v)| v - earlier.hist.get(i).copied().unwrap_or(0))
            .collect();
        let total: u64 = diff.iter().sum();
        if total == 0 {
            return None;
        }
        let want = ((total as f64) * p).ceil() as u64;
        let mut seen = 0;
        for (i, n) in diff.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Some(bucket_value(i) as f64 / 1000.0);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_within_an_eighth() {
        for us in [1u64, 7, 8, 9, 100, 1234, 99_999, 1_000_000, 123_456_789] {
            let v = bucket_value(bucket(us));
            assert!(v <= us && us - v <= us / 8 + 1, "{us} -> {v}");
        }
    }

    #[test]
    fn percentiles_come_from_the_window() {
        let mut a = Snapshot {
            hist: vec![0; BUCKETS],
            ..Default::default()
        };
        let base = a.clone();
        for _ in 0..99 {
            a.hist[bucket(1000)] += 1;
        }
        a.hist[bucket(50_000)] += 1;
        assert_eq!(
            a.percentile(&base, 0.5),
            Some(bucket_value(bucket(1000)) as f64 / 1000.0)
        );
        assert_eq!(
            a.percentile(&base, 1.0),
            Some(bucket_value(bucket(50_000)) as f64 / 1000.0)
        );
        assert_eq!(a.percentile(&a, 0.5), None);
    }
}
