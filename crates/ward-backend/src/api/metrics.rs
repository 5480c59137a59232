//! `Metrics`: the backend's counters, rendered by `GET /metrics` (see `health.rs`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters for /metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub plaintext_on_tls: AtomicU64,
    pub handshake_failures: AtomicU64,
    /// Failed handshakes by reason (a short label from the TLS error).
    pub handshake_failure_reasons: std::sync::Mutex<BTreeMap<String, u64>>,
    pub auth_failures: AtomicU64,
    pub events_received: AtomicU64,
    pub events_stored: AtomicU64,
    /// Total time spent in event store writes, in microseconds, and how many.
    pub store_write_micros: AtomicU64,
    pub store_writes: AtomicU64,
    /// Events stored in the embedded store (and its replay journal) while a non-strict
    /// PostgreSQL event store was unreachable.
    pub pg_fallback_events: AtomicU64,
    /// Journaled events replayed into PostgreSQL.
    pub pg_replayed_events: AtomicU64,
    /// Events refused because the PostgreSQL store's buffer was full (503).
    pub pg_buffer_full: AtomicU64,
}

impl Metrics {
    /// Counts a failed handshake under `reason`.
    pub fn handshake_failed(&self, reason: &str) {
        self.handshake_failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.handshake_failure_reasons.lock() {
            *m.entry(reason.to_string()).or_insert(0) += 1;
        }
    }
}
