//! The agent port's acceptor: the handshake, then revocation, then the identity or a
//! refusal.

use super::*;

/// The agent port's TLS settings (`agent-auth-*`).
#[derive(Debug, Clone, Default)]
pub struct AgentAuthSettings {
    /// `agent-auth-cert-file`: the certificate the agent port serves (re-read on change).
    pub cert_file: PathBuf,
    /// `agent-auth-key-file`: its private key (re-read on change).
    pub key_file: PathBuf,
    /// `agent-auth-trusted-ca-file`: the CA(s) agent certificates must chain to (re-read on
    /// change).
    pub trusted_ca_file: PathBuf,
    /// `agent-auth-crl-urls`: `file:///path` or `http://host:port/path`.
    pub crl_urls: Vec<String>,
    /// Accept an agent whose revocation status no source could answer (with a warning).
    /// `false` (the default) refuses it.
    pub fail_open: bool,
    /// `allow-expired-certificate`: serve a reloaded agent-port certificate that is out of
    /// its validity period (with a warning) rather than keep the previous one.
    pub allow_expired_certificate: bool,
}

/// Who an accepted agent is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentIdentity {
    /// The certificate's common name: the agent's user name.
    pub cn: String,
    /// The whole subject, as `CN=…, O=…`.
    pub subject: String,
    /// The serial as `ward pki info` prints it (colon-separated hex), which
    /// `ward pki revoke --serial` takes.
    pub serial: String,
}

/// Why an agent was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// For metrics: `no_certificate`, `unknown_ca`, `expired`, `not_yet_valid`,
    /// `no_client_auth`, `no_common_name`, `revoked`, `revocation_unknown`, `handshake`.
    pub label: &'static str,
    /// One line: the peer address, the certificate's subject and serial when known, and the
    /// reason with its fix.
    pub message: String,
    /// The same for the agent itself: "the backend refused this agent's certificate
    /// (subject, serial): reason".
    pub for_agent: String,
}

