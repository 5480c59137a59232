//! OCSP: the request, and the checks on the response and its signer.

use super::*;

#[derive(Debug)]
pub(super) enum OcspCertStatus {
    Good,
    Revoked(String),
    Unknown,
}

#[derive(Debug)]
pub(super) struct OcspStatus {
    pub(super) status: OcspCertStatus,
    pub(super) this_update: i64,
    pub(super) next_update: Option<i64>,
}

/// The DER request and the CertID it asks about.
pub(super) fn ocsp_request(
    leaf: &Leaf,
    issuer: &Issuer,
) -> Result<(Vec<u8>, x509_ocsp::CertId), String> {
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
pub(super) fn first_element(seq: &[u8]) -> Option<&[u8]> {
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
pub(super) fn signature_verifies(
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

pub(super) fn generalized(t: &x509_ocsp::OcspGeneralizedTime) -> i64 {
    t.0.to_unix_duration().as_secs() as i64
}

pub(super) fn parse_ocsp_response(
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
pub(super) fn delegated_responder_key(
    cert: &x509_cert::Certificate,
    issuer: &Issuer,
) -> Option<Vec<u8>> {
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
