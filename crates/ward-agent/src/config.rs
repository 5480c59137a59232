//! The agent's configuration: flags > environment (`WARD_AGENT_*`) > `agent.yml` >
//! defaults, with the guides' key names. Everything is checked at start: unknown keys,
//! bad values, half-configured client certificates, key files others can read, and a CA
//! file that is not one. Each refusal is one line naming the key and where its value came
//! from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use ward_types::settings::{config_error, ConfigError, Schema, Settings};

/// Every key `agent.yml` accepts.
pub const KEYS: &[&str] = &[
    "backend-url",
    "name",
    "namespace",
    "subscriptions",
    "labels",
    "annotations",
    "redact",
    "user",
    "password",
    "trusted-ca-file",
    "cert-file",
    "key-file",
    "insecure-skip-tls-verify",
    "keepalive-interval",
    "keepalive-warning-timeout",
    "keepalive-critical-timeout",
    "keepalive-handlers",
    "keepalive-pipelines",
    "deregister",
    "deregistration-handler",
    "cache-dir",
    "cache-max-events",
    "backend-heartbeat-interval",
    "backend-heartbeat-timeout",
    "backend-handshake-timeout",
    "retry-min",
    "retry-max",
    "retry-multiplier",
    "api-host",
    "api-port",
    "disable-api",
    "socket-host",
    "socket-port",
    "disable-sockets",
    "disable-assets",
    "allow-list",
    "assets-rate-limit",
    "assets-burst-limit",
    "events-rate-limit",
    "events-burst-limit",
    "max-session-length",
    "strip-networks",
    "agent-managed-entity",
    "detect-cloud-provider",
    "statsd-disable",
    "statsd-metrics-host",
    "statsd-metrics-port",
    "statsd-flush-interval",
    "statsd-event-handlers",
    "log-level",
    "log-file",
];

/// `agent.yml`'s keys and the `WARD_AGENT_` environment.
pub const SCHEMA: Schema = Schema {
    keys: KEYS,
    map_keys: &["labels", "annotations"],
    env_prefix: "WARD_AGENT_",
    alias_prefix: Some("SENSU_"),
    alias_strict: false,
    foreign: crate::sensu_keys::SENSU_KEYS,
};

/// A list of resource names (handlers), each checked.
fn names(s: &Settings, key: &str) -> Result<Vec<String>, ConfigError> {
    let v = s.list(key);
    for n in &v {
        ward_types::check_name(key, n).map_err(|e| s.error(key, format!("{n:?}: {}", e.reason)))?;
    }
    Ok(v)
}

/// The default configuration file, used when it exists and `--config-file` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/ward/agent.yml";

/// One backend URL, parsed: `ws://host:port/path` or `wss://…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendUrl {
    /// `wss://`: TLS to the backend.
    pub tls: bool,
    /// The host as written, without brackets for IPv6 (`::1`).
    pub host: String,
    pub port: u16,
    /// The request path (`/` unless the URL says otherwise).
    pub path: String,
}

impl BackendUrl {
    /// Parses `ws://host[:port][/path]` or `wss://…` (through `ward_io::url`); the port
    /// defaults to 80 / 443 as for any WebSocket URL (the guides always write `:8081`).
    pub fn parse(s: &str) -> Result<BackendUrl, String> {
        let e = ward_io::url::parse_endpoint(s, "ws", "wss").map_err(|e| format!("{s:?}: {e}"))?;
        Ok(BackendUrl {
            tls: e.tls,
            host: e.host,
            port: e.port,
            path: e.path,
        })
    }

    /// The host as it goes in a URL or a `Host` header (IPv6 in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for BackendUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}{}",
            if self.tls { "wss" } else { "ws" },
            self.authority(),
            if self.path == "/" { "" } else { &self.path }
        )
    }
}

