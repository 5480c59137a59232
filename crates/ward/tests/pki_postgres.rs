//! PostgreSQL 15 serves certificates from `ward pki bootstrap` and authenticates a Ward
//! client certificate under `hostssl … cert` with sslmode=verify-full, and honours Ward's CRL.

use ward_testkit::postgres::{PgCluster, PgTls};
use ward_testkit::{pki, ward, TempDir};

#[test]
fn postgresql_serves_a_bootstrapped_certificate_and_accepts_a_ward_client_certificate() {
    let d = TempDir::new();
    let tls = pki::bootstrap(
        d.path(),
        "ca: {cn: Ward CA}\npostgres:\n  - name: postgres.example.com\n    hosts: [localhost, 127.0.0.1]\npostgres_clients:\n  - user: sensu\n  - user: mallory\n",
    );
    // Revoke mallory and hand PostgreSQL the CRL.
    ward()
        .args(["pki", "revoke", "--cert"])
        .arg(tls.join("mallory.pem"))
        .arg("--ca-dir")
        .arg(&tls)
        .run()
        .ok();
    ward()
        .args(["pki", "crl", "--ca-dir"])
        .arg(&tls)
        .arg("--out")
        .arg(tls.join("crl.pem"))
        .run()
        .ok();
    let pg = PgCluster::start(
        Some(&PgTls {
            cert: tls.join("postgres.example.com.pem"),
            key: tls.join("postgres.example.com-key.pem"),
            ca: Some(tls.join("ca.pem")),
            crl: Some(tls.join("crl.pem")),
        }),
        "hostssl all postgres 127.0.0.1/32 reject\nhostssl all all 127.0.0.1/32 cert\n",
    );
    pg.sql("CREATE ROLE sensu LOGIN; CREATE ROLE mallory LOGIN")
        .ok();
    let conn = |host: &str, user: &str| {
        format!(
            "host={host} hostaddr=127.0.0.1 port={} dbname=postgres user={user} sslmode=verify-full sslrootcert={} sslcert={} sslkey={}",
            pg.port,
            tls.join("ca.pem").display(),
            tls.join(format!("{user}.pem")).display(),
            tls.join(format!("{user}-key.pem")).display()
        )
    };
    let out = pg
        .psql(
            &conn("postgres.example.com", "sensu"),
            "SELECT ssl, version, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        )
        .ok();
    let fields: Vec<&str> = out.stdout.trim().split('|').collect();
    assert_eq!(fields[0], "t");
    assert!(fields[1] == "TLSv1.3" || fields[1] == "TLSv1.2", "{out:?}");
    assert_eq!(fields[2], "/CN=sensu");
    let refused = pg.psql(&conn("postgres.example.com", "mallory"), "SELECT 1");
    assert!(
        !refused.success(),
        "a revoked client certificate must be refused"
    );
    assert!(
        refused.stderr.contains("certificate revoked")
            || pg.server_log().contains("certificate revoked"),
        "stderr: {}\nserver log: {}",
        refused.stderr,
        pg.server_log()
    );
}
