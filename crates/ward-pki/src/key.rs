//! Private keys: the algorithms Ward issues, generation, the PEM encodings written (cfssl's
//! traditional PKCS#1 / SEC1, or PKCS#8), and loading any of them back.

use crate::error::{Error, Result};
use der::{Decode, Encode};
use rcgen::{KeyPair, SignatureAlgorithm};
use std::fmt;
use std::path::Path;
use ward_io::files;

const OID_RSA: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_ED25519: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_P256: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// A key algorithm Ward can generate and sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    Rsa(u32),
    EcdsaP256,
    EcdsaP384,
    Ed25519,
}

impl Default for KeyAlgorithm {
    /// ECDSA P-256, as cfssl when a request names no key.
    fn default() -> Self {
        KeyAlgorithm::EcdsaP256
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyAlgorithm::Rsa(bits) => write!(f, "rsa-{bits}"),
            KeyAlgorithm::EcdsaP256 => f.write_str("ecdsa-p256"),
            KeyAlgorithm::EcdsaP384 => f.write_str("ecdsa-p384"),
            KeyAlgorithm::Ed25519 => f.write_str("ed25519"),
        }
    }
}

/// The names `--key` accepts.
pub const KEY_ALGORITHM_NAMES: &str =
    "rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384, ed25519";

impl std::str::FromStr for KeyAlgorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "rsa-2048" | "rsa2048" => KeyAlgorithm::Rsa(2048),
            "rsa-3072" | "rsa3072" => KeyAlgorithm::Rsa(3072),
            "rsa-4096" | "rsa4096" => KeyAlgorithm::Rsa(4096),
            "ecdsa-p256" | "p256" | "p-256" => KeyAlgorithm::EcdsaP256,
            "ecdsa-p384" | "p384" | "p-384" => KeyAlgorithm::EcdsaP384,
            "ed25519" => KeyAlgorithm::Ed25519,
            _ => {
                return Err(Error::BadKeyAlgorithm {
                    value: s.to_string(),
                    reason: format!("unknown key type; use one of {KEY_ALGORITHM_NAMES}"),
                })
            }
        })
    }
}

impl KeyAlgorithm {
    /// From cfssl's `key: {algo, size}`; a missing algo means ECDSA P-256, a missing size the
    /// algorithm's default (RSA 2048, ECDSA 256).
    pub fn from_cfssl(algo: Option<&str>, size: Option<u32>) -> Result<Self> {
        let algo = algo.unwrap_or("ecdsa").to_ascii_lowercase();
        let bad = |reason: String| Error::BadKeyAlgorithm {
            value: format!("{{\"algo\":{algo:?},\"size\":{}}}", size.unwrap_or(0)),
            reason,
        };
        match algo.as_str() {
            "rsa" => match size.unwrap_or(2048) {
                s @ (2048 | 3072 | 4096) => Ok(KeyAlgorithm::Rsa(s)),
                s => Err(bad(format!(
                    "RSA key size {s} is not supported; use 2048, 3072 or 4096"
                ))),
            },
            "ecdsa" => match size.unwrap_or(256) {
                256 => Ok(KeyAlgorithm::EcdsaP256),
                384 => Ok(KeyAlgorithm::EcdsaP384),
                s => Err(bad(format!(
                    "ECDSA key size {s} is not supported; use 256 or 384"
                ))),
            },
            "ed25519" => Ok(KeyAlgorithm::Ed25519),
            other => Err(bad(format!(
                "unknown key algorithm {other:?}; use rsa, ecdsa or ed25519"
            ))),
        }
    }

    /// The signature algorithm a key of this kind signs with. For RSA the hash follows the
    /// key size, as cfssl does: ≥4096 → SHA-512, ≥3072 → SHA-384, else SHA-256.
    pub fn signature_algorithm(&self) -> &'static SignatureAlgorithm {
        match self {
            KeyAlgorithm::Rsa(bits) if *bits >= 4096 => &rcgen::PKCS_RSA_SHA512,
            KeyAlgorithm::Rsa(bits) if *bits >= 3072 => &rcgen::PKCS_RSA_SHA384,
            KeyAlgorithm::Rsa(_) => &rcgen::PKCS_RSA_SHA256,
            KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }

    /// cfssl's spelling, for `key` in CSR JSON.
    pub fn cfssl_algo(&self) -> (&'static str, u32) {
        match self {
            KeyAlgorithm::Rsa(b) => ("rsa", *b),
            KeyAlgorithm::EcdsaP256 => ("ecdsa", 256),
            KeyAlgorithm::EcdsaP384 => ("ecdsa", 384),
            KeyAlgorithm::Ed25519 => ("ed25519", 0),
        }
    }
}

