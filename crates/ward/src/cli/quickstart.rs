//! `ward quickstart`: Ward's whole job in one command. A CA and certificates in a local
//! folder (the backend's, and an agent's client certificate), a CRL for that CA, an
//! initialised state directory, a TLS backend on the embedded store whose agent port
//! requires client certificates, and an agent in the same process connected to it over
//! wss://, running the guides' `expired_certs` check. Running it again reuses what exists;
//! Ctrl-C stops both.

use clap::Args;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use ward_ctl::client::Endpoint;

#[derive(Debug, Args)]
pub struct QuickstartArgs {
    /// Where the CA, certificates, state and the agent's queue live.
    #[arg(long, default_value = "ward-quickstart")]
    dir: PathBuf,
    #[arg(long = "api-port", default_value_t = 8080)]
    api_port: u16,
    #[arg(long = "agent-port", default_value_t = 8081)]
    agent_port: u16,
    #[arg(long = "dashboard-port", default_value_t = 3000)]
    dashboard_port: u16,
    /// The local API of the quickstart's agent (on 127.0.0.1).
    #[arg(long = "agent-api-port", default_value_t = 3031)]
    agent_api_port: u16,
    /// The agent socket of the quickstart's agent (TCP and UDP, on 127.0.0.1).
    #[arg(long = "agent-socket-port", default_value_t = 3030)]
    agent_socket_port: u16,
    /// The StatsD listener of the quickstart's agent (UDP, on 127.0.0.1).
    #[arg(long = "agent-statsd-port", default_value_t = 8125)]
    agent_statsd_port: u16,
}

/// The check the quickstart publishes to prove the pipeline end to end (the guides' name).
const CHECK: &str = "expired_certs";
/// How long the quickstart's CRL is valid; it is published again at every start and every
/// `CRL_REPUBLISH` while running, so it never lapses.
const CRL_VALIDITY: Duration = Duration::from_secs(7 * 24 * 3600);
const CRL_REPUBLISH: Duration = Duration::from_secs(24 * 3600);

/// 144 random bits in hex; an error, never a password of zeroes, when the system's
/// generator fails.
fn random_password() -> Result<String, String> {
    let mut b = [0u8; 18];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| {
        "the system's random-number generator failed; no admin password was made".to_string()
    })?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// The host name when it is a valid entity name, else `quickstart-agent`.
fn agent_name() -> String {
    ward_agent::config::hostname()
        .filter(|h| ward_types::check_name("name", h).is_ok())
        .unwrap_or_else(|| "quickstart-agent".into())
}

