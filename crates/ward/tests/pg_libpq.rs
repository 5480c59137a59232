//! Ward's libpq connection layer (`ward_pg::connect`, through `ward pg audit`) against the
//! guide's PostgreSQL 15: each `sslmode`, certificate, CRL, key and password-file case
//! that decides whether the event store connects.
//!
//! Every run clears the environment and sets HOME to a directory of the test's own, so
//! neither the machine's `PG*` variables nor its `~/.postgresql` or `~/.pgpass` take part.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use ward_testkit::postgres::{GuidePg, PG_BIN};
use ward_testkit::{free_port, pki, ward, Command, Output, TempDir};

/// A HOME of the test's own.
struct Home {
    dir: TempDir,
}

impl Home {
    fn new() -> Self {
        Home {
            dir: TempDir::new(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Puts `src` at `~/.postgresql/NAME`.
    fn postgresql_file(&self, name: &str, src: &Path) -> PathBuf {
        let d = self.dir.join(".postgresql");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(src, d.join(name)).unwrap();
        d.join(name)
    }

    /// Writes `text` at `~/NAME` with `mode`.
    fn file(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    /// `ward pg audit DSN --format json` with only HOME and `vars` in its environment.
    fn audit(&self, dsn: &str, vars: &[(String, String)]) -> Attempt {
        let mut cmd = ward()
            .env_clear()
            .env("HOME", self.path())
            .args(["pg", "audit", dsn, "--format", "json"]);
        for (k, v) in vars {
            cmd = cmd.env(k, v);
        }
        Attempt(cmd.run())
    }
}

/// What one connection attempt did.
struct Attempt(Output);

impl Attempt {
    /// The audit's own session, which must exist: the connection was made.
    #[track_caller]
    fn own_session(&self) -> serde_json::Value {
        let report: serde_json::Value = serde_json::from_str(&self.0.stdout).unwrap_or_else(|_| {
            panic!(
                "expected a connection, got {:?}\nstdout: {}\nstderr: {}",
                self.0.code, self.0.stdout, self.0.stderr
            )
        });
        report["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["own"] == true)
            .cloned()
            .unwrap_or_else(|| panic!("no own session in {report:#}"))
    }

    /// The one line a refused connection prints (exit 3, as a check plugin's UNKNOWN).
    #[track_caller]
    fn refused(&self) -> String {
        assert_eq!(
            self.0.code,
            Some(3),
            "expected a refusal\nstdout: {}\nstderr: {}",
            self.0.stdout,
            self.0.stderr
        );
        let out = self.0.stdout.trim_end();
        assert!(
            out.starts_with("UNKNOWN: ") && !out.contains('\n'),
            "one line expected: {out}"
        );
        out.to_string()
    }
}

/// The guide's DSN with `sslmode` replaced and the listed parameters removed.
fn dsn_with(pg: &GuidePg, sslmode: &str, without: &[&str]) -> String {
    pg.dsn()
        .split(' ')
        .filter(|kv| !without.iter().any(|k| kv.starts_with(&format!("{k}="))))
        .map(|kv| {
            if kv.starts_with("sslmode=") {
                format!("sslmode={sslmode}")
            } else {
                kv.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Serves `cert`/`key` from now on (`ward pg install-cert` reloads and checks the wire).
fn serve(pg: &GuidePg, cert: &Path, key: &Path) {
    ward()
        .args(["pg", "install-cert", "--pgdata"])
        .arg(&pg.cluster.data)
        .arg("--cert-chain")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .run()
        .ok();
}

/// A CA that is not the guide's, in `dir`.
fn rogue_ca(dir: &Path) -> PathBuf {
    pki::init_ca(dir, "Rogue CA", &[]);
    dir.join("ca.pem")
}

#[test]
fn verify_full_with_the_client_certificate_connects_by_dsn_and_by_pg_variables_alone() {
    let pg = GuidePg::start();
    let home = Home::new();
    let own = home.audit(&pg.dsn(), &[]).own_session();
    assert_eq!(own["ssl"], true);
    assert_eq!(own["client_dn"], "/CN=ward");
    assert_eq!(own["user"], "ward");
    assert_eq!(own["database"], "ward_events");
    // libpq agrees, and the role may create the event store's tables.
    let psql = pg
        .cluster
        .psql(
            &pg.dsn(),
            "CREATE TABLE events (id int); SELECT current_user",
        )
        .ok();
    assert_eq!(psql.stdout.lines().last(), Some("ward"), "{}", psql.stdout);
    // The guide's way: PG* variables, an empty connection string.
    let own = home.audit("", &pg.env()).own_session();
    assert_eq!(own["ssl"], true);
    assert_eq!(own["client_dn"], "/CN=ward");
    // PGAPPNAME names the session; the DSN's application_name wins over it.
    let mut env = pg.env();
    env.push(("PGAPPNAME".into(), "from-env".into()));
    assert_eq!(
        home.audit("", &env).own_session()["application"],
        "from-env"
    );
    assert_eq!(
        home.audit("application_name=from-dsn", &env).own_session()["application"],
        "from-dsn"
    );
}

#[test]
fn verify_full_checks_the_host_name_even_when_hostaddr_is_dialled() {
    let pg = GuidePg::start();
    let home = Home::new();
    let dsn = pg
        .dsn()
        .replace("host=postgres.example.com", "host=db.wrong.example");
    let line = home.audit(&dsn, &[]).refused();
    assert!(
        line.contains("server certificate for \"postgres.example.com\" (and 3 other names) does not match host name \"db.wrong.example\""),
        "{line}"
    );
    // Each of the certificate's names passes, an IP by its iPAddress SAN.
    for host in ["postgres", "localhost", "127.0.0.1"] {
        let dsn = pg
            .dsn()
            .replace("host=postgres.example.com", &format!("host={host}"));
        assert_eq!(home.audit(&dsn, &[]).own_session()["ssl"], true, "{host}");
    }
}

#[test]
fn a_server_certificate_for_another_name_fails_verify_full_but_passes_verify_ca() {
    let pg = GuidePg::start();
    let d = TempDir::new();
    // From the guide's CA, for other names.
    pki::issue(
        d.path(),
        "server",
        "db.other.example",
        &[
            "--hosts",
            "db.other.example,10.9.9.9",
            "--ca-dir",
            pg.tls.to_str().unwrap(),
        ],
    );
    serve(
        &pg,
        &d.join("db.other.example.pem"),
        &d.join("db.other.example-key.pem"),
    );
    let home = Home::new();
    let line = home.audit(&pg.dsn(), &[]).refused();
    assert!(
        line.contains("server certificate for \"db.other.example\" (and 1 other name) does not match host name \"postgres.example.com\""),
        "{line}"
    );
    let own = home
        .audit(&dsn_with(&pg, "verify-ca", &[]), &[])
        .own_session();
    assert_eq!(own["ssl"], true);
}

#[test]
fn a_server_certificate_from_another_ca_fails_verify_ca_and_verify_full() {
    let pg = GuidePg::start();
    let rogue = TempDir::new();
    rogue_ca(rogue.path());
    pki::issue(
        rogue.path(),
        "server",
        "postgres.example.com",
        &["--hosts", "postgres,localhost,127.0.0.1"],
    );
    serve(
        &pg,
        &rogue.join("postgres.example.com.pem"),
        &rogue.join("postgres.example.com-key.pem"),
    );
    let home = Home::new();
    for mode in ["verify-full", "verify-ca"] {
        let line = home.audit(&dsn_with(&pg, mode, &[]), &[]).refused();
        assert!(
            line.contains(
                "certificate verify failed: the server certificate is not signed by a CA in the root certificate file"
            ),
            "{mode}: {line}"
        );
    }
}

#[test]
fn without_a_client_certificate_the_server_refuses_in_its_own_words() {
    let pg = GuidePg::start();
    let home = Home::new();
    let line = home
        .audit(&dsn_with(&pg, "verify-full", &["sslcert", "sslkey"]), &[])
        .refused();
    assert!(
        line.contains("FATAL: connection requires a valid client certificate (28000)"),
        "{line}"
    );
}

#[test]
fn sslmode_disable_is_refused_by_the_hostssl_only_server() {
    let pg = GuidePg::start();
    let home = Home::new();
    let line = home.audit(&dsn_with(&pg, "disable", &[]), &[]).refused();
    assert!(
        line.contains("no pg_hba.conf entry for host \"127.0.0.1\", user \"ward\", database \"ward_events\", no encryption"),
        "{line}"
    );
}

#[test]
fn require_verifies_against_a_root_crt_in_home_and_connects_unverified_without_one() {
    let pg = GuidePg::start();
    let home = Home::new();
    let require = dsn_with(&pg, "require", &["sslrootcert"]);
    // No root file anywhere: encrypted, not verified.
    assert_eq!(home.audit(&require, &[]).own_session()["ssl"], true);
    // A root.crt from another CA in ~/.postgresql: libpq (and Ward) verify against it.
    let rogue = TempDir::new();
    home.postgresql_file("root.crt", &rogue_ca(rogue.path()));
    let line = home.audit(&require, &[]).refused();
    assert!(
        line.contains("certificate verify failed: the server certificate is not signed by a CA in the root certificate file"),
        "{line}"
    );
    // The right root.crt: verified and connected.
    home.postgresql_file("root.crt", &pg.tls.join("ca.pem"));
    assert_eq!(home.audit(&require, &[]).own_session()["ssl"], true);
}

#[test]
fn prefer_refuses_a_failed_certificate_check_where_libpq_falls_back_to_plaintext() {
    let pg = GuidePg::start();
    // The server also admits plaintext, so a fallback would succeed.
    pg.cluster.set_hba(
        "hostssl all postgres 127.0.0.1/32 reject\n\
         hostssl ward_events ward 127.0.0.1/32 cert\n\
         hostnossl ward_events ward 127.0.0.1/32 trust",
    );
    let home = Home::new();
    let rogue = TempDir::new();
    home.postgresql_file("root.crt", &rogue_ca(rogue.path()));
    let prefer = dsn_with(&pg, "prefer", &["sslrootcert"]);
    // libpq: the check against ~/.postgresql/root.crt fails, and it connects in plaintext.
    let libpq = Command::new(format!("{PG_BIN}/psql"))
        .env_clear()
        .env("HOME", home.path())
        .args([
            prefer.as_str(),
            "-Atc",
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ])
        .run()
        .ok();
    assert_eq!(libpq.stdout.trim(), "f", "libpq fell back to plaintext");
    // Ward: refused.
    let line = home.audit(&prefer, &[]).refused();
    assert!(line.contains("certificate verify failed"), "{line}");
    // `allow` is `prefer` in Ward: TLS first, and no fallback either.
    let allow = dsn_with(&pg, "allow", &["sslrootcert"]);
    assert!(home
        .audit(&allow, &[])
        .refused()
        .contains("certificate verify failed"));
}

#[test]
fn prefer_uses_plaintext_when_the_server_has_no_tls() {
    let pg = ward_testkit::postgres::PgCluster::start(None, "host all all 127.0.0.1/32 trust");
    let home = Home::new();
    let dsn = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=prefer",
        pg.port
    );
    assert_eq!(home.audit(&dsn, &[]).own_session()["ssl"], false);
    let line = home
        .audit(&dsn.replace("sslmode=prefer", "sslmode=require"), &[])
        .refused();
    assert!(
        line.contains("server does not support SSL, but SSL was required"),
        "{line}"
    );
}

#[test]
fn a_client_key_readable_by_others_is_refused_naming_the_file_and_the_chmod() {
    let pg = GuidePg::start();
    let home = Home::new();
    let key = home.file(
        "ward-key.pem",
        &std::fs::read_to_string(pg.tls.join("ward-key.pem")).unwrap(),
        0o644,
    );
    let dsn = pg.dsn().replace(
        &format!("sslkey={}", pg.tls.join("ward-key.pem").display()),
        &format!("sslkey={}", key.display()),
    );
    let line = home.audit(&dsn, &[]).refused();
    assert!(
        line.contains(&format!(
            "{}: private key is accessible by group or others (mode 0644)",
            key.display()
        )) && line.contains(&format!("chmod 600 {}", key.display())),
        "{line}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(home.audit(&dsn, &[]).own_session()["ssl"], true);
}

#[test]
fn a_crl_that_revokes_the_server_certificate_makes_verify_full_fail() {
    let pg = GuidePg::start();
    let home = Home::new();
    let d = TempDir::new();
    let crl = |name: &str| {
        let out = d.join(name);
        ward()
            .args(["pki", "crl", "--ca-dir"])
            .arg(&pg.tls)
            .arg("--out")
            .arg(&out)
            .run()
            .ok();
        out
    };
    // A CRL that revokes nothing: connected.
    let empty = crl("empty.pem");
    let with = |f: &Path| format!("{} sslcrl={}", pg.dsn(), f.display());
    assert_eq!(home.audit(&with(&empty), &[]).own_session()["ssl"], true);
    // A named CRL that does not exist is an error naming it.
    let line = home.audit(&with(&d.join("missing.pem")), &[]).refused();
    assert!(
        line.contains(&format!(
            "CRL file \"{}\" does not exist",
            d.join("missing.pem").display()
        )),
        "{line}"
    );
    ward()
        .args(["pki", "revoke", "--cert"])
        .arg(pg.tls.join("postgres.example.com.pem"))
        .args(["--reason", "keyCompromise", "--ca-dir"])
        .arg(&pg.tls)
        .run()
        .ok();
    let revoked = crl("revoked.pem");
    let line = home.audit(&with(&revoked), &[]).refused();
    assert!(
        line.contains("certificate verify failed: the server certificate is revoked"),
        "{line}"
    );
    // PGSSLCRL, and the default ~/.postgresql/root.crl, are applied the same way.
    let line = home
        .audit(
            &pg.dsn(),
            &[("PGSSLCRL".into(), revoked.display().to_string())],
        )
        .refused();
    assert!(line.contains("revoked"), "{line}");
    home.postgresql_file("root.crl", &revoked);
    let line = home.audit(&pg.dsn(), &[]).refused();
    assert!(line.contains("revoked"), "{line}");
}

#[test]
fn the_password_file_supplies_the_password_for_a_scram_login() {
    let pg = GuidePg::start();
    pg.cluster
        .sql("CREATE ROLE app LOGIN PASSWORD 'correct:horse'")
        .ok();
    pg.cluster.set_hba(
        "hostssl all postgres 127.0.0.1/32 reject\n\
         hostssl ward_events ward 127.0.0.1/32 cert\n\
         hostssl ward_events app 127.0.0.1/32 scram-sha-256",
    );
    let home = Home::new();
    let dsn = dsn_with(&pg, "verify-full", &["sslcert", "sslkey"]).replace("user=ward", "user=app");
    // No password anywhere.
    let line = home.audit(&dsn, &[]).refused();
    assert!(
        line.contains("no password supplied: the server asks for app's password"),
        "{line}"
    );
    // PGPASSFILE, libpq's format: `\:` escapes the colon in the password.
    let entry = format!(
        "# ward's event store\npostgres.example.com:{}:ward_events:app:correct\\:horse\n",
        pg.cluster.port
    );
    let passfile = home.file("passfile", &entry, 0o600);
    let vars = [("PGPASSFILE".to_string(), passfile.display().to_string())];
    let own = home.audit(&dsn, &vars).own_session();
    assert_eq!(
        (own["user"].as_str(), own["ssl"].as_bool()),
        (Some("app"), Some(true))
    );
    // The default ~/.pgpass.
    home.file(".pgpass", &entry, 0o600);
    assert_eq!(home.audit(&dsn, &[]).own_session()["user"], "app");
    // A password in the DSN wins over the file.
    let line = home.audit(&format!("{dsn} password=wrong"), &[]).refused();
    assert!(
        line.contains("password authentication failed for user \"app\""),
        "{line}"
    );
    // A wrong password from the file says where it came from.
    let wrong = home.file("wrong", &format!("*:*:*:app:wrong\n{entry}"), 0o600);
    let line = home
        .audit(&dsn, &[("PGPASSFILE".into(), wrong.display().to_string())])
        .refused();
    assert!(
        line.contains("password authentication failed for user \"app\"")
            && line.contains(&format!(
                "read from the password file \"{}\"",
                wrong.display()
            )),
        "{line}"
    );
    // A file others can read is ignored with libpq's warning, on stderr.
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o644)).unwrap();
    let attempt = home.audit(&dsn, &vars);
    assert!(
        attempt.0.stderr.contains(&format!(
            "warning: password file \"{}\" has group or world access",
            passfile.display()
        )),
        "{}",
        attempt.0.stderr
    );
    assert!(attempt
        .refused()
        .contains("the password file was ignored (see the warning)"));
}

#[test]
fn the_hosts_of_a_list_are_tried_in_order() {
    let pg = GuidePg::start();
    let home = Home::new();
    let closed = free_port();
    let both = |ports: String| {
        pg.dsn()
            .replace(
                "host=postgres.example.com",
                "host=postgres.example.com,postgres.example.com",
            )
            .replace("hostaddr=127.0.0.1", "hostaddr=127.0.0.1,127.0.0.1")
            .replace(
                &format!("port={}", pg.cluster.port),
                &format!("port={ports}"),
            )
    };
    // The first host is down, the second answers.
    let own = home
        .audit(&both(format!("{closed},{}", pg.cluster.port)), &[])
        .own_session();
    assert_eq!(own["ssl"], true);
    // Both down: each is named with its reason.
    let line = home
        .audit(&both(format!("{closed},{closed}")), &[])
        .refused();
    assert!(line.starts_with("UNKNOWN: all 2 hosts failed: "), "{line}");
    assert_eq!(
        line.matches(&format!(
            "postgres.example.com:{closed} (hostaddr 127.0.0.1): error connecting to server: Connection refused"
        ))
        .count(),
        2,
        "{line}"
    );
}

#[test]
fn tls_protocol_versions_are_honoured_and_old_ones_refused() {
    let pg = GuidePg::start();
    let home = Home::new();
    assert_eq!(
        home.audit(&pg.dsn(), &[]).own_session()["version"],
        "TLSv1.3"
    );
    let own = home
        .audit(
            &format!("{} ssl_max_protocol_version=TLSv1.2", pg.dsn()),
            &[],
        )
        .own_session();
    assert_eq!(own["version"], "TLSv1.2");
    let line = home
        .audit(
            &pg.dsn(),
            &[("PGSSLMINPROTOCOLVERSION".into(), "TLSv1.1".into())],
        )
        .refused();
    assert!(
        line.contains(
            "TLSv1.1 is not supported: rustls (and so Ward) never speaks a TLS version below 1.2"
        ),
        "{line}"
    );
}

#[test]
fn a_server_that_crashed_is_named_and_reached_again_after_it_restarts() {
    let pg = GuidePg::start();
    let home = Home::new();
    pg.cluster.stop_immediate();
    let line = home.audit(&pg.dsn(), &[]).refused();
    assert!(
        line.contains(&format!(
            "postgres.example.com:{} (hostaddr 127.0.0.1)",
            pg.cluster.port
        )) && line.contains("Connection refused"),
        "{line}"
    );
    pg.cluster.start_again();
    assert_eq!(home.audit(&pg.dsn(), &[]).own_session()["ssl"], true);
}
