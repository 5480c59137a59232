//! Subject alternative names, classified the way cfssl classifies `hosts` entries: an IP
//! address becomes an IP SAN, an e-mail address an e-mail SAN, a URI a URI SAN, a DNS name a
//! DNS SAN. Unlike cfssl, an empty entry is dropped rather than written as an empty DNS SAN,
//! and something that is none of the four is refused.

use crate::error::{Error, Result};
use std::fmt;
use std::net::IpAddr;

/// One subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubjectName {
    Dns(String),
    Ip(IpAddr),
    Email(String),
    Uri(String),
}

impl fmt::Display for SubjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectName::Dns(d) => write!(f, "DNS:{d}"),
            SubjectName::Ip(ip) => write!(f, "IP:{ip}"),
            SubjectName::Email(e) => write!(f, "email:{e}"),
            SubjectName::Uri(u) => write!(f, "URI:{u}"),
        }
    }
}

impl SubjectName {
    /// Classifies one host entry.
    pub fn parse(value: &str) -> Result<Self> {
        let v = value.trim();
        let bad = || Error::BadHost {
            value: value.to_string(),
        };
        if v.is_empty() {
            return Err(bad());
        }
        let unbracketed = v
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(v);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(SubjectName::Ip(ip));
        }
        if let Some((scheme, rest)) = v.split_once(':') {
            if is_uri_scheme(scheme) && !rest.is_empty() && !v.contains(char::is_whitespace) {
                return Ok(SubjectName::Uri(v.to_string()));
            }
        }
        if let Some((local, domain)) = v.split_once('@') {
            if !local.is_empty()
                && !local.contains(char::is_whitespace)
                && is_dns_name(domain, false)
            {
                return Ok(SubjectName::Email(v.to_string()));
            }
            return Err(bad());
        }
        if is_dns_name(v, true) {
            return Ok(SubjectName::Dns(v.to_ascii_lowercase()));
        }
        Err(bad())
    }

    /// Whether a common name should also be a SAN: it is a DNS name or an IP address.
    pub fn from_common_name(cn: &str) -> Option<Self> {
        match SubjectName::parse(cn) {
            Ok(n @ (SubjectName::Dns(_) | SubjectName::Ip(_))) => Some(n),
            _ => None,
        }
    }

    pub(crate) fn to_rcgen(&self) -> Result<rcgen::SanType> {
        let ia5 = |s: &str| {
            rcgen::string::Ia5String::try_from(s.to_string()).map_err(|_| Error::BadHost {
                value: s.to_string(),
            })
        };
        Ok(match self {
            SubjectName::Dns(d) => rcgen::SanType::DnsName(ia5(d)?),
            SubjectName::Ip(ip) => rcgen::SanType::IpAddress(*ip),
            SubjectName::Email(e) => rcgen::SanType::Rfc822Name(ia5(e)?),
            SubjectName::Uri(u) => rcgen::SanType::URI(ia5(u)?),
        })
    }
}

/// Parses a comma-separated `-hostname` / `--hosts` list. Empty items (`""`, `a,,b`) are
/// dropped: they would otherwise become empty DNS SANs, as they do in cfssl.
pub fn parse_host_list(list: &str) -> Result<Vec<SubjectName>> {
    parse_hosts(list.split(','))
}

/// Parses host entries, dropping empty ones and duplicates (first occurrence wins).
pub fn parse_hosts<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Vec<SubjectName>> {
    let mut out: Vec<SubjectName> = Vec::new();
    for item in items {
        if item.trim().is_empty() {
            continue;
        }
        let n = SubjectName::parse(item)?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

fn is_uri_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && s.len() > 1 // "c:" style single letters are not URIs we issue for
}

fn is_dns_name(s: &str, allow_wildcard: bool) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() || s.len() > 253 {
        return false;
    }
    let mut labels = s.split('.').peekable();
    let mut first = true;
    while let Some(label) = labels.next() {
        if first && allow_wildcard && label == "*" && labels.peek().is_some() {
            first = false;
            continue;
        }
        first = false;
        if label.is_empty() || label.len() > 63 {
            return false;
        }
        if label.starts_with('-') || label.ends_with('-') {
            return false;
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_classified_like_cfssl() {
        let v = parse_host_list("localhost,127.0.0.1,10.0.0.1,backend-1,::1,ops@example.com,spiffe://ward/agent,*.example.com").unwrap();
        assert_eq!(
            v.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            [
                "DNS:localhost",
                "IP:127.0.0.1",
                "IP:10.0.0.1",
                "DNS:backend-1",
                "IP:::1",
                "email:ops@example.com",
                "URI:spiffe://ward/agent",
                "DNS:*.example.com"
            ]
        );
    }

    #[test]
    fn empty_hosts_never_become_empty_sans() {
        assert!(parse_host_list("").unwrap().is_empty());
        assert_eq!(parse_host_list("a,,b").unwrap().len(), 2);
    }

    #[test]
    fn junk_is_refused() {
        for bad in [
            "not a host",
            "a..b",
            "-x.example.com",
            "@example.com",
            "x@",
            "a/b",
        ] {
            assert!(SubjectName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_dns_and_ip_common_names_become_sans() {
        assert!(SubjectName::from_common_name("backend-1.example.com").is_some());
        assert!(SubjectName::from_common_name("10.0.0.1").is_some());
        assert!(SubjectName::from_common_name("Sensu Test CA").is_none());
    }
}
