//! PostgreSQL TLS tooling: libpq's connection parameters and certificate rules on rustls,
//! and the `ward pg` commands that configure, probe, audit and renew a server's TLS.
//!
//! ```no_run
//! use ward_pg::probe::{probe, ProbeOptions};
//! use ward_pg::tls::SslMode;
//! let report = probe(&ProbeOptions {
//!     host: "postgres.example.com".into(),
//!     port: 5432,
//!     hostaddr: None,
//!     sslmode: SslMode::VerifyFull,
//!     root_cert: Some("/etc/ward/tls/ca.pem".into()),
//!     client_cert: None,
//!     warning: std::time::Duration::from_secs(30 * 86400),
//!     critical: std::time::Duration::from_secs(7 * 86400),
//!     plaintext_login: None,
//!     timeout: std::time::Duration::from_secs(10),
//! })?;
//! println!("{}", report.summary);
//! # Ok::<(), ward_pg::Error>(())
//! ```

#![forbid(unsafe_code)]

pub mod audit;
pub mod configure;
pub mod connect;
pub mod conninfo;
pub mod error;
pub mod install;
pub mod pair;
pub mod passfile;
pub mod probe;
pub mod server;
pub mod tls;
pub mod wire;

pub use error::{Error, Result};
