//! Signing profiles: cfssl's `ca-config.json` (`signing.default`, `signing.profiles.*`) and
//! Ward's built-in `server`, `client` and `peer` profiles, parsed into typed values. Unlike
//! cfssl, an unknown usage string or profile name is an error, never a silent fallback.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use ward_io::parse_duration;

/// A key usage or extended key usage, as named in cfssl's `usages`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Usage {
    DigitalSignature,
    ContentCommitment,
    KeyEncipherment,
    KeyAgreement,
    DataEncipherment,
    CertSign,
    CrlSign,
    EncipherOnly,
    DecipherOnly,
    Any,
    ServerAuth,
    ClientAuth,
    CodeSigning,
    EmailProtection,
    IpsecEndSystem,
    IpsecTunnel,
    IpsecUser,
    TimeStamping,
    OcspSigning,
    MicrosoftSgc,
    NetscapeSgc,
}

/// The usage strings Ward understands (cfssl's set).
pub const KNOWN_USAGES: &str = "signing, digital signature, content commitment, key encipherment, key agreement, data encipherment, cert sign, crl sign, encipher only, decipher only, any, server auth, client auth, code signing, email protection, s/mime, ipsec end system, ipsec tunnel, ipsec user, timestamping, ocsp signing, microsoft sgc, netscape sgc";

impl Usage {
    /// Parses one usage string; `place` names where it came from for the error.
    pub fn parse(s: &str, place: &str) -> Result<Self> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "signing" | "digital signature" => Usage::DigitalSignature,
            "content commitment" => Usage::ContentCommitment,
            "key encipherment" => Usage::KeyEncipherment,
            "key agreement" => Usage::KeyAgreement,
            "data encipherment" => Usage::DataEncipherment,
            "cert sign" => Usage::CertSign,
            "crl sign" => Usage::CrlSign,
            "encipher only" => Usage::EncipherOnly,
            "decipher only" => Usage::DecipherOnly,
            "any" => Usage::Any,
            "server auth" => Usage::ServerAuth,
            "client auth" => Usage::ClientAuth,
            "code signing" => Usage::CodeSigning,
            "email protection" | "s/mime" => Usage::EmailProtection,
            "ipsec end system" => Usage::IpsecEndSystem,
            "ipsec tunnel" => Usage::IpsecTunnel,
            "ipsec user" => Usage::IpsecUser,
            "timestamping" => Usage::TimeStamping,
            "ocsp signing" => Usage::OcspSigning,
            "microsoft sgc" => Usage::MicrosoftSgc,
            "netscape sgc" => Usage::NetscapeSgc,
            _ => {
                return Err(Error::UnknownUsage {
                    usage: s.to_string(),
                    place: place.to_string(),
                    known: KNOWN_USAGES,
                })
            }
        })
    }

    /// cfssl's canonical name.
    pub fn name(&self) -> &'static str {
        match self {
            Usage::DigitalSignature => "digital signature",
            Usage::ContentCommitment => "content commitment",
            Usage::KeyEncipherment => "key encipherment",
            Usage::KeyAgreement => "key agreement",
            Usage::DataEncipherment => "data encipherment",
            Usage::CertSign => "cert sign",
            Usage::CrlSign => "crl sign",
            Usage::EncipherOnly => "encipher only",
            Usage::DecipherOnly => "decipher only",
            Usage::Any => "any",
            Usage::ServerAuth => "server auth",
            Usage::ClientAuth => "client auth",
            Usage::CodeSigning => "code signing",
            Usage::EmailProtection => "email protection",
            Usage::IpsecEndSystem => "ipsec end system",
            Usage::IpsecTunnel => "ipsec tunnel",
            Usage::IpsecUser => "ipsec user",
            Usage::TimeStamping => "timestamping",
            Usage::OcspSigning => "ocsp signing",
            Usage::MicrosoftSgc => "microsoft sgc",
            Usage::NetscapeSgc => "netscape sgc",
        }
    }

    pub(crate) fn key_usage(&self) -> Option<rcgen::KeyUsagePurpose> {
        use rcgen::KeyUsagePurpose as K;
        Some(match self {
            Usage::DigitalSignature => K::DigitalSignature,
            Usage::ContentCommitment => K::ContentCommitment,
            Usage::KeyEncipherment => K::KeyEncipherment,
            Usage::KeyAgreement => K::KeyAgreement,
            Usage::DataEncipherment => K::DataEncipherment,
            Usage::CertSign => K::KeyCertSign,
            Usage::CrlSign => K::CrlSign,
            Usage::EncipherOnly => K::EncipherOnly,
            Usage::DecipherOnly => K::DecipherOnly,
            _ => return None,
        })
    }

    pub(crate) fn extended_key_usage(&self) -> Option<rcgen::ExtendedKeyUsagePurpose> {
        use rcgen::ExtendedKeyUsagePurpose as E;
        Some(match self {
            Usage::Any => E::Any,
            Usage::ServerAuth => E::ServerAuth,
            Usage::ClientAuth => E::ClientAuth,
            Usage::CodeSigning => E::CodeSigning,
            Usage::EmailProtection => E::EmailProtection,
            Usage::TimeStamping => E::TimeStamping,
            Usage::OcspSigning => E::OcspSigning,
            Usage::IpsecEndSystem => E::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 5]),
            Usage::IpsecTunnel => E::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 6]),
            Usage::IpsecUser => E::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 7]),
            Usage::MicrosoftSgc => E::Other(vec![1, 3, 6, 1, 4, 1, 311, 10, 3, 3]),
            Usage::NetscapeSgc => E::Other(vec![2, 16, 840, 1, 113730, 4, 1]),
            _ => return None,
        })
    }
}

