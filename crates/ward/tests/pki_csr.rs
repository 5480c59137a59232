//! CSRs made where the key lives (issue 17, item 1), against the real cfssl and OpenSSL:
//! `ward pki csr` writes a key (0600) and a request on the target host; `ward pki sign`
//! signs requests from Ward, `cfssl genkey` and `openssl req` with cfssl's flags, and cfssl
//! signs Ward's; the profile, not the request, decides usages, lifetime and CA-ness; a
//! request that was altered, is not a request, or names what the profile's
//! `name_whitelist` does not allow is refused with one line, and nothing is written.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use ward_testkit::pki::openssl;
use ward_testkit::{require_tool, ward, Command, Output, TempDir};

/// A CA in `dir/ca` (Ward's layout, with its ca-config.json).
fn ca(dir: &Path) {
    ward()
        .args(["pki", "init-ca", "--cn", "Test CA", "--dir"])
        .arg(dir.join("ca"))
        .run()
        .ok();
}

/// `openssl verify` of `cert` against `dir/ca/ca.pem` for `purpose` (and `host`).
fn verify(dir: &Path, purpose: &str, host: Option<&str>, cert: &str) {
    let mut args = vec!["verify", "-CAfile", "ca/ca.pem", "-purpose", purpose];
    if let Some(h) = host {
        args.extend(["-verify_hostname", h]);
    }
    args.push(cert);
    openssl(dir, &args).ok();
}

/// `ward pki ARGS` in `dir`.
fn pki(dir: &Path, args: &[&str]) -> Output {
    ward().arg("pki").args(args.to_vec()).current_dir(dir).run()
}

fn text(dir: &Path, cert: &str) -> String {
    openssl(dir, &["x509", "-in", cert, "-noout", "-text"])
        .ok()
        .stdout
}

/// The public key of a certificate or a private key, as PEM.
fn pubkey(dir: &Path, args: &[&str]) -> String {
    openssl(dir, args).ok().stdout
}

