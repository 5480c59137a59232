//! The cfssl semantics users rely on, checked with OpenSSL's own reading of the results.

use std::path::Path;
use ward_testkit::{pki, require_tool, ward, Command, TempDir};

fn openssl_text(dir: &Path, cert: &str) -> String {
    Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in", cert])
        .current_dir(dir)
        .run()
        .ok()
        .stdout
}

fn info(dir: &Path, file: &str) -> serde_json::Value {
    serde_json::from_str(
        &ward()
            .args(["pki", "info", "--format", "json", file])
            .current_dir(dir)
            .run()
            .ok()
            .stdout,
    )
    .unwrap()
}

fn gencert(dir: &Path, args: &[&str], csr: &str, name: &str) -> ward_testkit::Output {
    let out = ward()
        .args(["pki", "gencert"])
        .args(args.to_vec())
        .arg("-")
        .stdin(csr)
        .current_dir(dir)
        .run()
        .ok();
    ward()
        .args(["pki", "json", "-bare", name, "-"])
        .stdin(out.stdout.clone())
        .current_dir(dir)
        .run()
        .ok();
    out
}

fn parse(t: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()
}

#[test]
fn initca_is_five_years_backdated_five_minutes_with_a_20_byte_serial() {
    let d = TempDir::new();
    gencert(
        d.path(),
        &["-initca"],
        r#"{"CN":"Sensu Test CA","key":{"algo":"rsa","size":2048}}"#,
        "ca",
    );
    let ca = info(d.path(), "ca.pem");
    let nb = parse(ca["not_before"].as_str().unwrap());
    let na = parse(ca["not_after"].as_str().unwrap());
    assert_eq!((na - nb).whole_hours(), 43800);
    let now = time::OffsetDateTime::now_utc();
    assert!(
        nb <= now - time::Duration::minutes(4) && nb >= now - time::Duration::minutes(6),
        "{nb} vs {now}"
    );
    assert_eq!(nb.second(), 0, "rounded to the minute");
    assert_eq!(ca["serial"].as_str().unwrap().split(':').count(), 20);
    assert_eq!(
        ca["key_usages"],
        serde_json::json!(["cert sign", "crl sign"])
    );
    assert_eq!(ca["is_ca"], true);
    assert!(
        ca["authority_key_id"].is_null(),
        "a self-signed root has no AKI"
    );
    // ca.expiry overrides the five years.
    gencert(
        d.path(),
        &["-initca"],
        r#"{"CN":"Short CA","ca":{"expiry":"8760h","pathlen":1}}"#,
        "short",
    );
    let short = info(d.path(), "short.pem");
    assert_eq!(
        (parse(short["not_after"].as_str().unwrap())
            - parse(short["not_before"].as_str().unwrap()))
        .whole_hours(),
        8760
    );
    assert_eq!(short["path_len"], 1);
}

#[test]
fn the_signature_hash_follows_the_ca_key() {
    require_tool("openssl");
    let d = TempDir::new();
    for (key, sig) in [
        ("rsa-2048", "sha256WithRSAEncryption"),
        ("rsa-4096", "sha512WithRSAEncryption"),
        ("ecdsa-p256", "ecdsa-with-SHA256"),
        ("ecdsa-p384", "ecdsa-with-SHA384"),
        ("ed25519", "ED25519"),
    ] {
        let dir = d.join(key);
        ward()
            .args(["pki", "init-ca", "--cn", "CA", "--key", key, "--dir"])
            .arg(&dir)
            .run()
            .ok();
        // The leaf's own key is always ECDSA P-256 here: only the CA's key decides.
        gencert(
            &dir,
            &["-ca=ca.pem", "-ca-key=ca-key.pem"],
            r#"{"CN":"leaf"}"#,
            "leaf",
        );
        let text = openssl_text(&dir, "leaf.pem");
        assert!(
            text.contains(&format!("Signature Algorithm: {sig}")),
            "{key}: {text}"
        );
        Command::new("openssl")
            .args(["verify", "-CAfile", "ca.pem", "leaf.pem"])
            .current_dir(&dir)
            .run()
            .ok();
    }
}

