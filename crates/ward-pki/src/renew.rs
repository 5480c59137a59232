//! `ward pki renew`: re-issue a certificate with the same subject, names, usages and
//! lifetime length, a fresh validity and serial, keeping the key unless asked to rotate it,
//! and replace the files atomically.

use crate::authority::{CertificateAuthority, IssuedCertificate, KeySource, LeafRequest};
use crate::error::{Error, Result};
use crate::inspect::{certificate_info, first_certificate_der};
use crate::key::{KeyEncoding, PrivateKey};
use crate::names::parse_hosts;
use crate::profile::{CaConstraint, SigningProfile, Usage};
use crate::request::{Subject, SubjectAttributes};
use std::path::{Path, PathBuf};
use ward_io::files::{self, Overwrite, PlannedFile};
use x509_parser::prelude::*;

/// `NAME.pem` → `NAME-key.pem`, `NAME.csr` (cfssljson's names).
pub fn sibling_paths(cert: &Path) -> (PathBuf, PathBuf) {
    let stem = cert
        .to_str()
        .and_then(|s| s.strip_suffix(".pem"))
        .map(str::to_string)
        .unwrap_or_else(|| cert.with_extension("").display().to_string());
    (
        PathBuf::from(format!("{stem}-key.pem")),
        PathBuf::from(format!("{stem}.csr")),
    )
}

/// What a renewal did.
#[derive(Debug)]
pub struct Renewal {
    pub issued: IssuedCertificate,
    pub written: Vec<PathBuf>,
}

/// Renews `cert_path` with the CA in `ca_dir`.
pub fn renew(cert_path: &Path, ca_dir: &Path, rotate_key: bool, clamp: bool) -> Result<Renewal> {
    let ca = CertificateAuthority::load_dir(ca_dir)?;
    let der = first_certificate_der(cert_path)?;
    let info = certificate_info(
        cert_path,
        &der,
        Some(&(ca_dir.join("ca.pem").as_path(), ca.cert_der.clone())),
    )?;
    if let Some(ch) = &info.chain {
        // Expiry of the old certificate is exactly why one renews; anything else is fatal.
        if let Some(reason) = ch
            .reason
            .as_deref()
            .filter(|r| !r.starts_with("the certificate expired"))
        {
            return Err(Error::BadCertificate {
                path: cert_path.to_path_buf(),
                reason: format!("was not issued by the CA in {}: {reason}", ca_dir.display()),
            });
        }
    }
    let (_, x) = parse_x509_certificate(&der).map_err(|e| Error::BadCertificate {
        path: cert_path.to_path_buf(),
        reason: format!("malformed certificate: {e}"),
    })?;
    let subject = subject_of(&x);
    let hosts = parse_hosts(
        info.sans
            .iter()
            .map(|s| s.split_once(':').map(|(_, v)| v).unwrap_or(s)),
    )?;
    let place = cert_path.display().to_string();
    let usages = info
        .key_usages
        .iter()
        .chain(&info.extended_key_usages)
        .map(|u| Usage::parse(u, &place))
        .collect::<Result<Vec<_>>>()?;
    let lifetime = (x.validity().not_after.to_datetime() - x.validity().not_before.to_datetime())
        .try_into()
        .map_err(|_| Error::BadCertificate {
            path: cert_path.to_path_buf(),
            reason: "validity ends before it starts".into(),
        })?;
    let profile = SigningProfile {
        name: "renewal".into(),
        usages,
        expiry: lifetime,
        ca_constraint: CaConstraint {
            is_ca: info.is_ca,
            max_path_len: info.path_len.map(|n| n.min(255) as u8),
        },
        crl_url: info.crl_distribution_points.first().cloned(),
        ocsp_url: info.ocsp_urls.first().cloned(),
        issuer_urls: Vec::new(),
        name_whitelist: None,
    };
    let (key_path, csr_path) = sibling_paths(cert_path);
    let old_key_text = files::read_private_key_file(&key_path)?;
    let old_key = PrivateKey::from_pem(&key_path, &old_key_text)?;
    if old_key.public_key_raw() != x.public_key().subject_public_key.data.as_ref() {
        return Err(Error::KeyMismatch {
            key: key_path,
            cert: cert_path.to_path_buf(),
        });
    }
    let encoding = if String::from_utf8_lossy(&old_key_text).contains("BEGIN PRIVATE KEY") {
        KeyEncoding::Pkcs8
    } else {
        KeyEncoding::Traditional
    };
    let key = if rotate_key {
        KeySource::Generate(old_key.algorithm)
    } else {
        KeySource::Existing(old_key)
    };
    let issued = ca.issue(LeafRequest {
        subject,
        hosts,
        key,
        key_encoding: encoding,
        profile,
        clamp,
    })?;
    let mut planned = vec![
        PlannedFile::public(cert_path, issued.cert_pem.clone()),
        PlannedFile::public(&csr_path, issued.csr_pem.clone()),
    ];
    if let Some(k) = &issued.key_pem {
        planned.push(PlannedFile::key(&key_path, k.clone()));
    }
    files::write_all(&planned, Overwrite::Allow)?;
    Ok(Renewal {
        written: planned.into_iter().map(|p| p.path).collect(),
        issued,
    })
}

fn subject_of(x: &X509Certificate<'_>) -> Subject {
    let get = |it: &mut dyn Iterator<Item = &AttributeTypeAndValue<'_>>| {
        it.next().and_then(|a| a.as_str().ok()).map(str::to_string)
    };
    let s = x.subject();
    let attrs = SubjectAttributes {
        country: get(&mut s.iter_country()),
        state: get(&mut s.iter_state_or_province()),
        locality: get(&mut s.iter_locality()),
        organization: get(&mut s.iter_organization()),
        organizational_unit: get(&mut s.iter_organizational_unit()),
        email: get(&mut s.iter_email()),
        serial_number: None,
    };
    Subject {
        common_name: crate::inspect::common_name(s),
        attributes: if attrs == SubjectAttributes::default() {
            Vec::new()
        } else {
            vec![attrs]
        },
    }
}
