//! `ward backend …`.

use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum BackendCommand {
    /// Create the state directory, the first admin and the `agent` user. Runs once.
    Init(InitArgs),
    /// Start the backend (flags > WARD_BACKEND_* > backend.yml > defaults).
    Start(Box<StartArgs>),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[arg(
        long = "state-dir",
        env = "WARD_BACKEND_STATE_DIR",
        default_value = "/var/lib/ward"
    )]
    state_dir: PathBuf,
    #[arg(
        long = "cluster-admin-username",
        env = "WARD_BACKEND_CLUSTER_ADMIN_USERNAME"
    )]
    cluster_admin_username: String,
    #[arg(
        long = "cluster-admin-password",
        env = "WARD_BACKEND_CLUSTER_ADMIN_PASSWORD",
        hide_env_values = true
    )]
    cluster_admin_password: String,
    /// Password of the seeded `agent` user (without it, that user cannot log in until one is set).
    #[arg(
        long = "agent-password",
        env = "WARD_BACKEND_AGENT_PASSWORD",
        hide_env_values = true
    )]
    agent_password: Option<String>,
}

/// `WARD_BACKEND_*` variables `ward backend init` reads (not keys of `backend start`; an
/// environment shared by both may hold them).
const INIT_ONLY_ENV: &[&str] = &[
    "WARD_BACKEND_CLUSTER_ADMIN_USERNAME",
    "WARD_BACKEND_CLUSTER_ADMIN_PASSWORD",
    "WARD_BACKEND_AGENT_PASSWORD",
];

/// The config file's variables (`--config-file` wins; Ward's variable over Sensu's).
const CONFIG_FILE_ENV: &[&str] = &["WARD_BACKEND_CONFIG_FILE", "SENSU_BACKEND_CONFIG_FILE"];

macro_rules! start_args {
    ($($field:ident => $name:literal),* $(,)?; sensu: $($sfield:ident => $sname:literal),* $(,)?) => {
        #[derive(Debug, Args)]
        pub struct StartArgs {
            /// backend.yml.
            #[arg(long = "config-file")]
            config_file: Option<PathBuf>,
            /// KEY=VALUE lines loaded into the environment first (default: /etc/default/ward-backend when it exists).
            #[arg(long = "env-file")]
            env_file: Option<PathBuf>,
            $(
                #[arg(long = $name)]
                $field: Option<String>,
            )*
            // sensu-backend's keys Ward does not implement (config::sensu_keys): taken so
            // that each is refused or ignored with its reason, not clap's "unexpected
            // argument". A bare `--debug` is `true`, as in Sensu.
            $(
                #[arg(long = $sname, hide = true, num_args = 0..=1, default_missing_value = "true")]
                $sfield: Option<String>,
            )*
        }

        impl StartArgs {
            fn flags(&self) -> BTreeMap<String, String> {
                let mut m = BTreeMap::new();
                $( if let Some(v) = &self.$field { m.insert($name.to_string(), v.clone()); } )*
                $( if let Some(v) = &self.$sfield { m.insert($sname.to_string(), v.clone()); } )*
                m
            }
        }
    };
}

