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
use ward_tls::Trust;

/// The client config for one connect.
pub fn client_config(cfg: &AgentConfig) -> Result<rustls::ClientConfig, String> {
    let mut config = if cfg.insecure_skip_tls_verify {
        ward_tls::client_config(&Trust::SkipVerification)?
    } else if let Some(ca) = &cfg.trusted_ca_file {
        ward_tls::client_config(&Trust::CaFile(ca.clone()))?
    } else {
        ward_tls::client_config(&Trust::SystemRoots {
            fix_key: "trusted-ca-file",
        })?
    };
    if let (Some(cert), Some(key)) = (&cfg.cert_file, &cfg.key_file) {
        config = ward_tls::with_client_cert(config, ward_tls::load_pair(cert, key)?);
    }
    // A WebSocket upgrade is HTTP/1.1; say so, so a backend that offers h2 does not pick it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
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