/// A secret that never appears in `Debug` output (and so never in a log line).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// The agent's settings, typed and checked.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Tried in a shuffled order; on failure the next one.
    pub backend_urls: Vec<BackendUrl>,
    /// The entity's name (default: the host name).
    pub name: String,
    pub namespace: String,
    pub subscriptions: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Labels and annotations whose values are sent as `REDACTED` (default Sensu's list).
    pub redact: Vec<String>,
    /// Basic-auth user, used only without a client certificate.
    pub user: String,
    pub password: Option<Secret>,
    /// The CAs that may sign the backend's certificate; without it, the system's roots.
    pub trusted_ca_file: Option<PathBuf>,
    /// The client certificate presented on wss:// (agent mTLS); with it, no password is sent.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub insecure_skip_tls_verify: bool,
    pub keepalive_interval: Duration,
    pub keepalive_warning_timeout: Duration,
    /// Zero: no critical keepalive event.
    pub keepalive_critical_timeout: Duration,
    /// `keepalive-handlers`: the handlers of this agent's keepalive events (none: Sensu's
    /// `keepalive`).
    pub keepalive_handlers: Vec<String>,
    /// `keepalive-pipelines`: pipeline names (from `core/v2.Pipeline.NAME` or `NAME`).
    pub keepalive_pipelines: Vec<String>,
    /// `deregister`: the backend removes the entity when the agent leaves.
    pub deregister: bool,
    /// `deregistration-handler`: the handler the backend tells when it does.
    pub deregistration_handler: String,
    /// Holds the durable event queue (`queue.db`).
    pub cache_dir: PathBuf,
    /// Events the queue holds at most; beyond that new events are refused.
    pub cache_max_events: u64,
    pub backend_heartbeat_interval: Duration,
    pub backend_heartbeat_timeout: Duration,
    /// TCP connect + TLS + WebSocket upgrade, at most.
    pub backend_handshake_timeout: Duration,
    pub retry_min: Duration,
    pub retry_max: Duration,
    pub retry_multiplier: f64,
    /// The local agent API's address; `None` when `disable-api` is set.
    pub api: Option<(String, u16)>,
    /// The agent socket's address (TCP and UDP); `None` when `disable-sockets` is set.
    pub socket: Option<(String, u16)>,
    /// `disable-assets`: a check or hook with runtime assets is not run (status 3).
    pub disable_assets: bool,
    /// `allow-list`: the only commands checks and hooks may run (crate::allow_list).
    pub allow_list: Option<std::sync::Arc<crate::allow_list::AllowList>>,
    /// Asset downloads a second (0: no limit) and in a burst.
    pub assets_rate_limit: f64,
    pub assets_burst_limit: u32,
    /// Events a second the local API's `POST /events` takes (0: no limit), and in a burst.
    pub events_rate_limit: f64,
    pub events_burst_limit: u32,
    /// `max-session-length`: a session is closed and reopened (to any backend) before it
    /// lasts this long (jittered down by up to a tenth).
    pub max_session_length: Option<Duration>,
    /// `strip-networks`: keepalives carry no network interfaces.
    pub strip_networks: bool,
    /// `agent-managed-entity`: the entity is this agent's configuration alone (labelled
    /// `sensu.io/managed_by: sensu-agent`); the backend's API may not change it.
    pub agent_managed_entity: bool,
    /// `detect-cloud-provider`: `entity.system.cloud_provider` from the firmware's DMI.
    pub detect_cloud_provider: bool,
    /// The StatsD listener (UDP); `None` when `statsd-disable` is set.
    pub statsd: Option<Statsd>,
    pub log_level: String,
    /// `log-file`: the log's lines are appended to this file (opened at start, created
    /// 0640) instead of going to stderr.
    pub log_file: Option<LogFile>,
    /// sensu-agent keys given that Ward ignores, each a line for the start-up log.
    pub ignored: Vec<String>,
}

/// The open `log-file`.
#[derive(Debug, Clone)]
pub struct LogFile {
    pub path: PathBuf,
    pub file: std::sync::Arc<std::fs::File>,
}

/// Opens `log-file` for appending (created 0640: logs name hosts and checks, not secrets).
fn log_file(s: &Settings) -> Result<Option<LogFile>, ConfigError> {
    use std::os::unix::fs::OpenOptionsExt;
    let Some(path) = s.path("log-file") else {
        return Ok(None);
    };
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(&path)
        .map_err(|e| {
            s.error(
                "log-file",
                format!(
                    "{}: cannot open it for appending: {e}; name a file in a directory that exists and that the agent may write",
                    path.display()
                ),
            )
        })?;
    Ok(Some(LogFile {
        path,
        file: std::sync::Arc::new(file),
    }))
}

/// The StatsD listener's settings.
#[derive(Debug, Clone)]
pub struct Statsd {
    /// `statsd-metrics-host`, `statsd-metrics-port`.
    pub host: String,
    pub port: u16,
    /// `statsd-flush-interval`: how often the summed metrics become an event.
    pub flush_interval: Duration,
    /// `statsd-event-handlers`: the event's `metrics.handlers`.
    pub handlers: Vec<String>,
}

