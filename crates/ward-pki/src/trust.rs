//! The operating system's trust store: where a CA certificate goes so that every client on
//! the host (curl, Go, OpenSSL, rustls-native-certs, `ward ctl` without a CA file) trusts
//! it, and whether it is there. The commands that rebuild the store are run by the caller
//! (`ward pki trust`); this module reads and plans.
//!
//! - Debian/Ubuntu: `/usr/local/share/ca-certificates/NAME.crt`, then
//!   `update-ca-certificates` builds `/etc/ssl/certs/ca-certificates.crt`.
//! - RHEL/Fedora: `/etc/pki/ca-trust/source/anchors/NAME.crt`, then
//!   `update-ca-trust extract` builds `/etc/pki/tls/certs/ca-bundle.crt`.
//!
//! A `root` other than `/` is the file tree of another system (an image being built); only
//! the Debian store can be rebuilt there (update-ca-certificates takes its directories as
//! options).

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// A CA certificate to install: exactly one certificate, with CA:TRUE.
#[derive(Debug, Clone)]
pub struct CaCertificate {
    pub der: Vec<u8>,
    pub pem: String,
    pub common_name: String,
    /// The store's file name (without `.crt`) and NSS nickname: `ward-`, the CN in
    /// lowercase letters, digits and dashes, and the first 8 hex digits of the
    /// certificate's SHA-256, so that two CAs with one CN never share a file.
    pub name: String,
}

/// Reads `path` as one CA certificate (PEM); anything else is refused, naming why.
pub fn read_ca(path: &Path) -> Result<CaCertificate> {
    let bytes = ward_io::files::read_bounded(path, ward_io::files::PEM)?;
    let blocks = crate::pem::parse(&bytes).map_err(|e| Error::Malformed {
        what: path.display().to_string(),
        format: "PEM",
        reason: e.to_string(),
    })?;
    let bad = |reason: &str| Error::BadCertificate {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    if blocks.iter().any(|b| b.label.contains("PRIVATE KEY")) {
        return Err(bad(
            "holds a private key: give the CA's certificate (ca.pem), never its key",
        ));
    }
    let certs: Vec<_> = blocks.iter().filter(|b| b.label == "CERTIFICATE").collect();
    let [cert] = certs.as_slice() else {
        return Err(bad(&format!(
            "holds {} certificates; give exactly one CA certificate",
            certs.len()
        )));
    };
    let info = crate::inspect::certificate_info(path, &cert.der, None)?;
    if !info.is_ca {
        return Err(bad(&format!(
            "{} is not a CA (no basicConstraints CA:TRUE): a trust store holds the CA that issued a certificate, not the certificate itself",
            info.subject
        )));
    }
    let (_, x) = x509_parser::parse_x509_certificate(&cert.der)
        .map_err(|e| bad(&format!("malformed certificate: {e}")))?;
    let common_name = crate::inspect::common_name(x.subject());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &cert.der);
    let short: String = digest.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(CaCertificate {
        name: format!("{}-{short}", store_name(&common_name)),
        pem: crate::pem::encode("CERTIFICATE", &cert.der).replace("\r\n", "\n"),
        der: cert.der.clone(),
        common_name,
    })
}

fn store_name(cn: &str) -> String {
    let mut out = String::from("ward");
    for part in cn
        .to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
    {
        out.push('-');
        out.push_str(part);
    }
    out
}

/// Which system store a host has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Family {
    Debian,
    Rhel,
}

/// A system trust store under `root`.
#[derive(Debug, Clone)]
pub struct SystemStore {
    pub family: Family,
    pub root: PathBuf,
    /// Where anchors are put.
    pub anchors: PathBuf,
    /// The bundle clients read, rebuilt by the store's command.
    pub bundle: PathBuf,
}

