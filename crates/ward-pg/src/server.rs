//! A PostgreSQL data directory and the server running on it: who owns it, whether a
//! postmaster runs (postmaster.pid), where it listens, how to reload it, and which
//! certificate it really serves.

use crate::error::{Error, Result};
use crate::wire::{self, SslAnswer};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A data directory, checked to be one.
#[derive(Debug, Clone)]
pub struct DataDir {
    pub path: PathBuf,
    pub uid: u32,
    pub gid: u32,
}

impl DataDir {
    pub fn open(path: &Path) -> Result<Self> {
        if !path.join("PG_VERSION").is_file() {
            return Err(Error::invalid(
                format!("--pgdata {}", path.display()),
                "is not a PostgreSQL data directory (no PG_VERSION); pass the directory `SHOW data_directory` prints",
            ));
        }
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, "read", e))?;
        Ok(DataDir {
            path: path.to_path_buf(),
            uid: meta.uid(),
            gid: meta.gid(),
        })
    }

    /// The owner's user name, from /etc/passwd (the cluster's bootstrap superuser is
    /// normally named after it).
    pub fn owner_name(&self) -> Option<String> {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2].parse::<u32>().ok() == Some(self.uid)).then(|| f[0].to_string())
        })
    }

    /// The running postmaster, if any.
    pub fn postmaster(&self) -> Option<Postmaster> {
        let text = std::fs::read_to_string(self.path.join("postmaster.pid")).ok()?;
        let lines: Vec<&str> = text.lines().collect();
        let pid: i32 = lines.first()?.trim().parse().ok()?;
        let alive = rustix::process::Pid::from_raw(pid)
            .map(|p| rustix::process::test_kill_process(p).is_ok())
            .unwrap_or(false);
        if !alive {
            return None;
        }
        Some(Postmaster {
            pid,
            port: lines
                .get(3)
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or(5432),
            listen: lines
                .get(5)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        })
    }
}

/// A running server.
#[derive(Debug, Clone)]
pub struct Postmaster {
    pub pid: i32,
    pub port: u16,
    /// The first entry of listen_addresses, as postmaster.pid records it.
    pub listen: Option<String>,
}

impl Postmaster {
    /// Asks the server to re-read its configuration (SIGHUP, what `pg_ctl reload` and
    /// `SELECT pg_reload_conf()` do). Every ssl setting takes effect on reload: no restart.
    pub fn reload(&self) -> Result<()> {
        let pid = rustix::process::Pid::from_raw(self.pid)
            .ok_or_else(|| Error::invalid("postmaster.pid", "bad pid"))?;
        rustix::process::kill_process(pid, rustix::process::Signal::HUP).map_err(|e| {
            Error::invalid(
                format!("reload of PostgreSQL (pid {})", self.pid),
                format!("cannot signal: {e}; run as the server's owner or root"),
            )
        })
    }

    /// Where to reach it over TCP for a probe.
    pub fn tcp_address(&self) -> Option<String> {
        let l = self.listen.as_deref()?;
        Some(match l {
            "*" | "0.0.0.0" => "127.0.0.1".to_string(),
            "::" => "::1".to_string(),
            other => other.to_string(),
        })
    }

    /// The SHA-256 fingerprint of the certificate the server presents now (None when it
    /// answers N to SSLRequest).
    pub fn served_fingerprint(&self) -> Result<Option<String>> {
        let addr = self.tcp_address().ok_or_else(|| {
            Error::invalid(
                "listen_addresses",
                "the server does not listen on TCP, so what it serves cannot be checked",
            )
        })?;
        served_leaf_fingerprint(&addr, self.port)
    }

    /// Polls until the server serves `fingerprint`, for up to `timeout`.
    pub fn wait_for_fingerprint(
        &self,
        fingerprint: &str,
        timeout: Duration,
    ) -> Result<(bool, Option<String>)> {
        let start = Instant::now();
        loop {
            let seen = self.served_fingerprint()?;
            if seen.as_deref() == Some(fingerprint) {
                return Ok((true, seen));
            }
            if start.elapsed() >= timeout {
                return Ok((false, seen));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Connects, negotiates TLS, and returns the leaf's SHA-256 fingerprint (colon hex).
pub fn served_leaf_fingerprint(addr: &str, port: u16) -> Result<Option<String>> {
    let opts = crate::probe::ProbeOptions {
        host: addr.to_string(),
        port,
        hostaddr: None,
        sslmode: crate::tls::SslMode::Require,
        root_cert: None,
        client_cert: None,
        warning: Duration::ZERO,
        critical: Duration::ZERO,
        plaintext_login: None,
        timeout: Duration::from_secs(5),
    };
    let mut sock = crate::probe::connect_tcp(&opts)?;
    if wire::ssl_request(&mut sock).map_err(|e| Error::connect(addr, e.to_string()))?
        == SslAnswer::NoTls
    {
        return Ok(None);
    }
    let hs = crate::probe::handshake(&mut sock, &opts.host, None)?;
    Ok(hs
        .chain
        .first()
        .map(|leaf| ward_io::text::hex_colon(aws_sha256(leaf).as_ref())))
}

fn aws_sha256(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// The value of `name` in a postgresql.conf text (the last uncommented assignment wins, as
/// in PostgreSQL), unquoted.
pub fn conf_setting(text: &str, name: &str) -> Option<String> {
    let mut value = None;
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('#') {
            continue;
        }
        let Some((k, v)) = l
            .split_once('=')
            .or_else(|| l.split_once(char::is_whitespace))
        else {
            continue;
        };
        if !k.trim().eq_ignore_ascii_case(name) {
            continue;
        }
        let v = v.trim();
        let v = if let Some(rest) = v.strip_prefix('\'') {
            let mut out = String::new();
            let mut chars = rest.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '\'' {
                    if chars.peek() == Some(&'\'') {
                        out.push('\'');
                        chars.next();
                    } else {
                        break;
                    }
                } else {
                    out.push(c);
                }
            }
            out
        } else {
            v.split('#').next().unwrap_or_default().trim().to_string()
        };
        value = Some(v);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_assignment_wins_and_quotes_are_removed() {
        let text = "ssl = off\n#ssl_cert_file = 'x'\nssl_cert_file = 'server.crt'  # comment\nssl = on\nssl_key_file='it''s.key'\n";
        assert_eq!(conf_setting(text, "ssl").as_deref(), Some("on"));
        assert_eq!(
            conf_setting(text, "ssl_cert_file").as_deref(),
            Some("server.crt")
        );
        assert_eq!(
            conf_setting(text, "ssl_key_file").as_deref(),
            Some("it's.key")
        );
        assert_eq!(conf_setting(text, "ssl_ca_file"), None);
    }
}
