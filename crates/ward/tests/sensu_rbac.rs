//! Issue 13's RBAC, end to end through `ward backend`: a user bound to a namespaced role
//! can do exactly what its rules allow (a table of requests, each asserted), changes to
//! roles and bindings apply to the very next request, API keys authenticate until
//! revoked, and agents post events for their own entity and namespace only.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use ward_testkit::agent::AGENT_PASSWORD;
use ward_testkit::backend::{Backend, ADMIN, ADMIN_PASSWORD};
use ward_testkit::{require_tool, TempDir};
use ward_types::agent::{Ack, Frame};

const DEV_PASSWORD: &str = "dev password 1";

/// `curl` against `b` with `auth` (a whole Authorization header): (status, body).
fn call(b: &Backend, auth: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    let url = format!("{}{path}", b.url());
    let text = body.map(Value::to_string);
    let mut args = vec![
        "-X",
        method,
        "-H",
        auth,
        "-H",
        "Content-Type: application/json",
    ];
    if let Some(t) = &text {
        args.extend(["--data-binary", t.as_str()]);
    }
    args.push(&url);
    b.curl(&args)
}

#[track_caller]
fn expect(
    b: &Backend,
    auth: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    want: u16,
) -> Value {
    let (code, out) = call(b, auth, method, path, body);
    assert_eq!(code, want, "{method} {path}: {out}");
    serde_json::from_str(&out).unwrap_or(Value::Null)
}

/// `Authorization: Bearer …` for a new session of `user`.
fn bearer(b: &Backend, user: &str, password: &str) -> String {
    let (code, body) = b.curl(&[
        "-u",
        &format!("{user}:{password}"),
        &format!("{}/auth", b.url()),
    ]);
    assert_eq!(code, 200, "login {user}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    format!(
        "Authorization: Bearer {}",
        v["access_token"].as_str().unwrap()
    )
}

const NS: &str = "/api/core/v2/namespaces";

/// A backend with namespaces dev, ops and other; checks and handlers in them; the user
/// `dev` (no groups) bound in `dev` to the role of the issue. Returns the admin's header.
fn setup(b: &Backend) -> String {
    let admin = bearer(b, ADMIN, ADMIN_PASSWORD);
    for ns in ["dev", "ops", "other"] {
        expect(b, &admin, "POST", NS, Some(&json!({"name": ns})), 201);
    }
    let user = json!({"username": "dev", "password": DEV_PASSWORD, "groups": []});
    expect(b, &admin, "POST", "/api/core/v2/users", Some(&user), 201);
    let check = |n: &str| json!({"metadata": {"name": n}, "command": "true", "interval": 60, "subscriptions": ["linux"]});
    for ns in ["dev", "default", "ops", "other"] {
        expect(
            b,
            &admin,
            "POST",
            &format!("{NS}/{ns}/checks"),
            Some(&check("c1")),
            201,
        );
    }
    for h in ["slack", "pagerduty"] {
        let body = json!({"metadata": {"name": h}, "type": "pipe", "command": "cat"});
        expect(
            b,
            &admin,
            "POST",
            &format!("{NS}/dev/handlers"),
            Some(&body),
            201,
        );
    }
    expect(
        b,
        &admin,
        "PUT",
        &format!("{NS}/dev/roles/dev-role"),
        Some(&role(&[])),
        201,
    );
    let binding = json!({"subjects": [{"type": "User", "name": "dev"}], "role_ref": {"type": "Role", "name": "dev-role"}});
    expect(
        b,
        &admin,
        "PUT",
        &format!("{NS}/dev/rolebindings/dev-binding"),
        Some(&binding),
        201,
    );
    admin
}

/// The issue's role, with `extra` rules.
fn role(extra: &[Value]) -> Value {
    let mut rules = vec![
        json!({"verbs": ["get", "list"], "resources": ["checks"], "resource_names": []}),
        json!({"verbs": ["create", "update", "delete"], "resources": ["silenced"], "resource_names": []}),
        json!({"verbs": ["get"], "resources": ["handlers"], "resource_names": ["slack"]}),
    ];
    rules.extend(extra.iter().cloned());
    json!({"rules": rules})
}

