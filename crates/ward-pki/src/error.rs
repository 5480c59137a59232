//! One error type for the crate. Every variant renders as one line that names the thing,
//! says what is wrong, and (where there is one) the fix.

use std::path::PathBuf;

/// Everything that can go wrong in `ward-pki`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: private key is encrypted; Ward needs an unencrypted key (decrypt it with: openssl pkey -in {} -out NEW-key.pem, then chmod 600 NEW-key.pem)", path.display(), path.display())]
    EncryptedKey { path: PathBuf },
    #[error("{}: not a usable private key: {reason}", path.display())]
    BadKey { path: PathBuf, reason: String },
    #[error("{}: private key does not match the certificate {}; pass the key that was issued with it", key.display(), cert.display())]
    KeyMismatch { key: PathBuf, cert: PathBuf },
    #[error("{}: certificate is not a CA (basicConstraints CA:TRUE missing); pass a CA certificate with -ca/--ca-dir", path.display())]
    NotCa { path: PathBuf },
    #[error("{}: CA certificate expired on {not_after}; create a new CA (ward pki init-ca) or renew it", path.display())]
    CaExpired { path: PathBuf, not_after: String },
    #[error("{}: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },
    #[error("{what}: malformed {format}: {reason}")]
    Malformed {
        what: String,
        format: &'static str,
        reason: String,
    },
    #[error("profile {name:?} is not defined in {source_name}; defined profiles: {available}")]
    UnknownProfile {
        name: String,
        source_name: String,
        available: String,
    },
    #[error("usage {usage:?} in {place} is not a known usage; known usages: {known}")]
    UnknownUsage {
        usage: String,
        place: String,
        known: &'static str,
    },
    #[error("host {value:?} is neither a DNS name, an IP address, an e-mail address nor a URI")]
    BadHost { value: String },
    #[error("key {value}: {reason}")]
    BadKeyAlgorithm { value: String, reason: String },
    #[error("certificate for {cn:?} would expire on {leaf_not_after}, after its CA ({ca_not_after}); shorten the expiry, or pass --clamp to cut it to the CA's end")]
    OutlivesCa {
        cn: String,
        leaf_not_after: String,
        ca_not_after: String,
    },
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
    /// Reading or writing a file, or a duration (`ward_io`).
    #[error(transparent)]
    File(#[from] ward_io::Error),
    #[error("signing failed: {0}")]
    Signing(String),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            action,
            source,
        }
    }

    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

impl From<rcgen::Error> for Error {
    fn from(e: rcgen::Error) -> Self {
        Error::Signing(e.to_string())
    }
}
