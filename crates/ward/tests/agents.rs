//! Real `ward agent` processes against a real `ward backend` over wss on 127.0.0.1: mTLS
//! and password sessions, refused certificates, scheduled checks, a pipe handler, keepalive
//! timeouts, and a backend killed with -9 while agents send.

use serde_json::Value;
use std::time::Duration;
use ward_testkit::agent::{
    mtls_backend, password_backend, revoke, wait_for, Agent, AGENT_PASSWORD,
};
use ward_testkit::backend::Backend;
use ward_testkit::{ward, ward_bin};

fn events(b: &Backend) -> Vec<Value> {
    let out = b.ctl().args(["event", "list", "--format", "json"]).run();
    if !out.success() {
        return Vec::new();
    }
    // `--format json` prints the API's flat events, as sensuctl does.
    serde_json::from_str(&out.stdout).unwrap_or_default()
}

fn find<'a>(evs: &'a [Value], entity: &str, check: &str) -> Option<&'a Value> {
    evs.iter().find(|e| {
        e["entity"]["metadata"]["name"] == entity && e["check"]["metadata"]["name"] == check
    })
}

fn metric(b: &Backend, name: &str) -> f64 {
    let (_, text) = b.curl(&[&format!("{}/metrics", b.url())]);
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0)
}

fn create(b: &Backend, yaml: &str) {
    let f = b.dir.join(format!("r{}.yml", fastrand::u64(..)));
    std::fs::write(&f, yaml).unwrap();
    b.ctl().args(["create", "-f"]).arg(&f).run().ok();
}

