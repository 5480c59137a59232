//! Ward's files and text, shared by every crate that reads or writes them, so that the
//! certificate authority, the store, the agent and the command-line client do not depend
//! on one another for them:
//!
//! - [`files`]: the one atomic writer, the one bounded reader, and the one private-key
//!   permission rule (libpq's and PostgreSQL's);
//! - [`backoff`]: the one retry backoff (exponential, full jitter);
//! - [`lock`]: exclusive directory locks, so that concurrent Ward processes take turns;
//! - [`rate`]: the one token bucket (Sensu's rate and burst limits);
//! - [`duration`]: Go-style durations (`17520h`, `1h30m`, `30d`) as cfssl and Sensu write them;
//! - [`host`]: this host's facts (name, OS, distribution, architecture);
//! - [`text`]: text that is safe to put on a terminal, hex and time as Ward prints them;
//! - [`url`]: the one URL parser (endpoints and file/http locations), on the `url` crate.
//!
//! ```no_run
//! use ward_io::files::{read_bounded, write_one, Overwrite, PlannedFile, PEM};
//! let pem = read_bounded(std::path::Path::new("ca.pem"), PEM)?;
//! write_one(&PlannedFile::public("copy.pem", pem), Overwrite::Refuse)?;
//! # Ok::<(), ward_io::Error>(())
//! ```

#![forbid(unsafe_code)]

pub mod backoff;
pub mod duration;
pub mod error;
pub mod files;
pub mod host;
pub mod lock;
pub mod owner;
pub mod rate;
pub mod text;
pub mod url;

pub use duration::{format_duration, parse_duration};

/// Now, in Unix seconds (0 if the clock is before 1970): the one `unix_now`.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
pub use error::{Error, Result};
