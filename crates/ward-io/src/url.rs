//! The one URL parser: every URL Ward takes (an agent's `backend-url`, `ward ctl`'s API
//! URL, `ward bench agents --backend-url`, a CRL or OCSP location) goes through the `url`
//! crate here, and comes out as the few parts Ward connects with.

use std::path::PathBuf;

/// A parsed network endpoint: `ws://`/`wss://` or `http://`/`https://`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The secure scheme of the pair (`wss`, `https`).
    pub tls: bool,
    /// The host, for connecting and for TLS names: an IPv6 address without brackets.
    pub host: String,
    /// The port, or the scheme's default (80, 443).
    pub port: u16,
    /// The path and query, at least `/`.
    pub path: String,
}

impl Endpoint {
    /// The host and port as a URL or `Host` header writes them (IPv6 in brackets; the
    /// port left out when it is the scheme's default).
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Parses `s` as a `plain://` or `secure://` URL (for example `("ws", "wss")`): no user
/// name or password in it, a host, a port other than 0, no fragment. The error says what
/// is wrong in words, without repeating `s` (the caller names the setting).
/// The `key=value` pairs of a URL's query string (`a=1&b=%20x`), decoded, in order;
/// repeated keys kept.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `segment` as one URL path segment: percent-encoded as the url crate encodes path
/// segments (so `/` becomes `%2F`; `:` stays, as in `linux:check-cpu`).
pub fn path_segment(segment: &str) -> String {
    match url::Url::parse("http://x/") {
        Ok(mut u) => {
            if let Ok(mut p) = u.path_segments_mut() {
                p.clear().push(segment);
            }
            u.path().trim_start_matches('/').to_string()
        }
        Err(_) => segment.to_string(),
    }
}

/// `value` encoded for a query string (`application/x-www-form-urlencoded`, as
/// `query_pairs` decodes it).
pub fn query_value(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

pub fn parse_endpoint(s: &str, plain: &str, secure: &str) -> Result<Endpoint, String> {
    let example = format!("for example {secure}://backend-1.example.com:8081");
    let u = url::Url::parse(s.trim()).map_err(|e| format!("not a URL ({e}); {example}"))?;
    let tls = if u.scheme() == secure {
        true
    } else if u.scheme() == plain {
        false
    } else {
        return Err(format!(
            "the scheme is {:?}, not {plain}:// or {secure}://; {example}",
            u.scheme()
        ));
    };
    if !u.username().is_empty() || u.password().is_some() {
        return Err("credentials do not belong in the URL; give the user and password as settings of their own".into());
    }
    if u.fragment().is_some() {
        return Err("a #fragment has no meaning here; remove it".into());
    }
    let host = match u.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
        Some(url::Host::Ipv4(a)) => a.to_string(),
        Some(url::Host::Ipv6(a)) => a.to_string(),
        _ => return Err(format!("no host; {example}")),
    };
    let port = u
        .port_or_known_default()
        .ok_or_else(|| format!("no port; {example}"))?;
    if port == 0 {
        return Err("port 0 is not a port to connect to".into());
    }
    let mut path = u.path().to_string();
    if let Some(q) = u.query() {
        path.push('?');
        path.push_str(q);
    }
    Ok(Endpoint {
        tls,
        host,
        port,
        path,
    })
}

/// A URL that is either a local file or an HTTP endpoint (a CRL distribution point).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    Http(Endpoint),
}

/// Parses `file:///path` (percent-escapes decoded; host empty or `localhost`) or
/// `http://host[:port]/path`. `https://` is refused: what is fetched this way is signed,
/// so plain HTTP is safe, and a TLS fetch of a revocation list would need revocation
/// checks of its own.
pub fn parse_location(s: &str) -> Result<Location, String> {
    let u = url::Url::parse(s.trim()).map_err(|e| format!("not a URL ({e})"))?;
    match u.scheme() {
        "file" => {
            if !matches!(u.host_str(), None | Some("") | Some("localhost")) {
                return Err("a file URL names a local file: file:///path/to/crl.pem".into());
            }
            u.to_file_path()
                .map(Location::File)
                .map_err(|()| "a file URL needs an absolute path: file:///path/to/crl.pem".into())
        }
        "http" => parse_endpoint(s, "http", "https").map(Location::Http),
        "https" => Err("https is not supported (CRLs are signed, so plain http is safe); use http:// or file://".into()),
        other => Err(format!("the scheme is {other:?}, not file:// or http://")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_keep_one_segment() {
        assert_eq!(super::path_segment("sensu/check-cpu"), "sensu%2Fcheck-cpu");
        assert_eq!(super::path_segment("linux:check-cpu"), "linux:check-cpu");
        assert_eq!(super::path_segment("a b?#"), "a%20b%3F%23");
    }

    use super::*;

    #[test]
    fn endpoints_as_the_guides_write_them() {
        let e = parse_endpoint("wss://backend-1.example.com:8081", "ws", "wss").unwrap();
        assert_eq!(
            e,
            Endpoint {
                tls: true,
                host: "backend-1.example.com".into(),
                port: 8081,
                path: "/".into()
            }
        );
        assert_eq!(e.authority(), "backend-1.example.com:8081");
        assert_eq!(parse_endpoint("ws://h", "ws", "wss").unwrap().port, 80);
        assert_eq!(
            parse_endpoint("https://h", "http", "https").unwrap().port,
            443
        );
        let v6 = parse_endpoint("wss://[::1]:8081/x?y=1", "ws", "wss").unwrap();
        assert_eq!((v6.host.as_str(), v6.path.as_str()), ("::1", "/x?y=1"));
        assert_eq!(v6.authority(), "[::1]:8081");
    }

    #[test]
    fn bad_endpoints_say_what_is_wrong() {
        for (bad, says) in [
            ("backend:8081", "scheme"),
            ("http://h:8081", "scheme"),
            ("wss://", "host"),
            ("wss://u:p@h:8081", "credentials"),
            ("wss://h:99999", "port"),
            ("wss://h:0", "port 0"),
            ("wss://h:8081/#x", "fragment"),
            ("wss://[::1:8081", "URL"),
        ] {
            let e = parse_endpoint(bad, "ws", "wss").unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn locations() {
        assert_eq!(
            parse_location("file:///etc/ward/crl%20a.pem").unwrap(),
            Location::File("/etc/ward/crl a.pem".into())
        );
        assert_eq!(
            parse_location("file://localhost/c.pem").unwrap(),
            Location::File("/c.pem".into())
        );
        match parse_location("http://[::1]:8888/ca.crl").unwrap() {
            Location::Http(e) => assert_eq!((e.host.as_str(), e.port), ("::1", 8888)),
            other => panic!("{other:?}"),
        }
        assert!(parse_location("https://x/c.crl")
            .unwrap_err()
            .contains("https"));
        assert!(parse_location("file://other/c.pem").is_err());
        assert!(parse_location("ftp://x/c.crl").is_err());
    }
}
