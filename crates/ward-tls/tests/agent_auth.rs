//! The agent port's mutual TLS, end to end on 127.0.0.1: certificates from ward-pki, a real
//! rustls client, CRLs from `ward_pki::revocation` served from disk and over HTTP, and the
//! real `openssl ocsp` responder.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use ward_pki::{
    CertificateAuthority, CertificateRequest, KeyAlgorithm, KeyEncoding, KeySource, LeafRequest,
    SigningProfile, Subject,
};
use ward_testkit::TempDir;
use ward_tls::agent_auth::{AgentAuth, AgentAuthSettings, AgentIdentity, Refusal};

/// A CA on disk (ca.pem, ca-key.pem), the agent port's certificate, and agent certificates.
struct Fixture {
    dir: TempDir,
    ca: CertificateAuthority,
}

struct Agent {
    cert: PathBuf,
    key: PathBuf,
    raw_serial: Vec<u8>,
}

impl Agent {
    /// The serial as `ward pki info` and AgentIdentity print it.
    fn serial(&self) -> String {
        ward_io::text::hex_colon(&self.raw_serial)
    }
    /// The serial as openssl's index.txt has it.
    fn openssl_serial(&self) -> String {
        let s: String = self
            .raw_serial
            .iter()
            .skip_while(|b| **b == 0)
            .map(|b| format!("{b:02X}"))
            .collect();
        s
    }
}

