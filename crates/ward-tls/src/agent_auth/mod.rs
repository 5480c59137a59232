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
const MAX_CRL_BYTES: usize = ward_io::files::CRL.bytes as usize;
const MAX_OCSP_BYTES: usize = 1 << 20;

const SHA1_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const OCSP_BASIC_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");

mod acceptor;
mod cache;
mod crl;
mod fetch;
mod ocsp;
mod revocation;
mod verifier;

pub use acceptor::{AgentAuth, AgentAuthSettings, AgentIdentity, Refusal, Refused};
use cache::*;
use crl::*;
use fetch::*;
use ocsp::*;
use revocation::*;
use verifier::*;

pub(super) fn no_certificate_reason() -> String {
    "the agent presented no client certificate; agent-auth is on, so give the agent a certificate and key signed by the trusted CA (its cert-file and key-file)".into()
}

pub(super) fn refusal(
    label: &'static str,
    peer: SocketAddr,
    cert: Option<(&str, &str)>,
    reason: String,
) -> Refusal {
    let (message, for_agent) = match cert {
        Some((subject, serial)) => (
            format!("refused agent {peer} (certificate {subject}, serial {serial}): {reason}"),
            format!("the backend refused this agent's certificate ({subject}, serial {serial}): {reason}"),
        ),
        None => (
            format!("refused agent {peer}: {reason}"),
            format!("the backend refused this agent: {reason}"),
        ),
    };
    Refusal {
        label,
        message,
        for_agent,
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn date(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .map(ward_io::text::format_time)
        .unwrap_or_else(|_| secs.to_string())
}

pub(super) use ward_io::unix_now;

pub(super) fn sha1(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, bytes)
        .as_ref()
        .to_vec()
}

/// A serial without leading zero bytes, for comparisons.
pub(super) fn normalize_serial(raw: &[u8]) -> Vec<u8> {
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    raw[start..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        match parse_location("file:///etc/ward/crl.pem").unwrap() {
            Location::File(p) => assert_eq!(p, PathBuf::from("/etc/ward/crl.pem")),
            _ => panic!(),
        }
        match parse_location("file://localhost/a%20b.pem").unwrap() {
            Location::File(p) => assert_eq!(p, PathBuf::from("/a b.pem")),
            _ => panic!(),
        }
        match parse_location("http://127.0.0.1:8080/ca.crl").unwrap() {
            Location::Http(h) => {
                assert_eq!(
                    (h.host.as_str(), h.port, h.path.as_str()),
                    ("127.0.0.1", 8080, "/ca.crl")
                );
                assert_eq!(h.authority(), "127.0.0.1:8080");
            }
            _ => panic!(),
        }
        match parse_location("http://[::1]/x").unwrap() {
            Location::Http(h) => assert_eq!((h.host.as_str(), h.port), ("::1", 80)),
            _ => panic!(),
        }
        match parse_location("http://ca.example.com").unwrap() {
            Location::Http(h) => assert_eq!(h.path, "/"),
            _ => panic!(),
        }
        assert!(parse_location("https://ca.example.com/crl").is_err());
        assert!(parse_location("ldap://ca.example.com/crl").is_err());
        assert!(parse_location("file://relative.pem").is_err());
        assert!(parse_location("http://:80/x").is_err());
        assert!(parse_location("http://h:99999/x").is_err());
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