#[test]
fn mtls_agents_run_published_checks_and_failures_reach_a_pipe_handler() {
    let b = mtls_backend(&["web-1", "web-2"], &[]);
    b.ctl_login();
    let tls = b.tls.clone().unwrap();
    let handled = b.dir.join("handled.json");
    // The guide's CheckConfig as written (no interval), with a real certificate file; the
    // same check with `ward pki check-expiry`; a failing check with a pipe handler.
    create(
        &b,
        &format!(
            "type: CheckConfig\napi_version: core/v2\nmetadata:\n  name: expired_certs\nspec:\n  command: openssl x509 -noout -enddate -in {}\n  subscriptions:\n  - system\n  publish: true\n---\ntype: CheckConfig\napi_version: core/v2\nmetadata:\n  name: expired_certs_ward\nspec:\n  command: {} pki check-expiry {}\n  subscriptions:\n  - system\n  publish: true\n---\ntype: CheckConfig\napi_version: core/v2\nmetadata:\n  name: disk\nspec:\n  command: \"echo disk full; exit 2\"\n  interval: 2\n  subscriptions:\n  - system\n  publish: true\n  handlers:\n  - incidents\n---\ntype: Handler\napi_version: core/v2\nmetadata:\n  name: incidents\nspec:\n  type: set\n  handlers:\n  - to_file\n---\ntype: Handler\napi_version: core/v2\nmetadata:\n  name: to_file\nspec:\n  type: pipe\n  command: cat > {}\n  timeout: 10\n",
            tls.join("localhost.pem").display(),
            ward_bin().display(),
            tls.join("localhost.pem").display(),
            handled.display()
        ),
    );
    let _a1 = Agent::start(
        "web-1",
        &format!("{}subscriptions: [system]\n", Agent::mtls_yaml(&b, "web-1")),
    );
    let _a2 = Agent::start(
        "web-2",
        &format!("{}subscriptions: [system]\n", Agent::mtls_yaml(&b, "web-2")),
    );
    // Scheduled runs come at each check's phase in its interval (the guide's checks: 60 s,
    // as Sensu); the test runs them now once both agents are connected.
    wait_for(20, "both agents' keepalives", || {
        let evs = events(&b);
        ["web-1", "web-2"]
            .iter()
            .all(|a| find(&evs, a, "keepalive").is_some())
            .then_some(())
    });
    for check in ["expired_certs", "expired_certs_ward"] {
        let out = b.ctl().args(["check", "execute", check]).run();
        assert!(out.success(), "{}{}", out.stdout, out.stderr);
    }
    let evs = wait_for(40, "both agents' check results", || {
        let evs = events(&b);
        let all = ["web-1", "web-2"].iter().all(|a| {
            ["expired_certs", "expired_certs_ward", "disk"]
                .iter()
                .all(|c| find(&evs, a, c).is_some())
        });
        all.then_some(evs)
    });
    let e = find(&evs, "web-1", "expired_certs").unwrap();
    assert_eq!(e["check"]["status"], 0, "{e}");
    assert!(
        e["check"]["output"].as_str().unwrap().contains("notAfter="),
        "{e}"
    );
    let e = find(&evs, "web-2", "expired_certs_ward").unwrap();
    assert_eq!(e["check"]["status"], 0, "{e}");
    let e = find(&evs, "web-2", "disk").unwrap();
    assert_eq!(e["check"]["status"], 2, "{e}");
    assert!(
        e["check"]["output"].as_str().unwrap().contains("disk full"),
        "{e}"
    );
    // The failing event went through the set to the pipe handler, JSON on stdin.
    let got: Value = wait_for(20, "the pipe handler's file", || {
        std::fs::read_to_string(&handled)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
    });
    assert_eq!(got["check"]["metadata"]["name"], "disk", "{got}");
    assert_eq!(got["check"]["status"], 2, "{got}");
    // The keepalives registered the entities with their system facts.
    let out = b
        .ctl()
        .args(["entity", "list", "--format", "json"])
        .run()
        .ok();
    let ents: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    let web1 = ents
        .iter()
        .find(|e| e["metadata"]["name"] == "web-1")
        .expect("web-1 registered");
    // Flat, as sensuctl prints it: the spec's fields beside metadata.
    let spec = web1;
    assert_eq!(spec["entity_class"], "agent", "{web1}");
    assert!(
        !spec["system"]["hostname"].as_str().unwrap_or("").is_empty(),
        "{web1}"
    );
    assert!(
        !spec["system"]["arch"].as_str().unwrap_or("").is_empty(),
        "{web1}"
    );
    let subs = spec["subscriptions"].as_array().unwrap();
    assert!(subs.contains(&Value::from("entity:web-1")), "{web1}");
    assert_eq!(
        spec["user"], "web-1",
        "the certificate's CN is the user: {web1}"
    );
    assert_eq!(metric(&b, "ward_agent_sessions"), 2.0);
    // On demand: execute a check now, with an access token.
    let (_, login) = b.curl(&[
        "-u",
        &format!(
            "{}:{}",
            ward_testkit::backend::ADMIN,
            ward_testkit::backend::ADMIN_PASSWORD
        ),
        &format!("{}/auth", b.url()),
    ]);
    let token: Value = serde_json::from_str(&login).unwrap();
    let (code, body) = b.curl(&[
        "-X",
        "POST",
        "-H",
        &format!(
            "Authorization: Bearer {}",
            token["access_token"].as_str().unwrap()
        ),
        &format!(
            "{}/api/core/v2/namespaces/default/checks/expired_certs/execute",
            b.url()
        ),
    ]);
    assert_eq!(code, 202, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["agents"], 2, "{v}");
}

