//! An agent speaks for its own entity only: raw WebSocket sessions (frames written by hand,
//! as an attacker would) against a real `ward backend`. Events for another entity are
//! answered `rejected` and neither stored nor registered; `entity:<other>` subscriptions
//! are refused, in the handshake and in keepalives, so another agent's check requests never
//! reach the spoofer.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use ward_testkit::agent::{wait_for, AGENT_PASSWORD};
use ward_testkit::backend::Backend;
use ward_testkit::TempDir;
use ward_types::agent::{Ack, Frame};

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A plain (ws://) backend whose `agent` user logs in with `AGENT_PASSWORD`.
fn backend() -> Backend {
    let b = Backend::start_in(TempDir::new(), None, &[], Some(AGENT_PASSWORD));
    b.ctl_login();
    b
}

/// Opens a session as `name` with `subscriptions`: the WebSocket, or the HTTP refusal
/// (status, body).
async fn connect(b: &Backend, name: &str, subscriptions: &str) -> Result<Ws, (u16, String)> {
    connect_as(b, name, subscriptions, AGENT_PASSWORD).await
}

/// `connect` with the `agent` user's password `password`.
async fn connect_as(
    b: &Backend,
    name: &str,
    subscriptions: &str,
    password: &str,
) -> Result<Ws, (u16, String)> {
    connect_user(b, "agent", password, name, subscriptions).await
}

/// Opens a session as entity `name`, authenticated as `user` with `password`.
async fn connect_user(
    b: &Backend,
    user: &str,
    password: &str,
    name: &str,
    subscriptions: &str,
) -> Result<Ws, (u16, String)> {
    use base64::Engine;
    let mut req = format!("ws://127.0.0.1:{}/", b.agent_port)
        .into_client_request()
        .unwrap();
    let h = req.headers_mut();
    h.insert("Ward-AgentName", name.parse().unwrap());
    h.insert("Ward-Namespace", "default".parse().unwrap());
    h.insert("Ward-Subscriptions", subscriptions.parse().unwrap());
    let cred = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    h.insert("Authorization", format!("Basic {cred}").parse().unwrap());
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", b.agent_port))
        .await
        .map_err(|e| (0, e.to_string()))?;
    match tokio_tungstenite::client_async(req, tcp).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            let body = r
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err((r.status().as_u16(), body))
        }
        Err(e) => Err((0, e.to_string())),
    }
}

fn keepalive(name: &str, subscriptions: &[&str]) -> String {
    format!(
        "keepalive\n{}",
        json!({"entity": {"name": name, "namespace": "default", "subscriptions": subscriptions},
               "interval": 20, "warning_timeout": 120, "critical_timeout": 0, "timestamp": 1})
    )
}

fn event(id: u64, entity: &str, check: &str, status: u32) -> String {
    format!(
        "event {id}\n{}",
        json!({"entity": {"metadata": {"name": entity}},
               "check": {"metadata": {"name": check}, "status": status, "output": "spoofed"}})
    )
}

/// The next frame the backend sends (pings skipped), within `secs`; None on close or silence.
async fn next_frame(ws: &mut Ws, secs: u64) -> Option<Result<Frame, String>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let m = tokio::time::timeout_at(deadline, ws.next()).await.ok()??;
        match m {
            Ok(Message::Binary(b)) => return Some(Frame::decode(&b).map_err(|e| e.to_string())),
            Ok(Message::Text(t)) => {
                return Some(Frame::decode(t.as_bytes()).map_err(|e| e.to_string()))
            }
            Ok(Message::Close(c)) => {
                return Some(Err(format!(
                    "closed: {}",
                    c.map(|c| c.reason.to_string()).unwrap_or_default()
                )))
            }
            Ok(_) => continue,
            Err(e) => return Some(Err(e.to_string())),
        }
    }
}

async fn ack_of(ws: &mut Ws, want: u64) -> Ack {
    loop {
        match next_frame(ws, 15).await {
            Some(Ok(Frame::Ack { id, ack })) if id == want => return ack,
            Some(Ok(_)) => continue,
            other => panic!("no ack for event {want}: {other:?}"),
        }
    }
}