fn new_check(n: &str) -> Value {
    json!({"metadata": {"name": n}, "command": "true", "interval": 60})
}

/// Asserts each (method, path, body, status); a 403 names the refused request.
#[track_caller]
fn table(b: &Backend, auth: &str, rows: &[(&str, String, Option<Value>, u16)]) {
    let mut wrong = Vec::new();
    for (method, path, body, want) in rows {
        let (code, out) = call(b, auth, method, path, body.as_ref());
        if code != *want {
            wrong.push(format!("{method} {path}: {code}, want {want}: {out}"));
        } else if code == 403 && !out.contains("may not") && !out.contains("does not exist") {
            wrong.push(format!("{method} {path}: 403 without a reason: {out}"));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[test]
fn a_namespaced_role_allows_exactly_its_rules() {
    require_tool("curl");
    let b = Backend::start(false);
    let admin = setup(&b);
    let dev = bearer(&b, "dev", DEV_PASSWORD);
    let p = |s: &str| format!("{NS}/{s}");
    let silence = json!({"subscription": "linux", "check": "c1"});
    table(
        &b,
        &dev,
        &[
            ("GET", p("dev/checks"), None, 200),
            ("GET", p("dev/checks/c1"), None, 200),
            ("GET", p("default/checks"), None, 403),
            ("GET", p("default/checks/c1"), None, 403),
            ("POST", p("dev/checks"), Some(new_check("c2")), 403),
            ("PUT", p("dev/checks/c1"), Some(new_check("c1")), 403),
            (
                "PATCH",
                p("dev/checks/c1"),
                Some(json!({"interval": 30})),
                403,
            ),
            ("DELETE", p("dev/checks/c1"), None, 403),
            ("POST", p("dev/silenced"), Some(silence.clone()), 201),
            (
                "PUT",
                p("dev/silenced/linux:c1"),
                Some(silence.clone()),
                201,
            ),
            ("GET", p("dev/silenced/linux:c1"), None, 403),
            ("GET", p("dev/silenced"), None, 403),
            ("DELETE", p("dev/silenced/linux:c1"), None, 204),
            ("POST", p("default/silenced"), Some(silence), 403),
            ("GET", p("dev/handlers/slack"), None, 200),
            ("GET", p("dev/handlers/pagerduty"), None, 403),
            ("GET", p("dev/handlers"), None, 403),
            ("DELETE", p("dev/handlers/slack"), None, 403),
            ("GET", p("dev/events"), None, 403),
            (
                "POST",
                p("dev/roles"),
                Some(json!({"metadata": {"name": "r"}, "rules": []})),
                403,
            ),
            (
                "PUT",
                p("dev/rolebindings/dev-binding"),
                Some(json!({"subjects": [], "role_ref": {"type": "Role", "name": "x"}})),
                403,
            ),
            ("GET", "/api/core/v2/checks".into(), None, 403),
            ("GET", "/api/core/v2/events".into(), None, 403),
            ("GET", "/api/core/v2/users".into(), None, 403),
            ("GET", "/api/core/v2/users/dev".into(), None, 200),
            ("GET", "/api/core/v2/users/admin".into(), None, 403),
            ("GET", "/api/core/v2/clusterroles".into(), None, 403),
            (
                "POST",
                "/api/core/v2/apikeys".into(),
                Some(json!({"username": "dev"})),
                403,
            ),
            ("POST", NS.into(), Some(json!({"name": "mine"})), 403),
        ],
    );
    assert_eq!(
        expect(&b, &dev, "GET", "/api/core/v2/users/dev", None, 200),
        json!({"username": "dev", "groups": [], "disabled": false})
    );
    let (_, out) = call(&b, &dev, "GET", &p("default/checks"), None);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["code"], 403, "{out}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("user \"dev\" (groups: none) may not list checks in namespace \"default\""),
        "{out}"
    );

    // The ClusterRole view bound in ops: reads there, and only there.
    let view = json!({"subjects": [{"type": "User", "name": "dev"}], "role_ref": {"type": "ClusterRole", "name": "view"}});
    expect(
        &b,
        &admin,
        "PUT",
        &p("ops/rolebindings/dev-view"),
        Some(&view),
        201,
    );
    table(
        &b,
        &dev,
        &[
            ("GET", p("ops/checks"), None, 200),
            ("GET", p("ops/checks/c1"), None, 200),
            ("GET", p("ops/events"), None, 200),
            ("POST", p("ops/checks"), Some(new_check("c2")), 403),
            ("GET", p("other/checks"), None, 403),
            ("GET", "/api/core/v2/checks".into(), None, 403),
        ],
    );
}

#[test]
fn role_and_binding_changes_apply_to_the_next_request() {
    require_tool("curl");
    let b = Backend::start(false);
    let admin = setup(&b);
    let dev = bearer(&b, "dev", DEV_PASSWORD);
    let p = |s: &str| format!("{NS}/{s}");
    assert_eq!(
        call(&b, &dev, "POST", &p("dev/checks"), Some(&new_check("c2"))).0,
        403
    );
    let create = json!({"verbs": ["create"], "resources": ["checks"], "resource_names": []});
    expect(
        &b,
        &admin,
        "PUT",
        &p("dev/roles/dev-role"),
        Some(&role(&[create])),
        201,
    );
    expect(
        &b,
        &dev,
        "POST",
        &p("dev/checks"),
        Some(&new_check("c2")),
        201,
    );
    // Back to the issue's rules: refused again.
    expect(
        &b,
        &admin,
        "PUT",
        &p("dev/roles/dev-role"),
        Some(&role(&[])),
        201,
    );
    assert_eq!(
        call(&b, &dev, "POST", &p("dev/checks"), Some(&new_check("c3"))).0,
        403
    );
    // Without the binding, nothing.
    expect(
        &b,
        &admin,
        "DELETE",
        &p("dev/rolebindings/dev-binding"),
        None,
        204,
    );
    assert_eq!(call(&b, &dev, "GET", &p("dev/checks"), None).0, 403);
    assert_eq!(call(&b, &dev, "GET", &p("dev/handlers/slack"), None).0, 403);
    // A binding to a role that does not exist: 403 naming it.
    let ghost = json!({"subjects": [{"type": "User", "name": "dev"}], "role_ref": {"type": "Role", "name": "gone"}});
    expect(
        &b,
        &admin,
        "PUT",
        &p("dev/rolebindings/ghost"),
        Some(&ghost),
        201,
    );
    let (code, out) = call(&b, &dev, "GET", &p("dev/checks"), None);
    assert_eq!(code, 403, "{out}");
    assert!(out.contains("role binding \\\"ghost\\\" in namespace \\\"dev\\\" names the role \\\"gone\\\", which does not exist"), "{out}");
    // Creating the role makes the binding work.
    let reader =
        json!({"rules": [{"verbs": ["list"], "resources": ["checks"], "resource_names": []}]});
    expect(&b, &admin, "PUT", &p("dev/roles/gone"), Some(&reader), 201);
    expect(&b, &dev, "GET", &p("dev/checks"), None, 200);
}

#[test]
fn an_api_key_authenticates_as_its_user_until_revoked() {
    require_tool("curl");
    let b = Backend::start(false);
    let admin = setup(&b);
    let p = |s: &str| format!("{NS}/{s}");
    let (code, head) = b.curl(&[
        "-i",
        "-X",
        "POST",
        "-H",
        &admin,
        "--data-binary",
        r#"{"username":"dev"}"#,
        &format!("{}/api/core/v2/apikeys", b.url()),
    ]);
    assert_eq!(code, 201, "{head}");
    let (headers, body) = head.split_once("\r\n\r\n").unwrap();
    let v: Value = serde_json::from_str(body).unwrap();
    let (key, name) = (
        v["key"].as_str().unwrap(),
        v["metadata"]["name"].as_str().unwrap(),
    );
    assert_eq!(v["username"], "dev", "{v}");
    assert!(
        headers
            .to_ascii_lowercase()
            .contains(&format!("location: /api/core/v2/apikeys/{name}")),
        "{headers}"
    );
    let with_key = format!("Authorization: Key {key}");
    // The key's user: its rules, no more.
    table(
        &b,
        &with_key,
        &[
            ("GET", p("dev/checks"), None, 200),
            ("GET", p("default/checks"), None, 403),
            ("GET", "/api/core/v2/users/dev".into(), None, 200),
        ],
    );
    // Lists and gets never show the secret.
    let (code, list) = call(&b, &admin, "GET", "/api/core/v2/apikeys", None);
    assert_eq!(code, 200, "{list}");
    assert!(list.contains(name) && !list.contains(key), "{list}");
    // Selected by user, as Sensu's api_key.username field.
    let selected = |who: &str| {
        let path = format!("/api/core/v2/apikeys?fieldSelector=api_key.username%20%3D%3D%20{who}");
        let (code, list) = call(&b, &admin, "GET", &path, None);
        assert_eq!(code, 200, "{list}");
        serde_json::from_str::<serde_json::Value>(&list).unwrap()
    };
    assert_eq!(selected("dev").as_array().map(Vec::len), Some(1));
    assert_eq!(selected("nobody"), serde_json::json!([]));
    let (code, one) = call(
        &b,
        &admin,
        "GET",
        &format!("/api/core/v2/apikeys/{name}"),
        None,
    );
    assert_eq!(code, 200, "{one}");
    assert!(!one.contains(key), "{one}");
    // Revoked: 401 on the next request.
    expect(
        &b,
        &admin,
        "DELETE",
        &format!("/api/core/v2/apikeys/{name}"),
        None,
        204,
    );
    let (code, out) = call(&b, &with_key, "GET", &p("dev/checks"), None);
    assert_eq!(code, 401, "{out}");
    assert!(out.contains("API key is unknown or revoked"), "{out}");
    let (code, out) = call(
        &b,
        "Authorization: Key not-a-key",
        "GET",
        &p("dev/checks"),
        None,
    );
    assert_eq!(code, 401, "{out}");
}

#[test]
fn system_agent_bound_in_one_namespace_posts_events_there_only() {
    require_tool("curl");
    let b = Backend::start(false);
    let admin = setup(&b);
    let user = json!({"username": "collector", "password": "collector password 1", "groups": []});
    expect(&b, &admin, "POST", "/api/core/v2/users", Some(&user), 201);
    let binding = json!({"subjects": [{"type": "User", "name": "collector"}], "role_ref": {"type": "ClusterRole", "name": "system:agent"}});
    expect(
        &b,
        &admin,
        "PUT",
        &format!("{NS}/default/rolebindings/collector-agent"),
        Some(&binding),
        201,
    );
    let c = bearer(&b, "collector", "collector password 1");
    let ev = json!({"entity": {"entity_class": "proxy", "metadata": {"name": "web-2"}},
                    "check": {"metadata": {"name": "disk"}, "status": 1, "output": "80%", "interval": 60}});
    table(
        &b,
        &c,
        &[
            (
                "POST",
                format!("{NS}/default/events"),
                Some(ev.clone()),
                201,
            ),
            (
                "PUT",
                format!("{NS}/default/events/web-2/disk"),
                Some(ev.clone()),
                201,
            ),
            ("GET", format!("{NS}/default/events/web-2/disk"), None, 200),
            ("POST", format!("{NS}/other/events"), Some(ev.clone()), 403),
            (
                "PUT",
                format!("{NS}/other/events/web-2/disk"),
                Some(ev),
                403,
            ),
            ("GET", format!("{NS}/other/events"), None, 403),
            ("GET", "/api/core/v2/events".into(), None, 403),
            ("GET", format!("{NS}/default/checks"), None, 403),
        ],
    );
    expect(
        &b,
        &admin,
        "GET",
        &format!("{NS}/default/events/web-2/disk"),
        None,
        200,
    );
    let (code, out) = call(
        &b,
        &admin,
        "GET",
        &format!("{NS}/other/events/web-2/disk"),
        None,
    );
    assert_eq!(code, 404, "nothing stored in other: {out}");
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A raw agent session as `name`, the `agent` user logging in with its password.
async fn connect(b: &Backend, name: &str) -> Ws {
    use base64::Engine;
    let mut req = format!("ws://127.0.0.1:{}/", b.agent_port)
        .into_client_request()
        .unwrap();
    let h = req.headers_mut();
    h.insert("Ward-AgentName", name.parse().unwrap());
    h.insert("Ward-Namespace", "default".parse().unwrap());
    h.insert("Ward-Subscriptions", "".parse().unwrap());
    let cred = base64::engine::general_purpose::STANDARD.encode(format!("agent:{AGENT_PASSWORD}"));
    h.insert("Authorization", format!("Basic {cred}").parse().unwrap());
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", b.agent_port))
        .await
        .unwrap();
    tokio_tungstenite::client_async(req, tcp)
        .await
        .expect("agent handshake")
        .0
}

/// The ack of event `want` (other frames skipped); the session's end is a failure.
async fn ack_of(ws: &mut Ws, want: u64) -> Ack {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), ws.next()).await;
        let frame = match m {
            Ok(Some(Ok(Message::Binary(b)))) => Frame::decode(&b),
            Ok(Some(Ok(Message::Text(t)))) => Frame::decode(t.as_bytes()),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no ack for event {want}: {other:?}"),
        };
        if let Ok(Frame::Ack { id, ack }) = frame {
            if id == want {
                return ack;
            }
        }
    }
}

