//! The guides' command lines, verbatim but for `cfssl gencert` → `ward pki gencert` and
//! `cfssljson -bare` → `ward pki json -bare`, produce the same files, and certificates that
//! OpenSSL accepts for the purposes the guides use them for.

use std::path::Path;
use ward_testkit::{pki, require_tool, ward_bin, Command, TempDir};

/// Runs a guide script in `dir` with `ward` on PATH.
fn run_guide(dir: &Path, script: &str) -> ward_testkit::Output {
    let bin_dir = ward_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::shell(script)
        .current_dir(dir)
        .env("PATH", path)
        .run()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

// From "Generate certificates for your Sensu installation" (seeds/002).
const CERTIFICATES_GUIDE: &str = r#"
echo '{"CN":"Sensu Test CA","key":{"algo":"rsa","size":2048}}' | ward pki gencert -initca - | ward pki json -bare ca -
echo '{"signing":{"default":{"expiry":"17520h","usages":["signing","key encipherment","client auth"]},"profiles":{"backend":{"usages":["signing","key encipherment","server auth","client auth"],"expiry":"4320h"},"agent":{"usages":["signing","key encipherment","client auth"],"expiry":"4320h"}}}}' > ca-config.json
export ADDRESS=localhost,127.0.0.1,10.0.0.1,backend-1
export NAME=backend-1.example.com
echo '{"CN":"'$NAME'","hosts":[""],"key":{"algo":"rsa","size":2048}}' | ward pki gencert -config=ca-config.json -profile="backend" -ca=ca.pem -ca-key=ca-key.pem -hostname="$ADDRESS" - | ward pki json -bare $NAME
export ADDRESS=localhost,127.0.0.1,10.0.0.2,backend-2
export NAME=backend-2.example.com
echo '{"CN":"'$NAME'","hosts":[""],"key":{"algo":"rsa","size":2048}}' | ward pki gencert -config=ca-config.json -profile="backend" -ca=ca.pem -ca-key=ca-key.pem -hostname="$ADDRESS" - | ward pki json -bare $NAME
export ADDRESS=localhost,127.0.0.1,10.0.0.3,backend-3
export NAME=backend-3.example.com
echo '{"CN":"'$NAME'","hosts":[""],"key":{"algo":"rsa","size":2048}}' | ward pki gencert -config=ca-config.json -profile="backend" -ca=ca.pem -ca-key=ca-key.pem -hostname="$ADDRESS" - | ward pki json -bare $NAME
export NAME=agent
echo '{"CN":"'$NAME'","hosts":[""],"key":{"algo":"rsa","size":2048}}' | ward pki gencert -config=ca-config.json -ca=ca.pem -ca-key=ca-key.pem -hostname="" -profile=agent - | ward pki json -bare $NAME
"#;

#[test]
fn certificates_guide_runs_verbatim_and_yields_the_guides_files() {
    require_tool("openssl");
    let d = TempDir::new();
    run_guide(d.path(), CERTIFICATES_GUIDE).ok();
    let mut expected = vec![
        "ca.pem",
        "ca-key.pem",
        "ca-config.json",
        "ca.csr",
        "agent.pem",
        "agent-key.pem",
        "agent.csr",
    ];
    let backends: Vec<String> = (1..=3)
        .flat_map(|i| {
            ["", "-key"]
                .map(|k| format!("backend-{i}.example.com{k}.pem"))
                .into_iter()
                .chain([format!("backend-{i}.example.com.csr")])
        })
        .collect();
    expected.extend(backends.iter().map(String::as_str));
    expected.sort();
    assert_eq!(listing(d.path()), expected);
    for key in [
        "ca-key.pem",
        "agent-key.pem",
        "backend-1.example.com-key.pem",
    ] {
        assert_eq!(mode(&d.join(key)), 0o600, "{key}");
        let text = std::fs::read_to_string(d.join(key)).unwrap();
        assert!(
            text.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
            "{key}: cfssl writes RSA keys as PKCS#1"
        );
    }
    for i in 1..=3 {
        let cert = format!("backend-{i}.example.com.pem");
        // The guide's backend certificates lack their FQDN; Ward's carry it, so verify-full
        // by the backend's name works.
        let fqdn = format!("backend-{i}.example.com");
        pki::openssl_verify(d.path(), "sslserver", &["-verify_hostname", &fqdn], &cert).ok();
        let ip = format!("10.0.0.{i}");
        pki::openssl_verify(d.path(), "sslclient", &["-verify_ip", &ip], &cert).ok();
    }
    pki::openssl_verify(d.path(), "sslclient", &[], "agent.pem").ok();
    // The agent profile has no server auth: OpenSSL must refuse it as a server certificate.
    let out = pki::openssl_verify(d.path(), "sslserver", &[], "agent.pem");
    assert!(
        !out.success(),
        "agent certificate must not be a server certificate: {}",
        out.stdout
    );
    let text = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-text",
            "-in",
            "backend-1.example.com.pem",
        ])
        .current_dir(d.path())
        .run()
        .ok()
        .stdout;
    assert!(text.contains("DNS:backend-1.example.com, DNS:localhost, IP Address:127.0.0.1, IP Address:10.0.0.1, DNS:backend-1"), "{text}");
    assert!(
        text.contains(
            "X509v3 Key Usage: critical\n                Digital Signature, Key Encipherment"
        ),
        "{text}"
    );
    assert!(
        text.contains("TLS Web Server Authentication, TLS Web Client Authentication"),
        "{text}"
    );
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(text.contains("sha256WithRSAEncryption"), "{text}");
    assert!(
        text.contains("Subject Key Identifier") && text.contains("Authority Key Identifier"),
        "{text}"
    );
}

