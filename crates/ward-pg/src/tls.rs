//! libpq's TLS semantics on rustls: which server certificates each `sslmode` accepts, and
//! libpq's host-name rules (SAN dNSName entries, iPAddress entries for IP hosts, the CN only
//! when the certificate has no SAN of that kind).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::net::IpAddr;
use std::sync::Arc;
use x509_parser::extensions::GeneralName;

/// libpq's sslmode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    Allow,
    /// libpq's default.
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl std::str::FromStr for SslMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                return Err(format!(
                    "invalid sslmode {s:?}; use disable, allow, prefer, require, verify-ca or verify-full"
                ))
            }
        })
    }
}

impl std::fmt::Display for SslMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        })
    }
}

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Encryption only (`require` without a root file, and `prefer`/`allow` likewise).
    None,
    /// The chain must lead to the root file (`verify-ca`; `require` or lower when a root
    /// file exists, as libpq does).
    Chain,
    /// Chain and host name (`verify-full`).
    Full,
}

/// Checks a presented chain under libpq's rules; the error is a libpq-style sentence.
pub fn verify_server_chain(
    roots: Option<&Arc<RootCertStore>>,
    crls: &[CertificateRevocationListDer<'static>],
    chain: &[CertificateDer<'static>],
    host: &str,
    level: Verification,
) -> Result<(), String> {
    if level == Verification::None {
        return Ok(());
    }
    let Some(leaf) = chain.first() else {
        return Err("the server presented no certificate".into());
    };
    let roots =
        roots.ok_or("no root certificate file to verify the server against; set sslrootcert")?;
    let mut builder =
        WebPkiServerVerifier::builder_with_provider(roots.clone(), ward_tls::provider());
    if !crls.is_empty() {
        // As OpenSSL does for libpq: every certificate of the chain needs its issuer's CRL
        // (an unknown status fails), and an expired CRL is not trusted.
        builder = builder
            .with_crls(crls.to_vec())
            .enforce_revocation_expiration();
    }
    let verifier = builder
        .build()
        .map_err(|e| format!("cannot use the root certificates: {e}"))?;
    // webpki checks the chain, then the name; the name is checked below by libpq's rules, so
    // give it one it will not match unless it really is in the certificate.
    let name = match host.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(host.to_string())
            .unwrap_or_else(|_| ServerName::try_from("invalid.invalid").expect("static name")),
    };
    match verifier.verify_server_cert(leaf, &chain[1..], &name, &[], UnixTime::now()) {
        Ok(_) => {}
        Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => {}
        Err(e) => return Err(describe_tls_error(&e)),
    }
    if level == Verification::Full {
        host_matches(leaf, host)?;
    }
    Ok(())
}

/// libpq's host check (fe-secure-common.c): dNSName SANs for a name, iPAddress SANs for an
/// IP (and dNSName text equal to it); the CN only when there is no SAN of the relevant kind.
pub fn host_matches(leaf: &CertificateDer<'_>, host: &str) -> Result<(), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| format!("the server certificate is malformed: {e}"))?;
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                GeneralName::IPAddress(b) => {
                    if let Some(ip) = ip_from_bytes(b) {
                        ips.push(ip)
                    }
                }
                _ => {}
            }
        }
    }
    let host_ip = host.parse::<IpAddr>().ok();
    let matched = match host_ip {
        Some(ip) => ips.contains(&ip) || dns.iter().any(|d| d.eq_ignore_ascii_case(host)),
        None => dns.iter().any(|d| dns_name_matches(d, host)),
    };
    if matched {
        return Ok(());
    }
    let cn: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|c| c.as_str().ok().map(str::to_string))
        .collect();
    let no_san_of_kind = match host_ip {
        Some(_) => ips.is_empty() && dns.is_empty(),
        None => dns.is_empty(),
    };
    if no_san_of_kind && cn.iter().any(|c| dns_name_matches(c, host)) {
        return Ok(());
    }
    let mut names: Vec<String> = dns;
    names.extend(ips.iter().map(|i| i.to_string()));
    if names.is_empty() {
        names = cn;
    }
    Err(match names.len() {
        0 => format!("server certificate has no names to match host name \"{host}\""),
        1 => format!("server certificate for \"{}\" does not match host name \"{host}\"", names[0]),
        n => format!(
            "server certificate for \"{}\" (and {} other name{}) does not match host name \"{host}\"",
            names[0],
            n - 1,
            if n == 2 { "" } else { "s" }
        ),
    })
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from([b[0], b[1], b[2], b[3]])),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            Some(IpAddr::from(a))
        }
        _ => None,
    }
}

