//! Ward's backend: configuration, the HTTP API with authentication and authorisation,
//! /health, and TLS listeners over the embedded store.

#![forbid(unsafe_code)]

pub mod agentd;
pub mod api;
pub mod auth;
pub mod config;
pub mod current;
pub mod eventd;
pub mod pipeline;
pub mod rbac;
pub mod server;
pub mod silences;

use api::{AppState, Metrics};
use config::BackendConfig;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use ward_store::{Store, User};
use ward_types::{Document, Metadata, Resource};

/// `ward backend init`: the state directory, the first admin, the `agent` user (unusable
/// until it has a password), and the default namespace. Refuses to run twice.
pub fn init(
    state_dir: &Path,
    admin: &str,
    admin_password: &str,
    agent_password: Option<&str>,
) -> Result<(), String> {
    if state_dir.join("ward.db").exists() {
        return Err(format!(
            "{}: already initialised (ward.db exists); to start over, remove it",
            state_dir.display()
        ));
    }
    ward_types::check_name("--cluster-admin-username", admin).map_err(|e| e.to_string())?;
    let admin_hash = auth::hash_password(admin_password)
        .map_err(|e| format!("--cluster-admin-password: {e}"))?;
    let agent_hash = agent_password
        .map(auth::hash_password)
        .transpose()
        .map_err(|e| format!("--agent-password: {e}"))?;
    std::fs::create_dir_all(state_dir)
        .map_err(|e| format!("{}: cannot create: {e}", state_dir.display()))?;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(0o700));
    let store = Store::open(state_dir).map_err(|e| e.to_string())?;
    store.ids().map_err(|e| e.to_string())?;
    store
        .create_user(&User {
            name: admin.into(),
            password_hash: Some(admin_hash),
            groups: vec![auth::ADMIN_GROUP.into()],
            disabled: false,
        })
        .map_err(|e| e.to_string())?;
    store
        .create_user(&User {
            name: "agent".into(),
            password_hash: agent_hash,
            groups: vec![auth::AGENT_GROUP.into()],
            disabled: false,
        })
        .map_err(|e| e.to_string())?;
    let ns = Resource::from_document(Document {
        type_name: "Namespace".into(),
        api_version: "core/v2".into(),
        metadata: Metadata {
            name: "default".into(),
            created_by: Some(admin.into()),
            ..Default::default()
        },
        spec: serde_json::Value::Null,
    })
    .map_err(|e| e.to_string())?;
    store.put(&ns, true).map_err(|e| e.to_string())?;
    Ok(())
}

