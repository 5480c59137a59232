//! Files and names an attacker or a careless operator hands `ward pki`: FIFOs, devices and
//! link loops for `check-expiry`, `/dev/zero` where a certificate should be, common names
//! RFC 5280 does not allow, escape sequences in certificates, and an interrupted bootstrap.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use ward_testkit::{pki, ward, ward_bin, Output, TempDir};

fn check_expiry(paths: &[&Path]) -> Output {
    ward()
        .args(["pki", "check-expiry"])
        .args(paths.iter().map(|p| p.as_os_str()))
        .run()
}

/// A directory with a CA and one server certificate.
fn certs() -> TempDir {
    let d = TempDir::new();
    pki::init_ca(d.path(), "Test CA", &[]);
    pki::issue(d.path(), "server", "web", &[]);
    d
}

#[test]
fn check_expiry_never_hangs_on_a_fifo_and_names_it() {
    let d = certs();
    let fifo = d.join("trap.pem");
    ward_testkit::Command::new("mkfifo").arg(&fifo).run().ok();
    let start = Instant::now();
    for paths in [vec![d.path()], vec![fifo.as_path()]] {
        let out = check_expiry(&paths).fails_with(3);
        assert!(out.stdout.starts_with("UNKNOWN: "), "{}", out.stdout);
        assert!(
            out.stdout.contains("trap.pem") && out.stdout.contains("a FIFO"),
            "{}",
            out.stdout
        );
    }
    assert!(start.elapsed() < Duration::from_secs(20), "no hang");
}

#[test]
fn check_expiry_refuses_a_device_behind_a_pem_name() {
    let d = certs();
    symlink("/dev/zero", d.join("zero.pem")).unwrap();
    let start = Instant::now();
    let out = check_expiry(&[d.path()]).fails_with(3);
    assert!(
        out.stdout.starts_with("UNKNOWN: ")
            && out.stdout.contains("zero.pem")
            && out.stdout.contains("a device"),
        "{}",
        out.stdout
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "read nothing of it"
    );
}

#[test]
fn check_expiry_counts_each_certificate_once_through_link_loops() {
    let d = certs();
    // A loop back to the directory itself, and a second name for one certificate.
    symlink(d.path(), d.join("loop")).unwrap();
    symlink(d.join("web.pem"), d.join("alias.pem")).unwrap();
    let out = check_expiry(&[d.path()]).ok();
    // ca.pem and web.pem: two certificates, each once.
    assert!(
        out.stdout.starts_with("OK: 2 certificates checked"),
        "{}",
        out.stdout
    );
    // A file link loop is named, not followed.
    symlink(d.join("b.pem"), d.join("a.pem")).unwrap();
    symlink(d.join("a.pem"), d.join("b.pem")).unwrap();
    let out = check_expiry(&[d.path()]).fails_with(3);
    assert!(
        out.stdout.starts_with("UNKNOWN: ") && out.stdout.contains("a.pem"),
        "{}",
        out.stdout
    );
}