/// `ca_constraint`: a profile that issues intermediate CAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CaConstraint {
    pub is_ca: bool,
    pub max_path_len: Option<u8>,
}

/// How certificates signed under one profile look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningProfile {
    pub name: String,
    pub usages: Vec<Usage>,
    pub expiry: Duration,
    pub ca_constraint: CaConstraint,
    pub crl_url: Option<String>,
    pub ocsp_url: Option<String>,
    pub issuer_urls: Vec<String>,
    /// cfssl's `name_whitelist`: a regular expression the CN and every DNS name, e-mail
    /// address and URI must contain a match of (checked when read).
    pub name_whitelist: Option<String>,
}

impl SigningProfile {
    /// Whether the profile lets a certificate name `cn` and `hosts` (cfssl's rule: with a
    /// `name_whitelist`, a non-empty CN and each DNS, e-mail and URI name must match it
    /// somewhere; IP addresses are not checked).
    pub fn allows(&self, cn: &str, hosts: &[crate::names::SubjectName]) -> Result<()> {
        use crate::names::SubjectName as N;
        let Some(pattern) = &self.name_whitelist else {
            return Ok(());
        };
        let re = regex::Regex::new(pattern).map_err(|e| {
            Error::invalid(
                format!("profile {}: name_whitelist", self.name),
                e.to_string(),
            )
        })?;
        let names = std::iter::once(cn)
            .filter(|c| !c.is_empty())
            .chain(hosts.iter().filter_map(|h| match h {
                N::Dns(d) | N::Email(d) | N::Uri(d) => Some(d.as_str()),
                N::Ip(_) => None,
            }));
        for name in names {
            if !re.is_match(name) {
                return Err(Error::invalid(
                    format!("profile {}", self.name),
                    format!("{name:?} does not match its name_whitelist {pattern:?}: nothing was signed; ask for names the profile allows, or sign with another profile"),
                ));
            }
        }
        Ok(())
    }
    fn with(name: &str, usages: &[Usage], hours: u64) -> Self {
        SigningProfile {
            name: name.to_string(),
            usages: usages.to_vec(),
            expiry: Duration::from_secs(hours * 3600),
            ca_constraint: CaConstraint::default(),
            crl_url: None,
            ocsp_url: None,
            issuer_urls: Vec::new(),
            name_whitelist: None,
        }
    }

    /// cfssl's profile when no config is given: 8760h, signing, key encipherment, server
    /// auth, client auth.
    pub fn cfssl_default() -> Self {
        use Usage::*;
        Self::with(
            "default",
            &[DigitalSignature, KeyEncipherment, ServerAuth, ClientAuth],
            8760,
        )
    }

