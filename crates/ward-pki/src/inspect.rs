//! `ward pki info`: what a certificate, CSR or CRL says, for people (text) and programs (JSON).

use crate::error::{Error, Result};
use ::time::OffsetDateTime;
use serde::Serialize;
use std::path::Path;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::*;

pub use ward_io::text::{format_time, hex_colon};

/// A name's first common name ("" when it has none or it is not a string).
pub fn common_name(name: &X509Name<'_>) -> String {
    name.iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// What a certificate says.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateInfo {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub serial_decimal: String,
    pub sans: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    pub days_left: i64,
    pub expired: bool,
    pub key: String,
    pub signature_algorithm: String,
    pub is_ca: bool,
    pub path_len: Option<u32>,
    pub key_usages: Vec<String>,
    pub extended_key_usages: Vec<String>,
    pub subject_key_id: Option<String>,
    pub authority_key_id: Option<String>,
    pub crl_distribution_points: Vec<String>,
    pub ocsp_urls: Vec<String>,
    pub sha256_fingerprint: String,
    /// With `--ca`: whether the certificate verifies against it, and why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainResult>,
}

/// The outcome of checking a certificate against a CA.
#[derive(Debug, Clone, Serialize)]
pub struct ChainResult {
    pub ca: String,
    pub ok: bool,
    pub reason: Option<String>,
}

/// What a CSR says.
#[derive(Debug, Clone, Serialize)]
pub struct CsrInfo {
    pub subject: String,
    pub sans: Vec<String>,
    pub key: String,
    pub signature_algorithm: String,
    pub signature_valid: bool,
}

/// What a CRL says.
#[derive(Debug, Clone, Serialize)]
pub struct CrlInfo {
    pub issuer: String,
    pub this_update: String,
    pub next_update: Option<String>,
    pub crl_number: Option<String>,
    pub authority_key_id: Option<String>,
    pub signature_algorithm: String,
    pub revoked: Vec<RevokedInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RevokedInfo {
    pub serial: String,
    pub revoked_at: String,
    pub reason: Option<String>,
}

/// One inspected object.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Inspected {
    Certificate(Box<CertificateInfo>),
    CertificateRequest(CsrInfo),
    RevocationList(CrlInfo),
}

/// The PEM blocks (or one DER object) of a file.
pub(crate) fn pem_or_der_blocks(path: &Path, bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
    if bytes.starts_with(b"-----")
        || std::str::from_utf8(bytes)
            .map(|s| s.contains("-----BEGIN"))
            .unwrap_or(false)
    {
        let blocks = crate::pem::parse(bytes).map_err(|e| Error::BadCertificate {
            path: path.to_path_buf(),
            reason: format!("malformed PEM: {e}"),
        })?;
        return Ok(blocks
            .into_iter()
            .map(|b| (b.label.to_string(), b.der))
            .collect());
    }
    // cfssl gencrl prints base64 DER without armour; accept it, and raw DER.
    let trimmed: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if let Ok(der) = base64_decode(&trimmed) {
        if der.first() == Some(&0x30) {
            return Ok(vec![(String::new(), der)]);
        }
    }
    if bytes.first() == Some(&0x30) {
        return Ok(vec![(String::new(), bytes.to_vec())]);
    }
    Err(Error::BadCertificate {
        path: path.to_path_buf(),
        reason: "neither PEM nor DER".into(),
    })
}

fn base64_decode(input: &[u8]) -> std::result::Result<Vec<u8>, ()> {
    let val = |c: u8| -> std::result::Result<u32, ()> {
        Ok(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(()),
        } as u32)
    };
    let input = input
        .strip_suffix(b"==")
        .or_else(|| input.strip_suffix(b"="))
        .unwrap_or(input);
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    for chunk in input.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= val(*c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Ok(out)
}

