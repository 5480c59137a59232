//! libpq connection parameters: a connection string (key=value or a `postgresql://` URL),
//! then the `PG*` environment, then libpq's defaults (including the files under
//! `~/.postgresql/`), in that order of precedence. Only the first host of a host list is used.

use crate::error::{Error, Result};
use crate::tls::SslMode;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The parameters Ward acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnParams {
    pub host: String,
    pub hostaddr: Option<String>,
    pub port: u16,
    pub dbname: String,
    pub user: String,
    pub password: Option<String>,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    pub sslcert: Option<PathBuf>,
    pub sslkey: Option<PathBuf>,
    pub sslcrl: Option<PathBuf>,
    pub application_name: Option<String>,
    pub connect_timeout: Option<u64>,
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
    let first = hostport.split(',').next().unwrap_or_default();
    let (host, port) = if let Some(r) = first.strip_prefix('[') {
        match r.split_once(']') {
            Some((h, p)) => (h.to_string(), p.strip_prefix(':').map(str::to_string)),
            None => return Err(Error::invalid("connection URL", "unterminated [IPv6] host")),
        }
    } else {
        match first.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.to_string())),
            None => (first.to_string(), None),
        }
    };
    if !host.is_empty() {
        out.insert("host".into(), percent_decode(&host)?);
    }
    if let Some(p) = port.filter(|p| !p.is_empty()) {
        out.insert("port".into(), p);
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

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// Resolves a connection string with the environment (`env`, usually `std::env::var`) and
/// libpq's defaults.
pub fn resolve(dsn: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<ConnParams> {
    let map = parse_dsn(dsn)?;
    let get = |key: &str, var: &str| {
        map.get(key)
            .cloned()
            .or_else(|| env(var))
            .filter(|v| !v.is_empty())
    };
    let default_file = |name: &str| {
        home()
            .map(|h| h.join(".postgresql").join(name))
            .filter(|p| p.exists())
    };
    let host = get("host", "PGHOST").unwrap_or_else(|| {
        if Path::new("/var/run/postgresql").is_dir() {
            "/var/run/postgresql".into()
        } else {
            "localhost".into()
        }
    });
    let port = match get("port", "PGPORT") {
        Some(p) => p
            .parse()
            .map_err(|_| Error::invalid("port", format!("invalid port number {p:?}")))?,
        None => 5432,
    };
    let user = get("user", "PGUSER")
        .or_else(|| env("USER"))
        .unwrap_or_else(|| "postgres".into());
    let sslmode = match get("sslmode", "PGSSLMODE") {
        Some(m) => m
            .parse()
            .map_err(|e: String| Error::invalid("sslmode", e))?,
        None => SslMode::Prefer,
    };
    Ok(ConnParams {
        dbname: get("dbname", "PGDATABASE").unwrap_or_else(|| user.clone()),
        hostaddr: get("hostaddr", "PGHOSTADDR"),
        password: get("password", "PGPASSWORD"),
        sslrootcert: get("sslrootcert", "PGSSLROOTCERT")
            .map(PathBuf::from)
            .or_else(|| default_file("root.crt")),
        sslcert: get("sslcert", "PGSSLCERT")
            .map(PathBuf::from)
            .or_else(|| default_file("postgresql.crt")),
        sslkey: get("sslkey", "PGSSLKEY")
            .map(PathBuf::from)
            .or_else(|| default_file("postgresql.key")),
        sslcrl: get("sslcrl", "PGSSLCRL")
            .map(PathBuf::from)
            .or_else(|| default_file("root.crl")),
        application_name: get("application_name", "PGAPPNAME"),
        connect_timeout: match get("connect_timeout", "PGCONNECT_TIMEOUT") {
            Some(t) => {
                Some(t.parse().map_err(|_| {
                    Error::invalid("connect_timeout", format!("invalid value {t:?}"))
                })?)
            }
            None => None,
        },
        host,
        port,
        user,
        sslmode,
    })
}

/// Reads a client private key under libpq's rule: a key owned by root may be 0640, any other
/// key must have no group or other access (0600).
pub fn read_client_key(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, "read private key", e))?;
    let mode = meta.mode() & 0o777;
    let bad = if meta.uid() == 0 {
        mode & 0o037 != 0
    } else {
        mode & 0o077 != 0
    };
    if bad {
        return Err(Error::invalid(
            format!("private key file {}", path.display()),
            format!(
                "has group or world access (mode {mode:04o}); libpq refuses it: fix with chmod 600 {}",
                path.display()
            ),
        ));
    }
    std::fs::read(path).map_err(|e| Error::io(path, "read private key", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
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
    }

    #[test]
    fn the_dsn_wins_over_the_environment() {
        let env = |k: &str| match k {
            "PGSSLMODE" => Some("verify-full".to_string()),
            "PGUSER" => Some("sensu".to_string()),
            "PGHOST" => Some("envhost".to_string()),
            _ => None,
        };
        let p = resolve("host=dsnhost", &env).unwrap();
        assert_eq!(p.host, "dsnhost");
        assert_eq!(p.user, "sensu");
        assert_eq!(p.sslmode, SslMode::VerifyFull);
        assert_eq!(p.dbname, "sensu");
        assert_eq!(resolve("host=h", &no_env).unwrap().port, 5432);
        assert!(resolve("sslmode=verify_full", &no_env).is_err());
    }
}
