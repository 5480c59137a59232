//! A throwaway PostgreSQL 15 cluster on 127.0.0.1 with TLS from files the test chooses,
//! and [`GuidePg`], the guide's server (certificates, role, database, pg_hba.conf) ready to
//! connect to.
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
        cluster.start_again();
        cluster
    }

    /// Starts the server on its data directory and port (after `stop` or
    /// `stop_immediate`); panics with the server log if it does not start.
    pub fn start_again(&self) {
        let out = as_server_user(&bin("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(["-w", "-t", "30", "start"])
            .run();
        if !out.success() {
            panic!(
                "PostgreSQL did not start: {}\nserver log:\n{}",
                out.stderr,
                self.server_log()
            );
        }
    }

    /// `pg_ctl stop -m immediate`: the server dies without a shutdown checkpoint, which
    /// clients cannot tell from a crash; the data directory stays (see `start_again`).
    pub fn stop_immediate(&self) {
        self.pg_ctl_stop("immediate").ok();
    }

    /// `pg_ctl stop -m MODE -w` on this cluster, as the server's user.
    fn pg_ctl_stop(&self, mode: &str) -> Output {
        as_server_user(&bin("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", mode, "-w", "stop"])
            .run()
    }

    /// Replaces pg_hba.conf with `hba` (after the `local all all trust` line `start` also
    /// writes) and reloads; returns once new connections get the new rules.
    pub fn set_hba(&self, hba: &str) {
        let hba_path = self.data.join("pg_hba.conf");
        std::fs::write(&hba_path, format!("local all all trust\n{hba}\n"))
            .expect("write pg_hba.conf");
        give_to_server_user(&hba_path);
        self.reload();
    }

    /// Asks the server to re-read its configuration and waits until it has (a new session
    /// reports a newer `pg_conf_load_time()`), so the next connection sees the change.
    pub fn reload(&self) {
        let load_time = || self.sql("SELECT pg_conf_load_time()").ok().stdout;
        let before = load_time();
        as_server_user(&bin("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .arg("reload")
            .run()
            .ok();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while load_time() == before {
            assert!(
                std::time::Instant::now() < deadline,
                "PostgreSQL did not reload within 10 s\nserver log:\n{}",
                self.server_log()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
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
        self.pg_ctl_stop("fast").ok();
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Not `.ok()`: a cluster a test already stopped is fine to drop.
        let _ = self.pg_ctl_stop("immediate");
    }
}

/// The `ward pki bootstrap` plan of the guide's PostgreSQL: the server's names (the guide's
/// `10.0.0.43` is replaced by what a test can reach) and the event store's client.
const GUIDE_PLAN: &str = "ca: {cn: Ward CA}
postgres:
  - name: postgres.example.com
    hosts: [postgres, localhost, 127.0.0.1]
postgres_clients:
  - user: ward
";

/// The guide's pg_hba.conf, on loopback: the superuser is rejected over TLS, the event
/// store's role logs in with its certificate.
const GUIDE_HBA: &str = "hostssl all postgres 127.0.0.1/32 reject
hostssl all postgres ::1/128 reject
hostssl ward_events ward 127.0.0.1/32 cert";

/// The guide's (seed 000) PostgreSQL on 127.0.0.1: a CA and certificates issued by
/// `ward pki bootstrap` (the real binary), `ssl = on` with the CA as `ssl_ca_file`, a
/// database `ward_events` owned by the role `ward` (LOGIN, not a superuser; as the owner
/// it may create tables in schema public), and the guide's pg_hba.conf:
///
/// ```text
/// hostssl all postgres 127.0.0.1/32 reject
/// hostssl all postgres ::1/128 reject
/// hostssl ward_events ward 127.0.0.1/32 cert
/// ```
///
/// Stopped and removed when dropped, also when the test panics.
pub struct GuidePg {
    pub cluster: PgCluster,
    /// Directory with `ca.pem`, `ca-key.pem`, `postgres.example.com.pem` /
    /// `postgres.example.com-key.pem` (SANs: postgres.example.com, postgres, localhost,
    /// 127.0.0.1), `ward.pem` / `ward-key.pem` (client certificate, CN=ward, clientAuth).
    /// Keys are 0600 and owned by the test's user, as libpq and Ward require.
    pub tls: PathBuf,
    _dir: TempDir,
}

impl GuidePg {
    /// Issues the certificates, starts the server and creates the role and database.
    pub fn start() -> GuidePg {
        let dir = TempDir::new();
        let tls = crate::pki::bootstrap(dir.path(), GUIDE_PLAN);
        // The server's own copies live in its data directory; the directory itself is
        // opened up so a test may point the server at a file here (keys stay 0600).
        std::fs::set_permissions(&tls, std::fs::Permissions::from_mode(0o755))
            .expect("chmod tls dir");
        let cluster = PgCluster::start(
            Some(&PgTls {
                cert: tls.join("postgres.example.com.pem"),
                key: tls.join("postgres.example.com-key.pem"),
                ca: Some(tls.join("ca.pem")),
                crl: None,
            }),
            GUIDE_HBA,
        );
        cluster.sql("CREATE ROLE ward LOGIN").ok();
        cluster.sql("CREATE DATABASE ward_events OWNER ward").ok();
        // A commit must be on disk (in the WAL) before PostgreSQL confirms it, as on any
        // production server, or `stop -m immediate` loses confirmed transactions and a test
        // of "no acknowledged event lost" would be testing the harness. (fsync may stay off:
        // the tests crash PostgreSQL, not the machine.)
        cluster.sql("ALTER SYSTEM SET synchronous_commit = on").ok();
        cluster.reload();
        GuidePg {
            cluster,
            tls,
            _dir: dir,
        }
    }

    /// The event store's key=value DSN: `host=postgres.example.com hostaddr=127.0.0.1
    /// port=P dbname=ward_events user=ward sslmode=verify-full sslrootcert=… sslcert=…
    /// sslkey=…`.
    pub fn dsn(&self) -> String {
        self.env()
            .iter()
            .map(|(k, v)| {
                let key = match k.as_str() {
                    "PGHOST" => "host",
                    "PGHOSTADDR" => "hostaddr",
                    "PGPORT" => "port",
                    "PGDATABASE" => "dbname",
                    "PGUSER" => "user",
                    "PGSSLMODE" => "sslmode",
                    "PGSSLROOTCERT" => "sslrootcert",
                    "PGSSLCERT" => "sslcert",
                    "PGSSLKEY" => "sslkey",
                    other => unreachable!("no DSN key for {other}"),
                };
                format!("{key}={v}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The same as `PG*` variables (the guide's way): PGHOST=postgres.example.com,
    /// PGHOSTADDR, PGPORT, PGDATABASE, PGUSER, PGSSLMODE, PGSSLROOTCERT, PGSSLCERT, PGSSLKEY.
    pub fn env(&self) -> Vec<(String, String)> {
        let file = |name: &str| self.tls.join(name).display().to_string();
        [
            ("PGHOST", "postgres.example.com".to_string()),
            ("PGHOSTADDR", "127.0.0.1".to_string()),
            ("PGPORT", self.cluster.port.to_string()),
            ("PGDATABASE", "ward_events".to_string()),
            ("PGUSER", "ward".to_string()),
            ("PGSSLMODE", "verify-full".to_string()),
            ("PGSSLROOTCERT", file("ca.pem")),
            ("PGSSLCERT", file("ward.pem")),
            ("PGSSLKEY", file("ward-key.pem")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}
