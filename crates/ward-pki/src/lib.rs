//! Ward's certificate authority.
//!
//! Everything the Sensu and PostgreSQL guides make an operator do with cfssl, cfssljson,
//! openssl and chmod, done once and correctly: cfssl-compatible requests and signing
//! profiles, certificate issuance with safe defaults, atomic file writes with private key
//! modes (through `ward_io`), inspection, expiry checks, revocation lists and renewal.
//!
//! ```no_run
//! use ward_pki::{CertificateAuthority, CertificateRequest, KeyEncoding, LeafRequest, KeySource, SigningProfile, Subject};
//! let ca_req = CertificateRequest::from_json("stdin", br#"{"CN":"Ward CA"}"#)?;
//! let (ca, _ca_files) = CertificateAuthority::create(&ca_req, KeyEncoding::Traditional)?;
//! let leaf = ca.issue(LeafRequest {
//!     subject: Subject::with_cn("backend-1.example.com"),
//!     hosts: ward_pki::parse_host_list("backend-1,10.0.0.1")?,
//!     key: KeySource::Generate(Default::default()),
//!     key_encoding: KeyEncoding::Traditional,
//!     profile: SigningProfile::builtin("peer").unwrap(),
//!     clamp: false,
//! })?;
//! println!("{}", leaf.cert_pem);
//! # Ok::<(), ward_pki::Error>(())
//! ```

#![forbid(unsafe_code)]

pub mod authority;
pub mod bare;
pub mod bootstrap;
pub mod csr;
pub mod error;
pub mod expiry;
pub mod inspect;
pub mod key;
pub mod names;
mod pem;
pub mod profile;
pub mod renew;
pub mod request;
pub mod revocation;
pub mod trust;

pub use authority::{ca_paths, CertificateAuthority, IssuedCertificate, KeySource, LeafRequest};
pub use error::{Error, Result};
pub use key::{KeyAlgorithm, KeyEncoding, PrivateKey};
pub use names::{parse_host_list, SubjectName};
pub use profile::{resolve_profile, SigningConfig, SigningProfile, Usage};
pub use request::{CertificateRequest, Subject};