fn write_key(path: &Path, pem: &str) {
    std::fs::write(path, pem).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

impl Fixture {
    fn new(ca_cn: &str) -> Fixture {
        let dir = TempDir::new();
        let req =
            CertificateRequest::from_json("test", format!(r#"{{"CN":"{ca_cn}"}}"#).as_bytes())
                .unwrap();
        let (ca, issued) = CertificateAuthority::create(&req, KeyEncoding::Traditional).unwrap();
        std::fs::write(dir.join("ca.pem"), &issued.cert_pem).unwrap();
        write_key(&dir.join("ca-key.pem"), issued.key_pem.as_deref().unwrap());
        let fx = Fixture { dir, ca };
        // The agent port's own certificate.
        let mut p = SigningProfile::builtin("server").unwrap();
        p.expiry = Duration::from_secs(3600);
        fx.issue_with("localhost", "server", p);
        fx
    }

    fn ca_pem(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn issue_with(&self, cn: &str, file: &str, profile: SigningProfile) -> Agent {
        let issued = self
            .ca
            .issue(LeafRequest {
                subject: Subject::with_cn(cn),
                hosts: ward_pki::parse_host_list(if file == "server" { "127.0.0.1" } else { "" })
                    .unwrap(),
                key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
                key_encoding: KeyEncoding::Traditional,
                profile,
                clamp: false,
            })
            .unwrap();
        let cert = self.dir.join(format!("{file}.pem"));
        let key = self.dir.join(format!("{file}-key.pem"));
        std::fs::write(&cert, &issued.cert_pem).unwrap();
        write_key(&key, issued.key_pem.as_deref().unwrap());
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
        let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
        Agent {
            cert,
            key,
            raw_serial: x.raw_serial().to_vec(),
        }
    }

    /// A client certificate (`client` profile, one hour) with optional CRL and OCSP URLs.
    fn agent(&self, cn: &str, crl_url: Option<String>, ocsp_url: Option<String>) -> Agent {
        let mut p = SigningProfile::builtin("client").unwrap();
        p.expiry = Duration::from_secs(3600);
        p.crl_url = crl_url;
        p.ocsp_url = ocsp_url;
        self.issue_with(cn, cn, p)
    }

    /// Revokes the agent's certificate and returns the new CRL (PEM).
    fn revoke(&self, agent: &Agent) -> String {
        ward_pki::revocation::revoke(
            self.dir.path(),
            &agent.raw_serial,
            ward_pki::revocation::parse_reason("keyCompromise").unwrap(),
            None,
        )
        .unwrap();
        self.crl()
    }

    fn crl(&self) -> String {
        ward_pki::revocation::build_crl(self.dir.path(), Duration::from_secs(3600))
            .unwrap()
            .0
    }

    fn settings(&self, crl_urls: Vec<String>) -> AgentAuthSettings {
        AgentAuthSettings {
            cert_file: self.dir.join("server.pem"),
            key_file: self.dir.join("server-key.pem"),
            trusted_ca_file: self.ca_pem(),
            crl_urls,
            fail_open: false,
            allow_expired_certificate: false,
        }
    }

    /// Writes the CRL to a file and returns its file:// URL.
    fn crl_file(&self, name: &str, pem: &str) -> String {
        let p = self.dir.join(name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        std::fs::write(&tmp, pem).unwrap();
        std::fs::rename(&tmp, &p).unwrap();
        format!("file://{}", p.display())
    }
}

fn client_config(trust: &Path, cert: Option<&Agent>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(trust).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    match cert {
        Some(a) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&a.cert)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_file(&a.key).unwrap();
            b.with_client_auth_cert(chain, key).unwrap()
        }
        None => b.with_no_client_auth(),
    }
}

/// One agent connection through `AgentAuth::accept`, with a real rustls client that trusts
/// `fx`'s CA and presents `agent`'s certificate.
async fn connect(
    auth: &Arc<AgentAuth>,
    fx: &Fixture,
    agent: Option<&Agent>,
) -> Result<AgentIdentity, Refusal> {
    connect_trusting(auth, &fx.ca_pem(), agent).await
}

/// The same, with a client that trusts the CAs in `trust`.
async fn connect_trusting(
    auth: &Arc<AgentAuth>,
    trust: &Path,
    agent: Option<&Agent>,
) -> Result<AgentIdentity, Refusal> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = Arc::new(client_config(trust, agent));
    let client = tokio::spawn(async move {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(config);
        let name = ServerName::try_from("localhost").unwrap();
        if let Ok(mut tls) = connector.connect(name, tcp).await {
            // Wait for the server's decision: a byte, or the connection closing.
            let mut buf = [0u8; 1];
            let _ = tls.read(&mut buf).await;
        }
    });
    let (tcp, peer) = listener.accept().await.unwrap();
    let result = match auth.accept(tcp, peer).await {
        Ok((mut stream, id)) => {
            let _ = stream.write_all(b"k").await;
            let _ = stream.shutdown().await;
            Ok(id)
        }
        Err(r) => Err(r),
    };
    tokio::time::timeout(Duration::from_secs(10), client)
        .await
        .expect("the client finished")
        .unwrap();
    result
}

fn refused(r: Result<AgentIdentity, Refusal>, label: &str) -> Refusal {
    match r {
        Ok(id) => panic!("accepted {id:?}, expected a refusal {label}"),
        Err(refusal) => {
            eprintln!("{label}: {}", refusal.message);
            assert_eq!(refusal.label, label, "{}", refusal.message);
            assert!(!refusal.message.contains('\n'), "{}", refusal.message);
            assert!(
                refusal.message.contains("127.0.0.1:"),
                "{}",
                refusal.message
            );
            refusal
        }
    }
}

/// A tiny HTTP server for CRLs: answers every GET with `body` after `delay`, counting
/// requests.
async fn serve(body: Vec<u8>, delay: Duration) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let body = Arc::new(body);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (counter, body) = (counter.clone(), body.clone());
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&body).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (base, count)
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .unwrap()
        .1
        .contents
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    ward_testkit::free_port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_certificate_is_accepted_with_its_cn_as_identity() {
    let fx = Fixture::new("Agents CA");
    let agent = fx.agent("agent-1", None, None);
    let crl = fx.crl_file("crl.pem", &fx.crl());
    let auth = AgentAuth::new(fx.settings(vec![crl])).unwrap();
    let id = connect(&auth, &fx, Some(&agent)).await.unwrap();
    assert_eq!(id.cn, "agent-1");
    assert_eq!(id.subject, "CN=agent-1");
    assert_eq!(id.serial, agent.serial());
    // The rustls config is there for callers that want it.
    assert!(auth.tls_config().alpn_protocols.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_refusals_carry_their_labels() {
    let fx = Fixture::new("Agents CA");
    let crl = fx.crl_file("crl.pem", &fx.crl());
    let auth = AgentAuth::new(fx.settings(vec![crl])).unwrap();

    // From another CA.
    let other = Fixture::new("Other CA");
    let stranger = other.agent("stranger", None, None);
    let r = refused(connect(&auth, &fx, Some(&stranger)).await, "unknown_ca");
    assert!(r.message.contains("CN=stranger"), "{}", r.message);
    assert!(r.message.contains(&stranger.serial()), "{}", r.message);
    assert!(
        r.message.contains("agent-auth-trusted-ca-file"),
        "{}",
        r.message
    );

    // Expired: a one-second lifetime that began five minutes ago (ward-pki backdates).
    let mut p = SigningProfile::builtin("client").unwrap();
    p.expiry = Duration::from_secs(1);
    let old = fx.issue_with("old-agent", "old-agent", p);
    let r = refused(connect(&auth, &fx, Some(&old)).await, "expired");
    assert!(r.message.contains("CN=old-agent"), "{}", r.message);
    assert!(r.message.contains("expired on"), "{}", r.message);

    // A server certificate: no clientAuth.
    let mut p = SigningProfile::builtin("server").unwrap();
    p.expiry = Duration::from_secs(3600);
    let srv = fx.issue_with("not-an-agent", "not-an-agent", p);
    let r = refused(connect(&auth, &fx, Some(&srv)).await, "no_client_auth");
    assert!(r.message.contains("clientAuth"), "{}", r.message);

    // No certificate at all.
    let r = refused(connect(&auth, &fx, None).await, "no_certificate");
    assert!(r.message.contains("no client certificate"), "{}", r.message);

    // An agent that does not trust the port's certificate aborts the handshake.
    let agent = fx.agent("agent-1", None, None);
    let r = refused(
        connect_trusting(&auth, &other.ca_pem(), Some(&agent)).await,
        "handshake",
    );
    assert!(r.message.contains("aborted"), "{}", r.message);
    assert!(r.message.contains("server.pem"), "{}", r.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_crl_from_ward_pki_refuses_the_revoked_and_is_reread_when_it_changes() {
    let fx = Fixture::new("Agents CA");
    let good = fx.agent("good-agent", None, None);
    let bad = fx.agent("bad-agent", None, None);
    let url = fx.crl_file("crl.pem", &fx.crl());
    let auth = AgentAuth::new(fx.settings(vec![url])).unwrap();
    // Both pass before the revocation.
    connect(&auth, &fx, Some(&bad)).await.unwrap();
    // `ward pki revoke` + `ward pki crl --out` to the same file: effective on the next
    // connection.
    fx.crl_file("crl.pem", &fx.revoke(&bad));
    let r = refused(connect(&auth, &fx, Some(&bad)).await, "revoked");
    assert!(r.message.contains("CN=bad-agent"), "{}", r.message);
    assert!(r.message.contains(&bad.serial()), "{}", r.message);
    assert!(r.message.contains("keyCompromise"), "{}", r.message);
    assert!(r.message.contains("file://"), "{}", r.message);
    connect(&auth, &fx, Some(&good)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_crl_is_fetched_once_for_many_agents_and_refuses_the_revoked() {
    let fx = Fixture::new("Agents CA");
    let good = fx.agent("good-agent", None, None);
    let bad = fx.agent("bad-agent", None, None);
    // DER over HTTP, as CAs usually publish it; slow enough that the connections overlap.
    let (base, count) = serve(pem_to_der(&fx.revoke(&bad)), Duration::from_millis(300)).await;
    let auth = AgentAuth::new(fx.settings(vec![format!("{base}/agents.crl")])).unwrap();
    let fx = Arc::new(fx);
    let good = Arc::new(good);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (auth, fx, good) = (auth.clone(), fx.clone(), good.clone());
        tasks.push(tokio::spawn(async move {
            connect(&auth, &fx, Some(&good)).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().cn, "good-agent");
    }
    let r = refused(connect(&auth, &fx, Some(&bad)).await, "revoked");
    assert!(r.message.contains("http://127.0.0.1:"), "{}", r.message);
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "eleven checks, one fetch until nextUpdate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificates_own_crl_distribution_point_is_used() {
    let fx = Fixture::new("Agents CA");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let dp = format!("http://127.0.0.1:{port}/ca.crl");
    let good = fx.agent("good-agent", Some(dp.clone()), None);
    let bad = fx.agent("bad-agent", Some(dp.clone()), None);
    let crl = pem_to_der(&fx.revoke(&bad));
    // Serve it on the port the certificates name.
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let crl = crl.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    crl.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&crl).await;
            });
        }
    });
    // No agent-auth-crl-urls: only the distribution point.
    let auth = AgentAuth::new(fx.settings(vec![])).unwrap();
    assert_eq!(
        connect(&auth, &fx, Some(&good)).await.unwrap().cn,
        "good-agent"
    );
    let r = refused(connect(&auth, &fx, Some(&bad)).await, "revoked");
    assert!(r.message.contains(&dp), "{}", r.message);
}

/// An OCSP responder on 127.0.0.1: each POSTed request is answered by the real
/// `openssl ocsp` in responder mode (`-index index.txt -rsigner … -reqin … -respout …`).
/// (OpenSSL 3.0's own `-port` server cannot bind to 127.0.0.1 alone; it listens on every
/// interface.) Counts requests.
async fn ocsp_responder(dir: &Path, signer: &str, signer_key: &str) -> (String, Arc<AtomicUsize>) {
    ward_testkit::require_tool("openssl");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let (dir, signer, signer_key) = (
        dir.to_path_buf(),
        signer.to_string(),
        signer_key.to_string(),
    );
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let (dir, signer, signer_key) = (dir.clone(), signer.clone(), signer_key.clone());
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                let (head_end, length) = loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => req.extend_from_slice(&buf[..k]),
                    }
                    if let Some(i) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&req[..i]).to_ascii_lowercase();
                        assert!(head.starts_with("post / http/1.1"), "{head}");
                        assert!(
                            head.contains("content-type: application/ocsp-request"),
                            "{head}"
                        );
                        let length: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map(|v| v.trim().parse().unwrap())
                            .unwrap();
                        break (i + 4, length);
                    }
                };
                while req.len() < head_end + length {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => req.extend_from_slice(&buf[..k]),
                    }
                }
                let (reqin, respout) = (format!("req-{n}.der"), format!("resp-{n}.der"));
                std::fs::write(dir.join(&reqin), &req[head_end..]).unwrap();
                let out = tokio::task::spawn_blocking(move || {
                    let out = std::process::Command::new("openssl")
                        .args(["ocsp", "-index", "index.txt", "-CA", "ca.pem", "-rsigner"])
                        .args([
                            &signer,
                            "-rkey",
                            &signer_key,
                            "-ndays",
                            "1",
                            "-reqin",
                            &reqin,
                        ])
                        .args(["-respout", &respout])
                        .current_dir(&dir)
                        .output()
                        .unwrap();
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    std::fs::read(dir.join(respout)).unwrap()
                })
                .await
                .unwrap();
                let head = format!(
                    "HTTP/1.0 200 OK\r\nContent-Type: application/ocsp-response\r\nContent-Length: {}\r\n\r\n",
                    out.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&out).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (url, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_answers_from_the_real_openssl_responder_decide() {
    let fx = Fixture::new("Agents CA");
    // A delegated responder: issued by the CA for OCSP signing only.
    let mut p = SigningProfile::builtin("client").unwrap();
    p.expiry = Duration::from_secs(3600);
    p.usages = vec![
        ward_pki::Usage::DigitalSignature,
        ward_pki::Usage::OcspSigning,
    ];
    fx.issue_with("ocsp-responder", "responder", p);
    // An impostor: same CA name, different key, signs for OCSP too.
    let impostor = Fixture::new("Agents CA");
    std::fs::copy(impostor.dir.join("ca.pem"), fx.dir.join("impostor.pem")).unwrap();
    std::fs::copy(
        impostor.dir.join("ca-key.pem"),
        fx.dir.join("impostor-key.pem"),
    )
    .unwrap();

    let (by_ca, asked_ca) = ocsp_responder(fx.dir.path(), "ca.pem", "ca-key.pem").await;
    let (delegated, _) = ocsp_responder(fx.dir.path(), "responder.pem", "responder-key.pem").await;
    let (forged, _) = ocsp_responder(fx.dir.path(), "impostor.pem", "impostor-key.pem").await;
    let good = fx.agent("good-agent", None, Some(by_ca.clone()));
    let bad = fx.agent("bad-agent", None, Some(delegated.clone()));
    let unlisted = fx.agent("unlisted-agent", None, Some(by_ca.clone()));
    let fooled = fx.agent("fooled-agent", None, Some(forged.clone()));
    let expiry = "351231235959Z";
    let index = format!(
        "V\t{expiry}\t\t{}\tunknown\t/CN=good-agent\nR\t{expiry}\t240101000000Z,keyCompromise\t{}\tunknown\t/CN=bad-agent\nV\t{expiry}\t\t{}\tunknown\t/CN=fooled-agent\n",
        good.openssl_serial(),
        bad.openssl_serial(),
        fooled.openssl_serial(),
    );
    std::fs::write(fx.dir.join("index.txt"), index).unwrap();

    let auth = AgentAuth::new(fx.settings(vec![])).unwrap();
    assert_eq!(
        connect(&auth, &fx, Some(&good)).await.unwrap().cn,
        "good-agent"
    );
    // Revoked, in a response signed by the delegated responder.
    let r = refused(connect(&auth, &fx, Some(&bad)).await, "revoked");
    assert!(
        r.message.contains("OCSP http://127.0.0.1:"),
        "{}",
        r.message
    );
    assert!(r.message.contains("keyCompromise"), "{}", r.message);
    assert!(r.message.contains("CN=bad-agent"), "{}", r.message);
    // The responder does not know this one: no answer, so fail-closed refuses.
    let r = refused(
        connect(&auth, &fx, Some(&unlisted)).await,
        "revocation_unknown",
    );
    assert!(r.message.contains("does not know"), "{}", r.message);
    // "good", but signed by a key the CA never certified.
    let r = refused(
        connect(&auth, &fx, Some(&fooled)).await,
        "revocation_unknown",
    );
    assert!(r.message.contains("signed neither by"), "{}", r.message);
    // Answers are cached until nextUpdate: a second connection asks nobody.
    let before = asked_ca.load(Ordering::SeqCst);
    assert_eq!(
        connect(&auth, &fx, Some(&good)).await.unwrap().cn,
        "good-agent"
    );
    assert_eq!(asked_ca.load(Ordering::SeqCst), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_is_refused_when_fail_closed_and_accepted_when_fail_open() {
    let fx = Fixture::new("Agents CA");
    let nowhere = format!("http://127.0.0.1:{}/", closed_port());
    let agent = fx.agent("agent-1", Some(format!("{nowhere}ca.crl")), Some(nowhere));
    let bare = fx.agent("bare-agent", None, None);

    let closed = AgentAuth::new(fx.settings(vec![])).unwrap();
    let r = refused(
        connect(&closed, &fx, Some(&agent)).await,
        "revocation_unknown",
    );
    assert!(r.message.contains("cannot connect"), "{}", r.message);
    assert!(r.message.contains("fail-closed"), "{}", r.message);
    // No source at all.
    let r = refused(
        connect(&closed, &fx, Some(&bare)).await,
        "revocation_unknown",
    );
    assert!(
        r.message.contains("no CRL distribution point"),
        "{}",
        r.message
    );

    let mut s = fx.settings(vec![]);
    s.fail_open = true;
    let open = AgentAuth::new(s).unwrap();
    assert_eq!(
        connect(&open, &fx, Some(&agent)).await.unwrap().cn,
        "agent-1"
    );
    assert_eq!(
        connect(&open, &fx, Some(&bare)).await.unwrap().cn,
        "bare-agent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_crls_are_no_answer_never_a_panic() {
    let fx = Fixture::new("Agents CA");
    let agent = fx.agent("agent-1", None, None);
    // Garbage over HTTP.
    let (junk, _) = serve(b"\x30\x82\x01\x00garbage".to_vec(), Duration::ZERO).await;
    // A CRL of the right name signed by another key: a CA with the same name.
    let impostor = Fixture::new("Agents CA");
    let forged = impostor.crl_file("forged.pem", &impostor.crl());
    let auth = AgentAuth::new(fx.settings(vec![format!("{junk}/crl"), forged])).unwrap();
    let r = refused(
        connect(&auth, &fx, Some(&agent)).await,
        "revocation_unknown",
    );
    assert!(r.message.contains("not a CRL"), "{}", r.message);
    assert!(
        r.message.contains("signature does not verify"),
        "{}",
        r.message
    );
}

#[test]
fn settings_errors_name_the_setting_the_file_and_the_fix() {
    let fx = Fixture::new("Agents CA");
    let mut s = fx.settings(vec![]);
    s.trusted_ca_file = fx.dir.join("missing.pem");
    let e = AgentAuth::new(s).unwrap_err();
    assert!(e.starts_with("agent-auth-trusted-ca-file"), "{e}");
    assert!(e.contains("missing.pem"), "{e}");
    assert!(e.contains("ca.pem"), "{e}");

    let e = AgentAuth::new(fx.settings(vec!["https://ca.example.com/crl".into()])).unwrap_err();
    assert!(
        e.contains("agent-auth-crl-urls") && e.contains("http://"),
        "{e}"
    );

    let missing = format!("file://{}", fx.dir.join("nope.crl").display());
    let e = AgentAuth::new(fx.settings(vec![missing])).unwrap_err();
    assert!(e.contains("nope.crl") && e.contains("ward pki crl"), "{e}");

    let mut s = fx.settings(vec![]);
    s.key_file = fx.dir.join("ca-key.pem");
    let e = AgentAuth::new(s).unwrap_err();
    assert!(e.starts_with("agent-auth-cert-file"), "{e}");
    assert!(!e.contains('\n'), "{e}");
}