impl SystemStore {
    /// The store of the system at `root`, by the directories it has; None if neither.
    pub fn detect(root: &Path) -> Option<SystemStore> {
        let at = |p: &str| root.join(p);
        if at("usr/local/share/ca-certificates").is_dir() {
            Some(SystemStore {
                family: Family::Debian,
                root: root.to_path_buf(),
                anchors: at("usr/local/share/ca-certificates"),
                bundle: at("etc/ssl/certs/ca-certificates.crt"),
            })
        } else if at("etc/pki/ca-trust/source/anchors").is_dir() {
            Some(SystemStore {
                family: Family::Rhel,
                root: root.to_path_buf(),
                anchors: at("etc/pki/ca-trust/source/anchors"),
                bundle: at("etc/pki/tls/certs/ca-bundle.crt"),
            })
        } else {
            None
        }
    }

    /// The anchor file of `ca`.
    pub fn anchor(&self, ca: &CaCertificate) -> PathBuf {
        self.anchors.join(format!("{}.crt", ca.name))
    }

    /// The command (program and arguments) that rebuilds the bundle; `fresh` also drops
    /// what was removed (Debian's `--fresh`). Under another root, the image's hooks are not
    /// run (`no_hooks`: an empty directory): they would act on this host's stores.
    pub fn rebuild(&self, fresh: bool, no_hooks: &Path) -> Result<Vec<String>> {
        let s = |p: PathBuf| p.display().to_string();
        match self.family {
            Family::Debian => {
                let mut v = vec!["update-ca-certificates".to_string()];
                if fresh {
                    v.push("--fresh".into());
                }
                if self.root != Path::new("/") {
                    let r = &self.root;
                    for (flag, p) in [
                        ("--certsconf", "etc/ca-certificates.conf"),
                        ("--certsdir", "usr/share/ca-certificates"),
                        ("--localcertsdir", "usr/local/share/ca-certificates"),
                        ("--etccertsdir", "etc/ssl/certs"),
                    ] {
                        v.push(flag.into());
                        v.push(s(r.join(p)));
                    }
                    v.push("--hooksdir".into());
                    v.push(s(no_hooks.to_path_buf()));
                }
                Ok(v)
            }
            Family::Rhel if self.root == Path::new("/") => {
                Ok(vec!["update-ca-trust".into(), "extract".into()])
            }
            Family::Rhel => Err(Error::invalid(
                "--root",
                "update-ca-trust rebuilds only the running system's store; run it inside the image",
            )),
        }
    }

    /// Whether the bundle holds `ca` (its exact certificate).
    pub fn trusts(&self, ca: &CaCertificate) -> Result<bool> {
        bundle_holds(&self.bundle, &ca.der)
    }
}

/// Whether the PEM bundle at `path` holds the certificate `der`; a missing bundle holds
/// nothing.
pub fn bundle_holds(path: &Path, der: &[u8]) -> Result<bool> {
    let bytes = match ward_io::files::read_bounded(path, ward_io::files::PEM) {
        Ok(b) => b,
        Err(ward_io::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(false)
        }
        Err(e) => return Err(e.into()),
    };
    let blocks = crate::pem::parse(&bytes).map_err(|e| Error::Malformed {
        what: path.display().to_string(),
        format: "PEM bundle",
        reason: e.to_string(),
    })?;
    Ok(blocks.iter().any(|b| b.der == der))
}

/// What to run where Ward cannot do it itself (no store found here, or another OS).
pub fn manual_commands(ca: &Path) -> String {
    let ca = ca.display();
    format!(
        "Debian/Ubuntu: sudo cp {ca} /usr/local/share/ca-certificates/ward-ca.crt && sudo update-ca-certificates\n\
         RHEL/Fedora:   sudo cp {ca} /etc/pki/ca-trust/source/anchors/ward-ca.crt && sudo update-ca-trust extract\n\
         macOS:         sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {ca}\n\
         Windows:       certutil -addstore -f ROOT {ca}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_names_are_safe_file_names() {
        assert_eq!(store_name("Ward CA"), "ward-ward-ca");
        assert_eq!(store_name("../../etc/Acme Root #2"), "ward-etc-acme-root-2");
        assert_eq!(store_name(""), "ward");
    }
}