/// Inspects every object in a file. With `ca`, certificates and CRLs are checked against it.
pub fn inspect_file(path: &Path, ca: Option<&Path>) -> Result<Vec<Inspected>> {
    let bytes = ward_io::files::read_bounded(path, ward_io::files::CRL)?;
    let ca_der = match ca {
        Some(p) => Some((p, first_certificate_der(p)?)),
        None => None,
    };
    let mut out = Vec::new();
    for (tag, der) in pem_or_der_blocks(path, &bytes)? {
        let bad = |reason: String| Error::BadCertificate {
            path: path.to_path_buf(),
            reason,
        };
        match tag.as_str() {
            "CERTIFICATE" => out.push(Inspected::Certificate(Box::new(certificate_info(
                path,
                &der,
                ca_der.as_ref(),
            )?))),
            "CERTIFICATE REQUEST" => {
                let (_, csr) = X509CertificationRequest::from_der(&der)
                    .map_err(|e| bad(format!("malformed CSR: {e}")))?;
                let info = &csr.certification_request_info;
                let mut sans = Vec::new();
                if let Some(exts) = csr.requested_extensions() {
                    for e in exts {
                        if let ParsedExtension::SubjectAlternativeName(s) = e {
                            sans.extend(s.general_names.iter().map(general_name));
                        }
                    }
                }
                out.push(Inspected::CertificateRequest(CsrInfo {
                    subject: info.subject.to_string(),
                    sans,
                    key: key_description(&info.subject_pki),
                    signature_algorithm: signature_name(&csr.signature_algorithm.algorithm),
                    signature_valid: csr.verify_signature().is_ok(),
                }));
            }
            "X509 CRL" | "" => match x509_parser::parse_x509_crl(&der) {
                Ok((_, crl)) => {
                    out.push(Inspected::RevocationList(crl_info(&crl, ca_der.as_ref())))
                }
                Err(_) if tag.is_empty() => out.push(Inspected::Certificate(Box::new(
                    certificate_info(path, &der, ca_der.as_ref())?,
                ))),
                Err(e) => return Err(bad(format!("malformed CRL: {e}"))),
            },
            t if t.ends_with("PRIVATE KEY") => {
                return Err(bad(
                    "holds a private key; `ward pki info` shows certificates, CSRs and CRLs".into(),
                ))
            }
            other => return Err(bad(format!("unsupported PEM block {other:?}"))),
        }
    }
    if out.is_empty() {
        return Err(Error::BadCertificate {
            path: path.to_path_buf(),
            reason: "no certificate, CSR or CRL found".into(),
        });
    }
    Ok(out)
}

/// The DER of the first certificate in a PEM or DER file (read under the PEM cap).
pub fn first_certificate_der(path: &Path) -> Result<Vec<u8>> {
    let bytes = ward_io::files::read_bounded(path, ward_io::files::PEM)?;
    pem_or_der_blocks(path, &bytes)?
        .into_iter()
        .find(|(t, _)| t == "CERTIFICATE" || t.is_empty())
        .map(|(_, d)| d)
        .ok_or_else(|| Error::BadCertificate {
            path: path.to_path_buf(),
            reason: "no CERTIFICATE block found".into(),
        })
}