#[test]
fn a_password_agent_cannot_post_events_for_another_entity() {
    require_tool("curl");
    let b = Backend::start_in(TempDir::new(), None, &[], Some(AGENT_PASSWORD));
    let admin = bearer(&b, ADMIN, ADMIN_PASSWORD);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut ws = connect(&b, "web-1").await;
        let keepalive = json!({"entity": {"name": "web-1", "namespace": "default", "subscriptions": []},
            "interval": 20, "warning_timeout": 120, "critical_timeout": 0, "timestamp": 1});
        ws.send(Message::text(format!("keepalive\n{keepalive}"))).await.unwrap();
        let event = |id: u64, entity: &str| {
            format!("event {id}\n{}", json!({"entity": {"metadata": {"name": entity}},
                "check": {"metadata": {"name": "disk"}, "status": 2, "output": "spoofed"}}))
        };
        ws.send(Message::text(event(1, "web-1"))).await.unwrap();
        assert_eq!(ack_of(&mut ws, 1).await, Ack::Stored);
        ws.send(Message::text(event(2, "web-2"))).await.unwrap();
        match ack_of(&mut ws, 2).await {
            Ack::Rejected { error } => assert!(error.contains("entity \"web-2\" is not this agent (\"web-1\")"), "{error}"),
            other => panic!("an event for web-2 was answered {other:?}"),
        }
    });
    expect(
        &b,
        &admin,
        "GET",
        &format!("{NS}/default/events/web-1/disk"),
        None,
        200,
    );
    let (code, out) = call(
        &b,
        &admin,
        "GET",
        &format!("{NS}/default/events/web-2/disk"),
        None,
    );
    assert_eq!(code, 404, "{out}");
    let (code, out) = call(
        &b,
        &admin,
        "GET",
        &format!("{NS}/default/entities/web-2"),
        None,
    );
    assert_eq!(code, 404, "{out}");
}