/// `s` as one `sh` word.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=@%,".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `file://` URL of an absolute path, percent-encoding everything but unreserved bytes and
/// `/` (a comma would otherwise split the `agent-auth-crl-urls` list).
fn file_url(p: &Path) -> String {
    let mut url = String::from("file://");
    for b in p.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(b) {
            url.push(*b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

/// Issues the agent's client certificate with the existing CA when a quickstart folder
/// lacks it (the bootstrap plan issues it with everything else).
fn ensure_agent_certificate(tls: &Path) -> Result<(), String> {
    if tls.join("agent.pem").exists() && tls.join("agent-key.pem").exists() {
        return Ok(());
    }
    let ca = ward_pki::CertificateAuthority::load_dir(tls).map_err(|e| e.to_string())?;
    let mut profile = ward_pki::SigningProfile::builtin("client").expect("built-in profile");
    profile.expiry = Duration::from_secs(4320 * 3600);
    let out = ca
        .issue(ward_pki::LeafRequest {
            subject: ward_pki::Subject::with_cn("agent"),
            hosts: Vec::new(),
            key: ward_pki::KeySource::Generate(ward_pki::KeyAlgorithm::default()),
            key_encoding: ward_pki::KeyEncoding::Traditional,
            profile,
            clamp: true,
        })
        .map_err(|e| e.to_string())?;
    let files = ward_pki::bare::bare_files(
        &tls.join("agent"),
        Some(&out.cert_pem),
        out.key_pem.as_deref(),
        Some(&out.csr_pem),
    );
    ward_io::files::write_all(&files, ward_io::files::Overwrite::Allow)
        .map_err(|e| e.to_string())?;
    outln!(
        "issued the agent's client certificate {}",
        tls.join("agent.pem").display()
    );
    Ok(())
}

/// Signs a fresh CRL of the quickstart CA into `tls/crl.pem`; returns its number.
fn publish_crl(tls: &Path) -> Result<u64, String> {
    let (pem, number) =
        ward_pki::revocation::build_crl(tls, CRL_VALIDITY).map_err(|e| e.to_string())?;
    ward_io::files::write_one(
        &ward_io::files::PlannedFile::public(tls.join("crl.pem"), pem),
        ward_io::files::Overwrite::Allow,
    )
    .map_err(|e| e.to_string())?;
    Ok(number)
}

/// The agent's shutdown: a signal, or the backend having stopped.
async fn agent_shutdown(mut stop: tokio::sync::watch::Receiver<bool>) {
    tokio::select! {
        _ = ward_backend::shutdown_signal() => {}
        _ = async { let _ = stop.wait_for(|s| *s).await; } => {}
    }
}

type Joined<T> = Result<Result<T, String>, tokio::task::JoinError>;

fn joined(r: Joined<()>, what: &str) -> Result<(), String> {
    match r {
        Ok(r) => r,
        Err(e) => Err(format!("the {what} stopped unexpectedly: {e}")),
    }
}

/// Polls `GET path` until it answers 200, for at most `limit`.
async fn until_ok(ep: &Endpoint, path: &str, limit: Duration) -> bool {
    let start = Instant::now();
    loop {
        if let Ok(r) = ep.request("GET", path, &[], None).await {
            if r.status == 200 {
                return true;
            }
        }
        if start.elapsed() >= limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What `prove` found.
struct Proof {
    created: bool,
    agent_connected: bool,
}

/// Creates the published `expired_certs` check (once: an existing one is left as it is) and
/// makes sure it runs now on the agent (executed ad hoc: its scheduled runs come at its
/// name's phase in the minute, as Sensu's, which may be up to 60 s away).
async fn prove(
    api: &Endpoint,
    agent_api: &Endpoint,
    password: &str,
    command: &str,
) -> Result<Proof, String> {
    let tokens = api
        .login("admin", password)
        .await
        .map_err(|e| format!("cannot log in as admin: {e}"))?;
    let token = tokens["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let auth = [("authorization", format!("Bearer {token}"))];
    let agent_connected = until_ok(agent_api, "/healthz", Duration::from_secs(15)).await;
    let check = json!({
        "type": "CheckConfig",
        "api_version": "core/v2",
        "metadata": {"name": CHECK, "namespace": "default"},
        "spec": {
            "command": command,
            "subscriptions": ["system"],
            "interval": 60,
            "publish": true,
        },
    });
    let r = api
        .request(
            "POST",
            "/api/core/v2/namespaces/default/checks",
            &auth,
            Some(check.to_string().into_bytes()),
        )
        .await?;
    let created = match r.status {
        201 => true,
        409 => false,
        s => {
            return Err(format!(
                "cannot create the check {CHECK}: {} ({s})",
                r.message()
            ))
        }
    };
    if agent_connected {
        let path = format!("/api/core/v2/namespaces/default/checks/{CHECK}/execute");
        let start = Instant::now();
        loop {
            let r = api.request("POST", &path, &auth, None).await?;
            if r.status != 202 {
                return Err(format!(
                    "cannot run the check {CHECK}: {} ({})",
                    r.message(),
                    r.status
                ));
            }
            if r.json()["agents"].as_u64().unwrap_or(0) > 0
                || start.elapsed() > Duration::from_secs(5)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(Proof {
        created,
        agent_connected,
    })
}

pub fn run(a: QuickstartArgs) -> Result<ExitCode, String> {
    let tls = a.dir.join("tls");
    if !tls.join("ca.pem").exists() {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let mut hosts = vec!["127.0.0.1".to_string(), "::1".to_string()];
        if !host.is_empty() && ward_pki::SubjectName::parse(&host).is_ok() {
            hosts.push(host);
        }
        let plan = format!("ca: {{cn: Ward Quickstart CA}}\nbackends:\n  - name: localhost\n    hosts: [{}]\nagents:\n  - name: agent\n", hosts.join(", "));
        let plan = ward_pki::bootstrap::Plan::from_yaml("quickstart plan", &plan)
            .map_err(|e| e.to_string())?;
        ward_pki::bootstrap::bootstrap(&plan, &tls, ward_io::files::Overwrite::Refuse, &|_, _| {})
            .map_err(|e| e.to_string())?;
        outln!(
            "created a CA and certificates (the backend's, and the agent's client certificate) in {}",
            tls.display()
        );
    } else {
        outln!("reusing the CA and certificates in {}", tls.display());
        ensure_agent_certificate(&tls)?;
    }
    // Absolute paths for what is read later (CRL URL, the check's command line).
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let tls_abs = abs(&tls);
    let crl = tls_abs.join("crl.pem");
    let number = publish_crl(&tls_abs)?;
    outln!(
        "published CRL #{number} of the quickstart CA to {} (valid 7 days; published again at every start and daily)",
        tls.join("crl.pem").display()
    );
    let state = a.dir.join("state");
    // The backend quickstart runs holds its state directory as `ward backend start` does,
    // so a second quickstart (or a backend) on the same directory fails at once.
    let _state_lock = super::backend::lock_state_dir(&state, true)?;
    let password_file = a.dir.join("admin-password");
    if !state.join("ward.db").exists() {
        let password = random_password()?;
        ward_backend::init(&state, "admin", &password, None)?;
        ward_io::files::write_one(
            &ward_io::files::PlannedFile::key(&password_file, password + "\n"),
            ward_io::files::Overwrite::Allow,
        )
        .map_err(|e| e.to_string())?;
        outln!(
            "initialised {} with the user admin (password in {}, mode 0600)",
            state.display(),
            password_file.display()
        );
    } else {
        outln!("reusing {}", state.display());
    }
    let password = std::fs::read_to_string(&password_file)
        .map(|p| p.trim().to_string())
        .map_err(|e| {
            format!(
                "{}: cannot read: {e}; it holds the admin's password (to start over, remove {})",
                password_file.display(),
                state.display()
            )
        })?;
    let file = |name: &str| tls_abs.join(name).display().to_string();
    let mut flags = std::collections::BTreeMap::new();
    flags.insert("state-dir".to_string(), state.display().to_string());
    flags.insert(
        "api-listen-address".to_string(),
        format!("127.0.0.1:{}", a.api_port),
    );
    flags.insert("agent-host".to_string(), "127.0.0.1".to_string());
    flags.insert("agent-port".to_string(), a.agent_port.to_string());
    flags.insert("dashboard-host".to_string(), "127.0.0.1".to_string());
    flags.insert("dashboard-port".to_string(), a.dashboard_port.to_string());
    flags.insert("cert-file".to_string(), file("localhost.pem"));
    flags.insert("key-file".to_string(), file("localhost-key.pem"));
    flags.insert("trusted-ca-file".to_string(), file("ca.pem"));
    flags.insert("agent-auth-cert-file".to_string(), file("localhost.pem"));
    flags.insert("agent-auth-key-file".to_string(), file("localhost-key.pem"));
    flags.insert("agent-auth-trusted-ca-file".to_string(), file("ca.pem"));
    flags.insert("agent-auth-crl-urls".to_string(), file_url(&crl));
    let cfg = ward_backend::config::resolve(None, &|_| None, &flags).map_err(|e| e.to_string())?;

    let name = agent_name();
    let agent_flags: Vec<(String, String)> = [
        ("backend-url", format!("wss://localhost:{}", a.agent_port)),
        ("name", name.clone()),
        ("subscriptions", "system".into()),
        ("trusted-ca-file", file("ca.pem")),
        ("cert-file", file("agent.pem")),
        ("key-file", file("agent-key.pem")),
        ("cache-dir", abs(&a.dir.join("agent")).display().to_string()),
        ("api-host", "127.0.0.1".into()),
        ("api-port", a.agent_api_port.to_string()),
        ("socket-port", a.agent_socket_port.to_string()),
        ("statsd-metrics-port", a.agent_statsd_port.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let agent_cfg = ward_agent::AgentConfig::resolve(None, &|_| None, &agent_flags)
        .map_err(|e| e.to_string())?;
    // The agent binds its API only once the backend runs: say now, in the quickstart's
    // words, when that port is taken.
    for (flag, port) in [
        ("--agent-api-port", a.agent_api_port),
        ("--agent-socket-port", a.agent_socket_port),
    ] {
        std::net::TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
            format!(
                "{flag} {port}: cannot listen on 127.0.0.1:{port}: {e}; choose another with {flag}"
            )
        })?;
    }
    std::net::UdpSocket::bind(("127.0.0.1", a.agent_statsd_port)).map_err(|e| {
        format!(
            "--agent-statsd-port {0}: cannot listen on UDP 127.0.0.1:{0}: {e}; choose another with --agent-statsd-port",
            a.agent_statsd_port
        )
    })?;

    let exe_abs = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "ward".into());
    let command = format!(
        "{} pki check-expiry {}",
        shell_word(&exe_abs),
        shell_word(&file("localhost.pem"))
    );
    let ward = std::env::current_exe()
        .ok()
        .map(|p| {
            let cwd = std::env::current_dir().unwrap_or_default();
            p.strip_prefix(&cwd)
                .map(|r| r.display().to_string())
                .unwrap_or_else(|_| p.display().to_string())
        })
        .unwrap_or_else(|| "ward".into());
    let ca = tls.join("ca.pem");

    let filter =
        tracing_subscriber::EnvFilter::new("warn,ward_backend=info,ward_tls=info,ward_agent=info");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let api = Endpoint {
        url: format!("https://localhost:{}", a.api_port),
        trust: Some(ward_tls::Trust::CaFile(tls_abs.join("ca.pem"))),
    };
    let agent_api = Endpoint {
        url: format!("http://127.0.0.1:{}", a.agent_api_port),
        trust: None,
    };
    let result = rt.block_on(async {
        let mut backend = tokio::spawn(ward_backend::start(cfg));
        tokio::select! {
            r = &mut backend => return joined(r, "backend"),
            ready = until_ok(&api, "/ready", Duration::from_secs(60)) => {
                if !ready {
                    return Err(format!("the backend did not become ready on {}", api.url));
                }
            }
        }
        let crl_dir = tls_abs.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(CRL_REPUBLISH);
            every.tick().await;
            loop {
                every.tick().await;
                let dir = crl_dir.clone();
                match tokio::task::spawn_blocking(move || publish_crl(&dir)).await {
                    Ok(Ok(n)) => tracing::info!(number = n, "published the quickstart CRL again"),
                    Ok(Err(e)) => tracing::error!(error = %e, "cannot publish the quickstart CRL"),
                    Err(_) => {}
                }
            }
        });
        outln!("{}", agent_cfg.summary());
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut agent = tokio::spawn(ward_agent::run(agent_cfg, agent_shutdown(stop_rx)));
        let proof = tokio::select! {
            r = &mut backend => {
                let _ = stop_tx.send(true);
                let _ = agent.await;
                return joined(r, "backend");
            }
            r = &mut agent => {
                joined(r, "agent").map_err(|e| format!("the agent: {e}"))?;
                // Stopped by a signal during start-up: the backend got it too.
                return joined(backend.await, "backend");
            }
            p = prove(&api, &agent_api, &password, &command) => p?,
        };
        let look = format!(
            "  {ward} ctl configure -n --url https://localhost:{} --username admin --password \"$(cat {})\" --trusted-ca-file {}\n  {ward} ctl event list\n  {ward} ctl entity list\n  curl --cacert {} https://localhost:{}/health\n  dashboard: https://localhost:{}/",
            a.api_port,
            password_file.display(),
            ca.display(),
            ca.display(),
            a.api_port,
            a.dashboard_port
        );
        outln!(
            "\nrunning:\n  backend  https://localhost:{} (API), wss://localhost:{} (agents, client certificates checked against {} and the CRL {})\n  agent    {name}: wss://localhost:{} with the client certificate {}, subscriptions [system], local API http://127.0.0.1:{}\n  check    {CHECK} ({}): `{ward} pki check-expiry {}` every 60 s on [system]\n\nlook with:\n{look}\n\n{}\nCtrl-C stops both.\n",
            a.api_port,
            a.agent_port,
            ca.display(),
            tls.join("crl.pem").display(),
            a.agent_port,
            tls.join("agent.pem").display(),
            a.agent_api_port,
            if proof.created { "created" } else { "already there, left as it is" },
            tls.join("localhost.pem").display(),
            if proof.agent_connected {
                format!("`ward ctl event list` shows {name}'s keepalive and {CHECK} events within seconds.")
            } else {
                format!("the agent {name} has not connected yet: its log lines on stderr say why.")
            }
        );
        let mut agent_done = false;
        let r = tokio::select! {
            r = &mut backend => joined(r, "backend"),
            r = &mut agent => {
                agent_done = true;
                match joined(r, "agent") {
                    Ok(()) => joined(backend.await, "backend"),
                    Err(e) => Err(e),
                }
            }
        };
        let _ = stop_tx.send(true);
        if !agent_done {
            joined(agent.await, "agent")?;
        }
        r
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    result?;
    outln!("stopped");
    Ok(ExitCode::SUCCESS)
}
