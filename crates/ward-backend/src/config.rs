//! The backend's configuration: flags > environment (`WARD_BACKEND_*`) > `backend.yml` >
//! defaults, with the guides' key names. Unknown keys and bad values are refused at start
//! with a message naming the key and where it came from. The layering itself is
//! [`ward_types::settings`], shared with the agent. `SENSU_BACKEND_*` variables are read
//! as aliases of `WARD_BACKEND_*` (Ward's win), and sensu-backend's keys that Ward does not
//! implement are refused with a reason or ignored with a warning ([`sensu_keys`]).

pub mod sensu_keys;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use ward_types::settings::{Schema, Settings};

pub use ward_types::settings::{load_env_file, ConfigError};

/// Every key `backend.yml` accepts.
pub const KEYS: &[&str] = &[
    "api-listen-address",
    "api-url",
    "agent-host",
    "agent-port",
    "dashboard-host",
    "dashboard-port",
    "state-dir",
    "cache-dir",
    "cert-file",
    "key-file",
    "trusted-ca-file",
    "dashboard-cert-file",
    "dashboard-key-file",
    "agent-auth-cert-file",
    "agent-auth-key-file",
    "agent-auth-trusted-ca-file",
    "agent-auth-crl-urls",
    "agent-auth-fail-open",
    "agent-auth-session-max",
    "ca-dir",
    "log-level",
    "access-token-ttl",
    "tls-handshake-timeout",
    "http-header-timeout",
    "max-connections",
    "allow-expired-certificate",
    "deregistration-handler",
];

/// `backend.yml`'s keys and the `WARD_BACKEND_` environment.
pub const SCHEMA: Schema = Schema {
    keys: KEYS,
    map_keys: &[],
    env_prefix: "WARD_BACKEND_",
    alias_prefix: Some("SENSU_BACKEND_"),
    alias_strict: true,
    foreign: sensu_keys::SENSU_KEYS,
};

/// The backend's settings, typed.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    pub api_listen_address: SocketAddr,
    pub api_url: String,
    pub agent_host: String,
    pub agent_port: u16,
    pub dashboard_host: String,
    pub dashboard_port: u16,
    pub state_dir: PathBuf,
    /// Where the runtime assets of handlers, mutators and filters are unpacked (Sensu's
    /// key; default `<state-dir>/cache`).
    pub cache_dir: PathBuf,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub trusted_ca_file: Option<PathBuf>,
    pub dashboard_cert_file: Option<PathBuf>,
    pub dashboard_key_file: Option<PathBuf>,
    pub agent_auth_cert_file: Option<PathBuf>,
    pub agent_auth_key_file: Option<PathBuf>,
    pub agent_auth_trusted_ca_file: Option<PathBuf>,
    pub agent_auth_crl_urls: Vec<String>,
    /// With agent mTLS: accept a client certificate whose revocation status no CRL or OCSP
    /// source could answer (default false: such a certificate is refused).
    pub agent_auth_fail_open: bool,
    /// How long a session authenticated by a client certificate lasts before the agent is
    /// made to reconnect (and its certificate is checked again). Ward's key; default 1h.
    pub agent_auth_session_max: std::time::Duration,
    /// `ca-dir`: the CA directory this backend holds (ca.pem, ca-key.pem, revoked.json):
    /// certificates are revoked through the API, and the CRLs of `agent-auth-crl-urls`
    /// that are files re-signed.
    pub ca_dir: Option<PathBuf>,
    pub log_level: String,
    /// How long an access token lives (Ward's own key; Sensu's is fixed at 15 minutes).
    pub access_token_ttl: std::time::Duration,
    /// How long a TLS handshake may take on any port (Ward's key; default 10 s).
    pub tls_handshake_timeout: std::time::Duration,
    /// How long a request's headers may take to arrive, and a kept-alive connection may
    /// wait for its next request (Ward's key; default 30 s).
    pub http_header_timeout: std::time::Duration,
    /// Connections open at once across the API, dashboard and agent ports (Ward's key;
    /// 0, the default: the open-file limit less 256).
    pub max_connections: usize,
    /// Serve a certificate that has expired or is not valid yet (Ward's key; default false:
    /// such a certificate stops the start).
    pub allow_expired_certificate: bool,
    /// The handler told when an agent that names none deregisters (Sensu's key).
    pub deregistration_handler: String,
    /// sensu-backend keys that were set and are ignored, one warning line each for the log
    /// at start (`KEY (from SOURCE) is ignored: REASON`).
    pub ignored: Vec<String>,
}

