//! A real `ward backend` process on 127.0.0.1, initialised in a temp dir, killed on drop.

use crate::{free_port, ward, ward_bin, TempDir};
use std::path::PathBuf;
use std::process::{Child, Stdio};

/// The admin the harness creates.
pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "correct horse battery";

/// A running backend.
pub struct Backend {
    pub dir: TempDir,
    pub api_port: u16,
    pub agent_port: u16,
    pub dashboard_port: u16,
    pub tls: Option<PathBuf>,
    child: Option<Child>,
    extra: Vec<String>,
}

impl Backend {
    /// Initialises a state dir and starts a backend; with `tls`, a CA and a certificate for
    /// localhost/127.0.0.1 are bootstrapped into `dir/tls` and served.
    pub fn start(tls: bool) -> Backend {
        Self::start_with(tls, &[])
    }

    pub fn start_with(tls: bool, extra: &[&str]) -> Backend {
        let dir = TempDir::new();
        let tls_dir = tls.then(|| {
            crate::pki::bootstrap(
                dir.path(),
                "ca: {cn: Test CA}\nbackends:\n  - name: localhost\n    hosts: [127.0.0.1]\n",
            )
        });
        Self::start_in(dir, tls_dir, extra, None)
    }

    /// Initialises `dir/state` (the `agent` user with `agent_password`, if given) and starts
    /// a backend serving `tls/localhost.pem` when `tls` is given.
    pub fn start_in(
        dir: TempDir,
        tls: Option<PathBuf>,
        extra: &[&str],
        agent_password: Option<&str>,
    ) -> Backend {
        ward()
            .args(["backend", "init", "--state-dir"])
            .arg(dir.join("state"))
            .args([
                "--cluster-admin-username",
                ADMIN,
                "--cluster-admin-password",
                ADMIN_PASSWORD,
            ])
            .args(
                agent_password
                    .map(|p| vec!["--agent-password", p])
                    .unwrap_or_default(),
            )
            .run()
            .ok();
        let mut b = Backend {
            dir,
            api_port: free_port(),
            agent_port: free_port(),
            dashboard_port: free_port(),
            tls,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        // A free port can be taken by a test running beside this one before the backend
        // binds it: then it is tried again on other ports.
        for _ in 0..4 {
            match b.try_spawn() {
                Ok(()) => return b,
                Err(e) if e.contains("Address already in use") => {
                    b.kill9();
                    (b.api_port, b.agent_port, b.dashboard_port) =
                        (free_port(), free_port(), free_port());
                }
                Err(e) => panic!("{e}"),
            }
        }
        b.spawn();
        b
    }

    /// The API's base URL.
    pub fn url(&self) -> String {
        format!(
            "{}://localhost:{}",
            if self.tls.is_some() { "https" } else { "http" },
            self.api_port
        )
    }

    /// The CA file clients should trust.
    pub fn ca(&self) -> Option<PathBuf> {
        self.tls.as_ref().map(|t| t.join("ca.pem"))
    }

    /// (Re)starts the process and waits until it accepts connections.
    pub fn spawn(&mut self) {
        if let Err(e) = self.try_spawn() {
            panic!("{e}");
        }
    }

    /// `spawn`, with a start that failed (the process exited, with its log) as an error.
    fn try_spawn(&mut self) -> Result<(), String> {
        let mut cmd = std::process::Command::new(ward_bin());
        cmd.args(["backend", "start", "--state-dir"])
            .arg(self.dir.join("state"))
            .args([
                "--api-listen-address",
                &format!("127.0.0.1:{}", self.api_port),
                "--agent-host",
                "127.0.0.1",
                "--agent-port",
                &self.agent_port.to_string(),
            ])
            .args([
                "--dashboard-host",
                "127.0.0.1",
                "--dashboard-port",
                &self.dashboard_port.to_string(),
            ])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(self.dir.join("backend.out")).expect("stdout file"))
            .stderr(std::fs::File::create(self.dir.join("backend.log")).expect("log file"));
        if let Some(t) = &self.tls {
            cmd.arg("--cert-file")
                .arg(t.join("localhost.pem"))
                .arg("--key-file")
                .arg(t.join("localhost-key.pem"));
        }
        let (port, log) = (self.api_port, self.dir.join("backend.log"));
        let child = self.child.insert(cmd.spawn().expect("start ward backend"));
        crate::try_wait_listening(child, port, "ward backend", &log)?;
        // The API port answers before the agent port is bound, and a port taken by another
        // test answers too: the backend's own line, printed once every listener is bound,
        // says that it is this backend that listens.
        let out = self.dir.join("backend.out");
        let start = std::time::Instant::now();
        while !std::fs::read_to_string(&out)
            .unwrap_or_default()
            .contains("ward backend: API on")
        {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "ward backend exited ({status}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ));
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(20),
                "ward backend did not say it listens: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGKILL, as a crash.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("backend.log")).unwrap_or_default()
    }

    /// A `ward ctl` command with its own config file, for this backend.
    pub fn ctl(&self) -> crate::Command {
        ward()
            .env("WARD_CTL_CONFIG", self.dir.join("ctl.json"))
            .arg("ctl")
    }

    /// `ward ctl event info ENTITY CHECK --format json` (after [`Backend::ctl_login`]): the
    /// event, or None when there is none (yet).
    pub fn event(&self, entity: &str, check: &str) -> Option<serde_json::Value> {
        let out = self
            .ctl()
            .args(["event", "info", entity, check, "--format", "json"])
            .run();
        out.success()
            .then(|| serde_json::from_str(&out.stdout).ok())
            .flatten()
    }

    /// `ward ctl create -f` of `yaml` (after [`Backend::ctl_login`]): its exit status and
    /// what it printed.
    pub fn create(&self, yaml: &str) -> (bool, String) {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let f = self.dir.join(format!("resources-{n}.yml"));
        std::fs::write(&f, yaml).expect("write the resources");
        let out = self.ctl().args(["create", "-f"]).arg(&f).run();
        (out.success(), format!("{}{}", out.stdout, out.stderr))
    }

    /// `ward ctl configure -n --url … --username admin --password …`, for more flags.
    pub fn ctl_configure(&self) -> crate::Command {
        self.ctl().args([
            "configure",
            "-n",
            "--url",
            &self.url(),
            "--username",
            ADMIN,
            "--password",
            ADMIN_PASSWORD,
        ])
    }

    /// `ward ctl configure` as the admin.
    pub fn ctl_login(&self) {
        let mut c = self.ctl_configure();
        if let Some(ca) = self.ca() {
            c = c.arg("--trusted-ca-file").arg(ca);
        }
        c.run().ok();
    }

    /// `curl` against the API: `-s -w '\n%{http_code}'`, trusting the test CA.
    /// An access token for `user` (`POST /auth` with Basic credentials), checking that
    /// the login answers Sensu's body (access and refresh tokens, expiry).
    pub fn token(&self, user: &str, password: &str) -> String {
        let (code, body) = self.curl(&[
            "-u",
            &format!("{user}:{password}"),
            &format!("{}/auth", self.url()),
        ]);
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(v["expires_at"].as_i64().unwrap() > 0 && v["refresh_token"].is_string());
        v["access_token"].as_str().unwrap().to_string()
    }

    pub fn curl(&self, args: &[&str]) -> (u16, String) {
        let mut c = crate::Command::new("curl").args(["-s", "-w", "\n%{http_code}"]);
        if let Some(ca) = self.ca() {
            c = c.arg("--cacert").arg(ca);
        }
        let out = c.args(args.to_vec()).run();
        let (body, code) = out.stdout.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill9();
    }
}