#[test]
fn a_key_made_on_its_host_is_signed_without_leaving_it() {
    require_tool("openssl");
    let d = TempDir::new();
    ca(d.path());
    pki(
        d.path(),
        &[
            "csr",
            "--cn",
            "web-1.example.com",
            "--hosts",
            "web-1.example.com,10.0.0.5",
            "--key",
            "ecdsa-p384",
            "--out",
            "web-1",
        ],
    )
    .ok();
    let mode = std::fs::metadata(d.join("web-1-key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    // The CA host gets only the request.
    let sign = || {
        let args = "sign --ca-dir ca --profile client --out web-1 web-1.csr";
        pki(d.path(), &args.split(' ').collect::<Vec<_>>())
    };
    let out = sign().ok();
    assert!(out.stdout.contains("wrote web-1.pem"), "{}", out.stdout);
    verify(d.path(), "sslclient", None, "web-1.pem");
    assert_eq!(
        pubkey(d.path(), &["x509", "-in", "web-1.pem", "-noout", "-pubkey"]),
        pubkey(d.path(), &["pkey", "-in", "web-1-key.pem", "-pubout"]),
        "the certificate carries the key made on the host"
    );
    let t = text(d.path(), "web-1.pem");
    assert!(
        t.contains("DNS:web-1.example.com, IP Address:10.0.0.5"),
        "{t}"
    );
    assert!(
        t.contains("TLS Web Client Authentication") && !t.contains("TLS Web Server"),
        "{t}"
    );
    // Written once: an existing certificate is not replaced without --force.
    let again = sign();
    assert!(
        !again.success() && again.stderr.contains("web-1.pem"),
        "{}",
        again.stderr
    );
}

#[test]
fn cfssl_and_openssl_requests_are_signed_and_cfssl_signs_wards() {
    require_tool("openssl");
    require_tool("cfssl");
    require_tool("cfssljson");
    let d = TempDir::new();
    ca(d.path());
    // cfssl genkey's request, signed with cfssl's flags and piped through `json -bare`.
    Command::shell(r#"echo '{"CN":"db.example.com","hosts":["db.example.com"],"key":{"algo":"rsa","size":2048}}' | cfssl genkey - | cfssljson -bare db"#)
        .current_dir(d.path())
        .run()
        .ok();
    let json = pki(
        d.path(),
        &[
            "sign",
            "-ca=ca/ca.pem",
            "-ca-key=ca/ca-key.pem",
            "-config=ca/ca-config.json",
            "-profile=server",
            "-hostname=db.example.com,127.0.0.1",
            "db.csr",
        ],
    )
    .ok()
    .stdout;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        v["cert"].as_str().unwrap().contains("BEGIN CERTIFICATE"),
        "{json}"
    );
    ward()
        .args(["pki", "json", "-bare", "db"])
        .current_dir(d.path())
        .stdin(json)
        .run()
        .ok();
    verify(d.path(), "sslserver", Some("db.example.com"), "db.pem");
    assert!(
        text(d.path(), "db.pem").contains("IP Address:127.0.0.1"),
        "-hostname replaces the request's names"
    );
    // An OpenSSL request that asks to be a CA, able to sign certificates, is signed under
    // the client profile: the profile decides.
    openssl(
        d.path(),
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "o-key.pem",
            "-out",
            "o.csr",
            "-subj",
            "/C=FR/O=Ops/CN=agent-7",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=keyCertSign",
            "-addext",
            "subjectAltName=DNS:agent-7",
        ],
    )
    .ok();
    pki(
        d.path(),
        &[
            "sign",
            "--ca-dir",
            "ca",
            "--profile",
            "client",
            "--out",
            "o",
            "o.csr",
        ],
    )
    .ok();
    let t = text(d.path(), "o.pem");
    assert!(
        t.contains("CA:FALSE") && !t.contains("Certificate Sign"),
        "{t}"
    );
    assert!(t.contains("C = FR, O = Ops, CN = agent-7"), "{t}");
    // cfssl signs Ward's request.
    pki(
        d.path(),
        &[
            "csr",
            "--cn",
            "pg.example.com",
            "--hosts",
            "pg.example.com",
            "--out",
            "pg",
        ],
    )
    .ok();
    Command::shell("cfssl sign -ca=ca/ca.pem -ca-key=ca/ca-key.pem -config=ca/ca-config.json -profile=server pg.csr | cfssljson -bare pg")
        .current_dir(d.path())
        .run()
        .ok();
    verify(d.path(), "sslserver", Some("pg.example.com"), "pg.pem");
}

#[test]
fn altered_foreign_and_disallowed_requests_are_refused_and_nothing_is_written() {
    require_tool("openssl");
    require_tool("cfssl");
    let d = TempDir::new();
    ca(d.path());
    pki(
        d.path(),
        &[
            "csr",
            "--cn",
            "web.example.com",
            "--hosts",
            "web.example.com",
            "--out",
            "web",
        ],
    )
    .ok();
    let sign = |csr: &str, extra: &[&str]| {
        ward()
            .args(["pki", "sign", "--ca-dir", "ca", "--out", "signed"])
            .args(if extra.is_empty() {
                vec!["--profile", "server"]
            } else {
                extra.to_vec()
            })
            .arg(csr)
            .current_dir(d.path())
            .run()
    };
    // Altered: the CN changed after signing (same length, so the DER stays well-formed).
    let csr = std::fs::read_to_string(d.join("web.csr")).unwrap();
    let b64: String = csr.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut bytes = STANDARD.decode(b64).unwrap();
    let at = bytes
        .windows(3)
        .position(|w| w == b"web")
        .expect("the CN in the DER");
    bytes[at..at + 3].copy_from_slice(b"evl");
    let forged = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        STANDARD.encode(&bytes)
    );
    std::fs::write(d.join("forged.csr"), forged).unwrap();
    let out = sign("forged.csr", &[]);
    assert!(!out.success(), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("forged.csr: its signature does not verify"),
        "{}",
        out.stderr
    );
    // Not a request at all.
    let out = sign("ca/ca.pem", &[]);
    assert!(
        !out.success() && out.stderr.contains("CERTIFICATE REQUEST"),
        "{}",
        out.stderr
    );
    // A profile whose name_whitelist the names do not match, with cfssl refusing too.
    std::fs::write(
        d.join("strict.json"),
        r#"{"signing":{"default":{"usages":["server auth"],"expiry":"24h"},"profiles":{"internal":{"usages":["digital signature","server auth"],"expiry":"24h","name_whitelist":"\\.internal$"}}}}"#,
    )
    .unwrap();
    let out = sign(
        "web.csr",
        &["--config", "strict.json", "--profile", "internal"],
    );
    assert!(!out.success(), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("\"web.example.com\" does not match its name_whitelist"),
        "{}",
        out.stderr
    );
    let cfssl = Command::shell("cfssl sign -ca=ca/ca.pem -ca-key=ca/ca-key.pem -config=strict.json -profile=internal web.csr")
        .current_dir(d.path())
        .run();
    let said = format!("{}{}", cfssl.stdout, cfssl.stderr);
    assert!(
        !said.contains("BEGIN CERTIFICATE") && said.contains("does not match policy whitelist"),
        "cfssl refuses it too: {said}"
    );
    assert!(
        !d.join("signed.pem").exists(),
        "nothing written for a refused request"
    );
    // Names that match are signed under the same profile.
    pki(
        d.path(),
        &[
            "csr",
            "--cn",
            "db.internal",
            "--hosts",
            "db.internal",
            "--out",
            "db",
        ],
    )
    .ok();
    sign(
        "db.csr",
        &["--config", "strict.json", "--profile", "internal"],
    )
    .ok();
    assert!(d.join("signed.pem").exists());
}

