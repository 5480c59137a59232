//! Users as Sensu's API has them: bodies with `password_hash` (bcrypt, from Sensu) that
//! become argon2id at the first login, groups added and removed one at a time, disable
//! and reinstate, an administrator's password reset.

use serde_json::{json, Value};
use ward_testkit::backend::{Backend, ADMIN, ADMIN_PASSWORD};
use ward_testkit::{require_tool, Command};

fn login(b: &Backend, user: &str, password: &str) -> u16 {
    b.curl(&[
        "-u",
        &format!("{user}:{password}"),
        &format!("{}/auth", b.url()),
    ])
    .0
}

/// (status, body) of `method path [body]` as the admin.
fn call(b: &Backend, t: &str, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    let auth = format!("Authorization: Bearer {t}");
    let url = format!("{}{path}", b.url());
    let body = body.map(|v| v.to_string());
    let mut args = vec!["-X", method, "-H", &auth];
    if let Some(b) = &body {
        args.extend(["-d", b.as_str()]);
    }
    args.push(&url);
    b.curl(&args)
}

fn stored_hash(b: &Backend, user: &str) -> String {
    Command::new("sqlite3")
        .arg(b.dir.join("state/ward.db"))
        .arg(format!(
            "SELECT password_hash FROM users WHERE name = '{user}'"
        ))
        .run()
        .ok()
        .stdout
        .trim()
        .to_string()
}

fn groups(b: &Backend, t: &str, user: &str) -> Value {
    let (code, body) = call(b, t, "GET", &format!("/api/core/v2/users/{user}"), None);
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        v.get("password_hash").is_none() && v.get("password").is_none(),
        "{v}"
    );
    v["groups"].clone()
}

#[test]
fn users_come_over_from_sensu_with_their_bcrypt_hashes() {
    require_tool("curl");
    require_tool("sqlite3");
    let b = Backend::start(false);
    let t = b.token(ADMIN, ADMIN_PASSWORD);
    // A hash as Sensu (Go's bcrypt) writes it: $2a$.
    let hash = bcrypt::hash_with_result("sensu-password", 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoA);
    let (code, body) = call(
        &b,
        &t,
        "POST",
        "/api/core/v2/users",
        Some(
            json!({"username": "migrated", "password_hash": hash, "groups": ["view"], "disabled": false, "metadata": {}}),
        ),
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(stored_hash(&b, "migrated"), hash);
    assert_eq!(login(&b, "migrated", "wrong-password"), 401);
    assert_eq!(login(&b, "migrated", "sensu-password"), 200);
    // Replaced by argon2id at that login; the password still works.
    assert!(
        stored_hash(&b, "migrated").starts_with("$argon2id$"),
        "{}",
        stored_hash(&b, "migrated")
    );
    assert_eq!(login(&b, "migrated", "sensu-password"), 200);
    // A hash of another kind is refused, naming the field; nothing stored.
    let (code, body) = call(
        &b,
        &t,
        "POST",
        "/api/core/v2/users",
        Some(json!({"username": "md5", "password_hash": "md5:abc"})),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("password_hash"), "{body}");
    assert_eq!(stored_hash(&b, "md5"), "");
}

#[test]
fn groups_disable_reinstate_and_reset_as_sensus_api() {
    require_tool("curl");
    let b = Backend::start(false);
    let t = b.token(ADMIN, ADMIN_PASSWORD);
    let (code, body) = call(
        &b,
        &t,
        "POST",
        "/api/core/v2/users",
        Some(json!({"username": "ops", "password": "ops-password", "groups": ["view"]})),
    );
    assert_eq!(code, 201, "{body}");
    let u = "/api/core/v2/users/ops";
    assert_eq!(
        call(&b, &t, "PUT", &format!("{u}/groups/oncall"), None).0,
        201
    );
    assert_eq!(groups(&b, &t, "ops"), json!(["view", "oncall"]));
    assert_eq!(
        call(&b, &t, "PUT", &format!("{u}/groups/oncall"), None).0,
        201
    );
    assert_eq!(
        groups(&b, &t, "ops"),
        json!(["view", "oncall"]),
        "added once"
    );
    assert_eq!(
        call(&b, &t, "DELETE", &format!("{u}/groups/view"), None).0,
        204
    );
    assert_eq!(groups(&b, &t, "ops"), json!(["oncall"]));
    assert_eq!(call(&b, &t, "DELETE", &format!("{u}/groups"), None).0, 204);
    assert_eq!(groups(&b, &t, "ops"), json!([]));
    // DELETE disables; reinstate enables again.
    assert_eq!(call(&b, &t, "DELETE", u, None).0, 204);
    assert_eq!(login(&b, "ops", "ops-password"), 401);
    assert_eq!(call(&b, &t, "PUT", &format!("{u}/reinstate"), None).0, 201);
    assert_eq!(login(&b, "ops", "ops-password"), 200);
    // An administrator resets the password without the current one.
    let (code, body) = call(
        &b,
        &t,
        "PUT",
        &format!("{u}/reset_password"),
        Some(json!({"username": "ops", "password": "new-ops-password"})),
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(login(&b, "ops", "ops-password"), 401);
    assert_eq!(login(&b, "ops", "new-ops-password"), 200);
    // The last cluster admin keeps cluster-admins.
    let (code, body) = call(
        &b,
        &t,
        "DELETE",
        &format!("/api/core/v2/users/{ADMIN}/groups/cluster-admins"),
        None,
    );
    assert_eq!(code, 409, "{body}");
    // A user without the rights cannot do any of it.
    let (code, body) = b.curl(&["-u", "ops:new-ops-password", &format!("{}/auth", b.url())]);
    assert_eq!(code, 200, "{body}");
    let ops: Value = serde_json::from_str(&body).unwrap();
    let ops = ops["access_token"].as_str().unwrap();
    let (code, body) = call(&b, ops, "PUT", &format!("{u}/groups/cluster-admins"), None);
    assert_eq!(code, 403, "{body}");
    assert_eq!(groups(&b, &t, "ops"), json!([]));
}
