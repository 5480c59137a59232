//! Agent mTLS on the backend's agent port: who an agent is (its certificate's CN), and
//! whether it may connect (the certificate chains to `agent-auth-trusted-ca-file`, is within
//! its validity, carries the clientAuth extended key usage, and is not revoked).
//!
//! [`AgentAuth::accept`] does the TLS handshake and every check, and answers with the
//! agent's [`AgentIdentity`] or a [`Refusal`]: a metric label and one line for the log
//! (peer address, certificate subject and serial when known, the reason and its fix).
//!
//! # In the handshake
//!
//! The chain, the validity dates and the clientAuth usage are checked inside the TLS
//! handshake (a rustls `ClientCertVerifier` around webpki), so a bad certificate gets a
//! TLS alert. The trusted CA file is re-read when it changes (checked at most once a
//! second), as the served certificate and key are. No CA names are hinted to the agent, so
//! an agent with a certificate from the wrong CA still presents it and the refusal names it.
//! Session resumption is off: every connection presents and has its certificate checked.
//!
//! # Revocation
//!
//! Checked right after the handshake, before `accept` returns, never inside the handshake
//! (rustls' verifier is synchronous and network I/O there would block a tokio worker).
//! Only the agent's own (leaf) certificate is checked for revocation.
//!
//! Sources, all consulted at once:
//! - every CRL in `agent-auth-crl-urls` (`file:///path`, read from disk; `http://host:port/path`,
//!   fetched with an HTTP/1.1 GET), PEM or DER;
//! - the `http://` CRL distribution points in the agent's certificate;
//! - the `http://` OCSP responders in the certificate's authority information access
//!   (an RFC 6960 request with a SHA-1 CertID, sent by POST, without a nonce so that
//!   answers can be cached).
//!
//! A CRL counts only when it is issued by the certificate's issuer (same name), its
//! signature verifies with the issuer's key, the issuer may sign CRLs (cRLSign, when it has a
//! key usage extension), its thisUpdate is not in the future (5 minutes of clock skew
//! allowed) and its nextUpdate has not passed. Delta CRLs are not supported (they answer
//! nothing); issuing-distribution-point scopes are not interpreted. A CRL whose issuer is a
//! different CA says nothing about the certificate (it is neither an answer nor a failure).
//!
//! An OCSP response counts only when it is `successful`, of the basic type, signed by the
//! issuer itself or by a delegated responder certificate (included in the response, issued
//! and signed by the issuer, with the OCSP-signing extended key usage, within its validity),
//! carries a response for exactly this CertID, and is current (thisUpdate not in the future,
//! nextUpdate not passed). `unknown` is no answer.
//!
//! The verdict:
//! - **revoked** if any source says revoked (`removeFromCRL` entries are ignored);
//! - **good** if no source says revoked and at least one answered (good, or not listed);
//! - otherwise **unknown**: the certificate names no source and `agent-auth-crl-urls` covers
//!   none, or no source could be read, parsed, verified or was current. Fail-closed (the
//!   default) refuses the agent with the label `revocation_unknown`; fail-open accepts it
//!   and logs a warning with the reasons.
//!
//! So with fail-closed, `agent-auth-crl-urls` empty and agent certificates without a CRL
//! distribution point or OCSP URL, every agent is refused: revocation must be answerable.
//!
//! Caching:
//! - an `http://` CRL is kept until its nextUpdate (one hour when it has none), then fetched
//!   again; a CRL past its nextUpdate that cannot be refreshed is no answer;
//! - a `file://` CRL is also read again as soon as the file changes (size, mtime or inode),
//!   so `ward pki revoke` + `ward pki crl --out FILE` takes effect on the next connection;
//! - an OCSP answer is kept per certificate until its nextUpdate (five minutes when it has
//!   none);
//! - a failed fetch is remembered for 10 seconds, and a responder that refused the
//!   connection or timed out is not contacted again for 10 seconds;
//! - concurrent checks that need the same CRL or OCSP answer share one fetch (20,000 agents
//!   reconnecting at once after a restart make one request per CRL URL), at most 64 fetches
//!   run at once, and each has 5 seconds (connect, request and body).
//!
//! Malformed certificates, CRLs and OCSP responses never panic: they are refused or count as
//! no answer, with the reason in the refusal.

use crate::{load_roots, provider, ReloadingCert};
use arc_swap::ArcSwap;
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio::sync::{OnceCell, Semaphore};
use tokio_rustls::server::TlsStream;
use x509_parser::prelude::{
    CertificateRevocationList, FromDer, GeneralName, ParsedExtension, SubjectPublicKeyInfo,
};

/// Each fetch of a CRL or an OCSP answer: connect, request and body.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a TLS handshake on the agent port may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a failed fetch is remembered before it is tried again.
pub const FAILURE_RETRY: Duration = Duration::from_secs(10);
/// How long a CRL without nextUpdate is kept.
pub const CRL_DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// How long an OCSP answer without nextUpdate is kept.
pub const OCSP_DEFAULT_TTL: Duration = Duration::from_secs(300);
/// Clock skew allowed for thisUpdate.
const SKEW: i64 = 300;
/// Revocation fetches in flight at once.
const MAX_FETCHES: usize = 64;
const MAX_CRL_BYTES: usize = 32 << 20;
const MAX_OCSP_BYTES: usize = 1 << 20;

