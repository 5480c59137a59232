//! Ward's one test harness: temp dirs, free loopback ports, running the real `ward` binary
//! and the real peers (`openssl`, `cfssl`, PostgreSQL 15), and CA fixtures.
//!
//! The peers are never optional: a missing tool fails the test with the command that
//! installs it, so a green run always means the interoperability was really checked.
//!
//! ```no_run
//! let dir = ward_testkit::TempDir::new();
//! let out = ward_testkit::Command::new("openssl").arg("version").run();
//! assert!(out.success());
//! ```

#![forbid(unsafe_code)]

pub mod agent;
pub mod backend;
pub mod fixtures;
pub mod pki;
pub mod postgres;
mod process;

pub use process::{Command, Output};

use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// A temporary directory removed on drop; world-traversable so that a PostgreSQL server
/// running as `postgres` can reach files the test puts in it.
pub struct TempDir {
    dir: tempfile::TempDir,
}

impl TempDir {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ward-test-")
            .tempdir()
            .expect("create a temp dir");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod temp dir");
        TempDir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(p)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

/// A TCP port free on 127.0.0.1 at the time of the call.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Waits (up to 20 s) until a process just started listens on 127.0.0.1:`port`; panics
/// with its log file if it exits first or never listens. The caller keeps the child where
/// its Drop stops it, so a failed start leaves no process behind.
pub fn wait_listening(child: &mut std::process::Child, port: u16, what: &str, log: &Path) {
    if let Err(e) = try_wait_listening(child, port, what, log) {
        panic!("{e}");
    }
}

/// `wait_listening`, with the process's early exit (and its log) as an error rather than
/// a panic, for callers that may try again (another test took a port meanwhile).
pub fn try_wait_listening(
    child: &mut std::process::Child,
    port: u16,
    what: &str,
    log: &Path,
) -> Result<(), String> {
    let log = || std::fs::read_to_string(log).unwrap_or_default();
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited ({status}): {}", log()));
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "{what} did not listen on port {port}: {}",
            log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(())
}

/// The `ward` binary under test: `CARGO_BIN_EXE_ward` when the test belongs to the `ward`
/// crate, else `target/<profile>/ward` next to the test executable.
pub fn ward_bin() -> PathBuf {
    if let Some(p) = option_env!("CARGO_BIN_EXE_ward") {
        return PathBuf::from(p);
    }
    if let Ok(p) = std::env::var("WARD_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/test-xxxx → target/<profile>/ward
    let candidate = exe
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("ward"))
        .expect("target dir");
    assert!(
        candidate.exists(),
        "the ward binary is not built at {}; run the tests with `cargo test --workspace`",
        candidate.display()
    );
    candidate
}

/// `Command` for the `ward` binary.
pub fn ward() -> Command {
    Command::new(ward_bin())
}

/// Fails the test unless `tool` is on PATH, naming the fix.
pub fn require_tool(tool: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(tool);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{tool}` is not installed; run ./scripts/test.sh, which installs the test dependencies (openssl, golang-cfssl, postgresql)");
}
