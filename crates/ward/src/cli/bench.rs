//! `ward bench agents`: simulated agents at fleet scale. N sessions over ws/wss (each with
//! its own client certificate from `ward pki bootstrap`, or a password), keepalives and
//! check results at a set total rate; reports sessions held, events/s stored (acknowledged
//! by the backend, which acknowledges only committed events), end-to-end latency p50/p99,
//! handshakes/s, and the backend's RSS from its /metrics. Connections come from several
//! loopback source addresses (127.0.0.x) so ephemeral ports are not the limit, and the
//! agents are split over several processes when one process's open-file limit would be.

use clap::{Args, Subcommand};
use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use ward_types::agent::{self, Ack, AgentEntity, Frame, Keepalive};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Simulated agents against a running backend.
    Agents(AgentsArgs),
}

#[derive(Debug, Args, Clone)]
pub struct AgentsArgs {
    /// The backend's agent URL (ws:// or wss://).
    #[arg(long = "backend-url", default_value = "wss://127.0.0.1:8081")]
    backend_url: String,
    /// Simulated agents (sessions).
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// Check results per second, all agents together (0: keepalives only).
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// How long to send check results once every session is up (e.g. 30s, 2m).
    #[arg(long, default_value = "30s")]
    duration: String,
    /// The CA that signed the backend's certificate (wss://).
    #[arg(long = "trusted-ca-file")]
    trusted_ca_file: Option<PathBuf>,
    /// A folder of agent certificates from `ward pki bootstrap` (NAME.pem, NAME-key.pem):
    /// each simulated agent presents its own. Without it, --user/--password are sent.
    #[arg(long)]
    certs: Option<PathBuf>,
    /// Agent names are PREFIX00001 … (as `ward pki bootstrap` names `prefix:` agents).
    #[arg(long, default_value = "agent-")]
    prefix: String,
    #[arg(long, default_value = "agent")]
    user: String,
    #[arg(long, env = "WARD_BENCH_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    #[arg(long, default_value = "default")]
    namespace: String,
    /// The backend's API URL, for its /metrics (sessions, RSS).
    #[arg(long = "api-url")]
    api_url: Option<String>,
    /// Loopback source addresses to connect from (127.0.0.1 … 127.0.0.N).
    #[arg(long, default_value_t = 8)]
    sources: u8,
    /// New sessions per second while connecting.
    #[arg(long = "connect-rate", default_value_t = 1000)]
    connect_rate: u32,
    #[arg(long = "keepalive-interval", default_value_t = 20)]
    keepalive_interval: u32,
    /// Processes to spread the agents over (0: as many as the open-file limit needs).
    #[arg(long, default_value_t = 0)]
    processes: usize,
    /// Print the final report as JSON.
    #[arg(long)]
    json: bool,
    /// Internal: run as worker K of N, printing counters as JSON lines.
    #[arg(long, hide = true)]
    worker: Option<String>,
}

pub fn run(cmd: BenchCommand) -> Result<ExitCode, String> {
    match cmd {
        BenchCommand::Agents(a) => agents(a),
    }
}

// ---- counters ----

const BUCKETS: usize = 64 * 8;

/// Log-linear latency buckets (microseconds): exact below 8, then 8 per power of two
/// (within an eighth).
fn bucket(us: u64) -> usize {
    if us < 8 {
        return us as usize;
    }
    let e = 63 - us.leading_zeros() as usize;
    let m = ((us >> (e - 3)) & 7) as usize;
    (8 + (e - 3) * 8 + m).min(BUCKETS - 1)
}

fn bucket_value(b: usize) -> u64 {
    if b < 8 {
        return b as u64;
    }
    let (e, m) = ((b - 8) / 8 + 3, ((b - 8) % 8) as u64);
    (8 + m) << (e - 3)
}

struct Stats {
    sessions: AtomicI64,
    handshakes: AtomicU64,
    connect_errors: AtomicU64,
    sent: AtomicU64,
    stored: AtomicU64,
    retried: AtomicU64,
    rejected: AtomicU64,
    hist: Vec<AtomicU64>,
}