/// A listener's `NAME-host` (default 127.0.0.1) and `NAME-port`, or None when `disable`
/// is set: the local API's and the agent socket's.
fn loopback_listener(
    s: &Settings,
    name: &str,
    disable: &str,
    default_port: u16,
) -> Result<Option<(String, u16)>, ConfigError> {
    if s.boolean(disable, false)? {
        return Ok(None);
    }
    let (host_key, port_key) = (format!("{name}-host"), format!("{name}-port"));
    let host = s.text(&host_key).unwrap_or_else(|| "127.0.0.1".into());
    if host.is_empty() {
        return Err(s.error(&host_key, "is empty"));
    }
    Ok(Some((host, s.port(&port_key, default_port)?)))
}

/// A rate limit (a number ≥ 0 a second; 0: none).
fn rate(s: &Settings, key: &str, default: f64) -> Result<f64, ConfigError> {
    Ok(s.parse(key, |v| {
        v.trim()
            .parse::<f64>()
            .ok()
            .filter(|r| r.is_finite() && *r >= 0.0)
            .ok_or_else(|| {
                format!("{v:?} is not a number of events a second (0 or more; 0: no limit)")
            })
    })?
    .unwrap_or(default))
}

/// A burst limit (a whole number ≥ 1).
fn burst(s: &Settings, key: &str, default: u32) -> Result<u32, ConfigError> {
    Ok(s.parse(key, |v| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|b| *b >= 1)
            .ok_or_else(|| format!("{v:?} is not a whole number of 1 or more"))
    })?
    .unwrap_or(default))
}

impl AgentConfig {
    /// Whether the agent authenticates with a client certificate (else Basic auth).
    pub fn uses_client_cert(&self) -> bool {
        self.cert_file.is_some()
    }

    /// The start-up line: who the agent is, where it connects, how it authenticates, where
    /// its queue and API are.
    pub fn summary(&self) -> String {
        let urls: Vec<String> = self.backend_urls.iter().map(|u| u.to_string()).collect();
        let auth = match &self.cert_file {
            Some(c) => format!("client certificate {}", c.display()),
            None => format!("password as user {:?}", self.user),
        };
        let trust = if !self.backend_urls.iter().any(|u| u.tls) {
            String::new()
        } else if self.insecure_skip_tls_verify {
            ", backend certificate NOT verified (insecure-skip-tls-verify)".to_string()
        } else if let Some(ca) = &self.trusted_ca_file {
            format!(", backend verified against {}", ca.display())
        } else {
            ", backend verified against the system's roots".to_string()
        };
        let api = match &self.api {
            Some((h, p)) if h.contains(':') => format!("API http://[{h}]:{p}"),
            Some((h, p)) => format!("API http://{h}:{p}"),
            None => "API disabled".to_string(),
        };
        format!(
            "ward agent {} (namespace {}): backend {}; auth: {auth}{trust}; queue {} (up to {} events); {api}",
            self.name,
            self.namespace,
            urls.join(", "),
            self.cache_dir.display(),
            self.cache_max_events
        )
    }

    /// The configuration file to read when none is named: /etc/ward/agent.yml if it exists.
    pub fn default_file() -> Option<PathBuf> {
        let p = PathBuf::from(DEFAULT_CONFIG_FILE);
        p.exists().then_some(p)
    }

    /// Resolves and checks the configuration: `file` (optional), the environment, and
    /// flags (a flag given more than once is a list, as `--backend-url` is).
    pub fn resolve(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        flags: &[(String, String)],
    ) -> Result<AgentConfig, ConfigError> {
        let s = Settings::resolve(&SCHEMA, file, env, flags)?;
        let duration = |key: &str, default: Duration, zero_ok: bool| {
            let d = s.parse(key, |v| parse_seconds(key, v))?.unwrap_or(default);
            if d.is_zero() && !zero_ok {
                return Err(s.error(key, "must be more than 0"));
            }
            Ok::<_, ConfigError>(d)
        };

        let mut backend_urls = Vec::new();
        for u in s.list("backend-url") {
            backend_urls.push(BackendUrl::parse(&u).map_err(|e| s.error("backend-url", e))?);
        }
        if backend_urls.is_empty() {
            backend_urls.push(BackendUrl::parse("ws://127.0.0.1:8081").expect("static URL"));
        }
        let name = match s.text("name") {
            Some(n) => n,
            None => hostname().ok_or_else(|| {
                s.error(
                    "name",
                    "not set and the host name could not be read; set name",
                )
            })?,
        };
        ward_types::check_name("name", &name).map_err(|e| s.error("name", e.reason))?;
        let namespace = s.text("namespace").unwrap_or_else(|| "default".into());
        ward_types::check_name("namespace", &namespace)
            .map_err(|e| s.error("namespace", e.reason))?;
        let subscriptions = s.list("subscriptions");
        for sub in &subscriptions {
            if sub.len() > 253 || sub.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(s.error(
                    "subscriptions",
                    format!("{sub:?} is not a subscription name"),
                ));
            }
        }
        if let Some(other) = ward_types::agent::foreign_entity_subscription(&name, &subscriptions) {
            return Err(s.error(
                "subscriptions",
                format!("{other:?} is another agent's entity subscription; the backend refuses it. An agent subscribes to entity:{name} (added by itself) only; remove {other:?}"),
            ));
        }
        let user = s.text("user").unwrap_or_else(|| "agent".into());
        let password = s.text("password").filter(|p| !p.is_empty()).map(Secret);

