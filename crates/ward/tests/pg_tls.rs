//! `ward pg` against a real PostgreSQL 15: configure, probe, install-cert, audit.

use std::path::{Path, PathBuf};
use ward_testkit::postgres::PgCluster;
use ward_testkit::{pki, require_tool, ward, Command, TempDir};

/// A CA and the certificates of the PostgreSQL guide, from `ward pki bootstrap`.
fn certificates(d: &TempDir) -> PathBuf {
    pki::bootstrap(
        d.path(),
        "ca: {cn: Ward CA}\npostgres:\n  - name: postgres.example.com\n    hosts: [localhost, 127.0.0.1]\npostgres_clients:\n  - user: sensu\n",
    )
}

/// `ward pg install-cert` of the renewed server pair, with an optional config file.
fn install_renewed(pg: &PgCluster, tls: &Path, conf: &Path) -> ward_testkit::Output {
    ward()
        .args(["pg", "install-cert", "--pgdata"])
        .arg(&pg.data)
        .arg("--config-file")
        .arg(conf)
        .arg("--cert-chain")
        .arg(tls.join("postgres.example.com.pem"))
        .arg("--key")
        .arg(tls.join("postgres.example.com-key.pem"))
        .args(["--timeout", "2s"])
        .run()
}

/// `ward pki renew --rotate-key` of the PostgreSQL server certificate.
fn renew_server(tls: &Path) {
    ward()
        .args(["pki", "renew", "--rotate-key", "--ca-dir"])
        .arg(tls)
        .arg(tls.join("postgres.example.com.pem"))
        .run()
        .ok();
}

