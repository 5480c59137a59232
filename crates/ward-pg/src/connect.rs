//! Connecting to PostgreSQL with libpq's semantics, on tokio-postgres and rustls.
//!
//! [`crate::conninfo::resolve`] decides *what* to connect to; this module does it: each host
//! of the list in order (libpq's failover), TLS checked by [`LibpqVerifier`] (libpq's
//! `sslmode` rules, CRLs, host names), a client certificate when one is configured, a
//! password from the password file when none is given. Where libpq would fall back to
//! plaintext after a failed certificate check (`prefer`, `allow`), Ward refuses; plaintext
//! is used only when the server itself answers that it has no TLS.
//!
//! ```no_run
//! # async fn run() -> ward_pg::Result<()> {
//! let params = ward_pg::conninfo::resolve(
//!     "host=postgres.example.com dbname=ward_events user=ward sslmode=verify-full",
//!     &|k| std::env::var(k).ok(),
//! )?;
//! let client = ward_pg::connect::connect(&params, "ward backend").await?;
//! client.simple_query("SELECT 1").await.map_err(|e| {
//!     ward_pg::Error::connect("query", ward_pg::connect::describe_pg_error(&e))
//! })?;
//! # Ok(()) }
//! ```

use crate::conninfo::{ChannelBinding, ConnParams, HostTarget, SessionAttrs, DEFAULT_SOCKET_DIR};
use crate::error::{Error, Result};
use crate::passfile::{self, PassfileKey};
use crate::tls::{LibpqVerifier, SslMode, Verification};
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::RootCertStore;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long each host may take when `connect_timeout` is not given (libpq would wait
/// forever; a monitoring pipeline must not).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects with libpq's semantics (see the module documentation), trying each host in
/// order. The connection's I/O runs on a task spawned here (so a Tokio runtime must be
/// running); the client reports `is_closed()` once the connection ends.
///
/// Fails with one line: a configuration problem names the parameter or file and the fix
/// (nothing is dialled then); a failed connection names the host and gives the server's
/// message verbatim (`FATAL: connection requires a valid client certificate (28000)`) or
/// the certificate check's reason, one `host: reason` per host tried.
pub async fn connect(p: &ConnParams, application: &str) -> Result<tokio_postgres::Client> {
    let targets = p.targets();
    let uses_tls = p.sslmode != SslMode::Disable && targets.iter().any(|t| !t.is_socket());
    let tls = if uses_tls {
        Some(ClientTls::load(p)?)
    } else {
        None
    };
    let mut failures = Vec::new();
    for t in &targets {
        match connect_to(p, t, tls.as_ref(), application).await {
            Ok(client) => return Ok(client),
            Err(reason) => failures.push((t, reason)),
        }
    }
    if let [(t, reason)] = failures.as_slice() {
        return Err(Error::connect(t.to_string(), reason.clone()));
    }
    Err(Error::connect(
        format!("all {} hosts failed", failures.len()),
        failures
            .iter()
            .map(|(t, r)| format!("{t}: {r}"))
            .collect::<Vec<_>>()
            .join("; "),
    ))
}

/// One host: the whole attempt (dial, TLS, authentication) within `connect_timeout`.
async fn connect_to(
    p: &ConnParams,
    t: &HostTarget,
    tls: Option<&ClientTls>,
    application: &str,
) -> std::result::Result<tokio_postgres::Client, String> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.user(&p.user).dbname(&p.dbname).port(t.port);
    cfg.application_name(p.application_name.as_deref().unwrap_or(application));
    if let Some(o) = &p.options {
        cfg.options(o);
    }
    cfg.target_session_attrs(match p.target_session_attrs {
        SessionAttrs::Any => tokio_postgres::config::TargetSessionAttrs::Any,
        SessionAttrs::ReadWrite => tokio_postgres::config::TargetSessionAttrs::ReadWrite,
        SessionAttrs::ReadOnly => tokio_postgres::config::TargetSessionAttrs::ReadOnly,
    });
    cfg.channel_binding(match p.channel_binding {
        ChannelBinding::Disable => tokio_postgres::config::ChannelBinding::Disable,
        ChannelBinding::Prefer => tokio_postgres::config::ChannelBinding::Prefer,
        ChannelBinding::Require => tokio_postgres::config::ChannelBinding::Require,
    });
    let from_file = match (&p.password, &p.passfile) {
        (Some(pw), _) => {
            cfg.password(pw);
            None
        }
        (None, Some(file)) => {
            let pw = passfile::lookup(
                file,
                &PassfileKey {
                    host: passfile_host(t),
                    port: t.port,
                    database: &p.dbname,
                    user: &p.user,
                },
            );
            pw.map(|pw| {
                cfg.password(pw);
                file.as_path()
            })
        }
        (None, None) => None,
    };
    if t.is_socket() {
        cfg.host_path(&t.host);
    } else if t.host.is_empty() {
        // Only hostaddr: dial it, and it is also the name TLS sees (libpq).
        cfg.host(t.hostaddr.as_deref().unwrap_or_default());
    } else {
        cfg.host(&t.host);
        if let Some(a) = &t.hostaddr {
            cfg.hostaddr(
                a.parse()
                    .map_err(|_| format!("{a:?} is not an IP address"))?,
            );
        }
    }
    let limit = match p.connect_timeout {
        Some(0) => None,
        Some(s) => Some(Duration::from_secs(s)),
        None => Some(DEFAULT_CONNECT_TIMEOUT),
    };
    if let Some(l) = limit {
        cfg.connect_timeout(l);
    }
    let attempt = async {
        match tls {
            Some(tls) if !t.is_socket() => {
                cfg.ssl_mode(match p.sslmode {
                    // Both try TLS first; a server answering `N` gets plaintext (libpq), a
                    // failed handshake or certificate check is an error (never plaintext).
                    SslMode::Allow | SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                    _ => tokio_postgres::config::SslMode::Require,
                });
                let config = tls.config_for(&t.host)?;
                let (client, connection) = cfg
                    .connect(tokio_postgres_rustls::MakeRustlsConnect::new(config))
                    .await
                    .map_err(|e| describe_connect_error(&e, p, from_file))?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok(client)
            }
            // Unix sockets never use TLS (libpq), and sslmode=disable.
            _ => {
                cfg.ssl_mode(tokio_postgres::config::SslMode::Disable);
                let (client, connection) = cfg
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e| describe_connect_error(&e, p, from_file))?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok(client)
            }
        }
    };
    match limit {
        Some(l) => tokio::time::timeout(l, attempt).await.map_err(|_| {
            format!(
                "timeout expired after {} s (connect_timeout, PGCONNECT_TIMEOUT)",
                l.as_secs()
            )
        })?,
        None => attempt.await,
    }
}

