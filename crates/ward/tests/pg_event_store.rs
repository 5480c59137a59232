//! The PostgreSQL event store end to end: a real `ward backend`, a real PostgreSQL 15 set up
//! as in the guide (seed 000: TLS, `hostssl … cert`, the superuser refused), PostgresConfig
//! created with `ward ctl`, /health read with curl, and PostgreSQL stopped mid-stream.

use std::time::{Duration, Instant};
use ward_testkit::backend::{Backend, ADMIN, ADMIN_PASSWORD};
use ward_testkit::postgres::GuidePg;
use ward_testkit::{require_tool, TempDir};

fn event_json(entity: &str, check: &str, status: u32) -> String {
    format!(
        r#"{{"entity":{{"entity_class":"agent","metadata":{{"name":"{entity}"}}}},"check":{{"metadata":{{"name":"{check}"}},"status":{status},"output":"out {status}","interval":60}}}}"#
    )
}

/// An event stamped with `executed`, so its place in a check's history is known.
fn stamped_event_json(entity: &str, check: &str, executed: u64) -> String {
    format!(
        r#"{{"entity":{{"entity_class":"agent","metadata":{{"name":"{entity}"}}}},"check":{{"metadata":{{"name":"{check}"}},"status":2,"output":"failing","interval":10,"executed":{executed}}}}}"#
    )
}

fn events_url(b: &Backend) -> String {
    format!("{}/api/core/v2/namespaces/default/events", b.url())
}

fn post_event(b: &Backend, token: &str, entity: &str, check: &str, status: u32) -> (u16, String) {
    b.curl(&[
        "-X",
        "POST",
        "-H",
        &format!("Authorization: Bearer {token}"),
        "-d",
        &event_json(entity, check, status),
        &events_url(b),
    ])
}

/// The guide's PostgresConfig, with the test server's port.
fn postgres_config(port: u16, dsn_user: &str, strict: bool) -> String {
    format!(
        "type: PostgresConfig\napi_version: store/v1\nmetadata:\n  name: sensu_postgres\nspec:\n  dsn: \"postgresql://{dsn_user}@postgres.example.com:{port}/ward_events\"\n  pool_size: 20\n  strict: {strict}\n"
    )
}

/// `ward ctl create -f` of a PostgresConfig (kept in the backend's dir as postgresconfig.yml,
/// as the guide names it); the ctl's output.
fn create_config(b: &Backend, yaml: &str) -> ward_testkit::Output {
    let f = b.dir.join("postgresconfig.yml");
    std::fs::write(&f, yaml).unwrap();
    b.ctl().args(["create", "-f"]).arg(&f).run()
}

/// PostgresHealth[0] as (Active, Healthy).
fn pg_health(b: &Backend) -> Option<(bool, bool)> {
    let (code, body) = b.curl(&[&format!("{}/health?timeout=3", b.url())]);
    assert_eq!(code, 200, "{body}");
    let h: serde_json::Value = serde_json::from_str(&body).unwrap();
    let e = &h["PostgresHealth"][0];
    Some((e["Active"].as_bool()?, e["Healthy"].as_bool()?))
}

