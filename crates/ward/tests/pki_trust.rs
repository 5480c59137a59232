//! `ward pki trust` against Debian's real update-ca-certificates, on the file tree of a
//! system (`--root`, as when building an image) so that the machine's own store is not
//! touched: installed, the CA is in the bundle every client reads, and `ward ctl` then
//! trusts the backend with no `--trusted-ca-file`; uninstalled, it is gone again. A leaf, a
//! key, or a system without a store are refused with one line naming why.

use std::path::Path;
use ward_testkit::backend::Backend;
use ward_testkit::{require_tool, ward, TempDir};

/// A Debian trust store under `root` holding one other CA, as a real one holds many.
fn debian_tree(root: &Path) {
    for d in [
        "usr/local/share/ca-certificates",
        "usr/share/ca-certificates/other",
        "etc/ssl/certs",
        "etc/ca-certificates/update.d",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    ward()
        .args(["pki", "init-ca", "--cn", "Other CA", "--dir"])
        .arg(root.join("other-ca"))
        .run()
        .ok();
    std::fs::copy(
        root.join("other-ca/ca.pem"),
        root.join("usr/share/ca-certificates/other/other.crt"),
    )
    .unwrap();
    std::fs::write(root.join("etc/ca-certificates.conf"), "other/other.crt\n").unwrap();
}

fn trust(verb: &str, ca: &Path, root: &Path) -> ward_testkit::Output {
    ward()
        .args(["pki", "trust", verb])
        .arg(ca)
        .arg("--root")
        .arg(root)
        .run()
}

/// `ward ctl configure` against `b` with the system store at `bundle` and no CA file.
fn configure(b: &Backend, bundle: &Path) -> ward_testkit::Output {
    b.ctl_configure().env("SSL_CERT_FILE", bundle).run()
}

#[test]
fn an_installed_ca_is_trusted_by_the_system_and_ctl_and_uninstalled_it_is_not() {
    require_tool("update-ca-certificates");
    let d = TempDir::new();
    let root = d.join("root");
    debian_tree(&root);
    let b = Backend::start(true);
    let ca = b.ca().unwrap();
    let bundle = root.join("etc/ssl/certs/ca-certificates.crt");
    trust("check", &ca, &root).fails_with(1);
    let out = trust("install", &ca, &root).ok();
    assert!(out.stdout.contains("now holds it"), "{}", out.stdout);
    let anchors = root.join("usr/local/share/ca-certificates");
    let names: Vec<String> = std::fs::read_dir(&anchors)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.len() == 1 && names[0].starts_with("ward-test-ca-") && names[0].ends_with(".crt"),
        "{names:?}"
    );
    let anchor = anchors.join(&names[0]);
    // Another CA with the same name gets a file of its own.
    ward()
        .args(["pki", "init-ca", "--cn", "Test CA", "--dir"])
        .arg(d.join("twin"))
        .run()
        .ok();
    trust("install", &d.join("twin/ca.pem"), &root).ok();
    assert_eq!(std::fs::read_dir(&anchors).unwrap().count(), 2);
    trust("uninstall", &d.join("twin/ca.pem"), &root).ok();
    assert!(anchor.is_file(), "the twin's uninstall left this CA");
    // Twice is fine.
    trust("install", &ca, &root).ok();
    let out = trust("check", &ca, &root).ok();
    assert!(out.stdout.contains("trusts it"), "{}", out.stdout);
    // Every client reading the system bundle trusts the backend now: ward ctl with no CA file.
    configure(&b, &bundle).ok();
    // Uninstalled: gone from the bundle, the other CA kept.
    trust("uninstall", &ca, &root).ok();
    assert!(!anchor.exists());
    trust("check", &ca, &root).fails_with(1);
    trust("check", &root.join("other-ca/ca.pem"), &root).ok();
    let out = configure(&b, &bundle);
    assert!(
        !out.success() && out.stderr.contains("the system's trusted roots"),
        "{}",
        out.stderr
    );
}

#[test]
fn leaves_keys_and_systems_without_a_store_are_refused() {
    let d = TempDir::new();
    let root = d.join("root");
    debian_tree(&root);
    let tls = ward_testkit::pki::bootstrap(
        d.path(),
        "ca: {cn: Test CA}\nbackends:\n  - name: localhost\n    hosts: [127.0.0.1]\n",
    );
    for (file, why) in [
        ("localhost.pem", "is not a CA (no basicConstraints CA:TRUE)"),
        ("localhost-key.pem", "holds a private key"),
    ] {
        let out = trust("install", &tls.join(file), &root);
        assert!(!out.success(), "{}", out.stdout);
        assert!(out.stderr.contains(why), "{file}: {}", out.stderr);
    }
    let out = trust("install", &tls.join("ca.pem"), &d.join("empty"));
    assert!(!out.success());
    assert!(
        out.stderr.contains("no system trust store found") && out.stderr.contains("macOS:"),
        "{}",
        out.stderr
    );
    assert!(
        std::fs::read_dir(root.join("usr/local/share/ca-certificates"))
            .unwrap()
            .next()
            .is_none(),
        "nothing installed"
    );
}
