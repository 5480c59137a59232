//! Every kind of bad input gets one line on stderr naming the thing, what is wrong and the
//! fix; a non-zero exit; and nothing written.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use ward_testkit::{pki, require_tool, ward, Command, Output, TempDir};

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Runs `cmd` in `dir` and checks: exit `code`, exactly one stderr line containing every
/// `needle`, and the directory unchanged.
#[track_caller]
fn refused(dir: &Path, cmd: ward_testkit::Command, code: i32, needles: &[&str]) -> Output {
    let before = snapshot(dir);
    let out = cmd.current_dir(dir).run().fails_with(code);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one line on stderr, got:\n{}",
        out.stderr
    );
    for n in needles {
        assert!(
            lines[0].contains(n),
            "stderr {:?} should mention {n:?}",
            lines[0]
        );
    }
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert_eq!(snapshot(dir), before, "the directory changed");
    out
}

fn ca_dir() -> TempDir {
    let d = TempDir::new();
    pki::init_ca(d.path(), "Test CA", &[]);
    d
}

/// `ward pki issue --profile server --cn x [EXTRA…] --dir .`
fn issue_x(extra: &[&str]) -> Command {
    ward()
        .args(["pki", "issue", "--profile", "server", "--cn", "x"])
        .args(extra.to_vec())
        .args(["--dir", "."])
}

fn gencert(args: &[&str], stdin: &str) -> Command {
    ward()
        .args(["pki", "gencert"])
        .args(args)
        .arg("-")
        .stdin(stdin)
}

#[test]
fn malformed_request_json_is_refused() {
    let d = ca_dir();
    refused(
        d.path(),
        gencert(&["-initca"], "{\"CN\":"),
        1,
        &["stdin", "malformed certificate request JSON"],
    );
    refused(
        d.path(),
        gencert(
            &["-initca"],
            "{\"CN\":\"x\",\"key\":{\"algo\":\"rsa\",\"size\":1024}}",
        ),
        1,
        &["1024", "2048, 3072 or 4096"],
    );
    refused(
        d.path(),
        gencert(&["-initca"], "{\"CN\":\"x\",\"key\":{\"algo\":\"dsa\"}}"),
        1,
        &["dsa", "rsa, ecdsa or ed25519"],
    );
    refused(
        d.path(),
        ward().args(["pki", "json", "-bare", "x"]).stdin("not json"),
        1,
        &["stdin", "malformed cfssl JSON"],
    );
    refused(
        d.path(),
        ward().args(["pki", "json", "-bare", "x"]).stdin(""),
        1,
        &["no input"],
    );
}

#[test]
fn unknown_profile_and_usage_are_errors_not_silent_defaults() {
    let d = ca_dir();
    refused(
        d.path(),
        gencert(
            &[
                "-config=ca-config.json",
                "-profile=backnd",
                "-ca=ca.pem",
                "-ca-key=ca-key.pem",
            ],
            "{\"CN\":\"x\"}",
        ),
        1,
        &["\"backnd\"", "client, peer, server"],
    );
    std::fs::write(
        d.join("bad-config.json"),
        r#"{"signing":{"profiles":{"x":{"usages":["server auht"],"expiry":"1h"}}}}"#,
    )
    .unwrap();
    refused(
        d.path(),
        gencert(
            &[
                "-config=bad-config.json",
                "-profile=x",
                "-ca=ca.pem",
                "-ca-key=ca-key.pem",
            ],
            "{\"CN\":\"x\"}",
        ),
        1,
        &["server auht", "known usages"],
    );
    refused(
        d.path(),
        ward().args([
            "pki",
            "issue",
            "--profile",
            "nope",
            "--cn",
            "x",
            "--dir",
            ".",
        ]),
        1,
        &["\"nope\"", "server"],
    );
}