/// The host a password file line is matched against: the host name, else the hostaddr;
/// the default socket directory counts as `localhost` (libpq).
fn passfile_host(t: &HostTarget) -> &str {
    if t.host == DEFAULT_SOCKET_DIR {
        "localhost"
    } else if t.host.is_empty() {
        t.hostaddr.as_deref().unwrap_or("localhost")
    } else {
        &t.host
    }
}

/// `describe_pg_error`, with the hints libpq gives and the files involved: where the
/// password came from, which root file the chain was checked against.
fn describe_connect_error(
    e: &tokio_postgres::Error,
    p: &ConnParams,
    password_file: Option<&Path>,
) -> String {
    let mut s = describe_pg_error(e);
    if let (Some(db), Some(file)) = (e.as_db_error(), password_file) {
        if *db.code() == tokio_postgres::error::SqlState::INVALID_PASSWORD {
            s.push_str(&format!(
                "; the password was read from the password file \"{}\": correct it there",
                file.display()
            ));
        }
    }
    if s.ends_with("password missing") {
        let file = match (&p.passfile, p.warnings.is_empty()) {
            (Some(f), _) => format!("no line of the password file \"{}\" matches", f.display()),
            (None, false) => "the password file was ignored (see the warning)".into(),
            (None, true) => "there is no password file (~/.pgpass, PGPASSFILE)".into(),
        };
        s = format!(
            "fe_sendauth: no password supplied: the server asks for {}'s password and {file}; give it in the password file, PGPASSWORD or password=",
            p.user
        );
    }
    if s.contains("certificate verify failed") {
        if let Some(root) = &p.sslrootcert {
            s.push_str(&format!(" (root certificate file \"{}\")", root.display()));
        }
    }
    if s.contains("Connection refused") {
        s.push_str("; is the server running on that host and accepting TCP/IP connections?");
    }
    s
}

