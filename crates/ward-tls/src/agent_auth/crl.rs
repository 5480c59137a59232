//! CRLs: parsing, the issuer and signature checks, and looking a serial up.

use super::*;

#[derive(Debug)]
pub(super) struct Crl {
    pub(super) der: Vec<u8>,
    pub(super) issuer_raw: Vec<u8>,
    pub(super) issuer: String,
    pub(super) this_update: i64,
    pub(super) next_update: Option<i64>,
    /// Not a complete list (a delta CRL, one scoped by an issuing distribution point, or
    /// one with an unknown critical extension).
    pub(super) delta: bool,
    pub(super) revoked: HashMap<Vec<u8>, (i64, Option<u8>)>,
    /// The issuer keys (SPKI DER) this CRL's signature verified with, and those it did not.
    pub(super) verified: Mutex<KeyChecks>,
}

/// Issuer keys (SPKI DER) a CRL's signature was checked against.
#[derive(Debug, Default)]
pub(super) struct KeyChecks {
    pub(super) good: Vec<Vec<u8>>,
    pub(super) bad: Vec<Vec<u8>>,
}

impl Crl {
    pub(super) fn parse(bytes: &[u8]) -> Result<Crl, String> {
        let der = if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
            use rustls::pki_types::pem::{self, PemObject};
            use rustls::pki_types::CertificateRevocationListDer;
            match CertificateRevocationListDer::from_pem_slice(bytes) {
                Ok(d) => d.to_vec(),
                Err(pem::Error::NoItemsFound) => {
                    return Err("holds no X509 CRL PEM block, so not a CRL".into())
                }
                Err(e) => return Err(format!("not a PEM CRL: {e}")),
            }
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

    pub(super) fn signature_ok(&self, issuer: &Issuer) -> bool {
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

    pub(super) fn answer(&self, leaf: &Leaf) -> Answer {
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