impl Stats {
    fn new() -> Self {
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

    fn snapshot(&self) -> Snapshot {
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
struct Snapshot {
    sessions: i64,
    handshakes: u64,
    connect_errors: u64,
    sent: u64,
    stored: u64,
    retried: u64,
    rejected: u64,
    hist: Vec<u64>,
}

impl Snapshot {
    fn add(&mut self, o: &Snapshot) {
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
    fn percentile(&self, earlier: &Snapshot, p: f64) -> Option<f64> {
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

// ---- one simulated agent ----

struct Target {
    url: String,
    addr: SocketAddr,
    host: String,
    tls: Option<tokio_rustls::TlsConnector>,
}

struct Shared {
    args: AgentsArgs,
    target: Target,
    stats: Stats,
    /// Seconds between one agent's check results.
    event_every: Option<Duration>,
    sending: std::sync::atomic::AtomicBool,
    stop: std::sync::atomic::AtomicBool,
}

use ward_types::unix_now;

async fn sim_agent(
    index: usize,
    name: String,
    tls: Option<tokio_rustls::TlsConnector>,
    sh: Arc<Shared>,
) {
    let mut backoff = Duration::from_millis(500);
    while !sh.stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        match session(index, &name, tls.as_ref(), &sh).await {
            Ok(()) => return,
            Err(e) => {
                sh.stats.connect_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(agent = %name, error = %e, "session ended");
            }
        }
        if started.elapsed() > Duration::from_secs(10) {
            backoff = Duration::from_millis(500);
        }
        // Full jitter, as the agent does: reconnect storms spread out.
        let wait = backoff.mul_f64(fastrand::f64());
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(Duration::from_secs(8));
    }
}

/// Longest TLS or WebSocket handshake before the simulated agent tries again.
const HANDSHAKE: Duration = Duration::from_secs(15);

struct SessionGuard<'a>(&'a AtomicI64);
impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn session(
    index: usize,
    name: &str,
    tls: Option<&tokio_rustls::TlsConnector>,
    sh: &Shared,
) -> Result<(), String> {
    let a = &sh.args;
    let source = IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        0,
        1 + (index % a.sources.max(1) as usize) as u8,
    ));
    let sock = if sh.target.addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(|e| format!("socket: {e}"))?;
    if sh.target.addr.is_ipv4() && sh.target.addr.ip().is_loopback() {
        sock.bind(SocketAddr::new(source, 0))
            .map_err(|e| format!("bind {source}: {e}"))?;
    }
    let tcp = sock
        .connect(sh.target.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let mut req = sh
        .target
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| e.to_string())?;
    let h = req.headers_mut();
    h.insert(
        agent::HEADER_AGENT_NAME,
        name.parse().map_err(|_| "agent name")?,
    );
    h.insert(
        agent::HEADER_NAMESPACE,
        a.namespace.parse().map_err(|_| "namespace")?,
    );
    h.insert(
        agent::HEADER_SUBSCRIPTIONS,
        "bench".parse().expect("static"),
    );
    if a.certs.is_none() {
        use base64::Engine;
        let cred = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            a.user,
            a.password.as_deref().unwrap_or("")
        ));
        h.insert(
            "Authorization",
            format!("Basic {cred}").parse().map_err(|_| "credentials")?,
        );
    }
    let cfg = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(agent::MAX_FRAME))
        .max_frame_size(Some(agent::MAX_FRAME));
    match tls {
        Some(tls) => {
            let server = rustls::pki_types::ServerName::try_from(sh.target.host.clone())
                .map_err(|e| format!("server name: {e}"))?;
            let stream = tls
                .connect(server, tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            let (ws, _) = tokio_tungstenite::client_async_with_config(req, stream, Some(cfg))
                .await
                .map_err(|e| format!("WebSocket: {e}"))?;
            drive(ws, name, sh).await
        }
        None => {
            let (ws, _) = tokio::time::timeout(
                HANDSHAKE,
                tokio_tungstenite::client_async_with_config(req, tcp, Some(cfg)),
            )
            .await
            .map_err(|_| "WebSocket: timed out".to_string())?
            .map_err(|e| format!("WebSocket: {e}"))?;
            drive(ws, name, sh).await
        }
    }
}

