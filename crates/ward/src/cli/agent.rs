//! `ward agent …`.

use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Start the agent (flags > WARD_AGENT_* > agent.yml > defaults).
    Start(Box<StartArgs>),
}

/// The config file's variables (`--config-file` wins; Ward's variable over Sensu's).
const CONFIG_FILE_ENV: &[&str] = &["WARD_AGENT_CONFIG_FILE", "SENSU_CONFIG_FILE"];

macro_rules! start_args {
    ($($field:ident => $name:literal),* $(,)?; switches: $($bfield:ident => $bname:literal),* $(,)?; sensu: $($sfield:ident => $sname:literal),* $(,)?) => {
        #[derive(Debug, Args)]
        pub struct StartArgs {
            /// agent.yml (default: /etc/ward/agent.yml when it exists).
            #[arg(long = "config-file")]
            config_file: Option<PathBuf>,
            /// KEY=VALUE lines loaded into the environment first (default: /etc/default/ward-agent when it exists).
            #[arg(long = "env-file")]
            env_file: Option<PathBuf>,
            /// A backend's ws:// or wss:// URL; repeat for several (tried in a shuffled order).
            #[arg(long = "backend-url")]
            backend_url: Vec<String>,
            /// Do not verify the backend's certificate (logged as a warning at every connect).
            #[arg(long = "insecure-skip-tls-verify", num_args = 0..=1, default_missing_value = "true")]
            insecure_skip_tls_verify: Option<String>,
            /// Do not serve the local agent API.
            #[arg(long = "disable-api", num_args = 0..=1, default_missing_value = "true")]
            disable_api: Option<String>,
            /// Do not serve the agent socket (TCP and UDP 3030).
            #[arg(long = "disable-sockets", num_args = 0..=1, default_missing_value = "true")]
            disable_sockets: Option<String>,
            $(
                #[arg(long = $name)]
                $field: Option<String>,
            )*
            // Keys that are true or false: a bare `--strip-networks` is true, as in Sensu.
            $(
                #[arg(long = $bname, num_args = 0..=1, default_missing_value = "true")]
                $bfield: Option<String>,
            )*
            // sensu-agent's keys Ward does not implement (ward_agent's sensu_keys): taken so
            // that each is refused or ignored with its reason, not clap's "unexpected
            // argument".
            $(
                #[arg(long = $sname, hide = true, num_args = 0..=1, default_missing_value = "true")]
                $sfield: Option<String>,
            )*
        }

        impl StartArgs {
            fn flags(&self) -> Vec<(String, String)> {
                let mut v: Vec<(String, String)> = self
                    .backend_url
                    .iter()
                    .map(|u| ("backend-url".to_string(), u.clone()))
                    .collect();
                if let Some(b) = &self.insecure_skip_tls_verify {
                    v.push(("insecure-skip-tls-verify".into(), b.clone()));
                }
                if let Some(b) = &self.disable_api {
                    v.push(("disable-api".into(), b.clone()));
                }
                if let Some(b) = &self.disable_sockets {
                    v.push(("disable-sockets".into(), b.clone()));
                }
                $( if let Some(x) = &self.$field { v.push(($name.to_string(), x.clone())); } )*
                $( if let Some(x) = &self.$bfield { v.push(($bname.to_string(), x.clone())); } )*
                $( if let Some(x) = &self.$sfield { v.push(($sname.to_string(), x.clone())); } )*
                v
            }
        }
    };
}

start_args! {
    name => "name",
    namespace => "namespace",
    subscriptions => "subscriptions",
    labels => "labels",
    annotations => "annotations",
    redact => "redact",
    user => "user",
    password => "password",
    trusted_ca_file => "trusted-ca-file",
    cert_file => "cert-file",
    key_file => "key-file",
    keepalive_interval => "keepalive-interval",
    keepalive_warning_timeout => "keepalive-warning-timeout",
    keepalive_critical_timeout => "keepalive-critical-timeout",
    cache_dir => "cache-dir",
    cache_max_events => "cache-max-events",
    backend_heartbeat_interval => "backend-heartbeat-interval",
    backend_heartbeat_timeout => "backend-heartbeat-timeout",
    backend_handshake_timeout => "backend-handshake-timeout",
    retry_min => "retry-min",
    retry_max => "retry-max",
    retry_multiplier => "retry-multiplier",
    api_host => "api-host",
    api_port => "api-port",
    socket_host => "socket-host",
    socket_port => "socket-port",
    assets_rate_limit => "assets-rate-limit",
    assets_burst_limit => "assets-burst-limit",
    events_rate_limit => "events-rate-limit",
    events_burst_limit => "events-burst-limit",
    max_session_length => "max-session-length",
    keepalive_handlers => "keepalive-handlers",
    keepalive_pipelines => "keepalive-pipelines",
    deregistration_handler => "deregistration-handler",
    allow_list => "allow-list",
    statsd_event_handlers => "statsd-event-handlers",
    statsd_flush_interval => "statsd-flush-interval",
    statsd_metrics_host => "statsd-metrics-host",
    statsd_metrics_port => "statsd-metrics-port",
    log_level => "log-level",
    log_file => "log-file",
    ;
    switches:
    disable_assets => "disable-assets",
    strip_networks => "strip-networks",
    statsd_disable => "statsd-disable",
    deregister => "deregister",
    agent_managed_entity => "agent-managed-entity",
    detect_cloud_provider => "detect-cloud-provider",
    ;
    sensu:
    require_fips => "require-fips",
    require_openssl => "require-openssl",
    keepalive_timeout => "keepalive-timeout",
    extended_attributes => "extended-attributes",
    discover_processes => "discover-processes",
}

pub fn run(cmd: AgentCommand) -> Result<ExitCode, String> {
    match cmd {
        AgentCommand::Start(a) => {
            super::load_env_file(a.env_file.as_deref(), "/etc/default/ward-agent")?;
            ward_types::settings::check_env_names(
                &ward_agent::config::SCHEMA,
                CONFIG_FILE_ENV,
                std::env::vars_os().map(|(k, _)| k),
            )
            .map_err(|e| e.to_string())?;
            // --config-file, else the variable (as sensu-agent reads its own), else
            // /etc/ward/agent.yml when it exists.
            let file = a
                .config_file
                .clone()
                .or_else(|| {
                    CONFIG_FILE_ENV
                        .iter()
                        .find_map(|v| std::env::var_os(v).filter(|p| !p.is_empty()))
                        .map(PathBuf::from)
                })
                .or_else(ward_agent::AgentConfig::default_file);
            let cfg = ward_agent::AgentConfig::resolve(
                file.as_deref(),
                // The config file's variables were read above: not the key `config-file`.
                &|k| {
                    (!CONFIG_FILE_ENV.contains(&k))
                        .then(|| std::env::var(k).ok())
                        .flatten()
                },
                &a.flags(),
            )
            .map_err(|e| e.to_string())?;
            super::start_logging(
                &["ward_agent"],
                &cfg.log_level,
                cfg.log_file.as_ref().map(|l| l.file.clone()),
            );
            for line in &cfg.ignored {
                tracing::warn!("{line}");
            }
            outln!("{}", cfg.summary());
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the runtime: {e}"))?;
            rt.block_on(ward_agent::run(cfg, ward_backend::shutdown_signal()))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