fn wait_for_health(b: &Backend, want: (bool, bool), within: Duration) {
    let start = Instant::now();
    loop {
        let got = pg_health(b);
        if got == Some(want) {
            return;
        }
        assert!(
            start.elapsed() < within,
            "PostgresHealth stayed {got:?}, wanted (Active, Healthy) = {want:?}; backend log:\n{}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An env file as the guide writes /etc/default/sensu-backend, plus PGHOSTADDR: the test's
/// stand-in for DNS (postgres.example.com is 127.0.0.1 here).
fn guide_env_file(pg: &GuidePg, with_certificates: bool) -> String {
    let t = &pg.tls;
    let mut s = "PGHOSTADDR=127.0.0.1\n".to_string();
    if with_certificates {
        s.push_str(&format!(
            "PGUSER=ward\nPGSSLMODE=\"verify-full\"\nPGSSLCERT=\"{}\"\nPGSSLKEY=\"{}\"\nPGSSLROOTCERT=\"{}\"\n",
            t.join("ward.pem").display(),
            t.join("ward-key.pem").display(),
            t.join("ca.pem").display()
        ));
    }
    s
}

/// A TLS backend whose env file (`ward-backend`, as /etc/default/ward-backend) holds `env`,
/// with `ward ctl` logged in. The env file's directory is returned, to rewrite it.
fn backend_with_env_file(env: &str) -> (TempDir, Backend) {
    let dir = TempDir::new();
    let env_file = dir.join("ward-backend");
    std::fs::write(&env_file, env).unwrap();
    let env_arg = env_file.display().to_string();
    let b = Backend::start_with(true, &["--env-file", &env_arg]);
    b.ctl_login();
    (dir, b)
}

fn count_in_pg(pg: &GuidePg, entity: &str) -> usize {
    pg.cluster
        .sql_in(
            "ward_events",
            &format!("SELECT count(*) FROM events WHERE entity = '{entity}'"),
        )
        .ok()
        .stdout
        .trim()
        .parse()
        .unwrap()
}

fn metric(b: &Backend, name: &str) -> u64 {
    let (_, body) = b.curl(&[&format!("{}/metrics", b.url())]);
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in:\n{body}"))
}

#[test]
fn the_guides_health_scenario_reproduces_exactly() {
    require_tool("curl");
    let pg = GuidePg::start();
    // Before TLS is required: the guide's password login.
    pg.cluster.sql("ALTER ROLE ward PASSWORD 'mypass'").ok();
    pg.cluster.set_hba(
        "hostssl all postgres 127.0.0.1/32 reject\nhost ward_events ward 127.0.0.1/32 scram-sha-256\n",
    );
    let (env, mut b) = backend_with_env_file(&guide_env_file(&pg, false));
    let env_file = env.join("ward-backend");
    create_config(&b, &postgres_config(pg.cluster.port, "ward:mypass", false)).ok();
    wait_for_health(&b, (true, true), Duration::from_secs(20));
    assert!(
        b.log().contains("switched the event store to PostgreSQL"),
        "{}",
        b.log()
    );
    // Configure PostgreSQL as the guide does: certificates only for the events database.
    // A reload is enough for PostgreSQL; Ward notices because every health probe is a new
    // connection, not a pooled one that the change does not touch.
    pg.cluster.set_hba(
        "hostssl all postgres 127.0.0.1/32 reject\nhostssl all postgres ::1/128 reject\nhostssl ward_events ward 127.0.0.1/32 cert\n",
    );
    wait_for_health(&b, (false, false), Duration::from_secs(30));
    // The guide's fix: the PG* variables in the backend's env file, and a restart.
    std::fs::write(&env_file, guide_env_file(&pg, true)).unwrap();
    b.kill9();
    b.spawn();
    wait_for_health(&b, (true, true), Duration::from_secs(20));
    // And events really go there, over verify-full TLS with the client certificate.
    let t = b.token(ADMIN, ADMIN_PASSWORD);
    let (code, body) = post_event(&b, &t, "web-1", "http", 2);
    assert_eq!(code, 201, "{body}");
    assert_eq!(count_in_pg(&pg, "web-1"), 1);
    assert!(!b.log().contains("mypass"), "the DSN's password was logged");
    let sessions = pg
        .cluster
        .sql("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'ward' AND s.ssl AND s.client_dn = '/CN=ward'")
        .ok()
        .stdout;
    assert!(sessions.trim().parse::<u32>().unwrap() >= 1, "{sessions}");
}

#[test]
fn events_are_stored_in_postgresql_and_deleting_the_config_switches_back() {
    require_tool("curl");
    let pg = GuidePg::start();
    let (_env, b) = backend_with_env_file(&guide_env_file(&pg, true));
    let t = b.token(ADMIN, ADMIN_PASSWORD);
    // Before: the embedded store.
    assert_eq!(post_event(&b, &t, "web-1", "before", 0).0, 201);
    create_config(&b, &postgres_config(pg.cluster.port, "ward", true)).ok();
    // The fold (history, occurrences, watermark, state) is the same in PostgreSQL.
    for status in [2, 2, 2, 0] {
        let (code, body) = post_event(&b, &t, "web-1", "http", status);
        assert_eq!(code, 201, "{body}");
    }
    let (code, body) = b.curl(&[
        "-H",
        &format!("Authorization: Bearer {t}"),
        &format!("{}/web-1/http", events_url(&b)),
    ]);
    assert_eq!(code, 200, "{body}");
    let ev: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ev["check"]["history"].as_array().unwrap().len(), 4);
    assert_eq!(ev["check"]["occurrences"], 1);
    assert_eq!(ev["check"]["occurrences_watermark"], 3);
    assert_eq!(ev["check"]["state"], "passing");
    let row = pg
        .cluster
        .sql_in(
            "ward_events",
            "SELECT status, state, occurrences, occurrences_watermark, json_array_length(history) FROM events WHERE entity = 'web-1' AND check_name = 'http'",
        )
        .ok()
        .stdout;
    assert_eq!(row.trim(), "0|passing|1|3|4");
    // Another backend writes the row (its version moves on): this writer's memory of the
    // check is stale, its conditional upsert misses, and it folds again from the row's
    // columns, locked.
    pg.cluster
        .sql_in(
            "ward_events",
            "UPDATE events SET occurrences = 7, version = version + 1 WHERE entity = 'web-1' AND check_name = 'http'",
        )
        .ok();
    assert_eq!(post_event(&b, &t, "web-1", "http", 0).0, 201);
    let row = pg
        .cluster
        .sql_in(
            "ward_events",
            "SELECT occurrences, json_array_length(history), event->'check'->>'occurrences' FROM events WHERE entity = 'web-1' AND check_name = 'http'",
        )
        .ok()
        .stdout;
    assert_eq!(row.trim(), "8|5|8", "folded from the other backend's row");
    // A deleted event starts a new history (the writer forgets what it folded).
    let (code, _) = b.curl(&[
        "-X",
        "DELETE",
        "-H",
        &format!("Authorization: Bearer {t}"),
        &format!("{}/web-1/http", events_url(&b)),
    ]);
    assert_eq!(code, 204);
    assert_eq!(post_event(&b, &t, "web-1", "http", 2).0, 201);
    let row = pg
        .cluster
        .sql_in(
            "ward_events",
            "SELECT occurrences, json_array_length(history) FROM events WHERE entity = 'web-1' AND check_name = 'http'",
        )
        .ok()
        .stdout;
    assert_eq!(row.trim(), "1|1");
    // Paging with limit/continue goes through PostgreSQL too.
    for i in 0..5 {
        assert_eq!(post_event(&b, &t, "web-2", &format!("c{i}"), 1).0, 201);
    }
    let listed = b
        .ctl()
        .args(["event", "list", "--format", "json"])
        .run()
        .ok()
        .stdout;
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 6, "{listed}");
    // The schema is versioned, and the migration ran once.
    assert_eq!(
        pg.cluster
            .sql_in(
                "ward_events",
                "SELECT max(version), count(*) FROM ward_schema"
            )
            .ok()
            .stdout
            .trim(),
        "1|1"
    );
    // Deleting the PostgresConfig switches back to the embedded store, without a restart.
    b.ctl()
        .args(["delete", "-f"])
        .arg(b.dir.join("postgresconfig.yml"))
        .run()
        .ok();
    assert_eq!(post_event(&b, &t, "web-3", "after", 0).0, 201);
    assert_eq!(count_in_pg(&pg, "web-3"), 0);
    let (code, _) = b.curl(&[
        "-H",
        &format!("Authorization: Bearer {t}"),
        &format!("{}/web-3/after", events_url(&b)),
    ]);
    assert_eq!(code, 200);
    let log = b.log();
    assert!(
        log.contains("switched the event store back to the embedded store"),
        "{log}"
    );
    assert!(!log.contains("mypass") && !log.contains("PRIVATE KEY"));
}

#[test]
fn a_strict_config_that_cannot_be_used_is_rejected_with_the_servers_reason() {
    require_tool("curl");
    let pg = GuidePg::start();
    // No client certificate: PostgreSQL's `cert` rule refuses the connection.
    let (_env, b) = backend_with_env_file(&format!(
        "PGHOSTADDR=127.0.0.1\nPGSSLMODE=verify-full\nPGSSLROOTCERT={}\n",
        pg.tls.join("ca.pem").display()
    ));
    let out = create_config(&b, &postgres_config(pg.cluster.port, "ward", true));
    let out = out.fails_with(1);
    assert!(
        out.stderr.contains("strict: true") && out.stderr.contains("certificate"),
        "{}",
        out.stderr
    );
    let listed = b
        .ctl()
        .args(["dump", "store/v1.PostgresConfig", "--format", "yaml"])
        .run()
        .ok()
        .stdout;
    assert!(
        !listed.contains("sensu_postgres"),
        "nothing stored: {listed}"
    );
    // A user who may not create tables is refused with the GRANT that fixes it.
    pg.cluster
        .sql_in(
            "ward_events",
            "CREATE ROLE reader LOGIN PASSWORD 'pw'; REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        )
        .ok();
    pg.cluster
        .set_hba("hostssl ward_events reader 127.0.0.1/32 scram-sha-256\n");
    let out = create_config(&b, &postgres_config(pg.cluster.port, "reader:pw", true)).fails_with(1);
    assert!(
        out.stderr.contains("may not create tables")
            && out
                .stderr
                .contains("GRANT CREATE ON SCHEMA public TO reader"),
        "{}",
        out.stderr
    );
    // A malformed DSN is bad input whatever `strict` says.
    let bad = postgres_config(pg.cluster.port, "ward", false)
        .replace("/ward_events\"", "/ward_events?sslmode=sometimes\"");
    let out = create_config(&b, &bad).fails_with(1);
    assert!(out.stderr.contains("sslmode"), "{}", out.stderr);
}

/// Events in the crash tests: `PER_CHECK` results for each of `N / PER_CHECK` checks,
/// interleaved, event i for check `i % checks`, stamped `executed = STAMP + i`.
const N: usize = 3000;
const PER_CHECK: usize = 10;
const STAMP: u64 = 1_700_000_000;

fn crash_event(i: usize) -> String {
    stamped_event_json(
        "fleet",
        &format!("check-{}", i % (N / PER_CHECK)),
        STAMP + i as u64,
    )
}

/// Streams the crash tests' events over one keep-alive connection (as an agent replays its
/// queue), one status code per line on stdout.
fn stream_events(b: &Backend, token: &str) -> std::process::Child {
    let mut cfg = String::new();
    for i in 0..N {
        if i > 0 {
            cfg.push_str("next\n");
        }
        let body = serde_json::to_string(&crash_event(i)).unwrap();
        cfg.push_str(&format!(
            "url = \"{}\"\ncacert = \"{}\"\nheader = \"Authorization: Bearer {token}\"\nsilent\noutput = \"/dev/null\"\nwrite-out = \"%{{http_code}}\\n\"\ndata = {body}\n",
            events_url(b),
            b.ca().unwrap().display()
        ));
    }
    let f = b.dir.join("stream.curl");
    std::fs::write(&f, cfg).unwrap();
    std::process::Command::new("curl")
        .arg("-K")
        .arg(&f)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// PostgreSQL crashes (`pg_ctl stop -m immediate`) in the middle of a stream and comes back
/// some seconds later; the sender re-sends what was not acknowledged, as an agent does.
/// Returns the backend for further checks.
fn crash_postgresql_mid_stream(strict: bool, outage: Duration) -> (GuidePg, Backend) {
    require_tool("curl");
    let pg = GuidePg::start();
    let (_env, b) = backend_with_env_file(&guide_env_file(&pg, true));
    create_config(&b, &postgres_config(pg.cluster.port, "ward", strict)).ok();
    wait_for_health(&b, (true, true), Duration::from_secs(20));
    let t = b.token(ADMIN, ADMIN_PASSWORD);
    let mut child = stream_events(&b, &t);
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the stream ended before PostgreSQL was stopped; the test would prove nothing"
    );
    pg.cluster.stop_immediate();
    std::thread::sleep(outage);
    pg.cluster.start_again();
    let out = child.wait_with_output().unwrap();
    let codes: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(codes.len(), N);
    let acked_before = codes.iter().filter(|c| *c == "201").count();
    // Re-send what was refused (503 when the buffer was full), as an agent would.
    let resent: Vec<usize> = (0..N).filter(|i| codes[*i] != "201").collect();
    for &i in &resent {
        {
            let start = Instant::now();
            loop {
                let (code, body) = b.curl(&[
                    "-X",
                    "POST",
                    "-H",
                    &format!("Authorization: Bearer {t}"),
                    "-d",
                    &crash_event(i),
                    &events_url(&b),
                ]);
                if code == 201 {
                    break;
                }
                assert!(
                    code == 503 && start.elapsed() < Duration::from_secs(60),
                    "check-{i}: {code} {body}"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    eprintln!(
        "strict {strict}: {acked_before} of {N} acknowledged in the stream, the rest re-sent"
    );
    // Every event sent is in PostgreSQL (non-strict: once the fallback is replayed), each
    // folded exactly once and in order: every check has occurrences = PER_CHECK, and its
    // history lists its events by `executed` in the order they were sent (re-sent ones
    // last).
    let checks = N / PER_CHECK;
    let start = Instant::now();
    loop {
        let rows = pg
            .cluster
            .sql_in(
                "ward_events",
                "SELECT check_name, occurrences, history FROM events WHERE entity = 'fleet' ORDER BY check_name",
            )
            .ok()
            .stdout;
        let rows: Vec<(String, u64, Vec<u64>)> = rows
            .lines()
            .map(|l| {
                let mut f = l.splitn(3, '|');
                let name = f.next().unwrap().to_string();
                let occ = f.next().unwrap().parse().unwrap();
                let h: serde_json::Value = serde_json::from_str(f.next().unwrap()).unwrap();
                let executed = h
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["executed"].as_u64().unwrap())
                    .collect();
                (name, occ, executed)
            })
            .collect();
        let complete = rows.len() == checks && rows.iter().all(|r| r.1 >= PER_CHECK as u64);
        if complete {
            for (name, occurrences, executed) in &rows {
                let c: usize = name.trim_start_matches("check-").parse().unwrap();
                let mut expected: Vec<u64> = (0..PER_CHECK)
                    .map(|k| c + k * checks)
                    .filter(|i| !resent.contains(i))
                    .map(|i| STAMP + i as u64)
                    .collect();
                let late: Vec<u64> = (0..PER_CHECK)
                    .map(|k| c + k * checks)
                    .filter(|i| resent.contains(i))
                    .map(|i| STAMP + i as u64)
                    .collect();
                expected.extend(late);
                assert_eq!(
                    *occurrences, PER_CHECK as u64,
                    "{name}: folded {occurrences} times for {PER_CHECK} events"
                );
                assert_eq!(executed, &expected, "{name}: history out of order");
            }
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} of {checks} checks complete in PostgreSQL; backend log:\n{}",
            rows.iter().filter(|r| r.1 >= PER_CHECK as u64).count(),
            b.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    (pg, b)
}

#[test]
fn no_event_is_lost_when_postgresql_crashes_with_strict_false() {
    let (_pg, b) = crash_postgresql_mid_stream(false, Duration::from_secs(6));
    // The outage was long enough to fall back, and everything stored meanwhile was replayed.
    let fallback = metric(&b, "ward_pg_fallback_events_total");
    assert!(fallback > 0, "the fallback was never used:\n{}", b.log());
    wait_for_health(&b, (true, true), Duration::from_secs(20));
    assert_eq!(metric(&b, "ward_pg_replayed_events_total"), fallback);
    assert!(b
        .log()
        .contains("replayed the events stored during the outage"));
}

#[test]
fn no_event_is_lost_when_postgresql_crashes_with_strict_true() {
    let (_pg, b) = crash_postgresql_mid_stream(true, Duration::from_secs(3));
    // Nothing was written anywhere else.
    assert_eq!(metric(&b, "ward_pg_fallback_events_total"), 0);
    let (_, body) = b.curl(&[
        "-H",
        &format!("Authorization: Bearer {}", b.token(ADMIN, ADMIN_PASSWORD)),
        &format!("{}/fleet?limit=5000", events_url(&b)),
    ]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        N / PER_CHECK
    );
}
