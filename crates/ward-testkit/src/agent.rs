//! Real `ward agent` processes against a testkit `Backend`, and a backend with agent mTLS
//! (a CA, the backend's certificate and agent certificates from one `ward pki bootstrap`,
//! plus a CRL from `ward pki crl`).

use crate::backend::Backend;
use crate::{free_port, ward, ward_bin, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The password the testkit gives the `agent` user when agents use passwords.
pub const AGENT_PASSWORD: &str = "agent-password-1";

/// A backend whose agent port requires client certificates. `agents` are the certificate
/// names bootstrapped next to the backend's (`tls/NAME.pem`, `tls/NAME-key.pem`); the CRL
/// is `tls/crl.pem` (empty at first; see `revoke`).
pub fn mtls_backend(agents: &[&str], extra: &[&str]) -> Backend {
    mtls_backend_in(agents, extra, false)
}

/// `mtls_backend` that also holds its CA (`--ca-dir tls`): certificates can be revoked
/// through the API, which re-signs `tls/crl.pem`.
pub fn mtls_backend_holding_ca(agents: &[&str], extra: &[&str]) -> Backend {
    mtls_backend_in(agents, extra, true)
}

fn mtls_backend_in(agents: &[&str], extra: &[&str], holds_ca: bool) -> Backend {
    let dir = TempDir::new();
    let mut plan = String::from(
        "ca: {cn: Test CA}\nbackends:\n  - name: localhost\n    hosts: [127.0.0.1]\nagents:\n",
    );
    for a in agents {
        plan.push_str(&format!("  - name: {a}\n"));
    }
    let tls = crate::pki::bootstrap(dir.path(), &plan);
    publish_crl(&tls);
    let mut args: Vec<String> = vec![
        "--agent-auth-cert-file".into(),
        tls.join("localhost.pem").display().to_string(),
        "--agent-auth-key-file".into(),
        tls.join("localhost-key.pem").display().to_string(),
        "--agent-auth-trusted-ca-file".into(),
        tls.join("ca.pem").display().to_string(),
        "--agent-auth-crl-urls".into(),
        format!("file://{}", tls.join("crl.pem").display()),
    ];
    if holds_ca {
        args.extend(["--ca-dir".into(), tls.display().to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Backend::start_in(dir, Some(tls), &args, None)
}

/// A TLS backend whose `agent` user has `AGENT_PASSWORD` (agents log in with passwords).
pub fn password_backend(extra: &[&str]) -> Backend {
    let dir = TempDir::new();
    let tls = crate::pki::bootstrap(
        dir.path(),
        "ca: {cn: Test CA}\nbackends:\n  - name: localhost\n    hosts: [127.0.0.1]\n",
    );
    Backend::start_in(dir, Some(tls), extra, Some(AGENT_PASSWORD))
}

/// `ward pki crl` of the test CA into `tls/crl.pem`.
pub fn publish_crl(tls: &Path) {
    ward()
        .args(["pki", "crl", "--ca-dir"])
        .arg(tls)
        .arg("--out")
        .arg(tls.join("crl.pem"))
        .run()
        .ok();
}

/// Revokes `tls/NAME.pem` and publishes the CRL again.
pub fn revoke(tls: &Path, name: &str) {
    ward()
        .args(["pki", "revoke", "--reason", "keyCompromise", "--ca-dir"])
        .arg(tls)
        .arg("--cert")
        .arg(tls.join(format!("{name}.pem")))
        .run()
        .ok();
    publish_crl(tls);
}

/// A running `ward agent`.
pub struct Agent {
    pub dir: TempDir,
    pub name: String,
    pub api_port: u16,
    /// The agent socket's port (TCP and UDP).
    pub socket_port: u16,
    /// The StatsD listener's port (UDP).
    pub statsd_port: u16,
    config: PathBuf,
    child: Option<Child>,
}

impl Agent {
    /// Starts `ward agent start` with `agent.yml` = `yaml` plus name, cache-dir, api-port
    /// socket-port and statsd-metrics-port (free ports: agents of several tests run at once).
    pub fn start(name: &str, yaml: &str) -> Agent {
        let dir = TempDir::new();
        let (api_port, socket_port, statsd_port) = (free_port(), free_port(), free_port());
        let config = dir.join("agent.yml");
        std::fs::write(
            &config,
            format!(
                "name: {name}\ncache-dir: {}\napi-host: 127.0.0.1\napi-port: {api_port}\nsocket-port: {socket_port}\nstatsd-metrics-port: {statsd_port}\n{yaml}",
                dir.join("cache").display(),
            ),
        )
        .expect("write agent.yml");
        let mut a = Agent {
            dir,
            name: name.into(),
            api_port,
            socket_port,
            statsd_port,
            config,
            child: None,
        };
        a.spawn();
        a
    }

    /// agent.yml lines for `backend` over wss with the client certificate `tls/NAME.pem`.
    pub fn mtls_yaml(backend: &Backend, cert: &str) -> String {
        let tls = backend.tls.as_ref().expect("a TLS backend");
        format!(
            "backend-url: [wss://localhost:{}]\ntrusted-ca-file: {}\ncert-file: {}\nkey-file: {}\n",
            backend.agent_port,
            tls.join("ca.pem").display(),
            tls.join(format!("{cert}.pem")).display(),
            tls.join(format!("{cert}-key.pem")).display()
        )
    }

    /// agent.yml lines for `backend` with the `agent` user's password.
    pub fn password_yaml(backend: &Backend, password: &str) -> String {
        let scheme = if backend.tls.is_some() { "wss" } else { "ws" };
        let mut y = format!(
            "backend-url: [{scheme}://localhost:{}]\nuser: agent\npassword: \"{password}\"\n",
            backend.agent_port
        );
        if let Some(ca) = backend.ca() {
            y.push_str(&format!("trusted-ca-file: {}\n", ca.display()));
        }
        y
    }

    /// (Re)starts the process and waits until its local API answers.
    pub fn spawn(&mut self) {
        let child = std::process::Command::new(ward_bin())
            .args(["agent", "start", "--config-file"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join("agent.log"))
                    .expect("log file"),
            )
            .spawn()
            .expect("start ward agent");
        let (port, log) = (self.api_port, self.dir.join("agent.log"));
        crate::wait_listening(self.child.insert(child), port, "ward agent's API", &log);
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }

    /// POSTs an event to the agent's local API: (status, body).
    pub fn post_event(&self, json: &str) -> (u16, String) {
        let out = crate::Command::new("curl")
            .args([
                "-s",
                "-w",
                "\n%{http_code}",
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "--data-binary",
            ])
            .arg(json)
            .arg(format!("http://127.0.0.1:{}/events", self.api_port))
            .run();
        let (body, code) = out.stdout.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `wait_for` (`secs` at most), with the agent's and the backend's logs when it times out.
pub fn wait_logged<T>(
    secs: u64,
    b: &Backend,
    a: &Agent,
    what: &str,
    f: impl FnMut() -> Option<T>,
) -> T {
    poll(secs, f, || {
        format!(
            "timed out after {secs}s waiting for {what}\nagent:\n{}\nbackend:\n{}",
            a.log(),
            b.log()
        )
    })
}

/// Polls `f` every 200 ms until it returns Some, or panics with `what` after `secs`.
pub fn wait_for<T>(secs: u64, what: &str, f: impl FnMut() -> Option<T>) -> T {
    poll(secs, f, || {
        format!("timed out after {secs}s waiting for {what}")
    })
}

/// `f` every 200 ms until it answers, for `secs` at most; then a panic saying `timed_out`.
fn poll<T>(secs: u64, mut f: impl FnMut() -> Option<T>, timed_out: impl Fn() -> String) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{}",
            timed_out()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