/// Parses one certificate's DER into its description.
pub fn certificate_info(
    path: &Path,
    der: &[u8],
    ca: Option<&(&Path, Vec<u8>)>,
) -> Result<CertificateInfo> {
    let (_, x) = parse_x509_certificate(der).map_err(|e| Error::BadCertificate {
        path: path.to_path_buf(),
        reason: format!("malformed certificate: {e}"),
    })?;
    let now = OffsetDateTime::now_utc();
    let not_after = x.validity().not_after.to_datetime();
    let mut info = CertificateInfo {
        subject: x.subject().to_string(),
        issuer: x.issuer().to_string(),
        serial: hex_colon(x.raw_serial()),
        serial_decimal: x.serial.to_str_radix(10),
        sans: Vec::new(),
        not_before: format_time(x.validity().not_before.to_datetime()),
        not_after: format_time(not_after),
        days_left: (not_after - now).whole_days(),
        expired: not_after <= now,
        key: key_description(x.public_key()),
        signature_algorithm: signature_name(&x.signature_algorithm.algorithm),
        is_ca: false,
        path_len: None,
        key_usages: Vec::new(),
        extended_key_usages: Vec::new(),
        subject_key_id: None,
        authority_key_id: None,
        crl_distribution_points: Vec::new(),
        ocsp_urls: Vec::new(),
        sha256_fingerprint: hex_colon(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der).as_ref(),
        ),
        chain: None,
    };
    for ext in x.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(s) => {
                info.sans.extend(s.general_names.iter().map(general_name))
            }
            ParsedExtension::BasicConstraints(bc) => {
                info.is_ca = bc.ca;
                info.path_len = bc.path_len_constraint;
            }
            ParsedExtension::KeyUsage(ku) => {
                let names = [
                    (ku.digital_signature(), "digital signature"),
                    (ku.non_repudiation(), "content commitment"),
                    (ku.key_encipherment(), "key encipherment"),
                    (ku.data_encipherment(), "data encipherment"),
                    (ku.key_agreement(), "key agreement"),
                    (ku.key_cert_sign(), "cert sign"),
                    (ku.crl_sign(), "crl sign"),
                    (ku.encipher_only(), "encipher only"),
                    (ku.decipher_only(), "decipher only"),
                ];
                info.key_usages = names
                    .iter()
                    .filter(|(b, _)| *b)
                    .map(|(_, n)| n.to_string())
                    .collect();
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                let mut v = Vec::new();
                if eku.any {
                    v.push("any".to_string())
                }
                if eku.server_auth {
                    v.push("server auth".into())
                }
                if eku.client_auth {
                    v.push("client auth".into())
                }
                if eku.code_signing {
                    v.push("code signing".into())
                }
                if eku.email_protection {
                    v.push("email protection".into())
                }
                if eku.time_stamping {
                    v.push("timestamping".into())
                }
                if eku.ocsp_signing {
                    v.push("ocsp signing".into())
                }
                v.extend(eku.other.iter().map(|o| o.to_id_string()));
                info.extended_key_usages = v;
            }
            ParsedExtension::SubjectKeyIdentifier(k) => info.subject_key_id = Some(hex_colon(k.0)),
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                info.authority_key_id = a.key_identifier.as_ref().map(|k| hex_colon(k.0))
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                for p in points.iter() {
                    if let Some(x509_parser::extensions::DistributionPointName::FullName(names)) =
                        &p.distribution_point
                    {
                        info.crl_distribution_points
                            .extend(names.iter().filter_map(|n| match n {
                                GeneralName::URI(u) => Some(u.to_string()),
                                _ => None,
                            }));
                    }
                }
            }
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for d in aia.accessdescs.iter() {
                    if d.access_method.to_id_string() == "1.3.6.1.5.5.7.48.1" {
                        if let GeneralName::URI(u) = d.access_location {
                            info.ocsp_urls.push(u.to_string());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if let Some((ca_path, ca_der)) = ca {
        info.chain = Some(check_chain(&x, ca_path, ca_der));
    }
    Ok(info)
}

/// Checks that `cert` was issued by the CA certificate: the issuer name matches, the
/// signature verifies with the CA's key, and the CA is valid now and may sign.
pub fn check_chain(cert: &X509Certificate<'_>, ca_path: &Path, ca_der: &[u8]) -> ChainResult {
    let fail = |reason: String| ChainResult {
        ca: ca_path.display().to_string(),
        ok: false,
        reason: Some(reason),
    };
    let ca = match parse_x509_certificate(ca_der) {
        Ok((_, ca)) => ca,
        Err(e) => return fail(format!("CA certificate is malformed: {e}")),
    };
    if cert.issuer().as_raw() != ca.subject().as_raw() {
        return fail(format!(
            "issued by {:?}, not by this CA ({:?})",
            cert.issuer().to_string(),
            ca.subject().to_string()
        ));
    }
    if cert.verify_signature(Some(ca.public_key())).is_err() {
        return fail(format!(
            "signature does not verify with the key of {:?}",
            ca.subject().to_string()
        ));
    }
    if !ca
        .basic_constraints()
        .ok()
        .flatten()
        .map(|b| b.value.ca)
        .unwrap_or(false)
    {
        return fail("the issuer certificate is not a CA".into());
    }
    let now = OffsetDateTime::now_utc();
    if ca.validity().not_after.to_datetime() <= now {
        return fail(format!(
            "the CA expired on {}",
            format_time(ca.validity().not_after.to_datetime())
        ));
    }
    if cert.validity().not_after.to_datetime() <= now {
        return fail(format!(
            "the certificate expired on {}",
            format_time(cert.validity().not_after.to_datetime())
        ));
    }
    if cert.validity().not_before.to_datetime() > now {
        return fail(format!(
            "the certificate is not valid before {}",
            format_time(cert.validity().not_before.to_datetime())
        ));
    }
    ChainResult {
        ca: ca_path.display().to_string(),
        ok: true,
        reason: None,
    }
}

fn crl_info(crl: &CertificateRevocationList<'_>, ca: Option<&(&Path, Vec<u8>)>) -> CrlInfo {
    let mut aki = None;
    for ext in crl.extensions() {
        if let ParsedExtension::AuthorityKeyIdentifier(a) = ext.parsed_extension() {
            aki = a.key_identifier.as_ref().map(|k| hex_colon(k.0));
        }
    }
    let chain = ca.map(|(ca_path, ca_der)| match parse_x509_certificate(ca_der) {
        Ok((_, cacert)) => {
            let ok = crl.verify_signature(cacert.public_key()).is_ok();
            ChainResult {
                ca: ca_path.display().to_string(),
                ok,
                reason: (!ok)
                    .then(|| "CRL signature does not verify with this CA's key".to_string()),
            }
        }
        Err(e) => ChainResult {
            ca: ca_path.display().to_string(),
            ok: false,
            reason: Some(format!("CA certificate is malformed: {e}")),
        },
    });
    CrlInfo {
        issuer: crl.issuer().to_string(),
        this_update: format_time(crl.last_update().to_datetime()),
        next_update: crl.next_update().map(|t| format_time(t.to_datetime())),
        crl_number: crl.crl_number().map(|n| n.to_str_radix(10)),
        authority_key_id: aki,
        signature_algorithm: signature_name(&crl.signature_algorithm.algorithm),
        revoked: crl
            .iter_revoked_certificates()
            .map(|r| RevokedInfo {
                serial: hex_colon(r.raw_serial()),
                revoked_at: format_time(r.revocation_date.to_datetime()),
                reason: r
                    .reason_code()
                    .map(|(_, c)| crate::revocation::reason_name(c.0).to_string()),
            })
            .collect(),
        chain,
    }
}

fn general_name(n: &GeneralName<'_>) -> String {
    match n {
        GeneralName::DNSName(d) => format!("DNS:{d}"),
        GeneralName::IPAddress(b) => match b.len() {
            4 => format!("IP:{}", std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3])),
            16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                format!("IP:{}", std::net::Ipv6Addr::from(a))
            }
            _ => format!("IP:{}", hex_colon(b)),
        },
        GeneralName::RFC822Name(e) => format!("email:{e}"),
        GeneralName::URI(u) => format!("URI:{u}"),
        other => format!("{other:?}"),
    }
}

