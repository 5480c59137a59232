//! The listeners through real `ward backend` and `ward agent` processes: slow and
//! half-open connections are closed by the timeouts while /health keeps answering,
//! refused agents are told why, served certificates are checked at start and reloaded
//! when their content changes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ward_testkit::agent::{mtls_backend, revoke, wait_for, Agent};
use ward_testkit::backend::Backend;
use ward_testkit::{free_port, ward, ward_bin, TempDir};

/// A client config trusting `ca`, speaking HTTP/1.1.
fn client(ca: &Path) -> Arc<rustls::ClientConfig> {
    let mut c = ward_tls::client_config(&ward_tls::Trust::CaFile(ca.to_path_buf())).unwrap();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(c)
}

/// GET /health over a new TLS connection: (status line ok, milliseconds).
fn health(cfg: &Arc<rustls::ClientConfig>, port: u16) -> (bool, f64) {
    let start = Instant::now();
    let Ok(tcp) = TcpStream::connect(("127.0.0.1", port)) else {
        return (false, 0.0);
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let conn = rustls::ClientConnection::new(cfg.clone(), "localhost".try_into().unwrap()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    if tls
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return (false, 0.0);
    }
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    (
        out.starts_with(b"HTTP/1.1 200"),
        start.elapsed().as_secs_f64() * 1000.0,
    )
}

/// The leaf certificate `port` serves.
fn served_cert(cfg: &Arc<rustls::ClientConfig>, port: u16) -> Vec<u8> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut conn =
        rustls::ClientConnection::new(cfg.clone(), "localhost".try_into().unwrap()).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).unwrap();
    }
    conn.peer_certificates().unwrap()[0].to_vec()
}

/// Waits until the peer closes `s` (EOF or reset), for at most until `deadline`.
fn closed_by_peer(s: &mut TcpStream, deadline: Instant) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let _ = s.set_read_timeout(Some(left));
        match s.read(&mut buf) {
            Ok(0) => return true,
            // Session tickets after a completed handshake: keep reading.
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn raise_open_files() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut l = getrlimit(Resource::Nofile);
    if let Some(hard) = l.maximum {
        l.current = Some(hard);
        let _ = setrlimit(Resource::Nofile, l);
    }
}