#[test]
fn hostname_overrides_hosts_and_empty_hosts_never_become_sans() {
    require_tool("openssl");
    let d = TempDir::new();
    pki::init_ca(d.path(), "CA", &[]);
    // -hostname replaces the request's hosts.
    let out = gencert(
        d.path(),
        &[
            "-ca=ca.pem",
            "-ca-key=ca-key.pem",
            "-hostname=a.example.com,10.1.2.3",
        ],
        r#"{"CN":"svc","hosts":["ignored.example.com"]}"#,
        "svc",
    );
    assert!(
        out.stderr
            .contains("note: added the CN \"svc\" to the SANs"),
        "{}",
        out.stderr
    );
    let v = info(d.path(), "svc.pem");
    assert_eq!(
        v["sans"],
        serde_json::json!(["DNS:svc", "DNS:a.example.com", "IP:10.1.2.3"])
    );
    // An empty -hostname keeps the request's hosts; "" entries are dropped.
    gencert(
        d.path(),
        &["-ca=ca.pem", "-ca-key=ca-key.pem", "-hostname="],
        r#"{"CN":"agent","hosts":[""]}"#,
        "agent",
    );
    let text = openssl_text(d.path(), "agent.pem");
    assert!(
        text.contains("DNS:agent\n") || text.trim_end().contains("DNS:agent"),
        "{text}"
    );
    assert!(
        !text.contains("DNS:,") && !text.contains("DNS:\n"),
        "an empty DNS SAN: {text}"
    );
    // A CN that is not a host name gets no SAN and no note.
    let out = gencert(
        d.path(),
        &["-ca=ca.pem", "-ca-key=ca-key.pem"],
        r#"{"CN":"Ops Team","hosts":["ops@example.com"]}"#,
        "ops",
    );
    assert!(!out.stderr.contains("note"), "{}", out.stderr);
    assert_eq!(
        info(d.path(), "ops.pem")["sans"],
        serde_json::json!(["email:ops@example.com"])
    );
    // Without -config: cfssl's default profile.
    let plain = info(d.path(), "agent.pem");
    assert_eq!(
        plain["extended_key_usages"],
        serde_json::json!(["server auth", "client auth"])
    );
    assert_eq!(plain["days_left"], 364);
}

#[test]
fn profile_extensions_intermediates_and_urls_reach_the_certificate() {
    require_tool("openssl");
    let d = TempDir::new();
    pki::init_ca(d.path(), "Root CA", &[]);
    std::fs::write(
        d.join("cfg.json"),
        r#"{"signing":{"profiles":{
            "intermediate":{"usages":["cert sign","crl sign"],"expiry":"8760h","ca_constraint":{"is_ca":true,"max_path_len":0,"max_path_len_zero":true}},
            "server":{"usages":["digital signature","key encipherment","server auth"],"expiry":"720h","crl_url":"http://ca.example.com/crl.pem","ocsp_url":"http://ocsp.example.com","issuer_urls":["http://ca.example.com/ca.pem"]}}}}"#,
    )
    .unwrap();
    gencert(
        d.path(),
        &[
            "-config=cfg.json",
            "-profile=intermediate",
            "-ca=ca.pem",
            "-ca-key=ca-key.pem",
        ],
        r#"{"CN":"Issuing CA"}"#,
        "int",
    );
    let int = info(d.path(), "int.pem");
    assert_eq!(int["is_ca"], true);
    assert_eq!(int["path_len"], 0);
    assert!(
        int["sans"].as_array().unwrap().is_empty(),
        "a CA gets no SAN from its CN"
    );
    // The intermediate signs in turn, and OpenSSL builds the chain.
    gencert(
        d.path(),
        &[
            "-config=cfg.json",
            "-profile=server",
            "-ca=int.pem",
            "-ca-key=int-key.pem",
        ],
        r#"{"CN":"www.example.com"}"#,
        "www",
    );
    Command::new("openssl")
        .args([
            "verify",
            "-CAfile",
            "ca.pem",
            "-untrusted",
            "int.pem",
            "-purpose",
            "sslserver",
            "-verify_hostname",
            "www.example.com",
            "www.pem",
        ])
        .current_dir(d.path())
        .run()
        .ok();
    let text = openssl_text(d.path(), "www.pem");
    assert!(text.contains("URI:http://ca.example.com/crl.pem"), "{text}");
    assert!(
        text.contains("OCSP - URI:http://ocsp.example.com"),
        "{text}"
    );
    assert!(
        text.contains("CA Issuers - URI:http://ca.example.com/ca.pem"),
        "{text}"
    );
    let www = info(d.path(), "www.pem");
    assert_eq!(
        www["ocsp_urls"],
        serde_json::json!(["http://ocsp.example.com"])
    );
    assert_eq!(www["authority_key_id"], int["subject_key_id"]);
}