#[test]
fn dev_zero_as_a_certificate_or_ca_is_refused_at_once() {
    let d = certs();
    std::fs::write(d.join("req.json"), r#"{"CN":"x"}"#).unwrap();
    let runs: Vec<Vec<&str>> = vec![
        vec!["pki", "info", "--ca", "/dev/zero", "web.pem"],
        vec!["pki", "revoke", "--ca-dir", ".", "--cert", "/dev/zero"],
        vec!["pki", "gencert", "-initca", "/dev/zero"],
        vec![
            "pki",
            "gencert",
            "-ca=/dev/zero",
            "-ca-key=ca-key.pem",
            "req.json",
        ],
        vec![
            "pki",
            "issue",
            "--profile",
            "server",
            "--cn",
            "x",
            "--config",
            "/dev/zero",
            "--dir",
            ".",
        ],
    ];
    for args in runs {
        let start = Instant::now();
        let out = ward().args(args.clone()).current_dir(d.path()).run();
        let took = start.elapsed();
        assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {}", out.stderr);
        assert!(
            lines[0].contains("/dev/zero: larger than"),
            "{args:?}: {}",
            out.stderr
        );
        // Bounded reads answer in milliseconds; an unbounded read of /dev/zero never would.
        assert!(took < Duration::from_secs(10), "{args:?} took {took:?}");
    }
    let out = check_expiry(&[Path::new("/dev/zero")]).fails_with(3);
    assert!(
        out.stdout.contains("/dev/zero: is a device"),
        "{}",
        out.stdout
    );
}

#[test]
fn common_names_over_64_characters_or_with_control_characters_are_refused() {
    let d = certs();
    let long = "a".repeat(65);
    let ok64 = "b".repeat(64);
    let esc = "evil\u{1b}[2Jname";
    let one_line = |out: &Output, needles: &[&str]| {
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{}", out.stderr);
        for n in needles {
            assert!(lines[0].contains(n), "{:?} should say {n:?}", lines[0]);
        }
        assert!(!out.stderr.contains('\u{1b}'), "the name is shown escaped");
    };
    for (cn, needle) in [(long.as_str(), "at most 64"), (esc, "control character")] {
        let out = ward()
            .args(["pki", "init-ca", "--cn", cn, "--dir", "newca"])
            .current_dir(d.path())
            .run()
            .fails_with(1);
        one_line(&out, &["--cn", needle]);
        let out = ward()
            .args([
                "pki",
                "issue",
                "--profile",
                "client",
                "--cn",
                cn,
                "--dir",
                ".",
            ])
            .current_dir(d.path())
            .run()
            .fails_with(1);
        one_line(&out, &["--cn", needle]);
        let json = serde_json::json!({ "CN": cn }).to_string();
        let out = ward()
            .args(["pki", "gencert", "-initca", "-"])
            .stdin(json.clone())
            .run()
            .fails_with(1);
        one_line(&out, &["stdin: CN", needle]);
        let out = ward()
            .args(["pki", "gencert", "-ca=ca.pem", "-ca-key=ca-key.pem", "-"])
            .stdin(json)
            .current_dir(d.path())
            .run()
            .fails_with(1);
        one_line(&out, &["stdin: CN", needle]);
        let plan = format!(
            "ca: {{cn: Test CA}}\nagents:\n  - name: {}\n",
            serde_json::to_string(cn).unwrap()
        );
        std::fs::write(d.join("plan.yml"), plan).unwrap();
        let out = ward()
            .args(["pki", "bootstrap", "plan.yml", "--dir", "boot"])
            .current_dir(d.path())
            .run()
            .fails_with(1);
        one_line(&out, &["plan.yml: agent", needle]);
        assert!(!d.join("boot").exists() && !d.join("newca").exists());
    }
    // 64 characters is the bound, and allowed.
    pki::issue(d.path(), "client", &ok64, &[]);
}

#[test]
fn escape_sequences_in_a_certificate_are_shown_escaped() {
    let d = certs();
    let subj = "/O=evil\u{1b}]0;pwned\u{7}corp/CN=web\u{1b}[2Jsite";
    pki::openssl(
        d.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "evil-key.pem",
            "-out",
            "evil.pem",
            "-days",
            "30",
            "-utf8",
            "-subj",
            subj,
        ],
    )
    .ok();
    let out = ward()
        .args(["pki", "info", "evil.pem"])
        .current_dir(d.path())
        .run()
        .ok();
    assert!(!out.stdout.contains('\u{1b}'), "raw ESC: {:?}", out.stdout);
    assert!(!out.stdout.contains('\u{7}'), "raw BEL: {:?}", out.stdout);
    assert!(
        out.stdout.contains("\\e]0;pwned") && out.stdout.contains("web\\e[2Jsite"),
        "{}",
        out.stdout
    );
    let out = ward()
        .args(["pki", "check-expiry", "evil.pem"])
        .current_dir(d.path())
        .run()
        .fails_with(1);
    assert!(!out.stdout.contains('\u{1b}'), "raw ESC: {:?}", out.stdout);
    assert!(out.stdout.contains("web\\e[2Jsite"), "{}", out.stdout);
}

fn staging_dirs(root: &Path) -> Vec<String> {
    std::fs::read_dir(root)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".staging-"))
        .collect()
}

#[test]
fn sigterm_during_a_large_bootstrap_leaves_no_staging_directory() {
    let d = TempDir::new();
    std::fs::write(
        d.join("plan.yml"),
        "ca: {cn: Test CA}\nagents:\n  - prefix: agent-\n    count: 4000\n",
    )
    .unwrap();
    let mut child = std::process::Command::new(ward_bin())
        .args(["pki", "bootstrap", "plan.yml", "--dir", "tls"])
        .current_dir(d.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let staging = d.join(format!(".tls.staging-{}", child.id()));
    // Wait for the keys to be staged, then interrupt.
    let start = Instant::now();
    while !staging.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "bootstrap ended before staging was seen"
        );
        assert!(start.elapsed() < Duration::from_secs(300), "no staging");
        std::thread::sleep(Duration::from_millis(1));
    }
    ward_testkit::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .run()
        .ok();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(staging_dirs(d.path()), Vec::<String>::new());
    assert!(!d.join("tls").exists(), "no half-written directory");
}

#[test]
fn a_stale_staging_directory_from_a_crash_is_removed_with_a_note() {
    let d = TempDir::new();
    // The PID of a process that has exited.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let stale = d.join(format!(".tls.staging-{pid}"));
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("ca-key.pem"), "secret").unwrap();
    std::fs::write(
        d.join("plan.yml"),
        "ca: {cn: Test CA}\nagents:\n  - name: a\n",
    )
    .unwrap();
    let out = ward()
        .args(["pki", "bootstrap", "plan.yml", "--dir", "tls"])
        .current_dir(d.path())
        .run()
        .ok();
    assert!(
        out.stderr.contains("note: removed") && out.stderr.contains(&format!(".tls.staging-{pid}")),
        "{}",
        out.stderr
    );
    assert!(!stale.exists());
    assert!(d.join("tls/a.pem").exists());
}
