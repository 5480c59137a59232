//! One error type for the crate. Every variant renders as one line that names the file or
//! value, says what is wrong, and (where there is one) the fix.

use std::path::PathBuf;

/// Everything that can go wrong reading or writing Ward's files, or parsing a duration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: already exists; pass --force to overwrite it", path.display())]
    Exists { path: PathBuf },
    /// A setting or argument that is wrong, with why.
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error(
        "{}: private key is accessible by group or others (mode {mode:04o}); fix with: chmod 600 {}",
        path.display(),
        path.display()
    )]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("{}: larger than {limit} bytes, which no {what} is; check that the path names the right file", path.display())]
    TooLarge {
        path: PathBuf,
        limit: u64,
        what: &'static str,
    },
    #[error("{}: is {kind}, not a regular file; name a regular file", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{what}: bad duration {value:?}: {reason} (use Go durations such as 8760h, 90m, 30s; or days such as 30d)")]
    BadDuration {
        what: String,
        value: String,
        reason: String,
    },
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
}