/// `ward backend start`: serves until Ctrl-C / SIGTERM.
pub async fn start(cfg: BackendConfig) -> Result<(), String> {
    if !cfg.state_dir.join("ward.db").exists() {
        return Err(format!("{}: not initialised; run `ward backend init --state-dir {} --cluster-admin-username … --cluster-admin-password …` first", cfg.state_dir.display(), cfg.state_dir.display()));
    }
    let store = Store::open(&cfg.state_dir).map_err(|e| e.to_string())?;
    let (cluster_id, member_id) = store.ids().map_err(|e| e.to_string())?;
    let files = raise_open_files();
    tracing::info!(
        open_files = files,
        "open-file limit (one per agent session, plus the store's and listeners')"
    );
    let limits = server::Limits::new(
        cfg.tls_handshake_timeout,
        cfg.http_header_timeout,
        cfg.max_connections,
        files,
    );
    // A certificate out of its validity would fail every client's handshake: stop here.
    for (key, file) in [
        ("cert-file", &cfg.cert_file),
        ("dashboard-cert-file", &cfg.dashboard_cert_file),
        ("agent-auth-cert-file", &cfg.agent_auth_cert_file),
    ] {
        if let Some(f) = file {
            ward_tls::check_validity(
                key,
                f,
                Some(("allow-expired-certificate", cfg.allow_expired_certificate)),
            )?;
        }
    }
    let tls = match (&cfg.cert_file, &cfg.key_file) {
        (Some(c), Some(k)) => Some(
            ward_tls::ServerTls::new(c, k, cfg.allow_expired_certificate)
                .map_err(|e| format!("cert-file/key-file: {e}"))?,
        ),
        _ => None,
    };
    let mut certificates: Vec<_> = [
        &cfg.cert_file,
        &cfg.trusted_ca_file,
        &cfg.dashboard_cert_file,
        &cfg.agent_auth_cert_file,
        &cfg.agent_auth_trusted_ca_file,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    // Several settings may name one file: each file once.
    certificates.sort();
    certificates.dedup();
    let metrics = Arc::new(Metrics::default());
    // The RBAC roles and bindings (seeded once, on a new store).
    let policy = rbac::load(&store).map_err(|e| format!("RBAC: {e}"))?;
    let silenced = silences::Silences::load(&store).map_err(|e| format!("silences: {e}"))?;
    let store = Arc::new(store);
    let events = eventd::EventRouter::new(store.clone(), member_id, metrics.clone());
    // A PostgresConfig kept from before is the event store again (its DSN resolved with
    // this start's environment: the env file's PG* variables).
    let (configs, _) = store
        .list(ward_types::Kind::PostgresConfig, None, 1, None)
        .map_err(|e| e.to_string())?;
    if let Some(r) = configs.first() {
        let settings = match ward_store::postgres::PgSettings::from_resource(r) {
            Ok(s) => events.activate(s).await,
            Err(e) => Err(e),
        };
        settings.map_err(|e| {
            format!(
                "PostgresConfig {:?}: {e}; fix the backend's environment (--env-file) or the DSN",
                r.metadata.name
            )
        })?;
    }
    let pipeline = pipeline::Pipeline::new(store.clone());
    let trust = match &cfg.trusted_ca_file {
        Some(ca) => ward_tls::Trust::CaFileAndSystemRoots(ca.clone()),
        None => ward_tls::Trust::SystemRoots {
            fix_key: "trusted-ca-file",
        },
    };
    let cache = cfg.cache_dir.join("assets");
    match ward_assets::Assets::new(&cache, &trust, ward_assets::Limits::default()) {
        Ok(a) => pipeline.set_assets(Arc::new(a)),
        // Handlers with runtime_assets then fail with this reason; the rest runs.
        Err(e) => tracing::warn!(
            "runtime assets: {e}; handlers, mutators and filters that name assets will not run"
        ),
    }
    let ca = cfg
        .ca_dir
        .clone()
        .map(|d| {
            api::certificates::CaHolder::new(
                d,
                &cfg.agent_auth_crl_urls,
                cfg.agent_auth_trusted_ca_file.as_deref(),
            )
        })
        .transpose()?;
    let state = Arc::new(AppState {
        ca,
        events,
        store,
        cluster_id,
        member_id,
        name: hostname(),
        metrics: metrics.clone(),
        certificates,
        access_token_ttl: cfg.access_token_ttl.as_secs().max(1) as i64,
        ready: std::sync::atomic::AtomicBool::new(false),
        agents: agentd::Agents::default(),
        pipeline,
        logins: Default::default(),
        policy: Default::default(),
        silences: Default::default(),
        deregistration_handler: cfg.deregistration_handler.clone(),
    });
    state.policy.set(policy);
    let state_reads: Arc<dyn pipeline::EventReads> = state.clone();
    let reads = Arc::downgrade(&state_reads);
    drop(state_reads);
    state.pipeline.set_event_reads(reads);
    state.silences.set(silenced);
    state.agents.cert_session_max.store(
        cfg.agent_auth_session_max.as_secs(),
        std::sync::atomic::Ordering::Relaxed,
    );
    let ready_state = state.clone();
    let app = api::router(state.clone(), tls.is_some());
    let dashboard_tls = match (&cfg.dashboard_cert_file, &cfg.dashboard_key_file) {
        (Some(c), Some(k)) => Some(
            ward_tls::ServerTls::new(c, k, cfg.allow_expired_certificate)
                .map_err(|e| format!("dashboard-cert-file/dashboard-key-file: {e}"))?
                .config,
        ),
        _ => tls.as_ref().map(|t| t.config.clone()),
    };
    // The dashboard: one page on its own port, speaking the same API.
    let dashboard_app = api::dashboard(state, dashboard_tls.is_some());
    let dashboard_addr: SocketAddr = format!("{}:{}", cfg.dashboard_host, cfg.dashboard_port)
        .parse()
        .map_err(|_| {
            format!(
                "dashboard-host/dashboard-port: {}:{} is not an address",
                cfg.dashboard_host, cfg.dashboard_port
            )
        })?;
    let dashboard = server::bind(dashboard_addr, "dashboard-host/dashboard-port").await?;
    let api = server::bind(cfg.api_listen_address, "api-listen-address").await?;
    let agent_addr: SocketAddr = format!("{}:{}", cfg.agent_host, cfg.agent_port)
        .parse()
        .map_err(|_| {
            format!(
                "agent-host/agent-port: {}:{} is not an address",
                cfg.agent_host, cfg.agent_port
            )
        })?;
    let agent = server::bind(agent_addr, "agent-host/agent-port").await?;
    let agent_tls = agent_tls(&cfg, tls.as_ref())?;
    let agent_mode = match &agent_tls {
        agentd::AgentTls::Plain => "ws (plaintext)",
        agentd::AgentTls::Tls(_) => "wss, password",
        agentd::AgentTls::Mtls(_) => "wss, client certificates (mTLS)",
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let tls_cfg = tls.as_ref().map(|t| t.config.clone());
    tracing::info!(api = %api.local_addr().map(|a| a.to_string()).unwrap_or_default(), agent = %agent.local_addr().map(|a| a.to_string()).unwrap_or_default(), tls = tls.is_some(), agents = agent_mode, "backend started");
    println!(
        "ward backend: API on {}://{}, agent port {} ({agent_mode}), dashboard {}{}",
        if tls.is_some() { "https" } else { "http" },
        api.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        agent
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        dashboard
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        if tls.is_some() {
            " (TLS only)"
        } else {
            " (plaintext: set cert-file and key-file for TLS)"
        }
    );
    let a = tokio::spawn(server::serve(
        api,
        "API",
        app,
        tls_cfg.clone(),
        metrics.clone(),
        limits.clone(),
        rx.clone(),
    ));
    let b = tokio::spawn(agentd::serve(
        agent,
        ready_state.clone(),
        agent_tls,
        limits.clone(),
        rx.clone(),
    ));
    tokio::spawn(agentd::keepalived::run(ready_state.clone()));
    tokio::spawn(eventd::ttl::run(ready_state.clone()));
    tokio::spawn(silences::sweep(
        ready_state.store.clone(),
        ready_state.silences.clone(),
    ));
    tokio::spawn(agentd::schedulerd::run(ready_state.clone()));
    let c = tokio::spawn(server::serve(
        dashboard,
        "dashboard",
        dashboard_app,
        dashboard_tls,
        metrics,
        limits,
        rx,
    ));
    // Start-up checks run while the listeners already answer /health and /ready (503).
    let check_state = ready_state.clone();
    let checked = tokio::task::spawn_blocking(move || check_state.store.quick_check()).await;
    match checked {
        Ok(Ok(())) => ready_state
            .ready
            .store(true, std::sync::atomic::Ordering::Release),
        Ok(Err(e)) => return Err(format!("the store failed its start-up check: {e}")),
        Err(e) => return Err(format!("the start-up check did not finish: {e}")),
    }
    tracing::info!("ready");
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = tx.send(true);
    let _ = a.await;
    let _ = b.await;
    let _ = c.await;
    Ok(())
}

/// The agent port's TLS: agent mTLS when the agent-auth-* files are set (the port then
/// serves agent-auth-cert-file), else the backend's certificate, else plaintext.
fn agent_tls(
    cfg: &BackendConfig,
    tls: Option<&ward_tls::ServerTls>,
) -> Result<agentd::AgentTls, String> {
    match (
        &cfg.agent_auth_cert_file,
        &cfg.agent_auth_key_file,
        &cfg.agent_auth_trusted_ca_file,
    ) {
        (Some(cert), Some(key), Some(ca)) => {
            let auth = ward_tls::agent_auth::AgentAuth::new(ward_tls::agent_auth::AgentAuthSettings {
                cert_file: cert.clone(),
                key_file: key.clone(),
                trusted_ca_file: ca.clone(),
                crl_urls: cfg.agent_auth_crl_urls.clone(),
                fail_open: cfg.agent_auth_fail_open,
                allow_expired_certificate: cfg.allow_expired_certificate,
            })?;
            Ok(agentd::AgentTls::Mtls(auth))
        }
        (Some(_), Some(_), None) => Err("agent-auth-trusted-ca-file: required with agent-auth-cert-file (the CA agents' client certificates must chain to)".into()),
        (None, None, Some(_)) => Err("agent-auth-cert-file/agent-auth-key-file: required with agent-auth-trusted-ca-file (the certificate the agent port serves)".into()),
        _ => Ok(match tls {
            Some(t) => agentd::AgentTls::Tls(t.config.clone()),
            None => agentd::AgentTls::Plain,
        }),
    }
}

/// Raises the soft open-file limit to the hard one (every agent session is a socket);
/// returns the limit in force.
fn raise_open_files() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut l = getrlimit(Resource::Nofile);
    if let Some(hard) = l.maximum {
        if l.current.is_some_and(|c| c < hard) {
            l.current = Some(hard);
            let _ = setrlimit(Resource::Nofile, l);
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(0)
}

/// Resolves on SIGTERM or Ctrl-C (whichever comes first; Ctrl-C only if SIGTERM cannot be
/// watched).
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

fn hostname() -> String {
    ward_io::host::hostname().unwrap_or_else(|| "ward".into())
}