impl BackendConfig {
    /// Whether the API and agent ports serve TLS.
    pub fn tls(&self) -> bool {
        self.cert_file.is_some()
    }
}

/// A duration key of at least 100 ms.
fn timeout(s: &Settings, key: &str, default_secs: u64) -> Result<std::time::Duration, ConfigError> {
    let d = s
        .parse(key, |v| {
            ward_io::parse_duration(key, v).map_err(|e| e.to_string())
        })?
        .unwrap_or(std::time::Duration::from_secs(default_secs));
    if d < std::time::Duration::from_millis(100) {
        return Err(s.error(key, format!("{d:?} is too short; give at least 100ms")));
    }
    Ok(d)
}

/// Resolves the configuration from a file (optional), the environment, and flags.
pub fn resolve(
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    flags: &BTreeMap<String, String>,
) -> Result<BackendConfig, ConfigError> {
    let flags: Vec<(String, String)> = flags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let s = Settings::resolve(&SCHEMA, file, env, &flags)?;
    let api: SocketAddr = s
        .parse("api-listen-address", |v| {
            v.parse().map_err(|_| {
                format!("{v:?} is not HOST:PORT (for example [::]:8080 or 127.0.0.1:8080)")
            })
        })?
        .unwrap_or_else(|| "[::]:8080".parse().expect("static address"));
    let tls = s.path("cert-file").is_some();
    let state_dir = s
        .path("state-dir")
        .unwrap_or_else(|| PathBuf::from("/var/lib/ward"));
    let cfg = BackendConfig {
        api_listen_address: api,
        api_url: s.text("api-url").unwrap_or_else(|| {
            format!(
                "{}://localhost:{}",
                if tls { "https" } else { "http" },
                api.port()
            )
        }),
        agent_host: s.text("agent-host").unwrap_or_else(|| "[::]".into()),
        agent_port: s.port("agent-port", 8081)?,
        dashboard_host: s.text("dashboard-host").unwrap_or_else(|| "[::]".into()),
        dashboard_port: s.port("dashboard-port", 3000)?,
        state_dir: state_dir.clone(),
        cache_dir: s.path("cache-dir").unwrap_or_else(|| state_dir.join("cache")),
        cert_file: s.path("cert-file"),
        key_file: s.path("key-file"),
        trusted_ca_file: s.path("trusted-ca-file"),
        dashboard_cert_file: s.path("dashboard-cert-file"),
        dashboard_key_file: s.path("dashboard-key-file"),
        agent_auth_cert_file: s.path("agent-auth-cert-file"),
        agent_auth_key_file: s.path("agent-auth-key-file"),
        agent_auth_trusted_ca_file: s.path("agent-auth-trusted-ca-file"),
        agent_auth_crl_urls: s.list("agent-auth-crl-urls"),
        ca_dir: s.path("ca-dir"),
        agent_auth_fail_open: s.boolean("agent-auth-fail-open", false)?,
        agent_auth_session_max: s
            .parse("agent-auth-session-max", |v| {
                ward_io::parse_duration("agent-auth-session-max", v).map_err(|e| e.to_string())
            })?
            .unwrap_or(std::time::Duration::from_secs(3600))
            .max(std::time::Duration::from_secs(1)),
        log_level: s.text("log-level").unwrap_or_else(|| "info".into()),
        access_token_ttl: s
            .parse("access-token-ttl", |v| {
                ward_io::parse_duration("access-token-ttl", v).map_err(|e| e.to_string())
            })?
            .unwrap_or(std::time::Duration::from_secs(15 * 60)),
        tls_handshake_timeout: timeout(&s, "tls-handshake-timeout", 10)?,
        http_header_timeout: timeout(&s, "http-header-timeout", 30)?,
        max_connections: s
            .parse("max-connections", |v| {
                v.parse::<usize>()
                    .map_err(|_| format!("{v:?} is not a whole number of connections (0: derived from the open-file limit)"))
            })?
            .unwrap_or(0),
        allow_expired_certificate: s.boolean("allow-expired-certificate", false)?,
        deregistration_handler: s.text("deregistration-handler").unwrap_or_default(),
        ignored: s.ignored().to_vec(),
    };
    if !["panic", "fatal", "error", "warn", "info", "debug", "trace"]
        .contains(&cfg.log_level.as_str())
    {
        return Err(s.error(
            "log-level",
            format!(
                "{:?} is not a level; use error, warn, info, debug or trace",
                cfg.log_level
            ),
        ));
    }
    for (a, b) in [
        ("cert-file", "key-file"),
        ("dashboard-cert-file", "dashboard-key-file"),
        ("agent-auth-cert-file", "agent-auth-key-file"),
    ] {
        match (s.path(a).is_some(), s.path(b).is_some()) {
            (true, false) => {
                return Err(ward_types::settings::config_error(
                    b,
                    s.source(a),
                    format!("{a} is set but {b} is not: TLS needs both"),
                ))
            }
            (false, true) => {
                return Err(ward_types::settings::config_error(
                    a,
                    s.source(b),
                    format!("{b} is set but {a} is not: TLS needs both"),
                ))
            }
            _ => {}
        }
    }
    // Every file key: readable, bounded, and PEM of the right kind, named in the error
    // (a missing trusted-ca-file was ignored before).
    use ward_types::settings::PemKind;
    for (key, kind) in [
        ("cert-file", PemKind::Certificates),
        ("key-file", PemKind::PrivateKey),
        ("trusted-ca-file", PemKind::Certificates),
        ("dashboard-cert-file", PemKind::Certificates),
        ("dashboard-key-file", PemKind::PrivateKey),
        ("agent-auth-cert-file", PemKind::Certificates),
        ("agent-auth-key-file", PemKind::PrivateKey),
        ("agent-auth-trusted-ca-file", PemKind::Certificates),
    ] {
        s.check_pem_file(key, kind)?;
    }
    if cfg.dashboard_cert_file.is_some() && !tls {
        return Err(s.error(
            "dashboard-cert-file",
            "the dashboard cannot serve TLS while the API does not; set cert-file and key-file too",
        ));
    }
    if let Some(u) = s.text("api-url") {
        if tls && u.starts_with("http://") {
            return Err(s.error(
                "api-url",
                "must be https:// once cert-file and key-file are set",
            ));
        }
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_environment_beat_file_beat_defaults() {
        let d = std::env::temp_dir().join(format!("ward-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let f = d.join("backend.yml");
        std::fs::write(&f, "api-listen-address: \"127.0.0.1:9000\"\nagent-port: 9001\nlog-level: debug\nstate-dir: /tmp/x\n").unwrap();
        let env = |k: &str| (k == "WARD_BACKEND_AGENT_PORT").then(|| "9002".to_string());
        let mut flags = BTreeMap::new();
        flags.insert("log-level".to_string(), "warn".to_string());
        let c = resolve(Some(&f), &env, &flags).unwrap();
        assert_eq!(c.api_listen_address.port(), 9000);
        assert_eq!(c.agent_port, 9002);
        assert_eq!(c.log_level, "warn");
        assert_eq!(c.dashboard_port, 3000);
        std::fs::write(&f, "api-listen-adress: x\n").unwrap();
        let e = resolve(Some(&f), &|_| None, &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("api-listen-adress (from ") && e.contains("unknown key"),
            "{e}"
        );
        std::fs::write(&f, "agent-port: eighty\n").unwrap();
        assert!(resolve(Some(&f), &|_| None, &BTreeMap::new())
            .unwrap_err()
            .to_string()
            .contains("not a port number"));
        std::fs::write(&f, "cert-file: /x.pem\n").unwrap();
        assert!(resolve(Some(&f), &|_| None, &BTreeMap::new())
            .unwrap_err()
            .to_string()
            .contains("TLS needs both"));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn agent_auth_fail_open_is_off_unless_set() {
        let c = resolve(None, &|_| None, &BTreeMap::new()).unwrap();
        assert!(!c.agent_auth_fail_open);
        let env = |k: &str| (k == "WARD_BACKEND_AGENT_AUTH_FAIL_OPEN").then(|| "true".to_string());
        assert!(
            resolve(None, &env, &BTreeMap::new())
                .unwrap()
                .agent_auth_fail_open
        );
        let env = |k: &str| (k == "WARD_BACKEND_AGENT_AUTH_FAIL_OPEN").then(|| "maybe".to_string());
        let e = resolve(None, &env, &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "agent-auth-fail-open (from $WARD_BACKEND_AGENT_AUTH_FAIL_OPEN): \"maybe\" is not true or false"
        );
    }

    /// sensu-backend start's keys: Sensu Go 6.12's backend/cmd/start.go and
    /// backend/config.go, the 6.14 backend reference (commercial keys too), and 7.0's.
    const SENSU_BACKEND_START_KEYS: &[&str] = &[
        "access-token-expiry",
        "agent-auth-cert-file",
        "agent-auth-crl-urls",
        "agent-auth-key-file",
        "agent-auth-trusted-ca-file",
        "agent-burst-limit",
        "agent-host",
        "agent-port",
        "agent-rate-limit",
        "agent-serve-wait-time",
        "agent-write-timeout",
        "annotations",
        "api-listen-address",
        "api-request-limit",
        "api-serve-wait-time",
        "api-url",
        "api-write-timeout",
        "assets-burst-limit",
        "assets-rate-limit",
        "cache-dir",
        "cert-file",
        "dashboard-cert-file",
        "dashboard-host",
        "dashboard-key-file",
        "dashboard-port",
        "dashboard-write-timeout",
        "debug",
        "default-silenced-expiry-time",
        "deregistration-handler",
        "disable-platform-metrics",
        "enable-cert-revocation-check",
        "event-log-buffer-size",
        "event-log-buffer-wait",
        "event-log-file",
        "event-log-parallel-encoders",
        "eventd-buffer-size",
        "eventd-workers",
        "insecure-skip-tls-verify",
        "jwt-private-key-file",
        "jwt-public-key-file",
        "keepalived-buffer-size",
        "keepalived-workers",
        "key-file",
        "labels",
        "log-level",
        "log-millisecond-timestamps",
        "max-silenced-expiry-time-allowed",
        "metrics-refresh-interval",
        "pipelined-buffer-size",
        "pipelined-workers",
        "platform-metrics-log-file",
        "platform-metrics-logging-interval",
        "refresh-token-expiry",
        "require-fips",
        "state-dir",
        "trusted-ca-file",
        "etcd-advertise-client-urls",
        "etcd-cert-file",
        "etcd-cipher-suites",
        "etcd-client-cert-auth",
        "etcd-client-urls",
        "etcd-discovery",
        "etcd-discovery-srv",
        "etcd-election-timeout",
        "etcd-heartbeat-interval",
        "etcd-initial-advertise-peer-urls",
        "etcd-initial-cluster",
        "etcd-initial-cluster-state",
        "etcd-initial-cluster-token",
        "etcd-key-file",
        "etcd-client-log-level",
        "etcd-listen-client-urls",
        "etcd-listen-peer-urls",
        "etcd-log-level",
        "etcd-max-request-bytes",
        "etcd-name",
        "etcd-peer-cert-file",
        "etcd-peer-client-cert-auth",
        "etcd-peer-key-file",
        "etcd-peer-trusted-ca-file",
        "etcd-quota-backend-bytes",
        "etcd-trusted-ca-file",
        "etcd-unsafe-no-fsync",
        "no-embed-etcd",
        "etcd-client-username",
        "etcd-client-password",
        "name",
        "pg-dsn",
        "event-cache-write-limit",
        "disable-event-cache",
    ];

    #[test]
    fn every_sensu_backend_key_is_implemented_or_in_the_table_once() {
        for k in SENSU_BACKEND_START_KEYS {
            let n = KEYS.iter().filter(|x| *x == k).count()
                + SCHEMA.foreign.iter().filter(|f| f.key == *k).count();
            assert_eq!(n, 1, "{k}: implemented or in sensu_keys, exactly once");
        }
    }

    #[test]
    fn sensu_backend_variables_are_aliases_and_ward_wins() {
        let env = |k: &str| match k {
            "SENSU_BACKEND_API_LISTEN_ADDRESS" => Some("127.0.0.1:9100".to_string()),
            "SENSU_BACKEND_LOG_LEVEL" => Some("debug".to_string()),
            "WARD_BACKEND_LOG_LEVEL" => Some("warn".to_string()),
            "SENSU_BACKEND_STATE_DIR" => Some("/tmp/sensu-state".to_string()),
            _ => None,
        };
        let c = resolve(None, &env, &BTreeMap::new()).unwrap();
        assert_eq!(c.api_listen_address.port(), 9100);
        assert_eq!(c.log_level, "warn");
        assert_eq!(c.state_dir, PathBuf::from("/tmp/sensu-state"));
        assert!(c.ignored.is_empty());
        let env = |k: &str| (k == "SENSU_BACKEND_AGENT_PORT").then(|| "x".to_string());
        let e = resolve(None, &env, &BTreeMap::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "agent-port (from $SENSU_BACKEND_AGENT_PORT): \"x\" is not a port number"
        );
    }

    #[test]
    fn unsupported_sensu_keys_are_refused_and_tuning_knobs_warned() {
        let d = std::env::temp_dir().join(format!("ward-cfg-sensu-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let f = d.join("backend.yml");
        // Sensu's documented example values.
        std::fs::write(
            &f,
            "eventd-workers: 100\nagent-write-timeout: 30\napi-write-timeout: 15s\n\
             assets-rate-limit: 1.39\nlabels:\n  region: us-east-1\n\
             insecure-skip-tls-verify: false\nenable-cert-revocation-check: true\n\
             event-log-buffer-wait: 10ms\n",
        )
        .unwrap();
        let c = resolve(Some(&f), &|_| None, &BTreeMap::new()).unwrap();
        let keys: Vec<&str> = c
            .ignored
            .iter()
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "eventd-workers",
                "agent-write-timeout",
                "api-write-timeout",
                "assets-rate-limit",
                "labels",
                "event-log-buffer-wait"
            ]
        );
        assert!(
            c.ignored[0].contains("is ignored: Ward's event path"),
            "{:?}",
            c.ignored
        );
        for (text, want) in [
            ("etcd-listen-client-urls: http://127.0.0.1:2379\n", "etcd-listen-client-urls (from FILE): not supported by Ward: Ward's store is SQLite"),
            ("insecure-skip-tls-verify: true\n", "insecure-skip-tls-verify (from FILE): not supported by Ward: Ward's backend never skips"),
            ("access-token-expiry: 15m\n", "use access-token-ttl"),
            ("eventd-workers: lots\n", "eventd-workers (from FILE): \"lots\" is not a whole number"),
            ("etcd-listen-client-url: x\n", "unknown key; known keys: api-listen-address"),
        ] {
            std::fs::write(&f, text).unwrap();
            let e = resolve(Some(&f), &|_| None, &BTreeMap::new())
                .unwrap_err()
                .to_string();
            let want = want.replace("FILE", &f.display().to_string());
            assert!(e.starts_with(&want) || e.contains(&want), "{text:?}: {e}");
        }
        let mut flags = BTreeMap::new();
        flags.insert("etcd-name".to_string(), "a".to_string());
        let e = resolve(None, &|_| None, &flags).unwrap_err().to_string();
        assert!(
            e.starts_with("etcd-name (from --etcd-name): not supported by Ward"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
