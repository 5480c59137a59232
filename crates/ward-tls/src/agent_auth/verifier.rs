//! The handshake: chain, dates and clientAuth, checked by a rustls `ClientCertVerifier`
//! around webpki, against the trusted CAs (re-read when their file changes).

use super::*;

/// What the verifier saw when it refused a certificate, for the refusal line.
pub(super) struct HandshakeFailure {
    pub(super) label: &'static str,
    pub(super) reason: String,
    pub(super) subject: String,
    pub(super) serial: String,
}

pub(super) type FailureSlot = Arc<Mutex<Option<HandshakeFailure>>>;

tokio::task_local! {
    // The verifier runs synchronously inside the poll of `accept`'s handshake future, so a
    // task-local set around that future reaches it: per-connection details without a
    // per-connection config.
    pub(super) static HANDSHAKE_FAILURE: FailureSlot;
}

/// The trusted CAs, re-read when the file changes.
#[derive(Debug)]
pub(super) struct Trust {
    pub(super) path: PathBuf,
    pub(super) current: ArcSwap<TrustedCas>,
    pub(super) checked: Mutex<(Instant, Option<Vec<u8>>)>,
}

pub(super) struct TrustedCas {
    pub(super) verifier: Arc<dyn ClientCertVerifier>,
    pub(super) certs: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for TrustedCas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustedCas({} certificates)", self.certs.len())
    }
}

pub(super) fn stamp(p: &Path) -> Option<Vec<u8>> {
    crate::fingerprint(p)
}

impl Trust {
    pub(super) fn new(path: &Path) -> Result<Self, String> {
        let cas = Self::load(path).map_err(|e| {
            format!("agent-auth-trusted-ca-file: {e}; point it at the PEM file of the CA that signs agent certificates (the CA directory's ca.pem)")
        })?;
        Ok(Trust {
            path: path.to_path_buf(),
            current: ArcSwap::from_pointee(cas),
            checked: Mutex::new((Instant::now(), stamp(path))),
        })
    }

    pub(super) fn load(path: &Path) -> Result<TrustedCas, String> {
        let roots = load_roots(path)?;
        let certs = crate::read_certs(path, "trusted CA file")?;
        for c in &certs {
            let ok = x509_parser::parse_x509_certificate(c)
                .ok()
                .and_then(|(_, x)| x.basic_constraints().ok().flatten().map(|b| b.value.ca))
                .unwrap_or(false);
            if !ok {
                return Err(format!(
                    "{}: holds a certificate that is not a CA (no CA:TRUE basic constraint)",
                    path.display()
                ));
            }
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(TrustedCas { verifier, certs })
    }

    pub(super) fn refresh(&self) {
        let Ok(mut c) = self.checked.try_lock() else {
            return;
        };
        if c.0.elapsed() < Duration::from_secs(1) {
            return;
        }
        c.0 = Instant::now();
        let now = stamp(&self.path);
        if now == c.1 {
            return;
        }
        c.1 = now;
        match Self::load(&self.path) {
            Ok(cas) => {
                self.current.store(Arc::new(cas));
                tracing::info!(file = %self.path.display(), "reloaded agent-auth-trusted-ca-file");
            }
            Err(e) => {
                tracing::error!(file = %self.path.display(), error = %e, "refused the new agent-auth-trusted-ca-file; still trusting the previous CAs");
            }
        }
    }

    pub(super) fn current(&self) -> arc_swap::Guard<Arc<TrustedCas>> {
        self.current.load()
    }
}

#[derive(Debug)]
pub(super) struct AgentCertVerifier {
    pub(super) trust: Arc<Trust>,
    pub(super) algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

/// The label and plain words for a certificate the handshake refused.
pub(super) fn explain(e: &CertificateError, ca: &Path) -> (&'static str, String) {
    let ts = |t: &UnixTime| date(t.as_secs() as i64);
    match e {
        CertificateError::Expired => ("expired", "the certificate has expired; renew it (`ward pki renew CERT --ca-dir DIR`)".into()),
        CertificateError::ExpiredContext { not_after, .. } => ("expired", format!("the certificate expired on {}; renew it (`ward pki renew CERT --ca-dir DIR`)", ts(not_after))),
        CertificateError::NotValidYet => ("not_yet_valid", "the certificate is not valid yet; check the clocks of the agent's host, the CA's host and this backend".into()),
        CertificateError::NotValidYetContext { not_before, .. } => ("not_yet_valid", format!("the certificate is not valid before {}; check the clocks of the agent's host, the CA's host and this backend", ts(not_before))),
        CertificateError::UnknownIssuer => ("unknown_ca", format!("the certificate is not signed by a CA in agent-auth-trusted-ca-file {}; issue the agent's certificate from that CA (`ward pki issue --profile client`) or add its CA to that file", ca.display())),
        CertificateError::BadSignature => ("unknown_ca", format!("the certificate's signature does not verify with the CA in agent-auth-trusted-ca-file {} (a different CA with the same name, or a forged certificate); issue it from that CA", ca.display())),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => ("no_client_auth", "the certificate lacks the clientAuth extended key usage; reissue it with `ward pki issue --profile client` (or peer)".into()),
        CertificateError::Revoked => ("revoked", "the certificate is revoked; issue the agent a new certificate".into()),
        CertificateError::BadEncoding => ("handshake", "the certificate is malformed (not valid DER); reissue it".into()),
        other => ("handshake", format!("the certificate was refused: {other:?}")),
    }
}

pub(super) fn describe(der: &[u8]) -> (String, String) {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, c)) => (
            c.subject().to_string(),
            ward_pki::inspect::hex_colon(c.raw_serial()),
        ),
        Err(_) => ("(unparsable)".into(), "(unknown)".into()),
    }
}

pub(super) fn has_client_auth(der: &[u8]) -> bool {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, c)) => matches!(c.extended_key_usage(), Ok(Some(eku)) if eku.value.client_auth),
        Err(_) => false,
    }
}

impl ClientCertVerifier for AgentCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No hints: an agent with a certificate from the wrong CA still presents it, and the
        // refusal can name it.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.trust.refresh();
        let cas = self.trust.current();
        let result = cas
            .verifier
            .verify_client_cert(end_entity, intermediates, now)
            .and_then(|ok| {
                // webpki requires clientAuth only when an EKU extension is present; an agent
                // certificate must carry it.
                if has_client_auth(end_entity) {
                    Ok(ok)
                } else {
                    Err(CertificateError::InvalidPurpose.into())
                }
            });
        if let Err(rustls::Error::InvalidCertificate(ce)) = &result {
            let (label, reason) = explain(ce, &self.trust.path);
            let (subject, serial) = describe(end_entity);
            let _ = HANDSHAKE_FAILURE.try_with(|slot| {
                *lock(slot) = Some(HandshakeFailure {
                    label,
                    reason,
                    subject,
                    serial,
                });
            });
        }
        result
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
