//! `ward backend` and `ward ctl` end to end: TLS, authentication, the guides' resources.

use ward_testkit::backend::{Backend, ADMIN, ADMIN_PASSWORD};
use ward_testkit::{pki, require_tool, ward, TempDir};

const GUIDE_PG: &str = "type: PostgresConfig\napi_version: store/v1\nmetadata:\n  name: sensu_postgres\nspec:\n  dsn: \"postgresql://sensu:mypass@postgres.example.com:5432/sensu_events\"\n  pool_size: 20\n  strict: false\n";
const GUIDE_CHECK: &str = "---\ntype: CheckConfig\napi_version: core/v2\nmetadata:\n  name: expired_certs\nspec:\n  command: openssl x509 -noout -enddate -in <cert-name>.pem\n  subscriptions:\n  - system\n  publish: true\n";

fn parse_yaml_docs(text: &str) -> Vec<serde_json::Value> {
    ward_types::parse_stream("t", text)
        .unwrap()
        .iter()
        .map(|r| serde_json::to_value(r.to_document()).unwrap())
        .collect()
}

#[test]
fn the_guides_resources_round_trip_through_ward_ctl() {
    require_tool("curl");
    let b = Backend::start(true);
    b.ctl_login();
    std::fs::write(b.dir.join("pg.yml"), GUIDE_PG).unwrap();
    std::fs::write(b.dir.join("check.yml"), GUIDE_CHECK).unwrap();
    b.ctl()
        .args(["create", "-f"])
        .arg(b.dir.join("pg.yml"))
        .args(["-f"])
        .arg(b.dir.join("check.yml"))
        .run()
        .ok();
    for (types, original) in [
        ("store/v1.PostgresConfig", GUIDE_PG),
        ("core/v2.CheckConfig", GUIDE_CHECK),
    ] {
        let dumped = b
            .ctl()
            .args(["dump", types, "--format", "yaml"])
            .run()
            .ok()
            .stdout;
        let mut back = parse_yaml_docs(&dumped);
        assert_eq!(back.len(), 1, "{dumped}");
        assert_eq!(back[0]["metadata"]["created_by"], ADMIN);
        back[0]["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("created_by");
        assert_eq!(back, parse_yaml_docs(original), "{dumped}");
    }
    // /health lists the PostgresConfig in the guides' shape, IDs as exact integers.
    let (code, body) = b.curl(&[&format!("{}/health?timeout=3", b.url())]);
    assert_eq!(code, 200);
    let h: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(h["Alarms"].is_null());
    let id = h["ClusterHealth"][0]["MemberID"].as_u64().unwrap();
    assert_eq!(h["ClusterHealth"][0]["MemberIDHex"], format!("{id:x}"));
    assert_eq!(h["Header"]["member_id"].as_u64().unwrap(), id);
    assert_eq!(h["PostgresHealth"][0]["Name"], "sensu_postgres");
    let table = b.ctl().args(["check", "list"]).run().ok().stdout;
    assert!(
        table.contains("expired_certs") && table.contains("openssl x509"),
        "{table}"
    );
    let health = b.ctl().args(["cluster", "health"]).run().ok().stdout;
    assert!(health.contains("sensu_postgres"), "{health}");
    // The saved login is private.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(b.dir.join("ctl.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // delete -f removes them.
    b.ctl()
        .args(["delete", "-f"])
        .arg(b.dir.join("check.yml"))
        .run()
        .ok();
    assert!(b
        .ctl()
        .args(["dump", "core/v2.CheckConfig"])
        .run()
        .ok()
        .stdout
        .trim()
        .is_empty());
}

#[test]
fn authentication_and_authorisation_refuse_what_they_should() {
    require_tool("curl");
    let b = Backend::start(true);
    let url = b.url();
    let checks = format!("{url}/api/core/v2/namespaces/default/checks");
    // No token, a bad password, a revoked token: 401.
    assert_eq!(b.curl(&[&checks]).0, 401);
    assert_eq!(
        b.curl(&[
            "-u",
            &format!("{ADMIN}:wrong password"),
            &format!("{url}/auth")
        ])
        .0,
        401
    );
    let t = b.token(ADMIN, ADMIN_PASSWORD);
    assert_eq!(
        b.curl(&["-H", &format!("Authorization: Bearer {t}"), &checks])
            .0,
        200
    );
    assert_eq!(
        b.curl(&[
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {t}"),
            &format!("{url}/auth/logout")
        ])
        .0,
        204
    );
    assert_eq!(
        b.curl(&["-H", &format!("Authorization: Bearer {t}"), &checks])
            .0,
        401
    );
    assert_eq!(
        b.curl(&["-H", "Authorization: Bearer not-a-token", &checks])
            .0,
        401
    );
    // A view user reads but may not write: 403.
    let admin = b.token(ADMIN, ADMIN_PASSWORD);
    let auth = format!("Authorization: Bearer {admin}");
    let (code, body) = b.curl(&[
        "-X",
        "POST",
        "-H",
        &auth,
        "-d",
        r#"{"username":"viewer","password":"viewer-password","groups":["view"]}"#,
        &format!("{url}/api/core/v2/users"),
    ]);
    assert_eq!(code, 201, "{body}");
    let viewer = b.token("viewer", "viewer-password");
    let vauth = format!("Authorization: Bearer {viewer}");
    assert_eq!(b.curl(&["-H", &vauth, &checks]).0, 200);
    let (code, body) = b.curl(&[
        "-X",
        "POST",
        "-H",
        &vauth,
        "-d",
        r#"{"type":"CheckConfig","metadata":{"name":"x"},"spec":{"command":"true"}}"#,
        &checks,
    ]);
    assert_eq!(code, 403, "{body}");
    let message = serde_json::from_str::<serde_json::Value>(&body).unwrap()["message"].clone();
    assert_eq!(
        message,
        "user \"viewer\" (groups: view) may not create checks in namespace \"default\": no role binding allows it",
        "{body}"
    );
    // Refresh gives a new pair; the refresh token is single-use.
    let (_, body) = b.curl(&[
        "-u",
        &format!("{ADMIN}:{ADMIN_PASSWORD}"),
        &format!("{url}/auth"),
    ]);
    let refresh = serde_json::from_str::<serde_json::Value>(&body).unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let rbody = format!(r#"{{"refresh_token":"{refresh}"}}"#);
    assert_eq!(
        b.curl(&["-X", "POST", "-d", &rbody, &format!("{url}/auth/token")])
            .0,
        200
    );
    assert_eq!(
        b.curl(&["-X", "POST", "-d", &rbody, &format!("{url}/auth/token")])
            .0,
        401
    );
    // A disabled user cannot log in; the seeded agent user has no password until one is set.
    assert_eq!(
        b.curl(&[
            "-X",
            "DELETE",
            "-H",
            &auth,
            &format!("{url}/api/core/v2/users/viewer")
        ])
        .0,
        204
    );
    assert_eq!(
        b.curl(&["-u", "viewer:viewer-password", &format!("{url}/auth")])
            .0,
        401
    );
    assert_eq!(b.curl(&["-u", "agent:", &format!("{url}/auth")]).0, 401);
    // Passwords are stored as argon2id hashes.
    let db = std::fs::read(b.dir.join("state/ward.db")).unwrap();
    let text = String::from_utf8_lossy(&db);
    assert!(text.contains("$argon2id$") && !text.contains("viewer-password"));
}

#[test]
fn bad_requests_get_a_4xx_naming_the_problem_and_store_nothing() {
    require_tool("curl");
    let b = Backend::start(false);
    let url = b.url();
    let t = b.token(ADMIN, ADMIN_PASSWORD);
    let auth = format!("Authorization: Bearer {t}");
    let checks = format!("{url}/api/core/v2/namespaces/default/checks");
    let cases: &[(&str, u16, &str)] = &[
        ("{not json", 400, "not valid JSON"),
        (
            r#"{"type":"CheckConfig","metadata":{"name":"x"},"spec":{"command":"true","interval":"ten"}}"#,
            400,
            "spec.interval",
        ),
        (
            r#"{"type":"CheckConfig","metadata":{"name":"x"},"spec":{"command":"true","intervall":10}}"#,
            400,
            "spec.intervall: unknown field",
        ),
        (
            r#"{"type":"CheckConfig","metadata":{"name":"bad name"},"spec":{"command":"true"}}"#,
            400,
            "metadata.name",
        ),
        (
            r#"{"type":"Bogus","metadata":{"name":"x"},"spec":{}}"#,
            400,
            "unknown type",
        ),
        (
            r#"{"type":"Handler","metadata":{"name":"x"},"spec":{"type":"pipe"}}"#,
            400,
            "a Handler cannot be stored as a CheckConfig",
        ),
        (
            r#"{"type":"CheckConfig","metadata":{"name":"x","namespace":"other"},"spec":{"command":"true"}}"#,
            400,
            "does not match the namespace",
        ),
    ];
    for (body, code, needle) in cases {
        let (c, resp) = b.curl(&["-X", "POST", "-H", &auth, "-d", body, &checks]);
        assert_eq!(c, *code, "{body}: {resp}");
        assert!(resp.contains(needle), "{body}: {resp}");
    }
    let big = format!(
        r#"{{"type":"CheckConfig","metadata":{{"name":"big"}},"spec":{{"command":"{}"}}}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    std::fs::write(b.dir.join("big.json"), big).unwrap();
    assert_eq!(
        b.curl(&[
            "-X",
            "POST",
            "-H",
            &auth,
            "--data-binary",
            &format!("@{}", b.dir.join("big.json").display()),
            &checks
        ])
        .0,
        413
    );
    assert_eq!(
        b.curl(&[
            "-X",
            "POST",
            "-H",
            &auth,
            "-d",
            r#"{"type":"CheckConfig","metadata":{"name":"x"},"spec":{"command":"true"}}"#,
            &format!("{url}/api/core/v2/namespaces/nope/checks")
        ])
        .0,
        404
    );
    let (_, list) = b.curl(&["-H", &auth, &checks]);
    assert_eq!(list.trim(), "[]", "nothing was stored");
    // Events: the body is checked as a whole, even where Ward keeps a member as posted.
    let events = format!("{url}/api/core/v2/namespaces/default/events");
    let event = |extra: &str| {
        format!(
            r#"{{"entity":{{"metadata":{{"name":"web-1"}}}},"check":{{"metadata":{{"name":"c"}},"status":0{extra}}}}}"#
        )
    };
    let deep = event(&format!(
        r#","labels":{}1{}"#,
        "[".repeat(200),
        "]".repeat(200)
    ));
    for (body, needle) in [
        ("[1]".to_string(), "event: must be a JSON object"),
        (event(r#","labels":"\ud800""#), "not valid JSON"),
        (event(r#","labels":1e400"#), "not valid JSON"),
        (deep, "not valid JSON"),
        (event(r#","status":"2""#), "check.status"),
    ] {
        let (c, resp) = b.curl(&["-X", "POST", "-H", &auth, "-d", &body, &events]);
        assert_eq!(c, 400, "{body}: {resp}");
        assert!(resp.contains(needle), "{body}: {resp}");
    }
    let (_, list) = b.curl(&["-H", &auth, &events]);
    assert_eq!(list.trim(), "[]", "no event was stored");
    // A duplicate create is a conflict; an unknown resource is 404.
    let ok = r#"{"type":"CheckConfig","metadata":{"name":"x"},"spec":{"command":"true"}}"#;
    assert_eq!(
        b.curl(&["-X", "POST", "-H", &auth, "-d", ok, &checks]).0,
        201
    );
    assert_eq!(
        b.curl(&["-X", "POST", "-H", &auth, "-d", ok, &checks]).0,
        409
    );
    assert_eq!(b.curl(&["-H", &auth, &format!("{checks}/nope")]).0, 404);
    // ward ctl refuses a malformed file before sending anything.
    b.ctl_login();
    std::fs::write(
        b.dir.join("bad.yml"),
        "type: CheckConfig\nmetadata: {name: cert-check}\nspec: {command: c, interval: -1}\n",
    )
    .unwrap();
    let out = b
        .ctl()
        .args(["create", "-f"])
        .arg(b.dir.join("bad.yml"))
        .run()
        .fails_with(1);
    assert!(out.stderr.contains("spec.interval"), "{}", out.stderr);
}

#[test]
fn tls_is_the_only_way_in_and_ward_ctl_says_why_a_server_is_refused() {
    require_tool("curl");
    let b = Backend::start(true);
    // Plaintext to the TLS port: no data, a clean close, counted.
    let (code, body) = b.curl(&[&format!("http://127.0.0.1:{}/health", b.api_port)]);
    assert_eq!((code, body.as_str()), (0, ""));
    let (_, metrics) = b.curl(&[&format!("{}/metrics", b.url())]);
    assert!(
        metrics.contains("ward_tls_plaintext_requests_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("ward_certificate_days_left{"), "{metrics}");
    // A client that trusts another CA.
    let other = TempDir::new();
    pki::init_ca(other.path(), "Other CA", &[]);
    let out = b
        .ctl_configure()
        .arg("--trusted-ca-file")
        .arg(other.join("ca.pem"))
        .run()
        .fails_with(1);
    assert!(
        out.stderr.contains("is not signed by a CA in"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_renewed_certificate_is_served_without_a_restart() {
    require_tool("openssl");
    let b = Backend::start(true);
    let tls = b.tls.clone().unwrap();
    let served = || {
        let out = ward_testkit::Command::shell(&format!("openssl s_client -connect 127.0.0.1:{} -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -serial", b.api_port)).run();
        out.stdout.trim().to_string()
    };
    let before = served();
    assert!(before.starts_with("serial="), "{before}");
    let pid = b.pid();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    ward()
        .args(["pki", "renew", "--ca-dir"])
        .arg(&tls)
        .arg(tls.join("localhost.pem"))
        .run()
        .ok();
    let mut after = before.clone();
    for _ in 0..30 {
        after = served();
        if after != before {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_ne!(after, before, "the renewed certificate is served");
    let renewed = pki::info_json(&tls.join("localhost.pem"))["serial"]
        .as_str()
        .unwrap()
        .replace(':', "")
        .to_uppercase();
    assert_eq!(after.trim_start_matches("serial="), renewed);
    assert_eq!(b.pid(), pid);
    // A broken pair on disk is refused; the served one stays.
    std::fs::copy(tls.join("ca-key.pem"), tls.join("localhost-key.pem")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1200));
    assert_eq!(served(), after);
    assert!(
        b.log().contains("refused the new TLS certificate"),
        "{}",
        b.log()
    );
}

#[test]
fn backend_configuration_errors_name_the_key() {
    let d = TempDir::new();
    std::fs::write(
        d.join("backend.yml"),
        "api-listen-adress: \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let out = ward()
        .args(["backend", "start", "--config-file"])
        .arg(d.join("backend.yml"))
        .run()
        .fails_with(1);
    assert!(
        out.stderr.contains("api-listen-adress") && out.stderr.contains("unknown key"),
        "{}",
        out.stderr
    );
    let out = ward()
        .args(["backend", "start", "--cert-file", "/x.pem", "--state-dir"])
        .arg(d.path())
        .run()
        .fails_with(1);
    assert!(
        out.stderr.contains("key-file") && out.stderr.contains("TLS needs both"),
        "{}",
        out.stderr
    );
    let out = ward()
        .args(["backend", "start", "--state-dir"])
        .arg(d.join("none"))
        .run()
        .fails_with(1);
    assert!(out.stderr.contains("not initialised"), "{}", out.stderr);
    ward()
        .args(["backend", "init", "--state-dir"])
        .arg(d.join("s"))
        .args([
            "--cluster-admin-username",
            "admin",
            "--cluster-admin-password",
            "long enough",
        ])
        .run()
        .ok();
    let out = ward()
        .args(["backend", "init", "--state-dir"])
        .arg(d.join("s"))
        .args([
            "--cluster-admin-username",
            "admin",
            "--cluster-admin-password",
            "long enough",
        ])
        .run()
        .fails_with(1);
    assert!(out.stderr.contains("already initialised"), "{}", out.stderr);
    // A group-readable key is refused with the chmod.
    let tls = pki::bootstrap(d.path(), "ca: {cn: C}\nbackends:\n  - name: localhost\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        tls.join("localhost-key.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = ward()
        .args(["backend", "start", "--state-dir"])
        .arg(d.join("s"))
        .arg("--cert-file")
        .arg(tls.join("localhost.pem"))
        .arg("--key-file")
        .arg(tls.join("localhost-key.pem"))
        .run()
        .fails_with(1);
    assert!(out.stderr.contains("chmod 600"), "{}", out.stderr);
}

/// A running `ward quickstart`, killed if the test fails.
struct Quickstart {
    child: std::process::Child,
    log: std::path::PathBuf,
    out: std::path::PathBuf,
}

impl Quickstart {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the summary quickstart prints once it has proved the pipeline works.
    /// The agent's events can be listed before that proof finishes, so a test that stops
    /// quickstart as soon as it sees them would cut the summary off.
    fn wait_for_summary(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .contains("Ctrl-C stops both.")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "quickstart printed no summary\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Ctrl-C: exit status and stdout.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        let _ = ward_testkit::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .run();
        let status = self.child.wait().unwrap();
        (status, std::fs::read_to_string(&self.out).unwrap())
    }
}

impl Drop for Quickstart {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn quickstart_runs_a_backend_and_an_agent_over_wss_in_one_command_and_reuses_it() {
    let d = TempDir::new();
    let [api, agent, dash, agent_api] = [(); 4].map(|_| ward_testkit::free_port());
    // The agent is named after the host, or quickstart-agent when the host name is no
    // entity name.
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| ward_types::check_name("name", h).is_ok())
        .unwrap_or_else(|| "quickstart-agent".into());
    let mut runs = 0;
    let mut start = || {
        runs += 1;
        let log = d.join(format!("quickstart-{runs}.log"));
        let out = d.join(format!("quickstart-{runs}.out"));
        let child = std::process::Command::new(ward_testkit::ward_bin())
            .args(["quickstart", "--dir", "qs"])
            .args(["--api-port", &api.to_string()])
            .args(["--agent-port", &agent.to_string()])
            .args(["--dashboard-port", &dash.to_string()])
            .args(["--agent-api-port", &agent_api.to_string()])
            .args([
                "--agent-socket-port",
                &ward_testkit::free_port().to_string(),
            ])
            .args([
                "--agent-statsd-port",
                &ward_testkit::free_port().to_string(),
            ])
            .current_dir(d.path())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Quickstart { child, log, out }
    };
    let ctl = || ward().env("WARD_CTL_CONFIG", d.join("ctl.json")).arg("ctl");
    // Waits until `ward ctl event list` shows the agent's keepalive and an expired_certs
    // with status 0 from the agent, both at or after `since`.
    let events_since = |q: &Quickstart, since: i64| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let out = ctl().args(["event", "list", "--format", "json"]).run();
            let events: Vec<serde_json::Value> = if out.success() {
                serde_json::from_str(&out.stdout).unwrap_or_default()
            } else {
                Vec::new()
            };
            let find = |check: &str| {
                events.iter().find(|e| {
                    let s = e;
                    s["entity"]["metadata"]["name"] == name.as_str()
                        && s["entity"]["entity_class"] == "agent"
                        && s["check"]["metadata"]["name"] == check
                        && s["check"]["executed"].as_i64().unwrap_or(0) >= since
                })
            };
            if let (Some(k), Some(x)) = (find("keepalive"), find("expired_certs")) {
                assert_eq!(k["check"]["status"], 0, "{k}");
                let check = &x["check"];
                assert_eq!(check["status"], 0, "{x}");
                assert!(
                    check["output"]
                        .as_str()
                        .unwrap()
                        .starts_with("OK: 1 certificate")
                        && check["command"]
                            .as_str()
                            .unwrap()
                            .contains("pki check-expiry")
                        && check["subscriptions"] == serde_json::json!(["system"])
                        && check["interval"] == 60,
                    "{x}"
                );
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no keepalive and expired_certs from the agent {name} since {since}\nctl: {}{}\nquickstart's log:\n{}",
                out.stdout,
                out.stderr,
                q.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };

    let q = start();
    let password = {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let p = std::fs::read_to_string(d.join("qs/admin-password")).unwrap_or_default();
            let configured = !p.is_empty()
                && ctl()
                    .args([
                        "configure",
                        "-n",
                        "--url",
                        &format!("https://localhost:{api}"),
                    ])
                    .args(["--username", "admin", "--password", p.trim()])
                    .arg("--trusted-ca-file")
                    .arg(d.join("qs/tls/ca.pem"))
                    .run()
                    .success();
            if configured {
                break p;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "quickstart did not serve its API\n{}",
                q.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    events_since(&q, 0);
    q.wait_for_summary();
    let health = ctl().args(["cluster", "health"]).run().ok().stdout;
    assert!(health.contains("true"), "{health}");
    let (status, out) = q.stop();
    assert!(status.success(), "Ctrl-C stops both cleanly: {status}");
    for want in [
        "created a CA",
        "published CRL #1",
        &format!("agent port 127.0.0.1:{agent} (wss, client certificates (mTLS))"),
        &format!("wss://localhost:{agent}"),
        "ctl configure -n",
        "--trusted-ca-file",
        "ctl event list",
        "expired_certs (created)",
        "stopped",
    ] {
        assert!(out.contains(want), "{want:?} not in:\n{out}");
    }
    for f in ["agent.pem", "agent-key.pem", "crl.pem"] {
        assert!(d.join("qs/tls").join(f).exists(), "{f}");
    }
    let agent_cert = std::fs::read(d.join("qs/tls/agent.pem")).unwrap();

    // Again on the same folder: the same CA, certificates, state and password, a new CRL,
    // the check left as it is, and the agent back with fresh events.
    let since = ward_types::unix_now();
    let q = start();
    events_since(&q, since);
    q.wait_for_summary();
    let (status, out) = q.stop();
    assert!(status.success(), "{status}");
    for want in [
        "reusing the CA",
        "reusing qs/state",
        "published CRL #2",
        "expired_certs (already there",
        "stopped",
    ] {
        assert!(out.contains(want), "{want:?} not in:\n{out}");
    }
    assert_eq!(
        std::fs::read_to_string(d.join("qs/admin-password")).unwrap(),
        password
    );
    assert_eq!(
        std::fs::read(d.join("qs/tls/agent.pem")).unwrap(),
        agent_cert
    );
}

fn event_json(entity: &str, check: &str, status: u32) -> String {
    format!(
        r#"{{"entity":{{"entity_class":"agent","metadata":{{"name":"{entity}"}}}},"check":{{"metadata":{{"name":"{check}"}},"status":{status},"output":"out {status}","interval":60}}}}"#
    )
}

#[test]
fn events_keep_their_history_and_ward_ctl_resolves_them() {
    require_tool("curl");
    let b = Backend::start(true);
    let t = b.token(ADMIN, ADMIN_PASSWORD);
    let auth = format!("Authorization: Bearer {t}");
    let events = format!("{}/api/core/v2/namespaces/default/events", b.url());
    for status in [2, 2, 2, 0] {
        let (code, body) = b.curl(&[
            "-X",
            "POST",
            "-H",
            &auth,
            "-d",
            &event_json("web-1", "http", status),
            &events,
        ]);
        assert_eq!(code, 201, "{body}");
    }
    let (code, body) = b.curl(&["-H", &auth, &format!("{events}/web-1/http")]);
    assert_eq!(code, 200);
    let ev: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ev["check"]["history"].as_array().unwrap().len(), 4);
    assert_eq!(ev["check"]["occurrences"], 1);
    assert_eq!(ev["check"]["occurrences_watermark"], 3);
    assert_eq!(ev["check"]["state"], "passing");
    assert!(ev["check"]["last_ok"].as_i64().unwrap() > 0);
    // By entity, and the entity was registered.
    let (_, list) = b.curl(&["-H", &auth, &format!("{events}/web-1")]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&list)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        b.curl(&[
            "-H",
            &auth,
            &format!("{}/api/core/v2/namespaces/default/entities/web-1", b.url())
        ])
        .0,
        200
    );
    // A bad event names the field and stores nothing.
    let (code, body) = b.curl(&["-X", "POST", "-H", &auth, "-d", r#"{"entity":{"metadata":{"name":"web-2"}},"check":{"metadata":{"name":"http"},"status":"bad"}}"#, &events]);
    assert_eq!(code, 400);
    assert!(body.contains("check.status"), "{body}");
    assert_eq!(
        b.curl(&["-H", &auth, &format!("{events}/web-2/http")]).0,
        404
    );
    // ward ctl lists and resolves.
    b.ctl_login();
    b.curl(&[
        "-X",
        "POST",
        "-H",
        &auth,
        "-d",
        &event_json("web-1", "disk", 2),
        &events,
    ]);
    let table = b.ctl().args(["event", "list"]).run().ok().stdout;
    assert!(
        table.contains("web-1/disk") && table.contains("failing"),
        "{table}"
    );
    let out = b
        .ctl()
        .args(["event", "resolve", "web-1", "disk"])
        .run()
        .ok()
        .stdout;
    assert!(out.contains("state passing"), "{out}");
    // Check output with an escape sequence (clear the screen, set the title) is shown
    // escaped in the table, never sent to the terminal.
    let evil = r#"{"entity":{"entity_class":"agent","metadata":{"name":"web-1"}},"check":{"metadata":{"name":"evil"},"status":2,"output":"\u001b[2J\u001b]0;pwned\u0007 gone","interval":60}}"#;
    let (code, body) = b.curl(&["-X", "POST", "-H", &auth, "-d", evil, &events]);
    assert_eq!(code, 201, "{body}");
    let table = b.ctl().args(["event", "list"]).run().ok().stdout;
    assert!(
        !table.contains('\u{1b}') && !table.contains('\u{7}'),
        "{table:?}"
    );
    assert!(table.contains(r"\e[2J\e]0;pwned\x07 gone"), "{table}");
}

#[test]
fn every_acknowledged_event_survives_kill_9() {
    require_tool("curl");
    let mut b = Backend::start(true);
    let t = b.token(ADMIN, ADMIN_PASSWORD);
    let url = format!("{}/api/core/v2/namespaces/default/events", b.url());
    // One curl process posting 2,000 events over one keep-alive connection, one status
    // line per request, while the backend is killed with SIGKILL.
    let mut args: Vec<String> = vec!["-s".into()];
    for i in 0..2000 {
        if i > 0 {
            args.push("--next".into());
        }
        args.extend([
            "--cacert".into(),
            b.ca().unwrap().display().to_string(),
            "-o".into(),
            "/dev/null".into(),
            "-w".into(),
            "%{http_code}\n".into(),
            "-H".into(),
            format!("Authorization: Bearer {t}"),
            "-d".into(),
            event_json("fleet", &format!("check-{i}"), 2),
            url.clone(),
        ]);
    }
    let child = std::process::Command::new("curl")
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    b.kill9();
    let out = child.wait_with_output().unwrap();
    let codes: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let acked: Vec<usize> = codes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.as_str() == "201")
        .map(|(i, _)| i)
        .collect();
    assert!(
        !acked.is_empty(),
        "no event was acknowledged before the kill: {codes:?}"
    );
    assert!(
        acked.len() < 2000,
        "the kill came after the stream ended; the test proves nothing"
    );
    eprintln!("{} of 2000 events acknowledged before SIGKILL", acked.len());
    b.spawn();
    let t = b.token(ADMIN, ADMIN_PASSWORD);
    let (code, body) = b.curl(&[
        "-H",
        &format!("Authorization: Bearer {t}"),
        &format!("{}/fleet?limit=5000", url),
    ]);
    assert_eq!(code, 200);
    let stored: std::collections::BTreeSet<String> =
        serde_json::from_str::<serde_json::Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["check"]["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
    for i in &acked {
        assert!(
            stored.contains(&format!("check-{i}")),
            "acknowledged event check-{i} was lost ({} acknowledged, {} stored)",
            acked.len(),
            stored.len()
        );
    }
}

#[test]
fn the_dashboard_serves_its_page_over_tls_and_metrics_count_events() {
    require_tool("curl");
    let b = Backend::start(true);
    let dash = format!("https://localhost:{}", b.dashboard_port);
    let (code, page) = b.curl(&[&format!("{dash}/")]);
    assert_eq!(code, 200);
    assert!(
        page.contains("<title>Ward</title>") && page.contains("/auth"),
        "{page}"
    );
    // The dashboard speaks the API on its own origin.
    assert_eq!(b.curl(&[&format!("{dash}/health")]).0, 200);
    assert_eq!(
        b.curl(&[&format!("http://127.0.0.1:{}/", b.dashboard_port)])
            .0,
        0,
        "TLS only"
    );
    let t = b.token(ADMIN, ADMIN_PASSWORD);
    let auth = format!("Authorization: Bearer {t}");
    b.curl(&[
        "-X",
        "POST",
        "-H",
        &auth,
        "-d",
        &event_json("web-1", "http", 0),
        &format!("{}/api/core/v2/namespaces/default/events", b.url()),
    ]);
    let (_, metrics) = b.curl(&[&format!("{}/metrics", b.url())]);
    assert!(
        metrics.contains("ward_events_received_total 1")
            && metrics.contains("ward_events_stored_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ward_store_write_seconds_count 1"),
        "{metrics}"
    );
    // A client that does not trust the server's CA fails the handshake: counted by reason.
    let _ = ward_testkit::Command::new("curl")
        .args(["-s", &format!("{}/health", b.url())])
        .run();
    let (_, metrics) = b.curl(&[&format!("{}/metrics", b.url())]);
    assert!(
        metrics.contains("ward_tls_handshake_failures_by_reason_total{reason=\"alert_"),
        "{metrics}"
    );
}

#[test]
fn expired_tokens_are_refused_and_ward_ctl_manages_users() {
    require_tool("curl");
    let b = Backend::start_with(true, &["--access-token-ttl", "2s"]);
    let t = b.token(ADMIN, ADMIN_PASSWORD);
    let checks = format!("{}/api/core/v2/namespaces/default/checks", b.url());
    assert_eq!(
        b.curl(&["-H", &format!("Authorization: Bearer {t}"), &checks])
            .0,
        200
    );
    std::thread::sleep(std::time::Duration::from_millis(3100));
    let (code, body) = b.curl(&["-H", &format!("Authorization: Bearer {t}"), &checks]);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("expired"), "{body}");
    // ward ctl refreshes an expired access token by itself.
    b.ctl_login();
    std::thread::sleep(std::time::Duration::from_millis(3100));
    b.ctl()
        .args([
            "user",
            "create",
            "ops",
            "--password",
            "ops password",
            "--groups",
            "view",
        ])
        .run()
        .ok();
    let users = b
        .ctl()
        .args(["user", "list", "--format", "json"])
        .run()
        .ok()
        .stdout;
    assert!(
        users.contains("\"ops\"") && users.contains("view"),
        "{users}"
    );
    b.ctl()
        .args([
            "user",
            "change-password",
            "ops",
            "--new-password",
            "new ops password",
        ])
        .run()
        .ok();
    assert_eq!(
        b.curl(&["-u", "ops:ops password", &format!("{}/auth", b.url())])
            .0,
        401
    );
    assert_eq!(
        b.curl(&["-u", "ops:new ops password", &format!("{}/auth", b.url())])
            .0,
        200
    );
    b.ctl().args(["user", "disable", "ops"]).run().ok();
    assert_eq!(
        b.curl(&["-u", "ops:new ops password", &format!("{}/auth", b.url())])
            .0,
        401
    );
    let out = b
        .ctl()
        .args(["user", "create", "x", "--password", "short"])
        .run()
        .fails_with(1);
    assert!(
        out.stderr.contains("at least 8 characters"),
        "{}",
        out.stderr
    );
}

#[test]
fn ward_ctl_configure_asks_for_what_is_missing() {
    let b = Backend::start(true);
    let out = b
        .ctl()
        .args(["configure", "--trusted-ca-file"])
        .arg(b.ca().unwrap())
        .stdin(format!("{}\n{ADMIN}\n{ADMIN_PASSWORD}\n", b.url()))
        .run()
        .ok();
    assert!(
        out.stderr.contains("url: ") && out.stderr.contains("password: "),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("logged in"), "{}", out.stdout);
    b.ctl().args(["cluster", "health"]).run().ok();
    let out = b
        .ctl()
        .args(["configure", "-n", "--url", &b.url()])
        .run()
        .fails_with(1);
    assert!(
        out.stderr.contains("--username is required with -n"),
        "{}",
        out.stderr
    );
}

#[test]
fn ward_ctl_explains_an_expired_certificate_and_a_wrong_name() {
    // Allowed, so that the backend serves the expired certificate it reloads (it refuses
    // one otherwise, listeners.rs) and ward ctl has one to explain.
    let b = Backend::start_with(true, &["--allow-expired-certificate", "true"]);
    let tls = b.tls.clone().unwrap();
    let configure = || {
        b.ctl_configure()
            .arg("--trusted-ca-file")
            .arg(b.ca().unwrap())
            .run()
    };
    configure().ok();
    // The backend picks up whatever is written to its certificate files.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    pki::issue(
        &tls,
        "server",
        "localhost",
        &["--hosts", "127.0.0.1", "--expiry", "1s", "--force"],
    );
    let out = configure().fails_with(1);
    assert!(out.stderr.contains("expired on 20"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    ward()
        .args([
            "pki",
            "issue",
            "--profile",
            "server",
            "--cn",
            "other.example.com",
            "--dir",
        ])
        .arg(&tls)
        .run()
        .ok();
    std::fs::copy(tls.join("other.example.com.pem"), tls.join("localhost.pem")).unwrap();
    std::fs::copy(
        tls.join("other.example.com-key.pem"),
        tls.join("localhost-key.pem"),
    )
    .unwrap();
    let out = configure().fails_with(1);
    assert!(
        out.stderr
            .contains("the name \"localhost\" is not in the server certificate's SANs")
            && out.stderr.contains("other.example.com"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_env_file_is_loaded_before_the_configuration_is_read() {
    let d = TempDir::new();
    ward()
        .args(["backend", "init", "--state-dir"])
        .arg(d.join("s"))
        .args([
            "--cluster-admin-username",
            "admin",
            "--cluster-admin-password",
            "long enough",
        ])
        .run()
        .ok();
    std::fs::write(
        d.join("ward-backend.env"),
        "# as /etc/default/ward-backend\nWARD_BACKEND_LOG_LEVEL=\"loud\"\nPGSSLMODE=verify-full\n",
    )
    .unwrap();
    let out = ward()
        .args(["backend", "start", "--state-dir"])
        .arg(d.join("s"))
        .arg("--env-file")
        .arg(d.join("ward-backend.env"))
        .run()
        .fails_with(1);
    assert!(
        out.stderr
            .contains("log-level (from $WARD_BACKEND_LOG_LEVEL)")
            && out.stderr.contains("\"loud\""),
        "{}",
        out.stderr
    );
    std::fs::write(d.join("bad.env"), "NOT A LINE\n").unwrap();
    let out = ward()
        .args(["backend", "start", "--state-dir"])
        .arg(d.join("s"))
        .arg("--env-file")
        .arg(d.join("bad.env"))
        .run()
        .fails_with(1);
    assert!(
        out.stderr.contains("bad.env:1: expected KEY=VALUE"),
        "{}",
        out.stderr
    );
}
