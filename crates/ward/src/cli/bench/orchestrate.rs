//! Orchestration: the target, the agents split over processes, the report.

use super::session::*;
use super::stats::*;
use super::AgentsArgs;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `--duration`: Ward's durations (`30s`, `2m`, `1h30m`), or plain seconds.
pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let with_unit = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        format!("{s}s")
    } else {
        s.to_string()
    };
    ward_io::parse_duration("--duration", &with_unit).map_err(|e| e.to_string())
}

pub(super) fn target(a: &AgentsArgs) -> Result<Target, String> {
    let url = ward_io::url::parse_endpoint(&a.backend_url, "ws", "wss")
        .map_err(|e| format!("--backend-url: {:?}: {e}", a.backend_url))?;
    let addr: SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(&(url.host.as_str(), url.port))
        .map_err(|e| format!("--backend-url: {}: {e}", url.host))?
        .next()
        .ok_or_else(|| format!("--backend-url: {}: no address", url.host))?;
    let (tls, host) = (url.tls, url.host);
    let tls = if tls {
        let ca = a.trusted_ca_file.as_ref().ok_or(
            "--trusted-ca-file: required with wss:// (the CA of the backend's certificate)",
        )?;
        Some(tokio_rustls::TlsConnector::from(Arc::new(
            ward_tls::client_config(&ward_tls::Trust::CaFile(ca.clone()))?,
        )))
    } else {
        None
    };
    Ok(Target {
        url: a.backend_url.clone(),
        addr,
        host,
        tls,
    })
}

pub(super) fn names(a: &AgentsArgs, worker: usize, workers: usize) -> Vec<(usize, String)> {
    let width = a.count.to_string().len().max(5);
    (0..a.count)
        .filter(|i| i % workers == worker)
        .map(|i| (i, format!("{}{:0width$}", a.prefix, i + 1)))
        .collect()
}

/// Raises the soft open-file limit to the hard one; returns it.
pub(super) fn raise_nofile() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut l = getrlimit(Resource::Nofile);
    if let Some(h) = l.maximum {
        l.current = Some(h);
        let _ = setrlimit(Resource::Nofile, l);
    }
    getrlimit(Resource::Nofile).current.unwrap_or(1024)
}

