//! Env files (`--env-file`, /etc/default/ward-*): `KEY=VALUE` lines, comments, `export`,
//! quotes. The loader reads a path and sets variables, so each input is written to a file
//! and the variables it set are removed again afterwards (libFuzzer runs one input at a
//! time on one thread). Any bytes give a count or an error — never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn scratch() -> &'static std::path::Path {
    static PATH: OnceLock<std::path::PathBuf> = OnceLock::new();
    PATH.get_or_init(|| std::env::temp_dir().join(format!("ward-fuzz-env-{}", std::process::id())))
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    if std::fs::write(path, data).is_err() {
        return;
    }
    let before: std::collections::HashSet<std::ffi::OsString> =
        std::env::vars_os().map(|(k, _)| k).collect();
    let _ = ward_types::settings::load_env_file(path);
    for (k, _) in std::env::vars_os() {
        if !before.contains(&k) {
            std::env::remove_var(&k);
        }
    }
});
