//! Concurrent `ward pki` processes on one directory: revocations are never lost, CRL numbers
//! are never reused, and of several issues of one name exactly one wins with a matching
//! certificate and key.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use ward_testkit::agent::{mtls_backend, publish_crl, wait_for, Agent};
use ward_testkit::{pki, ward_bin, Output, TempDir};

/// Starts every command at once (real processes) and waits for all of them.
fn run_all(commands: Vec<Vec<String>>) -> Vec<Output> {
    let children: Vec<_> = commands
        .iter()
        .map(|args| {
            std::process::Command::new(ward_bin())
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start ward")
        })
        .collect();
    children
        .into_iter()
        .zip(commands)
        .map(|(c, args)| {
            let out = c.wait_with_output().expect("wait for ward");
            Output {
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                display: format!("ward {}", args.join(" ")),
            }
        })
        .collect()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn serial_of(cert: &Path) -> String {
    pki::info_json(cert)["serial"]
        .as_str()
        .expect("serial")
        .to_string()
}

#[test]
fn thirty_concurrent_revocations_all_reach_the_crl_and_the_backend_refuses_them() {
    const N: usize = 30;
    let names: Vec<String> = (1..=N).map(|i| format!("a{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let b = mtls_backend(&refs, &[]);
    let tls = b.tls.clone().unwrap();
    let outs = run_all(
        names
            .iter()
            .map(|n| {
                vec![
                    "pki".into(),
                    "revoke".into(),
                    "--reason".into(),
                    "keyCompromise".into(),
                    "--ca-dir".into(),
                    s(&tls),
                    "--cert".into(),
                    s(&tls.join(format!("{n}.pem"))),
                ]
            })
            .collect(),
    );
    for o in outs {
        let o = o.ok();
        assert!(o.stdout.starts_with("revoked "), "{}", o.stdout);
    }
    publish_crl(&tls);
    let crl = pki::info_json(&tls.join("crl.pem"));
    let in_crl: BTreeSet<String> = crl["revoked"]
        .as_array()
        .expect("revoked list")
        .iter()
        .map(|r| r["serial"].as_str().unwrap().to_string())
        .collect();
    let expected: BTreeSet<String> = names
        .iter()
        .map(|n| serial_of(&tls.join(format!("{n}.pem"))))
        .collect();
    assert_eq!(in_crl, expected, "every revoked serial is in the CRL");

    // End to end: the running backend refuses revoked agents (the first and the last).
    std::thread::sleep(Duration::from_secs(2));
    for name in [&names[0], &names[N - 1]] {
        let _agent = Agent::start(name, &Agent::mtls_yaml(&b, name));
        wait_for(20, &format!("the refusal of {name}"), || {
            b.log()
                .lines()
                .find(|l| {
                    l.contains("agent refused")
                        && l.contains("\"reason\":\"revoked\"")
                        && l.contains(&format!("CN={name}"))
                })
                .map(|_| ())
        });
    }
}

#[test]
fn concurrent_crl_runs_never_issue_one_number_twice() {
    const N: usize = 12;
    let d = TempDir::new();
    pki::init_ca(d.path(), "Test CA", &[]);
    let outs = run_all(
        (0..N)
            .map(|i| {
                vec![
                    "pki".into(),
                    "crl".into(),
                    "--ca-dir".into(),
                    s(d.path()),
                    "--out".into(),
                    s(&d.join(format!("crl-{i}.pem"))),
                ]
            })
            .collect(),
    );
    let mut numbers = BTreeSet::new();
    for i in 0..N {
        let crl = pki::info_json(&d.join(format!("crl-{i}.pem")));
        numbers.insert(crl["crl_number"].as_str().unwrap().to_string());
    }
    for o in outs {
        o.ok();
    }
    let expected: BTreeSet<String> = (1..=N).map(|n| n.to_string()).collect();
    assert_eq!(numbers, expected, "CRL numbers 1..={N}, each once");
}

/// The public key of a certificate and of a key file, as openssl prints them.
fn public_keys(dir: &Path, name: &str) -> (String, String) {
    let cert = pki::openssl(
        dir,
        &["x509", "-noout", "-pubkey", "-in", &format!("{name}.pem")],
    )
    .ok();
    let key = pki::openssl(dir, &["pkey", "-pubout", "-in", &format!("{name}-key.pem")]).ok();
    (cert.stdout, key.stdout)
}

#[test]
fn concurrent_issues_of_one_name_have_one_winner_with_a_matching_key() {
    const N: usize = 10;
    let ca = TempDir::new();
    pki::init_ca(ca.path(), "Test CA", &[]);
    let root = TempDir::new();
    // Into a directory that does not exist yet: all race to create it.
    let out_dir = root.join("new").join("certs");
    let issue = |cn: &str, force: bool| {
        let mut v: Vec<String> = ["pki", "issue", "--profile", "client", "--cn", cn]
            .map(String::from)
            .to_vec();
        v.extend(["--ca-dir".into(), s(ca.path()), "--dir".into(), s(&out_dir)]);
        if force {
            v.push("--force".into());
        }
        v
    };
    let outs = run_all((0..N).map(|_| issue("web", false)).collect());
    let winners: Vec<_> = outs.iter().filter(|o| o.success()).collect();
    assert_eq!(winners.len(), 1, "exactly one wins: {outs:#?}");
    for o in outs.iter().filter(|o| !o.success()) {
        assert_eq!(o.code, Some(1), "{o:#?}");
        let lines: Vec<&str> = o.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{}", o.stderr);
        assert!(
            lines[0].contains("web") && lines[0].contains("already exists; pass --force"),
            "{}",
            o.stderr
        );
    }
    let (c, k) = public_keys(&out_dir, "web");
    assert_eq!(c, k, "the certificate and key on disk belong together");

    // With --force every run replaces the pair, one after the other: still a pair.
    for o in run_all((0..N).map(|_| issue("web", true)).collect()) {
        o.ok();
    }
    let (c, k) = public_keys(&out_dir, "web");
    assert_eq!(c, k, "after concurrent --force the pair still matches");

    // Different names into another new directory: all succeed.
    let other = root.join("other");
    let outs = run_all(
        (0..N)
            .map(|i| {
                let mut v = issue(&format!("host-{i}"), false);
                let at = v.len() - 1;
                v[at] = s(&other);
                v
            })
            .collect(),
    );
    for o in outs {
        let o = o.ok();
        assert!(!o.stderr.contains("not empty"), "{}", o.stderr);
    }
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), N * 3);
}
