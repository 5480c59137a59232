//! Issue 18, the API's part, end to end through `ward backend`: login as a CPU sink and a
//! user oracle, throttling, sessions, the last admin, changing one's own password, security
//! headers, one metrics series per certificate, the embedded store's schema version.

use ward_testkit::backend::{Backend, ADMIN, ADMIN_PASSWORD};
use ward_testkit::{pki, require_tool, ward, Command, TempDir};

/// `curl` against `b`: (status, seconds from request sent to response done, headers+body).
fn timed(b: &Backend, args: &[&str]) -> (u16, f64, String) {
    let mut c = Command::new("curl").args([
        "-s",
        "-i",
        "-w",
        "\n%{http_code} %{time_pretransfer} %{time_total}",
    ]);
    if let Some(ca) = b.ca() {
        c = c.arg("--cacert").arg(ca);
    }
    let out = c.args(args.to_vec()).run();
    let (body, tail) = out.stdout.rsplit_once('\n').unwrap_or(("", "0 0 0"));
    let mut t = tail.split_whitespace();
    let code = t.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let pre: f64 = t.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let total: f64 = t.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    (code, total - pre, body.to_string())
}

fn login(b: &Backend, user: &str, password: &str) -> (u16, String) {
    b.curl(&[
        "-u",
        &format!("{user}:{password}"),
        &format!("{}/auth", b.url()),
    ])
}

/// (access token, refresh token) of a new session.
fn session(b: &Backend, user: &str, password: &str) -> (String, String) {
    let (code, body) = login(b, user, password);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    (
        v["access_token"].as_str().unwrap().to_string(),
        v["refresh_token"].as_str().unwrap().to_string(),
    )
}

fn create_user(b: &Backend, admin: &str, name: &str, password: &str, groups: &[&str]) {
    let body = serde_json::json!({"username": name, "password": password, "groups": groups});
    let (code, out) = b.curl(&[
        "-X",
        "POST",
        "-H",
        &format!("Authorization: Bearer {admin}"),
        "-d",
        &body.to_string(),
        &format!("{}/api/core/v2/users", b.url()),
    ]);
    assert_eq!(code, 201, "{out}");
}

/// The tests of this file run one at a time: one of them measures time, and every one makes
/// argon2 hashes that would skew its measurements.
static TIMING: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn bad_logins_in_parallel_leave_authenticated_requests_fast() {
    let _one_at_a_time = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    require_tool("curl");
    let b = Backend::start(false);
    let (token, _) = session(&b, ADMIN, ADMIN_PASSWORD);
    let checks = format!("{}/api/core/v2/namespaces/default/checks", b.url());
    let auth = format!("Authorization: Bearer {token}");
    let url = b.url();
    let attackers: Vec<_> = (0..50)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                Command::new("curl")
                    .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-u"])
                    .arg(format!("{ADMIN}:wrong password {i}"))
                    .arg(format!("{url}/auth"))
                    .run()
                    .stdout
            })
        })
        .collect();
    let mut times = Vec::new();
    for _ in 0..100 {
        let (code, t, out) = timed(&b, &["-H", &auth, &checks]);
        assert_eq!(code, 200, "{out}");
        times.push(t);
    }
    let codes: Vec<String> = attackers.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(
        codes.iter().all(|c| c == "401" || c == "429"),
        "bad logins: {codes:?}"
    );
    times.sort_by(|a, b| a.total_cmp(b));
    let p99 = times[times.len() * 99 / 100];
    eprintln!(
        "authenticated GET during 50 parallel bad logins: median {:.1} ms, p99 {:.1} ms",
        times[times.len() / 2] * 1e3,
        p99 * 1e3
    );
    // Measured: 19 ms with checks off the workers, 1,914 ms when argon2 ran on them
    // (BENCHMARKS.md). The bound is loose so that a loaded machine does not fail it, and
    // tight enough that argon2 back on the workers does.
    assert!(p99 < 0.6, "p99 {:.1} ms (times: {times:?})", p99 * 1e3);
}

/// The value of counter `name` in the backend's /metrics.
fn counter(b: &Backend, name: &str) -> u64 {
    let (code, metrics) = b.curl(&[&format!("{}/metrics", b.url())]);
    assert_eq!(code, 200, "{metrics}");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{metrics}"))
}