/// How a private key is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEncoding {
    /// cfssl's: `RSA PRIVATE KEY` (PKCS#1), `EC PRIVATE KEY` (SEC1); Ed25519 has no
    /// traditional form and is written as PKCS#8.
    Traditional,
    /// `PRIVATE KEY` (PKCS#8).
    Pkcs8,
}

/// A private key with the algorithm it signs with.
pub struct PrivateKey {
    pub algorithm: KeyAlgorithm,
    pub pair: KeyPair,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        write!(f, "PrivateKey({})", self.algorithm)
    }
}

impl PrivateKey {
    /// Generates a fresh key.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self> {
        let alg = algorithm.signature_algorithm();
        let pair = match algorithm {
            KeyAlgorithm::Rsa(bits) => {
                let size = match bits {
                    2048 => rcgen::RsaKeySize::_2048,
                    3072 => rcgen::RsaKeySize::_3072,
                    4096 => rcgen::RsaKeySize::_4096,
                    other => {
                        return Err(Error::BadKeyAlgorithm {
                            value: format!("rsa-{other}"),
                            reason: "unsupported RSA size; use 2048, 3072 or 4096".into(),
                        })
                    }
                };
                KeyPair::generate_rsa_for(alg, size)?
            }
            _ => KeyPair::generate_for(alg)?,
        };
        Ok(PrivateKey { algorithm, pair })
    }

    /// PEM text of the key in the chosen encoding.
    pub fn to_pem(&self, encoding: KeyEncoding) -> Result<String> {
        let pkcs8 = self.pair.serialized_der();
        let (label, der) = match (encoding, self.algorithm) {
            (_, KeyAlgorithm::Ed25519) => {
                // aws-lc writes Ed25519 as PKCS#8 v2 (with the public key), which OpenSSL 3.0
                // cannot read; write the v1 form every tool reads.
                let mut info = pkcs8::PrivateKeyInfo::from_der(pkcs8)
                    .map_err(|e| Error::Signing(format!("re-encoding Ed25519 key: {e}")))?;
                info.public_key = None;
                let der = info
                    .to_der()
                    .map_err(|e| Error::Signing(format!("re-encoding Ed25519 key: {e}")))?;
                ("PRIVATE KEY", der)
            }
            (KeyEncoding::Pkcs8, _) => ("PRIVATE KEY", pkcs8.to_vec()),
            (KeyEncoding::Traditional, KeyAlgorithm::Rsa(_)) => {
                let info = pkcs8::PrivateKeyInfo::from_der(pkcs8)
                    .map_err(|e| Error::Signing(format!("re-encoding RSA key: {e}")))?;
                ("RSA PRIVATE KEY", info.private_key.to_vec())
            }
            (KeyEncoding::Traditional, KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384) => {
                let info = pkcs8::PrivateKeyInfo::from_der(pkcs8)
                    .map_err(|e| Error::Signing(format!("re-encoding EC key: {e}")))?;
                let curve = info
                    .algorithm
                    .parameters_oid()
                    .map_err(|e| Error::Signing(format!("EC key without curve: {e}")))?;
                let mut ec = sec1::EcPrivateKey::from_der(info.private_key)
                    .map_err(|e| Error::Signing(format!("re-encoding EC key: {e}")))?;
                // A standalone SEC1 key must name its curve, or OpenSSL cannot load it.
                ec.parameters = Some(sec1::EcParameters::NamedCurve(curve));
                let der = ec
                    .to_der()
                    .map_err(|e| Error::Signing(format!("re-encoding EC key: {e}")))?;
                ("EC PRIVATE KEY", der)
            }
        };
        Ok(crate::pem::encode(label, &der))
    }

    /// Loads a key from a file, refusing group/world-accessible files.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = files::read_private_key_file(path)?;
        Self::from_pem(path, &bytes)
    }

    /// Parses a PEM key (PKCS#8, PKCS#1 or SEC1); `path` names it in errors.
    pub fn from_pem(path: &Path, bytes: &[u8]) -> Result<Self> {
        let bad = |reason: String| Error::BadKey {
            path: path.to_path_buf(),
            reason,
        };
        let text = String::from_utf8_lossy(bytes);
        if text.contains("ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED") {
            return Err(Error::EncryptedKey {
                path: path.to_path_buf(),
            });
        }
        let blocks = crate::pem::parse(bytes).map_err(|e| bad(format!("not PEM: {e}")))?;
        let block = blocks
            .iter()
            .find(|b| b.label.ends_with("PRIVATE KEY"))
            .ok_or_else(|| bad("no PRIVATE KEY block found".into()))?;
        let der = block.der.as_slice();
        let (algorithm, key_der) = match block.label {
            "PRIVATE KEY" => {
                let info = pkcs8::PrivateKeyInfo::from_der(der)
                    .map_err(|e| bad(format!("malformed PKCS#8: {e}")))?;
                let oid = info.algorithm.oid;
                let alg = if oid == OID_RSA {
                    KeyAlgorithm::Rsa(rsa_bits(info.private_key).map_err(bad)?)
                } else if oid == OID_EC {
                    curve_algorithm(info.algorithm.parameters_oid().ok()).map_err(bad)?
                } else if oid == OID_ED25519 {
                    KeyAlgorithm::Ed25519
                } else {
                    return Err(bad(format!("unsupported key algorithm {oid}")));
                };
                (
                    alg,
                    rustls_pki_types::PrivateKeyDer::Pkcs8(der.to_vec().into()),
                )
            }
            "RSA PRIVATE KEY" => (
                KeyAlgorithm::Rsa(rsa_bits(der).map_err(bad)?),
                rustls_pki_types::PrivateKeyDer::Pkcs1(der.to_vec().into()),
            ),
            "EC PRIVATE KEY" => {
                let ec = sec1::EcPrivateKey::from_der(der)
                    .map_err(|e| bad(format!("malformed SEC1 EC key: {e}")))?;
                let curve = ec.parameters.and_then(|p| p.named_curve());
                (
                    curve_algorithm(curve).map_err(bad)?,
                    rustls_pki_types::PrivateKeyDer::Sec1(der.to_vec().into()),
                )
            }
            other => return Err(bad(format!("unsupported PEM block {other:?}"))),
        };
        let pair = KeyPair::from_der_and_sign_algo(&key_der, algorithm.signature_algorithm())
            .map_err(|e| bad(format!("cannot load key: {e}")))?;
        Ok(PrivateKey { algorithm, pair })
    }

    /// The raw public key (RSA: PKCS#1 RSAPublicKey; EC: the point; Ed25519: 32 bytes), as it
    /// appears in a certificate's subjectPublicKey bit string.
    pub fn public_key_raw(&self) -> &[u8] {
        use rcgen::PublicKeyData;
        self.pair.der_bytes()
    }
}