fn ctl_json(b: &Backend, what: &str) -> Vec<Value> {
    let out = b.ctl().args([what, "list", "--format", "json"]).run().ok();
    serde_json::from_str(&out.stdout).unwrap_or_default()
}

fn keepalive_of(b: &Backend, entity: &str) -> Option<Value> {
    // `--format json` prints the API's flat events, as sensuctl does.
    ctl_json(b, "event").into_iter().find_map(|e| {
        (e["entity"]["metadata"]["name"] == entity && e["check"]["metadata"]["name"] == "keepalive")
            .then_some(e)
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

#[test]
fn events_for_another_entity_are_rejected_and_change_nothing() {
    let b = backend();
    rt().block_on(async {
        // web-2 is a real agent: one keepalive (its history is one 0).
        let mut web2 = connect(&b, "web-2", "").await.expect("web-2 connects");
        web2.send(Message::text(keepalive("web-2", &[])))
            .await
            .unwrap();
        let before = wait_for(20, "web-2's keepalive event", || keepalive_of(&b, "web-2"));

        let mut web1 = connect(&b, "web-1", "").await.expect("web-1 connects");
        web1.send(Message::text(keepalive("web-1", &[])))
            .await
            .unwrap();
        // Its own event is stored; web-2's keepalive (status 2) and an unknown entity's
        // event are refused with the reason.
        web1.send(Message::text(event(1, "web-1", "own", 0)))
            .await
            .unwrap();
        assert_eq!(ack_of(&mut web1, 1).await, Ack::Stored);
        for (id, entity, check) in [(2, "web-2", "keepalive"), (3, "ghost", "disk")] {
            web1.send(Message::text(event(id, entity, check, 2)))
                .await
                .unwrap();
            match ack_of(&mut web1, id).await {
                Ack::Rejected { error } => assert!(
                    error.contains(&format!(
                        "entity \"{entity}\" is not this agent (\"web-1\")"
                    )) && error.contains("own entity only"),
                    "{error}"
                ),
                other => panic!("event for {entity} answered {other:?}"),
            }
        }
        // The session goes on: a later event of its own is stored.
        web1.send(Message::text(event(4, "web-1", "own", 1)))
            .await
            .unwrap();
        assert_eq!(ack_of(&mut web1, 4).await, Ack::Stored);

        let after = keepalive_of(&b, "web-2").expect("web-2's keepalive");
        assert_eq!(after["check"]["status"], 0, "{after}");
        assert_eq!(
            after["check"]["history"], before["check"]["history"],
            "{after}"
        );
        assert_ne!(after["check"]["output"], "spoofed", "{after}");
        let events = ctl_json(&b, "event");
        assert!(
            !events
                .iter()
                .any(|d| d["entity"]["metadata"]["name"] == "ghost"),
            "{events:?}"
        );
        let entities = ctl_json(&b, "entity");
        assert!(
            !entities.iter().any(|e| e["metadata"]["name"] == "ghost"),
            "{entities:?}"
        );
        assert_eq!(metric(&b, "ward_agent_identity_refused_total"), 2.0);
        assert!(
            b.log().contains("is not this agent"),
            "the refusal is logged: {}",
            b.log()
        );
    });
}

#[test]
fn another_agents_entity_subscription_is_refused() {
    let b = backend();
    // A check for web-2 alone, every second.
    let f = b.dir.join("check.yml");
    std::fs::write(
        &f,
        "type: CheckConfig\napi_version: core/v2\nmetadata:\n  name: secret\nspec:\n  command: echo secret\n  interval: 1\n  subscriptions:\n  - entity:web-2\n  publish: true\n",
    )
    .unwrap();
    b.ctl().args(["create", "-f"]).arg(&f).run().ok();
    rt().block_on(async {
        // In the handshake: refused with the reason.
        match connect(&b, "web-1", "linux,entity:web-2").await {
            Err((403, body)) => assert!(
                body.contains("\"entity:web-2\" is another agent's")
                    && body.contains("entity:web-1 only"),
                "{body}"
            ),
            Err(other) => panic!("refused with {other:?}"),
            Ok(_) => panic!("a session subscribed to entity:web-2 was opened"),
        }
        // In a keepalive: the session is closed with the reason.
        let mut web1 = connect(&b, "web-1", "linux").await.expect("web-1 connects");
        web1.send(Message::text(keepalive("web-1", &["entity:web-2"])))
            .await
            .unwrap();
        match next_frame(&mut web1, 15).await {
            Some(Err(e)) => assert!(e.contains("\"entity:web-2\" is another agent's"), "{e}"),
            other => panic!("the session went on: {other:?}"),
        }
        // A session that is only itself gets none of web-2's check requests.
        let mut web1 = connect(&b, "web-1", "linux").await.expect("web-1 connects");
        web1.send(Message::text(keepalive("web-1", &[])))
            .await
            .unwrap();
        let got = next_frame(&mut web1, 4).await;
        assert!(
            !matches!(got, Some(Ok(Frame::CheckRequest(_)))),
            "web-1 received {got:?}"
        );
        // While web-2 does get them (the check is scheduled).
        let mut web2 = connect(&b, "web-2", "").await.expect("web-2 connects");
        loop {
            match next_frame(&mut web2, 15).await {
                Some(Ok(Frame::CheckRequest(r))) => {
                    assert_eq!(r.check.name, "secret");
                    break;
                }
                Some(Ok(_)) => continue,
                other => panic!("web-2 got no check request: {other:?}"),
            }
        }
    });
    assert_eq!(metric(&b, "ward_agent_identity_refused_total"), 2.0);
}

/// Agent passwords go through the same checks as API logins: one argon2 verification per
/// attempt (unknown users too), and after 10 failures for a user within a minute, 429 with
/// Retry-After before any hashing, even with the right password.
#[test]
fn agent_logins_are_verified_and_throttled_as_api_logins_are() {
    let b = backend();
    let verifications = || {
        let (code, m) = b.curl(&[&format!("{}/metrics", b.url())]);
        assert_eq!(code, 200, "{m}");
        m.lines()
            .find_map(|l| {
                l.strip_prefix("ward_password_verifications_total ")?
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no ward_password_verifications_total:\n{m}"))
    };
    rt().block_on(async {
        let before = verifications();
        for _ in 0..10 {
            let (code, body) = connect_as(&b, "web-1", "", "wrong password")
                .await
                .err()
                .unwrap();
            assert_eq!(code, 401, "{body}");
            assert!(body.contains("wrong username or password"), "{body}");
        }
        assert_eq!(verifications() - before, 10);
        let (code, body) = connect(&b, "web-1", "").await.err().unwrap();
        assert_eq!(code, 429, "{body}");
        assert!(body.contains("too many failed logins"), "{body}");
        assert_eq!(verifications() - before, 10, "refused before hashing");
    });
}

#[test]
fn an_entity_registered_by_one_user_is_not_taken_over_by_another() {
    let b = backend();
    b.ctl()
        .args(["user", "create", "alice", "--password", "alice-password"])
        .args(["--groups", "system:agents"])
        .run()
        .ok();
    rt().block_on(async {
        let mut ws = connect_user(&b, "alice", "alice-password", "web-9", "")
            .await
            .expect("alice's agent connects");
        ws.send(Message::text(keepalive("web-9", &[])))
            .await
            .unwrap();
        let entity = wait_for(20, "web-9 registered", || {
            ctl_json(&b, "entity")
                .into_iter()
                .find(|e| e["metadata"]["name"] == "web-9")
        });
        assert_eq!(entity["user"], "alice", "{entity}");
        drop(ws);
        // The shared `agent` user cannot take web-9 over.
        let Err((code, body)) = connect(&b, "web-9", "").await else {
            panic!("the agent user took over alice's entity web-9");
        };
        assert_eq!(code, 403, "{body}");
        assert!(
            body.contains("the entity \"web-9\" belongs to user \"alice\", not \"agent\""),
            "{body}"
        );
        // Its own user still can; and `agent` keeps its own entities.
        connect_user(&b, "alice", "alice-password", "web-9", "")
            .await
            .expect("alice reconnects");
        connect(&b, "web-10", "")
            .await
            .expect("agent connects as web-10");
    });
}
