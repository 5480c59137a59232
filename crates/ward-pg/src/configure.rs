//! `ward pg configure`: TLS for a PostgreSQL server, done the way the guides mean it and
//! checked on the wire.
//!
//! - The certificate and key are copied into the data directory (never symlinked), owned by
//!   the data directory's owner, the key 0600 — the permissions PostgreSQL insists on.
//! - postgresql.conf gets one Ward-managed block at its end (later lines win in
//!   postgresql.conf, so the block must come last); pg_hba.conf gets one at its top (the
//!   first matching line wins), with reject rules before allow rules.
//! - A second run with the same arguments changes no byte.
//! - A running server is reloaded, never restarted (every ssl setting is reloadable since
//!   PostgreSQL 10), and then probed: PostgreSQL reports a successful reload even when it
//!   kept the old certificate, so Ward compares the fingerprint on the wire.

use crate::error::{Error, Result};
use crate::pair::{validate, ServerPair};
use crate::server::{DataDir, Postmaster};
use std::path::{Path, PathBuf};
use std::time::Duration;
use ward_io::files::{write_all, Overwrite, PlannedFile};

pub const CONF_BEGIN: &str =
    "# BEGIN ward-managed TLS settings (ward pg configure; edits inside this block are replaced)";
pub const CONF_END: &str = "# END ward-managed TLS settings";
pub const HBA_BEGIN: &str =
    "# BEGIN ward-managed rules (ward pg configure; edits inside this block are replaced)";
pub const HBA_END: &str = "# END ward-managed rules";

/// File names Ward uses inside the data directory.
pub const CERT_FILE: &str = "ward-server.crt";
pub const KEY_FILE: &str = "ward-server.key";
pub const CA_FILE: &str = "ward-ca.crt";
pub const CRL_FILE: &str = "ward-crl.pem";

/// `DB:USER[@CIDR]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HbaSpec {
    pub database: String,
    pub user: String,
    pub cidr: Option<String>,
}

impl HbaSpec {
    pub fn parse(flag: &str, s: &str, cidr_required: bool) -> Result<Self> {
        let bad = |r: &str| Error::invalid(format!("{flag} {s}"), r.to_string());
        let (dbuser, cidr) = match s.split_once('@') {
            Some((a, c)) => (a, Some(c.to_string())),
            None => (s, None),
        };
        let (database, user) = dbuser.split_once(':').ok_or_else(|| {
            bad("expected DB:USER[@CIDR], such as sensu_events:sensu@10.0.0.0/24")
        })?;
        if database.is_empty()
            || user.is_empty()
            || database.contains(char::is_whitespace)
            || user.contains(char::is_whitespace)
        {
            return Err(bad(
                "database and user must be non-empty and without spaces",
            ));
        }
        if let Some(c) = &cidr {
            let (addr, len) = c
                .split_once('/')
                .ok_or_else(|| bad("the address must be a CIDR such as 10.0.0.0/24 or ::/0"))?;
            let ip: std::net::IpAddr = addr
                .parse()
                .map_err(|_| bad("not an IP address before the '/'"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if len.parse::<u8>().ok().filter(|l| *l <= max).is_none() {
                return Err(bad("bad prefix length"));
            }
        } else if cidr_required {
            return Err(bad("a password rule needs an address: DB:USER@CIDR"));
        }
        Ok(HbaSpec {
            database: database.into(),
            user: user.into(),
            cidr,
        })
    }

    fn cidrs(&self) -> Vec<String> {
        match &self.cidr {
            Some(c) => vec![c.clone()],
            None => vec!["0.0.0.0/0".into(), "::/0".into()],
        }
    }
}

/// What `configure` is asked to do.
#[derive(Debug, Clone)]
pub struct ConfigureOptions {
    pub pgdata: PathBuf,
    pub config_file: Option<PathBuf>,
    pub hba_file: Option<PathBuf>,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: Option<PathBuf>,
    pub crl: Option<PathBuf>,
    /// "1.2" or "1.3".
    pub min_tls: String,
    pub require_cert: Vec<HbaSpec>,
    pub password: Vec<HbaSpec>,
    pub reject_superuser: bool,
    pub dry_run: bool,
}

/// What `configure` did (or, with `--dry-run`, would do).
#[derive(Debug)]
pub struct ConfigureOutcome {
    pub pair: ServerPair,
    pub changed: Vec<PathBuf>,
    pub diff: String,
    /// The running server, reloaded, and whether the new certificate is on the wire.
    pub server: ServerState,
}

#[derive(Debug)]
pub enum ServerState {
    DryRun,
    Stopped,
    Unchanged,
    /// Reloaded; whether the new certificate is served, and the fingerprint that is (None:
    /// the server answered N, no TLS).
    Reloaded {
        pid: i32,
        verified: bool,
        served: Option<String>,
    },
    /// Reloaded, but it listens on no TCP address Ward could probe.
    ReloadedUnverified {
        pid: i32,
        reason: String,
    },
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))
}