fn curve_algorithm(curve: Option<der::asn1::ObjectIdentifier>) -> Result<KeyAlgorithm, String> {
    match curve {
        Some(c) if c == OID_P256 => Ok(KeyAlgorithm::EcdsaP256),
        Some(c) if c == OID_P384 => Ok(KeyAlgorithm::EcdsaP384),
        Some(c) => Err(format!("unsupported EC curve {c}; use P-256 or P-384")),
        None => Err("EC key does not name its curve".into()),
    }
}

fn rsa_bits(pkcs1: &[u8]) -> Result<u32, String> {
    let kp =
        aws_lc_rs::rsa::KeyPair::from_der(pkcs1).map_err(|e| format!("malformed RSA key: {e}"))?;
    Ok((kp.public_modulus_len() * 8) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traditional_encodings_round_trip() {
        for alg in [
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::EcdsaP384,
            KeyAlgorithm::Ed25519,
        ] {
            let k = PrivateKey::generate(alg).unwrap();
            for enc in [KeyEncoding::Traditional, KeyEncoding::Pkcs8] {
                let pem = k.to_pem(enc).unwrap();
                let back = PrivateKey::from_pem(Path::new("k"), pem.as_bytes()).unwrap();
                assert_eq!(back.algorithm, alg);
                assert_eq!(back.public_key_raw(), k.public_key_raw());
            }
        }
        let ec = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        assert!(ec
            .to_pem(KeyEncoding::Traditional)
            .unwrap()
            .starts_with("-----BEGIN EC PRIVATE KEY-----"));
    }

    #[test]
    fn cfssl_key_specs_map_and_bad_ones_are_refused() {
        assert_eq!(
            KeyAlgorithm::from_cfssl(None, None).unwrap(),
            KeyAlgorithm::EcdsaP256
        );
        assert_eq!(
            KeyAlgorithm::from_cfssl(Some("rsa"), Some(2048)).unwrap(),
            KeyAlgorithm::Rsa(2048)
        );
        assert!(KeyAlgorithm::from_cfssl(Some("rsa"), Some(1024)).is_err());
        assert!(KeyAlgorithm::from_cfssl(Some("dsa"), None).is_err());
        assert!("rsa-1024".parse::<KeyAlgorithm>().is_err());
    }

    #[test]
    fn encrypted_keys_are_named_as_such() {
        let e = PrivateKey::from_pem(
            Path::new("x.pem"),
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap_err();
        assert!(matches!(e, Error::EncryptedKey { .. }));
    }
}
