//! libpq connection parameters: a connection string (key=value or a `postgresql://` URL),
//! then the `PG*` environment, then libpq's defaults (including the files under
//! `~/.postgresql/` and `~/.pgpass`), in that order of precedence.
//!
//! [`resolve`] turns all of that into [`ConnParams`] once; [`crate::connect::connect`] acts
//! on them. Where Ward deliberately differs from libpq (docs/pg.md, "The libpq
//! environment"), it is always in the direction of refusing: a file that is named but
//! missing is an error, never a silent downgrade.

use crate::error::{Error, Result};
use crate::passfile::{self, PassfileCheck};
use crate::tls::SslMode;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where libpq looks for a server when no host is given (Debian's socket directory); used
/// only when it exists, else `localhost`.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// The parameters Ward acts on, resolved from the connection string, the environment and
/// the defaults. The default root certificate, client certificate and CRL
/// (`~/.postgresql/root.crt`, `postgresql.crt`, `root.crl`) are only filled in when the file
/// exists, so such a path that does not exist was named explicitly (an error when used).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnParams {
    /// The first host of the host list: a name, an IP, or a Unix socket directory; empty
    /// when only `hostaddr` was given. It is the name verify-full checks.
    pub host: String,
    /// Where to dial instead of resolving `host` (libpq's hostaddr).
    pub hostaddr: Option<String>,
    pub port: u16,
    /// The rest of a `host=a,b` list, tried in order when the first fails (libpq's failover).
    pub fallback_hosts: Vec<HostTarget>,
    pub dbname: String,
    pub user: String,
    /// A password given in the connection string or `PGPASSWORD`.
    pub password: Option<String>,
    /// The password file to consult for each host when no password is given; `None` when a
    /// password is given, the file does not exist, or it was ignored for its permissions
    /// (see `warnings`).
    pub passfile: Option<PathBuf>,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    pub sslcert: Option<PathBuf>,
    pub sslkey: Option<PathBuf>,
    pub sslcrl: Option<PathBuf>,
    /// A directory of CRL files (every file in it is read).
    pub sslcrldir: Option<PathBuf>,
    /// Send the host name as TLS SNI (libpq's sslsni, default on).
    pub sslsni: bool,
    pub ssl_min_protocol_version: TlsVersion,
    pub ssl_max_protocol_version: Option<TlsVersion>,
    pub application_name: Option<String>,
    /// Seconds allowed for each host's whole connection attempt; `Some(0)` waits forever;
    /// `None` is Ward's default of 10 s.
    pub connect_timeout: Option<u64>,
    /// Command-line options sent to the server at startup (libpq's `options`, `PGOPTIONS`).
    pub options: Option<String>,
    pub target_session_attrs: SessionAttrs,
    pub channel_binding: ChannelBinding,
    /// Things libpq would print as warnings (an ignored password file); already logged.
    pub warnings: Vec<String>,
}

/// One host of a host list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostTarget {
    pub host: String,
    pub hostaddr: Option<String>,
    pub port: u16,
}

impl HostTarget {
    /// A Unix-socket directory rather than a TCP host.
    pub fn is_socket(&self) -> bool {
        self.host.starts_with('/')
    }
}

impl std::fmt::Display for HostTarget {
    /// `host:port`, `host:port (hostaddr A)`, `A:port` or `DIR/.s.PGSQL.port`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_socket() {
            return write!(f, "{}/.s.PGSQL.{}", self.host, self.port);
        }
        match (&self.hostaddr, self.host.is_empty()) {
            (Some(a), true) => write!(f, "{a}:{}", self.port),
            (Some(a), false) => write!(f, "{}:{} (hostaddr {a})", self.host, self.port),
            (None, _) => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

impl ConnParams {
    /// The first host and then the fallbacks, in the order they are tried.
    pub fn targets(&self) -> Vec<HostTarget> {
        let mut all = vec![HostTarget {
            host: self.host.clone(),
            hostaddr: self.hostaddr.clone(),
            port: self.port,
        }];
        all.extend(self.fallback_hosts.iter().cloned());
        all
    }

    /// The server(s) for messages: `host:port`, several joined by `, `.
    pub fn describe_target(&self) -> String {
        self.targets()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The TLS versions Ward can speak: rustls (and so Ward) never speaks below TLS 1.2.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// libpq's default minimum.
    #[default]
    Tls12,
    Tls13,
}

impl TlsVersion {
    /// Parses libpq's spelling for the parameter `what` (for the message).
    fn parse(what: &str, v: &str) -> Result<Self> {
        match v {
            "TLSv1.2" => Ok(TlsVersion::Tls12),
            "TLSv1.3" => Ok(TlsVersion::Tls13),
            "TLSv1" | "TLSv1.1" => Err(Error::invalid(
                what,
                format!("{v} is not supported: rustls (and so Ward) never speaks a TLS version below 1.2; use TLSv1.2 or TLSv1.3"),
            )),
            _ => Err(Error::invalid(
                what,
                format!("invalid value {v:?}; use TLSv1.2 or TLSv1.3"),
            )),
        }
    }

    /// The rustls protocol version.
    pub fn rustls(self) -> &'static rustls::SupportedProtocolVersion {
        match self {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        }
    }
}

impl std::fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        })
    }
}