start_args! {
    api_listen_address => "api-listen-address",
    api_url => "api-url",
    agent_host => "agent-host",
    agent_port => "agent-port",
    dashboard_host => "dashboard-host",
    dashboard_port => "dashboard-port",
    state_dir => "state-dir",
    cache_dir => "cache-dir",
    cert_file => "cert-file",
    key_file => "key-file",
    trusted_ca_file => "trusted-ca-file",
    dashboard_cert_file => "dashboard-cert-file",
    dashboard_key_file => "dashboard-key-file",
    agent_auth_cert_file => "agent-auth-cert-file",
    agent_auth_key_file => "agent-auth-key-file",
    agent_auth_trusted_ca_file => "agent-auth-trusted-ca-file",
    agent_auth_crl_urls => "agent-auth-crl-urls",
    agent_auth_fail_open => "agent-auth-fail-open",
    agent_auth_session_max => "agent-auth-session-max",
    ca_dir => "ca-dir",
    log_level => "log-level",
    access_token_ttl => "access-token-ttl",
    tls_handshake_timeout => "tls-handshake-timeout",
    http_header_timeout => "http-header-timeout",
    max_connections => "max-connections",
    allow_expired_certificate => "allow-expired-certificate",
    ;
    sensu:
    insecure_skip_tls_verify => "insecure-skip-tls-verify",
    enable_cert_revocation_check => "enable-cert-revocation-check",
    require_fips => "require-fips",
    jwt_private_key_file => "jwt-private-key-file",
    jwt_public_key_file => "jwt-public-key-file",
    access_token_expiry => "access-token-expiry",
    refresh_token_expiry => "refresh-token-expiry",
    agent_rate_limit => "agent-rate-limit",
    agent_burst_limit => "agent-burst-limit",
    api_request_limit => "api-request-limit",
    deregistration_handler => "deregistration-handler",
    default_silenced_expiry_time => "default-silenced-expiry-time",
    max_silenced_expiry_time_allowed => "max-silenced-expiry-time-allowed",
    event_log_file => "event-log-file",
    pg_dsn => "pg-dsn",
    etcd_advertise_client_urls => "etcd-advertise-client-urls",
    etcd_listen_client_urls => "etcd-listen-client-urls",
    etcd_listen_peer_urls => "etcd-listen-peer-urls",
    etcd_initial_advertise_peer_urls => "etcd-initial-advertise-peer-urls",
    etcd_initial_cluster => "etcd-initial-cluster",
    etcd_initial_cluster_state => "etcd-initial-cluster-state",
    etcd_initial_cluster_token => "etcd-initial-cluster-token",
    etcd_discovery => "etcd-discovery",
    etcd_discovery_srv => "etcd-discovery-srv",
    etcd_name => "etcd-name",
    etcd_client_urls => "etcd-client-urls",
    no_embed_etcd => "no-embed-etcd",
    etcd_cert_file => "etcd-cert-file",
    etcd_key_file => "etcd-key-file",
    etcd_trusted_ca_file => "etcd-trusted-ca-file",
    etcd_client_cert_auth => "etcd-client-cert-auth",
    etcd_peer_cert_file => "etcd-peer-cert-file",
    etcd_peer_key_file => "etcd-peer-key-file",
    etcd_peer_trusted_ca_file => "etcd-peer-trusted-ca-file",
    etcd_peer_client_cert_auth => "etcd-peer-client-cert-auth",
    etcd_cipher_suites => "etcd-cipher-suites",
    etcd_client_username => "etcd-client-username",
    etcd_client_password => "etcd-client-password",
    etcd_election_timeout => "etcd-election-timeout",
    etcd_heartbeat_interval => "etcd-heartbeat-interval",
    etcd_max_request_bytes => "etcd-max-request-bytes",
    etcd_quota_backend_bytes => "etcd-quota-backend-bytes",
    etcd_log_level => "etcd-log-level",
    etcd_client_log_level => "etcd-client-log-level",
    etcd_unsafe_no_fsync => "etcd-unsafe-no-fsync",
    eventd_workers => "eventd-workers",
    eventd_buffer_size => "eventd-buffer-size",
    keepalived_workers => "keepalived-workers",
    keepalived_buffer_size => "keepalived-buffer-size",
    pipelined_workers => "pipelined-workers",
    pipelined_buffer_size => "pipelined-buffer-size",
    agent_write_timeout => "agent-write-timeout",
    api_write_timeout => "api-write-timeout",
    dashboard_write_timeout => "dashboard-write-timeout",
    agent_serve_wait_time => "agent-serve-wait-time",
    api_serve_wait_time => "api-serve-wait-time",
    assets_rate_limit => "assets-rate-limit",
    assets_burst_limit => "assets-burst-limit",
    labels => "labels",
    annotations => "annotations",
    name => "name",
    debug => "debug",
    log_millisecond_timestamps => "log-millisecond-timestamps",
    metrics_refresh_interval => "metrics-refresh-interval",
    disable_platform_metrics => "disable-platform-metrics",
    platform_metrics_log_file => "platform-metrics-log-file",
    platform_metrics_logging_interval => "platform-metrics-logging-interval",
    event_log_buffer_size => "event-log-buffer-size",
    event_log_buffer_wait => "event-log-buffer-wait",
    event_log_parallel_encoders => "event-log-parallel-encoders",
    event_cache_write_limit => "event-cache-write-limit",
    disable_event_cache => "disable-event-cache",
    backend_url => "backend-url",
    backend_heartbeat_interval => "backend-heartbeat-interval",
    backend_heartbeat_timeout => "backend-heartbeat-timeout",
    backend_handshake_timeout => "backend-handshake-timeout",
}