        let allow_list = crate::allow_list::from_settings(&s)?;
        let cfg = AgentConfig {
            backend_urls,
            name,
            namespace,
            subscriptions,
            labels: {
                let mut l = s.map("labels")?;
                if s.boolean("agent-managed-entity", false)? {
                    l.insert(
                        ward_types::agent::MANAGED_BY_LABEL.into(),
                        ward_types::agent::MANAGED_BY_AGENT.into(),
                    );
                }
                l
            },
            annotations: s.map("annotations")?,
            redact: if s.is_set("redact") {
                s.list("redact")
            } else {
                ward_types::agent::DEFAULT_REDACT
                    .iter()
                    .map(|k| k.to_string())
                    .collect()
            },
            user,
            password,
            trusted_ca_file: s.path("trusted-ca-file"),
            cert_file: s.path("cert-file"),
            key_file: s.path("key-file"),
            insecure_skip_tls_verify: s.boolean("insecure-skip-tls-verify", false)?,
            keepalive_interval: duration("keepalive-interval", Duration::from_secs(20), false)?,
            keepalive_warning_timeout: duration(
                "keepalive-warning-timeout",
                Duration::from_secs(120),
                false,
            )?,
            keepalive_critical_timeout: duration(
                "keepalive-critical-timeout",
                Duration::ZERO,
                true,
            )?,
            keepalive_handlers: names(&s, "keepalive-handlers")?,
            keepalive_pipelines: s
                .list("keepalive-pipelines")
                .iter()
                .map(|p| {
                    ward_types::agent::pipeline_ref_name(p)
                        .map(str::to_string)
                        .map_err(|e| s.error("keepalive-pipelines", e))
                })
                .collect::<Result<_, _>>()?,
            deregister: s.boolean("deregister", false)?,
            deregistration_handler: match s.text("deregistration-handler") {
                Some(h) if !h.is_empty() => {
                    ward_types::check_name("deregistration-handler", &h)
                        .map_err(|e| s.error("deregistration-handler", e.reason))?;
                    h
                }
                _ => String::new(),
            },
            cache_dir: s
                .path("cache-dir")
                .unwrap_or_else(|| PathBuf::from("/var/cache/ward/agent")),
            cache_max_events: s
                .parse("cache-max-events", |v| {
                    v.parse::<u64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("{v:?} is not a whole number above 0"))
                })?
                .unwrap_or(100_000),
            backend_heartbeat_interval: duration(
                "backend-heartbeat-interval",
                Duration::from_secs(30),
                false,
            )?,
            backend_heartbeat_timeout: duration(
                "backend-heartbeat-timeout",
                Duration::from_secs(45),
                false,
            )?,
            backend_handshake_timeout: duration(
                "backend-handshake-timeout",
                Duration::from_secs(15),
                false,
            )?,
            retry_min: duration("retry-min", Duration::from_secs(1), false)?,
            retry_max: duration("retry-max", Duration::from_secs(120), false)?,
            retry_multiplier: s
                .parse("retry-multiplier", |v| {
                    v.parse::<f64>()
                        .ok()
                        .filter(|m| m.is_finite() && *m >= 1.0 && *m <= 100.0)
                        .ok_or_else(|| format!("{v:?} is not a number from 1 to 100"))
                })?
                .unwrap_or(2.0),
            api: loopback_listener(&s, "api", "disable-api", 3031)?,
            socket: loopback_listener(&s, "socket", "disable-sockets", 3030)?,
            disable_assets: s.boolean("disable-assets", false)?,
            allow_list: allow_list.clone(),
            assets_rate_limit: rate(&s, "assets-rate-limit", 1.39)?,
            assets_burst_limit: burst(&s, "assets-burst-limit", 100)?,
            events_rate_limit: rate(&s, "events-rate-limit", 10.0)?,
            events_burst_limit: burst(&s, "events-burst-limit", 10)?,
            max_session_length: s.parse("max-session-length", |v| {
                ward_io::parse_duration("max-session-length", v)
                    .map_err(|e| e.to_string())
                    .and_then(|d| {
                        if d < Duration::from_secs(1) {
                            Err(format!(
                                "{v:?} is under a second; give a duration such as 1h"
                            ))
                        } else {
                            Ok(d)
                        }
                    })
            })?,
            strip_networks: s.boolean("strip-networks", false)?,
            agent_managed_entity: s.boolean("agent-managed-entity", false)?,
            detect_cloud_provider: s.boolean("detect-cloud-provider", false)?,
            statsd: match loopback_listener(&s, "statsd-metrics", "statsd-disable", 8125)? {
                Some((host, port)) => Some(Statsd {
                    host,
                    port,
                    flush_interval: duration(
                        "statsd-flush-interval",
                        Duration::from_secs(10),
                        false,
                    )?,
                    handlers: names(&s, "statsd-event-handlers")?,
                }),
                None => None,
            },
            log_level: s.text("log-level").unwrap_or_else(|| "info".into()),
            log_file: log_file(&s)?,
            ignored: [
                s.ignored(),
                allow_list.as_ref().map_or(&[], |l| l.ignored()),
            ]
            .concat(),
        };
        cfg.check(&s)?;
        Ok(cfg)
    }

    /// The cross-key rules, and the files behind the TLS keys.
    fn check(&self, s: &Settings) -> Result<(), ConfigError> {
        if !["panic", "fatal", "error", "warn", "info", "debug", "trace"]
            .contains(&self.log_level.as_str())
        {
            return Err(s.error(
                "log-level",
                format!(
                    "{:?} is not a level; use error, warn, info, debug or trace",
                    self.log_level
                ),
            ));
        }
        if self.keepalive_warning_timeout < Duration::from_secs(5) {
            return Err(s.error("keepalive-warning-timeout", "must be at least 5 seconds"));
        }
        if !self.keepalive_critical_timeout.is_zero()
            && self.keepalive_critical_timeout <= self.keepalive_warning_timeout
        {
            return Err(s.error(
                "keepalive-critical-timeout",
                "must be longer than keepalive-warning-timeout (or 0 for no critical event)",
            ));
        }
        if self.backend_heartbeat_timeout <= self.backend_heartbeat_interval {
            return Err(s.error(
                "backend-heartbeat-timeout",
                "must be longer than backend-heartbeat-interval, or every quiet session is dropped",
            ));
        }
        if self.retry_min > self.retry_max {
            return Err(s.error("retry-min", "is longer than retry-max"));
        }
        // Bounded and of the right kind before the TLS layer reads them (`/dev/zero` as a
        // cert-file is refused at once), each error naming the key.
        use ward_types::settings::PemKind;
        for (key, kind) in [
            ("trusted-ca-file", PemKind::Certificates),
            ("cert-file", PemKind::Certificates),
            ("key-file", PemKind::PrivateKey),
        ] {
            s.check_pem_file(key, kind)?;
        }
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => {
                return Err(config_error(
                    "key-file",
                    s.source("cert-file"),
                    "cert-file is set but key-file is not: a client certificate needs both",
                ))
            }
            (None, Some(_)) => {
                return Err(config_error(
                    "cert-file",
                    s.source("key-file"),
                    "key-file is set but cert-file is not: a client certificate needs both",
                ))
            }
            (Some(cert), Some(key)) => {
                if let Some(u) = self.backend_urls.iter().find(|u| !u.tls) {
                    return Err(s.error(
                        "cert-file",
                        format!("a client certificate is presented only over wss://, and {u} is ws://; use wss:// for every backend-url"),
                    ));
                }
                ward_tls::load_pair(cert, key).map_err(|e| s.error("key-file", e))?;
                ward_tls::check_validity("cert-file", cert, None)
                    .map_err(|e| s.error("cert-file", e))?;
            }
            (None, None) => {
                if self.password.is_none() {
                    return Err(s.error(
                        "password",
                        "not set and there is no client certificate: set password (WARD_AGENT_PASSWORD keeps it out of ps) or cert-file and key-file",
                    ));
                }
            }
        }
        if let Some(ca) = &self.trusted_ca_file {
            if self.insecure_skip_tls_verify {
                return Err(s.error(
                    "insecure-skip-tls-verify",
                    "contradicts trusted-ca-file: remove insecure-skip-tls-verify to verify the backend against that CA",
                ));
            }
            ward_tls::load_roots(ca).map_err(|e| s.error("trusted-ca-file", e))?;
        }
        Ok(())
    }
}

