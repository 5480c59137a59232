//! The agent's TLS client: whom it trusts and what it presents.
//!
//! - `trusted-ca-file`: exactly those CAs (ward_tls's verifier, whose failures are plain
//!   words);
//! - no `trusted-ca-file`: the system's roots (the OS store, as `SSL_CERT_FILE` /
//!   `SSL_CERT_DIR` or /etc/ssl/certs have it), and a backend certificate they do not
//!   cover is reported with the fix: set trusted-ca-file. (Sensu replaces the system roots
//!   with the file, sensu-go#2815; so does Ward, but without a file it does not silently
//!   fall back to skipping verification.)
//! - `insecure-skip-tls-verify`: nothing is verified (ward_tls's AcceptAnyServerCert), and
//!   every connect says so in the log.
//! - `cert-file` / `key-file`: presented as the client certificate (agent mTLS).
//!
//! The config is built again at every connect, so renewed certificate and CA files are
//! picked up without a restart.

use crate::config::AgentConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;
use ward_tls::Trust;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The client config for one connect.
pub fn client_config(cfg: &AgentConfig) -> Result<rustls::ClientConfig, String> {
    let mut config = if cfg.insecure_skip_tls_verify {
        ward_tls::client_config(&Trust::SkipVerification)?
    } else if let Some(ca) = &cfg.trusted_ca_file {
        ward_tls::client_config(&Trust::CaFile(ca.clone()))?
    } else {
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SystemRoots::load()?))
            .with_no_client_auth()
    };
    if let (Some(cert), Some(key)) = (&cfg.cert_file, &cfg.key_file) {
        config = ward_tls::with_client_cert(config, ward_tls::load_pair(cert, key)?);
    }
    // A WebSocket upgrade is HTTP/1.1; say so, so a backend that offers h2 does not pick it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The system's roots, with failures that name the fix.
#[derive(Debug)]
struct SystemRoots {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
}

impl SystemRoots {
    fn load() -> Result<SystemRoots, String> {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(found.certs);
        if roots.is_empty() {
            let why = found
                .errors
                .first()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            return Err(format!(
                "no trusted CA certificates found in the system store{why}; set trusted-ca-file to the CA that issued the backend's certificate"
            ));
        }
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .map_err(|e| e.to_string())?;
        Ok(SystemRoots { inner })
    }
}

impl ServerCertVerifier for SystemRoots {
    fn verify_server_cert(
        &self,
        ee: &CertificateDer<'_>,
        im: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(ee, im, name, ocsp, now)
            .map_err(|e| {
                let reason = match &e {
                    rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                        "is not signed by a CA in the system's trusted roots; set trusted-ca-file to the CA that issued it".to_string()
                    }
                    rustls::Error::InvalidCertificate(c) => format!(
                        "was refused: {c}; check it, or set trusted-ca-file to the CA that issued it"
                    ),
                    other => format!("was refused: {other}"),
                };
                rustls::Error::General(format!(
                    "the backend's certificate ({}) {reason}",
                    subject(ee)
                ))
            })
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn subject(der: &CertificateDer<'_>) -> String {
    x509_subject(der).unwrap_or_else(|| "subject unreadable".into())
}

fn x509_subject(der: &[u8]) -> Option<String> {
    // The subject is only for the message; rustls has already parsed the certificate.
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.subject().to_string())
}

/// One line for a TLS failure surfacing as an I/O error: ward's own verifier messages as
/// they are, alerts from the backend in words.
pub fn describe_io_error(e: &std::io::Error, cfg: &AgentConfig) -> String {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return e.to_string();
    };
    describe(tls, cfg)
}

fn describe(e: &rustls::Error, cfg: &AgentConfig) -> String {
    use rustls::AlertDescription as A;
    let cert = cfg
        .cert_file
        .as_ref()
        .map(|p| format!(" ({})", p.display()))
        .unwrap_or_default();
    match e {
        rustls::Error::General(s) => s.clone(),
        rustls::Error::AlertReceived(A::CertificateRequired) => format!(
            "the backend requires a client certificate{}; set cert-file and key-file",
            if cert.is_empty() { "" } else { " and refused ours" }
        ),
        rustls::Error::AlertReceived(A::CertificateRevoked) => {
            format!("the backend refused the agent's certificate{cert}: it is revoked")
        }
        rustls::Error::AlertReceived(A::CertificateExpired) => {
            format!("the backend refused the agent's certificate{cert}: it has expired")
        }
        rustls::Error::AlertReceived(A::UnknownCA) => format!(
            "the backend refused the agent's certificate{cert}: not signed by a CA it trusts (agent-auth-trusted-ca-file)"
        ),
        rustls::Error::AlertReceived(A::BadCertificate | A::UnsupportedCertificate) => {
            format!("the backend refused the agent's certificate{cert}")
        }
        rustls::Error::AlertReceived(a) => format!("the backend ended the TLS handshake: {a:?}"),
        other => format!("TLS: {other}"),
    }
}
