//! Ward's one TLS-config builder.
//!
//! - [`ServerTls`]: a rustls server config (TLS 1.2+, aws-lc-rs) whose certificate is
//!   re-read when its files change, so a renewal needs no restart. A bad new pair is
//!   refused and logged, and the old one keeps serving.
//! - [`client_config`]: a client config that trusts a CA file (or skips verification when
//!   told to, loudly) and whose verification failures are sentences an operator
//!   understands: "certificate expired on DATE", "not signed by a trusted CA",
//!   "name X is not in the certificate's SANs".
//! - [`agent_auth`]: the agent port's mutual TLS, with revocation checking (CRLs and
//!   OCSP, fail-closed by default).

#![forbid(unsafe_code)]

pub mod agent_auth;
pub mod http;

use arc_swap::ArcSwap;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The one crypto provider Ward's TLS uses: rustls' aws-lc-rs.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The start of every client config Ward builds outside this crate (ward-pg's libpq
/// verifier, its probe): the one provider, with `versions`.
pub fn client_builder(
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>, String> {
    rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())
}

/// Reads a certificate, key or CA file Ward was told to use: a regular file (a FIFO or
/// device is refused without blocking) of at most `ward_io::files::PEM`.
pub fn read_pem_file(path: &Path) -> Result<Vec<u8>, ward_io::Error> {
    ward_io::files::read_regular(path, ward_io::files::PEM).map(|(_, bytes)| bytes)
}

/// Reads a CRL file: a regular file of at most `ward_io::files::CRL`.
pub fn read_crl_file(path: &Path) -> Result<Vec<u8>, ward_io::Error> {
    ward_io::files::read_regular(path, ward_io::files::CRL).map(|(_, bytes)| bytes)
}

/// The certificates in a PEM file (bounded, [`read_pem_file`]).
pub fn read_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read_pem_file(path).map_err(|e| format!("{what}: {e}"))?;
    CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: malformed PEM: {e}", path.display()))
}

/// Loads a certificate chain and its key, checking the key file's mode and that the two
/// belong together. Errors are one line naming the file.
pub fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let chain = read_certs(cert, "certificate")?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate found", cert.display()));
    }
    let key_bytes = ward_io::files::read_private_key_file(key).map_err(|e| e.to_string())?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_bytes)
        .map_err(|e| format!("{}: not a usable private key: {e}", key.display()))?;
    let signing = provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| format!("{}: not a usable private key: {e}", key.display()))?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match().map_err(|_| {
        format!(
            "{}: private key does not match the certificate {}",
            key.display(),
            cert.display()
        )
    })?;
    Ok(ck)
}

/// How many days before its end a served certificate is warned about at start.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// A leaf certificate's validity period against the clock.
struct Validity {
    subject: String,
    from: i64,
    until: i64,
    now: i64,
}

impl Validity {
    fn of(leaf: &CertificateDer<'_>) -> Result<Validity, String> {
        let (_, x) = x509_parser::parse_x509_certificate(leaf)
            .map_err(|e| format!("not a certificate: {e}"))?;
        Ok(Validity {
            subject: x.subject().to_string(),
            from: x.validity().not_before.timestamp(),
            until: x.validity().not_after.timestamp(),
            now: time::OffsetDateTime::now_utc().unix_timestamp(),
        })
    }

    /// "expired on DATE" or "is not valid before DATE"; None within the period.
    fn problem(&self) -> Option<String> {
        let fmt = |t: i64| {
            date(UnixTime::since_unix_epoch(Duration::from_secs(
                t.max(0) as u64
            )))
        };
        if self.now > self.until {
            Some(format!("expired on {}", fmt(self.until)))
        } else if self.now < self.from {
            Some(format!("is not valid before {}", fmt(self.from)))
        } else {
            None
        }
    }
}

/// Checks at start that the certificate Ward will present (`key`'s file) is within its
/// validity: an expired or not-yet-valid one is an error naming the setting, the file and
/// the date. `allow` is the setting that overrides that and its value (the backend's
/// `allow-expired-certificate`): when true, the error is logged as a warning instead; the
/// agent has none (`None`), since no backend accepts an expired client certificate. One
/// within its last [`EXPIRY_WARNING_DAYS`] days is logged as a warning.
pub fn check_validity(key: &str, path: &Path, allow: Option<(&str, bool)>) -> Result<(), String> {
    let chain = read_certs(path, "certificate").map_err(|e| format!("{key}: {e}"))?;
    let Some(leaf) = chain.first() else {
        return Err(format!("{key}: {}: no certificate found", path.display()));
    };
    let v = Validity::of(leaf).map_err(|e| format!("{key}: {}: {e}", path.display()))?;
    let (subject, until, now) = (&v.subject, v.until, v.now);
    let fmt = |t: i64| {
        date(UnixTime::since_unix_epoch(Duration::from_secs(
            t.max(0) as u64
        )))
    };
    let problem = v.problem();
    match (problem, allow) {
        (Some(p), Some((allow_key, true))) => {
            tracing::warn!("{key} {}: the certificate ({subject}) {p}; using it because {allow_key} is set", path.display());
            Ok(())
        }
        (Some(p), allow) => Err(format!(
            "{key} {}: the certificate ({subject}) {p}; renew it (`ward pki renew {} --ca-dir DIR`){}",
            path.display(),
            path.display(),
            allow
                .map(|(k, _)| format!(", or set {k}: true to use it anyway"))
                .unwrap_or_default()
        )),
        (None, _) => {
            let days = (until - now) / 86_400;
            if days < EXPIRY_WARNING_DAYS {
                tracing::warn!("{key} {}: the certificate ({subject}) expires on {} (in {days} days); renew it", path.display(), fmt(until));
            }
            Ok(())
        }
    }
}