#[test]
fn logins_verify_a_password_for_unknown_users_too_and_are_throttled_with_retry_after() {
    let _one_at_a_time = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    require_tool("curl");
    let b = Backend::start(false);
    let (admin, _) = session(&b, ADMIN, ADMIN_PASSWORD);
    create_user(&b, &admin, "timed", "timed password", &["view"]);
    let url = format!("{}/auth", b.url());
    // Every answer costs one argon2 verification, whether the user exists or not: the time
    // taken does not tell which users exist. (Counted, not timed: the times themselves are
    // in BENCHMARKS.md.)
    let verified = || counter(&b, "ward_password_verifications_total");
    let before = verified();
    for i in 1..=8 {
        let (code, _, _) = timed(&b, &["-u", "timed:wrong password", &url]);
        assert_eq!(code, 401);
        let (code, _, _) = timed(&b, &["-u", &format!("nobody-{i}:wrong password"), &url]);
        assert_eq!(code, 401);
    }
    assert_eq!(
        verified() - before,
        16,
        "one verification per login attempt"
    );
    // Per user: the 10th failure within a minute is the last answered; then 429 with
    // Retry-After, even with the right password, and without hashing.
    for _ in 0..2 {
        assert_eq!(timed(&b, &["-u", "timed:wrong password", &url]).0, 401);
    }
    let before = verified();
    let (code, _, out) = timed(&b, &["-u", "timed:timed password", &url]);
    assert_eq!(code, 429, "{out}");
    assert_eq!(
        verified(),
        before,
        "a throttled login is refused before any hashing"
    );
    assert!(counter(&b, "ward_logins_throttled_total") >= 1);
    let retry = out
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Retry-After: {out}"));
    let secs: u64 = retry.parse().unwrap();
    assert!((1..=60).contains(&secs), "{retry}");
    assert!(out.contains("too many failed logins"), "{out}");
    // Another user from the same address still logs in (and that clears the address).
    assert_eq!(login(&b, ADMIN, ADMIN_PASSWORD).0, 200);
    // Per address: 30 failures (any user names), then 429.
    for i in 0..30 {
        assert_eq!(
            timed(&b, &["-u", &format!("x{i}:bad password"), &url]).0,
            401
        );
    }
    let (code, _, out) = timed(&b, &["-u", &format!("{ADMIN}:{ADMIN_PASSWORD}"), &url]);
    assert_eq!(code, 429, "{out}");
}