#[test]
fn a_ca_key_that_does_not_match_is_refused() {
    let d = ca_dir();
    let other = ca_dir();
    std::fs::copy(other.join("ca-key.pem"), d.join("other-key.pem")).unwrap();
    std::fs::set_permissions(
        d.join("other-key.pem"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    refused(
        d.path(),
        gencert(&["-ca=ca.pem", "-ca-key=other-key.pem"], "{\"CN\":\"x\"}"),
        1,
        &["other-key.pem", "does not match", "ca.pem"],
    );
}

#[test]
fn a_leaf_is_not_accepted_as_a_ca() {
    let d = ca_dir();
    ward()
        .args([
            "pki",
            "issue",
            "--profile",
            "server",
            "--cn",
            "leaf",
            "--dir",
        ])
        .arg(d.path())
        .run()
        .ok();
    refused(
        d.path(),
        gencert(&["-ca=leaf.pem", "-ca-key=leaf-key.pem"], "{\"CN\":\"x\"}"),
        1,
        &["leaf.pem", "not a CA", "CA:TRUE"],
    );
}

#[test]
fn encrypted_and_unreadable_keys_are_refused() {
    require_tool("openssl");
    let d = ca_dir();
    Command::new("openssl")
        .args([
            "pkey",
            "-in",
            "ca-key.pem",
            "-aes256",
            "-passout",
            "pass:secret",
            "-out",
            "enc-key.pem",
        ])
        .current_dir(d.path())
        .run()
        .ok();
    std::fs::set_permissions(
        d.join("enc-key.pem"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    refused(
        d.path(),
        gencert(&["-ca=ca.pem", "-ca-key=enc-key.pem"], "{\"CN\":\"x\"}"),
        1,
        &["enc-key.pem", "encrypted"],
    );
    std::fs::write(d.join("junk-key.pem"), "not a key").unwrap();
    std::fs::set_permissions(
        d.join("junk-key.pem"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    refused(
        d.path(),
        gencert(&["-ca=ca.pem", "-ca-key=junk-key.pem"], "{\"CN\":\"x\"}"),
        1,
        &["junk-key.pem", "not a usable private key"],
    );
    refused(
        d.path(),
        gencert(&["-ca=ca.pem", "-ca-key=missing-key.pem"], "{\"CN\":\"x\"}"),
        1,
        &["missing-key.pem", "No such file"],
    );
}

#[test]
fn a_group_readable_key_is_refused_with_the_chmod_that_fixes_it() {
    let d = ca_dir();
    std::fs::set_permissions(d.join("ca-key.pem"), std::fs::Permissions::from_mode(0o644)).unwrap();
    refused(
        d.path(),
        gencert(&["-ca=ca.pem", "-ca-key=ca-key.pem"], "{\"CN\":\"x\"}"),
        1,
        &["ca-key.pem", "0644", "chmod 600 ca-key.pem"],
    );
}

#[test]
fn an_expired_ca_is_refused() {
    // notBefore is backdated five minutes, so a one-second CA is born expired.
    let d = TempDir::new();
    pki::init_ca(d.path(), "Old CA", &["--expiry", "1s"]);
    refused(
        d.path(),
        issue_x(&[]),
        1,
        &["ca.pem", "expired on", "init-ca"],
    );
}

#[test]
fn bad_durations_hosts_and_key_types_are_refused() {
    let d = ca_dir();
    let issue = issue_x;
    refused(
        d.path(),
        issue(&["--expiry", "10y"]),
        1,
        &["--expiry", "bad duration", "\"10y\""],
    );
    refused(
        d.path(),
        issue(&["--hosts", "ok.example.com,not a host"]),
        1,
        &["\"not a host\"", "neither a DNS name"],
    );
    refused(
        d.path(),
        issue(&["--key", "rsa-1024"]),
        1,
        &["rsa-1024", "rsa-2048"],
    );
    refused(
        d.path(),
        gencert(
            &["-ca=ca.pem", "-ca-key=ca-key.pem", "-hostname=a..b"],
            "{\"CN\":\"x\"}",
        ),
        1,
        &["\"a..b\""],
    );
}

#[test]
fn existing_files_are_not_overwritten_without_force() {
    let d = ca_dir();
    refused(
        d.path(),
        ward().args(["pki", "init-ca", "--cn", "Again", "--dir", "."]),
        1,
        &["ca.pem", "already exists", "--force"],
    );
    ward()
        .args([
            "pki",
            "issue",
            "--profile",
            "server",
            "--cn",
            "x",
            "--dir",
            ".",
        ])
        .current_dir(d.path())
        .run()
        .ok();
    refused(d.path(), issue_x(&[]), 1, &["x.pem", "--force"]);
    ward()
        .args([
            "pki",
            "issue",
            "--profile",
            "server",
            "--cn",
            "x",
            "--force",
            "--dir",
            ".",
        ])
        .current_dir(d.path())
        .run()
        .ok();
}

#[test]
fn a_leaf_that_would_outlive_its_ca_is_refused_or_clamped() {
    let d = TempDir::new();
    pki::init_ca(d.path(), "Short CA", &["--expiry", "48h"]);
    refused(
        d.path(),
        issue_x(&[]),
        1,
        &["would expire", "after its CA", "--clamp"],
    );
    let out = ward()
        .args([
            "pki",
            "issue",
            "--profile",
            "server",
            "--cn",
            "x",
            "--clamp",
            "--dir",
            ".",
        ])
        .current_dir(d.path())
        .run()
        .ok();
    assert!(
        out.stderr.contains("warning: shortened the lifetime"),
        "{}",
        out.stderr
    );
    let ca: serde_json::Value = serde_json::from_str(
        &ward()
            .args(["pki", "info", "--format", "json", "ca.pem"])
            .current_dir(d.path())
            .run()
            .ok()
            .stdout,
    )
    .unwrap();
    let leaf: serde_json::Value = serde_json::from_str(
        &ward()
            .args(["pki", "info", "--format", "json", "x.pem"])
            .current_dir(d.path())
            .run()
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(ca["not_after"], leaf["not_after"]);
}

#[test]
fn a_malformed_plan_writes_nothing() {
    let d = TempDir::new();
    let out_dir = d.join("out");
    std::fs::write(d.join("plan.yml"), "ca:\n  cn: [unclosed\n").unwrap();
    refused(
        d.path(),
        ward().args(["pki", "bootstrap", "plan.yml", "--dir", "out"]),
        1,
        &["plan.yml", "malformed bootstrap plan YAML"],
    );
    std::fs::write(
        d.join("plan.yml"),
        "ca: {cn: X}\nagents:\n  - name: a\n  - name: a\n",
    )
    .unwrap();
    refused(
        d.path(),
        ward().args(["pki", "bootstrap", "plan.yml", "--dir", "out"]),
        1,
        &["\"a\"", "used twice"],
    );
    std::fs::write(
        d.join("plan.yml"),
        "ca: {cn: X}\nbackends:\n  - name: b\n    hosts: [\"bad host\"]\n",
    )
    .unwrap();
    refused(
        d.path(),
        ward().args(["pki", "bootstrap", "plan.yml", "--dir", "out"]),
        1,
        &["\"bad host\""],
    );
    assert!(!out_dir.exists());
}

#[test]
fn a_bad_command_line_exits_2() {
    let d = TempDir::new();
    let out = ward()
        .args(["pki", "issue", "--cn", "x"])
        .current_dir(d.path())
        .run()
        .fails_with(2);
    assert!(out.stderr.contains("--profile"), "{}", out.stderr);
    ward()
        .args(["pki", "revoke", "--ca-dir", "."])
        .current_dir(d.path())
        .run()
        .fails_with(2);
}