/// What [`fingerprint`] returns.
pub type Fingerprint = Option<Vec<u8>>;

/// A file's content fingerprint (SHA-256 of its bytes, bounded, [`read_pem_file`]), to see
/// that it changed whatever its mtime says; `None` when it cannot be read.
pub fn fingerprint(p: &Path) -> Fingerprint {
    let bytes = read_pem_file(p).ok()?;
    Some(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes)
            .as_ref()
            .to_vec(),
    )
}

/// A certificate resolver that re-reads its files when their content changes (checked at
/// most once a second, on the next handshake, by content fingerprint: a replacement with
/// the old mtime is still seen) and swaps the pair atomically.
#[derive(Debug)]
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    current: ArcSwap<CertifiedKey>,
    /// When the files were last looked at, and their fingerprints then.
    checked: Mutex<(Instant, Fingerprint, Fingerprint)>,
    /// `allow-expired-certificate`: a reloaded certificate out of its validity period is
    /// served (with a warning) rather than refused.
    allow_expired: bool,
}

impl ReloadingCert {
    /// The pair in `cert` and `key`; `allow_expired` is `allow-expired-certificate` (the
    /// validity at start is `check_validity`'s; reloads are checked here).
    pub fn new(cert: &Path, key: &Path, allow_expired: bool) -> Result<Self, String> {
        let ck = load_pair(cert, key)?;
        Ok(ReloadingCert {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: ArcSwap::from_pointee(ck),
            checked: Mutex::new((Instant::now(), fingerprint(cert), fingerprint(key))),
            allow_expired,
        })
    }

    /// Re-reads the files if they changed; a bad new pair is logged and ignored.
    pub fn refresh(&self) {
        let Ok(mut c) = self.checked.lock() else {
            return;
        };
        if c.0.elapsed() < Duration::from_secs(1) {
            return;
        }
        c.0 = Instant::now();
        let (sc, sk) = (fingerprint(&self.cert), fingerprint(&self.key));
        if sc == c.1 && sk == c.2 {
            return;
        }
        let checked = load_pair(&self.cert, &self.key).and_then(|ck| {
            let v = Validity::of(&ck.cert[0])?;
            match v.problem() {
                Some(p) if self.allow_expired => {
                    tracing::warn!(cert = %self.cert.display(), "the new TLS certificate ({}) {p}; serving it because allow-expired-certificate is set", v.subject);
                    Ok(ck)
                }
                Some(p) => Err(format!("the certificate ({}) {p}; every client would refuse it. Renew it (`ward pki renew {} --ca-dir DIR`)", v.subject, self.cert.display())),
                None => Ok(ck),
            }
        });
        match checked {
            Ok(ck) => {
                self.current.store(Arc::new(ck));
                c.1 = sc;
                c.2 = sk;
                tracing::info!(cert = %self.cert.display(), "reloaded the TLS certificate");
            }
            Err(e) => {
                // Keep serving the old pair; try again when the files change again.
                c.1 = sc;
                c.2 = sk;
                tracing::error!(cert = %self.cert.display(), error = %e, "refused the new TLS certificate; still serving the previous one");
            }
        }
    }

    /// The leaf now served (for metrics and tests).
    pub fn leaf(&self) -> CertificateDer<'static> {
        self.current.load().cert[0].clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.refresh();
        Some(self.current.load_full())
    }
}

/// A server's TLS: the config to accept with, and the reloading certificate behind it.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub config: Arc<rustls::ServerConfig>,
    pub cert: Arc<ReloadingCert>,
}

impl ServerTls {
    /// TLS 1.2 and 1.3 with rustls' default (modern) suites; ALPN h2 and http/1.1.
    /// `allow_expired` is `allow-expired-certificate`, for certificates reloaded later.
    pub fn new(cert: &Path, key: &Path, allow_expired: bool) -> Result<Self, String> {
        let resolver = Arc::new(ReloadingCert::new(cert, key, allow_expired)?);
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(ServerTls {
            config: Arc::new(config),
            cert: resolver,
        })
    }
}

/// Loads a CA file into a root store.
pub fn load_roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let certs = read_certs(path, "trusted CA file")?;
    if certs.is_empty() {
        return Err(format!("{}: no certificates found", path.display()));
    }
    for c in certs {
        roots
            .add(c)
            .map_err(|e| format!("{}: not a usable CA certificate: {e}", path.display()))?;
    }
    Ok(roots)
}

