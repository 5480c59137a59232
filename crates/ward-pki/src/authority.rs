//! The certificate authority: creating a root, loading one (Ward's or cfssl's) with every
//! check a security review expects, and signing certificates under a profile.

use crate::error::{Error, Result};
use crate::key::{KeyAlgorithm, KeyEncoding, PrivateKey};
use crate::names::SubjectName;
use crate::profile::{SigningProfile, Usage};
use crate::request::{CertificateRequest, Subject};
use rcgen::{CertificateParams, IsCa, Issuer, KeyIdMethod, KeyPair};
use std::path::{Path, PathBuf};
use std::time::Duration;
use time::OffsetDateTime;
use ward_io::files;

/// cfssl's `-initca` lifetime: five years.
pub const DEFAULT_CA_EXPIRY: Duration = Duration::from_secs(43800 * 3600);
/// cfssl backdates notBefore by five minutes to absorb clock skew.
pub const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// A CA certificate with its signing key, checked on load.
pub struct CertificateAuthority {
    /// The CA certificate as PEM, for chains and `ca.pem`.
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub common_name: String,
    pub not_after: OffsetDateTime,
    pub key_algorithm: KeyAlgorithm,
    /// The CA's key identifier: the AKI of everything it signs, CRLs included.
    pub subject_key_id: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CertificateAuthority({:?})", self.common_name)
    }
}

/// What was issued: PEM texts and what the operator should be told.
#[derive(Debug)]
pub struct IssuedCertificate {
    pub cert_pem: String,
    pub csr_pem: String,
    /// The private key's PEM; `None` when an existing key was reused and not re-written.
    pub key_pem: Option<String>,
    pub not_after: OffsetDateTime,
    /// Notes for stderr (a CN added to the SANs, a clamped lifetime, …).
    pub notes: Vec<String>,
}

/// Where the private key of a new certificate comes from.
pub enum KeySource {
    Generate(KeyAlgorithm),
    Existing(PrivateKey),
    /// A request made where its key lives ([`crate::csr::parse_csr`], its signature
    /// checked): the certificate carries its public key, and no key is written.
    Request {
        public_key: rcgen::SubjectPublicKeyInfo,
        csr_pem: String,
    },
}

/// The key a certificate is made for: one the CA holds (written out when `generated`), or
/// only the public half, from a request.
enum LeafKey {
    Own { key: PrivateKey, generated: bool },
    Public(rcgen::SubjectPublicKeyInfo, String),
}

/// Everything that decides what a leaf certificate looks like.
pub struct LeafRequest {
    pub subject: Subject,
    pub hosts: Vec<SubjectName>,
    pub key: KeySource,
    pub key_encoding: KeyEncoding,
    pub profile: SigningProfile,
    /// Shorten a lifetime that would outlive the CA instead of refusing.
    pub clamp: bool,
}

/// The conventional file names of a CA directory.
pub fn ca_paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("ca.pem"), dir.join("ca-key.pem"))
}

impl CertificateAuthority {
    /// Creates a self-signed root from a request (cfssl's `-initca`): cert sign + crl sign,
    /// CA:TRUE (with the request's pathlen), five years unless `ca.expiry` says otherwise.
    pub fn create(
        request: &CertificateRequest,
        encoding: KeyEncoding,
    ) -> Result<(CertificateAuthority, IssuedCertificate)> {
        if request.subject.common_name.trim().is_empty() {
            return Err(Error::invalid(
                "CA request",
                "CN is empty; give the CA a name such as \"Ward CA\"",
            ));
        }
        let key = PrivateKey::generate(request.key)?;
        let ca_opts = request.ca.clone().unwrap_or_default();
        let expiry = ca_opts.expiry.unwrap_or(DEFAULT_CA_EXPIRY);
        let mut params = CertificateParams::default();
        params.distinguished_name = request.subject.to_rcgen()?;
        let (not_before, not_after) = validity(expiry)?;
        params.not_before = not_before;
        params.not_after = not_after;
        params.serial_number = Some(random_serial()?);
        params.is_ca = IsCa::Ca(match ca_opts.path_len {
            Some(n) => rcgen::BasicConstraints::Constrained(n),
            None => rcgen::BasicConstraints::Unconstrained,
        });
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let subject_key_id = key_id(key.public_key_raw());
        params.key_identifier_method = KeyIdMethod::PreSpecified(subject_key_id.clone());
        params.use_authority_key_identifier_extension = false;
        let mut notes = Vec::new();
        if !request.hosts.is_empty() {
            notes.push(format!(
                "note: hosts {} ignored for a CA certificate (a CA is named by its subject)",
                join_names(&request.hosts)
            ));
        }
        let cert = params.self_signed(&key.pair)?;
        let mut csr_params = CertificateParams::default();
        csr_params.distinguished_name = params.distinguished_name.clone();
        let csr = csr_params.serialize_request(&key.pair)?;
        let issued = IssuedCertificate {
            cert_pem: cert.pem(),
            csr_pem: csr.pem()?,
            key_pem: Some(key.to_pem(encoding)?),
            not_after,
            notes,
        };
        let ca = CertificateAuthority {
            cert_pem: issued.cert_pem.clone(),
            cert_der: cert.der().to_vec(),
            common_name: request.subject.common_name.clone(),
            not_after,
            key_algorithm: key.algorithm,
            subject_key_id,
            issuer: Issuer::new(params, key.pair),
        };
        Ok((ca, issued))
    }