#[test]
fn bad_agent_certificates_are_refused_and_the_log_says_why() {
    let b = mtls_backend(&["good", "stolen"], &[]);
    let tls = b.tls.clone().unwrap();
    // Another CA's certificate for the same name.
    let other = ward_testkit::TempDir::new();
    let other_tls = ward_testkit::pki::bootstrap(
        other.path(),
        "ca: {cn: Other CA}\nagents:\n  - name: good\n",
    );
    // No clientAuth usage (a server certificate from the right CA).
    ward()
        .args([
            "pki",
            "issue",
            "--profile",
            "server",
            "--cn",
            "serveronly",
            "--ca-dir",
        ])
        .arg(&tls)
        .arg("--dir")
        .arg(&tls)
        .run()
        .ok();
    // Expired: a one-second certificate, left to expire.
    ward()
        .args([
            "pki",
            "issue",
            "--profile",
            "client",
            "--cn",
            "shortlived",
            "--expiry",
            "1s",
            "--ca-dir",
        ])
        .arg(&tls)
        .arg("--dir")
        .arg(&tls)
        .run()
        .ok();
    revoke(&tls, "stolen");
    std::thread::sleep(Duration::from_secs(2));
    let cases = [
        (
            "other-ca",
            format!(
            "backend-url: [wss://localhost:{}]\ntrusted-ca-file: {}\ncert-file: {}\nkey-file: {}\n",
            b.agent_port,
            tls.join("ca.pem").display(),
            other_tls.join("good.pem").display(),
            other_tls.join("good-key.pem").display()
        ),
            "unknown_ca",
        ),
        (
            "serveronly",
            Agent::mtls_yaml(&b, "serveronly"),
            "no_client_auth",
        ),
        // (An expired certificate stops `ward agent` at start now; the backend's refusal
        // of one is listeners::an_expired_client_certificate_is_refused_by_the_backend.)
        ("stolen", Agent::mtls_yaml(&b, "stolen"), "revoked"),
    ];
    let mut agents = Vec::new();
    for (name, yaml, _) in &cases {
        agents.push(Agent::start(name, yaml));
    }
    let good = Agent::start("good", &Agent::mtls_yaml(&b, "good"));
    for (name, _, label) in &cases {
        let line = wait_for(20, &format!("the refusal of {name}"), || {
            b.log()
                .lines()
                .find(|l| {
                    l.contains("agent refused") && l.contains(&format!("\"reason\":\"{label}\""))
                })
                .map(str::to_string)
        });
        assert!(
            line.contains("127.0.0.1") || line.contains("::1"),
            "peer address: {line}"
        );
        assert!(
            line.contains("CN=") && line.contains("serial"),
            "subject and serial: {line}"
        );
        let n = metric(
            &b,
            &format!("ward_agent_cert_refusals_total{{reason=\"{label}\"}}"),
        );
        assert!(n >= 1.0, "{label} counted: {n}");
    }
    let revoked = b
        .log()
        .lines()
        .find(|l| l.contains("\"reason\":\"revoked\""))
        .unwrap()
        .to_string();
    assert!(revoked.contains("CN=stolen"), "{revoked}");
    b.ctl_login();
    wait_for(20, "the good agent's keepalive", || {
        find(&events(&b), "good", "keepalive").map(|_| ())
    });
    assert_eq!(
        metric(&b, "ward_agent_sessions"),
        1.0,
        "only the good agent is connected"
    );
    drop(good);
}

#[test]
fn password_agents_and_a_wrong_password() {
    let b = password_backend(&[]);
    b.ctl_login();
    let _bad = Agent::start("intruder", &Agent::password_yaml(&b, "not-the-password"));
    let _ok = Agent::start("db-1", &Agent::password_yaml(&b, AGENT_PASSWORD));
    wait_for(20, "the refusal of the wrong password", || {
        b.log()
            .lines()
            .find(|l| {
                l.contains("agent refused")
                    && l.contains("intruder")
                    && l.contains("wrong username or password")
            })
            .map(|_| ())
    });
    wait_for(20, "db-1's keepalive", || {
        find(&events(&b), "db-1", "keepalive").map(|_| ())
    });
    assert!(find(&events(&b), "intruder", "keepalive").is_none());
    assert!(metric(&b, "ward_agent_sessions_refused_total") >= 1.0);
}