/// Sensu's durations: plain seconds (`20`), or with units (`20s`, `2m`, `500ms`, `1h30m`).
pub fn parse_seconds(key: &str, v: &str) -> Result<Duration, String> {
    if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) {
        return v
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("{v:?} is too large"));
    }
    ward_io::parse_duration(key, v)
        .map_err(|_| format!("{v:?} is not a duration (write seconds, or 20s, 2m, 1h)"))
}

/// The host name, as the kernel has it.
pub fn hostname() -> Option<String> {
    ward_io::host::hostname()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn resolve(
        file: Option<&Path>,
        env: &[(&str, &str)],
        f: &[(&str, &str)],
    ) -> Result<AgentConfig, String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AgentConfig::resolve(
            file,
            &|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            &flags(f),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn urls_parse_with_their_defaults() {
        let u = BackendUrl::parse("wss://backend-1.example.com:8081").unwrap();
        assert!(u.tls);
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("backend-1.example.com", 8081, "/")
        );
        assert_eq!(BackendUrl::parse("ws://h").unwrap().port, 80);
        let v6 = BackendUrl::parse("wss://[::1]:8081/x").unwrap();
        assert_eq!((v6.host.as_str(), v6.path.as_str()), ("::1", "/x"));
        assert_eq!(v6.to_string(), "wss://[::1]:8081/x");
        for bad in [
            "http://h:8081",
            "ws://:8081",
            "ws://h:0",
            "ws://h:x",
            "ws://u:p@h:1",
            "wss://[::1",
        ] {
            assert!(BackendUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_are_sensus() {
        let c = resolve(None, &[], &[("password", "pw"), ("name", "web-1")]).unwrap();
        assert_eq!(
            c.backend_urls,
            [BackendUrl::parse("ws://127.0.0.1:8081").unwrap()]
        );
        assert_eq!(c.namespace, "default");
        assert_eq!(c.user, "agent");
        assert_eq!(c.keepalive_interval, Duration::from_secs(20));
        assert_eq!(c.keepalive_warning_timeout, Duration::from_secs(120));
        assert!(c.keepalive_critical_timeout.is_zero());
        assert_eq!(c.backend_heartbeat_interval, Duration::from_secs(30));
        assert_eq!(c.backend_heartbeat_timeout, Duration::from_secs(45));
        assert_eq!(
            (c.retry_min, c.retry_max, c.retry_multiplier),
            (Duration::from_secs(1), Duration::from_secs(120), 2.0)
        );
        assert_eq!(c.api, Some(("127.0.0.1".to_string(), 3031)));
        assert_eq!(c.cache_dir, PathBuf::from("/var/cache/ward/agent"));
        assert_eq!(c.cache_max_events, 100_000);
        assert!(!c.uses_client_cert());
        assert!(
            !format!("{c:?}").contains("pw\""),
            "the password stays out of Debug"
        );
        assert_eq!(
            c.summary(),
            "ward agent web-1 (namespace default): backend ws://127.0.0.1:8081; auth: password as user \"agent\"; queue /var/cache/ward/agent (up to 100000 events); API http://127.0.0.1:3031"
        );
    }

    #[test]
    fn flags_beat_environment_beat_the_file() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("agent.yml");
        std::fs::write(
            &f,
            "backend-url:\n  - ws://a:8081\n  - ws://b:8081\nname: from-file\nnamespace: ops\nsubscriptions: [linux, web]\nlabels:\n  region: eu\n  tier: \"1\"\nkeepalive-interval: 30\npassword: pw\nretry-max: 2m\n",
        )
        .unwrap();
        let c = resolve(
            Some(&f),
            &[
                ("WARD_AGENT_NAME", "from-env"),
                ("WARD_AGENT_KEEPALIVE_INTERVAL", "10s"),
                ("WARD_AGENT_ANNOTATIONS", "owner=ops,team=x"),
            ],
            &[
                ("name", "from-flag"),
                ("backend-url", "ws://c:1"),
                ("backend-url", "ws://d:2"),
            ],
        )
        .unwrap();
        assert_eq!(c.name, "from-flag");
        assert_eq!(c.namespace, "ops");
        assert_eq!(c.keepalive_interval, Duration::from_secs(10));
        assert_eq!(c.retry_max, Duration::from_secs(120));
        assert_eq!(c.subscriptions, ["linux", "web"]);
        assert_eq!(c.labels.get("tier").map(String::as_str), Some("1"));
        assert_eq!(c.annotations.get("team").map(String::as_str), Some("x"));
        let hosts: Vec<_> = c.backend_urls.iter().map(|u| u.host.as_str()).collect();
        assert_eq!(hosts, ["c", "d"]);
        let c = resolve(Some(&f), &[], &[]).unwrap();
        assert_eq!(c.name, "from-file");
        assert_eq!(c.backend_urls.len(), 2);
        assert_eq!(c.keepalive_interval, Duration::from_secs(30));
    }

    #[test]
    fn every_refusal_names_the_key_and_its_source() {
        let d = tempfile::tempdir().unwrap();
        let ca = ward_testkit::fixtures::TestCa::create(d.path(), "Agent Test CA");
        let leaf = ca.issue("agent-1", "client", "");
        let f = d.path().join("agent.yml");
        std::fs::write(&f, "backend-urll: ws://x:1\n").unwrap();
        let e = resolve(Some(&f), &[], &[]).unwrap_err();
        assert!(
            e.starts_with("backend-urll (from ") && e.contains("unknown key"),
            "{e}"
        );

        let pw = ("password", "pw");
        let cert = ("cert-file", leaf.cert.to_str().unwrap());
        let key = ("key-file", leaf.key.to_str().unwrap());
        let cafile = (
            "trusted-ca-file",
            ca.cert_path().to_str().unwrap().to_string(),
        );
        type Pairs<'a> = Vec<(&'a str, &'a str)>;
        let cases: Vec<(Pairs, Pairs, &str)> = vec![
            (vec![], vec![pw, ("backend-url", "http://x:8081")], "backend-url (from --backend-url): \"http://x:8081\": the scheme is \"http\", not ws:// or wss://"),
            (vec![("WARD_AGENT_KEEPALIVE_INTERVAL", "often")], vec![pw], "keepalive-interval (from $WARD_AGENT_KEEPALIVE_INTERVAL): \"often\" is not a duration"),
            (vec![], vec![pw, ("keepalive-interval", "0")], "keepalive-interval (from --keepalive-interval): must be more than 0"),
            (vec![], vec![pw, ("keepalive-warning-timeout", "2")], "at least 5 seconds"),
            (vec![], vec![pw, ("keepalive-critical-timeout", "60")], "must be longer than keepalive-warning-timeout"),
            (vec![], vec![pw, ("backend-heartbeat-timeout", "10")], "must be longer than backend-heartbeat-interval"),
            (vec![], vec![pw, ("name", "web-1"), ("subscriptions", "linux,entity:db-1")], "subscriptions (from --subscriptions): \"entity:db-1\" is another agent's entity subscription"),
            (vec![], vec![pw, ("retry-min", "5m")], "retry-min (from --retry-min): is longer than retry-max"),
            (vec![], vec![pw, ("retry-multiplier", "0.5")], "retry-multiplier (from --retry-multiplier): \"0.5\" is not a number from 1 to 100"),
            (vec![], vec![pw, ("cache-max-events", "0")], "cache-max-events"),
            (vec![], vec![pw, ("api-port", "99999")], "api-port (from --api-port): \"99999\" is not a port number"),
            (vec![], vec![pw, ("name", "bad name")], "name (from --name): \"bad name\" is not a valid name"),
            (vec![], vec![pw, ("namespace", "")], "namespace (from --namespace): is required"),
            (vec![], vec![pw, ("labels", "a")], "labels (from --labels): \"a\" is not key=value"),
            (vec![], vec![pw, ("insecure-skip-tls-verify", "yes")], "is not true or false"),
            (vec![], vec![pw, ("log-level", "loud")], "log-level (from --log-level): \"loud\" is not a level"),
            (vec![], vec![], "password (from defaults): not set and there is no client certificate"),
            (vec![], vec![("backend-url", "wss://b:8081"), cert], "key-file (from --cert-file): cert-file is set but key-file is not"),
            (vec![], vec![("backend-url", "wss://b:8081"), key], "cert-file (from --key-file): key-file is set but cert-file is not"),
            (vec![], vec![("backend-url", "ws://b:8081"), cert, key], "cert-file (from --cert-file): a client certificate is presented only over wss://, and ws://b:8081 is ws://"),
            (vec![], vec![pw, ("trusted-ca-file", "/nonexistent/ca.pem")], "trusted-ca-file (from --trusted-ca-file): /nonexistent/ca.pem: cannot read"),
            (vec![], vec![pw, ("trusted-ca-file", &cafile.1), ("insecure-skip-tls-verify", "true")], "insecure-skip-tls-verify (from --insecure-skip-tls-verify): contradicts trusted-ca-file"),
        ];
        for (env, f, want) in cases {
            let e = resolve(None, &env, &f).unwrap_err();
            assert!(e.contains(want), "{f:?}: {e}");
        }
        // A client certificate replaces the password, and is checked at start.
        let ok = resolve(
            None,
            &[],
            &[
                ("backend-url", "wss://b:8081"),
                cert,
                key,
                (cafile.0, &cafile.1),
            ],
        )
        .unwrap();
        assert!(ok.uses_client_cert());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&leaf.key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = resolve(None, &[], &[("backend-url", "wss://b:8081"), cert, key]).unwrap_err();
        assert!(
            e.starts_with("key-file (from --key-file): ") && e.contains("chmod 600"),
            "{e}"
        );
    }

    #[test]
    fn durations_take_sensus_seconds_and_units() {
        assert_eq!(parse_seconds("k", "20").unwrap(), Duration::from_secs(20));
        assert_eq!(parse_seconds("k", "2m").unwrap(), Duration::from_secs(120));
        assert_eq!(
            parse_seconds("k", "250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert!(parse_seconds("k", "-1").is_err());
        assert!(parse_seconds("k", "").is_err());
    }

    #[test]
    fn sensu_agent_variables_and_keys_are_read_or_refused_with_a_reason() {
        // /etc/default/sensu-agent as Sensu's docs write it.
        let c = resolve(
            None,
            &[
                ("SENSU_BACKEND_URL", "ws://a:8081 ws://b:8081"),
                ("SENSU_NAME", "legacy-1"),
                ("SENSU_SUBSCRIPTIONS", "linux,web"),
                (
                    "SENSU_LABELS",
                    r#"{"region": "us-east-1", "type": "website"}"#,
                ),
                ("SENSU_PASSWORD", "pw"),
                ("SENSU_EVENTS_RATE_LIMIT", "20.5"),
                ("SENSU_DETECT_CLOUD_PROVIDER", "true"),
                ("SENSU_DISCOVER_PROCESSES", "true"),
                ("SENSU_AGENT_MANAGED_ENTITY", "true"),
                ("SENSU_STATSD_DISABLE", "true"),
                ("WARD_AGENT_NAME", "own-wins"),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(c.backend_urls.len(), 2);
        assert_eq!(c.name, "own-wins");
        assert_eq!(c.subscriptions, ["linux", "web"]);
        assert_eq!(
            c.labels.get("region").map(String::as_str),
            Some("us-east-1")
        );
        assert_eq!(c.events_rate_limit, 20.5);
        assert_eq!(
            (
                c.events_burst_limit,
                c.assets_rate_limit,
                c.assets_burst_limit
            ),
            (10, 1.39, 100)
        );
        assert!(c.detect_cloud_provider && c.agent_managed_entity);
        assert_eq!(
            c.labels.get("sensu.io/managed_by").map(String::as_str),
            Some("sensu-agent")
        );
        assert_eq!(c.ignored.len(), 1, "{:?}", c.ignored);
        assert!(
            c.ignored[0]
                .starts_with("discover-processes (from $SENSU_DISCOVER_PROCESSES) is ignored"),
            "{:?}",
            c.ignored
        );
        let base = [("password", "pw"), ("name", "a")];
        for (key, value, want) in [
            (
                "allow-list",
                "/etc/sensu/allow.yml",
                "allow-list (from --allow-list): /etc/sensu/allow.yml: cannot read: No such file",
            ),
            (
                "keepalive-timeout",
                "120",
                "rename it keepalive-warning-timeout",
            ),
            ("require-fips", "true", "Ward has no FIPS mode"),
            (
                "events-rate-limit",
                "-1",
                "is not a number of events a second",
            ),
            (
                "assets-burst-limit",
                "0",
                "is not a whole number of 1 or more",
            ),
            ("max-session-length", "10ms", "is under a second"),
            ("labels", "{\"a\": [1]}", "is not a string"),
        ] {
            let mut f = base.to_vec();
            f.push((key, value));
            let e = resolve(None, &[], &f).unwrap_err();
            assert!(e.contains(want), "{key}: {e}");
        }
        let c = resolve(
            None,
            &[],
            &[
                ("password", "pw"),
                ("name", "a"),
                ("max-session-length", "1h"),
                ("disable-assets", "true"),
            ],
        )
        .unwrap();
        assert_eq!(c.max_session_length, Some(Duration::from_secs(3600)));
        assert!(c.disable_assets);
        // SENSU_ is shared with plugins and sensuctl: an unknown one is left alone; an
        // unknown WARD_AGENT_ one is refused.
        let names = |n: &[&str]| n.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert!(
            ward_types::settings::check_env_names(&SCHEMA, &[], names(&["SENSU_API_KEY"])).is_ok()
        );
        assert!(
            ward_types::settings::check_env_names(&SCHEMA, &[], names(&["WARD_AGENT_NAM"]))
                .is_err()
        );
    }
}
