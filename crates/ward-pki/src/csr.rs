//! Certificate signing requests made where the key lives: [`new_csr`] makes a key and a CSR
//! on the target host (`ward pki csr`), and [`parse_csr`] reads one made anywhere (Ward,
//! cfssl `genkey`, `openssl req`) for the CA to sign (`ward pki sign`), after checking that
//! it is signed by the key it carries. Only the subject, the SANs and the public key are
//! taken from a CSR: what the certificate may do and how long it lives are the profile's.

use crate::error::{Error, Result};
use crate::key::{KeyAlgorithm, KeyEncoding, PrivateKey};
use crate::names::SubjectName;
use crate::request::{Subject, SubjectAttributes};
use rcgen::CertificateParams;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

/// A CSR read and checked.
#[derive(Debug)]
pub struct ParsedCsr {
    pub subject: Subject,
    pub hosts: Vec<SubjectName>,
    /// Its public key, which the certificate will carry.
    pub public_key: rcgen::SubjectPublicKeyInfo,
    /// The CSR as PEM (cfssl's JSON carries it back as `csr`).
    pub pem: String,
}

/// A new key (returned as PEM in `encoding`) and a CSR for `subject` and `hosts`.
pub fn new_csr(
    subject: &Subject,
    hosts: &[SubjectName],
    algorithm: KeyAlgorithm,
    encoding: KeyEncoding,
) -> Result<(String, String)> {
    let key = PrivateKey::generate(algorithm)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = subject.to_rcgen()?;
    params.subject_alt_names = hosts
        .iter()
        .map(SubjectName::to_rcgen)
        .collect::<Result<_>>()?;
    let csr = params.serialize_request(&key.pair)?.pem()?;
    Ok((key.to_pem(encoding)?, csr))
}

/// Reads the one CSR in `bytes` (PEM) from `source` and checks its signature.
pub fn parse_csr(source: &str, bytes: &[u8]) -> Result<ParsedCsr> {
    let malformed = |reason: String| Error::Malformed {
        what: source.to_string(),
        format: "PEM certificate request",
        reason,
    };
    let blocks = crate::pem::parse(bytes).map_err(|e| malformed(e.to_string()))?;
    let mut csrs = blocks.iter().filter(|b| b.label == "CERTIFICATE REQUEST");
    let (Some(block), None) = (csrs.next(), csrs.next()) else {
        return Err(malformed(
            "expected exactly one -----BEGIN CERTIFICATE REQUEST----- block".into(),
        ));
    };
    let (rest, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&block.der)
            .map_err(|e| malformed(format!("not a PKCS#10 request: {e}")))?;
    if !rest.is_empty() {
        return Err(malformed("bytes after the request".into()));
    }
    csr.verify_signature().map_err(|_| {
        Error::invalid(
            source,
            "its signature does not verify with the public key it carries: the request was altered, or not signed by its own key; make it again on the host that holds the key",
        )
    })?;
    let info = &csr.certification_request_info;
    let subject = subject_of(source, &info.subject)?;
    let mut hosts = Vec::new();
    for ext in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            for name in &san.general_names {
                let n = match name {
                    GeneralName::DNSName(d) => SubjectName::parse(d)?,
                    GeneralName::RFC822Name(e) => SubjectName::parse(e)?,
                    GeneralName::URI(u) => SubjectName::parse(u)?,
                    GeneralName::IPAddress(ip) => SubjectName::Ip(ip_of(source, ip)?),
                    other => {
                        return Err(Error::invalid(
                            format!("{source}: subjectAltName"),
                            format!("{other} is not a DNS name, IP address, e-mail address or URI: Ward signs only those"),
                        ))
                    }
                };
                if !hosts.contains(&n) {
                    hosts.push(n);
                }
            }
        }
    }
    let public_key = rcgen::SubjectPublicKeyInfo::from_der(info.subject_pki.raw).map_err(|e| {
        Error::invalid(
            format!("{source}: public key"),
            format!("{e}: Ward signs RSA, ECDSA P-256/P-384 and Ed25519 keys"),
        )
    })?;
    Ok(ParsedCsr {
        subject,
        hosts,
        public_key,
        pem: crate::pem::encode("CERTIFICATE REQUEST", &block.der),
    })
}

fn ip_of(source: &str, raw: &[u8]) -> Result<std::net::IpAddr> {
    match raw.len() {
        4 => Ok(std::net::IpAddr::from(
            <[u8; 4]>::try_from(raw).unwrap_or_default(),
        )),
        16 => Ok(std::net::IpAddr::from(
            <[u8; 16]>::try_from(raw).unwrap_or_default(),
        )),
        n => Err(Error::invalid(
            format!("{source}: subjectAltName"),
            format!("an IP address of {n} bytes"),
        )),
    }
}

/// The subject as Ward's [`Subject`]: the CN, and each other attribute Ward writes (C, ST,
/// L, O, OU, E, serialNumber) in the request's order; any other attribute is refused.
fn subject_of(source: &str, name: &x509_parser::x509::X509Name<'_>) -> Result<Subject> {
    use x509_parser::oid_registry as oids;
    let mut subject = Subject::default();
    for attr in name.iter_attributes() {
        let value = attr
            .as_str()
            .map_err(|_| {
                Error::invalid(
                    format!("{source}: subject"),
                    format!("attribute {} is not a string", attr.attr_type()),
                )
            })?
            .to_string();
        let oid = attr.attr_type();
        let mut a = SubjectAttributes::default();
        if *oid == oids::OID_X509_COMMON_NAME {
            subject.common_name = value;
            continue;
        } else if *oid == oids::OID_X509_COUNTRY_NAME {
            a.country = Some(value);
        } else if *oid == oids::OID_X509_STATE_OR_PROVINCE_NAME {
            a.state = Some(value);
        } else if *oid == oids::OID_X509_LOCALITY_NAME {
            a.locality = Some(value);
        } else if *oid == oids::OID_X509_ORGANIZATION_NAME {
            a.organization = Some(value);
        } else if *oid == oids::OID_X509_ORGANIZATIONAL_UNIT {
            a.organizational_unit = Some(value);
        } else if *oid == oids::OID_PKCS9_EMAIL_ADDRESS {
            a.email = Some(value);
        } else if *oid == oids::OID_X509_SERIALNUMBER {
            a.serial_number = Some(value);
        } else {
            return Err(Error::invalid(
                format!("{source}: subject"),
                format!("attribute {oid} is not one Ward writes (CN, C, ST, L, O, OU, E, serialNumber): make the request without it"),
            ));
        }
        subject.attributes.push(a);
    }
    if subject.common_name.is_empty() {
        return Err(Error::invalid(
            format!("{source}: subject"),
            "no common name (CN): give the request one",
        ));
    }
    // The CN becomes an agent's user name and appears in logs: Ward's CN rule (length,
    // no control characters) applies to requests as to everything it issues.
    crate::request::check_common_name(&format!("{source}: subject CN"), &subject.common_name)?;
    Ok(subject)
}