/// One simulated check result's JSON, up to `executed`: this agent's entity and the
/// `bench` check.
fn event_head(name: &str, namespace: &str, interval: u64) -> String {
    format!(
        "{{\"entity\":{{\"metadata\":{{\"name\":{n},\"namespace\":{ns}}},\"entity_class\":\"agent\"}},\"check\":{{\"metadata\":{{\"name\":\"bench\",\"namespace\":{ns}}},\"status\":0,\"output\":\"ok\",\"interval\":{interval},\"executed\":",
        n = serde_json::Value::from(name),
        ns = serde_json::Value::from(namespace),
    )
}

/// The frame `Frame::Event` would encode for that check result, written straight from
/// `event_head`: the load tool shares the backend's cores, so its own cost is kept low.
fn event_frame(head: &str, seq: u64, now: i64) -> String {
    format!("event {seq}\n{head}{now},\"issued\":{now}}},\"timestamp\":{now}}}")
}

async fn drive<S>(
    mut ws: tokio_tungstenite::WebSocketStream<S>,
    name: &str,
    sh: &Shared,
) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    sh.stats.handshakes.fetch_add(1, Ordering::Relaxed);
    sh.stats.sessions.fetch_add(1, Ordering::Relaxed);
    let _guard = SessionGuard(&sh.stats.sessions);
    let a = &sh.args;
    let keepalive = |now: i64| {
        Frame::Keepalive(Keepalive {
            entity: AgentEntity {
                name: name.to_string(),
                namespace: a.namespace.clone(),
                subscriptions: vec!["bench".into()],
                agent_version: env!("CARGO_PKG_VERSION").into(),
                ..Default::default()
            },
            interval: a.keepalive_interval,
            warning_timeout: a.keepalive_interval.saturating_mul(6).max(5),
            critical_timeout: 0,
            timestamp: now,
        })
    };
    let send = |f: &Frame| Message::Binary(f.encode().into());
    ws.send(send(&keepalive(unix_now())))
        .await
        .map_err(|e| e.to_string())?;
    let ka_every = Duration::from_secs(a.keepalive_interval.max(1) as u64);
    let mut ka = tokio::time::interval_at(tokio::time::Instant::now() + ka_every, ka_every);
    let every = sh.event_every.unwrap_or(Duration::from_secs(3600));
    let first = tokio::time::Instant::now() + every.mul_f64(fastrand::f64());
    let mut ev = tokio::time::interval_at(first, every);
    ev.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq: u64 = 0;
    let event_head = event_head(name, &a.namespace, every.as_secs().max(1));
    let mut inflight: std::collections::VecDeque<(u64, Instant)> = Default::default();
    loop {
        if sh.stop.load(Ordering::Relaxed) {
            let _ = ws.close(None).await;
            return Ok(());
        }
        tokio::select! {
            _ = ka.tick() => {
                ws.send(send(&keepalive(unix_now()))).await.map_err(|e| e.to_string())?;
            }
            _ = ev.tick(), if sh.event_every.is_some() => {
                if !sh.sending.load(Ordering::Relaxed) || inflight.len() >= agent::MAX_IN_FLIGHT {
                    continue;
                }
                seq += 1;
                let now = unix_now();
                let frame = event_frame(&event_head, seq, now);
                inflight.push_back((seq, Instant::now()));
                sh.stats.sent.fetch_add(1, Ordering::Relaxed);
                ws.send(Message::Binary(frame.into_bytes().into())).await.map_err(|e| e.to_string())?;
            }
            msg = ws.next() => {
                let msg = match msg {
                    None => return Err("closed by the backend".into()),
                    Some(Err(e)) => return Err(e.to_string()),
                    Some(Ok(m)) => m,
                };
                let bytes = match msg {
                    Message::Binary(b) => b,
                    Message::Close(c) => return Err(format!("closed by the backend: {c:?}")),
                    _ => continue,
                };
                if let Ok(Frame::Ack { id, ack }) = Frame::decode(&bytes) {
                    let sent_at = match inflight.iter().position(|(s, _)| *s == id) {
                        Some(i) => inflight.remove(i).map(|(_, t)| t),
                        None => None,
                    };
                    match ack {
                        Ack::Stored => {
                            sh.stats.stored.fetch_add(1, Ordering::Relaxed);
                            if let Some(t) = sent_at {
                                sh.stats.hist[bucket(t.elapsed().as_micros() as u64)].fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Ack::Retry { .. } => {
                            sh.stats.retried.fetch_add(1, Ordering::Relaxed);
                        }
                        Ack::Rejected { error } => {
                            sh.stats.rejected.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(agent = %name, error = %error, "event rejected");
                        }
                    }
                }
            }
        }
    }
}

// ---- orchestration ----

/// `--duration`: Ward's durations (`30s`, `2m`, `1h30m`), or plain seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let with_unit = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        format!("{s}s")
    } else {
        s.to_string()
    };
    ward_io::parse_duration("--duration", &with_unit).map_err(|e| e.to_string())
}

