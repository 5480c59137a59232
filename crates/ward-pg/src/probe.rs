//! `ward pg probe`: what a PostgreSQL server really does with TLS, seen from the wire, as a
//! check plugin.

use crate::error::{Error, Result};
use crate::tls::{host_matches, verify_server_chain, SslMode, Verification};
use crate::wire::{self, SslAnswer, StartupAnswer};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;
use serde::Serialize;
use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ward_pki::expiry::CheckStatus;
use ward_pki::inspect::{certificate_info, CertificateInfo};

/// What to probe and how.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// The host name as libpq would check it (and the SNI sent).
    pub host: String,
    pub port: u16,
    /// Where to connect, when not `host` (libpq's hostaddr).
    pub hostaddr: Option<String>,
    pub sslmode: SslMode,
    pub root_cert: Option<PathBuf>,
    pub client_cert: Option<(PathBuf, PathBuf)>,
    pub warning: Duration,
    pub critical: Duration,
    /// Ask whether this login would be accepted without TLS.
    pub plaintext_login: Option<(String, String)>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub ok: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LegacyProtocol {
    pub version: &'static str,
    pub accepted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlaintextLogin {
    pub user: String,
    pub database: String,
    #[serde(flatten)]
    pub answer: StartupAnswer,
}

/// Everything the probe saw.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub target: String,
    pub host: String,
    pub sslmode: SslMode,
    pub answer: SslAnswer,
    pub tls_version: Option<String>,
    pub cipher: Option<String>,
    pub chain: Vec<CertificateInfo>,
    /// The chain against `--root-cert` (None without a root file).
    pub chain_verification: Option<Check>,
    /// libpq's host-name rules against the leaf.
    pub host_name: Option<Check>,
    pub client_certificate_requested: bool,
    pub acceptable_client_ca_names: Vec<String>,
    pub legacy_protocols: Vec<LegacyProtocol>,
    pub plaintext_login: Option<PlaintextLogin>,
    pub status: CheckStatus,
    pub problems: Vec<String>,
    pub summary: String,
}

/// Opens a TCP connection to the probe target.
pub fn connect_tcp(opts: &ProbeOptions) -> Result<TcpStream> {
    let target = format!(
        "{}:{}",
        opts.hostaddr.as_deref().unwrap_or(&opts.host),
        opts.port
    );
    let addrs: Vec<SocketAddr> = (opts.hostaddr.as_deref().unwrap_or(&opts.host), opts.port)
        .to_socket_addrs()
        .map_err(|e| Error::connect(&target, format!("cannot resolve: {e}")))?
        .collect();
    let mut last = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, opts.timeout) {
            Ok(s) => {
                let _ = s.set_read_timeout(Some(opts.timeout));
                let _ = s.set_write_timeout(Some(opts.timeout));
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(Error::connect(
        &target,
        match last {
            Some(e) => format!(
                "cannot connect: {e}; is PostgreSQL listening there (listen_addresses, port)?"
            ),
            None => "no address to connect to".into(),
        },
    ))
}

/// Records whether the server asked for a client certificate, and which CAs it named.
#[derive(Debug)]
struct RecordingResolver {
    asked: Mutex<Option<Vec<String>>>,
    key: Option<Arc<CertifiedKey>>,
}

impl ResolvesClientCert for RecordingResolver {
    fn resolve(&self, hints: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        let names = hints
            .iter()
            .map(|h| {
                match <x509_parser::x509::X509Name as x509_parser::prelude::FromDer<_>>::from_der(h)
                {
                    Ok((_, n)) => n.to_string(),
                    Err(_) => "(unparsable name)".to_string(),
                }
            })
            .collect();
        if let Ok(mut a) = self.asked.lock() {
            *a = Some(names);
        }
        self.key.clone()
    }
    fn has_certs(&self) -> bool {
        true
    }
}

fn load_client_key(cert: &std::path::Path, key: &std::path::Path) -> Result<Arc<CertifiedKey>> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<CertificateDer<'static>> =
        ward_tls::read_certs(cert, "certificate").map_err(|e| Error::invalid("certificate", e))?;
    let key_bytes = crate::conninfo::read_client_key(key)?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
        Error::invalid(
            key.display().to_string(),
            format!("not a usable private key: {e}"),
        )
    })?;
    let signing = ward_tls::provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| {
            Error::invalid(
                key.display().to_string(),
                format!("not a usable private key: {e}"),
            )
        })?;
    Ok(Arc::new(CertifiedKey::new(certs, signing)))
}