// From "Secure PostgreSQL" (seeds/000).
pub const POSTGRES_GUIDE: &str = r#"
echo '{"CN":"Sensu Test CA","key":{"algo":"rsa","size":2048}}' | ward pki gencert -initca - | ward pki json -bare ca -
echo '{"signing":{"default":{"expiry":"17520h","usages":["signing","key encipherment","client auth"]},"profiles":{"postgresql":{"usages":["signing","key encipherment","server auth","client auth"],"expiry":"4320h"},"backend":{"usages":["signing","key encipherment","client auth"],"expiry":"4320h"}}}}' > ca-config.json
export ADDRESS=localhost,127.0.0.1,10.0.0.43,postgres,postgres.example.com
export NAME=postgres.example.com
echo '{"CN":"'$NAME'","hosts":[""],"key":{"algo":"rsa","size":2048}}' | ward pki gencert -config=ca-config.json -profile="postgresql" -ca=ca.pem -ca-key=ca-key.pem -hostname="$ADDRESS" - | ward pki json -bare $NAME
export POSTGRES_USERNAME=sensu
echo '{"CN":"'$POSTGRES_USERNAME'","hosts":[""],"key":{"algo":"rsa","size":2048}}' | ward pki gencert -config=ca-config.json -ca=ca.pem -ca-key=ca-key.pem -hostname="" -profile=backend - | ward pki json -bare $POSTGRES_USERNAME
"#;

#[test]
fn postgres_guide_runs_verbatim_and_postgresql_accepts_the_result() {
    require_tool("openssl");
    let d = TempDir::new();
    run_guide(d.path(), POSTGRES_GUIDE).ok();
    let mut expected = vec![
        "ca.pem",
        "ca-key.pem",
        "ca-config.json",
        "ca.csr",
        "postgres.example.com.pem",
        "postgres.example.com-key.pem",
        "postgres.example.com.csr",
        "sensu.pem",
        "sensu-key.pem",
        "sensu.csr",
    ];
    expected.sort();
    assert_eq!(listing(d.path()), expected);

    // The guide's server: ssl on with these files; the superuser refused over TLS; the
    // sensu user only with a certificate.
    let pg = ward_testkit::postgres::PgCluster::start(
        Some(&ward_testkit::postgres::PgTls {
            cert: d.join("postgres.example.com.pem"),
            key: d.join("postgres.example.com-key.pem"),
            ca: Some(d.join("ca.pem")),
            crl: None,
        }),
        "hostssl all postgres ::/0 reject\nhostssl all postgres 0.0.0.0/0 reject\nhostssl sensu_events sensu 0.0.0.0/0 cert\n",
    );
    pg.sql("CREATE ROLE sensu LOGIN").ok();
    pg.sql("CREATE DATABASE sensu_events OWNER sensu").ok();
    let conn = |host: &str, user: &str| {
        format!(
            "host={host} hostaddr=127.0.0.1 port={} dbname=sensu_events user={user} sslmode=verify-full sslrootcert={} sslcert={} sslkey={}",
            pg.port,
            d.join("ca.pem").display(),
            d.join("sensu.pem").display(),
            d.join("sensu-key.pem").display()
        )
    };
    for host in ["postgres.example.com", "localhost"] {
        let out = pg
            .psql(
                &conn(host, "sensu"),
                "SELECT current_user, ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            )
            .ok();
        assert_eq!(
            out.stdout.trim(),
            "sensu|t|/CN=sensu",
            "verify-full as {host}"
        );
    }
    // A name the certificate does not carry fails verify-full.
    let out = pg.psql(&conn("db.example.net", "sensu"), "SELECT 1");
    assert!(!out.success());
    assert!(
        out.stderr.contains("does not match host name"),
        "{}",
        out.stderr
    );
    // The superuser is rejected even with a valid certificate chain.
    let out = pg.psql(&conn("localhost", "postgres"), "SELECT 1");
    assert!(!out.success());
    assert!(out.stderr.contains("pg_hba.conf rejects"), "{}", out.stderr);
}