/// libpq's target_session_attrs, as far as tokio-postgres can check them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SessionAttrs {
    #[default]
    Any,
    ReadWrite,
    ReadOnly,
}

/// libpq's channel_binding (SCRAM bound to the TLS channel).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChannelBinding {
    Disable,
    /// libpq's default.
    #[default]
    Prefer,
    Require,
}

/// Connection options libpq knows; those Ward does not act on are accepted and ignored, an
/// unknown one is an error (as in libpq).
const KNOWN: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "sslmode",
    "requiressl",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "gssencmode",
    "krbsrvname",
    "gsslib",
    "service",
    "target_session_attrs",
    "channel_binding",
];

/// Parses a connection string into its key/value pairs.
pub fn parse_dsn(dsn: &str) -> Result<BTreeMap<String, String>> {
    let t = dsn.trim();
    let map = if t.starts_with("postgresql://") || t.starts_with("postgres://") {
        parse_url(t)?
    } else {
        parse_key_values(t)?
    };
    for k in map.keys() {
        if !KNOWN.contains(&k.as_str()) {
            return Err(Error::invalid(
                "connection string",
                format!("invalid connection option {k:?}"),
            ));
        }
    }
    Ok(map)
}

fn parse_key_values(s: &str) -> Result<BTreeMap<String, String>> {
    let bad = |r: &str| Error::invalid("connection string", r.to_string());
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(bad(&format!(
                "missing \"=\" after {key:?}; write key=value pairs or a postgresql:// URL"
            )));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(bad("unterminated quoted string")),
                    },
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err(bad("unterminated quoted string")),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        out.insert(key, value);
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .ok_or_else(|| Error::invalid("connection URL", "bad %-escape"))?;
            out.push(
                u8::from_str_radix(hex, 16).map_err(|_| {
                    Error::invalid("connection URL", format!("bad %-escape %{hex}"))
                })?,
            );
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| Error::invalid("connection URL", "not UTF-8 after %-decoding"))
}

fn parse_url(s: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let rest = s.split_once("://").map(|(_, r)| r).unwrap_or(s);
    let (rest, query) = match rest.split_once('?') {
        Some((a, b)) => (a, Some(b)),
        None => (rest, None),
    };
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (rest, None),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if let Some(u) = userinfo {
        let (user, pass) = match u.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (u, None),
        };
        if !user.is_empty() {
            out.insert("user".into(), percent_decode(user)?);
        }
        if let Some(p) = pass {
            out.insert("password".into(), percent_decode(p)?);
        }
    }
    // libpq: `host1:port1,host2:port2`; a missing port is an empty entry of the port list.
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    for entry in hostport.split(',') {
        let (host, port) = if let Some(r) = entry.strip_prefix('[') {
            match r.split_once(']') {
                Some((h, p)) => (h.to_string(), p.strip_prefix(':').unwrap_or_default()),
                None => return Err(Error::invalid("connection URL", "unterminated [IPv6] host")),
            }
        } else {
            match entry.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p),
                None => (entry.to_string(), ""),
            }
        };
        hosts.push(percent_decode(&host)?);
        ports.push(port.to_string());
    }
    if hosts.iter().any(|h| !h.is_empty()) {
        out.insert("host".into(), hosts.join(","));
    }
    if ports.iter().any(|p| !p.is_empty()) {
        out.insert("port".into(), ports.join(","));
    }
    if let Some(db) = path.filter(|p| !p.is_empty()) {
        out.insert("dbname".into(), percent_decode(db)?);
    }
    if let Some(q) = query {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                Error::invalid("connection URL", format!("parameter {pair:?} has no value"))
            })?;
            out.insert(percent_decode(k)?, percent_decode(v)?);
        }
    }
    Ok(out)
}