fn postmaster_pid(pg: &PgCluster) -> String {
    std::fs::read_to_string(pg.data.join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string()
}

fn served_fingerprint(pg: &PgCluster) -> String {
    let out = ward()
        .args([
            "pg",
            "probe",
            &format!("127.0.0.1:{}", pg.port),
            "--format",
            "json",
        ])
        .run();
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    v["chain"][0]["sha256_fingerprint"]
        .as_str()
        .unwrap()
        .to_string()
}

fn fingerprint_of(cert: &Path) -> String {
    pki::info_json(cert)["sha256_fingerprint"]
        .as_str()
        .unwrap()
        .to_string()
}

fn configure_args(pg: &PgCluster, tls: &Path) -> Vec<String> {
    vec![
        "pg".into(),
        "configure".into(),
        "--pgdata".into(),
        pg.data.display().to_string(),
        "--cert".into(),
        tls.join("postgres.example.com.pem").display().to_string(),
        "--key".into(),
        tls.join("postgres.example.com-key.pem")
            .display()
            .to_string(),
        "--ca".into(),
        tls.join("ca.pem").display().to_string(),
        "--require-cert".into(),
        "sensu_events:sensu@127.0.0.1/32".into(),
        "--reject-superuser".into(),
    ]
}

fn sensu_conn(pg: &PgCluster, tls: &Path, user: &str) -> String {
    format!(
        "host=postgres.example.com hostaddr=127.0.0.1 port={} dbname=sensu_events user={user} sslmode=verify-full sslrootcert={} sslcert={} sslkey={}",
        pg.port,
        tls.join("ca.pem").display(),
        tls.join("sensu.pem").display(),
        tls.join("sensu-key.pem").display()
    )
}

#[test]
fn configure_turns_on_tls_with_a_reload_and_is_idempotent() {
    let d = TempDir::new();
    let tls = certificates(&d);
    let pg = PgCluster::start(None, "");
    pg.sql("CREATE ROLE sensu LOGIN").ok();
    pg.sql("CREATE DATABASE sensu_events OWNER sensu").ok();
    let pid = postmaster_pid(&pg);

    // Dry run: a diff, and no change.
    let conf_before = std::fs::read(pg.data.join("postgresql.conf")).unwrap();
    let mut dry = configure_args(&pg, &tls);
    dry.push("--dry-run".into());
    let out = ward().args(&dry).run().ok();
    assert!(
        out.stdout.contains("+ssl = on")
            && out
                .stdout
                .contains("+hostssl sensu_events sensu 127.0.0.1/32 cert"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("dry run: nothing was changed"));
    assert_eq!(
        std::fs::read(pg.data.join("postgresql.conf")).unwrap(),
        conf_before
    );

    let out = ward().args(configure_args(&pg, &tls)).run().ok();
    assert!(
        out.stdout.contains("now serves the new certificate"),
        "{}",
        out.stdout
    );
    assert_eq!(postmaster_pid(&pg), pid, "reloaded, not restarted");
    assert_eq!(
        served_fingerprint(&pg),
        fingerprint_of(&tls.join("postgres.example.com.pem"))
    );

    // The key in the data directory belongs to the server's user, mode 0600, not a symlink.
    use std::os::unix::fs::MetadataExt;
    let key = std::fs::symlink_metadata(pg.data.join("ward-server.key")).unwrap();
    assert!(key.file_type().is_file());
    assert_eq!(key.mode() & 0o777, 0o600);
    assert_eq!(key.uid(), std::fs::metadata(&pg.data).unwrap().uid());

    // verify-full with a client certificate works; TLS is on.
    let q = pg
        .psql(
            &sensu_conn(&pg, &tls, "sensu"),
            "SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        )
        .ok();
    assert_eq!(q.stdout.trim(), "t|/CN=sensu");
    // The superuser is rejected over TLS, even with a valid certificate.
    let su = pg.psql(
        &sensu_conn(&pg, &tls, "postgres").replace("dbname=sensu_events", "dbname=postgres"),
        "SELECT 1",
    );
    assert!(
        !su.success() && su.stderr.contains("pg_hba.conf rejects"),
        "{}",
        su.stderr
    );

    // A second run changes no byte.
    let files = [
        "postgresql.conf",
        "pg_hba.conf",
        "ward-server.crt",
        "ward-server.key",
        "ward-ca.crt",
    ];
    let before: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(pg.data.join(f)).unwrap())
        .collect();
    let out = ward().args(configure_args(&pg, &tls)).run().ok();
    assert!(out.stdout.contains("nothing to change"), "{}", out.stdout);
    let after: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(pg.data.join(f)).unwrap())
        .collect();
    assert_eq!(before, after);
    // The managed hba block is at the top, rejects first.
    let hba = std::fs::read_to_string(pg.data.join("pg_hba.conf")).unwrap();
    let lines: Vec<&str> = hba.lines().collect();
    assert!(lines[0].starts_with("# BEGIN ward-managed rules"));
    assert!(
        lines[1].ends_with("reject") && lines[3].ends_with("cert"),
        "{hba}"
    );
}

#[test]
fn configure_refuses_a_bad_pair_and_changes_nothing() {
    let d = TempDir::new();
    let tls = certificates(&d);
    let pg = PgCluster::start(None, "");
    let conf = std::fs::read(pg.data.join("postgresql.conf")).unwrap();
    let out = ward()
        .args(["pg", "configure", "--pgdata"])
        .arg(&pg.data)
        .arg("--cert")
        .arg(tls.join("postgres.example.com.pem"))
        .arg("--key")
        .arg(tls.join("sensu-key.pem"))
        .run()
        .fails_with(1);
    assert!(
        out.stderr.contains("does not match the certificate"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1);
    assert_eq!(
        std::fs::read(pg.data.join("postgresql.conf")).unwrap(),
        conf
    );
    assert!(!pg.data.join("ward-server.key").exists());
    // A CRL from another CA would make PostgreSQL keep its old TLS settings on reload.
    let other = TempDir::new();
    pki::init_ca(other.path(), "Other CA", &[]);
    ward()
        .args(["pki", "crl", "--ca-dir"])
        .arg(other.path())
        .arg("--out")
        .arg(other.join("crl.pem"))
        .run()
        .ok();
    let out = ward()
        .args(["pg", "configure", "--pgdata"])
        .arg(&pg.data)
        .arg("--cert")
        .arg(tls.join("postgres.example.com.pem"))
        .arg("--key")
        .arg(tls.join("postgres.example.com-key.pem"))
        .arg("--ca")
        .arg(tls.join("ca.pem"))
        .arg("--crl")
        .arg(other.join("crl.pem"))
        .run()
        .fails_with(1);
    assert!(
        out.stderr.contains("--crl") && out.stderr.contains("does not verify"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read(pg.data.join("postgresql.conf")).unwrap(),
        conf
    );
    let out = ward()
        .args(["pg", "configure", "--pgdata"])
        .arg(d.path())
        .args(["--cert", "x", "--key", "y"])
        .run()
        .fails_with(1);
    assert!(
        out.stderr.contains("not a PostgreSQL data directory"),
        "{}",
        out.stderr
    );
}

#[test]
fn install_cert_serves_a_renewed_certificate_without_a_restart_and_refuses_a_broken_pair() {
    let d = TempDir::new();
    let tls = certificates(&d);
    let pg = PgCluster::start(None, "");
    ward().args(configure_args(&pg, &tls)).run().ok();
    let pid = postmaster_pid(&pg);
    let old = served_fingerprint(&pg);

    // Renew into a certbot-style lineage and install it as the deploy hook would.
    let lineage = d.join("live/postgres.example.com");
    std::fs::create_dir_all(&lineage).unwrap();
    std::fs::copy(
        tls.join("postgres.example.com.pem"),
        lineage.join("fullchain.pem"),
    )
    .unwrap();
    std::fs::copy(
        tls.join("postgres.example.com-key.pem"),
        lineage.join("privkey.pem"),
    )
    .unwrap();
    ward()
        .args(["pki", "renew", "--rotate-key", "--ca-dir"])
        .arg(&tls)
        .arg(lineage.join("fullchain.pem"))
        .run()
        .fails_with(1); // cfssl names: key is privkey.pem, not fullchain-key.pem
    renew_server(&tls);
    std::fs::copy(
        tls.join("postgres.example.com.pem"),
        lineage.join("fullchain.pem"),
    )
    .unwrap();
    std::fs::copy(
        tls.join("postgres.example.com-key.pem"),
        lineage.join("privkey.pem"),
    )
    .unwrap();
    let out = ward()
        .args(["pg", "install-cert", "--pgdata"])
        .arg(&pg.data)
        .env("RENEWED_LINEAGE", &lineage)
        .run()
        .ok();
    assert!(out.stdout.contains("now serves"), "{}", out.stdout);
    let new = served_fingerprint(&pg);
    assert_ne!(new, old);
    assert_eq!(new, fingerprint_of(&tls.join("postgres.example.com.pem")));
    assert_eq!(postmaster_pid(&pg), pid);

    // A key that does not match: refused before anything changes; the new pair keeps serving.
    let out = ward()
        .args(["pg", "install-cert", "--pgdata"])
        .arg(&pg.data)
        .arg("--cert-chain")
        .arg(lineage.join("fullchain.pem"))
        .arg("--key")
        .arg(tls.join("sensu-key.pem"))
        .run()
        .fails_with(1);
    assert!(out.stderr.contains("does not match"), "{}", out.stderr);
    assert_eq!(served_fingerprint(&pg), new);
}

#[test]
fn probe_agrees_with_openssl_s_client() {
    require_tool("openssl");
    let d = TempDir::new();
    let tls = certificates(&d);
    let pg = PgCluster::start(None, "host all all 127.0.0.1/32 trust\n");
    ward().args(configure_args(&pg, &tls)).run().ok();
    pg.sql("CREATE ROLE app LOGIN").ok();
    let target = format!("127.0.0.1:{}", pg.port);
    let out = ward()
        .args([
            "pg",
            "probe",
            &format!("localhost:{}", pg.port),
            "--hostaddr",
            "127.0.0.1",
            "--root-cert",
        ])
        .arg(tls.join("ca.pem"))
        .args([
            "--format",
            "json",
            "--user",
            "app",
            "--database",
            "postgres",
        ])
        .run();
    let r: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(r["answer"], "Tls");
    assert_eq!(r["chain_verification"]["ok"], true);
    assert_eq!(r["host_name"]["ok"], true);
    assert_eq!(r["client_certificate_requested"], true);
    assert_eq!(
        r["acceptable_client_ca_names"],
        serde_json::json!(["CN=Ward CA"])
    );
    assert_eq!(r["legacy_protocols"][0]["accepted"], false);
    assert_eq!(r["legacy_protocols"][1]["accepted"], false);
    // The `host … trust` rule admits the superuser without TLS: critical.
    assert_eq!(
        r["plaintext_login"]["answer"],
        "accepted_without_authentication"
    );
    assert_eq!(r["status"], "CRITICAL");
    assert_eq!(out.code, Some(2));

    let s = Command::shell(&format!(
        "openssl s_client -starttls postgres -connect {target} -showcerts </dev/null 2>/dev/null"
    ))
    .run();
    // "New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384"
    let new_line = s
        .stdout
        .lines()
        .find(|l| l.starts_with("New, "))
        .unwrap_or_else(|| panic!("{}", s.stdout));
    let (proto, cipher) = new_line
        .trim_start_matches("New, ")
        .split_once(", Cipher is ")
        .unwrap();
    assert_eq!(Some(proto), r["tls_version"].as_str(), "{}", s.stdout);
    assert_eq!(Some(cipher.trim()), r["cipher"].as_str(), "{}", s.stdout);
    let pem_start = s.stdout.find("-----BEGIN CERTIFICATE-----").unwrap();
    let pem_end =
        s.stdout.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----".len();
    std::fs::write(d.join("served.pem"), &s.stdout[pem_start..pem_end]).unwrap();
    let fp = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(d.join("served.pem"))
        .run()
        .ok()
        .stdout;
    let fp = fp.trim().rsplit('=').next().unwrap().to_lowercase();
    assert_eq!(fp, r["chain"][0]["sha256_fingerprint"].as_str().unwrap());

    // Text output and a wrong name under verify-full.
    let out = ward()
        .args([
            "pg",
            "probe",
            &format!("db.example.net:{}", pg.port),
            "--hostaddr",
            "127.0.0.1",
            "--root-cert",
        ])
        .arg(tls.join("ca.pem"))
        .run()
        .fails_with(2);
    assert!(out.stdout.starts_with("CRITICAL: server certificate for \"postgres.example.com\" (and 2 other names) does not match host name \"db.example.net\""), "{}", out.stdout);
    // Nothing listening: UNKNOWN.
    let out = ward()
        .args([
            "pg",
            "probe",
            &format!("127.0.0.1:{}", ward_testkit::free_port()),
        ])
        .run()
        .fails_with(3);
    assert!(out.stdout.starts_with("UNKNOWN:"), "{}", out.stdout);
}

#[test]
fn audit_flags_a_plaintext_session_and_an_open_host_rule() {
    let d = TempDir::new();
    let tls = certificates(&d);
    let pg = PgCluster::start(None, "host all all 0.0.0.0/0 trust\n");
    ward().args(configure_args(&pg, &tls)).run().ok();
    pg.sql("CREATE ROLE sensu LOGIN; CREATE ROLE app LOGIN; GRANT pg_read_all_stats TO sensu")
        .ok();
    pg.sql("CREATE DATABASE sensu_events OWNER sensu").ok();
    // pg_hba_file_rules is superuser-only by default; let the auditing user read it.
    pg.sql_in("sensu_events", "GRANT SELECT ON pg_hba_file_rules TO sensu; GRANT EXECUTE ON FUNCTION pg_hba_file_rules() TO sensu").ok();
    // A plaintext session over the `host` rule, held open while the audit runs.
    let mut held = std::process::Command::new(format!("{}/psql", ward_testkit::postgres::PG_BIN))
        .arg(format!(
            "host=127.0.0.1 port={} user=app dbname=postgres sslmode=disable",
            pg.port
        ))
        .args(["-c", "SELECT pg_sleep(20)"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The audit itself connects over verify-full with a client certificate.
    let dsn = format!(
        "postgresql://sensu@localhost:{}/sensu_events?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
        pg.port,
        tls.join("ca.pem").display(),
        tls.join("sensu.pem").display(),
        tls.join("sensu-key.pem").display()
    );
    let mut report = serde_json::Value::Null;
    for _ in 0..50 {
        let out = ward().args(["pg", "audit", &dsn, "--format", "json"]).run();
        report = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        if report["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["ssl"] == false)
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = held.kill();
    let _ = held.wait();
    let sessions = report["sessions"].as_array().unwrap();
    let own = sessions.iter().find(|s| s["own"] == true).unwrap();
    assert_eq!(own["ssl"], true);
    assert_eq!(own["client_dn"], "/CN=sensu");
    assert!(
        sessions
            .iter()
            .any(|s| s["ssl"] == false && s["address"] == "127.0.0.1"),
        "{report:#}"
    );
    let findings: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap().to_string())
        .collect();
    assert!(
        findings.iter().any(|f| f.contains("is not encrypted")),
        "{findings:?}"
    );
    assert!(
        findings
            .iter()
            .any(|f| f.contains("`host all all 0.0.0.0") && f.contains("without TLS")),
        "{findings:?}"
    );
    assert_eq!(report["status"], "CRITICAL");
    // A connection string that is wrong says so.
    let out = ward()
        .args(["pg", "audit", "host=x bogus=1"])
        .run()
        .fails_with(3);
    assert!(
        out.stdout.contains("invalid connection option \"bogus\""),
        "{}",
        out.stdout
    );
}

#[test]
fn a_reload_that_does_not_change_what_is_served_is_an_error_and_install_cert_restores() {
    // The operator edits a postgresql.conf the server does not read (a Debian layout mixed
    // up with a data directory one). PostgreSQL reloads happily and keeps serving what it
    // served; only the wire tells, and Ward checks the wire.
    let d = TempDir::new();
    let tls = certificates(&d);
    let pg = PgCluster::start(None, "");
    ward().args(configure_args(&pg, &tls)).run().ok();
    let served = served_fingerprint(&pg);
    renew_server(&tls);
    let wrong_conf = d.join("postgresql.conf");
    std::fs::copy(pg.data.join("postgresql.conf"), &wrong_conf).unwrap();
    // The data directory's files now hold the renewed pair, so the server would serve it:
    // point the unread config at other file names instead.
    let out = install_renewed(&pg, &tls, &wrong_conf);
    // The unread config names the same ward-server.* files, so this one is served: fine.
    assert!(out.success(), "{out:?}");
    let renewed = served_fingerprint(&pg);
    assert_ne!(renewed, served);

    // Now a config the server does not read, naming files the server does not use.
    let text = std::fs::read_to_string(&wrong_conf)
        .unwrap()
        .replace("ward-server.crt", "elsewhere.crt")
        .replace("ward-server.key", "elsewhere.key");
    std::fs::write(&wrong_conf, text).unwrap();
    renew_server(&tls);
    let out = install_renewed(&pg, &tls, &wrong_conf).fails_with(1);
    assert!(
        out.stderr.contains("still serves") && out.stderr.contains("restored"),
        "{}",
        out.stderr
    );
    assert_eq!(
        served_fingerprint(&pg),
        renewed,
        "the server keeps what it served"
    );
    assert!(
        !pg.data.join("elsewhere.crt").exists(),
        "the files written were taken back"
    );

    // configure against a config the server does not read: the reload changes nothing on
    // the wire (here TLS stays off), and Ward says so.
    let fresh = PgCluster::start(None, "");
    let unread = d.join("unread.conf");
    std::fs::copy(fresh.data.join("postgresql.conf"), &unread).unwrap();
    let mut args = configure_args(&fresh, &tls);
    args.extend(["--config-file".to_string(), unread.display().to_string()]);
    let out = ward().args(&args).run().fails_with(1);
    assert!(
        out.stderr.contains("serves no TLS") && out.stderr.contains("SHOW config_file"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_stopped_server_is_configured_and_left_stopped() {
    let d = TempDir::new();
    let tls = certificates(&d);
    let pg = PgCluster::start(None, "");
    pg.stop();
    assert!(!pg.data.join("postmaster.pid").exists());
    let out = ward().args(configure_args(&pg, &tls)).run().ok();
    assert!(
        out.stdout
            .contains("PostgreSQL is not running: it was left stopped"),
        "{}",
        out.stdout
    );
    assert!(
        !pg.data.join("postmaster.pid").exists(),
        "configure never starts a server"
    );
    let conf = std::fs::read_to_string(pg.data.join("postgresql.conf")).unwrap();
    assert!(
        conf.contains("# BEGIN ward-managed TLS settings") && conf.contains("ssl = on"),
        "{conf}"
    );
}