/// "RSA 2048", "ECDSA P-256", "Ed25519".
pub fn key_description(spki: &SubjectPublicKeyInfo<'_>) -> String {
    match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(r)) => format!("RSA {}", r.key_size()),
        Ok(x509_parser::public_key::PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => "ECDSA P-256".into(),
                Some("1.3.132.0.34") => "ECDSA P-384".into(),
                Some("1.3.132.0.35") => "ECDSA P-521".into(),
                Some(o) => format!("ECDSA {o}"),
                None => "ECDSA".into(),
            }
        }
        _ => match spki.algorithm.algorithm.to_id_string().as_str() {
            "1.3.101.112" => "Ed25519".into(),
            o => o.to_string(),
        },
    }
}

fn signature_name(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    match oid.to_id_string().as_str() {
        "1.2.840.113549.1.1.11" => "SHA256-RSA".into(),
        "1.2.840.113549.1.1.12" => "SHA384-RSA".into(),
        "1.2.840.113549.1.1.13" => "SHA512-RSA".into(),
        "1.2.840.113549.1.1.5" => "SHA1-RSA".into(),
        "1.2.840.10045.4.3.2" => "ECDSA-SHA256".into(),
        "1.2.840.10045.4.3.3" => "ECDSA-SHA384".into(),
        "1.2.840.10045.4.3.4" => "ECDSA-SHA512".into(),
        "1.3.101.112" => "Ed25519".into(),
        o => o.to_string(),
    }
}