/// The home directory libpq uses: `$HOME` when set, else the password database's entry for
/// the effective user.
fn home(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(h) = env("HOME").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(h));
    }
    let uid = rustix::process::geteuid().as_raw().to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 5 && f[2] == uid).then(|| PathBuf::from(f[5]))
    })
}

/// Splits a comma-separated libpq list (`host=a,b`).
fn list(v: Option<&str>) -> Vec<String> {
    v.map(|s| s.split(',').map(|e| e.trim().to_string()).collect())
        .unwrap_or_default()
}

fn parse_port(p: &str) -> Result<u16> {
    if p.is_empty() {
        return Ok(5432);
    }
    p.parse()
        .ok()
        .filter(|&n| n != 0)
        .ok_or_else(|| Error::invalid("port", format!("invalid port number {p:?}")))
}

/// Resolves a connection string with the environment (`env`, usually `std::env::var`) and
/// libpq's defaults. Fails on an unknown option, a malformed value, a host list whose
/// `hostaddr` or `port` lists do not match it, a service name (Ward reads no service file),
/// and protocol versions below TLS 1.2. A password file with group or world access is
/// ignored with a warning (in `warnings` and logged), as libpq does.
pub fn resolve(dsn: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<ConnParams> {
    let map = parse_dsn(dsn)?;
    let get = |key: &str, var: &str| {
        map.get(key)
            .cloned()
            .or_else(|| env(var))
            .filter(|v| !v.is_empty())
    };
    let home = home(env);
    let default_file = |name: &str| {
        home.as_ref()
            .map(|h| h.join(".postgresql").join(name))
            .filter(|p| p.exists())
    };
    if let Some(s) = get("service", "PGSERVICE") {
        return Err(Error::invalid(
            "service",
            format!("Ward reads no connection service file (service {s:?}); put the service's parameters in the connection string or PG* variables"),
        ));
    }
    if get("requirepeer", "PGREQUIREPEER").is_some() {
        return Err(Error::invalid(
            "requirepeer",
            "is not supported by Ward; remove it (use a TCP connection with sslmode=verify-full to authenticate the server)",
        ));
    }
    if get("gssencmode", "PGGSSENCMODE").as_deref() == Some("require") {
        return Err(Error::invalid(
            "gssencmode",
            "Ward has no GSSAPI encryption; use gssencmode=disable and sslmode=verify-full",
        ));
    }

    // The host list, and hostaddr and port lists that match it (libpq's rules).
    let hosts = list(get("host", "PGHOST").as_deref());
    let hostaddrs = list(get("hostaddr", "PGHOSTADDR").as_deref());
    let ports = list(get("port", "PGPORT").as_deref());
    let count = hosts.len().max(hostaddrs.len()).max(1);
    if !hosts.is_empty() && !hostaddrs.is_empty() && hosts.len() != hostaddrs.len() {
        return Err(Error::invalid(
            "hostaddr",
            format!(
                "could not match {} host names to {} hostaddr values; give one hostaddr per host",
                hosts.len(),
                hostaddrs.len()
            ),
        ));
    }
    if ports.len() > 1 && ports.len() != count {
        return Err(Error::invalid(
            "port",
            format!(
                "could not match {} port numbers to {count} hosts; give one port, or one per host",
                ports.len()
            ),
        ));
    }
    let default_host = || {
        if Path::new(DEFAULT_SOCKET_DIR).is_dir() {
            DEFAULT_SOCKET_DIR.to_string()
        } else {
            "localhost".to_string()
        }
    };
    let mut targets = Vec::with_capacity(count);
    for i in 0..count {
        let hostaddr = hostaddrs.get(i).filter(|a| !a.is_empty()).cloned();
        if let Some(a) = &hostaddr {
            if a.parse::<std::net::IpAddr>().is_err() {
                return Err(Error::invalid(
                    "hostaddr",
                    format!("{a:?} is not an IP address; put names in host"),
                ));
            }
        }
        let host = match hosts.get(i).filter(|h| !h.is_empty()) {
            Some(h) => h.clone(),
            None if hostaddr.is_some() => String::new(),
            None => default_host(),
        };
        let port = parse_port(ports.get(i).or(ports.first()).map_or("", String::as_str))?;
        targets.push(HostTarget {
            host,
            hostaddr,
            port,
        });
    }
    let first = targets.remove(0);

    let user = get("user", "PGUSER")
        .or_else(|| env("USER"))
        .unwrap_or_else(|| "postgres".into());
    let dbname = get("dbname", "PGDATABASE").unwrap_or_else(|| user.clone());
    let password = get("password", "PGPASSWORD");
    let mut warnings = Vec::new();
    let passfile = match &password {
        Some(_) => None,
        None => {
            let path = get("passfile", "PGPASSFILE")
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".pgpass")));
            match path.as_deref().map(passfile::check) {
                Some(PassfileCheck::Usable) => path,
                Some(PassfileCheck::Ignored(warning)) => {
                    tracing::warn!("{warning}");
                    warnings.push(warning);
                    None
                }
                Some(PassfileCheck::Missing) | None => None,
            }
        }
    };

    let sslmode = match get("sslmode", "PGSSLMODE") {
        Some(m) => m
            .parse()
            .map_err(|e: String| Error::invalid("sslmode", e))?,
        // libpq's deprecated requiressl=1 means sslmode=require when no sslmode is given.
        None if get("requiressl", "PGREQUIRESSL").as_deref() == Some("1") => SslMode::Require,
        None => SslMode::Prefer,
    };
    let ssl_min_protocol_version = match get("ssl_min_protocol_version", "PGSSLMINPROTOCOLVERSION")
    {
        Some(v) => TlsVersion::parse("ssl_min_protocol_version", &v)?,
        None => TlsVersion::Tls12,
    };
    let ssl_max_protocol_version = match get("ssl_max_protocol_version", "PGSSLMAXPROTOCOLVERSION")
    {
        Some(v) => Some(TlsVersion::parse("ssl_max_protocol_version", &v)?),
        None => None,
    };
    if ssl_max_protocol_version.is_some_and(|max| max < ssl_min_protocol_version) {
        return Err(Error::invalid(
            "ssl_max_protocol_version",
            format!(
                "invalid SSL protocol version range: the maximum ({}) is below the minimum ({ssl_min_protocol_version}); raise ssl_max_protocol_version or lower ssl_min_protocol_version",
                ssl_max_protocol_version.unwrap_or_default()
            ),
        ));
    }
    let sslsni = match get("sslsni", "PGSSLSNI").as_deref() {
        None | Some("1") => true,
        Some("0") => false,
        Some(v) => {
            return Err(Error::invalid(
                "sslsni",
                format!("invalid value {v:?}; use 1 or 0"),
            ))
        }
    };
    let target_session_attrs = match get("target_session_attrs", "PGTARGETSESSIONATTRS").as_deref()
    {
        None | Some("any") => SessionAttrs::Any,
        Some("read-write") => SessionAttrs::ReadWrite,
        Some("read-only") => SessionAttrs::ReadOnly,
        Some(v @ ("primary" | "standby" | "prefer-standby")) => {
            return Err(Error::invalid(
                "target_session_attrs",
                format!("{v:?} is not supported by Ward; use any, read-write or read-only"),
            ))
        }
        Some(v) => {
            return Err(Error::invalid(
                "target_session_attrs",
                format!("invalid value {v:?}; use any, read-write or read-only"),
            ))
        }
    };
    let channel_binding = match get("channel_binding", "PGCHANNELBINDING").as_deref() {
        None | Some("prefer") => ChannelBinding::Prefer,
        Some("disable") => ChannelBinding::Disable,
        Some("require") => ChannelBinding::Require,
        Some(v) => {
            return Err(Error::invalid(
                "channel_binding",
                format!("invalid value {v:?}; use disable, prefer or require"),
            ))
        }
    };
    let connect_timeout = match get("connect_timeout", "PGCONNECT_TIMEOUT") {
        // libpq: zero or negative waits forever; 1 is taken as 2 (its minimum).
        Some(t) => match t.parse::<i64>() {
            Ok(n) if n <= 0 => Some(0),
            Ok(n) => Some(n.max(2) as u64),
            Err(_) => {
                return Err(Error::invalid(
                    "connect_timeout",
                    format!("invalid integer value {t:?} (seconds)"),
                ))
            }
        },
        None => None,
    };
    Ok(ConnParams {
        host: first.host,
        hostaddr: first.hostaddr,
        port: first.port,
        fallback_hosts: targets,
        dbname,
        user,
        password,
        passfile,
        sslmode,
        sslrootcert: get("sslrootcert", "PGSSLROOTCERT")
            .map(PathBuf::from)
            .or_else(|| default_file("root.crt")),
        sslcert: get("sslcert", "PGSSLCERT")
            .map(PathBuf::from)
            .or_else(|| default_file("postgresql.crt")),
        // Only used with a certificate; a missing key is then an error naming this path.
        sslkey: get("sslkey", "PGSSLKEY")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".postgresql/postgresql.key"))),
        // The default CRL only applies when no CRL directory is named (libpq).
        sslcrl: get("sslcrl", "PGSSLCRL").map(PathBuf::from).or_else(|| {
            get("sslcrldir", "PGSSLCRLDIR")
                .is_none()
                .then(|| default_file("root.crl"))
                .flatten()
        }),
        sslcrldir: get("sslcrldir", "PGSSLCRLDIR").map(PathBuf::from),
        sslsni,
        ssl_min_protocol_version,
        ssl_max_protocol_version,
        application_name: get("application_name", "PGAPPNAME")
            .or_else(|| map.get("fallback_application_name").cloned())
            .filter(|v| !v.is_empty()),
        connect_timeout,
        options: get("options", "PGOPTIONS"),
        target_session_attrs,
        channel_binding,
        warnings,
    })
}