    /// Ward's built-in profiles for the native commands: `server` (TLS servers: backends,
    /// PostgreSQL), `client` (agents, PostgreSQL client users), `peer` (both).
    /// 4320h (180 days) as the guides suggest.
    pub fn builtin(name: &str) -> Option<Self> {
        use Usage::*;
        Some(match name {
            "server" => Self::with(name, &[DigitalSignature, KeyEncipherment, ServerAuth], 4320),
            "client" => Self::with(name, &[DigitalSignature, KeyEncipherment, ClientAuth], 4320),
            "peer" => Self::with(
                name,
                &[DigitalSignature, KeyEncipherment, ServerAuth, ClientAuth],
                4320,
            ),
            _ => return None,
        })
    }

    /// Usage names, for display and for the `ca-config.json` Ward writes.
    pub fn usage_names(&self) -> Vec<&'static str> {
        self.usages.iter().map(Usage::name).collect()
    }
}

#[derive(Debug, Deserialize)]
struct RawConfig {
    signing: RawSigning,
}

#[derive(Debug, Deserialize)]
struct RawSigning {
    default: Option<RawProfile>,
    #[serde(default)]
    profiles: BTreeMap<String, RawProfile>,
}

#[derive(Debug, Deserialize)]
struct RawProfile {
    #[serde(default)]
    usages: Vec<String>,
    expiry: Option<String>,
    ca_constraint: Option<RawCaConstraint>,
    crl_url: Option<String>,
    ocsp_url: Option<String>,
    #[serde(default)]
    issuer_urls: Vec<String>,
    name_whitelist: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawCaConstraint {
    #[serde(default)]
    is_ca: bool,
    max_path_len: Option<u8>,
    #[serde(default)]
    max_path_len_zero: bool,
}

/// A parsed `ca-config.json`.
#[derive(Debug, Clone)]
pub struct SigningConfig {
    /// Where it was read from, for messages.
    pub source: String,
    pub default: SigningProfile,
    pub profiles: BTreeMap<String, SigningProfile>,
}

impl SigningConfig {
    /// Parses `ca-config.json`. Every profile must have an expiry and only known usages.
    pub fn from_json(source: &str, bytes: &[u8]) -> Result<Self> {
        let raw: RawConfig = serde_json::from_slice(bytes).map_err(|e| Error::Malformed {
            what: source.to_string(),
            format: "signing config JSON",
            reason: e.to_string(),
        })?;
        let convert = |name: &str, p: &RawProfile| -> Result<SigningProfile> {
            let place = format!("{source}: signing.{name}");
            let expiry = p
                .expiry
                .as_deref()
                .ok_or_else(|| Error::invalid(&place, "no expiry; add one such as \"4320h\""))?;
            let usages = p
                .usages
                .iter()
                .map(|u| Usage::parse(u, &place))
                .collect::<Result<Vec<_>>>()?;
            for url in p.crl_url.iter().chain(&p.ocsp_url).chain(&p.issuer_urls) {
                crate::names::SubjectName::parse(url)
                    .ok()
                    .filter(|n| matches!(n, crate::names::SubjectName::Uri(_)))
                    .ok_or_else(|| Error::invalid(&place, format!("{url:?} is not a URL")))?;
            }
            if let Some(w) = &p.name_whitelist {
                regex::Regex::new(w).map_err(|e| {
                    Error::invalid(
                        format!("{place}.name_whitelist"),
                        format!("{w:?} is not a regular expression: {e}"),
                    )
                })?;
            }
            Ok(SigningProfile {
                name_whitelist: p.name_whitelist.clone().filter(|w| !w.is_empty()),
                name: name.rsplit('.').next().unwrap_or(name).to_string(),
                usages,
                expiry: parse_duration(&format!("{place}.expiry"), expiry)?,
                ca_constraint: p
                    .ca_constraint
                    .as_ref()
                    .map(|c| CaConstraint {
                        is_ca: c.is_ca,
                        max_path_len: if c.max_path_len_zero {
                            Some(0)
                        } else {
                            c.max_path_len
                        },
                    })
                    .unwrap_or_default(),
                crl_url: p.crl_url.clone(),
                ocsp_url: p.ocsp_url.clone(),
                issuer_urls: p.issuer_urls.clone(),
            })
        };
        let default = match &raw.signing.default {
            Some(p) => convert("default", p)?,
            None => SigningProfile::cfssl_default(),
        };
        let mut profiles = BTreeMap::new();
        for (name, p) in &raw.signing.profiles {
            profiles.insert(name.clone(), convert(&format!("profiles.{name}"), p)?);
        }
        Ok(SigningConfig {
            source: source.to_string(),
            default,
            profiles,
        })
    }