#[test]
fn a_silent_agent_raises_a_keepalive_warning_and_resolves_on_return() {
    let b = password_backend(&[]);
    b.ctl_login();
    let yaml = format!(
        "{}keepalive-interval: 1\nkeepalive-warning-timeout: 5\n",
        Agent::password_yaml(&b, AGENT_PASSWORD)
    );
    let mut a = Agent::start("quiet-1", &yaml);
    wait_for(20, "the first keepalive", || {
        find(&events(&b), "quiet-1", "keepalive")
            .filter(|e| e["check"]["status"] == 0)
            .map(|_| ())
    });
    a.kill9();
    let warned = wait_for(20, "a keepalive warning", || {
        find(&events(&b), "quiet-1", "keepalive")
            .filter(|e| e["check"]["status"] == 1)
            .cloned()
    });
    assert!(
        warned["check"]["output"]
            .as_str()
            .unwrap()
            .contains("No keepalive sent from quiet-1"),
        "{warned}"
    );
    a.spawn();
    let back = wait_for(20, "the resolution", || {
        find(&events(&b), "quiet-1", "keepalive")
            .filter(|e| e["check"]["status"] == 0)
            .cloned()
    });
    let statuses: Vec<u64> = back["check"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_u64().unwrap())
        .collect();
    let n = statuses.len();
    assert_eq!(
        &statuses[n - 2..],
        &[1, 0],
        "warning then resolution: {statuses:?}"
    );
}

#[test]
fn killing_the_backend_with_9_loses_no_agent_event() {
    let mut b = password_backend(&[]);
    b.ctl_login();
    // 150 events a second through each local API: past Sensu's default events-rate-limit.
    let yaml = format!(
        "{}events-rate-limit: 0\n",
        Agent::password_yaml(&b, AGENT_PASSWORD)
    );
    let a1 = Agent::start("sender-1", &yaml);
    let a2 = Agent::start("sender-2", &yaml);
    // Numbered updates of a few checks: a lost update leaves occurrences short, a
    // reordered one leaves an older output last.
    let (checks, updates) = (3, 60);
    for i in 0..updates {
        for a in [&a1, &a2] {
            for c in 0..checks {
                let (code, body) = a.post_event(&format!(
                    r#"{{"check":{{"metadata":{{"name":"c{c}"}},"status":1,"output":"update {i}"}}}}"#
                ));
                assert_eq!(code, 202, "{body}");
            }
        }
        if i == updates / 3 {
            b.kill9();
        }
        if i == updates / 2 {
            b.spawn();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let last = format!("update {}", updates - 1);
    let evs = wait_for(60, "every update to be stored", || {
        let evs = events(&b);
        let done = ["sender-1", "sender-2"].iter().all(|a| {
            (0..checks).all(|c| {
                find(&evs, a, &format!("c{c}"))
                    .is_some_and(|e| e["check"]["output"] == last.as_str())
            })
        });
        done.then_some(evs)
    });
    for a in ["sender-1", "sender-2"] {
        for c in 0..checks {
            let e = find(&evs, a, &format!("c{c}")).unwrap();
            let n = e["check"]["occurrences"].as_u64().unwrap();
            // At least every update (an event stored just before the kill, whose answer was
            // lost, is sent again and counted twice).
            assert!(
                n >= updates as u64,
                "{a}/c{c}: {n} occurrences for {updates} updates: {e}"
            );
        }
    }
}

#[test]
fn a_certificate_revoked_while_connected_loses_its_session_at_renewal() {
    let b = mtls_backend(&["roamer"], &["--agent-auth-session-max", "3s"]);
    let tls = b.tls.clone().unwrap();
    let _a = Agent::start("roamer", &Agent::mtls_yaml(&b, "roamer"));
    wait_for(20, "the agent's session", || {
        (metric(&b, "ward_agent_sessions") == 1.0).then_some(())
    });
    // Sessions are renewed every 3 s here: the agent reconnects and is let in again.
    wait_for(20, "a renewed session", || {
        (metric(&b, "ward_agent_sessions_opened_total") >= 2.0).then_some(())
    });
    revoke(&tls, "roamer");
    let line = wait_for(
        20,
        "the refusal of the revoked certificate at renewal",
        || {
            b.log()
                .lines()
                .find(|l| l.contains("\"reason\":\"revoked\"") && l.contains("CN=roamer"))
                .map(str::to_string)
        },
    );
    assert!(line.contains("serial"), "{line}");
    wait_for(10, "no session left", || {
        (metric(&b, "ward_agent_sessions") == 0.0).then_some(())
    });
}