/// Reads a client private key under libpq's rule (Ward's one rule,
/// `ward_io::files::check_private_key_mode`): a key owned by root may be 0640, any other key
/// must have no group or other access (0600).
pub fn read_client_key(path: &Path) -> Result<Vec<u8>> {
    Ok(ward_io::files::read_private_key_file(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// An environment with a fresh, empty HOME and the given variables, so no file of the
    /// machine running the tests is read.
    struct Env {
        home: tempfile::TempDir,
        vars: Vec<(String, String)>,
    }

    impl Env {
        fn new(vars: &[(&str, &str)]) -> Self {
            Env {
                home: tempfile::tempdir().unwrap(),
                vars: vars
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            }
        }

        fn get(&self, k: &str) -> Option<String> {
            if k == "HOME" {
                return Some(self.home.path().display().to_string());
            }
            self.vars
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        }

        fn resolve(&self, dsn: &str) -> Result<ConnParams> {
            resolve(dsn, &|k| self.get(k))
        }

        /// Writes `~/.postgresql/NAME` (or `~/NAME` for `.pgpass`) with `mode`.
        fn file(&self, name: &str, text: &str, mode: u32) -> PathBuf {
            let p = if name.starts_with('.') {
                self.home.path().join(name)
            } else {
                let d = self.home.path().join(".postgresql");
                std::fs::create_dir_all(&d).unwrap();
                d.join(name)
            };
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        }
    }

    fn message(r: Result<ConnParams>) -> String {
        r.expect_err("should fail").to_string()
    }

    #[test]
    fn key_value_strings_parse_like_libpq() {
        let m = parse_dsn("host=db.example.com port=5433 dbname='sensu events' password='it\\'s'")
            .unwrap();
        assert_eq!(m["host"], "db.example.com");
        assert_eq!(m["dbname"], "sensu events");
        assert_eq!(m["password"], "it's");
        assert!(parse_dsn("host=a bogus=1").is_err());
        assert!(parse_dsn("host").is_err());
    }

    #[test]
    fn urls_parse_like_libpq() {
        let m = parse_dsn("postgresql://sensu:my%20pass@postgres.example.com:5432/sensu_events?sslmode=verify-full&sslrootcert=/etc/ward/ca.pem").unwrap();
        assert_eq!(m["user"], "sensu");
        assert_eq!(m["password"], "my pass");
        assert_eq!(m["host"], "postgres.example.com");
        assert_eq!(m["port"], "5432");
        assert_eq!(m["dbname"], "sensu_events");
        assert_eq!(m["sslmode"], "verify-full");
        let v6 = parse_dsn("postgresql://[::1]:6000/x").unwrap();
        assert_eq!(v6["host"], "::1");
        let many = parse_dsn("postgresql://a.example:5433,[::1],c.example:5435/x").unwrap();
        assert_eq!(many["host"], "a.example,::1,c.example");
        assert_eq!(many["port"], "5433,,5435");
    }

    #[test]
    fn the_dsn_wins_over_the_environment() {
        let env = Env::new(&[
            ("PGSSLMODE", "verify-full"),
            ("PGUSER", "sensu"),
            ("PGHOST", "envhost"),
        ]);
        let p = env.resolve("host=dsnhost").unwrap();
        assert_eq!(p.host, "dsnhost");
        assert_eq!(p.user, "sensu");
        assert_eq!(p.sslmode, SslMode::VerifyFull);
        assert_eq!(p.dbname, "sensu");
        assert_eq!(Env::new(&[]).resolve("host=h").unwrap().port, 5432);
        assert!(Env::new(&[]).resolve("sslmode=verify_full").is_err());
    }

    #[test]
    fn each_parameter_takes_the_dsn_then_the_environment_then_the_default() {
        let env = Env::new(&[
            ("PGAPPNAME", "env-app"),
            ("PGCONNECT_TIMEOUT", "7"),
            ("PGHOST", "env.example"),
            ("PGHOSTADDR", "10.0.0.7"),
            ("PGDATABASE", "env_db"),
            ("PGUSER", "env_user"),
            ("PGPASSWORD", "env-pw"),
            ("PGPORT", "6543"),
            ("USER", "login_name"),
        ]);
        let dsn = "application_name=dsn-app connect_timeout=3 host=dsn.example hostaddr=10.0.0.9 \
                   dbname=dsn_db user=dsn_user password=dsn-pw port=7654";
        let p = env.resolve(dsn).unwrap();
        assert_eq!(
            (
                p.application_name.as_deref(),
                p.connect_timeout,
                p.host.as_str(),
                p.hostaddr.as_deref(),
                p.dbname.as_str(),
                p.user.as_str(),
                p.password.as_deref(),
                p.port
            ),
            (
                Some("dsn-app"),
                Some(3),
                "dsn.example",
                Some("10.0.0.9"),
                "dsn_db",
                "dsn_user",
                Some("dsn-pw"),
                7654
            )
        );
        let p = env.resolve("").unwrap();
        assert_eq!(
            (
                p.application_name.as_deref(),
                p.connect_timeout,
                p.host.as_str(),
                p.hostaddr.as_deref(),
                p.dbname.as_str(),
                p.user.as_str(),
                p.password.as_deref(),
                p.port
            ),
            (
                Some("env-app"),
                Some(7),
                "env.example",
                Some("10.0.0.7"),
                "env_db",
                "env_user",
                Some("env-pw"),
                6543
            )
        );
        // Defaults: the user is the login name, the database the user, port 5432, no
        // password, no application name, Ward's own timeout.
        let p = Env::new(&[("USER", "login_name")])
            .resolve("host=h")
            .unwrap();
        assert_eq!(
            (
                p.application_name.as_deref(),
                p.connect_timeout,
                p.hostaddr.as_deref(),
                p.dbname.as_str(),
                p.user.as_str(),
                p.password.as_deref(),
                p.port
            ),
            (None, None, None, "login_name", "login_name", None, 5432)
        );
        // An empty value in the connection string hides the variable and means the
        // default, as in libpq.
        let p = env.resolve("user=''").unwrap();
        assert_eq!(p.user, "login_name");
        // fallback_application_name only when no application name is given.
        let p = Env::new(&[])
            .resolve("fallback_application_name=fb")
            .unwrap();
        assert_eq!(p.application_name.as_deref(), Some("fb"));
        let p = env.resolve("fallback_application_name=fb").unwrap();
        assert_eq!(p.application_name.as_deref(), Some("env-app"));
    }

    #[test]
    fn connect_timeout_follows_libpq() {
        let t = |v: &str| {
            Env::new(&[])
                .resolve(&format!("connect_timeout={v}"))
                .map(|p| p.connect_timeout)
        };
        assert_eq!(t("10").unwrap(), Some(10));
        assert_eq!(t("1").unwrap(), Some(2), "libpq's minimum is 2 s");
        assert_eq!(t("0").unwrap(), Some(0), "zero waits forever");
        assert_eq!(t("-5").unwrap(), Some(0));
        assert!(t("ten")
            .unwrap_err()
            .to_string()
            .contains("connect_timeout"));
    }

    #[test]
    fn a_host_list_is_tried_in_order_with_matching_hostaddrs_and_ports() {
        let env = Env::new(&[]);
        let p = env
            .resolve("host=a.example,b.example hostaddr=10.0.0.1,10.0.0.2 port=5433,5434")
            .unwrap();
        assert_eq!(
            p.targets(),
            vec![
                HostTarget {
                    host: "a.example".into(),
                    hostaddr: Some("10.0.0.1".into()),
                    port: 5433
                },
                HostTarget {
                    host: "b.example".into(),
                    hostaddr: Some("10.0.0.2".into()),
                    port: 5434
                },
            ]
        );
        assert_eq!(
            p.describe_target(),
            "a.example:5433 (hostaddr 10.0.0.1), b.example:5434 (hostaddr 10.0.0.2)"
        );
        // One port applies to every host; an empty port entry is 5432.
        let p = env.resolve("host=a,b port=6000").unwrap();
        assert_eq!(p.port, 6000);
        assert_eq!(p.fallback_hosts[0].port, 6000);
        let p = env.resolve("postgresql://a:6000,b/db").unwrap();
        assert_eq!((p.port, p.fallback_hosts[0].port), (6000, 5432));
        // hostaddr alone: the host name is empty and the address is dialled.
        let p = env.resolve("hostaddr=127.0.0.1").unwrap();
        assert_eq!(
            (p.host.as_str(), p.describe_target()),
            ("", "127.0.0.1:5432".into())
        );
        assert!(message(env.resolve("host=a,b hostaddr=10.0.0.1"))
            .contains("could not match 2 host names to 1 hostaddr values"));
        assert!(message(env.resolve("host=a,b,c port=1,2"))
            .contains("could not match 2 port numbers to 3 hosts"));
        assert!(message(env.resolve("hostaddr=db.example")).contains("not an IP address"));
        assert!(message(env.resolve("port=99999")).contains("invalid port number"));
    }

    #[test]
    fn tls_protocol_versions_default_to_1_2_and_refuse_older_ones() {
        let env = Env::new(&[("PGSSLMINPROTOCOLVERSION", "TLSv1.3")]);
        let p = Env::new(&[]).resolve("").unwrap();
        assert_eq!(
            (p.ssl_min_protocol_version, p.ssl_max_protocol_version),
            (TlsVersion::Tls12, None)
        );
        assert_eq!(
            env.resolve("").unwrap().ssl_min_protocol_version,
            TlsVersion::Tls13
        );
        assert_eq!(
            env.resolve("ssl_min_protocol_version=TLSv1.2")
                .unwrap()
                .ssl_min_protocol_version,
            TlsVersion::Tls12
        );
        let p = Env::new(&[("PGSSLMAXPROTOCOLVERSION", "TLSv1.2")])
            .resolve("")
            .unwrap();
        assert_eq!(p.ssl_max_protocol_version, Some(TlsVersion::Tls12));
        for old in ["TLSv1", "TLSv1.1"] {
            let m = message(Env::new(&[]).resolve(&format!("ssl_min_protocol_version={old}")));
            assert!(
                m.contains("never speaks a TLS version below 1.2") && m.contains(old),
                "{m}"
            );
        }
        assert!(
            message(Env::new(&[]).resolve("ssl_max_protocol_version=TLSv1.1"))
                .contains("below 1.2")
        );
        assert!(
            message(Env::new(&[]).resolve("ssl_min_protocol_version=tls1.2"))
                .contains("invalid value")
        );
        assert!(message(env.resolve("ssl_max_protocol_version=TLSv1.2"))
            .contains("invalid SSL protocol version range"));
    }

    #[test]
    fn default_files_are_used_only_when_they_exist_and_named_ones_always() {
        let env = Env::new(&[]);
        let p = env.resolve("").unwrap();
        assert_eq!(
            (&p.sslrootcert, &p.sslcert, &p.sslcrl),
            (&None, &None, &None)
        );
        let root = env.file("root.crt", "x", 0o644);
        let cert = env.file("postgresql.crt", "x", 0o644);
        let crl = env.file("root.crl", "x", 0o644);
        let p = env.resolve("").unwrap();
        assert_eq!(
            (p.sslrootcert, p.sslcert, p.sslcrl.clone()),
            (Some(root), Some(cert), Some(crl))
        );
        // The key path is always known, so a certificate without its key can be named.
        assert_eq!(
            p.sslkey,
            Some(env.home.path().join(".postgresql/postgresql.key"))
        );
        // A named file is kept even when it does not exist: using it is an error later.
        let p = env
            .resolve("sslrootcert=/nonexistent/ca.pem sslcrl=/nonexistent/crl.pem")
            .unwrap();
        assert_eq!(p.sslrootcert, Some(PathBuf::from("/nonexistent/ca.pem")));
        assert_eq!(p.sslcrl, Some(PathBuf::from("/nonexistent/crl.pem")));
        // PGSSLCRL names the CRL; a CRL directory replaces the default root.crl.
        let p = Env::new(&[("PGSSLCRL", "/etc/ward/crl.pem")])
            .resolve("")
            .unwrap();
        assert_eq!(p.sslcrl, Some(PathBuf::from("/etc/ward/crl.pem")));
        let p = env.resolve("sslcrldir=/etc/ward/crls").unwrap();
        assert_eq!(
            (p.sslcrl, p.sslcrldir),
            (None, Some("/etc/ward/crls".into()))
        );
    }

    #[test]
    fn the_password_file_is_consulted_only_without_a_password() {
        let env = Env::new(&[]);
        assert_eq!(env.resolve("").unwrap().passfile, None, "no ~/.pgpass");
        let pgpass = env.file(".pgpass", "*:*:*:*:pw\n", 0o600);
        assert_eq!(env.resolve("").unwrap().passfile, Some(pgpass.clone()));
        assert_eq!(env.resolve("password=given").unwrap().passfile, None);
        assert_eq!(
            Env::new(&[("PGPASSWORD", "given")])
                .resolve("")
                .unwrap()
                .passfile,
            None
        );
        // passfile wins over PGPASSFILE, which wins over ~/.pgpass.
        let other = env.file("other-pgpass", "*:*:*:*:pw\n", 0o600);
        let third = env.file("third-pgpass", "*:*:*:*:pw\n", 0o600);
        let with_var = Env {
            home: tempfile::tempdir().unwrap(),
            vars: vec![("PGPASSFILE".into(), other.display().to_string())],
        };
        assert_eq!(with_var.resolve("").unwrap().passfile, Some(other.clone()));
        assert_eq!(
            with_var
                .resolve(&format!("passfile={}", third.display()))
                .unwrap()
                .passfile,
            Some(third)
        );
    }

    #[test]
    fn a_password_file_with_group_or_world_access_is_ignored_with_a_warning() {
        let env = Env::new(&[]);
        let pgpass = env.file(".pgpass", "*:*:*:*:pw\n", 0o644);
        let p = env.resolve("").unwrap();
        assert_eq!(p.passfile, None);
        assert_eq!(p.warnings.len(), 1);
        assert!(
            p.warnings[0].contains(&format!(
                "password file \"{}\" has group or world access",
                pgpass.display()
            )),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn unsupported_libpq_features_are_refused_rather_than_ignored() {
        let env = Env::new(&[]);
        assert!(message(env.resolve("service=prod")).contains("service file"));
        assert!(message(Env::new(&[("PGSERVICE", "prod")]).resolve("")).contains("service"));
        assert!(message(env.resolve("requirepeer=postgres")).contains("requirepeer"));
        assert!(message(env.resolve("gssencmode=require")).contains("GSSAPI"));
        assert!(message(env.resolve("target_session_attrs=standby")).contains("not supported"));
        assert_eq!(
            env.resolve("target_session_attrs=read-write")
                .unwrap()
                .target_session_attrs,
            SessionAttrs::ReadWrite
        );
        assert_eq!(
            Env::new(&[("PGCHANNELBINDING", "require")])
                .resolve("")
                .unwrap()
                .channel_binding,
            ChannelBinding::Require
        );
        assert!(!env.resolve("sslsni=0").unwrap().sslsni);
        assert!(env.resolve("").unwrap().sslsni);
        assert_eq!(
            env.resolve("requiressl=1").unwrap().sslmode,
            SslMode::Require
        );
        assert_eq!(
            env.resolve("requiressl=1 sslmode=verify-full")
                .unwrap()
                .sslmode,
            SslMode::VerifyFull
        );
    }
}