/// A refusal, with the TLS stream when the handshake itself succeeded (the certificate was
/// refused after it: revoked, revocation unknown, no CN). No TLS alert can say that any
/// more, so the caller tells the agent over HTTP on that stream.
#[derive(Debug)]
pub struct Refused {
    pub refusal: Refusal,
    pub stream: Option<TlsStream<TcpStream>>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refusal {}

/// The agent port's TLS acceptor with client-certificate authentication and revocation
/// checking. One per backend; share the `Arc`.
#[derive(Debug)]
pub struct AgentAuth {
    pub(super) config: Arc<rustls::ServerConfig>,
    pub(super) cert: Arc<ReloadingCert>,
    pub(super) cert_file: PathBuf,
    pub(super) trust: Arc<Trust>,
    pub(super) revocation: Arc<Revocation>,
    pub(super) fail_open: bool,
}

impl AgentAuth {
    /// Loads the served pair, the trusted CAs and checks the CRL URLs. Errors are one line
    /// naming the setting, the file and the fix.
    pub fn new(s: AgentAuthSettings) -> Result<Arc<AgentAuth>, String> {
        for (setting, p) in [
            ("agent-auth-cert-file", &s.cert_file),
            ("agent-auth-key-file", &s.key_file),
            ("agent-auth-trusted-ca-file", &s.trusted_ca_file),
        ] {
            if p.as_os_str().is_empty() {
                return Err(format!(
                    "{setting} is not set; agent-auth needs agent-auth-cert-file, agent-auth-key-file and agent-auth-trusted-ca-file"
                ));
            }
        }
        let cert = Arc::new(ReloadingCert::new(&s.cert_file, &s.key_file, s.allow_expired_certificate).map_err(|e| {
            format!(
                "agent-auth-cert-file {} / agent-auth-key-file {}: {e}; give the agent port a certificate and its key (`ward pki issue --profile server`)",
                s.cert_file.display(),
                s.key_file.display()
            )
        })?);
        let trust = Arc::new(Trust::new(&s.trusted_ca_file)?);
        let mut sources = Vec::new();
        for url in &s.crl_urls {
            let url = url.trim();
            if url.is_empty() {
                continue;
            }
            let loc = parse_location(url).map_err(|e| format!("agent-auth-crl-urls {url}: {e}"))?;
            if let Location::File(p) = &loc {
                let bytes = crate::read_crl_file(p).map_err(|e| {
                    format!(
                        "agent-auth-crl-urls {url}: {e}; write the CRL there (`ward pki crl --ca-dir DIR --out {}`) or remove the URL",
                        p.display()
                    )
                })?;
                Crl::parse(&bytes).map_err(|e| {
                    format!(
                        "agent-auth-crl-urls {url}: {e}; write a CRL there (`ward pki crl --ca-dir DIR --out {}`)",
                        p.display()
                    )
                })?;
            }
            sources.push((url.to_string(), loc));
        }
        if sources.is_empty() && !s.fail_open {
            tracing::warn!(
                "agent-auth-crl-urls is empty: agents whose certificates name no CRL distribution point or OCSP responder will be refused (revocation_unknown), because revocation checking is fail-closed"
            );
        }
        let verifier = Arc::new(AgentCertVerifier {
            trust: trust.clone(),
            algorithms: provider().signature_verification_algorithms,
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(cert.clone());
        // Every connection presents its certificate and has it checked.
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        Ok(Arc::new(AgentAuth {
            config: Arc::new(config),
            cert,
            cert_file: s.cert_file.clone(),
            trust,
            revocation: Arc::new(Revocation::new(sources)),
            fail_open: s.fail_open,
        }))
    }

    /// The rustls config of the agent port. Handshakes through it check the chain, the
    /// dates and the clientAuth usage, but not revocation: use [`AgentAuth::accept`].
    pub fn tls_config(&self) -> Arc<rustls::ServerConfig> {
        self.config.clone()
    }

    /// The certificate the agent port serves now.
    pub fn served_cert(&self) -> CertificateDer<'static> {
        self.cert.leaf()
    }

    /// TLS-accepts one agent connection and checks the client certificate: present, chains
    /// to the trusted CA file, within validity, carries the clientAuth EKU, names a CN, and is
    /// not revoked (see the module documentation for the revocation rules).
    pub async fn accept(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
    ) -> Result<(TlsStream<TcpStream>, AgentIdentity), Refusal> {
        self.accept_within(tcp, peer, HANDSHAKE_TIMEOUT)
            .await
            .map_err(|r| r.refusal)
    }

    /// [`AgentAuth::accept`] with the handshake bounded by `timeout`, keeping the stream
    /// of a refusal made after the handshake ([`Refused`]).
    pub async fn accept_within(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        timeout: Duration,
    ) -> Result<(TlsStream<TcpStream>, AgentIdentity), Refused> {
        let early = |refusal: Refusal| Refused {
            refusal,
            stream: None,
        };
        let slot: FailureSlot = Arc::new(Mutex::new(None));
        let acceptor = tokio_rustls::TlsAcceptor::from(self.config.clone());
        let handshake = HANDSHAKE_FAILURE
            .scope(
                slot.clone(),
                tokio::time::timeout(timeout, acceptor.accept(tcp)),
            )
            .await;
        let stream = match handshake {
            Err(_) => {
                return Err(early(refusal(
                    "handshake",
                    peer,
                    None,
                    format!("the TLS handshake did not finish within {timeout:?}"),
                )))
            }
            Ok(Err(e)) => {
                let recorded = lock(&slot).take();
                return Err(early(match recorded {
                    Some(f) => refusal(f.label, peer, Some((&f.subject, &f.serial)), f.reason),
                    None => self.handshake_refusal(&e, peer),
                }));
            }
            Ok(Ok(s)) => s,
        };
        let chain: Vec<CertificateDer<'static>> = match stream.get_ref().1.peer_certificates() {
            Some(c) if !c.is_empty() => c.iter().map(|c| c.clone().into_owned()).collect(),
            _ => {
                return Err(early(refusal(
                    "no_certificate",
                    peer,
                    None,
                    no_certificate_reason(),
                )))
            }
        };
        let leaf = match Leaf::parse(&chain, &self.trust.current().certs) {
            Ok(l) => l,
            Err(e) => return Err(early(refusal("handshake", peer, None, e))),
        };
        let identity = AgentIdentity {
            cn: leaf.cn.clone(),
            subject: leaf.subject.clone(),
            serial: leaf.serial.clone(),
        };
        let who = Some((identity.subject.as_str(), identity.serial.as_str()));
        let late = |refusal: Refusal, stream| Refused {
            refusal,
            stream: Some(stream),
        };
        if identity.cn.trim().is_empty() {
            return Err(late(refusal(
                "no_common_name",
                peer,
                who,
                "the certificate has no common name (CN), which is the agent's user name; reissue it with --cn NAME".into(),
            ), stream));
        }
        match self.revocation.check(Arc::new(leaf)).await {
            Verdict::Good(source) => {
                tracing::debug!(%peer, subject = %identity.subject, serial = %identity.serial, %source, "agent certificate accepted");
                Ok((stream, identity))
            }
            Verdict::Revoked(why) => Err(late(
                refusal(
                    "revoked",
                    peer,
                    who,
                    format!("the certificate was {why}; issue the agent a new certificate"),
                ),
                stream,
            )),
            Verdict::Unknown(reasons) => {
                let reasons = reasons.join("; ");
                if self.fail_open {
                    tracing::warn!(%peer, subject = %identity.subject, serial = %identity.serial, "accepted agent {peer} ({}, serial {}) although its revocation status is unknown (fail-open): {reasons}", identity.subject, identity.serial);
                    Ok((stream, identity))
                } else {
                    Err(late(refusal(
                        "revocation_unknown",
                        peer,
                        who,
                        format!("its revocation status is unknown and revocation checking is fail-closed: {reasons}; make a CRL or OCSP source for it reachable (agent-auth-crl-urls, or the certificate's CRL distribution point or OCSP URL)"),
                    ), stream))
                }
            }
        }
    }

    pub(super) fn handshake_refusal(&self, e: &std::io::Error, peer: SocketAddr) -> Refusal {
        let tls = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        match tls {
            Some(rustls::Error::NoCertificatesPresented) => {
                refusal("no_certificate", peer, None, no_certificate_reason())
            }
            Some(rustls::Error::AlertReceived(alert)) => refusal(
                "handshake",
                peer,
                None,
                format!(
                    "the agent aborted the TLS handshake ({alert:?}); if it does not trust this port's certificate ({}, agent-auth-cert-file {}), give the agent the CA that signed it as its trusted CA",
                    self.served_subject(),
                    self.cert_file.display()
                ),
            ),
            Some(rustls::Error::InvalidCertificate(ce)) => {
                let (label, reason) = explain(ce, &self.trust.path);
                refusal(label, peer, None, reason)
            }
            Some(other) => refusal(
                "handshake",
                peer,
                None,
                format!("the TLS handshake failed: {other}"),
            ),
            None => refusal(
                "handshake",
                peer,
                None,
                format!("the TLS handshake failed: {e}"),
            ),
        }
    }

    pub(super) fn served_subject(&self) -> String {
        describe(&self.cert.leaf()).0
    }
}