/// One line for a tokio-postgres error: a server error as `SEVERITY: message (SQLSTATE)`
/// with PostgreSQL's own words; anything else as its chain of causes, with TLS failures in
/// the certificate check's words.
pub fn describe_pg_error(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {} ({})", db.severity(), db.message(), db.code().code());
    }
    let mut parts = vec![e.to_string()];
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        let text = describe_cause(inner);
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        src = inner.source();
    }
    let line = parts.join(": ");
    // tokio-postgres' words for libpq's.
    line.replace(
        "server does not support TLS",
        "server does not support SSL, but SSL was required (the server has ssl = off; turn it on, or lower sslmode)",
    )
}

/// A cause; rustls errors (also inside an `io::Error`) in plain words.
fn describe_cause(inner: &(dyn std::error::Error + 'static)) -> String {
    let tls = inner.downcast_ref::<rustls::Error>().or_else(|| {
        inner
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|e| e.downcast_ref::<rustls::Error>())
    });
    match tls {
        // LibpqVerifier's sentences.
        Some(rustls::Error::General(m)) => m.clone(),
        Some(other) => crate::tls::describe_tls_error(other),
        None => inner.to_string(),
    }
}

/// What every TLS connection of one `connect` shares: the trust anchors, CRLs, client
/// identity and protocol versions. Loading it is where missing or unsafe files are refused.
struct ClientTls {
    roots: Option<Arc<RootCertStore>>,
    crls: Vec<CertificateRevocationListDer<'static>>,
    level: Verification,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    versions: Vec<&'static rustls::SupportedProtocolVersion>,
    sni: bool,
}

impl ClientTls {
    fn load(p: &ConnParams) -> Result<Self> {
        let roots = match &p.sslrootcert {
            Some(path) if !path.exists() => {
                return Err(Error::invalid(
                    "sslrootcert",
                    format!(
                        "root certificate file \"{}\" does not exist; either provide the file or change sslmode to disable server certificate verification",
                        path.display()
                    ),
                ))
            }
            Some(path) => {
                Some(crate::tls::load_roots(path).map_err(|e| Error::invalid("sslrootcert", e))?)
            }
            None => None,
        };
        // libpq verifies the chain in any mode once a root file exists.
        let level = match p.sslmode {
            SslMode::VerifyFull => Verification::Full,
            SslMode::VerifyCa => Verification::Chain,
            _ if roots.is_some() => Verification::Chain,
            _ => Verification::None,
        };
        if level != Verification::None && roots.is_none() {
            return Err(Error::invalid(
                "sslrootcert",
                format!(
                    "root certificate file \"~/.postgresql/root.crt\" does not exist; either provide the file (sslrootcert, PGSSLROOTCERT) or change sslmode (now {}) to disable server certificate verification",
                    p.sslmode
                ),
            ));
        }
        // CRLs matter only where the chain is checked (libpq reads them with the roots).
        let mut crls = Vec::new();
        if level != Verification::None {
            if let Some(file) = &p.sslcrl {
                crls.extend(crate::tls::load_crls(file).map_err(|e| Error::invalid("sslcrl", e))?);
            }
            if let Some(dir) = &p.sslcrldir {
                crls.extend(load_crl_dir(dir)?);
            }
        }
        let identity = match &p.sslcert {
            Some(cert) => Some(load_identity(cert, p.sslkey.as_deref())?),
            None => None,
        };
        let versions = [
            crate::conninfo::TlsVersion::Tls12,
            crate::conninfo::TlsVersion::Tls13,
        ]
        .into_iter()
        .filter(|v| {
            *v >= p.ssl_min_protocol_version
                && p.ssl_max_protocol_version.is_none_or(|max| *v <= max)
        })
        .map(|v| v.rustls())
        .collect();
        Ok(ClientTls {
            roots,
            crls,
            level,
            identity,
            versions,
            sni: p.sslsni,
        })
    }

