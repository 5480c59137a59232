//! A certificate chain and its key, validated before PostgreSQL is given them: the key
//! matches the leaf, the leaf is valid now, and (with a CA) the chain leads to it.

use crate::error::{Error, Result};
use std::path::Path;
use ward_pki::inspect::{certificate_info, check_chain, CertificateInfo};
use ward_pki::PrivateKey;
use x509_parser::prelude::parse_x509_certificate;

/// A validated pair, with the bytes to install.
#[derive(Debug)]
pub struct ServerPair {
    pub chain_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub leaf: CertificateInfo,
}

/// Validates `cert` (a PEM chain, leaf first) and `key`; with `ca`, the chain must lead to it.
pub fn validate(cert: &Path, key: &Path, ca: Option<&Path>) -> Result<ServerPair> {
    let chain_pem = ward_tls::read_pem_file(cert)?;
    let ders: Vec<Vec<u8>> = {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::pem_slice_iter(&chain_pem)
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| {
                Error::invalid(cert.display().to_string(), format!("malformed PEM: {e}"))
            })?
    };
    let Some(leaf_der) = ders.first() else {
        return Err(Error::invalid(
            cert.display().to_string(),
            "no CERTIFICATE block found",
        ));
    };
    let leaf = certificate_info(cert, leaf_der, None)?;
    if leaf.expired {
        return Err(Error::invalid(
            cert.display().to_string(),
            format!("certificate expired on {}; renew it first", leaf.not_after),
        ));
    }
    // PostgreSQL reads the key as its owner and refuses loose modes itself; Ward reads it as
    // the operator, so it only needs to parse and match.
    let key_pem = ward_tls::read_pem_file(key)?;
    let private = PrivateKey::from_pem(key, &key_pem)?;
    let (_, x) = parse_x509_certificate(leaf_der).map_err(|e| {
        Error::invalid(
            cert.display().to_string(),
            format!("malformed certificate: {e}"),
        )
    })?;
    if private.public_key_raw() != x.public_key().subject_public_key.data.as_ref() {
        return Err(Error::invalid(
            key.display().to_string(),
            format!(
                "private key does not match the certificate {}; pass the key issued with it",
                cert.display()
            ),
        ));
    }
    if let Some(ca) = ca {
        let ca_der = ward_pki::inspect::first_certificate_der(ca)?;
        // Walk leaf → intermediates in the file → the CA.
        let mut current = leaf_der.clone();
        let mut rest = ders[1..].iter();
        loop {
            let (_, c) = parse_x509_certificate(&current).map_err(|e| {
                Error::invalid(
                    cert.display().to_string(),
                    format!("malformed certificate: {e}"),
                )
            })?;
            let direct = check_chain(&c, ca, &ca_der);
            if direct.ok {
                break;
            }
            match rest.next() {
                Some(next) => {
                    let step = check_chain(&c, cert, next);
                    if !step.ok {
                        return Err(Error::invalid(
                            cert.display().to_string(),
                            format!("chain is broken: {}", step.reason.unwrap_or_default()),
                        ));
                    }
                    current = next.clone();
                }
                None => {
                    return Err(Error::invalid(
                        cert.display().to_string(),
                        format!(
                            "does not chain to {}: {}",
                            ca.display(),
                            direct.reason.unwrap_or_default()
                        ),
                    ))
                }
            }
        }
    }
    Ok(ServerPair {
        chain_pem,
        key_pem,
        leaf,
    })
}
