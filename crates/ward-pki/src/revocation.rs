//! Revocation: a small state file beside the CA (`revoked.json`: the CRL number and every
//! revoked serial with its reason and time) and RFC 5280 CRLs built from it (CRL number,
//! authority key identifier, reason codes, thisUpdate / nextUpdate).

use crate::authority::CertificateAuthority;
use crate::error::{Error, Result};
use crate::inspect::{format_time, hex_colon};
use rcgen::RevocationReason;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use time::OffsetDateTime;
use ward_io::files::{self, DirLock, Overwrite, PlannedFile};

/// The reason names `--reason` accepts (RFC 5280's, as OpenSSL spells them).
pub const REASON_NAMES: &str = "unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise";

/// Parses a reason name (case-insensitive).
pub fn parse_reason(s: &str) -> Result<RevocationReason> {
    use RevocationReason::*;
    Ok(match s.to_ascii_lowercase().as_str() {
        "unspecified" => Unspecified,
        "keycompromise" => KeyCompromise,
        "cacompromise" => CaCompromise,
        "affiliationchanged" => AffiliationChanged,
        "superseded" => Superseded,
        "cessationofoperation" => CessationOfOperation,
        "certificatehold" => CertificateHold,
        "privilegewithdrawn" => PrivilegeWithdrawn,
        "aacompromise" => AaCompromise,
        _ => {
            return Err(Error::invalid(
                format!("--reason {s}"),
                format!("unknown revocation reason; use one of {REASON_NAMES}"),
            ))
        }
    })
}

/// The name of a reason code.
pub fn reason_name(code: u8) -> &'static str {
    match code {
        0 => "unspecified",
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        9 => "privilegeWithdrawn",
        10 => "aACompromise",
        _ => "unknown",
    }
}

/// Parses a serial as `ward pki info` prints it (`5a:3f:…`), as hex with `0x`, or as the
/// decimal number cfssl certinfo prints. A bare string of digits is read as decimal.
pub fn parse_serial(s: &str) -> Result<Vec<u8>> {
    let bad = || {
        Error::invalid(
            format!("--serial {s}"),
            "not a serial number; use the colon-separated hex `ward pki info` prints, 0x-prefixed hex, or decimal",
        )
    };
    let t = s.trim();
    let hex = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h.to_string())
    } else if t.contains(':') || t.chars().any(|c| c.is_ascii_alphabetic()) {
        Some(t.replace(':', ""))
    } else {
        None
    };
    let mut bytes = match hex {
        Some(h) => {
            if h.is_empty() || !h.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad());
            }
            let h = if h.len() % 2 == 1 { format!("0{h}") } else { h };
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).map_err(|_| bad()))
                .collect::<Result<Vec<u8>>>()?
        }
        None => {
            if t.is_empty() || !t.chars().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            // Decimal to big-endian bytes.
            let mut out: Vec<u8> = vec![0];
            for d in t.bytes().map(|b| (b - b'0') as u32) {
                let mut carry = d;
                for byte in out.iter_mut().rev() {
                    let v = *byte as u32 * 10 + carry;
                    *byte = (v & 0xff) as u8;
                    carry = v >> 8;
                }
                while carry > 0 {
                    out.insert(0, (carry & 0xff) as u8);
                    carry >>= 8;
                }
            }
            out
        }
    };
    while bytes.len() > 1 && bytes[0] == 0 && bytes[1] & 0x80 == 0 {
        bytes.remove(0);
    }
    // DER INTEGER form, as certificates carry it: positive, so a leading 0x00 when the top
    // bit is set.
    if bytes[0] & 0x80 != 0 {
        bytes.insert(0, 0);
    }
    if bytes.len() > 21 {
        return Err(bad());
    }
    Ok(bytes)
}

/// One revoked certificate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Revocation {
    /// Colon-separated hex, as `ward pki info` prints it.
    pub serial: String,
    pub reason: String,
    pub revoked_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// `revoked.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RevocationState {
    /// The number of the last CRL issued (0: none yet).
    pub crl_number: u64,
    pub revoked: Vec<Revocation>,
}

/// Where the state lives in a CA directory.
pub fn state_path(ca_dir: &Path) -> PathBuf {
    ca_dir.join("revoked.json")
}

