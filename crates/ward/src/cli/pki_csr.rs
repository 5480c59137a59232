//! `ward pki csr` (a key and a CSR made where the key will live) and `ward pki sign` (the CA
//! signs a CSR made anywhere: Ward, cfssl `genkey`, `openssl req`).

use super::pki::{cfssl_profile, notes, overwrite, owner, read_input};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use ward_io::files;
use ward_pki::csr::{new_csr, parse_csr};
use ward_pki::request::check_common_name;
use ward_pki::{
    parse_host_list, resolve_profile, CertificateAuthority, Error, KeyAlgorithm, KeyEncoding,
    KeySource, LeafRequest, Result, SigningConfig, Subject,
};

#[derive(Debug, Args)]
pub struct CsrArgs {
    /// The common name the certificate will have.
    #[arg(long)]
    cn: String,
    /// Comma-separated SANs: DNS names, IPs, e-mail addresses, URIs.
    #[arg(long, default_value = "")]
    hosts: String,
    /// Key type: rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384, ed25519.
    #[arg(long, default_value = "ecdsa-p256")]
    key: String,
    /// Base name: writes OUT-key.pem (0600) and OUT.csr.
    #[arg(long)]
    out: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
    /// Give the files to USER[:GROUP] (root:GROUP makes the key 0640 for that group).
    #[arg(long)]
    owner: Option<String>,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// CA certificate (cfssl's -ca).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// CA private key (cfssl's -ca-key).
    #[arg(long = "ca-key")]
    ca_key: Option<PathBuf>,
    /// A directory holding ca.pem and ca-key.pem, instead of --ca and --ca-key; then
    /// --profile may also be a built-in one (server, client, peer).
    #[arg(long = "ca-dir")]
    ca_dir: Option<PathBuf>,
    /// Signing configuration (cfssl's ca-config.json).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Signing profile.
    #[arg(long)]
    profile: Option<String>,
    /// Comma-separated SANs; replaces the request's when not empty (cfssl's).
    #[arg(long)]
    hostname: Option<String>,
    /// Shorten a lifetime that would outlive the CA instead of refusing.
    #[arg(long)]
    clamp: bool,
    /// Write OUT.pem instead of printing cfssl's JSON.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace an existing OUT.pem.
    #[arg(long)]
    force: bool,
    /// Give OUT.pem to USER[:GROUP].
    #[arg(long)]
    owner: Option<String>,
    /// The CSR (PEM), or - for stdin.
    csr: String,
}

pub fn csr(a: CsrArgs) -> Result<ExitCode> {
    check_common_name("--cn", &a.cn)?;
    let key: KeyAlgorithm = a.key.parse()?;
    let hosts = parse_host_list(&a.hosts)?;
    let (key_pem, csr_pem) = new_csr(
        &Subject::with_cn(a.cn.clone()),
        &hosts,
        key,
        KeyEncoding::Traditional,
    )?;
    let planned = ward_io::owner::owned(
        ward_pki::bare::bare_files(&a.out, None, Some(&key_pem), Some(&csr_pem)),
        owner(a.owner.as_deref())?,
    );
    files::write_all(&planned, overwrite(a.force))?;
    for p in &planned {
        outln!("wrote {}", p.path.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn sign(a: SignArgs) -> Result<ExitCode> {
    let (ca, profile) = match (&a.ca_dir, &a.ca, &a.ca_key) {
        (Some(dir), None, None) => {
            let config = a
                .config
                .as_ref()
                .map(|p| {
                    SigningConfig::from_json(
                        &p.display().to_string(),
                        &files::read_bounded(p, files::CONFIG)?,
                    )
                })
                .transpose()?;
            let name = a.profile.as_deref().ok_or_else(|| {
                Error::invalid(
                    "sign --ca-dir",
                    "needs --profile (server, client, peer, or one from --config)",
                )
            })?;
            (
                CertificateAuthority::load_dir(dir)?,
                resolve_profile(config.as_ref(), name)?,
            )
        }
        (None, Some(c), Some(k)) => (
            CertificateAuthority::load(c, k)?,
            cfssl_profile(a.config.as_deref(), a.profile.as_deref())?,
        ),
        _ => {
            return Err(Error::invalid(
                "sign",
                "needs either --ca-dir DIR, or both -ca=CA.pem and -ca-key=CA-KEY.pem",
            ))
        }
    };
    if a.owner.is_some() && a.out.is_none() {
        return Err(Error::invalid(
            "sign --owner",
            "applies to the file --out writes; the JSON on stdout has no owner",
        ));
    }
    let (source, bytes) = read_input(&a.csr)?;
    let request = parse_csr(&source, &bytes)?;
    let hosts = match a.hostname.as_deref().filter(|h| !h.is_empty()) {
        Some(h) => parse_host_list(h)?,
        None => request.hosts,
    };
    let issued = ca.issue(LeafRequest {
        subject: request.subject,
        hosts,
        key: KeySource::Request {
            public_key: request.public_key,
            csr_pem: request.pem,
        },
        key_encoding: KeyEncoding::Traditional,
        profile,
        clamp: a.clamp,
    })?;
    notes(&issued.notes);
    match &a.out {
        Some(out) => {
            let planned = ward_io::owner::owned(
                ward_pki::bare::bare_files(out, Some(&issued.cert_pem), None, None),
                owner(a.owner.as_deref())?,
            );
            files::write_all(&planned, overwrite(a.force))?;
            for p in &planned {
                outln!("wrote {}", p.path.display());
            }
        }
        // cfssl sign prints only the certificate.
        None => outln!("{}", serde_json::json!({ "cert": issued.cert_pem })),
    }
    Ok(ExitCode::SUCCESS)
}
