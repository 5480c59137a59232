//! cfssl's certificate request JSON (`{"CN", "hosts", "key", "names", "ca"}`), parsed once
//! into typed values.

use crate::error::{Error, Result};
use crate::key::KeyAlgorithm;
use crate::names::{parse_hosts, SubjectName};
use serde::Deserialize;
use std::time::Duration;
use ward_io::parse_duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    #[serde(rename = "CN", default)]
    cn: String,
    #[serde(default)]
    hosts: Option<Vec<String>>,
    #[serde(default)]
    key: Option<RawKey>,
    #[serde(default)]
    names: Vec<RawName>,
    #[serde(default)]
    ca: Option<RawCa>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    algo: Option<String>,
    size: Option<u32>,
}

/// One `names` entry: the subject's other attributes.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SubjectAttributes {
    #[serde(rename = "C", default)]
    pub country: Option<String>,
    #[serde(rename = "ST", default)]
    pub state: Option<String>,
    #[serde(rename = "L", default)]
    pub locality: Option<String>,
    #[serde(rename = "O", default)]
    pub organization: Option<String>,
    #[serde(rename = "OU", default)]
    pub organizational_unit: Option<String>,
    #[serde(rename = "E", default)]
    pub email: Option<String>,
    #[serde(rename = "SerialNumber", default)]
    pub serial_number: Option<String>,
}

type RawName = SubjectAttributes;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCa {
    expiry: Option<String>,
    pathlen: Option<u8>,
    #[serde(default)]
    pathlenzero: bool,
    backdate: Option<String>,
}

/// A certificate's subject: the common name and the other attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub common_name: String,
    pub attributes: Vec<SubjectAttributes>,
}

/// The `ca` section, meaningful with `-initca`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaOptions {
    pub expiry: Option<Duration>,
    pub path_len: Option<u8>,
}

/// A parsed certificate request.
#[derive(Debug, Clone)]
pub struct CertificateRequest {
    pub subject: Subject,
    pub hosts: Vec<SubjectName>,
    pub key: KeyAlgorithm,
    pub ca: Option<CaOptions>,
}

impl CertificateRequest {
    /// Parses cfssl CSR JSON; `source` names the input in errors (a file name, or "stdin").
    pub fn from_json(source: &str, bytes: &[u8]) -> Result<Self> {
        let raw: RawRequest = serde_json::from_slice(bytes).map_err(|e| Error::Malformed {
            what: source.to_string(),
            format: "certificate request JSON",
            reason: e.to_string(),
        })?;
        let key = match &raw.key {
            Some(k) => KeyAlgorithm::from_cfssl(k.algo.as_deref(), k.size)?,
            None => KeyAlgorithm::default(),
        };
        check_common_name(&format!("{source}: CN"), &raw.cn)?;
        let hosts = parse_hosts(raw.hosts.iter().flatten().map(String::as_str))?;
        let ca = match raw.ca {
            Some(ca) => {
                if ca.backdate.is_some() {
                    return Err(Error::invalid(
                        format!("{source}: ca.backdate"),
                        "not supported; Ward always backdates notBefore by 5 minutes",
                    ));
                }
                Some(CaOptions {
                    expiry: ca
                        .expiry
                        .as_deref()
                        .map(|e| parse_duration(&format!("{source}: ca.expiry"), e))
                        .transpose()?,
                    path_len: if ca.pathlenzero { Some(0) } else { ca.pathlen },
                })
            }
            None => None,
        };
        Ok(CertificateRequest {
            subject: Subject {
                common_name: raw.cn,
                attributes: raw.names,
            },
            hosts,
            key,
            ca,
        })
    }
}

/// RFC 5280's upper bound on a common name, in characters (`ub-common-name`).
pub const MAX_COMMON_NAME: usize = 64;