impl RevocationState {
    /// Reads the state (under the [`files::CONFIG`] cap); a missing file is an empty state.
    /// To change it, hold the CA directory's lock from this read to the write
    /// ([`revoke`] and [`build_crl`] do).
    pub fn load(ca_dir: &Path) -> Result<Self> {
        let p = state_path(ca_dir);
        match files::read_bounded(&p, files::CONFIG) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Malformed {
                what: p.display().to_string(),
                format: "revocation state JSON",
                reason: e.to_string(),
            }),
            Err(ward_io::Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(Self::default())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn save(&self, ca_dir: &Path) -> Result<()> {
        let json =
            serde_json::to_string_pretty(self).map_err(|e| Error::Signing(e.to_string()))? + "\n";
        files::write_one(
            &PlannedFile::public(state_path(ca_dir), json),
            Overwrite::Allow,
        )?;
        Ok(())
    }
}

/// Records a revocation. The CA must load (so only its holder can revoke); revoking the same
/// serial twice is an error that says when it was revoked.
///
/// The read-modify-write of `revoked.json` is done under the CA directory's exclusive lock,
/// so concurrent revocations (other `ward pki revoke` or `ward pki crl` processes) are all
/// kept: none overwrites another's.
pub fn revoke(
    ca_dir: &Path,
    serial: &[u8],
    reason: RevocationReason,
    subject: Option<String>,
) -> Result<Revocation> {
    let _ca = CertificateAuthority::load_dir(ca_dir)?;
    let _lock = DirLock::exclusive(ca_dir)?;
    let mut state = RevocationState::load(ca_dir)?;
    let serial_hex = hex_colon(serial);
    if let Some(r) = state.revoked.iter().find(|r| r.serial == serial_hex) {
        return Err(Error::invalid(
            format!("serial {serial_hex}"),
            format!("already revoked at {} ({})", r.revoked_at, r.reason),
        ));
    }
    let rev = Revocation {
        serial: serial_hex,
        reason: reason_name(reason as u8).to_string(),
        revoked_at: format_time(OffsetDateTime::now_utc()),
        subject,
    };
    state.revoked.push(rev.clone());
    state.save(ca_dir)?;
    Ok(rev)
}

/// A CRL written by [`publish_crl`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishedCrl {
    /// Its CRL number.
    pub number: u64,
    /// How many certificates it lists.
    pub revoked: usize,
}

/// Signs a new CRL (as [`build_crl`]) and writes it atomically to `out`, all under the CA
/// directory's lock: concurrent runs get distinct numbers, and `out` ends up holding the
/// CRL with the highest.
pub fn publish_crl(ca_dir: &Path, next_update: Duration, out: &Path) -> Result<PublishedCrl> {
    let _lock = DirLock::exclusive(ca_dir)?;
    let (pem, number) = build_crl(ca_dir, next_update)?;
    files::write_one(&PlannedFile::public(out, pem), Overwrite::Allow)?;
    Ok(PublishedCrl {
        number,
        revoked: RevocationState::load(ca_dir)?.revoked.len(),
    })
}

/// Signs a new CRL from the state, with the next CRL number, and records that number. The
/// state is read and its number recorded under the CA directory's lock, so no two CRLs get
/// the same number.
pub fn build_crl(ca_dir: &Path, next_update: Duration) -> Result<(String, u64)> {
    let ca = CertificateAuthority::load_dir(ca_dir)?;
    let _lock = DirLock::exclusive(ca_dir)?;
    let mut state = RevocationState::load(ca_dir)?;
    let number = state.crl_number + 1;
    let now = OffsetDateTime::now_utc();
    let this_update = now - time::Duration::seconds(60);
    let next = now
        + time::Duration::try_from(next_update)
            .map_err(|_| Error::invalid("--next-update", "too long"))?;
    let mut revoked = Vec::new();
    for r in &state.revoked {
        let serial = parse_serial(&r.serial)?;
        let at = time::OffsetDateTime::parse(
            &r.revoked_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|e| Error::Malformed {
            what: state_path(ca_dir).display().to_string(),
            format: "revocation state JSON",
            reason: format!("revoked_at {:?}: {e}", r.revoked_at),
        })?;
        revoked.push(rcgen::RevokedCertParams {
            serial_number: rcgen::SerialNumber::from_slice(&serial),
            revocation_time: at,
            reason_code: Some(parse_reason(&r.reason)?),
            invalidity_date: None,
        });
    }
    let params = rcgen::CertificateRevocationListParams {
        this_update,
        next_update: next,
        crl_number: rcgen::SerialNumber::from_slice(&number.to_be_bytes()),
        issuing_distribution_point: None,
        revoked_certs: revoked,
        key_identifier_method: rcgen::KeyIdMethod::PreSpecified(ca.subject_key_id.clone()),
    };
    let crl = params.signed_by(ca.issuer())?;
    let pem = crl.pem()?;
    state.crl_number = number;
    state.save(ca_dir)?;
    Ok((pem, number))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_parse_in_every_printed_form() {
        assert_eq!(parse_serial("0a:ff").unwrap(), vec![0x0a, 0xff]);
        assert_eq!(parse_serial("0x0aff").unwrap(), vec![0x0a, 0xff]);
        assert_eq!(parse_serial("2815").unwrap(), vec![0x0a, 0xff]);
        assert_eq!(parse_serial("255").unwrap(), vec![0x00, 0xff]);
        assert!(parse_serial("zz").is_err());
        assert!(parse_serial("").is_err());
    }

    #[test]
    fn reasons_parse() {
        assert_eq!(
            parse_reason("keyCompromise").unwrap(),
            RevocationReason::KeyCompromise
        );
        assert!(parse_reason("lost").is_err());
    }
}