    /// The rustls configuration for one host (the name verify-full checks).
    fn config_for(&self, host: &str) -> std::result::Result<rustls::ClientConfig, String> {
        if self.level == Verification::Full && host.is_empty() {
            return Err(
                "host name must be specified for a verified SSL connection; set host (hostaddr is only where to dial)"
                    .into(),
            );
        }
        let verifier = Arc::new(LibpqVerifier::new(
            self.roots.clone(),
            self.crls.clone(),
            host.to_string(),
            self.level,
        ));
        let builder = ward_tls::client_builder(&self.versions)
            .map_err(|e| format!("TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match &self.identity {
            Some((certs, key)) => builder
                .with_client_auth_cert(certs.clone(), key.clone_key())
                .map_err(|e| {
                    format!("the client certificate and key (sslcert, sslkey) cannot be used: {e}")
                })?,
            None => builder.with_no_client_auth(),
        };
        config.enable_sni = self.sni;
        Ok(config)
    }
}

/// The client certificate and its key. A named certificate that does not exist is an
/// error (libpq would silently connect without one); the key must exist and pass libpq's
/// permission rule.
fn load_identity(
    cert: &Path,
    key: Option<&Path>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    use rustls::pki_types::pem::PemObject;
    if !cert.exists() {
        return Err(Error::invalid(
            "sslcert",
            format!(
                "could not open certificate file \"{}\": No such file or directory; provide it or remove sslcert (PGSSLCERT)",
                cert.display()
            ),
        ));
    }
    let certs = ward_tls::read_certs(cert, "certificate").map_err(|e| {
        Error::invalid(
            "sslcert",
            format!(
                "could not load certificate file \"{}\": {e}",
                cert.display()
            ),
        )
    })?;
    if certs.is_empty() {
        return Err(Error::invalid(
            "sslcert",
            format!(
                "certificate file \"{}\" holds no PEM certificate",
                cert.display()
            ),
        ));
    }
    let key = match key {
        Some(k) if k.exists() => k,
        other => {
            return Err(Error::invalid(
                "sslkey",
                format!(
                    "certificate present, but not private key file \"{}\"; set sslkey (PGSSLKEY) to the certificate's key",
                    other.map(|k| k.display().to_string()).unwrap_or_else(|| "~/.postgresql/postgresql.key".into())
                ),
            ))
        }
    };
    let bytes = crate::conninfo::read_client_key(key)?;
    let der = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        Error::invalid(
            "sslkey",
            format!(
                "private key file \"{}\" is not a usable unencrypted PEM key ({e}); Ward does not read encrypted keys (sslpassword)",
                key.display()
            ),
        )
    })?;
    Ok((certs, der))
}

