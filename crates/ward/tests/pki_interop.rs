//! Ward and the real cfssl and OpenSSL agree: each signs with the other's CA, OpenSSL
//! accepts Ward's certificates, keys and CRLs, and rejects what Ward revoked.

use std::path::Path;
use ward_testkit::pki::openssl;
use ward_testkit::{pki, require_tool, ward, Command, TempDir};

fn bare(dir: &Path, gencert_args: &[&str], csr: &str, name: &str) {
    let out = ward()
        .args(["pki", "gencert"])
        .args(gencert_args)
        .arg("-")
        .current_dir(dir)
        .stdin(csr)
        .run()
        .ok();
    ward()
        .args(["pki", "json", "-bare", name])
        .current_dir(dir)
        .stdin(out.stdout)
        .run()
        .ok();
}

#[test]
fn a_ca_made_by_cfssl_signs_through_ward() {
    require_tool("cfssl");
    require_tool("cfssljson");
    let d = TempDir::new();
    Command::shell(r#"echo '{"CN":"cfssl CA","key":{"algo":"rsa","size":2048}}' | cfssl gencert -initca - | cfssljson -bare ca"#)
        .current_dir(d.path())
        .run()
        .ok();
    bare(
        d.path(),
        &[
            "-ca=ca.pem",
            "-ca-key=ca-key.pem",
            "-hostname=db.example.com,127.0.0.1",
        ],
        r#"{"CN":"db.example.com"}"#,
        "db",
    );
    openssl(
        d.path(),
        &[
            "verify",
            "-CAfile",
            "ca.pem",
            "-purpose",
            "sslserver",
            "-verify_hostname",
            "db.example.com",
            "db.pem",
        ],
    )
    .ok();
    // The AKI of Ward's leaf is the SKI of cfssl's CA.
    let ski = openssl(
        d.path(),
        &[
            "x509",
            "-in",
            "ca.pem",
            "-noout",
            "-ext",
            "subjectKeyIdentifier",
        ],
    )
    .ok()
    .stdout;
    let aki = openssl(
        d.path(),
        &[
            "x509",
            "-in",
            "db.pem",
            "-noout",
            "-ext",
            "authorityKeyIdentifier",
        ],
    )
    .ok()
    .stdout;
    let ski_value = ski.lines().nth(1).unwrap().trim();
    assert!(
        aki.contains(ski_value),
        "AKI {aki} should name the CA's SKI {ski_value}"
    );
    // cfssl's own certinfo reads the result.
    let info = Command::new("cfssl")
        .args(["certinfo", "-cert", "db.pem"])
        .current_dir(d.path())
        .run()
        .ok()
        .stdout;
    assert!(
        info.contains("\"db.example.com\"") && info.contains("\"127.0.0.1\""),
        "{info}"
    );
}

#[test]
fn a_ca_made_by_ward_signs_through_cfssl() {
    require_tool("cfssl");
    require_tool("cfssljson");
    let d = TempDir::new();
    for key in ["ecdsa-p256", "rsa-2048"] {
        let dir = d.join(key);
        ward()
            .args(["pki", "init-ca", "--cn", "Ward CA", "--key", key, "--dir"])
            .arg(&dir)
            .run()
            .ok();
        Command::shell(r#"echo '{"CN":"agent-1","hosts":["agent-1.example.com"]}' | cfssl gencert -ca=ca.pem -ca-key=ca-key.pem -config=ca-config.json -profile=client - | cfssljson -bare agent-1"#)
            .current_dir(&dir)
            .run()
            .ok();
        openssl(
            &dir,
            &[
                "verify",
                "-CAfile",
                "ca.pem",
                "-purpose",
                "sslclient",
                "agent-1.pem",
            ],
        )
        .ok();
        // And Ward reads what cfssl wrote, chain included.
        ward()
            .args(["pki", "info", "agent-1.pem", "--ca", "ca.pem"])
            .current_dir(&dir)
            .run()
            .ok();
    }
}

#[test]
fn openssl_reads_every_key_type_ward_writes() {
    require_tool("openssl");
    let d = TempDir::new();
    pki::init_ca(d.path(), "Ward CA", &[]);
    for (key, openssl_name) in [
        ("rsa-2048", "2048 bit"),
        ("rsa-3072", "3072 bit"),
        ("ecdsa-p256", "prime256v1"),
        ("ecdsa-p384", "secp384r1"),
        ("ed25519", "ED25519"),
    ] {
        let cn = format!("host-{key}");
        ward()
            .args([
                "pki",
                "issue",
                "--profile",
                "server",
                "--cn",
                &cn,
                "--hosts",
                "127.0.0.1",
                "--key",
                key,
                "--dir",
            ])
            .arg(d.path())
            .run()
            .ok();
        openssl(
            d.path(),
            &[
                "verify",
                "-CAfile",
                "ca.pem",
                "-purpose",
                "sslserver",
                &format!("{cn}.pem"),
            ],
        )
        .ok();
        let k = openssl(
            d.path(),
            &["pkey", "-in", &format!("{cn}-key.pem"), "-noout", "-text"],
        )
        .ok()
        .stdout;
        assert!(k.contains(openssl_name), "{key}: {k}");
        // Key and certificate belong together.
        let a = openssl(
            d.path(),
            &["pkey", "-in", &format!("{cn}-key.pem"), "-pubout"],
        )
        .ok()
        .stdout;
        let b = openssl(
            d.path(),
            &["x509", "-in", &format!("{cn}.pem"), "-noout", "-pubkey"],
        )
        .ok()
        .stdout;
        assert_eq!(a, b, "{key}");
        let csr = openssl(
            d.path(),
            &["req", "-in", &format!("{cn}.csr"), "-noout", "-verify"],
        );
        assert!(
            csr.success() && (csr.stderr + &csr.stdout).contains("verify OK"),
            "{key} CSR"
        );
    }
}

#[test]
fn openssl_accepts_wards_crl_and_rejects_the_revoked_certificate() {
    require_tool("openssl");
    let d = TempDir::new();
    pki::init_ca(d.path(), "Ward CA", &[]);
    for cn in ["good", "bad"] {
        ward()
            .args(["pki", "issue", "--profile", "client", "--cn", cn, "--dir"])
            .arg(d.path())
            .run()
            .ok();
    }
    ward()
        .args(["pki", "revoke", "--cert"])
        .arg(d.join("bad.pem"))
        .args(["--reason", "keyCompromise", "--ca-dir"])
        .arg(d.path())
        .run()
        .ok();
    ward()
        .args(["pki", "crl", "--ca-dir"])
        .arg(d.path())
        .arg("--out")
        .arg(d.join("crl.pem"))
        .run()
        .ok();
    openssl(
        d.path(),
        &[
            "crl", "-in", "crl.pem", "-noout", "-CAfile", "ca.pem", "-verify",
        ],
    )
    .ok();
    let text = openssl(d.path(), &["crl", "-in", "crl.pem", "-noout", "-text"])
        .ok()
        .stdout;
    assert!(
        text.contains("X509v3 CRL Number: \n                1")
            || text.contains("X509v3 CRL Number:"),
        "{text}"
    );
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(text.contains("Authority Key Identifier"), "{text}");
    assert!(text.contains("Next Update"), "{text}");
    let serial = openssl(d.path(), &["x509", "-in", "bad.pem", "-noout", "-serial"])
        .ok()
        .stdout;
    let serial = serial.trim().trim_start_matches("serial=").to_string();
    assert!(
        text.to_uppercase().contains(&serial.to_uppercase()),
        "CRL lists {serial}: {text}"
    );

    let rejected = openssl(
        d.path(),
        &[
            "verify",
            "-crl_check",
            "-CAfile",
            "ca.pem",
            "-CRLfile",
            "crl.pem",
            "bad.pem",
        ],
    );
    assert!(!rejected.success());
    assert!((rejected.stdout + &rejected.stderr).contains("certificate revoked"));
    openssl(
        d.path(),
        &[
            "verify",
            "-crl_check",
            "-CAfile",
            "ca.pem",
            "-CRLfile",
            "crl.pem",
            "good.pem",
        ],
    )
    .ok();

    // A second CRL gets the next number.
    ward()
        .args(["pki", "crl", "--ca-dir"])
        .arg(d.path())
        .arg("--out")
        .arg(d.join("crl2.pem"))
        .run()
        .ok();
    let info = ward()
        .args(["pki", "info", "--format", "json", "--ca"])
        .arg(d.join("ca.pem"))
        .arg(d.join("crl2.pem"))
        .run()
        .ok()
        .stdout;
    let v: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(v["crl_number"], "2");
    assert_eq!(v["chain"]["ok"], true);
    assert_eq!(v["revoked"][0]["reason"], "keyCompromise");
}

#[test]
fn cfssl_and_ward_leaves_from_the_guides_differ_only_where_cfssl_is_wrong() {
    // The certificates guide's backend command, run with cfssl and with Ward on the same CA:
    // cfssl's certificate lacks the backend's FQDN, so verify-full by that name fails;
    // Ward's has it. Everything else (usages, key type, signature) is the same.
    require_tool("cfssl");
    let d = TempDir::new();
    pki::init_ca(d.path(), "Ward CA", &["--key", "rsa-2048"]);
    let csr = r#"{"CN":"backend-1.example.com","hosts":[""],"key":{"algo":"rsa","size":2048}}"#;
    let args = [
        "-config=ca-config.json",
        "-profile=peer",
        "-ca=ca.pem",
        "-ca-key=ca-key.pem",
        "-hostname=localhost,127.0.0.1,10.0.0.1,backend-1",
    ];
    bare(d.path(), &args, csr, "ward");
    Command::shell(&format!(
        "echo '{csr}' | cfssl gencert {} - | cfssljson -bare cfssl",
        args.join(" ")
    ))
    .current_dir(d.path())
    .run()
    .ok();
    let verify = |name: &str| {
        openssl(
            d.path(),
            &[
                "verify",
                "-CAfile",
                "ca.pem",
                "-purpose",
                "sslserver",
                "-verify_hostname",
                "backend-1.example.com",
                name,
            ],
        )
    };
    assert!(verify("ward.pem").success());
    assert!(
        !verify("cfssl.pem").success(),
        "cfssl's certificate unexpectedly carries the FQDN"
    );
    let ext = |name: &str| {
        openssl(
            d.path(),
            &[
                "x509",
                "-in",
                name,
                "-noout",
                "-ext",
                "keyUsage,extendedKeyUsage,basicConstraints",
            ],
        )
        .ok()
        .stdout
    };
    assert_eq!(ext("ward.pem"), ext("cfssl.pem"));
}
