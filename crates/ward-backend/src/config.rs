//! The backend's configuration: flags > environment (`WARD_BACKEND_*`) > `backend.yml` >
//! defaults, with the guides' key names. Unknown keys and bad values are refused at start
//! with a message naming the key and where it came from.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Every key `backend.yml` accepts.
pub const KEYS: &[&str] = &[
    "api-listen-address",
    "api-url",
    "agent-host",
    "agent-port",
    "dashboard-host",
    "dashboard-port",
    "state-dir",
    "cert-file",
    "key-file",
    "trusted-ca-file",
    "insecure-skip-tls-verify",
    "dashboard-cert-file",
    "dashboard-key-file",
    "agent-auth-cert-file",
    "agent-auth-key-file",
    "agent-auth-trusted-ca-file",
    "agent-auth-crl-urls",
    "log-level",
    "access-token-ttl",
];

/// A configuration error: the key, where its value came from, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{key} (from {source_name}): {reason}")]
pub struct ConfigError {
    pub key: String,
    pub source_name: String,
    pub reason: String,
}

fn err(key: &str, source_name: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        source_name: source_name.into(),
        reason: reason.into(),
    }
}

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
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub trusted_ca_file: Option<PathBuf>,
    pub insecure_skip_tls_verify: bool,
    pub dashboard_cert_file: Option<PathBuf>,
    pub dashboard_key_file: Option<PathBuf>,
    pub agent_auth_cert_file: Option<PathBuf>,
    pub agent_auth_key_file: Option<PathBuf>,
    pub agent_auth_trusted_ca_file: Option<PathBuf>,
    pub agent_auth_crl_urls: Vec<String>,
    pub log_level: String,
    /// How long an access token lives (Ward's own key; Sensu's is fixed at 15 minutes).
    pub access_token_ttl: std::time::Duration,
}

impl BackendConfig {
    /// Whether the API and agent ports serve TLS.
    pub fn tls(&self) -> bool {
        self.cert_file.is_some()
    }
}

/// Reads `KEY=VALUE` lines (an env file such as /etc/default/ward-backend) into the process
/// environment; variables already set win, as with systemd's EnvironmentFile.
pub fn load_env_file(path: &Path) -> Result<usize, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read env file: {e}", path.display()))?;
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let l = l.strip_prefix("export ").unwrap_or(l);
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| format!("{}:{}: expected KEY=VALUE", path.display(), i + 1))?;
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "{}:{}: {k:?} is not a variable name",
                path.display(),
                i + 1
            ));
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
            .unwrap_or(v);
        if std::env::var_os(k).is_none() {
            // Single-threaded at this point: start-up, before any runtime exists.
            std::env::set_var(k, v);
            n += 1;
        }
    }
    Ok(n)
}

fn yaml_scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Array(a) => Some(
            a.iter()
                .filter_map(yaml_scalar)
                .collect::<Vec<_>>()
                .join(","),
        ),
        serde_json::Value::Null => None,
        serde_json::Value::Object(_) => None,
    }
}