#[test]
fn half_open_and_silent_connections_are_closed_and_health_keeps_answering() {
    raise_open_files();
    let b = Backend::start_with(
        true,
        &[
            "--tls-handshake-timeout",
            "1s",
            "--http-header-timeout",
            "1s",
        ],
    );
    let cfg = client(&b.ca().unwrap());
    let port = b.api_port;
    assert!(health(&cfg, port).0, "/health answers at first");

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prober = {
        let (cfg, stop) = (cfg.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                samples.push(health(&cfg, port));
                std::thread::sleep(Duration::from_millis(20));
            }
            samples
        })
    };

    // 1,500 connections that send 3 bytes of a TLS record and then nothing, and 500 that
    // finish the handshake and never send a request.
    let half_open: Vec<TcpStream> = (0..1500)
        .map(|i| {
            let mut s = TcpStream::connect(("127.0.0.1", port))
                .unwrap_or_else(|e| panic!("connection {i}: {e}"));
            s.write_all(&[0x16, 0x03, 0x01]).unwrap();
            s
        })
        .collect();
    let silent: Vec<TcpStream> = (0..500)
        .map(|i| {
            let mut tcp = TcpStream::connect(("127.0.0.1", port))
                .unwrap_or_else(|e| panic!("connection {i}: {e}"));
            let mut conn =
                rustls::ClientConnection::new(cfg.clone(), "localhost".try_into().unwrap())
                    .unwrap();
            while conn.is_handshaking() {
                conn.complete_io(&mut tcp)
                    .unwrap_or_else(|e| panic!("handshake {i}: {e}"));
            }
            tcp
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut open = 0;
    for mut s in half_open.into_iter().chain(silent) {
        if !closed_by_peer(&mut s, deadline) {
            open += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let samples = prober.join().unwrap();
    assert_eq!(
        open, 0,
        "connections still open 30 s after the last was made (the timeouts are 1 s)"
    );

    let failed = samples.iter().filter(|(ok, _)| !ok).count();
    let mut ms: Vec<f64> = samples.iter().map(|(_, t)| *t).collect();
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p = |q: f64| ms[((ms.len() - 1) as f64 * q) as usize];
    eprintln!(
        "/health during 2,000 slow connections: {} samples, {failed} failed, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms.len(),
        p(0.5),
        p(0.99),
        p(1.0)
    );
    assert_eq!(failed, 0, "/health failed {failed} times");
    assert!(p(0.99) < 500.0, "/health p99 {:.1} ms", p(0.99));

    let log = b.log();
    assert!(log.len() < 1 << 20, "the log grew to {} bytes", log.len());
    assert!(
        log.contains("did not finish within"),
        "the timeouts are logged: {}",
        &log[log.len().saturating_sub(2000)..]
    );
    assert!(health(&cfg, port).0, "/health answers afterwards");
}

/// GET /health over plain HTTP: whether it answered 200 within 5 s.
fn plain_health(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out.starts_with(b"HTTP/1.1 200")
}

#[test]
fn out_of_file_descriptors_the_accept_loop_backs_off_and_recovers() {
    raise_open_files();
    let dir = TempDir::new();
    init_state(&dir);
    let port = free_port();
    let log = dir.join("backend.log");
    // A hard open-file limit of 128, which the backend cannot raise, and no connection cap
    // below it: accepting fails with EMFILE long before 400 connections.
    let mut child = std::process::Command::new("sh")
        .args(["-c", "ulimit -n 128 && exec \"$0\" \"$@\""])
        .arg(ward_bin())
        .args(["backend", "start", "--state-dir"])
        .arg(dir.join("state"))
        .args([
            "--api-listen-address",
            &format!("127.0.0.1:{port}"),
            "--agent-host",
            "127.0.0.1",
            "--agent-port",
            &free_port().to_string(),
            "--dashboard-host",
            "127.0.0.1",
            "--dashboard-port",
            &free_port().to_string(),
            "--http-header-timeout",
            "1s",
            "--max-connections",
            "10000",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    ward_testkit::wait_listening(&mut child, port, "ward backend", &log);
    let conns: Vec<TcpStream> = (0..400)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let grown = text.len();
    let backoffs = text.matches("retrying in").count();
    eprintln!(
        "out of file descriptors for 3 s: the log grew {grown} bytes, {backoffs} backoff lines"
    );
    drop(conns);
    let recovered = wait_for_health(port);
    let _ = child.kill();
    let _ = child.wait();
    assert!(recovered, "/health answers once the connections are gone");
    assert!(
        text.contains("Too many open files") && backoffs >= 1,
        "the accept loop ran out of file descriptors and said so: {}",
        &text[text.len().saturating_sub(2000)..]
    );
    assert!(
        grown < 100_000 && backoffs < 20,
        "the log grew to {grown} bytes ({backoffs} backoff lines) in 3 s"
    );
}

/// Polls /health for up to 20 s.
fn wait_for_health(port: u16) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if plain_health(port) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn the_connection_cap_holds_new_connections_until_one_closes() {
    let b = Backend::start_with(
        false,
        &["--max-connections", "3", "--http-header-timeout", "1s"],
    );
    assert!(plain_health(b.api_port));
    // Three connections that send nothing hold the three permits for a second.
    let idle: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", b.api_port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    assert!(plain_health(b.api_port), "answered once a permit was free");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "a fourth connection was served at once ({waited:?}), over the cap of 3"
    );
    assert!(
        b.log().contains("the cap (max-connections)"),
        "the cap is logged: {}",
        b.log()
    );
    drop(idle);
}

#[test]
fn refused_agents_are_told_why_in_plain_words() {
    let b = mtls_backend(&["stolen"], &[]);
    let tls = b.tls.clone().unwrap();
    let other = TempDir::new();
    let other_tls = ward_testkit::pki::bootstrap(
        other.path(),
        "ca: {cn: Other CA}\nagents:\n  - name: stranger\n",
    );
    revoke(&tls, "stolen");
    std::thread::sleep(Duration::from_millis(1100));
    let stolen = Agent::start("stolen", &Agent::mtls_yaml(&b, "stolen"));
    let stranger = Agent::start(
        "stranger",
        &format!(
            "backend-url: [wss://localhost:{}]\ntrusted-ca-file: {}\ncert-file: {}\nkey-file: {}\n",
            b.agent_port,
            tls.join("ca.pem").display(),
            other_tls.join("stranger.pem").display(),
            other_tls.join("stranger-key.pem").display()
        ),
    );
    let line = wait_for(30, "the revoked agent's log line", || {
        stolen
            .log()
            .lines()
            .find(|l| l.contains("refused this agent's certificate"))
            .map(str::to_string)
    });
    eprintln!("revoked agent: {line}");
    assert!(
        line.contains("revoked") && line.contains("keyCompromise") && line.contains("CN=stolen"),
        "{line}"
    );
    let line = wait_for(30, "the unknown-CA agent's log line", || {
        stranger
            .log()
            .lines()
            .find(|l| l.contains("refused the agent's certificate"))
            .map(str::to_string)
    });
    eprintln!("unknown-CA agent: {line}");
    assert!(line.contains("not signed by a CA it trusts"), "{line}");
}

/// `ward backend init` into `dir/state`.
fn init_state(dir: &TempDir) {
    ward()
        .args(["backend", "init", "--state-dir"])
        .arg(dir.join("state"))
        .args([
            "--cluster-admin-username",
            "admin",
            "--cluster-admin-password",
            "correct horse battery",
        ])
        .run()
        .ok();
}

/// `ward backend start` with `args`, expected to exit within 10 s: (status, stderr).
fn start_fails(dir: &TempDir, args: &[&std::ffi::OsStr]) -> (Option<i32>, String, Duration) {
    init_state(dir);
    let log = dir.join("start.log");
    let start = Instant::now();
    let mut child = std::process::Command::new(ward_bin())
        .args(["backend", "start", "--state-dir"])
        .arg(dir.join("state"))
        .args([
            "--api-listen-address",
            &format!("127.0.0.1:{}", free_port()),
            "--agent-host",
            "127.0.0.1",
            "--agent-port",
            &free_port().to_string(),
            "--dashboard-host",
            "127.0.0.1",
            "--dashboard-port",
            &free_port().to_string(),
        ])
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return (
                st.code(),
                std::fs::read_to_string(&log).unwrap_or_default(),
                start.elapsed(),
            );
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            return (
                None,
                std::fs::read_to_string(&log).unwrap_or_default(),
                start.elapsed(),
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_expired_serving_certificate_stops_the_start_unless_allowed() {
    let dir = TempDir::new();
    let tls = ward_testkit::pki::bootstrap(
        dir.path(),
        "ca: {cn: Test CA}\nbackends:\n  - name: localhost\n    hosts: [127.0.0.1]\n",
    );
    ward()
        .args([
            "pki",
            "issue",
            "--profile",
            "server",
            "--cn",
            "old",
            "--hosts",
            "localhost",
            "--expiry",
            "1s",
            "--ca-dir",
        ])
        .arg(&tls)
        .arg("--dir")
        .arg(&tls)
        .run()
        .ok();
    std::thread::sleep(Duration::from_millis(2100));
    let cert = tls.join("old.pem");
    let key = tls.join("old-key.pem");
    let args = [
        "--cert-file".as_ref(),
        cert.as_os_str(),
        "--key-file".as_ref(),
        key.as_os_str(),
    ];
    let (code, log, _) = start_fails(&dir, &args);
    assert!(code.is_some_and(|c| c != 0), "refused: {code:?} {log}");
    let line = log
        .lines()
        .find(|l| l.contains("expired on"))
        .unwrap_or_else(|| panic!("one line naming the date: {log}"));
    assert!(
        line.contains("cert-file")
            && line.contains("old.pem")
            && line.contains("allow-expired-certificate"),
        "{line}"
    );

    // Allowed: it starts (and is still running after the check), with a warning.
    let dir2 = TempDir::new();
    let mut allowed: Vec<&std::ffi::OsStr> = args.to_vec();
    allowed.push(std::ffi::OsStr::new("--allow-expired-certificate"));
    allowed.push(std::ffi::OsStr::new("true"));
    let (code, log, took) = start_fails(&dir2, &allowed);
    assert_eq!(code, None, "still running after {took:?}: {log}");
    assert!(log.contains("expired on"), "warned: {log}");
}

#[test]
fn an_agent_with_an_expired_certificate_stops_at_start() {
    let b = mtls_backend(&["other"], &[]);
    let tls = b.tls.clone().unwrap();
    ward()
        .args([
            "pki",
            "issue",
            "--profile",
            "client",
            "--cn",
            "lapsed",
            "--expiry",
            "1s",
            "--ca-dir",
        ])
        .arg(&tls)
        .arg("--dir")
        .arg(&tls)
        .run()
        .ok();
    std::thread::sleep(Duration::from_millis(2100));
    let dir = TempDir::new();
    let config = dir.join("agent.yml");
    std::fs::write(
        &config,
        format!(
            "name: lapsed\ncache-dir: {}\napi-host: 127.0.0.1\napi-port: {}\nsocket-port: {}\nstatsd-disable: true\n{}",
            dir.join("cache").display(),
            free_port(),
            free_port(),
            Agent::mtls_yaml(&b, "lapsed")
        ),
    )
    .unwrap();
    let out = ward()
        .args(["agent", "start", "--config-file"])
        .arg(&config)
        .run();
    assert!(!out.success(), "refused: {}", out.stderr);
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("expired on"))
        .unwrap_or_else(|| panic!("one line naming the date: {}", out.stderr));
    assert!(
        line.contains("cert-file") && line.contains("lapsed.pem"),
        "{line}"
    );
}

#[test]
fn an_expired_client_certificate_is_refused_by_the_backend() {
    let b = mtls_backend(&["other"], &[]);
    let tls = b.tls.clone().unwrap();
    ward()
        .args([
            "pki",
            "issue",
            "--profile",
            "client",
            "--cn",
            "shortlived",
            "--expiry",
            "1s",
            "--ca-dir",
        ])
        .arg(&tls)
        .arg("--dir")
        .arg(&tls)
        .run()
        .ok();
    std::thread::sleep(Duration::from_millis(2100));
    // `ward agent` refuses to start with it, so curl presents it.
    let out = ward_testkit::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--cacert"])
        .arg(tls.join("ca.pem"))
        .arg("--cert")
        .arg(tls.join("shortlived.pem"))
        .arg("--key")
        .arg(tls.join("shortlived-key.pem"))
        .arg(format!("https://localhost:{}/", b.agent_port))
        .run();
    assert!(!out.success(), "refused");
    let line = wait_for(20, "the refusal", || {
        b.log()
            .lines()
            .find(|l| l.contains("agent refused") && l.contains("\"reason\":\"expired\""))
            .map(str::to_string)
    });
    assert!(
        line.contains("CN=shortlived") && line.contains("expired on"),
        "{line}"
    );
}

#[test]
fn dev_zero_as_cert_file_is_refused_at_once() {
    let dir = TempDir::new();
    let tls = ward_testkit::pki::bootstrap(
        dir.path(),
        "ca: {cn: Test CA}\nbackends:\n  - name: localhost\n    hosts: [127.0.0.1]\n",
    );
    let key = tls.join("localhost-key.pem");
    let (code, log, took) = start_fails(
        &dir,
        &[
            "--cert-file".as_ref(),
            "/dev/zero".as_ref(),
            "--key-file".as_ref(),
            key.as_os_str(),
        ],
    );
    eprintln!("/dev/zero as cert-file refused in {took:?}");
    assert!(code.is_some_and(|c| c != 0), "refused: {code:?} {log}");
    // The configuration's file check (before any listener is built) names the key, the
    // file and the cap.
    assert!(
        log.contains("cert-file (from --cert-file): /dev/zero: larger than"),
        "{log}"
    );
}

/// A new certificate and key for localhost from the CA in `tls`, in a new directory.
fn issue_localhost(tls: &std::path::Path, extra: &[&str]) -> TempDir {
    let fresh = TempDir::new();
    ward()
        .args([
            "pki",
            "issue",
            "--profile",
            "server",
            "--cn",
            "localhost",
            "--hosts",
            "localhost,127.0.0.1",
        ])
        .args(extra.to_vec())
        .arg("--ca-dir")
        .arg(tls)
        .arg("--dir")
        .arg(fresh.path())
        .run()
        .ok();
    fresh
}

#[test]
fn a_certificate_replaced_with_the_same_mtime_is_reloaded() {
    let b = Backend::start(true);
    let tls = b.tls.clone().unwrap();
    let cfg = client(&b.ca().unwrap());
    let before = served_cert(&cfg, b.api_port);
    // A new certificate and key for the same names, written over the served files in
    // place (same inode) with the old modification times put back.
    let fresh = issue_localhost(&tls, &[]);
    for (from, to) in [
        (fresh.join("localhost.pem"), tls.join("localhost.pem")),
        (
            fresh.join("localhost-key.pem"),
            tls.join("localhost-key.pem"),
        ),
    ] {
        let mtime = std::fs::metadata(&to).unwrap().modified().unwrap();
        let bytes = std::fs::read(&from).unwrap();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&to)
            .unwrap();
        (&f).write_all(&bytes).unwrap();
        f.set_modified(mtime).unwrap();
    }
    let after = wait_for(10, "the new certificate served", || {
        std::thread::sleep(Duration::from_millis(500));
        let now = served_cert(&cfg, b.api_port);
        (now != before).then_some(now)
    });
    assert_eq!(
        after,
        std::fs::read(fresh.join("localhost.pem"))
            .ok()
            .and_then(|pem| {
                use rustls::pki_types::pem::PemObject;
                rustls::pki_types::CertificateDer::from_pem_slice(&pem)
                    .ok()
                    .map(|c| c.to_vec())
            })
            .unwrap()
    );
}

#[test]
fn a_certificate_replaced_with_an_expired_one_is_refused_and_the_old_one_kept() {
    let b = Backend::start(true);
    let tls = b.tls.clone().unwrap();
    let cfg = client(&b.ca().unwrap());
    let before = served_cert(&cfg, b.api_port);
    let fresh = issue_localhost(&tls, &["--expiry", "1s"]);
    std::thread::sleep(Duration::from_millis(2100));
    for name in ["localhost.pem", "localhost-key.pem"] {
        std::fs::copy(fresh.join(name), tls.join(name)).unwrap();
    }
    // Reloads are looked for at most once a second, on a handshake.
    let line = wait_for(10, "the refusal logged", || {
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(served_cert(&cfg, b.api_port), before, "the old one is kept");
        b.log()
            .lines()
            .find(|l| l.contains("refused the new TLS certificate"))
            .map(str::to_string)
    });
    assert!(
        line.contains("expired on") && line.contains("ward pki renew"),
        "{line}"
    );
    assert_eq!(served_cert(&cfg, b.api_port), before);
}