/// Every CRL file in `sslcrldir` (libpq reads the directory through OpenSSL's hashed
/// names; Ward reads every regular file in it).
fn load_crl_dir(dir: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::invalid(
            "sslcrldir",
            format!(
                "cannot read CRL directory \"{}\": {e}; create it or remove sslcrldir (PGSSLCRLDIR)",
                dir.display()
            ),
        )
    })?;
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let mut crls = Vec::new();
    for p in paths {
        crls.extend(crate::tls::load_crls(&p).map_err(|e| Error::invalid("sslcrldir", e))?);
    }
    Ok(crls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conninfo::{resolve, TlsVersion};
    use std::os::unix::fs::PermissionsExt;
    use ward_pki::{
        CertificateAuthority, CertificateRequest, KeyAlgorithm, KeyEncoding, KeySource,
        LeafRequest, SigningProfile, Subject,
    };

    /// A CA, a server certificate for `db.example.com`, a client certificate, and an empty
    /// HOME, all in one temp dir.
    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir(dir.path().join("home")).unwrap();
            let req = CertificateRequest::from_json("test", br#"{"CN":"Test CA"}"#).unwrap();
            let (ca, issued) =
                CertificateAuthority::create(&req, KeyEncoding::Traditional).unwrap();
            std::fs::write(dir.path().join("ca.pem"), &issued.cert_pem).unwrap();
            let leaf = ca
                .issue(LeafRequest {
                    subject: Subject::with_cn("ward"),
                    hosts: Vec::new(),
                    key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
                    key_encoding: KeyEncoding::Traditional,
                    profile: SigningProfile::builtin("client").unwrap(),
                    clamp: false,
                })
                .unwrap();
            std::fs::write(dir.path().join("ward.pem"), &leaf.cert_pem).unwrap();
            let key = dir.path().join("ward-key.pem");
            std::fs::write(&key, leaf.key_pem.unwrap()).unwrap();
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            Fixture { dir }
        }

        fn path(&self, name: &str) -> String {
            self.dir.path().join(name).display().to_string()
        }

        fn params(&self, dsn: &str) -> ConnParams {
            let home = self.path("home");
            resolve(dsn, &|k| (k == "HOME").then(|| home.clone())).unwrap()
        }

        fn load(&self, dsn: &str) -> Result<ClientTls> {
            ClientTls::load(&self.params(dsn))
        }

        fn home_file(&self, name: &str, from: &str) {
            let d = self.dir.path().join("home/.postgresql");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::copy(self.dir.path().join(from), d.join(name)).unwrap();
        }
    }

    fn err(r: Result<ClientTls>) -> String {
        match r {
            Ok(_) => panic!("should fail"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn require_verifies_the_chain_once_a_root_file_exists() {
        let f = Fixture::new();
        assert_eq!(f.load("sslmode=require").unwrap().level, Verification::None);
        let explicit = f.load(&format!("sslmode=require sslrootcert={}", f.path("ca.pem")));
        assert_eq!(explicit.unwrap().level, Verification::Chain);
        f.home_file("root.crt", "ca.pem");
        assert_eq!(
            f.load("sslmode=require").unwrap().level,
            Verification::Chain
        );
        assert_eq!(f.load("sslmode=prefer").unwrap().level, Verification::Chain);
        assert_eq!(
            f.load("sslmode=verify-full").unwrap().level,
            Verification::Full
        );
    }

    #[test]
    fn a_named_root_file_that_does_not_exist_is_libpqs_error_with_the_fix() {
        let f = Fixture::new();
        for mode in ["require", "verify-ca", "verify-full"] {
            let m = err(f.load(&format!("sslmode={mode} sslrootcert=/nonexistent/ca.pem")));
            assert!(
                m.contains("root certificate file \"/nonexistent/ca.pem\" does not exist")
                    && m.contains("either provide the file or change sslmode"),
                "{m}"
            );
        }
        let m = err(f.load("sslmode=verify-ca"));
        assert!(
            m.contains("root certificate file \"~/.postgresql/root.crt\" does not exist"),
            "{m}"
        );
    }

    #[test]
    fn crls_are_loaded_when_the_chain_is_checked_and_a_missing_one_is_named() {
        let f = Fixture::new();
        let ca = f.path("ca.pem");
        let m = err(f.load(&format!(
            "sslmode=verify-full sslrootcert={ca} sslcrl=/nonexistent/crl.pem"
        )));
        assert!(
            m.contains("CRL file \"/nonexistent/crl.pem\" does not exist"),
            "{m}"
        );
        // A CRL from the CA (the same library as `ward pki crl`).
        let crl_path = f.dir.path().join("crl.pem");
        let req = CertificateRequest::from_json("test", br#"{"CN":"CRL CA"}"#).unwrap();
        let (_ca2, issued) = CertificateAuthority::create(&req, KeyEncoding::Traditional).unwrap();
        std::fs::create_dir(f.dir.path().join("ca2")).unwrap();
        std::fs::write(f.dir.path().join("ca2/ca.pem"), &issued.cert_pem).unwrap();
        let ca2_key = f.dir.path().join("ca2/ca-key.pem");
        std::fs::write(&ca2_key, issued.key_pem.unwrap()).unwrap();
        std::fs::set_permissions(&ca2_key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (pem, _) =
            ward_pki::revocation::build_crl(&f.dir.path().join("ca2"), Duration::from_secs(3600))
                .unwrap();
        std::fs::write(&crl_path, pem).unwrap();
        let tls = f
            .load(&format!(
                "sslmode=verify-full sslrootcert={ca} sslcrl={}",
                crl_path.display()
            ))
            .unwrap();
        assert_eq!(tls.crls.len(), 1);
        // The default ~/.postgresql/root.crl is read too, and a CRL directory.
        f.home_file("root.crl", "crl.pem");
        assert_eq!(
            f.load(&format!("sslmode=verify-ca sslrootcert={ca}"))
                .unwrap()
                .crls
                .len(),
            1
        );
        std::fs::create_dir(f.dir.path().join("crls")).unwrap();
        std::fs::copy(&crl_path, f.dir.path().join("crls/a.r0")).unwrap();
        std::fs::copy(&crl_path, f.dir.path().join("crls/b.r0")).unwrap();
        let dir = f.path("crls");
        assert_eq!(
            f.load(&format!(
                "sslmode=verify-ca sslrootcert={ca} sslcrldir={dir}"
            ))
            .unwrap()
            .crls
            .len(),
            2
        );
        // Without a chain check, CRLs are not read (libpq).
        assert!(f
            .load("sslmode=require sslcrl=/nonexistent/crl.pem")
            .is_ok());
        // Not a CRL.
        let m = err(f.load(&format!("sslmode=verify-ca sslrootcert={ca} sslcrl={ca}")));
        assert!(m.contains("holds no CRL"), "{m}");
    }

    #[test]
    fn client_certificates_and_keys_are_checked_like_libpq() {
        let f = Fixture::new();
        let ok = f.load(&format!(
            "sslmode=require sslcert={} sslkey={}",
            f.path("ward.pem"),
            f.path("ward-key.pem")
        ));
        assert!(ok.unwrap().identity.is_some());
        // No certificate anywhere: no client authentication.
        assert!(f.load("sslmode=require").unwrap().identity.is_none());
        let m = err(f.load("sslmode=require sslcert=/nonexistent/ward.pem"));
        assert!(
            m.contains("could not open certificate file \"/nonexistent/ward.pem\""),
            "{m}"
        );
        // The default certificate is used when it exists, with the default key's path.
        f.home_file("postgresql.crt", "ward.pem");
        let m = err(f.load("sslmode=require"));
        assert!(
            m.contains("certificate present, but not private key file")
                && m.contains("home/.postgresql/postgresql.key"),
            "{m}"
        );
        let key = f.path("ward-key.pem");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let m = err(f.load(&format!("sslmode=require sslkey={key}")));
        assert!(
            m.contains(&key) && m.contains(&format!("chmod 600 {key}")),
            "{m}"
        );
    }

    #[test]
    fn protocol_versions_bound_what_rustls_offers() {
        let f = Fixture::new();
        let offered = |dsn: &str| {
            f.load(&format!("sslmode=require {dsn}"))
                .unwrap()
                .versions
                .iter()
                .map(|v| v.version)
                .collect::<Vec<_>>()
        };
        use rustls::ProtocolVersion::{TLSv1_2, TLSv1_3};
        assert_eq!(offered(""), vec![TLSv1_2, TLSv1_3]);
        assert_eq!(offered("ssl_min_protocol_version=TLSv1.3"), vec![TLSv1_3]);
        assert_eq!(offered("ssl_max_protocol_version=TLSv1.2"), vec![TLSv1_2]);
        assert_eq!(TlsVersion::Tls13.rustls().version, TLSv1_3);
    }

    #[test]
    fn verify_full_needs_a_host_name_even_when_hostaddr_is_dialled() {
        let f = Fixture::new();
        let tls = f
            .load(&format!(
                "sslmode=verify-full sslrootcert={} hostaddr=127.0.0.1",
                f.path("ca.pem")
            ))
            .unwrap();
        let m = tls.config_for("").unwrap_err();
        assert!(m.contains("host name must be specified"), "{m}");
        assert!(tls.config_for("db.example.com").is_ok());
    }

    #[test]
    fn the_password_file_host_is_localhost_for_the_default_socket() {
        let t = |host: &str, hostaddr: Option<&str>| HostTarget {
            host: host.into(),
            hostaddr: hostaddr.map(str::to_string),
            port: 5432,
        };
        assert_eq!(passfile_host(&t(DEFAULT_SOCKET_DIR, None)), "localhost");
        assert_eq!(passfile_host(&t("", Some("10.0.0.1"))), "10.0.0.1");
        assert_eq!(passfile_host(&t("db", Some("10.0.0.1"))), "db");
    }

    #[tokio::test]
    async fn every_host_is_tried_and_each_failure_is_named() {
        let closed = |_: ()| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let (a, b) = (closed(()), closed(()));
        let f = Fixture::new();
        let p = f.params(&format!(
            "host=127.0.0.1,localhost port={a},{b} sslmode=disable connect_timeout=2"
        ));
        let m = connect(&p, "test").await.unwrap_err().to_string();
        assert!(
            m.contains(&format!("127.0.0.1:{a}: ")) && m.contains(&format!("localhost:{b}: ")),
            "{m}"
        );
        assert!(m.contains("refused"), "{m}");
    }
}