/// Runs the probe. Connection failures are errors (the caller reports UNKNOWN); everything
/// the server does once connected is in the report.
pub fn probe(opts: &ProbeOptions) -> Result<ProbeReport> {
    let target = format!(
        "{}:{}",
        opts.hostaddr.as_deref().unwrap_or(&opts.host),
        opts.port
    );
    let roots = match &opts.root_cert {
        Some(p) => Some(crate::tls::load_roots(p).map_err(|e| Error::invalid("--root-cert", e))?),
        None => None,
    };
    let client_key = match &opts.client_cert {
        Some((c, k)) => Some(load_client_key(c, k)?),
        None => None,
    };
    let mut report = ProbeReport {
        target: target.clone(),
        host: opts.host.clone(),
        sslmode: opts.sslmode,
        answer: SslAnswer::NoTls,
        tls_version: None,
        cipher: None,
        chain: Vec::new(),
        chain_verification: None,
        host_name: None,
        client_certificate_requested: false,
        acceptable_client_ca_names: Vec::new(),
        legacy_protocols: Vec::new(),
        plaintext_login: None,
        status: CheckStatus::Ok,
        problems: Vec::new(),
        summary: String::new(),
    };
    let mut sock = connect_tcp(opts)?;
    report.answer =
        wire::ssl_request(&mut sock).map_err(|e| Error::connect(&target, e.to_string()))?;
    if report.answer == SslAnswer::Tls {
        let hs = handshake(&mut sock, &opts.host, client_key)?;
        report.tls_version = hs.version;
        report.cipher = hs.cipher;
        let chain = hs.chain;
        if let Some(names) = hs.client_ca_names {
            report.client_certificate_requested = true;
            report.acceptable_client_ca_names = names;
        }
        for (i, der) in chain.iter().enumerate() {
            report.chain.push(certificate_info(
                std::path::Path::new(&format!("certificate {i}")),
                der,
                None,
            )?);
        }
        if roots.is_some() {
            let r =
                verify_server_chain(roots.as_ref(), &[], &chain, &opts.host, Verification::Chain);
            report.chain_verification = Some(Check {
                ok: r.is_ok(),
                error: r.err(),
            });
        }
        if let Some(leaf) = chain.first() {
            let r = host_matches(leaf, &opts.host);
            report.host_name = Some(Check {
                ok: r.is_ok(),
                error: r.err(),
            });
        }
        for (version, label) in [(0x0301u16, "TLSv1.0"), (0x0302, "TLSv1.1")] {
            report.legacy_protocols.push(legacy(opts, version, label));
        }
    }
    if let Some((user, database)) = &opts.plaintext_login {
        let mut s = connect_tcp(opts)?;
        s.write_all(&wire::startup_message(user, database, "ward pg probe"))
            .map_err(|e| Error::connect(&target, e.to_string()))?;
        let answer = wire::read_startup_answer(&mut s)
            .map_err(|e| Error::connect(&target, e.to_string()))?;
        // Terminate, so the server does not wait for a password.
        let _ = s.write_all(&[b'X', 0, 0, 0, 4]);
        report.plaintext_login = Some(PlaintextLogin {
            user: user.clone(),
            database: database.clone(),
            answer,
        });
    }
    judge(&mut report, opts, roots.is_some());
    Ok(report)
}

/// What a TLS handshake showed.
pub struct Handshake {
    pub version: Option<String>,
    pub cipher: Option<String>,
    pub chain: Vec<CertificateDer<'static>>,
    /// `Some` when the server asked for a client certificate: the CA names it accepts.
    pub client_ca_names: Option<Vec<String>>,
}

/// Completes a TLS handshake on a socket that has had its `S` answer, accepting whatever
/// chain the server presents (the caller judges it), then closes the session.
pub fn handshake(
    sock: &mut TcpStream,
    host: &str,
    client_key: Option<Arc<CertifiedKey>>,
) -> Result<Handshake> {
    let target = host.to_string();
    let resolver = Arc::new(RecordingResolver {
        asked: Mutex::new(None),
        key: client_key,
    });
    let config = ward_tls::client_builder(rustls::ALL_VERSIONS)
        .map_err(|e| Error::connect(&target, e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ward_tls::AcceptAnyServerCert::new()))
        .with_client_cert_resolver(resolver.clone());
    let name = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(host.to_string())
            .map_err(|_| Error::invalid("host", format!("{host:?} is not a host name")))?,
    };
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| Error::connect(&target, e.to_string()))?;
    while conn.is_handshaking() {
        conn.complete_io(sock)
            .map_err(|e| Error::connect(&target, format!("TLS handshake failed: {e}")))?;
    }
    let version = conn.protocol_version().map(|v| match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
        other => format!("{other:?}"),
    });
    let cipher = conn.negotiated_cipher_suite().map(|s| iana_name(s.suite()));
    let chain: Vec<CertificateDer<'static>> = conn
        .peer_certificates()
        .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
        .unwrap_or_default();
    conn.send_close_notify();
    let _ = conn.complete_io(sock);
    let _ = sock.flush();
    let client_ca_names = resolver.asked.lock().ok().and_then(|a| a.clone());
    Ok(Handshake {
        version,
        cipher,
        chain,
        client_ca_names,
    })
}