fn target(a: &AgentsArgs) -> Result<Target, String> {
    let (tls, rest) = if let Some(r) = a.backend_url.strip_prefix("wss://") {
        (true, r)
    } else if let Some(r) = a.backend_url.strip_prefix("ws://") {
        (false, r)
    } else {
        return Err(format!(
            "--backend-url: {:?} must start with ws:// or wss://",
            a.backend_url
        ));
    };
    let hostport = rest.split('/').next().unwrap_or(rest);
    let addr: SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(hostport)
        .map_err(|e| format!("--backend-url: {hostport}: {e}"))?
        .next()
        .ok_or_else(|| format!("--backend-url: {hostport}: no address"))?;
    let host = match hostport.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']').to_string(),
        None => hostport.to_string(),
    };
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

fn names(a: &AgentsArgs, worker: usize, workers: usize) -> Vec<(usize, String)> {
    let width = a.count.to_string().len().max(5);
    (0..a.count)
        .filter(|i| i % workers == worker)
        .map(|i| (i, format!("{}{:0width$}", a.prefix, i + 1)))
        .collect()
}

/// Raises the soft open-file limit to the hard one; returns it.
fn raise_nofile() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut l = getrlimit(Resource::Nofile);
    if let Some(h) = l.maximum {
        l.current = Some(h);
        let _ = setrlimit(Resource::Nofile, l);
    }
    getrlimit(Resource::Nofile).current.unwrap_or(1024)
}

/// One process's agents: connects them, then sends for `duration`.
async fn run_agents(
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

fn scrape(api: &str, ca: Option<&PathBuf>) -> (Option<f64>, Option<f64>) {
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

fn agents(a: AgentsArgs) -> Result<ExitCode, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_template_is_the_frame_an_agent_sends() {
        let frame = event_frame(&event_head("web \"1\"", "default", 5), 7, 1_700_000_000);
        let expected = serde_json::json!({
            "entity": {"metadata": {"name": "web \"1\"", "namespace": "default"}, "entity_class": "agent"},
            "check": {"metadata": {"name": "bench", "namespace": "default"}, "status": 0, "output": "ok", "interval": 5, "executed": 1_700_000_000, "issued": 1_700_000_000},
            "timestamp": 1_700_000_000,
        });
        let Frame::Event { id, event } = Frame::decode(frame.as_bytes()).unwrap() else {
            panic!("not an event frame: {frame}");
        };
        assert_eq!((id, event.to_value()), (7, expected));
    }

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
