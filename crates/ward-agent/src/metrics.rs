//! The agent's counters, served as Prometheus text on the local API's `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by the transport, the check runner and the local API.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Events refused because the queue held cache-max-events.
    pub queue_full: AtomicU64,
    /// Event frames written (a resend counts again).
    pub sent: AtomicU64,
    /// Events the backend stored.
    pub acked: AtomicU64,
    /// Events the backend rejected (dropped, with the reason logged).
    pub rejected: AtomicU64,
    /// Events the backend asked for again (`retry`).
    pub retried: AtomicU64,
    /// Sessions opened after the first.
    pub reconnects: AtomicU64,
    /// Connection attempts that failed (network, TLS, or an HTTP refusal).
    pub connect_failures: AtomicU64,
    /// 1 while a session is open.
    pub connected: AtomicU64,
    /// Checks run.
    pub checks: AtomicU64,
    /// Check results queued from the agent socket.
    pub socket_results: AtomicU64,
    /// Check results the agent socket refused (malformed, too large, not this entity).
    pub socket_invalid: AtomicU64,
    /// StatsD lines received, and those dropped (malformed, or past the series cap).
    pub statsd_lines: AtomicU64,
    pub statsd_invalid: AtomicU64,
    /// Metrics events queued by StatsD flushes.
    pub statsd_events: AtomicU64,
}

/// Adds one.
pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// The Prometheus text exposition, with the queue's depth.
    pub fn render(&self, queue_depth: u64) -> String {
        let mut s = String::new();
        let mut one = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        one(
            "ward_agent_queue_events",
            "gauge",
            "Events in the on-disk queue, not yet answered by the backend.",
            queue_depth,
        );
        one(
            "ward_agent_queue_full_total",
            "counter",
            "Events refused because the queue was full (cache-max-events).",
            get(&self.queue_full),
        );
        one(
            "ward_agent_events_sent_total",
            "counter",
            "Event frames sent to the backend (resends included).",
            get(&self.sent),
        );
        one(
            "ward_agent_events_acked_total",
            "counter",
            "Events the backend stored.",
            get(&self.acked),
        );
        one(
            "ward_agent_events_rejected_total",
            "counter",
            "Events the backend rejected; each is logged with its reason and dropped.",
            get(&self.rejected),
        );
        one(
            "ward_agent_events_retried_total",
            "counter",
            "Events the backend asked to be sent again.",
            get(&self.retried),
        );
        one(
            "ward_agent_reconnects_total",
            "counter",
            "Sessions opened after the first.",
            get(&self.reconnects),
        );
        one(
            "ward_agent_connect_failures_total",
            "counter",
            "Connection attempts that failed.",
            get(&self.connect_failures),
        );
        one(
            "ward_agent_connected",
            "gauge",
            "1 while a session with a backend is open.",
            get(&self.connected),
        );
        one(
            "ward_agent_checks_executed_total",
            "counter",
            "Checks run.",
            get(&self.checks),
        );
        one(
            "ward_agent_socket_results_total",
            "counter",
            "Check results queued from the agent socket (3030).",
            get(&self.socket_results),
        );
        one(
            "ward_agent_socket_invalid_total",
            "counter",
            "Check results the agent socket refused.",
            get(&self.socket_invalid),
        );
        one(
            "ward_agent_statsd_lines_total",
            "counter",
            "StatsD lines received (8125).",
            get(&self.statsd_lines),
        );
        one(
            "ward_agent_statsd_invalid_total",
            "counter",
            "StatsD lines dropped: malformed, or past the series cap.",
            get(&self.statsd_invalid),
        );
        one(
            "ward_agent_statsd_events_total",
            "counter",
            "Metrics events queued by StatsD flushes.",
            get(&self.statsd_events),
        );
        s
    }
}