/// Resolves the configuration from a file (optional), the environment, and flags.
pub fn resolve(
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    flags: &BTreeMap<String, String>,
) -> Result<BackendConfig, ConfigError> {
    let mut values: BTreeMap<String, (String, String)> = BTreeMap::new();
    if let Some(path) = file {
        let src = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| err("config-file", &src, format!("cannot read: {e}")))?;
        let doc: serde_json::Value = if text.trim().is_empty() {
            serde_json::Value::Object(Default::default())
        } else {
            serde_saphyr::from_str(&text).map_err(|e| {
                err(
                    "config-file",
                    &src,
                    format!(
                        "malformed YAML: {}",
                        e.to_string().lines().next().unwrap_or_default()
                    ),
                )
            })?
        };
        let map = match doc {
            serde_json::Value::Object(m) => m,
            serde_json::Value::Null => Default::default(),
            _ => return Err(err("config-file", &src, "must be a mapping of key: value")),
        };
        for (k, v) in map {
            if !KEYS.contains(&k.as_str()) {
                return Err(err(
                    &k,
                    &src,
                    format!("unknown key; known keys: {}", KEYS.join(", ")),
                ));
            }
            if let Some(s) = yaml_scalar(&v) {
                values.insert(k, (s, src.clone()));
            } else {
                return Err(err(&k, &src, "must be a single value or a list"));
            }
        }
    }
    for k in KEYS {
        let var = format!("WARD_BACKEND_{}", k.to_uppercase().replace('-', "_"));
        if let Some(v) = env(&var) {
            values.insert(k.to_string(), (v, format!("${var}")));
        }
    }
    for (k, v) in flags {
        if !KEYS.contains(&k.as_str()) {
            return Err(err(k, "flags", "unknown flag"));
        }
        values.insert(k.clone(), (v.clone(), format!("--{k}")));
    }
    let get = |k: &str| values.get(k).map(|(v, s)| (v.as_str(), s.as_str()));
    let path = |k: &str| {
        get(k)
            .filter(|(v, _)| !v.is_empty())
            .map(|(v, _)| PathBuf::from(v))
    };
    let port = |k: &str, default: u16| -> Result<u16, ConfigError> {
        match get(k) {
            Some((v, s)) => v
                .parse()
                .map_err(|_| err(k, s, format!("{v:?} is not a port number"))),
            None => Ok(default),
        }
    };
    let boolean = |k: &str| -> Result<bool, ConfigError> {
        match get(k) {
            Some((v, s)) => match v {
                "true" => Ok(true),
                "false" | "" => Ok(false),
                _ => Err(err(k, s, format!("{v:?} is not true or false"))),
            },
            None => Ok(false),
        }
    };
    let api: SocketAddr = match get("api-listen-address") {
        Some((v, s)) => v.parse().map_err(|_| {
            err(
                "api-listen-address",
                s,
                format!("{v:?} is not HOST:PORT (for example [::]:8080 or 127.0.0.1:8080)"),
            )
        })?,
        None => "[::]:8080".parse().expect("static address"),
    };
    let tls = path("cert-file").is_some();
    let cfg = BackendConfig {
        api_listen_address: api,
        api_url: get("api-url")
            .map(|(v, _)| v.to_string())
            .unwrap_or_else(|| {
                format!(
                    "{}://localhost:{}",
                    if tls { "https" } else { "http" },
                    api.port()
                )
            }),
        agent_host: get("agent-host")
            .map(|(v, _)| v.to_string())
            .unwrap_or_else(|| "[::]".into()),
        agent_port: port("agent-port", 8081)?,
        dashboard_host: get("dashboard-host")
            .map(|(v, _)| v.to_string())
            .unwrap_or_else(|| "[::]".into()),
        dashboard_port: port("dashboard-port", 3000)?,
        state_dir: path("state-dir").unwrap_or_else(|| PathBuf::from("/var/lib/ward")),
        cert_file: path("cert-file"),
        key_file: path("key-file"),
        trusted_ca_file: path("trusted-ca-file"),
        insecure_skip_tls_verify: boolean("insecure-skip-tls-verify")?,
        dashboard_cert_file: path("dashboard-cert-file"),
        dashboard_key_file: path("dashboard-key-file"),
        agent_auth_cert_file: path("agent-auth-cert-file"),
        agent_auth_key_file: path("agent-auth-key-file"),
        agent_auth_trusted_ca_file: path("agent-auth-trusted-ca-file"),
        agent_auth_crl_urls: get("agent-auth-crl-urls")
            .map(|(v, _)| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default(),
        log_level: get("log-level")
            .map(|(v, _)| v.to_string())
            .unwrap_or_else(|| "info".into()),
        access_token_ttl: match get("access-token-ttl") {
            Some((v, s)) => ward_pki::parse_duration("access-token-ttl", v)
                .map_err(|e| err("access-token-ttl", s, e.to_string()))?,
            None => std::time::Duration::from_secs(15 * 60),
        },
    };
    let src = |k: &str| {
        get(k)
            .map(|(_, s)| s.to_string())
            .unwrap_or_else(|| "defaults".into())
    };
    if !["panic", "fatal", "error", "warn", "info", "debug", "trace"]
        .contains(&cfg.log_level.as_str())
    {
        return Err(err(
            "log-level",
            &src("log-level"),
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
        match (path(a).is_some(), path(b).is_some()) {
            (true, false) => {
                return Err(err(
                    b,
                    &src(a),
                    format!("{a} is set but {b} is not: TLS needs both"),
                ))
            }
            (false, true) => {
                return Err(err(
                    a,
                    &src(b),
                    format!("{b} is set but {a} is not: TLS needs both"),
                ))
            }
            _ => {}
        }
    }
    if cfg.dashboard_cert_file.is_some() && !tls {
        return Err(err(
            "dashboard-cert-file",
            &src("dashboard-cert-file"),
            "the dashboard cannot serve TLS while the API does not; set cert-file and key-file too",
        ));
    }
    if let Some(u) = get("api-url") {
        if tls && u.0.starts_with("http://") {
            return Err(err(
                "api-url",
                u.1,
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
}
