//! Live revocation (issue 17, item 4) through the real backend and agents with mTLS: on a
//! backend that holds its CA, `ward ctl cert revoke` records the revocation, re-signs the
//! CRL the agent port reads, and closes the revoked agent's open session at once with the
//! reason, which the agent logs; its reconnection is refused; other agents keep theirs.
//! Revoking twice, an unknown name, and a backend without a CA get one line saying so.

use std::time::{Duration, Instant};
use ward_testkit::agent::{mtls_backend_holding_ca, wait_logged, Agent};
use ward_testkit::backend::Backend;
use ward_testkit::pki::openssl;

fn keepalive_at(b: &Backend, name: &str) -> Option<i64> {
    b.event(name, "keepalive")
        .and_then(|e| e["timestamp"].as_i64())
}

#[test]
fn a_revoked_agent_loses_its_session_at_once_and_cannot_come_back() {
    let b = mtls_backend_holding_ca(&["web-1", "web-2"], &[]);
    b.ctl_login();
    let fast = "keepalive-interval: 1\nretry-min: 1s\nretry-max: 2s\n";
    let a1 = Agent::start("web-1", &format!("{}{fast}", Agent::mtls_yaml(&b, "web-1")));
    let a2 = Agent::start("web-2", &format!("{}{fast}", Agent::mtls_yaml(&b, "web-2")));
    wait_logged(20, &b, &a1, "both agents' keepalives", || {
        (keepalive_at(&b, "web-1").is_some() && keepalive_at(&b, "web-2").is_some()).then_some(())
    });
    let start = Instant::now();
    let out = b
        .ctl()
        .args(["cert", "revoke", "web-1", "--reason", "keyCompromise"])
        .run()
        .ok();
    assert!(
        out.stdout.contains("(keyCompromise)") && out.stdout.contains("1 session(s) closed"),
        "{}",
        out.stdout
    );
    // The session is closed within a second, and the agent is told why.
    wait_logged(5, &b, &a1, "the agent told of the revocation", || {
        a1.log()
            .contains("certificate revoked (keyCompromise)")
            .then_some(())
    });
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    // Its reconnections are refused by the CRL the backend re-signed, and it is told so.
    wait_logged(15, &b, &a1, "the reconnection refused as revoked", || {
        b.log()
            .lines()
            .any(|l| l.contains("agent refused") && l.contains("\"reason\":\"revoked\""))
            .then_some(())
    });
    wait_logged(
        10,
        &b,
        &a1,
        "the agent told its certificate is revoked",
        || {
            a1.log()
                .contains("the certificate was revoked on")
                .then_some(())
        },
    );
    assert!(out.stdout.starts_with("revoked "), "{}", out.stdout);
    let serial = out.stdout.split_whitespace().nth(1).unwrap().to_string();
    assert!(out.stdout.starts_with("revoked "), "{}", out.stdout);
    let crl = openssl(
        b.tls.as_ref().unwrap(),
        &["crl", "-in", "crl.pem", "-noout", "-text"],
    )
    .ok()
    .stdout;
    let hex: String = serial.replace(':', "").to_uppercase();
    assert!(
        crl.contains(&hex) && crl.contains("Key Compromise"),
        "{serial}\n{crl}"
    );
    std::thread::sleep(Duration::from_secs(3));
    let after = keepalive_at(&b, "web-1").unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        keepalive_at(&b, "web-1").unwrap(),
        after,
        "web-1 has no session any more"
    );
    // web-2 keeps its session.
    let w2 = keepalive_at(&b, "web-2").unwrap();
    wait_logged(10, &b, &a2, "web-2's next keepalive", || {
        (keepalive_at(&b, "web-2").unwrap() > w2).then_some(())
    });
    // Twice: done again (the CRL re-signed), saying when it was first. A name nobody is
    // connected as: refused, saying what to give.
    let twice = b.ctl().args(["cert", "revoke", &serial]).run().ok();
    assert!(
        twice
            .stdout
            .starts_with(&format!("already revoked {serial} (keyCompromise)")),
        "{}",
        twice.stdout
    );
    let nobody = b.ctl().args(["cert", "revoke", "web-9"]).run();
    assert!(
        !nobody.success() && nobody.stderr.contains("give the serial"),
        "{}",
        nobody.stderr
    );
}

#[test]
fn a_backend_without_its_ca_says_where_to_revoke() {
    let b = Backend::start(true);
    b.ctl_login();
    let out = b.ctl().args(["cert", "revoke", "01:02"]).run();
    assert!(!out.success());
    assert!(
        out.stderr
            .contains("this backend holds no CA: start it with ca-dir"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_ca_dir_whose_ca_the_agent_port_does_not_trust_is_refused_at_start() {
    let d = ward_testkit::TempDir::new();
    let tls = ward_testkit::pki::bootstrap(
        d.path(),
        "ca: {cn: Test CA}\nbackends:\n  - name: localhost\n    hosts: [127.0.0.1]\n",
    );
    ward_testkit::pki::init_ca(&d.join("other"), "Other CA", &[]);
    let state = d.join("state");
    ward_testkit::ward()
        .args(["backend", "init", "--state-dir"])
        .arg(&state)
        .args([
            "--cluster-admin-username",
            "admin",
            "--cluster-admin-password",
            "P@ssw0rd!x",
        ])
        .run()
        .ok();
    let out = ward_testkit::Command::new("timeout")
        .arg("20")
        .arg(ward_testkit::ward_bin())
        .args(["backend", "start", "--state-dir"])
        .arg(&state)
        .args([
            "--api-listen-address",
            "127.0.0.1:0",
            "--agent-port",
            "0",
            "--dashboard-port",
            "0",
        ])
        .arg("--agent-auth-cert-file")
        .arg(tls.join("localhost.pem"))
        .arg("--agent-auth-key-file")
        .arg(tls.join("localhost-key.pem"))
        .arg("--agent-auth-trusted-ca-file")
        .arg(tls.join("ca.pem"))
        .arg("--agent-auth-crl-urls")
        .arg(format!("file://{}", tls.join("crl.pem").display()))
        .arg("--ca-dir")
        .arg(d.join("other"))
        .run();
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("is not in agent-auth-trusted-ca-file"),
        "{}",
        out.stderr
    );
}