#[test]
fn keys_are_given_to_the_user_that_reads_them() {
    use std::os::unix::fs::MetadataExt;
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: giving files to another user needs root");
        return;
    }
    let d = TempDir::new();
    ca(d.path());
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let Some(pg) = passwd.lines().find(|l| l.starts_with("postgres:")) else {
        panic!("no postgres user: run ./scripts/test.sh, which installs PostgreSQL");
    };
    let f: Vec<&str> = pg.split(':').collect();
    let (uid, gid): (u32, u32) = (f[2].parse().unwrap(), f[3].parse().unwrap());
    // As PostgreSQL's own user: 0600, its user and primary group.
    pki(
        d.path(),
        &["csr", "--cn", "pg", "--out", "pg", "--owner", "postgres"],
    )
    .ok();
    let key = std::fs::metadata(d.join("pg-key.pem")).unwrap();
    assert_eq!(
        (key.uid(), key.gid(), key.mode() & 0o777),
        (uid, gid, 0o600)
    );
    // root:ssl-cert, Debian's way: the group reads the key (0640), which Ward's key rule,
    // libpq's and PostgreSQL's accept for a root-owned key.
    pki(
        d.path(),
        &[
            "issue",
            "--profile",
            "server",
            "--cn",
            "shared",
            "--dir",
            "s",
            "--ca-dir",
            "ca",
            "--owner",
            "root:ssl-cert",
        ],
    )
    .ok();
    let key = std::fs::metadata(d.join("s/shared-key.pem")).unwrap();
    assert_eq!((key.uid(), key.mode() & 0o777), (0, 0o640));
    pki(d.path(), &["renew", "s/shared.pem", "--ca-dir", "ca"]).ok();
    // An unknown user is refused before anything is written.
    let out = pki(
        d.path(),
        &["csr", "--cn", "x", "--out", "x", "--owner", "no-such-user"],
    );
    assert!(
        !out.success()
            && out
                .stderr
                .contains("--owner no-such-user: no user \"no-such-user\" in /etc/passwd"),
        "{}",
        out.stderr
    );
    assert!(!d.join("x-key.pem").exists());
}
