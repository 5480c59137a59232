//! CA fixtures: a CA directory and leaf certificates made with Ward's own library, for tests
//! that need certificates but are not testing issuance.

use std::path::{Path, PathBuf};
use ward_io::files::{write_all, Overwrite, PlannedFile};
use ward_pki::{
    CertificateAuthority, CertificateRequest, KeyAlgorithm, KeyEncoding, KeySource, LeafRequest,
    SigningProfile, Subject,
};

/// A CA in a directory (`ca.pem`, `ca-key.pem`).
pub struct TestCa {
    pub dir: PathBuf,
    pub ca: CertificateAuthority,
}

/// Paths of an issued certificate and its key.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    /// Creates an ECDSA P-256 CA named `cn` in `dir`.
    pub fn create(dir: &Path, cn: &str) -> Self {
        let req = CertificateRequest::from_json("fixture", format!("{{\"CN\":{cn:?}}}").as_bytes())
            .expect("fixture request");
        let (ca, issued) =
            CertificateAuthority::create(&req, KeyEncoding::Traditional).expect("create CA");
        write_all(
            &[
                PlannedFile::public(dir.join("ca.pem"), issued.cert_pem.clone()),
                PlannedFile::key(dir.join("ca-key.pem"), issued.key_pem.clone().expect("key")),
            ],
            Overwrite::Allow,
        )
        .expect("write CA");
        TestCa {
            dir: dir.to_path_buf(),
            ca,
        }
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Issues `name` under a built-in profile (`server`, `client`, `peer`) with the hosts.
    pub fn issue(&self, name: &str, profile: &str, hosts: &str) -> Leaf {
        let issued = self
            .ca
            .issue(LeafRequest {
                subject: Subject::with_cn(name),
                hosts: ward_pki::parse_host_list(hosts).expect("hosts"),
                key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
                key_encoding: KeyEncoding::Traditional,
                profile: SigningProfile::builtin(profile).expect("profile"),
                clamp: false,
            })
            .expect("issue");
        let leaf = Leaf {
            cert: self.dir.join(format!("{name}.pem")),
            key: self.dir.join(format!("{name}-key.pem")),
        };
        write_all(
            &[
                PlannedFile::public(&leaf.cert, issued.cert_pem),
                PlannedFile::key(&leaf.key, issued.key_pem.expect("key")),
            ],
            Overwrite::Allow,
        )
        .expect("write leaf");
        leaf
    }
}