fn legacy(opts: &ProbeOptions, version: u16, label: &'static str) -> LegacyProtocol {
    let attempt = || -> std::io::Result<bool> {
        let mut s = connect_tcp(opts).map_err(|e| std::io::Error::other(e.to_string()))?;
        if wire::ssl_request(&mut s)? != SslAnswer::Tls {
            return Ok(false);
        }
        let sni = opts
            .host
            .parse::<std::net::IpAddr>()
            .is_err()
            .then_some(opts.host.as_str());
        s.write_all(&wire::legacy_client_hello(version, sni))?;
        wire::legacy_version_accepted(&mut s, version)
    };
    match attempt() {
        Ok(accepted) => LegacyProtocol {
            version: label,
            accepted: Some(accepted),
            error: None,
        },
        Err(e) => LegacyProtocol {
            version: label,
            accepted: None,
            error: Some(e.to_string()),
        },
    }
}

/// IANA names, as OpenSSL prints them for TLS 1.3 and as RFCs name them for TLS 1.2.
fn iana_name(s: rustls::CipherSuite) -> String {
    let debug = format!("{s:?}");
    debug
        .strip_prefix("TLS13_")
        .map(|r| format!("TLS_{r}"))
        .unwrap_or(debug)
}

fn judge(r: &mut ProbeReport, opts: &ProbeOptions, have_root: bool) {
    let mut status = CheckStatus::Ok;
    let mut raise = |s: CheckStatus, msg: String, problems: &mut Vec<String>| {
        status = status.max(s);
        problems.push(msg);
    };
    let mut problems = Vec::new();
    if r.answer == SslAnswer::NoTls {
        if opts.sslmode != SslMode::Disable {
            raise(
                CheckStatus::Critical,
                "the server does not offer TLS (answered N to SSLRequest)".into(),
                &mut problems,
            );
        }
    } else {
        // libpq verifies the chain in any mode once a root file exists.
        let level = match opts.sslmode {
            SslMode::VerifyFull => Verification::Full,
            SslMode::VerifyCa => Verification::Chain,
            _ if have_root => Verification::Chain,
            _ => Verification::None,
        };
        if let Some(c) = &r.chain_verification {
            if !c.ok && level != Verification::None {
                raise(
                    CheckStatus::Critical,
                    c.error.clone().unwrap_or_default(),
                    &mut problems,
                );
            }
        } else if level != Verification::None {
            raise(
                CheckStatus::Critical,
                format!(
                    "sslmode={} needs --root-cert to verify the server",
                    opts.sslmode
                ),
                &mut problems,
            );
        }
        if level == Verification::Full {
            if let Some(h) = &r.host_name {
                if !h.ok {
                    raise(
                        CheckStatus::Critical,
                        h.error.clone().unwrap_or_default(),
                        &mut problems,
                    );
                }
            }
        }
        if let Some(leaf) = r.chain.first() {
            let left = leaf.days_left;
            if leaf.expired {
                raise(
                    CheckStatus::Critical,
                    format!("the server certificate expired on {}", leaf.not_after),
                    &mut problems,
                );
            } else if left * 86400 <= opts.critical.as_secs() as i64 {
                raise(
                    CheckStatus::Critical,
                    format!(
                        "the server certificate expires in {left} days ({})",
                        leaf.not_after
                    ),
                    &mut problems,
                );
            } else if left * 86400 <= opts.warning.as_secs() as i64 {
                raise(
                    CheckStatus::Warning,
                    format!(
                        "the server certificate expires in {left} days ({})",
                        leaf.not_after
                    ),
                    &mut problems,
                );
            }
        }
        for l in &r.legacy_protocols {
            if l.accepted == Some(true) {
                raise(
                    CheckStatus::Warning,
                    format!(
                        "the server accepts {}; set ssl_min_protocol_version = 'TLSv1.2'",
                        l.version
                    ),
                    &mut problems,
                );
            }
        }
    }
    if let Some(p) = &r.plaintext_login {
        match &p.answer {
            StartupAnswer::AcceptedWithoutAuthentication => raise(
                CheckStatus::Critical,
                format!("user {:?} logs in to {:?} without TLS and without a password", p.user, p.database),
                &mut problems,
            ),
            StartupAnswer::AuthenticationRequested { method } => raise(
                CheckStatus::Critical,
                format!("user {:?} may log in to {:?} without TLS ({method} over plaintext); use hostssl rules", p.user, p.database),
                &mut problems,
            ),
            StartupAnswer::Refused { .. } => {}
        }
    }
    r.status = status;
    r.problems = problems;
    let what = match (&r.tls_version, r.chain.first()) {
        (Some(v), Some(leaf)) => format!(
            "{} {} with {}; certificate {} expires {} ({} days)",
            r.target,
            v,
            r.cipher.as_deref().unwrap_or("?"),
            leaf.subject,
            leaf.not_after,
            leaf.days_left
        ),
        _ => format!("{} answered {:?} to SSLRequest", r.target, r.answer),
    };
    r.summary = if r.problems.is_empty() {
        format!("{}: {what}", status.label())
    } else {
        format!("{}: {}; {what}", status.label(), r.problems.join("; "))
    };
}