    /// Loads and checks a CA: the certificate parses and says CA:TRUE, it has not expired, the
    /// key file is private (0600-style), unencrypted, and matches the certificate.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self> {
        let cert_bytes = files::read(cert_path)?;
        let bad = |reason: String| Error::BadCertificate {
            path: cert_path.to_path_buf(),
            reason,
        };
        let der = crate::pem::parse(&cert_bytes)
            .map_err(|e| bad(format!("not PEM: {e}")))?
            .into_iter()
            .find(|b| b.label == "CERTIFICATE")
            .ok_or_else(|| bad("no CERTIFICATE block found".into()))?
            .der;
        let (_, x509) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| bad(format!("malformed certificate: {e}")))?;
        let is_ca = x509
            .basic_constraints()
            .ok()
            .flatten()
            .map(|bc| bc.value.ca)
            .unwrap_or(false);
        if !is_ca {
            return Err(Error::NotCa {
                path: cert_path.to_path_buf(),
            });
        }
        let not_after = x509.validity().not_after.to_datetime();
        if not_after <= OffsetDateTime::now_utc() {
            return Err(Error::CaExpired {
                path: cert_path.to_path_buf(),
                not_after: crate::inspect::format_time(not_after),
            });
        }
        if let Ok(Some(ku)) = x509.key_usage() {
            if !ku.value.key_cert_sign() {
                return Err(bad(
                    "CA certificate's key usage lacks cert sign; it cannot sign certificates"
                        .into(),
                ));
            }
        }
        let key = PrivateKey::load(key_path)?;
        if key.public_key_raw() != x509.public_key().subject_public_key.data.as_ref() {
            return Err(Error::KeyMismatch {
                key: key_path.to_path_buf(),
                cert: cert_path.to_path_buf(),
            });
        }
        let common_name = crate::inspect::common_name(x509.subject());
        let key_algorithm = key.algorithm;
        let subject_key_id = x509
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                    Some(k.0.to_vec())
                }
                _ => None,
            })
            .unwrap_or_else(|| key_id(x509.public_key().subject_public_key.data.as_ref()));
        let issuer = Issuer::from_ca_cert_der(&der.clone().into(), key.pair)
            .map_err(|e| bad(format!("cannot use as issuer: {e}")))?;
        Ok(CertificateAuthority {
            cert_pem: String::from_utf8_lossy(&cert_bytes).into_owned(),
            cert_der: der,
            common_name,
            not_after,
            key_algorithm,
            subject_key_id,
            issuer,
        })
    }

    /// Loads `ca.pem` and `ca-key.pem` from a CA directory.
    pub fn load_dir(dir: &Path) -> Result<Self> {
        let (c, k) = ca_paths(dir);
        Self::load(&c, &k)
    }

    /// Signs a leaf certificate.
    pub fn issue(&self, req: LeafRequest) -> Result<IssuedCertificate> {
        let mut notes = Vec::new();
        let key = match req.key {
            KeySource::Generate(alg) => LeafKey::Own {
                key: PrivateKey::generate(alg)?,
                generated: true,
            },
            KeySource::Existing(key) => LeafKey::Own {
                key,
                generated: false,
            },
            KeySource::Request {
                public_key,
                csr_pem,
            } => LeafKey::Public(public_key, csr_pem),
        };
        req.profile.allows(&req.subject.common_name, &req.hosts)?;
        let mut hosts = req.hosts;
        if let Some(cn_name) = SubjectName::from_common_name(&req.subject.common_name) {
            if !req.profile.ca_constraint.is_ca && !hosts.contains(&cn_name) {
                notes.push(format!(
                    "note: added the CN {:?} to the SANs as {cn_name} (cfssl leaves it out; verifiers that follow RFC 6125, Go and libpq's verify-full, ignore the CN when SANs are present)",
                    req.subject.common_name
                ));
                hosts.insert(0, cn_name);
            }
        }
        let (not_before, mut not_after) = validity(req.profile.expiry)?;
        if not_after > self.not_after {
            if req.clamp {
                notes.push(format!(
                    "warning: shortened the lifetime of {:?} to end with its CA on {} (asked for {})",
                    req.subject.common_name,
                    crate::inspect::format_time(self.not_after),
                    crate::inspect::format_time(not_after)
                ));
                not_after = self.not_after;
            } else {
                return Err(Error::OutlivesCa {
                    cn: req.subject.common_name.clone(),
                    leaf_not_after: crate::inspect::format_time(not_after),
                    ca_not_after: crate::inspect::format_time(self.not_after),
                });
            }
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = req.subject.to_rcgen()?;
        params.subject_alt_names = hosts
            .iter()
            .map(SubjectName::to_rcgen)
            .collect::<Result<_>>()?;
        // The CSR carries the subject and names only, as cfssl's does.
        let csr = match &key {
            LeafKey::Own { key, .. } => params.serialize_request(&key.pair)?.pem()?,
            LeafKey::Public(_, pem) => pem.clone(),
        };
        params.not_before = not_before;
        params.not_after = not_after;
        params.serial_number = Some(random_serial()?);
        params.key_usages = req
            .profile
            .usages
            .iter()
            .filter_map(Usage::key_usage)
            .collect();
        params.extended_key_usages = req
            .profile
            .usages
            .iter()
            .filter_map(Usage::extended_key_usage)
            .collect();
        params.is_ca = if req.profile.ca_constraint.is_ca {
            IsCa::Ca(match req.profile.ca_constraint.max_path_len {
                Some(n) => rcgen::BasicConstraints::Constrained(n),
                None => rcgen::BasicConstraints::Unconstrained,
            })
        } else {
            IsCa::ExplicitNoCa
        };
        params.key_identifier_method = KeyIdMethod::PreSpecified(key_id(match &key {
            LeafKey::Own { key, .. } => key.public_key_raw(),
            LeafKey::Public(p, _) => rcgen::PublicKeyData::der_bytes(p),
        }));
        params.use_authority_key_identifier_extension = true;
        if let Some(url) = &req.profile.crl_url {
            params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: vec![url.clone()],
            }];
        }
        if req.profile.ocsp_url.is_some() || !req.profile.issuer_urls.is_empty() {
            params.custom_extensions.push(authority_info_access(
                req.profile.ocsp_url.as_deref(),
                &req.profile.issuer_urls,
            ));
        }
        let cert = match &key {
            LeafKey::Own { key, .. } => params.signed_by(&key.pair, &self.issuer)?,
            LeafKey::Public(p, _) => params.signed_by(p, &self.issuer)?,
        };
        Ok(IssuedCertificate {
            cert_pem: cert.pem(),
            csr_pem: csr,
            key_pem: match key {
                LeafKey::Own {
                    key,
                    generated: true,
                } => Some(key.to_pem(req.key_encoding)?),
                _ => None,
            },
            not_after,
            notes,
        })
    }

    /// The issuer, for CRL signing.
    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }
}