/// Removes a managed block (markers included) and returns the rest.
fn without_block(text: &str, begin: &str, end: &str) -> Result<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line == begin {
            if inside {
                return Err(Error::invalid(
                    "managed block",
                    format!("{begin:?} appears twice"),
                ));
            }
            inside = true;
            continue;
        }
        if line == end {
            inside = false;
            continue;
        }
        if !inside {
            out.push(line);
        }
    }
    if inside {
        return Err(Error::invalid(
            "managed block",
            format!("{begin:?} has no end marker; remove the partial block"),
        ));
    }
    let mut s = out.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    Ok(s)
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Plans the change, then (unless a dry run) applies it and reloads the server.
pub fn configure(o: &ConfigureOptions) -> Result<ConfigureOutcome> {
    let data = DataDir::open(&o.pgdata)?;
    let pair = validate(&o.cert, &o.key, o.ca.as_deref())?;
    if !o.require_cert.is_empty() && o.ca.is_none() {
        return Err(Error::invalid("--require-cert", "certificate authentication needs --ca (it becomes ssl_ca_file, which verifies client certificates)"));
    }
    let min_tls = match o.min_tls.as_str() {
        "1.2" | "TLSv1.2" => "TLSv1.2",
        "1.3" | "TLSv1.3" => "TLSv1.3",
        other => {
            return Err(Error::invalid(
                format!("--min-tls {other}"),
                "use 1.2 or 1.3",
            ))
        }
    };
    let conf_path = o
        .config_file
        .clone()
        .unwrap_or_else(|| data.path.join("postgresql.conf"));
    let hba_path = o
        .hba_file
        .clone()
        .unwrap_or_else(|| data.path.join("pg_hba.conf"));
    let conf_old = read_text(&conf_path)?;
    let hba_old = read_text(&hba_path)?;
    let in_data = |name: &str| data.path.join(name);
    let mut planned = vec![
        PlannedFile::public(in_data(CERT_FILE), pair.chain_pem.clone())
            .owned_by(data.uid, data.gid),
        PlannedFile::key(in_data(KEY_FILE), pair.key_pem.clone()).owned_by(data.uid, data.gid),
    ];
    if let Some(ca) = &o.ca {
        planned.push(
            PlannedFile::public(in_data(CA_FILE), ward_tls::read_pem_file(ca)?)
                .owned_by(data.uid, data.gid),
        );
    }
    if let Some(crl) = &o.crl {
        let bytes = ward_tls::read_crl_file(crl)?;
        // PostgreSQL refuses a bad CRL on reload and silently keeps its old TLS settings;
        // check it here: PEM, a CRL, signed by --ca.
        let what = format!("--crl {}", crl.display());
        if !String::from_utf8_lossy(&bytes).contains("BEGIN X509 CRL") {
            return Err(Error::invalid(
                what,
                "not a PEM CRL (ward pki crl writes one)",
            ));
        }
        for item in ward_pki::inspect::inspect_file(crl, o.ca.as_deref())? {
            match item {
                ward_pki::inspect::Inspected::RevocationList(c) => {
                    if let Some(ch) = c.chain.filter(|ch| !ch.ok) {
                        return Err(Error::invalid(what, ch.reason.unwrap_or_default()));
                    }
                }
                _ => return Err(Error::invalid(what, "holds something other than a CRL")),
            }
        }
        planned.push(PlannedFile::public(in_data(CRL_FILE), bytes).owned_by(data.uid, data.gid));
    }

    // postgresql.conf: the block last.
    let mut block = vec![CONF_BEGIN.to_string(), "ssl = on".into()];
    block.push(format!(
        "ssl_cert_file = {}",
        quote(&in_data(CERT_FILE).display().to_string())
    ));
    block.push(format!(
        "ssl_key_file = {}",
        quote(&in_data(KEY_FILE).display().to_string())
    ));
    block.push(format!(
        "ssl_ca_file = {}",
        quote(
            &o.ca
                .as_ref()
                .map(|_| in_data(CA_FILE).display().to_string())
                .unwrap_or_default()
        )
    ));
    block.push(format!(
        "ssl_crl_file = {}",
        quote(
            &o.crl
                .as_ref()
                .map(|_| in_data(CRL_FILE).display().to_string())
                .unwrap_or_default()
        )
    ));
    block.push(format!("ssl_min_protocol_version = {}", quote(min_tls)));
    block.push(CONF_END.to_string());
    let mut conf_new = without_block(&conf_old, CONF_BEGIN, CONF_END)?;
    conf_new.push_str(&block.join("\n"));
    conf_new.push('\n');

    // pg_hba.conf: the block first; rejects before allows.
    let mut rules = Vec::new();
    if o.reject_superuser {
        let su = data.owner_name().unwrap_or_else(|| "postgres".into());
        for cidr in ["0.0.0.0/0", "::/0"] {
            // `host` matches TLS and plaintext alike: the superuser gets in by neither.
            rules.push(format!("host all {su} {cidr} reject"));
        }
    }
    for spec in &o.require_cert {
        for cidr in spec.cidrs() {
            rules.push(format!(
                "hostssl {} {} {cidr} cert",
                spec.database, spec.user
            ));
        }
    }
    for spec in &o.password {
        for cidr in spec.cidrs() {
            rules.push(format!(
                "hostssl {} {} {cidr} scram-sha-256",
                spec.database, spec.user
            ));
        }
    }
    let hba_rest = without_block(&hba_old, HBA_BEGIN, HBA_END)?;
    let hba_new = if rules.is_empty() {
        hba_rest
    } else {
        format!("{HBA_BEGIN}\n{}\n{HBA_END}\n{hba_rest}", rules.join("\n"))
    };

    let keep_mode = |p: &Path| -> (u32, u32, u32) {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p)
            .map(|m| (m.mode() & 0o777, m.uid(), m.gid()))
            .unwrap_or((0o600, data.uid, data.gid))
    };
    let mut diff = String::new();
    for (path, old, new) in [
        (&conf_path, &conf_old, &conf_new),
        (&hba_path, &hba_old, &hba_new),
    ] {
        if old != new {
            let (mode, uid, gid) = keep_mode(path);
            planned.push(
                PlannedFile::public(path.clone(), new.clone().into_bytes())
                    .with_mode(mode)
                    .owned_by(uid, gid),
            );
            let name = path.display().to_string();
            diff.push_str(
                &similar::TextDiff::from_lines(old.as_str(), new.as_str())
                    .unified_diff()
                    .header(&name, &name)
                    .to_string(),
            );
        }
    }
    // Only what differs is written: a second run changes nothing.
    planned.retain(|f| {
        std::fs::read(&f.path)
            .map(|b| b != f.contents)
            .unwrap_or(true)
    });
    for f in &planned {
        if f.path.starts_with(&data.path)
            && !f.path.ends_with("postgresql.conf")
            && !f.path.ends_with("pg_hba.conf")
        {
            diff.push_str(&format!(
                "install {} ({} bytes, mode {:04o}, owner {}:{})\n",
                f.path.display(),
                f.contents.len(),
                f.mode,
                data.uid,
                data.gid
            ));
        }
    }
    let changed: Vec<PathBuf> = planned.iter().map(|f| f.path.clone()).collect();
    if o.dry_run {
        return Ok(ConfigureOutcome {
            pair,
            changed,
            diff,
            server: ServerState::DryRun,
        });
    }
    write_all(&planned, Overwrite::Allow)?;
    let server = match data.postmaster() {
        None => ServerState::Stopped,
        Some(_) if changed.is_empty() => ServerState::Unchanged,
        Some(pm) => reload_and_verify(&pm, &pair)?,
    };
    Ok(ConfigureOutcome {
        pair,
        changed,
        diff,
        server,
    })
}

