//! `ward pg install-cert`: put a renewed certificate in place for a running PostgreSQL (a
//! certbot deploy hook), reload, and prove it is served — or put the old one back.

use crate::error::{Error, Result};
use crate::pair::validate;
use crate::server::{conf_setting, DataDir};
use std::path::{Path, PathBuf};
use std::time::Duration;
use ward_io::files::{write_all, Overwrite, PlannedFile};

#[derive(Debug)]
pub enum InstallOutcome {
    /// Installed into a stopped server's data directory.
    InstalledStopped { cert: PathBuf, key: PathBuf },
    /// Installed, reloaded, and served (fingerprint checked).
    Served {
        cert: PathBuf,
        key: PathBuf,
        pid: i32,
        fingerprint: String,
    },
}

/// Resolves `ssl_cert_file` / `ssl_key_file` from the configuration (relative paths are in
/// the data directory; PostgreSQL's defaults are server.crt and server.key).
pub fn target_paths(data: &DataDir, config_file: Option<&Path>) -> Result<(PathBuf, PathBuf)> {
    let conf = config_file
        .map(Path::to_path_buf)
        .unwrap_or_else(|| data.path.join("postgresql.conf"));
    let text = std::fs::read_to_string(&conf).map_err(|e| Error::io(&conf, "read", e))?;
    let resolve = |v: Option<String>, default: &str| {
        let p = PathBuf::from(
            v.filter(|s| !s.is_empty())
                .unwrap_or_else(|| default.to_string()),
        );
        if p.is_absolute() {
            p
        } else {
            data.path.join(p)
        }
    };
    Ok((
        resolve(conf_setting(&text, "ssl_cert_file"), "server.crt"),
        resolve(conf_setting(&text, "ssl_key_file"), "server.key"),
    ))
}

/// Installs `cert_chain` + `key` for the server on `pgdata`.
pub fn install_cert(
    cert_chain: &Path,
    key: &Path,
    pgdata: &Path,
    config_file: Option<&Path>,
    timeout: Duration,
) -> Result<InstallOutcome> {
    let data = DataDir::open(pgdata)?;
    let pair = validate(cert_chain, key, None)?;
    let (cert_path, key_path) = target_paths(&data, config_file)?;
    let previous: Vec<(PathBuf, Option<Vec<u8>>, u32)> = [(&cert_path, 0o644), (&key_path, 0o600)]
        .iter()
        .map(|(p, mode)| (p.to_path_buf(), std::fs::read(p).ok(), *mode))
        .collect();
    let planned = vec![
        PlannedFile::public(&cert_path, pair.chain_pem.clone()).owned_by(data.uid, data.gid),
        PlannedFile::key(&key_path, pair.key_pem.clone()).owned_by(data.uid, data.gid),
    ];
    write_all(&planned, Overwrite::Allow)?;
    let Some(pm) = data.postmaster() else {
        return Ok(InstallOutcome::InstalledStopped {
            cert: cert_path,
            key: key_path,
        });
    };
    // Any failure from here on (reload, probe) restores the previous pair below.
    let (served, seen) = match pm
        .reload()
        .and_then(|_| pm.wait_for_fingerprint(&pair.leaf.sha256_fingerprint, timeout))
    {
        Ok(v) => v,
        Err(e) => (false, Some(format!("an unverifiable certificate ({e})"))),
    };
    if served {
        return Ok(InstallOutcome::Served {
            cert: cert_path,
            key: key_path,
            pid: pm.pid,
            fingerprint: pair.leaf.sha256_fingerprint,
        });
    }
    // Put the previous pair back and reload again, so the server and its files agree.
    let mut restore = Vec::new();
    for (p, bytes, mode) in previous {
        match bytes {
            Some(b) => restore.push(
                PlannedFile::public(p, b)
                    .with_mode(mode)
                    .owned_by(data.uid, data.gid),
            ),
            // It did not exist before: take it away again.
            None => std::fs::remove_file(&p).map_err(|e| Error::io(&p, "remove", e))?,
        }
    }
    write_all(&restore, Overwrite::Allow)?;
    pm.reload()?;
    Err(Error::invalid(
        format!("PostgreSQL (pid {})", pm.pid),
        format!(
            "still serves {} after the reload, not the new certificate {}; the previous files were restored and the server reloaded again. Its log says why (look for \"SSL configuration was not reloaded\")",
            seen.as_deref().unwrap_or("no certificate"),
            pair.leaf.sha256_fingerprint
        ),
    ))
}

/// The files certbot's deploy hook names: `$RENEWED_LINEAGE/fullchain.pem` and `privkey.pem`.
pub fn certbot_lineage(lineage: &str) -> (PathBuf, PathBuf) {
    let d = PathBuf::from(lineage);
    (d.join("fullchain.pem"), d.join("privkey.pem"))
}