impl Inspected {
    /// Human-readable rendering. Every value is shown through
    /// [`ward_io::text::one_line`]: subjects, issuers, SANs and URLs come from whoever made
    /// the file, and an escape sequence in them is shown (`\e`), never sent to the terminal.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let mut line = |k: &str, v: &str| {
            let l = format!("{k:<22}{}", ward_io::text::one_line(v));
            s.push_str(l.trim_end());
            s.push('\n');
        };
        match self {
            Inspected::Certificate(c) => {
                line("Certificate:", "");
                line("  Subject:", &c.subject);
                line("  Issuer:", &c.issuer);
                line("  Serial:", &c.serial);
                line(
                    "  SANs:",
                    &if c.sans.is_empty() {
                        "(none)".into()
                    } else {
                        c.sans.join(", ")
                    },
                );
                line("  Not before:", &c.not_before);
                let left = if c.expired {
                    format!("EXPIRED {} days ago", -c.days_left)
                } else {
                    format!("{} days left", c.days_left)
                };
                line("  Not after:", &format!("{} ({left})", c.not_after));
                line("  Key:", &c.key);
                line("  Signature:", &c.signature_algorithm);
                line(
                    "  CA:",
                    &match (c.is_ca, c.path_len) {
                        (true, Some(n)) => format!("yes (pathlen {n})"),
                        (true, None) => "yes".into(),
                        _ => "no".into(),
                    },
                );
                line("  Key usages:", &c.key_usages.join(", "));
                line("  Extended usages:", &c.extended_key_usages.join(", "));
                line(
                    "  Subject key ID:",
                    c.subject_key_id.as_deref().unwrap_or("(none)"),
                );
                line(
                    "  Authority key ID:",
                    c.authority_key_id.as_deref().unwrap_or("(none)"),
                );
                if !c.crl_distribution_points.is_empty() {
                    line("  CRL:", &c.crl_distribution_points.join(", "));
                }
                if !c.ocsp_urls.is_empty() {
                    line("  OCSP:", &c.ocsp_urls.join(", "));
                }
                line("  SHA-256:", &c.sha256_fingerprint);
                if let Some(ch) = &c.chain {
                    line("  Chains to CA:", &chain_text(ch));
                }
            }
            Inspected::CertificateRequest(r) => {
                line("Certificate request:", "");
                line("  Subject:", &r.subject);
                line(
                    "  SANs:",
                    &if r.sans.is_empty() {
                        "(none)".into()
                    } else {
                        r.sans.join(", ")
                    },
                );
                line("  Key:", &r.key);
                line(
                    "  Signature:",
                    &format!(
                        "{} ({})",
                        r.signature_algorithm,
                        if r.signature_valid {
                            "valid"
                        } else {
                            "INVALID"
                        }
                    ),
                );
            }
            Inspected::RevocationList(c) => {
                line("Revocation list:", "");
                line("  Issuer:", &c.issuer);
                line("  This update:", &c.this_update);
                line(
                    "  Next update:",
                    c.next_update.as_deref().unwrap_or("(none)"),
                );
                line("  CRL number:", c.crl_number.as_deref().unwrap_or("(none)"));
                line(
                    "  Authority key ID:",
                    c.authority_key_id.as_deref().unwrap_or("(none)"),
                );
                line("  Signature:", &c.signature_algorithm);
                line("  Revoked:", &c.revoked.len().to_string());
                for r in &c.revoked {
                    line(
                        "",
                        &format!(
                            "{} at {}{}",
                            r.serial,
                            r.revoked_at,
                            r.reason
                                .as_ref()
                                .map(|x| format!(" ({x})"))
                                .unwrap_or_default()
                        ),
                    );
                }
                if let Some(ch) = &c.chain {
                    line("  Signed by CA:", &chain_text(ch));
                }
            }
        }
        s
    }
}

fn chain_text(c: &ChainResult) -> String {
    match &c.reason {
        None => format!("yes ({})", c.ca),
        Some(r) => format!("NO ({}): {r}", c.ca),
    }
}