pub fn run(cmd: BackendCommand) -> Result<ExitCode, String> {
    match cmd {
        BackendCommand::Init(a) => {
            let _lock = lock_state_dir(&a.state_dir, true)?;
            ward_backend::init(
                &a.state_dir,
                &a.cluster_admin_username,
                &a.cluster_admin_password,
                a.agent_password.as_deref(),
            )?;
            outln!(
                "initialised {} with admin {:?}",
                a.state_dir.display(),
                a.cluster_admin_username
            );
            Ok(ExitCode::SUCCESS)
        }
        BackendCommand::Start(a) => {
            super::load_env_file(a.env_file.as_deref(), "/etc/default/ward-backend")?;
            let also: Vec<&str> = INIT_ONLY_ENV
                .iter()
                .chain(ward_backend::config::sensu_keys::SENSU_INIT_ENV)
                .chain(CONFIG_FILE_ENV)
                .copied()
                .collect();
            ward_types::settings::check_env_names(
                &ward_backend::config::SCHEMA,
                &also,
                std::env::vars_os().map(|(k, _)| k),
            )
            .map_err(|e| e.to_string())?;
            // --config-file, else the variable, as sensu-backend reads its own.
            let config_file = a.config_file.clone().or_else(|| {
                CONFIG_FILE_ENV
                    .iter()
                    .find_map(|v| std::env::var_os(v).filter(|p| !p.is_empty()))
                    .map(PathBuf::from)
            });
            let cfg = ward_backend::config::resolve(
                config_file.as_deref(),
                &|k| std::env::var(k).ok(),
                &a.flags(),
            )
            .map_err(|e| e.to_string())?;
            // Held until the process exits: a second backend on this state dir stops here.
            let _lock = lock_state_dir(&cfg.state_dir, false)?;
            super::start_logging(&["ward_backend"], &cfg.log_level, None);
            for line in &cfg.ignored {
                tracing::warn!("{line}");
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the runtime: {e}"))?;
            rt.block_on(ward_backend::start(cfg))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The lock file in a state directory, held by the `ward backend` using it.
const LOCK_FILE: &str = "backend.lock";

/// Takes `<dir>/backend.lock` (an exclusive `flock`, held while the returned file is open,
/// so until the process ends, however it ends) and writes this PID into it. Fails at once
/// with the directory and the holder's PID when another `ward backend start` or
/// `ward backend init` holds it. `create`: make the directory (0700) when missing (init);
/// otherwise a missing directory is left for the "not initialised" error.
pub(crate) fn lock_state_dir(dir: &Path, create: bool) -> Result<Option<std::fs::File>, String> {
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if !dir.is_dir() {
        if !create {
            return Ok(None);
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    }
    let path = dir.join(LOCK_FILE);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("{}: cannot open the state-dir lock: {e}", path.display()))?;
    match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => {
            let mut pid = String::new();
            let _ = f.read_to_string(&mut pid);
            let pid = match pid.trim() {
                "" => "unknown: it is starting".to_string(),
                p => ward_io::text::one_line(p).to_string(),
            };
            return Err(format!(
                "{}: the state directory is in use by another ward backend (PID {pid}, holding {}); stop it, or give this one another --state-dir",
                dir.display(),
                path.display()
            ));
        }
        Err(e) => {
            return Err(format!(
                "{}: cannot lock the state directory: {e}",
                path.display()
            ))
        }
    }
    let written = f
        .set_len(0)
        .and_then(|_| f.rewind())
        .and_then(|_| writeln!(f, "{}", std::process::id()));
    written.map_err(|e| format!("{}: cannot write the PID: {e}", path.display()))?;
    Ok(Some(f))
}