/// notBefore: now rounded to the minute, less five minutes (cfssl's); notAfter: notBefore
/// plus the lifetime.
fn validity(lifetime: Duration) -> Result<(OffsetDateTime, OffsetDateTime)> {
    let now = OffsetDateTime::now_utc();
    let secs = now.unix_timestamp();
    let rounded = (secs + 30).div_euclid(60) * 60;
    let not_before = OffsetDateTime::from_unix_timestamp(rounded)
        .map_err(|e| Error::Signing(e.to_string()))?
        - BACKDATE;
    let lifetime = time::Duration::try_from(lifetime)
        .map_err(|_| Error::invalid("expiry", "lifetime is too long"))?;
    let not_after = not_before
        .checked_add(lifetime)
        .filter(|t| t.year() < 10000)
        .ok_or_else(|| Error::invalid("expiry", "lifetime ends after the year 9999"))?;
    Ok((not_before, not_after))
}

/// 20 random bytes with the top bit cleared: positive, and unguessable.
fn random_serial() -> Result<rcgen::SerialNumber> {
    let mut bytes = [0u8; 20];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| Error::Signing("no randomness".into()))?;
    bytes[0] &= 0x7f;
    if bytes[0] == 0 {
        bytes[0] = 0x01;
    }
    Ok(rcgen::SerialNumber::from_slice(&bytes))
}

/// The key identifier cfssl and OpenSSL use: SHA-1 of the subjectPublicKey bits.
pub(crate) fn key_id(public_key_bits: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        public_key_bits,
    )
    .as_ref()
    .to_vec()
}

fn join_names(names: &[SubjectName]) -> String {
    names
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// authorityInfoAccess with an OCSP responder and CA issuer URLs.
fn authority_info_access(ocsp: Option<&str>, issuers: &[String]) -> rcgen::CustomExtension {
    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = body.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(body);
        out
    }
    // id-ad-ocsp 1.3.6.1.5.5.7.48.1, id-ad-caIssuers 1.3.6.1.5.5.7.48.2
    let oid = |last: u8| tlv(0x06, &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, last]);
    let mut seq = Vec::new();
    for (method, url) in ocsp
        .map(|u| (1u8, u))
        .into_iter()
        .chain(issuers.iter().map(|u| (2u8, u.as_str())))
    {
        let mut desc = oid(method);
        desc.extend(tlv(0x86, url.as_bytes()));
        seq.extend(tlv(0x30, &desc));
    }
    rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], tlv(0x30, &seq))
}
