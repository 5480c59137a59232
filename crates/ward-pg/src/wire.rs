//! The few PostgreSQL protocol messages Ward speaks itself: the SSLRequest that precedes TLS,
//! a StartupMessage to learn whether a server would accept a login without TLS, and the
//! server's first reply to it.

use std::io::{Read, Write};
use std::net::TcpStream;

/// `SSLRequest`: length 8, code 80877103.
pub const SSL_REQUEST: [u8; 8] = [0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x2f];

/// The server's answer to an SSLRequest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SslAnswer {
    /// `S`: go ahead with TLS.
    Tls,
    /// `N`: this server does not do TLS.
    NoTls,
}

/// Sends an SSLRequest and reads exactly one byte. Anything the server sends after `S`
/// before our ClientHello would be injected into the TLS stream (CVE-2021-23222), so any
/// such byte is refused.
pub fn ssl_request(sock: &mut TcpStream) -> std::io::Result<SslAnswer> {
    sock.write_all(&SSL_REQUEST)?;
    let mut b = [0u8; 1];
    sock.read_exact(&mut b)?;
    match b[0] {
        b'S' => {
            sock.set_nonblocking(true)?;
            let mut extra = [0u8; 1];
            let peeked = sock.peek(&mut extra);
            sock.set_nonblocking(false)?;
            match peeked {
                Ok(0) => Ok(SslAnswer::Tls),
                Ok(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "the server sent bytes after its 'S' answer before the TLS handshake (a buffer-stuffing attack, CVE-2021-23222); refusing",
                )),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(SslAnswer::Tls),
                Err(e) => Err(e),
            }
        }
        b'N' => Ok(SslAnswer::NoTls),
        // An 'E' here is an old server's error; its text is not trusted or shown
        // (CVE-2024-10977).
        other => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "unexpected answer {:?} to SSLRequest; is this a PostgreSQL server?",
                other as char
            ),
        )),
    }
}

/// A protocol 3.0 StartupMessage.
pub fn startup_message(user: &str, database: &str, application: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196608u32.to_be_bytes());
    for (k, v) in [
        ("user", user),
        ("database", database),
        ("application_name", application),
    ] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend(body);
    msg
}

/// What the server said to a plaintext StartupMessage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum StartupAnswer {
    /// AuthenticationOk: the login was accepted without TLS and without a password.
    AcceptedWithoutAuthentication,
    /// An authentication request: the server would go on to a password exchange over
    /// plaintext (`method` names it).
    AuthenticationRequested { method: String },
    /// An ErrorResponse: SQLSTATE and message.
    Refused { sqlstate: String, message: String },
}

/// Reads the server's first reply to a StartupMessage.
pub fn read_startup_answer(sock: &mut TcpStream) -> std::io::Result<StartupAnswer> {
    let mut head = [0u8; 5];
    sock.read_exact(&mut head)?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if !(4..=64 * 1024).contains(&len) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "malformed message length",
        ));
    }
    let mut body = vec![0u8; len - 4];
    sock.read_exact(&mut body)?;
    match head[0] {
        b'R' if body.len() >= 4 => {
            let code = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
            Ok(match code {
                0 => StartupAnswer::AcceptedWithoutAuthentication,
                other => StartupAnswer::AuthenticationRequested {
                    method: match other {
                        2 => "kerberos",
                        3 => "password (cleartext)",
                        5 => "md5",
                        7 => "gssapi",
                        9 => "sspi",
                        10 => "sasl (scram-sha-256)",
                        _ => "unknown",
                    }
                    .to_string(),
                },
            })
        }
        b'E' => {
            let mut sqlstate = String::new();
            let mut message = String::new();
            for field in body.split(|b| *b == 0) {
                if let Some((&t, v)) = field.split_first() {
                    let v = String::from_utf8_lossy(v).into_owned();
                    match t {
                        b'C' => sqlstate = v,
                        b'M' => message = v,
                        _ => {}
                    }
                }
            }
            Ok(StartupAnswer::Refused { sqlstate, message })
        }
        other => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "unexpected message {:?} after StartupMessage",
                other as char
            ),
        )),
    }
}

/// A minimal TLS 1.0/1.1 ClientHello (TLS_ECDHE_*/RSA CBC suites, P-256 and X25519), to
/// learn whether a server still accepts an old protocol version. rustls cannot speak these
/// versions, which is right for a client but means a probe must ask by hand.
pub fn legacy_client_hello(version: u16, host: Option<&str>) -> Vec<u8> {
    let suites: [u16; 7] = [0xc013, 0xc014, 0xc009, 0xc00a, 0x002f, 0x0035, 0x00ff];
    let mut exts = Vec::new();
    if let Some(h) = host {
        let name = h.as_bytes();
        let mut sni = Vec::new();
        sni.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
        sni.push(0);
        sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
        sni.extend_from_slice(name);
        ext(&mut exts, 0x0000, &sni);
    }
    ext(&mut exts, 0x000a, &[0x00, 0x04, 0x00, 0x17, 0x00, 0x1d]); // supported_groups
    ext(&mut exts, 0x000b, &[0x01, 0x00]); // ec_point_formats: uncompressed
    let mut hello = Vec::new();
    hello.extend_from_slice(&version.to_be_bytes());
    let mut random = [0u8; 32];
    let _ = aws_random(&mut random);
    hello.extend_from_slice(&random);
    hello.push(0); // session id
    hello.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        hello.extend_from_slice(&s.to_be_bytes());
    }
    hello.extend_from_slice(&[1, 0]); // compression: null
    hello.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    hello.extend(exts);
    let mut hs = vec![0x01];
    hs.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    hs.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend(hs);
    record
}

fn ext(out: &mut Vec<u8>, kind: u16, body: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
}

fn aws_random(buf: &mut [u8]) -> Result<(), ()> {
    aws_lc_rs::rand::fill(buf).map_err(|_| ())
}

/// Whether the server answered a legacy ClientHello with a ServerHello of that version.
pub fn legacy_version_accepted(sock: &mut TcpStream, version: u16) -> std::io::Result<bool> {
    let mut head = [0u8; 5];
    match sock.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(false),
        Err(e) => return Err(e),
    }
    if head[0] != 0x16 {
        return Ok(false); // an alert (0x15): refused
    }
    let mut hs = [0u8; 6];
    sock.read_exact(&mut hs)?;
    // handshake type 2 = ServerHello; then 3 length bytes; then server_version
    Ok(hs[0] == 2 && u16::from_be_bytes([hs[4], hs[5]]) == version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_message_is_length_prefixed_protocol_3() {
        let m = startup_message("sensu", "sensu_events", "ward");
        assert_eq!(
            u32::from_be_bytes([m[0], m[1], m[2], m[3]]) as usize,
            m.len()
        );
        assert_eq!(&m[4..8], &196608u32.to_be_bytes());
        assert!(m.ends_with(b"ward\0\0"));
    }

    #[test]
    fn legacy_hello_is_a_tls_record() {
        let h = legacy_client_hello(0x0301, Some("db.example.com"));
        assert_eq!(h[0], 0x16);
        assert_eq!(u16::from_be_bytes([h[3], h[4]]) as usize, h.len() - 5);
        assert_eq!(h[5], 0x01);
    }
}