const SHA1_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const OCSP_BASIC_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");

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
    config: Arc<rustls::ServerConfig>,
    cert: Arc<ReloadingCert>,
    cert_file: PathBuf,
    trust: Arc<Trust>,
    revocation: Arc<Revocation>,
    fail_open: bool,
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
        let cert = Arc::new(ReloadingCert::new(&s.cert_file, &s.key_file).map_err(|e| {
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
            let loc =
                Location::parse(url).map_err(|e| format!("agent-auth-crl-urls {url}: {e}"))?;
            if let Location::File(p) = &loc {
                let bytes = std::fs::read(p).map_err(|e| {
                    format!(
                        "agent-auth-crl-urls {url}: cannot read {}: {e}; write the CRL there (`ward pki crl --ca-dir DIR --out {}`) or remove the URL",
                        p.display(),
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
        let slot: FailureSlot = Arc::new(Mutex::new(None));
        let acceptor = tokio_rustls::TlsAcceptor::from(self.config.clone());
        let handshake = HANDSHAKE_FAILURE
            .scope(
                slot.clone(),
                tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)),
            )
            .await;
        let stream = match handshake {
            Err(_) => {
                return Err(refusal(
                    "handshake",
                    peer,
                    None,
                    format!(
                        "the TLS handshake did not finish within {} s",
                        HANDSHAKE_TIMEOUT.as_secs()
                    ),
                ))
            }
            Ok(Err(e)) => {
                let recorded = lock(&slot).take();
                return Err(match recorded {
                    Some(f) => refusal(f.label, peer, Some((&f.subject, &f.serial)), f.reason),
                    None => self.handshake_refusal(&e, peer),
                });
            }
            Ok(Ok(s)) => s,
        };
        let chain: Vec<CertificateDer<'static>> = match stream.get_ref().1.peer_certificates() {
            Some(c) if !c.is_empty() => c.iter().map(|c| c.clone().into_owned()).collect(),
            _ => {
                return Err(refusal(
                    "no_certificate",
                    peer,
                    None,
                    no_certificate_reason(),
                ))
            }
        };
        let leaf = match Leaf::parse(&chain, &self.trust.current().certs) {
            Ok(l) => l,
            Err(e) => return Err(refusal("handshake", peer, None, e)),
        };
        let identity = AgentIdentity {
            cn: leaf.cn.clone(),
            subject: leaf.subject.clone(),
            serial: leaf.serial.clone(),
        };
        let who = Some((identity.subject.as_str(), identity.serial.as_str()));
        if identity.cn.trim().is_empty() {
            return Err(refusal(
                "no_common_name",
                peer,
                who,
                "the certificate has no common name (CN), which is the agent's user name; reissue it with --cn NAME".into(),
            ));
        }
        match self.revocation.check(Arc::new(leaf)).await {
            Verdict::Good(source) => {
                tracing::debug!(%peer, subject = %identity.subject, serial = %identity.serial, %source, "agent certificate accepted");
                Ok((stream, identity))
            }
            Verdict::Revoked(why) => Err(refusal(
                "revoked",
                peer,
                who,
                format!("the certificate was {why}; issue the agent a new certificate"),
            )),
            Verdict::Unknown(reasons) => {
                let reasons = reasons.join("; ");
                if self.fail_open {
                    tracing::warn!(%peer, subject = %identity.subject, serial = %identity.serial, "accepted agent {peer} ({}, serial {}) although its revocation status is unknown (fail-open): {reasons}", identity.subject, identity.serial);
                    Ok((stream, identity))
                } else {
                    Err(refusal(
                        "revocation_unknown",
                        peer,
                        who,
                        format!("its revocation status is unknown and revocation checking is fail-closed: {reasons}; make a CRL or OCSP source for it reachable (agent-auth-crl-urls, or the certificate's CRL distribution point or OCSP URL)"),
                    ))
                }
            }
        }
    }

    fn handshake_refusal(&self, e: &std::io::Error, peer: SocketAddr) -> Refusal {
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

    fn served_subject(&self) -> String {
        describe(&self.cert.leaf()).0
    }
}

fn no_certificate_reason() -> String {
    "the agent presented no client certificate; agent-auth is on, so give the agent a certificate and key signed by the trusted CA (its cert-file and key-file)".into()
}

fn refusal(
    label: &'static str,
    peer: SocketAddr,
    cert: Option<(&str, &str)>,
    reason: String,
) -> Refusal {
    let message = match cert {
        Some((subject, serial)) => {
            format!("refused agent {peer} (certificate {subject}, serial {serial}): {reason}")
        }
        None => format!("refused agent {peer}: {reason}"),
    };
    Refusal { label, message }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn date(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .map(ward_io::text::format_time)
        .unwrap_or_else(|_| secs.to_string())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn sha1(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, bytes)
        .as_ref()
        .to_vec()
}

/// A serial without leading zero bytes, for comparisons.
fn normalize_serial(raw: &[u8]) -> Vec<u8> {
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    raw[start..].to_vec()
}

// ---------------------------------------------------------------------------------------
// The handshake: chain, dates, clientAuth.

/// What the verifier saw when it refused a certificate, for the refusal line.
struct HandshakeFailure {
    label: &'static str,
    reason: String,
    subject: String,
    serial: String,
}

type FailureSlot = Arc<Mutex<Option<HandshakeFailure>>>;

tokio::task_local! {
    // The verifier runs synchronously inside the poll of `accept`'s handshake future, so a
    // task-local set around that future reaches it: per-connection details without a
    // per-connection config.
    static HANDSHAKE_FAILURE: FailureSlot;
}

/// The trusted CAs, re-read when the file changes.
#[derive(Debug)]
struct Trust {
    path: PathBuf,
    current: ArcSwap<TrustedCas>,
    checked: Mutex<(Instant, Option<SystemTime>)>,
}

struct TrustedCas {
    verifier: Arc<dyn ClientCertVerifier>,
    certs: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for TrustedCas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustedCas({} certificates)", self.certs.len())
    }
}

fn stamp(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

impl Trust {
    fn new(path: &Path) -> Result<Self, String> {
        let cas = Self::load(path).map_err(|e| {
            format!("agent-auth-trusted-ca-file: {e}; point it at the PEM file of the CA that signs agent certificates (the CA directory's ca.pem)")
        })?;
        Ok(Trust {
            path: path.to_path_buf(),
            current: ArcSwap::from_pointee(cas),
            checked: Mutex::new((Instant::now(), stamp(path))),
        })
    }

    fn load(path: &Path) -> Result<TrustedCas, String> {
        let roots = load_roots(path)?;
        let certs: Vec<CertificateDer<'static>> =
            rustls::pki_types::pem::PemObject::pem_file_iter(path)
                .map_err(|e| format!("{}: cannot read: {e}", path.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{}: malformed PEM: {e}", path.display()))?;
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

    fn refresh(&self) {
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

    fn current(&self) -> arc_swap::Guard<Arc<TrustedCas>> {
        self.current.load()
    }
}

#[derive(Debug)]
struct AgentCertVerifier {
    trust: Arc<Trust>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

/// The label and plain words for a certificate the handshake refused.
fn explain(e: &CertificateError, ca: &Path) -> (&'static str, String) {
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

fn describe(der: &[u8]) -> (String, String) {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, c)) => (
            c.subject().to_string(),
            ward_io::text::hex_colon(c.raw_serial()),
        ),
        Err(_) => ("(unparsable)".into(), "(unknown)".into()),
    }
}

fn has_client_auth(der: &[u8]) -> bool {
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

// ---------------------------------------------------------------------------------------
// The certificate under revocation check.

/// What revocation checking needs from the agent's certificate and its issuer.
#[derive(Debug)]
struct Leaf {
    cn: String,
    subject: String,
    serial: String,
    serial_norm: Vec<u8>,
    issuer_name_raw: Vec<u8>,
    crl_dps: Vec<String>,
    ocsp_urls: Vec<String>,
    issuer: Option<Issuer>,
}

/// The certificate's issuer, found among the presented intermediates and the trusted CAs.
#[derive(Debug)]
struct Issuer {
    subject: String,
    spki_raw: Vec<u8>,
    key_bits: Vec<u8>,
    may_sign_crls: bool,
}

impl Leaf {
    fn parse(chain: &[CertificateDer<'_>], trusted: &[CertificateDer<'_>]) -> Result<Leaf, String> {
        let (_, x) = x509_parser::parse_x509_certificate(&chain[0])
            .map_err(|e| format!("the client certificate is malformed: {e}"))?;
        let cn = ward_pki::inspect::common_name(x.subject());
        let mut crl_dps = Vec::new();
        let mut ocsp_urls = Vec::new();
        for ext in x.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::CRLDistributionPoints(points) => {
                    for p in points.iter() {
                        if let Some(x509_parser::extensions::DistributionPointName::FullName(
                            names,
                        )) = &p.distribution_point
                        {
                            for n in names {
                                if let GeneralName::URI(u) = n {
                                    if u.starts_with("http://") && !crl_dps.contains(&u.to_string())
                                    {
                                        crl_dps.push(u.to_string());
                                    }
                                }
                            }
                        }
                    }
                }
                ParsedExtension::AuthorityInfoAccess(aia) => {
                    for d in &aia.accessdescs {
                        if d.access_method
                            == x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_OCSP
                        {
                            if let GeneralName::URI(u) = &d.access_location {
                                if u.starts_with("http://") && !ocsp_urls.contains(&u.to_string()) {
                                    ocsp_urls.push(u.to_string());
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        let issuer = chain[1..].iter().chain(trusted.iter()).find_map(|c| {
            let (_, cand) = x509_parser::parse_x509_certificate(c).ok()?;
            if cand.subject().as_raw() != x.issuer().as_raw() {
                return None;
            }
            x.verify_signature(Some(cand.public_key())).ok()?;
            Some(Issuer {
                subject: cand.subject().to_string(),
                spki_raw: cand.public_key().raw.to_vec(),
                key_bits: cand.public_key().subject_public_key.data.to_vec(),
                may_sign_crls: match cand.key_usage() {
                    Ok(Some(ku)) => ku.value.crl_sign(),
                    Ok(None) => true,
                    Err(_) => false,
                },
            })
        });
        Ok(Leaf {
            cn,
            subject: x.subject().to_string(),
            serial: ward_io::text::hex_colon(x.raw_serial()),
            serial_norm: normalize_serial(x.raw_serial()),
            issuer_name_raw: x.issuer().as_raw().to_vec(),
            crl_dps,
            ocsp_urls,
            issuer,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Revocation.

enum Verdict {
    Good(String),
    Revoked(String),
    Unknown(Vec<String>),
}

/// One source's answer.
enum Answer {
    Good,
    Revoked(String),
    /// A CRL of another CA: says nothing about this certificate.
    NotCovered,
    Failed(String),
}

#[derive(Debug)]
struct Revocation {
    configured: Vec<(String, Location)>,
    fetcher: Fetcher,
    crls: Cache<String, Crl>,
    ocsp: Cache<(String, Vec<u8>, Vec<u8>), OcspStatus>,
}

impl Revocation {
    fn new(configured: Vec<(String, Location)>) -> Self {
        Revocation {
            configured,
            fetcher: Fetcher::new(),
            crls: Cache::new(),
            ocsp: Cache::new(),
        }
    }

    async fn check(self: &Arc<Self>, leaf: Arc<Leaf>) -> Verdict {
        let mut crl_sources: Vec<(String, Location)> = self.configured.clone();
        for u in &leaf.crl_dps {
            if crl_sources.iter().any(|(s, _)| s == u) {
                continue;
            }
            match Location::parse(u) {
                Ok(l) => crl_sources.push((u.clone(), l)),
                Err(e) => {
                    tracing::debug!(url = %u, error = %e, "ignored a CRL distribution point")
                }
            }
        }
        let mut ocsp_sources = Vec::new();
        for u in &leaf.ocsp_urls {
            match Location::parse(u) {
                Ok(Location::Http(h)) => ocsp_sources.push((u.clone(), h)),
                _ => tracing::debug!(url = %u, "ignored an OCSP URL that is not http://"),
            }
        }
        if crl_sources.is_empty() && ocsp_sources.is_empty() {
            return Verdict::Unknown(vec![
                "the certificate names no CRL distribution point or OCSP responder, and agent-auth-crl-urls is empty".into(),
            ]);
        }
        let Some(issuer_subject) = leaf.issuer.as_ref().map(|i| i.subject.clone()) else {
            return Verdict::Unknown(vec![
                "its issuer's certificate was not found among the presented and trusted certificates, so no CRL or OCSP answer can be verified".into(),
            ]);
        };
        let mut tasks = tokio::task::JoinSet::new();
        for (url, loc) in crl_sources {
            let (me, leaf) = (self.clone(), leaf.clone());
            tasks.spawn(async move {
                let a = me.crl_answer(&url, &loc, &leaf).await;
                (format!("CRL {url}"), a)
            });
        }
        for (url, http) in ocsp_sources {
            let (me, leaf) = (self.clone(), leaf.clone());
            tasks.spawn(async move {
                let a = me.ocsp_answer(&url, &http, &leaf).await;
                (format!("OCSP {url}"), a)
            });
        }
        let mut good = None;
        let mut failures = Vec::new();
        let mut covered = false;
        while let Some(joined) = tasks.join_next().await {
            let Ok((source, answer)) = joined else {
                failures.push("a revocation check failed internally".to_string());
                continue;
            };
            match answer {
                Answer::Revoked(why) => {
                    return Verdict::Revoked(format!("{why} according to {source}"))
                }
                Answer::Good => {
                    covered = true;
                    good.get_or_insert(source);
                }
                Answer::NotCovered => {}
                Answer::Failed(why) => {
                    covered = true;
                    failures.push(format!("{source}: {why}"));
                }
            }
        }
        match good {
            Some(source) => Verdict::Good(source),
            None => {
                if !covered {
                    failures.push(format!(
                        "no configured CRL is issued by its CA ({issuer_subject}) and the certificate names no CRL distribution point or OCSP responder"
                    ));
                }
                Verdict::Unknown(failures)
            }
        }
    }

    async fn crl_answer(&self, url: &str, loc: &Location, leaf: &Leaf) -> Answer {
        let file_stamp = match loc {
            Location::File(p) => Some(FileStamp::of(p)),
            Location::Http(_) => None,
        };
        let fetched = self
            .crls
            .get(&url.to_string(), file_stamp, || async {
                let bytes = match loc {
                    Location::File(p) => {
                        let p = p.clone();
                        match tokio::task::spawn_blocking(move || std::fs::read(&p)).await {
                            Ok(r) => r.map_err(|e| format!("cannot read the file: {e}")),
                            Err(_) => Err("reading the file failed".into()),
                        }
                    }
                    Location::Http(h) => self.fetcher.fetch(h, None, MAX_CRL_BYTES).await,
                };
                let parsed = bytes.and_then(|b| Crl::parse(&b));
                match parsed {
                    Ok(crl) => {
                        let now = SystemTime::now();
                        let until = match crl.next_update {
                            Some(n) => {
                                let t = UNIX_EPOCH + Duration::from_secs(n.max(0) as u64);
                                if t > now {
                                    t
                                } else {
                                    now + FAILURE_RETRY
                                }
                            }
                            None => now + CRL_DEFAULT_TTL,
                        };
                        Fetched {
                            value: Ok(Arc::new(crl)),
                            until,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(%url, error = %e, "cannot use the CRL");
                        Fetched::failed(e)
                    }
                }
            })
            .await;
        match fetched.value {
            Ok(crl) => crl.answer(leaf),
            Err(e) => Answer::Failed(e),
        }
    }

    async fn ocsp_answer(&self, url: &str, http: &HttpUrl, leaf: &Leaf) -> Answer {
        let Some(issuer) = &leaf.issuer else {
            return Answer::Failed("the issuer is unknown".into());
        };
        let key = (
            url.to_string(),
            leaf.serial_norm.clone(),
            sha1(&issuer.key_bits),
        );
        let fetched = self
            .ocsp
            .get(&key, None, || async {
                let result = match ocsp_request(leaf, issuer) {
                    Ok((request, cert_id)) => self
                        .fetcher
                        .fetch(
                            http,
                            Some(("application/ocsp-request", request)),
                            MAX_OCSP_BYTES,
                        )
                        .await
                        .and_then(|body| parse_ocsp_response(&body, &cert_id, issuer)),
                    Err(e) => Err(e),
                };
                match result {
                    Ok(status) => {
                        let now = SystemTime::now();
                        // A response already past its nextUpdate is no answer; ask again
                        // after FAILURE_RETRY, not on every connection.
                        let until = match status.next_update {
                            Some(n) => (UNIX_EPOCH + Duration::from_secs(n.max(0) as u64))
                                .max(now + FAILURE_RETRY),
                            None => now + OCSP_DEFAULT_TTL,
                        };
                        Fetched {
                            value: Ok(Arc::new(status)),
                            until,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(%url, serial = %leaf.serial, error = %e, "no usable OCSP answer");
                        Fetched::failed(e)
                    }
                }
            })
            .await;
        match fetched.value {
            Err(e) => Answer::Failed(e),
            Ok(s) => {
                let now = unix_now();
                if s.this_update > now + SKEW {
                    return Answer::Failed(format!(
                        "the response is not valid before {}",
                        date(s.this_update)
                    ));
                }
                match s.next_update {
                    Some(n) if n < now => {
                        return Answer::Failed(format!("the response expired on {}", date(n)));
                    }
                    // No nextUpdate: only a fresh answer counts, so an old "good" replayed
                    // over plain http cannot stand for ever.
                    None if s.this_update + (OCSP_DEFAULT_TTL.as_secs() as i64) < now => {
                        return Answer::Failed(format!(
                            "the response has no nextUpdate and was produced on {}, over {} s ago",
                            date(s.this_update),
                            OCSP_DEFAULT_TTL.as_secs()
                        ));
                    }
                    _ => {}
                }
                match &s.status {
                    OcspCertStatus::Good => Answer::Good,
                    OcspCertStatus::Revoked(why) => Answer::Revoked(why.clone()),
                    OcspCertStatus::Unknown => {
                        Answer::Failed("the responder does not know this certificate".into())
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// CRLs.

#[derive(Debug)]
struct Crl {
    der: Vec<u8>,
    issuer_raw: Vec<u8>,
    issuer: String,
    this_update: i64,
    next_update: Option<i64>,
    /// Not a complete list (a delta CRL, one scoped by an issuing distribution point, or
    /// one with an unknown critical extension).
    delta: bool,
    revoked: HashMap<Vec<u8>, (i64, Option<u8>)>,
    /// The issuer keys (SPKI DER) this CRL's signature verified with, and those it did not.
    verified: Mutex<KeyChecks>,
}

/// Issuer keys (SPKI DER) a CRL's signature was checked against.
#[derive(Debug, Default)]
struct KeyChecks {
    good: Vec<Vec<u8>>,
    bad: Vec<Vec<u8>>,
}

impl Crl {
    fn parse(bytes: &[u8]) -> Result<Crl, String> {
        let der = if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
            let (_, pem) = x509_parser::pem::parse_x509_pem(bytes.trim_ascii_start())
                .map_err(|e| format!("not a PEM CRL: {e}"))?;
            if pem.label != "X509 CRL" {
                return Err(format!("holds a {} PEM block, not an X509 CRL", pem.label));
            }
            pem.contents
        } else {
            bytes.to_vec()
        };
        let (_, crl) = CertificateRevocationList::from_der(&der)
            .map_err(|e| format!("not a CRL (malformed DER: {e})"))?;
        let mut revoked = HashMap::new();
        for r in crl.iter_revoked_certificates() {
            let reason = r.reason_code().map(|(_, c)| c.0);
            revoked.insert(
                normalize_serial(r.raw_serial()),
                (r.revocation_date.timestamp(), reason),
            );
        }
        // A delta CRL, a CRL scoped by an issuing distribution point (only some
        // certificates or reasons), or one with a critical extension Ward does not know is
        // not a complete list: it never counts as an answer that a certificate is good.
        const KNOWN: [&str; 4] = ["2.5.29.20", "2.5.29.35", "2.5.29.46", "1.3.6.1.5.5.7.1.1"];
        let delta = crl.extensions().iter().any(|e| {
            let oid = e.oid.to_id_string();
            oid == "2.5.29.27"
                || oid == "2.5.29.28"
                || (e.critical && !KNOWN.contains(&oid.as_str()))
        });
        Ok(Crl {
            issuer_raw: crl.issuer().as_raw().to_vec(),
            issuer: crl.issuer().to_string(),
            this_update: crl.last_update().timestamp(),
            next_update: crl.next_update().map(|t| t.timestamp()),
            delta,
            revoked,
            verified: Mutex::new(KeyChecks::default()),
            der,
        })
    }

    fn signature_ok(&self, issuer: &Issuer) -> bool {
        {
            let v = lock(&self.verified);
            if v.good.contains(&issuer.spki_raw) {
                return true;
            }
            if v.bad.contains(&issuer.spki_raw) {
                return false;
            }
        }
        let ok = match (
            CertificateRevocationList::from_der(&self.der),
            SubjectPublicKeyInfo::from_der(&issuer.spki_raw),
        ) {
            (Ok((_, crl)), Ok((_, spki))) => crl.verify_signature(&spki).is_ok(),
            _ => false,
        };
        let mut v = lock(&self.verified);
        if ok {
            v.good.push(issuer.spki_raw.clone());
        } else if v.bad.len() < 16 {
            v.bad.push(issuer.spki_raw.clone());
        }
        ok
    }

    fn answer(&self, leaf: &Leaf) -> Answer {
        if self.issuer_raw != leaf.issuer_name_raw {
            return Answer::NotCovered;
        }
        let Some(issuer) = &leaf.issuer else {
            return Answer::Failed("the issuer is unknown".into());
        };
        if !issuer.may_sign_crls {
            return Answer::Failed(format!(
                "its issuer {} may not sign CRLs (no cRLSign key usage)",
                issuer.subject
            ));
        }
        if !self.signature_ok(issuer) {
            return Answer::Failed(format!(
                "its signature does not verify with the key of {}",
                self.issuer
            ));
        }
        let now = unix_now();
        if self.this_update > now + SKEW {
            return Answer::Failed(format!("not valid before {}", date(self.this_update)));
        }
        if let Some(n) = self.next_update {
            if n < now {
                return Answer::Failed(format!(
                    "expired on {} (nextUpdate) and no newer CRL could be had; publish a fresh one (`ward pki crl`)",
                    date(n)
                ));
            }
        }
        match self.revoked.get(&leaf.serial_norm) {
            // Not listed by a list that is not complete: no answer (a listed certificate is
            // revoked whatever the list's scope).
            Some((_, Some(8))) | None if self.delta => Answer::Failed(
                "a delta CRL, a partitioned one (issuing distribution point) or one with an unknown critical extension, which is not a complete list; publish a full CRL".into(),
            ),
            Some((_, Some(8))) | None => Answer::Good,
            Some((at, reason)) => Answer::Revoked(format!(
                "revoked on {}{}",
                date(*at),
                reason
                    .map(|r| format!(" (reason {})", ward_pki::revocation::reason_name(r)))
                    .unwrap_or_default()
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------
// OCSP.

#[derive(Debug)]
enum OcspCertStatus {
    Good,
    Revoked(String),
    Unknown,
}

#[derive(Debug)]
struct OcspStatus {
    status: OcspCertStatus,
    this_update: i64,
    next_update: Option<i64>,
}

/// The DER request and the CertID it asks about.
fn ocsp_request(leaf: &Leaf, issuer: &Issuer) -> Result<(Vec<u8>, x509_ocsp::CertId), String> {
    let bad = |e: der::Error| format!("cannot build the OCSP request: {e}");
    let cert_id = x509_ocsp::CertId {
        hash_algorithm: x509_cert::spki::AlgorithmIdentifierOwned {
            oid: SHA1_OID,
            parameters: Some(der::Any::null()),
        },
        issuer_name_hash: OctetString::new(sha1(&leaf.issuer_name_raw)).map_err(bad)?,
        issuer_key_hash: OctetString::new(sha1(&issuer.key_bits)).map_err(bad)?,
        serial_number: x509_cert::serial_number::SerialNumber::new(&leaf.serial_norm)
            .map_err(bad)?,
    };
    let request = x509_ocsp::OcspRequest {
        tbs_request: x509_ocsp::TbsRequest {
            version: x509_ocsp::Version::V1,
            requestor_name: None,
            request_list: vec![x509_ocsp::Request {
                req_cert: cert_id.clone(),
                single_request_extensions: None,
            }],
            request_extensions: None,
        },
        optional_signature: None,
    };
    Ok((request.to_der().map_err(bad)?, cert_id))
}

/// The raw bytes of the first element inside a DER SEQUENCE (the signed part of a signed
/// structure), exactly as received.
fn first_element(seq: &[u8]) -> Option<&[u8]> {
    use der::Reader;
    let mut r = der::SliceReader::new(seq).ok()?;
    der::Header::decode(&mut r).ok()?;
    let start = usize::try_from(u32::from(r.position())).ok()?;
    let inner = der::Header::decode(&mut r).ok()?;
    let header_len = usize::try_from(u32::from(inner.encoded_len().ok()?)).ok()?;
    let body_len = usize::try_from(u32::from(inner.length)).ok()?;
    seq.get(start..start.checked_add(header_len)?.checked_add(body_len)?)
}

/// Verifies `data` signed with `alg` by the key `spki_raw` (x509-parser's verifier,
/// aws-lc-rs underneath).
fn signature_verifies(
    spki_raw: &[u8],
    alg: &x509_cert::spki::AlgorithmIdentifierOwned,
    signature: &der::asn1::BitString,
    data: &[u8],
) -> bool {
    let Ok(alg_der) = alg.to_der() else {
        return false;
    };
    let Ok((_, alg)) = x509_parser::x509::AlgorithmIdentifier::from_der(&alg_der) else {
        return false;
    };
    let Ok((_, spki)) = SubjectPublicKeyInfo::from_der(spki_raw) else {
        return false;
    };
    let Some(sig) = signature.as_bytes() else {
        return false;
    };
    let sig = x509_parser::asn1_rs::BitString::new(0, sig);
    x509_parser::verify::verify_signature(&spki, &alg, &sig, data).is_ok()
}

fn generalized(t: &x509_ocsp::OcspGeneralizedTime) -> i64 {
    t.0.to_unix_duration().as_secs() as i64
}

fn parse_ocsp_response(
    body: &[u8],
    cert_id: &x509_ocsp::CertId,
    issuer: &Issuer,
) -> Result<OcspStatus, String> {
    let resp = x509_ocsp::OcspResponse::from_der(body)
        .map_err(|e| format!("not an OCSP response (malformed DER: {e})"))?;
    if resp.response_status != x509_ocsp::OcspResponseStatus::Successful {
        return Err(format!(
            "the responder answered {:?} instead of a status",
            resp.response_status
        ));
    }
    let bytes = resp
        .response_bytes
        .ok_or("the successful response carries no response bytes")?;
    if bytes.response_type != OCSP_BASIC_OID {
        return Err(format!(
            "the response is of type {}, not the basic type",
            bytes.response_type
        ));
    }
    let basic_der = bytes.response.as_bytes();
    let basic = x509_ocsp::BasicOcspResponse::from_der(basic_der)
        .map_err(|e| format!("malformed basic OCSP response: {e}"))?;
    let tbs = first_element(basic_der).ok_or("malformed basic OCSP response")?;
    // Signed by the issuer, or by a delegated responder the issuer certified.
    let mut signed = signature_verifies(
        &issuer.spki_raw,
        &basic.signature_algorithm,
        &basic.signature,
        tbs,
    );
    if !signed {
        for c in basic.certs.iter().flatten() {
            if delegated_responder_key(c, issuer).is_some_and(|key| {
                signature_verifies(&key, &basic.signature_algorithm, &basic.signature, tbs)
            }) {
                signed = true;
                break;
            }
        }
    }
    if !signed {
        return Err(format!(
            "the response is signed neither by {} nor by a responder certificate it issued for OCSP signing",
            issuer.subject
        ));
    }
    let single = basic
        .tbs_response_data
        .responses
        .iter()
        .find(|r| {
            r.cert_id.hash_algorithm.oid == SHA1_OID
                && r.cert_id.issuer_name_hash == cert_id.issuer_name_hash
                && r.cert_id.issuer_key_hash == cert_id.issuer_key_hash
                && normalize_serial(r.cert_id.serial_number.as_bytes())
                    == normalize_serial(cert_id.serial_number.as_bytes())
        })
        .ok_or("the response does not cover this certificate")?;
    let status = match &single.cert_status {
        x509_ocsp::CertStatus::Good(_) => OcspCertStatus::Good,
        x509_ocsp::CertStatus::Unknown(_) => OcspCertStatus::Unknown,
        x509_ocsp::CertStatus::Revoked(info) => OcspCertStatus::Revoked(format!(
            "revoked on {}{}",
            date(generalized(&info.revocation_time)),
            info.revocation_reason
                .map(|r| format!(
                    " (reason {})",
                    ward_pki::revocation::reason_name(r as u32 as u8)
                ))
                .unwrap_or_default()
        )),
    };
    Ok(OcspStatus {
        status,
        this_update: generalized(&single.this_update),
        next_update: single.next_update.as_ref().map(generalized),
    })
}

/// The SPKI of a delegated OCSP responder certificate, if the issuer issued it for OCSP
/// signing and it is valid now.
fn delegated_responder_key(cert: &x509_cert::Certificate, issuer: &Issuer) -> Option<Vec<u8>> {
    let der = cert.to_der().ok()?;
    let (_, x) = x509_parser::parse_x509_certificate(&der).ok()?;
    let (_, issuer_spki) = SubjectPublicKeyInfo::from_der(&issuer.spki_raw).ok()?;
    x.verify_signature(Some(&issuer_spki)).ok()?;
    if !matches!(x.extended_key_usage(), Ok(Some(eku)) if eku.value.ocsp_signing) {
        return None;
    }
    if !x.validity().is_valid() {
        return None;
    }
    Some(x.public_key().raw.to_vec())
}

// ---------------------------------------------------------------------------------------
// Caching with one fetch per key at a time.

struct Fetched<T> {
    value: Result<Arc<T>, String>,
    until: SystemTime,
}

impl<T> Clone for Fetched<T> {
    fn clone(&self) -> Self {
        Fetched {
            value: self.value.clone(),
            until: self.until,
        }
    }
}

impl<T> Fetched<T> {
    fn failed(e: String) -> Self {
        Fetched {
            value: Err(e),
            until: SystemTime::now() + FAILURE_RETRY,
        }
    }
}

/// A file's identity and version, to re-read a `file://` CRL when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp(Option<(SystemTime, u64, u64)>);

impl FileStamp {
    fn of(p: &Path) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp(
            std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len(), m.ino()))),
        )
    }
}

struct Slot<T> {
    cell: OnceCell<Fetched<T>>,
    stamp: Option<FileStamp>,
}

impl<T> Slot<T> {
    /// In flight, or fetched and still good.
    fn live(&self, now: SystemTime) -> bool {
        self.cell.get().is_none_or(|f| now < f.until)
    }
}

struct CacheInner<K, T> {
    map: HashMap<K, Arc<Slot<T>>>,
    prune_at: usize,
}

struct Cache<K, T> {
    inner: Mutex<CacheInner<K, T>>,
}

impl<K, T> std::fmt::Debug for Cache<K, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cache({} entries)", lock(&self.inner).map.len())
    }
}

impl<K: Eq + Hash + Clone, T> Cache<K, T> {
    fn new() -> Self {
        Cache {
            inner: Mutex::new(CacheInner {
                map: HashMap::new(),
                prune_at: 1024,
            }),
        }
    }

    /// The cached value for `key`, or the result of `fetch`, run once however many callers
    /// ask at the same time.
    async fn get<F, Fut>(&self, key: &K, stamp: Option<FileStamp>, fetch: F) -> Fetched<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Fetched<T>>,
    {
        let slot = {
            let mut inner = lock(&self.inner);
            let now = SystemTime::now();
            match inner.map.get(key) {
                Some(s) if s.live(now) && s.stamp == stamp => s.clone(),
                _ => {
                    if inner.map.len() >= inner.prune_at {
                        inner.map.retain(|_, s| s.live(now));
                        inner.prune_at = (inner.map.len() * 2).max(1024);
                    }
                    let s = Arc::new(Slot {
                        cell: OnceCell::new(),
                        stamp,
                    });
                    inner.map.insert(key.clone(), s.clone());
                    s
                }
            }
        };
        slot.cell.get_or_init(fetch).await.clone()
    }
}

// ---------------------------------------------------------------------------------------
// Locations and HTTP.

#[derive(Debug, Clone)]
enum Location {
    File(PathBuf),
    Http(HttpUrl),
}

#[derive(Debug, Clone)]
struct HttpUrl {
    /// For connecting (no brackets around an IPv6 address).
    host: String,
    port: u16,
    /// For the Host header.
    authority: String,
    path: String,
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a bad %-escape")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "a %-escape that is not UTF-8".to_string())
}

impl Location {
    fn parse(url: &str) -> Result<Location, String> {
        if let Some(rest) = url.strip_prefix("file://") {
            let path = rest.strip_prefix("localhost").unwrap_or(rest);
            if !path.starts_with('/') {
                return Err("a file URL needs an absolute path: file:///path/to/crl.pem".into());
            }
            return Ok(Location::File(PathBuf::from(percent_decode(path)?)));
        }
        if let Some(rest) = url.strip_prefix("http://") {
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            if authority.is_empty() || authority.contains('@') {
                return Err("use http://host[:port]/path (no user name)".into());
            }
            let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
                let (h, after) = v6.split_once(']').ok_or("an unclosed [ in the host")?;
                let port = match after.strip_prefix(':') {
                    Some(p) => p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?,
                    None if after.is_empty() => 80,
                    None => return Err("junk after the IPv6 address".into()),
                };
                (h.to_string(), port)
            } else {
                match authority.rsplit_once(':') {
                    Some((h, p)) => (
                        h.to_string(),
                        p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?,
                    ),
                    None => (authority.to_string(), 80),
                }
            };
            if host.is_empty() {
                return Err("no host".into());
            }
            let path = path.split('#').next().unwrap_or("/").to_string();
            return Ok(Location::Http(HttpUrl {
                host,
                port,
                authority: authority.to_string(),
                path,
            }));
        }
        if url.starts_with("https://") {
            return Err("https is not supported (CRLs are signed, so plain http is safe); use http:// or file://".into());
        }
        Err("not a file:// or http:// URL".into())
    }
}

/// HTTP fetches: at most [`MAX_FETCHES`] at once, [`FETCH_TIMEOUT`] each, and a host that
/// refused or timed out is left alone for [`FAILURE_RETRY`].
#[derive(Debug)]
struct Fetcher {
    permits: Semaphore,
    down: Mutex<HashMap<String, (Instant, String)>>,
}

enum FetchError {
    /// The host did not answer: remembered per host.
    Unreachable(String),
    Other(String),
}

impl Fetcher {
    fn new() -> Self {
        Fetcher {
            permits: Semaphore::new(MAX_FETCHES),
            down: Mutex::new(HashMap::new()),
        }
    }

    async fn fetch(
        &self,
        url: &HttpUrl,
        post: Option<(&'static str, Vec<u8>)>,
        max: usize,
    ) -> Result<Vec<u8>, String> {
        let host_key = format!("{}:{}", url.host, url.port);
        if let Some((at, why)) = lock(&self.down).get(&host_key) {
            if at.elapsed() < FAILURE_RETRY {
                return Err(format!(
                    "{why} (not retried for {} s)",
                    FAILURE_RETRY.as_secs()
                ));
            }
        }
        let _permit = match tokio::time::timeout(FETCH_TIMEOUT, self.permits.acquire()).await {
            Ok(Ok(p)) => p,
            _ => return Err("too many revocation fetches in flight; gave up waiting".into()),
        };
        let result = match tokio::time::timeout(FETCH_TIMEOUT, http_request(url, post, max)).await {
            Err(_) => Err(FetchError::Unreachable(format!(
                "no answer from {} within {} s",
                url.authority,
                FETCH_TIMEOUT.as_secs()
            ))),
            Ok(r) => r,
        };
        match result {
            Ok(body) => {
                lock(&self.down).remove(&host_key);
                Ok(body)
            }
            Err(FetchError::Unreachable(why)) => {
                let mut down = lock(&self.down);
                if down.len() > 4096 {
                    down.retain(|_, (at, _)| at.elapsed() < FAILURE_RETRY);
                }
                down.insert(host_key, (Instant::now(), why.clone()));
                Err(why)
            }
            Err(FetchError::Other(why)) => Err(why),
        }
    }
}

async fn http_request(
    url: &HttpUrl,
    post: Option<(&'static str, Vec<u8>)>,
    max: usize,
) -> Result<Vec<u8>, FetchError> {
    use http_body_util::{BodyExt, Full, Limited};
    use hyper::body::Bytes;
    use hyper::header;
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| {
            FetchError::Unreachable(format!("cannot connect to {}: {e}", url.authority))
        })?;
    let _ = tcp.set_nodelay(true);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(|e| FetchError::Other(format!("HTTP to {} failed: {e}", url.authority)))?;
    let builder = hyper::Request::builder()
        .uri(url.path.as_str())
        .header(header::HOST, url.authority.as_str())
        .header(header::USER_AGENT, "ward")
        .header(header::CONNECTION, "close");
    let request = match post {
        Some((content_type, body)) => builder
            .method(hyper::Method::POST)
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body))),
        None => builder
            .method(hyper::Method::GET)
            .body(Full::new(Bytes::new())),
    }
    .map_err(|e| FetchError::Other(format!("cannot build the HTTP request: {e}")))?;
    let authority = url.authority.clone();
    let exchange = async move {
        let resp = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP request to {authority} failed: {e}"))?;
        if resp.status() != hyper::StatusCode::OK {
            return Err(format!("{authority} answered HTTP {}", resp.status()));
        }
        let body = Limited::new(resp.into_body(), max)
            .collect()
            .await
            .map_err(|e| format!("reading the answer from {authority} failed: {e}"))?;
        Ok(body.to_bytes().to_vec())
    };
    tokio::pin!(conn);
    tokio::pin!(exchange);
    tokio::select! {
        r = &mut exchange => r.map_err(FetchError::Other),
        c = &mut conn => match c {
            Ok(()) => exchange.await.map_err(FetchError::Other),
            Err(e) => Err(FetchError::Other(format!("HTTP from {} failed: {e}", url.authority))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        match Location::parse("file:///etc/ward/crl.pem").unwrap() {
            Location::File(p) => assert_eq!(p, PathBuf::from("/etc/ward/crl.pem")),
            _ => panic!(),
        }
        match Location::parse("file://localhost/a%20b.pem").unwrap() {
            Location::File(p) => assert_eq!(p, PathBuf::from("/a b.pem")),
            _ => panic!(),
        }
        match Location::parse("http://127.0.0.1:8080/ca.crl").unwrap() {
            Location::Http(h) => {
                assert_eq!(
                    (h.host.as_str(), h.port, h.path.as_str()),
                    ("127.0.0.1", 8080, "/ca.crl")
                );
                assert_eq!(h.authority, "127.0.0.1:8080");
            }
            _ => panic!(),
        }
        match Location::parse("http://[::1]/x").unwrap() {
            Location::Http(h) => assert_eq!((h.host.as_str(), h.port), ("::1", 80)),
            _ => panic!(),
        }
        match Location::parse("http://ca.example.com").unwrap() {
            Location::Http(h) => assert_eq!(h.path, "/"),
            _ => panic!(),
        }
        assert!(Location::parse("https://ca.example.com/crl").is_err());
        assert!(Location::parse("ldap://ca.example.com/crl").is_err());
        assert!(Location::parse("file://relative.pem").is_err());
        assert!(Location::parse("http://:80/x").is_err());
        assert!(Location::parse("http://h:99999/x").is_err());
    }

    #[test]
    fn garbage_never_panics() {
        for junk in [
            &b""[..],
            b"\x30",
            b"\x30\x82\xff\xff",
            b"-----BEGIN X509 CRL-----\nzz\n",
            b"hello",
        ] {
            assert!(Crl::parse(junk).is_err());
            let issuer = Issuer {
                subject: "CN=x".into(),
                spki_raw: vec![],
                key_bits: vec![],
                may_sign_crls: true,
            };
            let id = x509_ocsp::CertId {
                hash_algorithm: x509_cert::spki::AlgorithmIdentifierOwned {
                    oid: SHA1_OID,
                    parameters: None,
                },
                issuer_name_hash: OctetString::new(vec![1]).unwrap(),
                issuer_key_hash: OctetString::new(vec![1]).unwrap(),
                serial_number: x509_cert::serial_number::SerialNumber::new(&[1]).unwrap(),
            };
            assert!(parse_ocsp_response(junk, &id, &issuer).is_err());
            let _ = first_element(junk);
        }
        assert!(Leaf::parse(&[CertificateDer::from(vec![0x30, 0x00])], &[]).is_err());
    }

    #[test]
    fn serials_compare_without_leading_zeros() {
        assert_eq!(normalize_serial(&[0, 0x80, 1]), vec![0x80, 1]);
        assert_eq!(normalize_serial(&[0]), Vec::<u8>::new());
    }
}