/// Reloads and checks that the new certificate is what the server serves.
pub fn reload_and_verify(pm: &Postmaster, pair: &ServerPair) -> Result<ServerState> {
    pm.reload()?;
    if pm.tcp_address().is_none() {
        return Ok(ServerState::ReloadedUnverified {
            pid: pm.pid,
            reason: "the server listens on no TCP address (listen_addresses is empty)".into(),
        });
    }
    let (ok, served) =
        pm.wait_for_fingerprint(&pair.leaf.sha256_fingerprint, Duration::from_secs(10))?;
    Ok(ServerState::Reloaded {
        pid: pm.pid,
        verified: ok,
        served,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_blocks_are_replaced_not_duplicated() {
        let text = format!("a = 1\n{CONF_BEGIN}\nssl = on\n{CONF_END}\nb = 2\n");
        assert_eq!(
            without_block(&text, CONF_BEGIN, CONF_END).unwrap(),
            "a = 1\nb = 2\n"
        );
        assert!(without_block(&format!("{CONF_BEGIN}\nx\n"), CONF_BEGIN, CONF_END).is_err());
    }

    #[test]
    fn hba_specs_parse_and_bad_ones_say_why() {
        let s = HbaSpec::parse("--require-cert", "sensu_events:sensu@10.0.0.0/24", false).unwrap();
        assert_eq!(s.cidrs(), vec!["10.0.0.0/24"]);
        assert_eq!(
            HbaSpec::parse("--require-cert", "db:u", false)
                .unwrap()
                .cidrs()
                .len(),
            2
        );
        for bad in ["db", "db:u@10.0.0.1", "db:u@10.0.0.0/33", ":u"] {
            assert!(
                HbaSpec::parse("--require-cert", bad, false).is_err(),
                "{bad}"
            );
        }
        assert!(HbaSpec::parse("--password", "db:u", true).is_err());
    }
}
