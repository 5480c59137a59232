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

/// `openssl s_server -WWW` serving the files of a directory over HTTPS on 127.0.0.1
/// (runtime assets for the tests). Killed on drop.
pub struct HttpsFiles {
    child: std::process::Child,
    pub port: u16,
}

impl HttpsFiles {
    /// Serves `dir` with the certificate `leaf`; its log goes next to `dir`.
    pub fn start(dir: &Path, leaf: &Leaf) -> HttpsFiles {
        let port = crate::free_port();
        let log = dir.with_extension(format!("{port}.log"));
        let mut child = std::process::Command::new(crate::require_tool("openssl"))
            .args(["s_server", "-WWW", "-quiet", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&leaf.cert)
            .arg("-key")
            .arg(&leaf.key)
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&log).expect("s_server log"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start openssl s_server");
        crate::wait_listening(&mut child, port, "openssl s_server -WWW", &log);
        HttpsFiles { child, port }
    }

    /// The URL of `file` in the served directory.
    pub fn url(&self, file: &str) -> String {
        format!("https://127.0.0.1:{}/{file}", self.port)
    }
}

impl Drop for HttpsFiles {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The SHA-512 of `bytes` in hex, as `openssl dgst -sha512` computes it.
pub fn sha512_hex(bytes: &[u8]) -> String {
    let out = crate::Command::new(crate::require_tool("openssl"))
        .args(["dgst", "-sha512", "-r"])
        .stdin(bytes.to_vec())
        .run()
        .ok()
        .stdout;
    out.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// `tar -czf` of `paths` under `src` into `out`: an asset archive made by GNU tar.
pub fn tar_gz(src: &Path, paths: &[&str], out: &Path) -> Vec<u8> {
    crate::Command::new(crate::require_tool("tar"))
        .arg("-czf")
        .arg(out)
        .args(paths)
        .current_dir(src)
        .run()
        .ok();
    std::fs::read(out).expect("the archive")
}

/// Writes an executable `#!/bin/sh` script.
pub fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).expect("script dir");
    }
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}