/// A leading `*.` matches exactly one label; otherwise case-insensitive equality.
fn dns_name_matches(pattern: &str, host: &str) -> bool {
    if let Some(rest) = pattern.strip_prefix("*.") {
        match host.split_once('.') {
            Some((first, tail)) => !first.is_empty() && tail.eq_ignore_ascii_case(rest),
            None => false,
        }
    } else {
        pattern.eq_ignore_ascii_case(host)
    }
}

/// One sentence for a rustls error, in the words an operator searches for.
pub fn describe_tls_error(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "certificate verify failed: the server certificate has expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "certificate verify failed: the server certificate is not valid yet".into()
            }
            CertificateError::UnknownIssuer => {
                "certificate verify failed: the server certificate is not signed by a CA in the root certificate file".into()
            }
            CertificateError::Revoked => "certificate verify failed: the server certificate is revoked".into(),
            CertificateError::UnknownRevocationStatus => {
                "certificate verify failed: unable to get certificate CRL: no CRL (sslcrl) from the issuer of a certificate in the server's chain; add the issuer's CRL or remove sslcrl".into()
            }
            CertificateError::ExpiredRevocationList
            | CertificateError::ExpiredRevocationListContext { .. } => {
                "certificate verify failed: CRL has expired: publish a new CRL (ward pki crl) and point sslcrl at it".into()
            }
            CertificateError::BadSignature => "certificate verify failed: bad signature".into(),
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                "certificate verify failed: the server certificate is not for server authentication (no serverAuth EKU)".into()
            }
            other => format!("certificate verify failed: {other:?}"),
        },
        other => other.to_string(),
    }
}

/// A verifier that enforces libpq's rules during the handshake.
#[derive(Debug)]
pub struct LibpqVerifier {
    pub roots: Option<Arc<RootCertStore>>,
    pub crls: Vec<CertificateRevocationListDer<'static>>,
    pub host: String,
    pub level: Verification,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl LibpqVerifier {
    pub fn new(
        roots: Option<Arc<RootCertStore>>,
        crls: Vec<CertificateRevocationListDer<'static>>,
        host: String,
        level: Verification,
    ) -> Self {
        LibpqVerifier {
            roots,
            crls,
            host,
            level,
            provider: ward_tls::provider(),
        }
    }
}

impl ServerCertVerifier for LibpqVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = vec![end_entity.clone().into_owned()];
        chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        verify_server_chain(
            self.roots.as_ref(),
            &self.crls,
            &chain,
            &self.host,
            self.level,
        )
        .map(|_| ServerCertVerified::assertion())
        .map_err(rustls::Error::General)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Loads the CRLs of a file (a regular file of at most 64 MiB): PEM (any number of
/// `X509 CRL` blocks) or one DER CRL.
pub fn load_crls(
    path: &std::path::Path,
) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    if !path.exists() {
        return Err(format!(
            "CRL file \"{}\" does not exist; create it (ward pki crl) or remove sslcrl",
            path.display()
        ));
    }
    let bytes = ward_tls::read_crl_file(path).map_err(|e| e.to_string())?;
    let pem: Vec<_> = CertificateRevocationListDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("CRL file \"{}\" is malformed PEM: {e}", path.display()))?;
    let crls = if pem.is_empty() && bytes.first() == Some(&0x30) {
        vec![CertificateRevocationListDer::from(bytes)]
    } else {
        pem
    };
    for crl in &crls {
        x509_parser::parse_x509_crl(crl.as_ref())
            .map_err(|e| format!("CRL file \"{}\" holds a malformed CRL: {e}", path.display()))?;
    }
    if crls.is_empty() {
        return Err(format!(
            "CRL file \"{}\" holds no CRL (expected PEM \"X509 CRL\" blocks or DER)",
            path.display()
        ));
    }
    Ok(crls)
}

/// Loads every certificate in a PEM file into a root store.
pub fn load_roots(path: &std::path::Path) -> Result<Arc<RootCertStore>, String> {
    ward_tls::load_roots(path).map(Arc::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_one_label() {
        assert!(dns_name_matches("*.example.com", "db.example.com"));
        assert!(!dns_name_matches("*.example.com", "a.db.example.com"));
        assert!(!dns_name_matches("*.example.com", "example.com"));
        assert!(dns_name_matches("DB.example.com", "db.EXAMPLE.com"));
    }

    #[test]
    fn sslmodes_parse() {
        assert_eq!(
            "verify-full".parse::<SslMode>().unwrap(),
            SslMode::VerifyFull
        );
        assert!("verify_full".parse::<SslMode>().is_err());
    }
}
