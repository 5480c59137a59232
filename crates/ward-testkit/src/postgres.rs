//! A throwaway PostgreSQL 15 cluster on 127.0.0.1 with TLS from files the test chooses.
//!
//! `initdb` runs once per test run (the template is shared by every test process, created
//! atomically) and each cluster is a copy of it, so a cluster starts in well under a second.
//! `initdb` refuses to run as root, so as root the server runs as the `postgres` user.

use crate::{free_port, Command, Output, TempDir};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where Debian installs PostgreSQL 15's server binaries.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// The server's TLS files; copied into the data directory, owned by the server's user, key 0600.
#[derive(Debug, Clone)]
pub struct PgTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: Option<PathBuf>,
    pub crl: Option<PathBuf>,
}

/// A running cluster; stopped and removed on drop.
pub struct PgCluster {
    pub port: u16,
    pub data: PathBuf,
    pub socket_dir: PathBuf,
    log: PathBuf,
    _root: TempDir,
}

fn bin(name: &str) -> String {
    format!("{PG_BIN}/{name}")
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// uid and gid of the `postgres` user.
fn postgres_ids() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"postgres") && f.len() > 3)
                .then(|| (f[2].parse().ok(), f[3].parse().ok()))
                .and_then(|(u, g)| Some((u?, g?)))
        })
        .expect("no `postgres` user; run ./scripts/test.sh, which installs postgresql")
}

/// A command run as the server's user (`postgres` when we are root).
fn as_server_user(program: &str) -> Command {
    if is_root() {
        Command::new("runuser").args(["-u", "postgres", "--", program])
    } else {
        Command::new(program)
    }
}

fn give_to_server_user(path: &Path) {
    if is_root() {
        let (u, g) = postgres_ids();
        std::os::unix::fs::chown(path, Some(u), Some(g)).expect("chown to postgres");
    }
}

/// The initdb'd template, made once per test run.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        assert!(
            Path::new(&bin("initdb")).exists(),
            "PostgreSQL 15 is not installed at {PG_BIN}; run ./scripts/test.sh, which installs postgresql"
        );
        let base = std::env::temp_dir().join(format!("ward-testkit-pg15-{}", run_id()));
        std::fs::create_dir_all(&base).expect("create template base");
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).expect("chmod base");
        let done = base.join("template");
        if done.join("PG_VERSION").exists() {
            return done;
        }
        let staging = base.join(format!("staging-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir(&staging).expect("create staging");
        give_to_server_user(&staging);
        as_server_user(&bin("initdb"))
            .args(["-D"])
            .arg(&staging)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"])
            .run()
            .ok();
        // Another test process may have won the race; either template is good.
        if std::fs::rename(&staging, &done).is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        done
    })
}

/// Identifies this test run, so the template is shared by the test processes of one
/// `cargo test` and never reused from an older run: the parent (cargo or nextest) pid.
fn run_id() -> String {
    std::env::var("WARD_TEST_RUN_ID")
        .unwrap_or_else(|_| std::os::unix::process::parent_id().to_string())
}

impl PgCluster {
    /// Starts a cluster. `hba` is the whole pg_hba.conf; a `local all all trust` line is
    /// prepended so the test can administer the server over its Unix socket.
    pub fn start(tls: Option<&PgTls>, hba: &str) -> Self {
        let root = TempDir::new();
        let data = root.join("data");
        Command::new("cp")
            .arg("-a")
            .arg(template())
            .arg(&data)
            .run()
            .ok();
        let socket_dir = root.join("sock");
        std::fs::create_dir(&socket_dir).expect("socket dir");
        give_to_server_user(&socket_dir);
        let port = free_port();
        let mut conf = format!(
            "\n# ward-testkit\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n",
            socket_dir.display()
        );
        if let Some(t) = tls {
            let put = |src: &Path, name: &str, mode: u32| -> PathBuf {
                let dst = data.join(name);
                std::fs::copy(src, &dst).expect("copy TLS file");
                std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(mode))
                    .expect("chmod");
                give_to_server_user(&dst);
                dst
            };
            conf.push_str("ssl = on\n");
            conf.push_str(&format!(
                "ssl_cert_file = '{}'\n",
                put(&t.cert, "server.crt", 0o644).display()
            ));
            conf.push_str(&format!(
                "ssl_key_file = '{}'\n",
                put(&t.key, "server.key", 0o600).display()
            ));
            if let Some(ca) = &t.ca {
                conf.push_str(&format!(
                    "ssl_ca_file = '{}'\n",
                    put(ca, "root.crt", 0o644).display()
                ));
            }
            if let Some(crl) = &t.crl {
                conf.push_str(&format!(
                    "ssl_crl_file = '{}'\n",
                    put(crl, "root.crl", 0o644).display()
                ));
            }
        }
        let conf_path = data.join("postgresql.conf");
        let mut existing = std::fs::read_to_string(&conf_path).expect("read postgresql.conf");
        existing.push_str(&conf);
        std::fs::write(&conf_path, existing).expect("write postgresql.conf");
        let hba_path = data.join("pg_hba.conf");
        std::fs::write(&hba_path, format!("local all all trust\n{hba}\n"))
            .expect("write pg_hba.conf");
        give_to_server_user(&hba_path);
        let log = socket_dir.join("postgres.log");
        let cluster = PgCluster {
            port,
            data,
            socket_dir,
            log,
            _root: root,
        };
        let out = as_server_user(&bin("pg_ctl"))
            .arg("-D")
            .arg(&cluster.data)
            .arg("-l")
            .arg(&cluster.log)
            .args(["-w", "-t", "30", "start"])
            .run();
        if !out.success() {
            panic!(
                "PostgreSQL did not start: {}\nserver log:\n{}",
                out.stderr,
                cluster.server_log()
            );
        }
        cluster
    }

    /// The server's log so far.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs SQL as the superuser over the Unix socket in the `postgres` database; `-At` output.
    pub fn sql(&self, sql: &str) -> Output {
        self.sql_in("postgres", sql)
    }

    /// Runs SQL as the superuser over the Unix socket in `database`.
    pub fn sql_in(&self, database: &str, sql: &str) -> Output {
        let port = self.port.to_string();
        Command::new(bin("psql"))
            .arg("-h")
            .arg(&self.socket_dir)
            .args(["-p", &port, "-U", "postgres", "-d", database])
            .args(["-v", "ON_ERROR_STOP=1", "-Atc", sql])
            .run()
    }

    /// Runs SQL with a libpq connection string over TCP (as the test user, so libpq's own
    /// checks on client key files apply).
    pub fn psql(&self, conninfo: &str, sql: &str) -> Output {
        Command::new(bin("psql"))
            .args([conninfo, "-v", "ON_ERROR_STOP=1", "-Atc", sql])
            .env("PGCONNECT_TIMEOUT", "10")
            .run()
    }

    /// Stops the server (fast shutdown); the data directory stays until drop.
    pub fn stop(&self) {
        as_server_user(&bin("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .run()
            .ok();
    }

    /// Asks the server to re-read its configuration.
    pub fn reload(&self) {
        as_server_user(&bin("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .arg("reload")
            .run()
            .ok();
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = as_server_user(&bin("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .run();
    }
}