impl ProbeReport {
    /// Human-readable rendering.
    pub fn to_text(&self) -> String {
        let mut s = format!("{}\n", self.summary);
        let mut line = |k: &str, v: String| {
            let l = format!("{k:<26}{v}");
            s.push_str(l.trim_end());
            s.push('\n');
        };
        line(
            "  Answer to SSLRequest:",
            match self.answer {
                SslAnswer::Tls => "S (TLS)".into(),
                SslAnswer::NoTls => "N (no TLS)".into(),
            },
        );
        if let Some(v) = &self.tls_version {
            line("  Protocol:", v.clone());
        }
        if let Some(c) = &self.cipher {
            line("  Cipher:", c.clone());
        }
        for (i, c) in self.chain.iter().enumerate() {
            line(&format!("  Certificate {i}:"), c.subject.clone());
            line("    Issuer:", c.issuer.clone());
            line("    SANs:", c.sans.join(", "));
            line(
                "    Valid:",
                format!(
                    "{} to {} ({} days left)",
                    c.not_before, c.not_after, c.days_left
                ),
            );
            line("    Key:", format!("{}, {}", c.key, c.signature_algorithm));
            line("    Serial:", c.serial.clone());
            line("    SHA-256:", c.sha256_fingerprint.clone());
        }
        if let Some(c) = &self.chain_verification {
            line(
                "  Chain:",
                if c.ok {
                    "verified against the root certificate".into()
                } else {
                    format!("NOT verified: {}", c.error.clone().unwrap_or_default())
                },
            );
        }
        if let Some(h) = &self.host_name {
            line(
                "  Host name:",
                if h.ok {
                    format!("{:?} matches (libpq rules)", self.host)
                } else {
                    h.error.clone().unwrap_or_default()
                },
            );
        }
        if self.answer == SslAnswer::Tls {
            line(
                "  Client certificate:",
                if self.client_certificate_requested {
                    format!(
                        "requested; accepted CAs: {}",
                        if self.acceptable_client_ca_names.is_empty() {
                            "(any)".into()
                        } else {
                            self.acceptable_client_ca_names.join("; ")
                        }
                    )
                } else {
                    "not requested".into()
                },
            );
        }
        for l in &self.legacy_protocols {
            line(
                &format!("  {}:", l.version),
                match (l.accepted, &l.error) {
                    (Some(true), _) => "ACCEPTED".into(),
                    (Some(false), _) => "refused".into(),
                    (None, Some(e)) => format!("unknown ({e})"),
                    _ => "unknown".into(),
                },
            );
        }
        if let Some(p) = &self.plaintext_login {
            line(
                "  Login without TLS:",
                match &p.answer {
                    StartupAnswer::AcceptedWithoutAuthentication => {
                        format!("{}@{}: ACCEPTED with no password", p.user, p.database)
                    }
                    StartupAnswer::AuthenticationRequested { method } => format!(
                        "{}@{}: ACCEPTED ({method} over plaintext)",
                        p.user, p.database
                    ),
                    StartupAnswer::Refused { sqlstate, message } => {
                        format!("{}@{}: refused ({sqlstate}: {message})", p.user, p.database)
                    }
                },
            );
        }
        s
    }
}