/// One process's agents: connects them, then sends for `duration`.
pub(super) async fn run_agents(
    a: AgentsArgs,
    worker: usize,
    workers: usize,
    report: impl Fn(Snapshot, &str) + Send + Sync + 'static,
) -> Result<(), String> {
    let target = target(&a)?;
    let duration = parse_duration(&a.duration)?;
    let mine = names(&a, worker, workers);
    let event_every = (a.rate > 0.0).then(|| Duration::from_secs_f64(a.count as f64 / a.rate));
    // Each agent's client certificate.
    let mut connectors = Vec::with_capacity(mine.len());
    if let Some(dir) = &a.certs {
        let base = match &target.tls {
            Some(_) => ward_tls::client_config(&ward_tls::Trust::CaFile(
                a.trusted_ca_file.clone().unwrap_or_default(),
            ))?,
            None => return Err("--certs: client certificates need a wss:// --backend-url".into()),
        };
        for (_, name) in &mine {
            let ck = ward_tls::load_pair(&dir.join(format!("{name}.pem")), &dir.join(format!("{name}-key.pem")))
                .map_err(|e| format!("--certs: {e} (made by `ward pki bootstrap` with agents: [{{prefix: {}, count: {}}}])", a.prefix, a.count))?;
            connectors.push(Some(tokio_rustls::TlsConnector::from(Arc::new(
                ward_tls::with_client_cert(base.clone(), ck),
            ))));
        }
    } else {
        connectors.resize(mine.len(), target.tls.clone());
    }
    let sh = Arc::new(Shared {
        args: a.clone(),
        target,
        stats: Stats::new(),
        event_every,
        sending: std::sync::atomic::AtomicBool::new(false),
        stop: std::sync::atomic::AtomicBool::new(false),
    });
    let per_worker_rate = (a.connect_rate as f64 / workers as f64).max(1.0);
    let reporter = {
        let sh = sh.clone();
        tokio::spawn(async move {
            let mut t = tokio::time::interval(Duration::from_secs(1));
            loop {
                t.tick().await;
                let phase = if sh.stop.load(Ordering::Relaxed) {
                    "done"
                } else if sh.sending.load(Ordering::Relaxed) {
                    "sending"
                } else {
                    "connecting"
                };
                report(sh.stats.snapshot(), phase);
            }
        })
    };
    let mut tasks = Vec::with_capacity(mine.len());
    let start = Instant::now();
    for (n, ((index, name), tls)) in mine.into_iter().zip(connectors).enumerate() {
        let due = start + Duration::from_secs_f64(n as f64 / per_worker_rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        tasks.push(tokio::spawn(sim_agent(index, name, tls, sh.clone())));
    }
    // Every session up (or 60 s), then send.
    let want = tasks.len() as i64;
    let up_deadline = Instant::now() + Duration::from_secs(60);
    while sh.stats.sessions.load(Ordering::Relaxed) < want && Instant::now() < up_deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sh.sending.store(true, Ordering::Relaxed);
    tokio::time::sleep(duration).await;
    sh.sending.store(false, Ordering::Relaxed);
    // Let the last acknowledgements arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    sh.stop.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    reporter.abort();
    for t in tasks {
        t.abort();
    }
    Ok(())
}

pub(super) fn scrape(api: &str, ca: Option<&PathBuf>) -> (Option<f64>, Option<f64>) {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-s", "--max-time", "2"]);
    if let Some(ca) = ca {
        cmd.arg("--cacert").arg(ca);
    }
    let out = cmd
        .arg(format!("{}/metrics", api.trim_end_matches('/')))
        .output();
    let Ok(out) = out else { return (None, None) };
    let text = String::from_utf8_lossy(&out.stdout);
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    (
        value("ward_agent_sessions"),
        value("process_resident_memory_bytes"),
    )
}

pub(super) fn agents(a: AgentsArgs) -> Result<ExitCode, String> {
    if a.count == 0 {
        return Err("--count: must be at least 1".into());
    }
    if !(a.rate >= 0.0 && a.rate.is_finite()) {
        return Err("--rate: must be a number of events per second ≥ 0".into());
    }
    parse_duration(&a.duration)?;
    target(&a)?;
    let limit = raise_nofile();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    if let Some(w) = &a.worker {
        let (k, n) = w
            .split_once('/')
            .and_then(|(k, n)| Some((k.parse::<usize>().ok()?, n.parse::<usize>().ok()?)))
            .filter(|(k, n)| k < n)
            .ok_or("--worker: K/N")?;
        let out = std::sync::Mutex::new(std::io::stdout());
        rt.block_on(run_agents(a, k, n, move |s, phase| {
            if let Ok(mut o) = out.lock() {
                let _ = writeln!(o, "{}", serde_json::json!({"phase": phase, "stats": s}));
                let _ = o.flush();
            }
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    // Leave room for the process's own files: ~200 descriptors.
    let per_process = limit.saturating_sub(200).max(100) as usize;
    let processes = if a.processes > 0 {
        a.processes
    } else {
        a.count.div_ceil(per_process)
    };
    eprintln!(
        "ward bench agents: {} agents over {} ({}), {} process(es), {} source addresses, {} events/s for {}",
        a.count,
        a.backend_url,
        if a.certs.is_some() { "client certificates" } else { "password" },
        processes,
        a.sources,
        a.rate,
        a.duration
    );
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the ward binary: {e}"))?;
    let mut children = Vec::new();
    let latest: Arc<std::sync::Mutex<Vec<(Snapshot, String)>>> =
        Arc::new(std::sync::Mutex::new(vec![
            (
                Snapshot::default(),
                "connecting".into()
            );
            processes
        ]));
    for k in 0..processes {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(std::env::args_os().skip(1));
        cmd.arg("--worker").arg(format!("{k}/{processes}"));
        cmd.stdout(std::process::Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start a worker: {e}"))?;
        let stdout = child.stdout.take().ok_or("worker stdout")?;
        let latest = latest.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    let phase = v["phase"].as_str().unwrap_or("").to_string();
                    if let Ok(s) = serde_json::from_value::<Snapshot>(v["stats"].clone()) {
                        if let Ok(mut l) = latest.lock() {
                            l[k] = (s, phase);
                        }
                    }
                }
            }
        });
        children.push(child);
    }
    let total = |l: &[(Snapshot, String)]| {
        let mut t = Snapshot::default();
        for (s, _) in l {
            t.add(s);
        }
        t
    };
    let started = Instant::now();
    let mut prev = Snapshot::default();
    let mut send_start: Option<(Instant, Snapshot)> = None;
    let mut all_up: Option<f64> = None;
    let mut peak_handshakes = 0u64;
    let mut peak_rss: f64 = 0.0;
    let mut rss_base: Option<f64> = None;
    // RSS and the backend's session count, the last time every session was up.
    let mut at_full: Option<(f64, f64)> = None;
    let mut send_end: Option<(Instant, Snapshot)> = None;
    let mut max_sessions = 0i64;
    let mut drops: Vec<String> = Vec::new();
    let mut down_since: Option<(Instant, i64)> = None;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let done = children
            .iter_mut()
            .all(|c| matches!(c.try_wait(), Ok(Some(_))));
        let (now, phases) = match latest.lock() {
            Ok(l) => (
                total(&l),
                l.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>(),
            ),
            Err(_) => break,
        };
        let hs = now.handshakes - prev.handshakes;
        peak_handshakes = peak_handshakes.max(hs);
        let stored = now.stored - prev.stored;
        max_sessions = max_sessions.max(now.sessions);
        if all_up.is_none() && now.sessions as usize >= a.count {
            all_up = Some(started.elapsed().as_secs_f64());
        }
        // A drop of sessions (a backend restart): how long until all are back.
        match down_since {
            None if send_start.is_some() && (now.sessions as usize) < a.count * 9 / 10 => {
                down_since = Some((Instant::now(), now.sessions))
            }
            Some((t, _)) if now.sessions as usize >= a.count => {
                drops.push(format!(
                    "all {} sessions back {:.1}s after the drop",
                    a.count,
                    t.elapsed().as_secs_f64()
                ));
                down_since = None;
            }
            _ => {}
        }
        if send_start.is_none() && phases.iter().all(|p| p == "sending") {
            send_start = Some((Instant::now(), now.clone()));
        }
        if send_start.is_some() && send_end.is_none() && phases.iter().any(|p| p != "sending") {
            send_end = Some((Instant::now(), now.clone()));
        }
        let (bs, rss) = a
            .api_url
            .as_deref()
            .map(|u| scrape(u, a.trusted_ca_file.as_ref()))
            .unwrap_or((None, None));
        if let Some(r) = rss {
            peak_rss = peak_rss.max(r);
            if rss_base.is_none() {
                rss_base = Some(r);
            }
            if let Some(s) = bs.filter(|s| *s as usize >= a.count) {
                at_full = Some((r, s));
            }
        }
        eprintln!(
            "[{:>4.0}s] sessions {:>6}/{}  handshakes {:>5}/s  stored {:>6}/s  p50 {}  p99 {}  retried {}  errors {}{}",
            started.elapsed().as_secs_f64(),
            now.sessions,
            a.count,
            hs,
            stored,
            now.percentile(&prev, 0.5).map(|v| format!("{v:.1}ms")).unwrap_or("-".into()),
            now.percentile(&prev, 0.99).map(|v| format!("{v:.1}ms")).unwrap_or("-".into()),
            now.retried,
            now.connect_errors,
            rss.map(|r| format!("  backend RSS {:.0} MB", r / 1e6)).unwrap_or_default()
        );
        prev = now;
        if done {
            break;
        }
    }
    for mut c in children {
        let _ = c.wait();
    }
    let last = latest.lock().map(|l| total(&l)).unwrap_or_default();
    let (secs, base, end) = match (&send_start, send_end) {
        (Some((t0, s0)), Some((t1, s1))) => ((t1 - *t0).as_secs_f64().max(0.001), s0.clone(), s1),
        (Some((t0, s0)), None) => (
            t0.elapsed().as_secs_f64().max(0.001),
            s0.clone(),
            last.clone(),
        ),
        _ => (
            started.elapsed().as_secs_f64(),
            Snapshot::default(),
            last.clone(),
        ),
    };
    let stored = end.stored - base.stored;
    // Memory per session: what the sessions added to the backend's RSS, per session.
    let per_session = match (at_full, rss_base) {
        (Some((r, s)), Some(b)) if s > 0.0 => Some((r - b).max(0.0) / s),
        _ => None,
    };
    let report = serde_json::json!({
        "agents": a.count,
        "processes": processes,
        "sessions_max": max_sessions,
        "all_connected_after_s": all_up,
        "peak_handshakes_per_s": peak_handshakes,
        "events_sent": end.sent - base.sent,
        "events_sent_per_s": (end.sent - base.sent) as f64 / secs,
        "events_stored": stored,
        "events_per_s": stored as f64 / secs,
        "retried": last.retried,
        "rejected": last.rejected,
        "connect_errors": last.connect_errors,
        "backend_rss_bytes_at_start": rss_base,
        "backend_rss_bytes_all_connected": at_full.map(|(r, _)| r),
        "latency_p50_ms": end.percentile(&base, 0.5),
        "latency_p99_ms": end.percentile(&base, 0.99),
        "backend_rss_bytes_peak": (peak_rss > 0.0).then_some(peak_rss),
        "backend_rss_bytes_per_session": per_session,
        "reconnects": drops,
    });
    if a.json {
        outln!("{report}");
    } else {
        outln!(
            "sessions held: {} of {} (all up after {})\nevents stored: {} in {:.0}s = {:.0}/s, p50 {} p99 {}\npeak handshakes/s: {}\nbackend RSS: {}{}\n{}",
            max_sessions,
            a.count,
            all_up.map(|s| format!("{s:.1}s")).unwrap_or("never".into()),
            stored,
            secs,
            stored as f64 / secs,
            report["latency_p50_ms"].as_f64().map(|v| format!("{v:.1}ms")).unwrap_or("-".into()),
            report["latency_p99_ms"].as_f64().map(|v| format!("{v:.1}ms")).unwrap_or("-".into()),
            peak_handshakes,
            if peak_rss > 0.0 { format!("{:.0} MB peak", peak_rss / 1e6) } else { "- (give --api-url)".into() },
            per_session.map(|b| format!(", {:.1} KB per session (RSS added by the sessions)", b / 1e3)).unwrap_or_default(),
            report["reconnects"].as_array().map(|d| d.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join("\n")).unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