/// Checks a common name against RFC 5280: at most [`MAX_COMMON_NAME`] characters, and no
/// control characters (which would reach terminals and logs that print the subject).
/// `what` names where the CN came from (`--cn`, a file, a plan entry).
pub fn check_common_name(what: &str, cn: &str) -> Result<()> {
    if let Some(c) = cn.chars().find(|c| c.is_control()) {
        return Err(Error::invalid(
            what.to_string(),
            format!(
                "common name \"{}\" contains the control character {}; use printable characters only",
                ward_io::text::one_line(cn),
                ward_io::text::one_line(&c.to_string())
            ),
        ));
    }
    let n = cn.chars().count();
    if n > MAX_COMMON_NAME {
        return Err(Error::invalid(
            what.to_string(),
            format!(
                "common name is {n} characters long; RFC 5280 allows at most {MAX_COMMON_NAME} (ub-common-name): use a shorter CN and put longer host names in the SANs (hosts)"
            ),
        ));
    }
    Ok(())
}

impl Subject {
    /// A subject with only a common name.
    pub fn with_cn(cn: impl Into<String>) -> Self {
        Subject {
            common_name: cn.into(),
            attributes: Vec::new(),
        }
    }

    pub(crate) fn to_rcgen(&self) -> Result<rcgen::DistinguishedName> {
        use rcgen::DnType;
        check_common_name("CN", &self.common_name)?;
        let mut dn = rcgen::DistinguishedName::new();
        // cfssl's order: C, ST, L, O, OU (E, serialNumber) for each names entry, then CN.
        for a in &self.attributes {
            let pairs = [
                (DnType::CountryName, &a.country),
                (DnType::StateOrProvinceName, &a.state),
                (DnType::LocalityName, &a.locality),
                (DnType::OrganizationName, &a.organization),
                (DnType::OrganizationalUnitName, &a.organizational_unit),
            ];
            for (ty, v) in pairs {
                if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                    dn.push(ty, v.as_str());
                }
            }
            if let Some(e) = a.email.as_ref().filter(|v| !v.is_empty()) {
                let v = rcgen::string::Ia5String::try_from(e.clone())
                    .map_err(|_| Error::invalid("names.E", format!("{e:?} is not ASCII")))?;
                dn.push(
                    DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
                    rcgen::DnValue::Ia5String(v),
                );
            }
            if let Some(s) = a.serial_number.as_ref().filter(|v| !v.is_empty()) {
                let v = rcgen::string::PrintableString::try_from(s.clone()).map_err(|_| {
                    Error::invalid(
                        "names.SerialNumber",
                        format!("{s:?} is not a printable string"),
                    )
                })?;
                dn.push(
                    DnType::CustomDnType(vec![2, 5, 4, 5]),
                    rcgen::DnValue::PrintableString(v),
                );
            }
        }
        if !self.common_name.is_empty() {
            dn.push(DnType::CommonName, self.common_name.as_str());
        }
        Ok(dn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guides_requests_parse() {
        let r = CertificateRequest::from_json(
            "stdin",
            br#"{"CN":"backend-1.example.com","hosts":[""],"key":{"algo":"rsa","size":2048}}"#,
        )
        .unwrap();
        assert_eq!(r.subject.common_name, "backend-1.example.com");
        assert!(r.hosts.is_empty());
        assert_eq!(r.key, KeyAlgorithm::Rsa(2048));
        let ca = CertificateRequest::from_json(
            "stdin",
            br#"{"CN":"CA","names":[{"C":"US","O":"Ward"}],"ca":{"expiry":"87600h","pathlen":1}}"#,
        )
        .unwrap();
        assert_eq!(ca.key, KeyAlgorithm::EcdsaP256);
        assert_eq!(ca.ca.unwrap().expiry.unwrap().as_secs(), 87600 * 3600);
    }

    #[test]
    fn malformed_requests_name_the_problem() {
        let e = CertificateRequest::from_json("csr.json", b"{\"CN\":").unwrap_err();
        assert!(e
            .to_string()
            .starts_with("csr.json: malformed certificate request JSON"));
        let e = CertificateRequest::from_json("csr.json", br#"{"CN":"x","hsots":[]}"#).unwrap_err();
        assert!(e.to_string().contains("hsots"), "{e}");
        let e = CertificateRequest::from_json(
            "csr.json",
            br#"{"CN":"x","key":{"algo":"rsa","size":1000}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("1000"), "{e}");
    }
}
