//! The native commands: bootstrap from a plan, info, check-expiry, renew.

use std::path::{Path, PathBuf};
use ward_testkit::{pki, require_tool, ward, TempDir};

fn example_plan() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/guides-deployment.yml")
}

#[test]
fn bootstrap_of_the_example_plan_issues_the_guides_deployment() {
    require_tool("openssl");
    let d = TempDir::new();
    let out = ward()
        .args(["pki", "bootstrap"])
        .arg(example_plan())
        .arg("--dir")
        .arg(d.path())
        .run()
        .ok();
    assert!(
        out.stdout.contains("issued a CA and 6 certificates"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("├── backend-1.example.com.pem"),
        "prints a tree: {}",
        out.stdout
    );
    for name in [
        "backend-1.example.com",
        "backend-2.example.com",
        "backend-3.example.com",
        "agent",
        "postgres.example.com",
        "sensu",
    ] {
        for suffix in [".pem", "-key.pem", ".csr"] {
            assert!(d.join(format!("{name}{suffix}")).exists(), "{name}{suffix}");
        }
    }
    let verify = |purpose: &str, name: &str, extra: &[&str]| {
        pki::openssl_verify(d.path(), purpose, extra, &format!("{name}.pem"))
    };
    for i in 1..=3 {
        let fqdn = format!("backend-{i}.example.com");
        verify("sslserver", &fqdn, &["-verify_hostname", &fqdn]).ok();
        verify("sslclient", &fqdn, &[]).ok();
    }
    verify(
        "sslserver",
        "postgres.example.com",
        &["-verify_ip", "10.0.0.43"],
    )
    .ok();
    verify("sslclient", "agent", &[]).ok();
    verify("sslclient", "sensu", &[]).ok();
    assert!(
        !verify("sslserver", "sensu", &[]).success(),
        "a PostgreSQL client certificate is not a server certificate"
    );
    let ca = pki::info_json(&d.join("ca.pem"));
    assert_eq!(ca["is_ca"], true);
    assert_eq!(
        ca["key_usages"],
        serde_json::json!(["cert sign", "crl sign"])
    );
    // The plan's ca-config.json works with gencert.
    ward()
        .args([
            "pki",
            "gencert",
            "-config=ca-config.json",
            "-profile=server",
            "-ca=ca.pem",
            "-ca-key=ca-key.pem",
            "-",
        ])
        .stdin(r#"{"CN":"extra.example.com"}"#)
        .current_dir(d.path())
        .run()
        .ok();
}

#[test]
fn bootstrap_issues_a_fleet_of_agents_and_refuses_to_overwrite_it() {
    let d = TempDir::new();
    std::fs::write(
        d.join("plan.yml"),
        "ca: {cn: Fleet CA}\nagents:\n  - prefix: agent-\n    count: 300\n",
    )
    .unwrap();
    let out = ward()
        .args(["pki", "bootstrap", "plan.yml", "--dir", "out"])
        .current_dir(d.path())
        .run()
        .ok();
    assert!(
        out.stderr.contains("issued 300/300 certificates"),
        "shows progress: {}",
        out.stderr
    );
    assert!(
        out.stdout.contains("more files"),
        "collapses a long tree: {}",
        out.stdout
    );
    let count = std::fs::read_dir(d.join("out")).unwrap().count();
    assert_eq!(count, 4 + 300 * 3);
    let agent = pki::info_json(&d.join("out/agent-00150.pem"));
    assert_eq!(agent["subject"], "CN=agent-00150");
    assert_eq!(
        agent["extended_key_usages"],
        serde_json::json!(["client auth"])
    );
    ward()
        .args(["pki", "bootstrap", "plan.yml", "--dir", "out"])
        .current_dir(d.path())
        .run()
        .fails_with(1);
}

#[test]
fn info_reports_what_a_reviewer_asks_for() {
    let d = TempDir::new();
    pki::init_ca(d.path(), "Ward CA", &[]);
    ward()
        .args([
            "pki",
            "issue",
            "--profile",
            "peer",
            "--cn",
            "backend-1.example.com",
            "--hosts",
            "10.0.0.1,ops@example.com,spiffe://ward/backend-1",
            "--expiry",
            "720h",
            "--dir",
        ])
        .arg(d.path())
        .run()
        .ok();
    let cert = d.join("backend-1.example.com.pem");
    let out = ward()
        .args(["pki", "info", "--ca"])
        .arg(d.join("ca.pem"))
        .arg(&cert)
        .run()
        .ok()
        .stdout;
    for needle in ["Subject:", "CN=backend-1.example.com", "Issuer:", "CN=Ward CA", "DNS:backend-1.example.com, IP:10.0.0.1, email:ops@example.com, URI:spiffe://ward/backend-1", "ECDSA P-256", "ECDSA-SHA256", "digital signature, key encipherment", "server auth, client auth", "Subject key ID:", "Authority key ID:", "SHA-256:", "Chains to CA:", "yes"] {
        assert!(out.contains(needle), "{needle} missing:\n{out}");
    }
    let v: serde_json::Value = serde_json::from_str(
        &ward()
            .args(["pki", "info", "--format", "json", "--ca"])
            .arg(d.join("ca.pem"))
            .arg(&cert)
            .run()
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(v["kind"], "certificate");
    assert!(v["days_left"].as_i64().unwrap() >= 29 && v["days_left"].as_i64().unwrap() <= 30);
    assert_eq!(v["chain"]["ok"], true);
    assert_eq!(v["sha256_fingerprint"].as_str().unwrap().len(), 32 * 3 - 1);
    // CSR and a certificate from another CA.
    let csr: serde_json::Value = pki::info_json(&d.join("backend-1.example.com.csr"));
    assert_eq!(csr["kind"], "certificate_request");
    assert_eq!(csr["signature_valid"], true);
    let other = TempDir::new();
    pki::init_ca(other.path(), "Other CA", &[]);
    let out = ward()
        .args(["pki", "info", "--ca"])
        .arg(other.join("ca.pem"))
        .arg(&cert)
        .run()
        .fails_with(1);
    assert!(
        out.stdout.contains("NO") && out.stdout.contains("not by this CA"),
        "{}",
        out.stdout
    );
}

#[test]
fn check_expiry_follows_the_plugin_exit_codes() {
    let d = TempDir::new();
    pki::init_ca(d.path(), "Ward CA", &[]);
    let issue = |cn: &str, expiry: &str| {
        ward()
            .args([
                "pki",
                "issue",
                "--profile",
                "server",
                "--cn",
                cn,
                "--expiry",
                expiry,
                "--dir",
            ])
            .arg(d.join(cn))
            .arg("--ca-dir")
            .arg(d.path())
            .run()
            .ok();
        d.join(cn).join(format!("{cn}.pem"))
    };
    let long = issue("long", "2160h");
    let warn = issue("warn", "480h");
    let crit = issue("crit", "72h");
    let gone = issue("gone", "1s");
    let check = |paths: &[&Path]| {
        ward()
            .args(["pki", "check-expiry"])
            .args(paths.to_vec())
            .run()
    };
    let ok = check(&[&long]).fails_with(0);
    assert!(
        ok.stdout.starts_with("OK: 1 certificate checked; soonest:"),
        "{}",
        ok.stdout
    );
    let w = check(&[&long, &warn]).fails_with(1);
    assert!(
        w.stdout.starts_with("WARNING:") && w.stdout.contains("warn.pem"),
        "{}",
        w.stdout
    );
    let c = check(&[&crit, &warn]).fails_with(2);
    assert!(
        c.stdout.starts_with("CRITICAL:") && c.stdout.contains("crit.pem"),
        "{}",
        c.stdout
    );
    let e = check(&[&gone]).fails_with(2);
    assert!(e.stdout.contains("expired on"), "{}", e.stdout);
    // A directory: keys and CSRs are skipped; the soonest wins.
    let all = check(&[d.path()]).fails_with(2);
    assert!(
        all.stdout.contains("5 certificates checked") && all.stdout.contains("gone.pem"),
        "{}",
        all.stdout
    );
    assert_eq!(all.stdout.lines().count(), 1);
    let unknown = check(&[&d.join("nope.pem")]).fails_with(3);
    assert!(unknown.stdout.starts_with("UNKNOWN:"), "{}", unknown.stdout);
    let thresholds = ward()
        .args([
            "pki",
            "check-expiry",
            "--warning",
            "90d",
            "--critical",
            "30d",
        ])
        .arg(&warn)
        .run()
        .fails_with(2);
    assert!(
        thresholds.stdout.starts_with("CRITICAL"),
        "{}",
        thresholds.stdout
    );
    ward()
        .args(["pki", "check-expiry", "--warning", "soon"])
        .arg(&warn)
        .run()
        .fails_with(3);
}

#[test]
fn renew_keeps_subject_names_and_profile_with_a_fresh_validity() {
    let d = TempDir::new();
    pki::init_ca(d.path(), "Ward CA", &[]);
    ward()
        .args([
            "pki",
            "issue",
            "--profile",
            "client",
            "--cn",
            "agent-7",
            "--hosts",
            "agent-7.example.com",
            "--expiry",
            "240h",
            "--dir",
        ])
        .arg(d.path())
        .run()
        .ok();
    let cert = d.join("agent-7.pem");
    let before = pki::info_json(&cert);
    let key_before = std::fs::read(d.join("agent-7-key.pem")).unwrap();
    ward()
        .args(["pki", "renew"])
        .arg(&cert)
        .arg("--ca-dir")
        .arg(d.path())
        .run()
        .ok();
    let after = pki::info_json(&cert);
    assert_ne!(before["serial"], after["serial"]);
    for field in [
        "subject",
        "sans",
        "key_usages",
        "extended_key_usages",
        "issuer",
        "authority_key_id",
        "subject_key_id",
    ] {
        assert_eq!(before[field], after[field], "{field}");
    }
    assert_eq!(after["days_left"], 9);
    assert_eq!(
        std::fs::read(d.join("agent-7-key.pem")).unwrap(),
        key_before,
        "the key is kept"
    );
    ward()
        .args(["pki", "renew", "--rotate-key"])
        .arg(&cert)
        .arg("--ca-dir")
        .arg(d.path())
        .run()
        .ok();
    let rotated = pki::info_json(&cert);
    assert_ne!(
        rotated["subject_key_id"], after["subject_key_id"],
        "a new key"
    );
    assert_ne!(
        std::fs::read(d.join("agent-7-key.pem")).unwrap(),
        key_before
    );
    let out = ward()
        .args(["pki", "info", "--ca"])
        .arg(d.join("ca.pem"))
        .arg(&cert)
        .run()
        .ok();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("Chains to CA:") && l.contains("yes (")),
        "{}",
        out.stdout
    );
    // A certificate from another CA is not renewed by this one.
    let other = TempDir::new();
    pki::init_ca(other.path(), "Other CA", &[]);
    let out = ward()
        .args(["pki", "renew"])
        .arg(&cert)
        .arg("--ca-dir")
        .arg(other.path())
        .run()
        .fails_with(1);
    assert!(
        out.stderr.contains("was not issued by the CA"),
        "{}",
        out.stderr
    );
}