/// How a client decides whether to trust the server.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The CAs in this file.
    CaFile(PathBuf),
    /// The system's roots (the OS store, as `SSL_CERT_FILE` / `SSL_CERT_DIR` or
    /// /etc/ssl/certs have it), for a client configured with no CA file; a certificate they
    /// do not cover is reported with the fix (`fix_key`: the setting that names a CA file).
    SystemRoots { fix_key: &'static str },
    /// The system's roots and the CAs in this file (downloads from public and private
    /// servers alike: runtime assets).
    CaFileAndSystemRoots(PathBuf),
    /// Nothing is verified (insecure-skip-tls-verify): encryption without authentication.
    SkipVerification,
}

/// A client config with plain-words verification errors.
pub fn client_config(trust: &Trust) -> Result<rustls::ClientConfig, String> {
    let (roots, trusted) = match trust {
        Trust::CaFile(p) => (load_roots(p)?, p.display().to_string()),
        Trust::SystemRoots { fix_key } => (
            system_roots(fix_key)?,
            format!("the system's trusted roots; set {fix_key} to the CA that issued it"),
        ),
        Trust::CaFileAndSystemRoots(p) => {
            let mut roots = load_roots(p)?;
            // A host without a system store still trusts the file.
            if let Ok(system) = system_roots("") {
                roots.roots.extend(system.roots);
            }
            (
                roots,
                format!("{} or the system's trusted roots", p.display()),
            )
        }
        Trust::SkipVerification => {
            return Ok(rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert::new()))
                .with_no_client_auth())
        }
    };
    let inner =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| e.to_string())?;
    let verifier: Arc<dyn ServerCertVerifier> = Arc::new(PlainWords { inner, trusted });
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The system's trusted roots; none found is an error naming `fix_key`.
fn system_roots(fix_key: &str) -> Result<RootCertStore, String> {
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
            "no trusted CA certificates found in the system store{why}; set {fix_key} to the CA that issued the server's certificate"
        ));
    }
    Ok(roots)
}

#[derive(Debug)]
struct PlainWords {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    /// Where trusted CAs come from, as the unknown-issuer error names it.
    trusted: String,
}

fn date(t: UnixTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(t.as_secs() as i64)
        .map(ward_io::text::format_time)
        .unwrap_or_else(|_| t.as_secs().to_string())
}

impl PlainWords {
    fn explain(
        &self,
        e: &rustls::Error,
        leaf: &CertificateDer<'_>,
        name: &ServerName<'_>,
    ) -> String {
        let subject = x509_parser::parse_x509_certificate(leaf)
            .map(|(_, c)| c.subject().to_string())
            .unwrap_or_else(|_| "the server's certificate".into());
        match e {
            rustls::Error::InvalidCertificate(c) => match c {
                CertificateError::ExpiredContext { not_after, .. } => format!("the server's certificate ({subject}) expired on {}", date(*not_after)),
                CertificateError::Expired => format!("the server's certificate ({subject}) has expired"),
                CertificateError::NotValidYetContext { not_before, .. } => format!("the server's certificate ({subject}) is not valid before {}", date(*not_before)),
                CertificateError::UnknownIssuer => format!("the server's certificate ({subject}) is not signed by a CA in {}", self.trusted),
                CertificateError::NotValidForNameContext { presented, .. } => format!(
                    "the name {:?} is not in the server certificate's SANs ({}); connect by one of those names or reissue the certificate",
                    name.to_str(),
                    presented.join(", ")
                ),
                CertificateError::NotValidForName => format!("the name {:?} is not in the server certificate's SANs", name.to_str()),
                CertificateError::Revoked => format!("the server's certificate ({subject}) is revoked"),
                CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => format!("the server's certificate ({subject}) is not for server authentication (no serverAuth usage)"),
                other => format!("the server's certificate ({subject}) was refused: {other:?}"),
            },
            other => other.to_string(),
        }
    }
}

impl ServerCertVerifier for PlainWords {
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
            .map_err(|e| rustls::Error::General(self.explain(&e, ee, name)))
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

/// Accepts whatever chain the server presents while still checking the handshake
/// signatures: for `insecure-skip-tls-verify`, and for probes that report on a chain
/// rather than judge it during the handshake.
#[derive(Debug)]
pub struct AcceptAnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl AcceptAnyServerCert {
    pub fn new() -> Self {
        AcceptAnyServerCert(provider())
    }
}

impl Default for AcceptAnyServerCert {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Presents one client certificate whatever the server asks (an agent's certificate).
#[derive(Debug)]
struct FixedClientCert(Arc<CertifiedKey>);

impl rustls::client::ResolvesClientCert for FixedClientCert {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

/// `cfg`, presenting `cert` (from `load_pair`) as its client certificate.
pub fn with_client_cert(mut cfg: rustls::ClientConfig, cert: CertifiedKey) -> rustls::ClientConfig {
    cfg.client_auth_cert_resolver = Arc::new(FixedClientCert(Arc::new(cert)));
    cfg
}