    /// The profile to sign with: none named → `default`; a named profile must exist.
    pub fn profile(&self, name: Option<&str>) -> Result<SigningProfile> {
        match name.filter(|n| !n.is_empty()) {
            None => Ok(self.default.clone()),
            Some(n) => self
                .profiles
                .get(n)
                .cloned()
                .ok_or_else(|| Error::UnknownProfile {
                    name: n.to_string(),
                    source_name: self.source.clone(),
                    available: if self.profiles.is_empty() {
                        "(none)".to_string()
                    } else {
                        self.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                    },
                }),
        }
    }

    /// Ward's `ca-config.json`: the built-in profiles, written by `init-ca` and `bootstrap`
    /// so that cfssl and `ward pki gencert -config` can use the same CA directory.
    pub fn ward_default_json() -> String {
        let mut profiles = serde_json::Map::new();
        for name in ["server", "client", "peer"] {
            let p = SigningProfile::builtin(name).expect("built-in profile");
            profiles.insert(
                name.to_string(),
                serde_json::json!({"usages": p.usage_names(), "expiry": ward_io::format_duration(p.expiry)}),
            );
        }
        let doc = serde_json::json!({
            "signing": {
                "default": {"usages": ["digital signature", "key encipherment", "client auth"], "expiry": "4320h"},
                "profiles": profiles,
            }
        });
        serde_json::to_string_pretty(&doc).expect("static JSON") + "\n"
    }
}

/// Looks up a profile for the native commands: the config's profile of that name if a
/// config is given and has it, else a built-in one; anything else is an error naming both.
pub fn resolve_profile(config: Option<&SigningConfig>, name: &str) -> Result<SigningProfile> {
    if let Some(c) = config {
        if let Some(p) = c.profiles.get(name) {
            return Ok(p.clone());
        }
    }
    SigningProfile::builtin(name).ok_or_else(|| Error::UnknownProfile {
        name: name.to_string(),
        source_name: config
            .map(|c| format!("{} or Ward's built-in profiles", c.source))
            .unwrap_or_else(|| "Ward's built-in profiles (pass --config for more)".into()),
        available: {
            let mut v: Vec<String> = config
                .map(|c| c.profiles.keys().cloned().collect())
                .unwrap_or_default();
            v.extend(["server", "client", "peer"].map(String::from));
            v.join(", ")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUIDE: &str = r#"{"signing":{"default":{"expiry":"17520h","usages":["signing","key encipherment","client auth"]},"profiles":{"backend":{"usages":["signing","key encipherment","server auth","client auth"],"expiry":"4320h"},"agent":{"usages":["signing","key encipherment","client auth"],"expiry":"4320h"}}}}"#;

    #[test]
    fn the_guides_config_parses() {
        let c = SigningConfig::from_json("ca-config.json", GUIDE.as_bytes()).unwrap();
        let b = c.profile(Some("backend")).unwrap();
        assert_eq!(b.expiry.as_secs(), 4320 * 3600);
        assert!(b.usages.contains(&Usage::ServerAuth));
        assert_eq!(c.profile(None).unwrap().expiry.as_secs(), 17520 * 3600);
    }

    #[test]
    fn unknown_profile_is_an_error_not_the_default() {
        let c = SigningConfig::from_json("ca-config.json", GUIDE.as_bytes()).unwrap();
        let e = c.profile(Some("backnd")).unwrap_err().to_string();
        assert!(
            e.contains("\"backnd\"") && e.contains("agent, backend"),
            "{e}"
        );
    }

    #[test]
    fn unknown_usage_is_an_error() {
        let e = SigningConfig::from_json(
            "ca-config.json",
            br#"{"signing":{"profiles":{"x":{"usages":["server auht"],"expiry":"1h"}}}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("server auht") && e.contains("signing.profiles.x"),
            "{e}"
        );
    }

    #[test]
    fn profile_without_expiry_is_an_error() {
        let e = SigningConfig::from_json(
            "c.json",
            br#"{"signing":{"profiles":{"x":{"usages":["server auth"]}}}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no expiry"), "{e}");
    }
}
