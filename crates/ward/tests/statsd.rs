//! The agent's StatsD listener, through a real agent and backend: StatsD lines sent over
//! UDP become, at the next flush, one metrics event with Sensu's point names, handed to
//! `statsd-event-handlers` and not stored; malformed lines are counted and the listener
//! goes on.

use serde_json::Value;
use std::time::Duration;
use ward_testkit::agent::{password_backend, wait_for, Agent, AGENT_PASSWORD};

#[test]
fn statsd_lines_become_a_metrics_event_for_the_handlers() {
    let b = password_backend(&[]);
    b.ctl_login();
    let out = b.dir.join("statsd-out");
    std::fs::create_dir_all(&out).unwrap();
    let handler = format!(
        "type: Handler\napi_version: core/v2\nmetadata: {{name: influx}}\nspec:\n  type: pipe\n  timeout: 10\n  command: t=$(mktemp {0}/.tmp.XXXXXX) && cat > \"$t\" && mv \"$t\" {0}/payload.$(date +%s%N)\n",
        out.display()
    );
    let f = b.dir.join("handler.yml");
    std::fs::write(&f, handler).unwrap();
    assert!(b.ctl().args(["create", "-f"]).arg(&f).run().success());
    let yaml = format!(
        "{}statsd-event-handlers: [influx]\nstatsd-flush-interval: 1\n",
        Agent::password_yaml(&b, AGENT_PASSWORD)
    );
    let a = Agent::start("statsd-1", &yaml);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = ("127.0.0.1", a.statsd_port);
    // Sensu's documented example, a timer with tags, and junk that must not stop it.
    udp.send_to(b"abc.def.g:10|c", to).unwrap();
    udp.send_to(
        b"not a statsd line\nabc.def.g:5|c\napi.rt:20|ms|#region:eu",
        to,
    )
    .unwrap();
    let payload: Value = wait_for(30, "the handler's payload", || {
        let p = std::fs::read_dir(&out)
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().starts_with("payload."))?;
        serde_json::from_str(&std::fs::read_to_string(p.path()).ok()?).ok()
    });
    let points = payload["metrics"]["points"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let point = |name: &str| {
        points
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {payload}"))
    };
    assert_eq!(point("abc.def.g.value")["value"], 15.0, "{payload}");
    assert_eq!(point("api.rt.max")["value"], 20.0, "{payload}");
    assert_eq!(
        point("api.rt.max")["tags"][0]["name"],
        "region",
        "{payload}"
    );
    assert_eq!(payload["entity"]["metadata"]["name"], "statsd-1");
    assert!(payload.get("check").is_none_or(Value::is_null), "{payload}");
    assert_eq!(
        payload["metrics"]["handlers"],
        serde_json::json!(["influx"])
    );
    // Not stored: no event of the agent's entity but its keepalive.
    std::thread::sleep(Duration::from_millis(500));
    let listed = b
        .ctl()
        .args(["event", "list", "--format", "json"])
        .run()
        .stdout;
    let events: Vec<Value> = serde_json::from_str(&listed).unwrap_or_default();
    assert!(
        events
            .iter()
            .all(|e| e["check"]["metadata"]["name"] == "keepalive"),
        "{listed}"
    );
    let metrics = ward_testkit::Command::new("curl")
        .args(["-s", &format!("http://127.0.0.1:{}/metrics", a.api_port)])
        .run()
        .stdout;
    assert!(
        metrics.contains("ward_agent_statsd_lines_total 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ward_agent_statsd_invalid_total 1"),
        "{metrics}"
    );
}
