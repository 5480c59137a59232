//! The StatsD listener (Sensu's: UDP `statsd-metrics-host:statsd-metrics-port`,
//! 127.0.0.1:8125 by default; `statsd-disable`). Each datagram holds lines of StatsD's
//! protocol (`abc.def.g:10|c`), summed by `ward_types::metrics::statsd`; every
//! `statsd-flush-interval` what was summed becomes one metrics event of this agent's entity
//! — `{entity, timestamp, metrics: {handlers: statsd-event-handlers, points}}`, no check —
//! queued like any event. The backend hands it to the pipeline without storing it, as
//! Sensu does. A malformed line is counted and logged (at most once a second), never
//! stops the listener, and never blocks the queue; nothing is sent when nothing came.

use crate::metrics::inc;
use crate::Agent;
use serde_json::json;
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;
use ward_types::metrics::statsd::{parse_line, Aggregate};

/// The largest datagram read.
const MAX_DATAGRAM: usize = 65_535;

/// Serves the listener until `stop` resolves; a last flush then sends what was summed.
pub(crate) async fn serve(
    agent: Arc<Agent>,
    udp: UdpSocket,
    cfg: crate::config::Statsd,
    stop: impl std::future::Future<Output = ()>,
) {
    let sums = Arc::new(Mutex::new(Aggregate::default()));
    let mut flush = tokio::time::interval_at(
        tokio::time::Instant::now() + cfg.flush_interval,
        cfg.flush_interval,
    );
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut last_log = std::time::Instant::now() - std::time::Duration::from_secs(2);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = flush.tick() => send(&agent, &sums, &cfg).await,
            r = udp.recv_from(&mut buf) => {
                let Ok((n, from)) = r else {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let text = String::from_utf8_lossy(&buf[..n]);
                let mut a = sums.lock().unwrap_or_else(|p| p.into_inner());
                for line in text.split('\n').filter(|l| !l.trim().is_empty()) {
                    inc(&agent.metrics.statsd_lines);
                    let why = match parse_line(line) {
                        Ok(s) => {
                            if a.add(s) {
                                continue;
                            }
                            format!("more than {} series since the last flush", ward_types::metrics::statsd::MAX_SERIES)
                        }
                        Err(e) => e,
                    };
                    inc(&agent.metrics.statsd_invalid);
                    if last_log.elapsed() >= std::time::Duration::from_secs(1) {
                        last_log = std::time::Instant::now();
                        tracing::warn!(from = %from, "statsd: a line was dropped: {why} (logged at most once a second; see ward_agent_statsd_invalid_total)");
                    }
                }
            }
        }
    }
    send(&agent, &sums, &cfg).await;
}

/// One flush: the points summed since the last, as one metrics event.
async fn send(agent: &Agent, sums: &Mutex<Aggregate>, cfg: &crate::config::Statsd) {
    let now = crate::check::unix_now();
    let points = {
        let mut a = sums.lock().unwrap_or_else(|p| p.into_inner());
        if a.is_empty() {
            return;
        }
        a.flush(now, cfg.flush_interval.as_secs_f64())
    };
    let points: Vec<serde_json::Value> = points.iter().map(|p| p.to_json()).collect();
    let event = json!({
        "entity": agent.entity(),
        "timestamp": now,
        "metrics": {"handlers": cfg.handlers, "points": points},
    });
    match agent.enqueue(&event).await {
        Ok(_) => inc(&agent.metrics.statsd_events),
        Err(e) => tracing::warn!(error = %e, "statsd: the flush's metrics event was not queued"),
    }
}
