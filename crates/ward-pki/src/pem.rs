//! PEM for the certificate authority: read with rustls-pki-types (the one PEM reader the
//! project uses), and the one writer for the key files Ward makes.
//!
//! Reading knows the labels Ward deals in (certificates, CSRs, CRLs, private and public
//! keys); blocks with other labels are skipped, as every rustls-based reader skips them.

use base64::Engine as _;
use rustls_pki_types::pem::{self, SectionKind};

/// One decoded PEM block.
#[derive(Debug)]
pub(crate) struct Block {
    /// The label as written after `-----BEGIN ` (`CERTIFICATE`, `X509 CRL`, …).
    pub label: &'static str,
    pub der: Vec<u8>,
}

/// Every block Ward knows in `bytes`, in order. A block that starts but is not closed, or
/// whose base64 is broken, is an error naming what is wrong.
pub(crate) fn parse(bytes: &[u8]) -> Result<Vec<Block>, pem::Error> {
    let mut reader = bytes;
    let mut out = Vec::new();
    while let Some((kind, der)) = pem::from_buf(&mut reader)? {
        out.push(Block {
            label: label(kind),
            der,
        });
    }
    Ok(out)
}

fn label(kind: SectionKind) -> &'static str {
    match kind {
        SectionKind::Certificate => "CERTIFICATE",
        SectionKind::Csr => "CERTIFICATE REQUEST",
        SectionKind::Crl => "X509 CRL",
        SectionKind::PrivateKey => "PRIVATE KEY",
        SectionKind::RsaPrivateKey => "RSA PRIVATE KEY",
        SectionKind::EcPrivateKey => "EC PRIVATE KEY",
        SectionKind::PublicKey => "PUBLIC KEY",
        _ => "unsupported",
    }
}

/// `der` as a PEM block with `label`: base64 in 64-column lines, CRLF line ends (the form
/// Ward has always written keys in; OpenSSL, libpq and Go read it).
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 32 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\r\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\r\n");
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_and_parse_round_trip() {
        let der: Vec<u8> = (0..=255u8).cycle().take(200).collect();
        let text = encode("EC PRIVATE KEY", &der);
        assert!(text.starts_with("-----BEGIN EC PRIVATE KEY-----\r\n"));
        assert!(text.lines().all(|l| l.trim_end().len() <= 64));
        let blocks = parse(text.as_bytes()).unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].label, "EC PRIVATE KEY");
        assert_eq!(blocks[0].der, der);
    }

    #[test]
    fn unknown_labels_are_skipped_and_broken_blocks_refused() {
        let text = format!("{}{}", encode("FOO", b"x"), encode("CERTIFICATE", b"y"));
        let blocks = parse(text.as_bytes()).unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].label, "CERTIFICATE");
        assert!(parse(b"-----BEGIN CERTIFICATE-----\nAAAA\n").is_err());
    }
}
