//! Shortcuts for the `ward pki` and `openssl` steps tests repeat.

use crate::{ward, Command, Output};
use std::path::Path;

/// `ward pki init-ca --cn CN [EXTRA…] --dir DIR`, which must succeed.
pub fn init_ca(dir: &Path, cn: &str, extra: &[&str]) {
    ward()
        .args(["pki", "init-ca", "--cn", cn])
        .args(extra.to_vec())
        .arg("--dir")
        .arg(dir)
        .run()
        .ok();
}

/// `ward pki issue --profile PROFILE --cn CN [EXTRA…] --dir DIR`, which must succeed.
pub fn issue(dir: &Path, profile: &str, cn: &str, extra: &[&str]) -> Output {
    ward()
        .args(["pki", "issue", "--profile", profile, "--cn", cn])
        .args(extra.to_vec())
        .arg("--dir")
        .arg(dir)
        .run()
        .ok()
}

/// Writes `plan` to `dir/plan.yml`, runs `ward pki bootstrap` into `dir/tls`, returns that.
pub fn bootstrap(dir: &Path, plan: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("plan.yml"), plan).expect("write plan");
    let tls = dir.join("tls");
    ward()
        .args(["pki", "bootstrap", "plan.yml", "--dir"])
        .arg(&tls)
        .current_dir(dir)
        .run()
        .ok();
    tls
}

/// `ward pki info --format json FILE` as JSON.
pub fn info_json(file: &Path) -> serde_json::Value {
    let out = ward()
        .args(["pki", "info", "--format", "json"])
        .arg(file)
        .run()
        .ok();
    serde_json::from_str(&out.stdout).expect("ward pki info prints JSON")
}

/// `openssl verify -CAfile ca.pem -purpose PURPOSE [EXTRA…] CERT` in `dir`.
pub fn openssl_verify(dir: &Path, purpose: &str, extra: &[&str], cert: &str) -> Output {
    Command::new("openssl")
        .args(["verify", "-CAfile", "ca.pem", "-purpose", purpose])
        .args(extra.to_vec())
        .arg(cert)
        .current_dir(dir)
        .run()
}

/// `openssl ARGS…` in `dir`.
pub fn openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args.to_vec())
        .current_dir(dir)
        .run()
}