#[test]
fn logout_ends_only_its_own_session_and_a_reused_refresh_token_ends_its_session() {
    let _one_at_a_time = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    require_tool("curl");
    let b = Backend::start(false);
    let url = b.url();
    let checks = format!("{url}/api/core/v2/namespaces/default/checks");
    let get = |t: &str| {
        b.curl(&["-H", &format!("Authorization: Bearer {t}"), &checks])
            .0
    };
    let refresh = |r: &str| {
        b.curl(&[
            "-X",
            "POST",
            "-d",
            &format!(r#"{{"refresh_token":"{r}"}}"#),
            &format!("{url}/auth/token"),
        ])
    };
    let (a_access, a_refresh) = session(&b, ADMIN, ADMIN_PASSWORD);
    let (b_access, b_refresh) = session(&b, ADMIN, ADMIN_PASSWORD);
    let (code, out) = b.curl(&[
        "-X",
        "POST",
        "-H",
        &format!("Authorization: Bearer {a_access}"),
        &format!("{url}/auth/logout"),
    ]);
    assert_eq!(code, 204, "{out}");
    assert_eq!(get(&a_access), 401);
    assert_eq!(
        refresh(&a_refresh).0,
        401,
        "the logged-out session's refresh token"
    );
    // The other session goes on, and refreshes.
    assert_eq!(get(&b_access), 200);
    let (code, out) = refresh(&b_refresh);
    assert_eq!(code, 200, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let b2_access = v["access_token"].as_str().unwrap().to_string();
    let b2_refresh = v["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(get(&b2_access), 200);
    // Presenting the used refresh token again revokes the whole session.
    assert_eq!(refresh(&b_refresh).0, 401);
    assert_eq!(
        get(&b2_access),
        401,
        "the session of a reused refresh token is revoked"
    );
    assert_eq!(refresh(&b2_refresh).0, 401);
    assert_eq!(get(&b_access), 401);
}

#[test]
fn the_last_admin_cannot_be_disabled_or_demoted() {
    let _one_at_a_time = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    require_tool("curl");
    let b = Backend::start(false);
    let (admin, _) = session(&b, ADMIN, ADMIN_PASSWORD);
    let auth = format!("Authorization: Bearer {admin}");
    let me = format!("{}/api/core/v2/users/{ADMIN}", b.url());
    let (code, out) = b.curl(&["-X", "DELETE", "-H", &auth, &me]);
    assert_eq!(code, 409, "{out}");
    assert!(
        out.contains("last enabled member of cluster-admins"),
        "{out}"
    );
    let demote = serde_json::json!({"username": ADMIN, "groups": ["view"]}).to_string();
    let (code, out) = b.curl(&["-X", "PUT", "-H", &auth, "-d", &demote, &me]);
    assert_eq!(code, 409, "{out}");
    let disable =
        serde_json::json!({"username": ADMIN, "groups": ["cluster-admins"], "disabled": true})
            .to_string();
    assert_eq!(
        b.curl(&["-X", "PUT", "-H", &auth, "-d", &disable, &me]).0,
        409
    );
    // Nothing was changed: the admin still is one.
    assert_eq!(login(&b, ADMIN, ADMIN_PASSWORD).0, 200);
    assert_eq!(
        b.curl(&["-H", &auth, &format!("{}/api/core/v2/users", b.url())])
            .0,
        200
    );
    // With a second admin, the first may go.
    create_user(
        &b,
        &admin,
        "admin2",
        "second admin password",
        &["cluster-admins"],
    );
    let (code, out) = b.curl(&["-X", "PUT", "-H", &auth, "-d", &demote, &me]);
    assert_eq!(code, 201, "{out}");
}

#[test]
fn changing_ones_own_password_needs_the_current_one() {
    let _one_at_a_time = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    require_tool("curl");
    let b = Backend::start(false);
    let (admin, _) = session(&b, ADMIN, ADMIN_PASSWORD);
    create_user(&b, &admin, "ops", "ops password", &["view"]);
    let (ops, _) = session(&b, "ops", "ops password");
    let url = format!("{}/api/core/v2/users/ops/password", b.url());
    let put = |token: &str, body: serde_json::Value| {
        b.curl(&[
            "-X",
            "PUT",
            "-H",
            &format!("Authorization: Bearer {token}"),
            "-d",
            &body.to_string(),
            &url,
        ])
    };
    let (code, out) = put(&ops, serde_json::json!({"password": "taken over"}));
    assert_eq!(code, 400, "{out}");
    assert!(out.contains("current_password"), "{out}");
    let (code, out) = put(
        &ops,
        serde_json::json!({"password": "taken over", "current_password": "a guess!"}),
    );
    assert_eq!(code, 403, "{out}");
    assert_eq!(login(&b, "ops", "ops password").0, 200, "unchanged");
    let (code, out) = put(
        &ops,
        serde_json::json!({"password": "new ops password", "current_password": "ops password"}),
    );
    assert_eq!(code, 204, "{out}");
    assert_eq!(login(&b, "ops", "new ops password").0, 200);
    // An admin resets another user's password without it (Sensu's reset_password).
    let (code, out) = put(&admin, serde_json::json!({"password": "reset by admin"}));
    assert_eq!(code, 204, "{out}");
    assert_eq!(login(&b, "ops", "reset by admin").0, 200);
    // ward ctl passes --current-password.
    b.ctl_login();
    let out = b
        .ctl()
        .args([
            "user",
            "change-password",
            ADMIN,
            "--new-password",
            "another admin password",
        ])
        .run()
        .fails_with(1);
    assert!(out.stderr.contains("current_password"), "{}", out.stderr);
    b.ctl()
        .args([
            "user",
            "change-password",
            ADMIN,
            "--new-password",
            "another admin password",
            "--current-password",
            ADMIN_PASSWORD,
        ])
        .run()
        .ok();
    assert_eq!(login(&b, ADMIN, "another admin password").0, 200);
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The CSP hash source of `text`, made with openssl.
fn csp_hash(text: &str) -> String {
    let dir = TempDir::new();
    let f = dir.join("inline");
    std::fs::write(&f, text).unwrap();
    let out = Command::new("sh")
        .args([
            "-c",
            "openssl dgst -sha256 -binary \"$1\" | openssl base64 -A",
            "sh",
        ])
        .arg(&f)
        .run()
        .ok();
    format!("'sha256-{}'", out.stdout.trim())
}

#[test]
fn the_dashboard_and_the_api_send_security_headers() {
    let _one_at_a_time = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    require_tool("curl");
    require_tool("openssl");
    let b = Backend::start(true);
    let dash = format!("https://localhost:{}", b.dashboard_port);
    let (code, _, page) = timed(&b, &[&format!("{dash}/")]);
    assert_eq!(code, 200);
    let csp = header(&page, "content-security-policy").unwrap_or_else(|| panic!("{page}"));
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    // The page's inline script and style are allowed by hash, and nothing else inline.
    let inner = |open: &str, close: &str| {
        page.split_once(open)
            .and_then(|(_, r)| r.split_once(close))
            .map(|(i, _)| i.to_string())
            .unwrap()
    };
    assert!(
        csp.contains(&format!(
            "script-src {}",
            csp_hash(&inner("<script>", "</script>"))
        )),
        "{csp}"
    );
    assert!(
        csp.contains(&format!(
            "style-src {}",
            csp_hash(&inner("<style>", "</style>"))
        )),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    for resp in [
        page.as_str(),
        &timed(&b, &[&format!("{}/health", b.url())]).2,
    ] {
        assert_eq!(header(resp, "x-frame-options"), Some("DENY"), "{resp}");
        assert_eq!(header(resp, "referrer-policy"), Some("no-referrer"));
        assert_eq!(header(resp, "x-content-type-options"), Some("nosniff"));
        assert!(
            header(resp, "strict-transport-security").is_some_and(|v| v.contains("max-age=")),
            "{resp}"
        );
        assert!(header(resp, "content-security-policy").is_some());
    }
    // Errors carry them too; plaintext carries no HSTS.
    let (code, _, out) = timed(&b, &[&format!("{}/api/core/v2/users", b.url())]);
    assert_eq!(code, 401);
    assert_eq!(header(&out, "x-frame-options"), Some("DENY"));
    let plain = Backend::start(false);
    let (_, _, out) = timed(&plain, &[&format!("{}/health", plain.url())]);
    assert_eq!(header(&out, "x-frame-options"), Some("DENY"), "{out}");
    assert!(header(&out, "strict-transport-security").is_none(), "{out}");
}

#[test]
fn metrics_have_one_series_per_certificate() {
    let _one_at_a_time = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    require_tool("curl");
    let dir = TempDir::new();
    let tls = pki::bootstrap(
        dir.path(),
        "ca: {cn: Test CA}\nbackends:\n  - name: localhost\n    hosts: [127.0.0.1]\n",
    );
    let (cert, key, ca) = (
        tls.join("localhost.pem"),
        tls.join("localhost-key.pem"),
        tls.join("ca.pem"),
    );
    // The serving certificate is named by two settings, the CA by one in between.
    let extra = [
        "--trusted-ca-file",
        ca.to_str().unwrap(),
        "--dashboard-cert-file",
        cert.to_str().unwrap(),
        "--dashboard-key-file",
        key.to_str().unwrap(),
    ];
    let b = Backend::start_in(dir, Some(tls), &extra, None);
    let (code, metrics) = b.curl(&[&format!("{}/metrics", b.url())]);
    assert_eq!(code, 200);
    let series: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("ward_certificate_days_left{"))
        .collect();
    assert_eq!(
        series.len(),
        2,
        "the serving certificate and the CA: {series:?}"
    );
    let mut unique = series.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), series.len(), "{series:?}");
    assert!(series.iter().all(|s| s.contains("serial=\"")), "{series:?}");
}

#[test]
fn the_embedded_store_is_versioned_and_migrates_an_old_state_dir() {
    let _one_at_a_time = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    require_tool("sqlite3");
    require_tool("curl");
    // A state dir as Ward wrote it before versioning: user_version 0, tokens without
    // families, no API keys.
    let mut b = Backend::start(false);
    b.kill9();
    let db = b.dir.join("state/ward.db");
    let sql = |q: &str| {
        Command::new("sqlite3")
            .arg(&db)
            .arg(q)
            .run()
            .ok()
            .stdout
            .trim()
            .to_string()
    };
    assert_eq!(sql("PRAGMA user_version"), "3");
    sql("DROP TABLE api_keys; DROP INDEX tokens_family; ALTER TABLE tokens DROP COLUMN family; ALTER TABLE tokens DROP COLUMN used; PRAGMA user_version = 0;");
    b.spawn();
    let (code, out) = login(&b, ADMIN, ADMIN_PASSWORD);
    assert_eq!(code, 200, "{out}");
    b.kill9();
    assert_eq!(sql("PRAGMA user_version"), "3");
    // A database from a newer Ward is refused, with both versions named.
    sql("PRAGMA user_version = 99");
    let out = ward()
        .args(["backend", "start", "--state-dir"])
        .arg(b.dir.join("state"))
        .args(["--api-listen-address", "127.0.0.1:0"])
        .run()
        .fails_with(1);
    assert!(
        out.stderr
            .contains("schema version 99, newer than this Ward's (3)"),
        "{}",
        out.stderr
    );
}
