//! The event pipeline end to end, through the real `ward` binary: a backend process, agent
//! processes over wss on 127.0.0.1, events POSTed to the API, and pipe handlers that record
//! what they were given. Alert fatigue and silences (expiry, expire_on_resolve),
//! JavaScript mutators and a runaway filter, scripts refused at creation, keepalive
//! handlers, deregistration, and check output metrics in Sensu's five formats.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;
use ward_testkit::agent::{password_backend, wait_for, Agent, AGENT_PASSWORD};
use ward_testkit::backend::{Backend, ADMIN, ADMIN_PASSWORD};
use ward_testkit::fixtures::{script, sha512_hex, tar_gz, HttpsFiles};
use ward_testkit::{free_port, require_tool, ward_bin, TempDir};

const D: &str = "/api/core/v2/namespaces/default";

/// A TLS backend (the `agent` user has `AGENT_PASSWORD`), an admin token, and a directory
/// where recording handlers leave one file per payload.
struct Api {
    b: Backend,
    auth: String,
    out: PathBuf,
}

impl Api {
    fn start() -> Api {
        Api::start_with(&[])
    }

    fn start_with(extra: &[&str]) -> Api {
        require_tool("curl");
        let b = password_backend(extra);
        let auth = format!("Authorization: Bearer {}", b.token(ADMIN, ADMIN_PASSWORD));
        let out = b.dir.join("out");
        std::fs::create_dir(&out).unwrap();
        let api = Api { b, auth, out };
        api.handler("probe", &[], None);
        api
    }

    /// `method path [body]`: (status, body).
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
        let url = format!("{}{path}", self.b.url());
        let text = body.map(Value::to_string);
        let mut args = vec!["-X", method, "-H", &self.auth];
        if let Some(t) = &text {
            args.extend(["--data-binary", t]);
        }
        args.push(&url);
        self.b.curl(&args)
    }

    #[track_caller]
    fn post(&self, path: &str, body: Value) -> Value {
        let (code, out) = self.call("POST", path, Some(&body));
        assert!(
            code == 201 || code == 200,
            "POST {path} {body}: {code} {out}\n{}",
            self.b.log()
        );
        serde_json::from_str(&out).unwrap_or(Value::Null)
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let (code, out) = self.call("GET", path, None);
        (code, serde_json::from_str(&out).unwrap_or(Value::Null))
    }

    /// A pipe handler that records each payload as `out/NAME.<nanoseconds>.<random>`,
    /// written whole (a temp file renamed), so that readers never see half a payload.
    fn handler(&self, name: &str, filters: &[&str], mutator: Option<&str>) {
        let d = self.out.display();
        let command = format!(
            "t=$(mktemp {d}/.tmp.XXXXXX) && cat > \"$t\" && mv \"$t\" \"{d}/{name}.$(date +%s%N).${{t##*.}}\""
        );
        let mut h = json!({"metadata": {"name": name}, "type": "pipe", "command": command,
                           "timeout": 10, "filters": filters});
        if let Some(m) = mutator {
            h["mutator"] = json!(m);
        }
        self.post(&format!("{D}/handlers"), h);
    }

    /// What handler `name` was given, oldest first.
    fn received(&self, name: &str) -> Vec<String> {
        let prefix = format!("{name}.");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&prefix)
            })
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect()
    }

    /// `received`, parsed as events.
    fn events(&self, name: &str) -> Vec<Value> {
        let parse = |t: &String| serde_json::from_str(t).unwrap_or_else(|e| panic!("{e}: {t}"));
        self.received(name).iter().map(parse).collect()
    }

    fn send(&self, entity: &str, check: &str, status: u32, handlers: &[&str]) {
        let ev = json!({
            "entity": {"entity_class": "proxy", "metadata": {"name": entity, "namespace": "default"}},
            "check": {"metadata": {"name": check, "namespace": "default"}, "status": status,
                      "output": format!("{check} status {status}"), "interval": 60, "handlers": handlers},
        });
        self.post(&format!("{D}/events"), ev);
    }

    /// Returns once every event sent before has been through the filters and its handlers
    /// have been started (the pipeline plans events one at a time, in order): an event
    /// for the unfiltered `probe` handler is recorded; then a second for the runs started.
    fn settle(&self) {
        let n = self.received("probe").len();
        self.send("probe", "probe", 0, &["probe"]);
        wait_for(30, "the probe handler", || {
            (self.received("probe").len() > n).then_some(())
        });
        std::thread::sleep(Duration::from_secs(1));
    }

    /// A counter or gauge of /metrics (`name` with its labels), -1 when absent.
    fn metric(&self, name: &str) -> f64 {
        let (_, text) = self.b.curl(&[&format!("{}/metrics", self.b.url())]);
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(-1.0)
    }
}

fn status(e: &Value) -> u64 {
    e["check"]["status"].as_u64().unwrap_or(99)
}

#[test]
fn one_page_per_failure_run_none_while_silenced_and_pages_again_after_expiry() {
    let api = Api::start();
    let first = json!({"metadata": {"name": "first"}, "action": "allow",
                       "expressions": ["event.check.occurrences == 1"]});
    api.post(&format!("{D}/filters"), first);
    api.handler("pager", &["is_incident", "not_silenced", "first"], None);
    let failures = |api: &Api| -> Vec<Value> {
        api.events("pager")
            .into_iter()
            .filter(|e| status(e) != 0)
            .collect()
    };
    // A run of failures: paged once, for the first.
    for _ in 0..4 {
        api.send("web-1", "http", 2, &["pager"]);
    }
    api.settle();
    let pages = failures(&api);
    assert_eq!(pages.len(), 1, "one page for four failures: {pages:?}");
    assert_eq!(pages[0]["check"]["occurrences"], 1, "{}", pages[0]);
    assert_eq!(pages[0]["entity"]["metadata"]["name"], "web-1");
    // OK, then a silence for 3 s and a new run of failures: not paged, stored silenced.
    api.send("web-1", "http", 0, &["pager"]);
    let s = api.post(&format!("{D}/silenced"),
        json!({"subscription": "entity:web-1", "check": "http", "expire": 3, "reason": "maintenance"}));
    let silence = s["metadata"]["name"].as_str().unwrap().to_string();
    assert_eq!(silence, "entity:web-1:http", "{s}");
    assert!(s["expire_at"].as_i64().unwrap() > 0, "{s}");
    for _ in 0..3 {
        api.send("web-1", "http", 2, &["pager"]);
    }
    let (code, stored) = api.get(&format!("{D}/events/web-1/http"));
    assert_eq!(code, 200, "{stored}");
    assert_eq!(stored["check"]["occurrences"], 3, "{stored}");
    assert_eq!(stored["check"]["is_silenced"], true, "{stored}");
    assert_eq!(stored["check"]["silenced"], json!([silence]), "{stored}");
    api.settle();
    let pages = failures(&api);
    assert_eq!(pages.len(), 1, "nothing paged while silenced: {pages:?}");
    // The entry goes by itself; the next run of failures is paged again, unsilenced.
    wait_for(10, "the silence to expire and disappear", || {
        let (code, list) = api.get(&format!("{D}/silenced"));
        (code == 200 && list.as_array().is_some_and(Vec::is_empty)).then_some(())
    });
    assert_eq!(api.get(&format!("{D}/silenced/{silence}")).0, 404);
    assert!(
        api.b.log().contains("silence expired and removed"),
        "{}",
        api.b.log()
    );
    api.send("web-1", "http", 0, &["pager"]);
    for _ in 0..2 {
        api.send("web-1", "http", 2, &["pager"]);
    }
    api.settle();
    let pages = failures(&api);
    assert_eq!(
        pages.len(),
        2,
        "paged again after the silence expired: {pages:?}"
    );
    let unsilenced =
        |c: &Value| c["is_silenced"] != true && c["silenced"].as_array().is_none_or(Vec::is_empty);
    assert!(unsilenced(&pages[1]["check"]), "{}", pages[1]);
    assert_eq!(pages[1]["check"]["occurrences"], 1, "{}", pages[1]);
}

#[test]
fn an_expire_on_resolve_silence_goes_with_the_resolution_which_handlers_get_unsilenced() {
    let api = Api::start();
    api.handler("pager", &["is_incident", "not_silenced"], None);
    api.handler("watcher", &["is_incident"], None);
    let s = api.post(
        &format!("{D}/silenced"),
        json!({"check": "disk", "expire_on_resolve": true}),
    );
    let silence = s["metadata"]["name"].as_str().unwrap().to_string();
    assert_eq!(silence, "*:disk", "{s}");
    api.send("db-1", "disk", 2, &["pager", "watcher"]);
    api.settle();
    assert!(
        api.events("pager").is_empty(),
        "silenced: {:?}",
        api.received("pager")
    );
    let seen = api.events("watcher");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0]["check"]["silenced"],
        json!([silence]),
        "{}",
        seen[0]
    );
    assert_eq!(seen[0]["check"]["is_silenced"], true, "{}", seen[0]);
    // The resolution removes the entry, and reaches both handlers without it.
    api.send("db-1", "disk", 0, &["pager", "watcher"]);
    wait_for(10, "the silence to be removed on resolution", || {
        let (_, list) = api.get(&format!("{D}/silenced"));
        list.as_array().is_some_and(Vec::is_empty).then_some(())
    });
    api.settle();
    let (_, stored) = api.get(&format!("{D}/events/db-1/disk"));
    assert_eq!(
        stored["check"]["silenced"],
        json!([silence]),
        "stored as it came: {stored}"
    );
    let pages = api.events("pager");
    assert_eq!(pages.len(), 1, "the resolution is paged: {pages:?}");
    let seen = api.events("watcher");
    assert_eq!(seen.len(), 2, "{seen:?}");
    for e in [&pages[0], &seen[1]] {
        assert_eq!(status(e), 0, "{e}");
        assert_eq!(e["check"]["silenced"], json!([]), "{e}");
    }
    // Later failures are not silenced any more.
    api.send("db-1", "disk", 2, &["pager", "watcher"]);
    api.settle();
    assert_eq!(api.events("pager").len(), 2, "{:?}", api.received("pager"));
    // silences.rs: the entries are taken out of `check.silenced` "(and is_silenced)" for
    // the handlers; with none left, the resolution must not claim to be silenced.
    for e in [&pages[0], &seen[1]] {
        let s = &e["check"]["is_silenced"];
        assert_ne!(s, &json!(true), "silenced: [] but is_silenced: true: {e}");
    }
}

#[test]
fn a_javascript_mutator_rewrites_the_payload_and_a_runaway_filter_stalls_nothing() {
    let api = Api::start();
    let eval = "return JSON.stringify({host: event.entity.metadata.name, st: event.check.status})";
    api.post(
        &format!("{D}/mutators"),
        json!({"metadata": {"name": "short"}, "type": "javascript", "eval": eval}),
    );
    api.post(
        &format!("{D}/filters"),
        json!({"metadata": {"name": "runaway"}, "action": "allow",
        "expressions": ["(function(){while(true){}})()"]}),
    );
    api.handler("js", &[], Some("short"));
    api.handler("looping", &["runaway"], None);
    for (i, st) in [1, 2, 0, 2].iter().enumerate() {
        api.send(&format!("web-{i}"), "app", *st, &["looping", "js"]);
    }
    let want: Vec<String> = [1, 2, 0, 2]
        .iter()
        .enumerate()
        .map(|(i, st)| format!(r#"{{"host":"web-{i}","st":{st}}}"#))
        .collect();
    let mut got = wait_for(30, "every rewritten payload", || {
        let got = api.received("js");
        (got.len() >= want.len()).then_some(got)
    });
    api.settle();
    got.sort();
    assert_eq!(got, want, "exactly the mutator's strings, once per event");
    assert_eq!(api.received("js").len(), want.len());
    // Each runaway expression was stopped, counted and skipped (neither stopping an allow
    // filter nor letting the worker hang): the probe after them was handled.
    let failed = api.metric("ward_handler_failures_total{reason=\"filter\"}");
    assert!(failed >= 4.0, "runaway expressions counted: {failed}");
    assert_eq!(
        api.events("looping").len(),
        4,
        "a skipped expression does not stop an allow filter"
    );
    let log = api.b.log();
    assert!(
        log.contains("filter expression failed and is skipped") && log.contains("runaway"),
        "{log}"
    );
    assert!(api.metric("ward_filter_evaluations_total") >= 4.0);
}

#[test]
fn filters_and_mutators_that_do_not_parse_are_refused_naming_the_field_and_position() {
    let api = Api::start();
    let bad = json!({"metadata": {"name": "broken"}, "action": "allow",
                     "expressions": ["event.check.status == 2", "event.check.status ==\n  && 1"]});
    let (code, body) = api.call("POST", &format!("{D}/filters"), Some(&bad));
    assert_eq!(code, 400, "{body}");
    for part in ["broken", "spec.expressions[1]", "line 2, column 3"] {
        assert!(body.contains(part), "{part:?} in {body}");
    }
    assert_eq!(api.get(&format!("{D}/filters/broken")).0, 404);
    let (code, body) = api.call("PUT", &format!("{D}/filters/broken"), Some(&bad));
    assert_eq!(code, 400, "PUT too: {body}");
    let m = json!({"metadata": {"name": "badjs"}, "type": "javascript", "eval": "var x = ;"});
    let (code, body) = api.call("POST", &format!("{D}/mutators"), Some(&m));
    assert_eq!(code, 400, "{body}");
    for part in ["badjs", "spec.eval", "line 1, column 9"] {
        assert!(body.contains(part), "{part:?} in {body}");
    }
    assert_eq!(api.get(&format!("{D}/mutators/badjs")).0, 404);
    // ward ctl create -f is refused the same way.
    api.b.ctl_login();
    let f = api.b.dir.join("bad.yml");
    std::fs::write(&f, "type: EventFilter\napi_version: core/v2\nmetadata:\n  name: broken2\nspec:\n  action: deny\n  expressions:\n  - \"event.check.status = = 1\"\n").unwrap();
    let out = api.b.ctl().args(["create", "-f"]).arg(&f).run();
    assert!(!out.success(), "{out:?}");
    assert!(out.stderr.contains("spec.expressions[0]"), "{}", out.stderr);
}

#[rustfmt::skip]
fn edge_cases() -> [(&'static str, Value, Option<&'static str>); 4] {
    [
        ("filters", json!({"action": "allow", "expressions": ["event.check.status =="]}), Some("line 1,")),
        ("mutators", json!({"type": "javascript", "eval": "return {"}), Some("line 1,")),
        ("filters", json!({"action": "allow", "expressions": ["true); (1"]}), None),
        ("mutators", json!({"type": "javascript", "eval": "return 'x'; }); (function () {"}), None),
    ]
}

/// ward_js::JsError::Syntax: "`line` and `column` are 1-based, in the script's own text";
/// check_expression: "`expr` is one expression". Scripts that end too early, or close
/// Ward's wrapper around them, probe both. Every problem is listed before failing.
#[test]
fn script_errors_are_placed_in_the_scripts_own_text_and_wrappers_cannot_be_closed() {
    let api = Api::start();
    let mut problems = Vec::new();
    for (i, (plural, mut body, at)) in edge_cases().into_iter().enumerate() {
        body["metadata"] = json!({"name": format!("edge-{i}")});
        let (code, out) = api.call("POST", &format!("{D}/{plural}"), Some(&body));
        let ok = code == 400 && at.is_none_or(|a| out.contains(a));
        if !ok {
            problems.push(format!(
                "{body} -> {code} {out} (want 400{})",
                at.map(|a| format!(" with {a:?}")).unwrap_or_default()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_silent_agent_raises_a_keepalive_event_for_its_keepalive_handler() {
    let api = Api::start();
    api.handler("ka", &["is_incident"], None);
    let yaml = format!(
        "{}keepalive-interval: 1\nkeepalive-warning-timeout: 5\nkeepalive-handlers: [ka]\n",
        Agent::password_yaml(&api.b, AGENT_PASSWORD)
    );
    let mut a = Agent::start("quiet-2", &yaml);
    let ok = wait_for(20, "the first keepalive", || {
        let (code, e) = api.get(&format!("{D}/events/quiet-2/keepalive"));
        (code == 200).then_some(e)
    });
    assert_eq!(ok["check"]["handlers"], json!(["ka"]), "{ok}");
    assert!(
        api.received("ka").is_empty(),
        "OK keepalives are not incidents"
    );
    a.kill9();
    let got = wait_for(20, "the keepalive handler's event", || {
        api.events("ka").pop()
    });
    assert_eq!(got["check"]["metadata"]["name"], "keepalive", "{got}");
    assert_eq!(got["check"]["status"], 1, "{got}");
    assert_eq!(got["entity"]["metadata"]["name"], "quiet-2", "{got}");
    let out = got["check"]["output"].as_str().unwrap();
    assert!(out.contains("No keepalive sent from quiet-2"), "{got}");
}

/// An agent process started here, so that it can be sent SIGTERM; killed on drop.
struct OwnAgent {
    child: std::process::Child,
    _dir: TempDir,
    log: PathBuf,
}

impl OwnAgent {
    fn start(name: &str, yaml: &str) -> OwnAgent {
        let dir = TempDir::new();
        let port = free_port();
        let cfg = dir.join("agent.yml");
        let head = format!(
            "name: {name}\ncache-dir: {}\napi-host: 127.0.0.1\napi-port: {port}\nsocket-port: {}\nstatsd-metrics-port: {}\n",
            dir.join("cache").display(),
            free_port(),
            free_port()
        );
        std::fs::write(&cfg, head + yaml).unwrap();
        let log = dir.join("agent.log");
        let mut child = std::process::Command::new(ward_bin())
            .args(["agent", "start", "--config-file"])
            .arg(&cfg)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        ward_testkit::wait_listening(&mut child, port, "ward agent", &log);
        OwnAgent {
            child,
            _dir: dir,
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for OwnAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_deregistering_agent_that_stops_is_removed_and_its_handler_told() {
    let api = Api::start();
    api.handler("dereg", &[], None);
    api.handler("gone", &[], None);
    // keepalive-warning-timeout is long: only the clean close can deregister in time.
    let yaml = format!(
        "{}deregister: true\nderegistration-handler: dereg\nkeepalive-handlers: [gone]\nkeepalive-warning-timeout: 600\n",
        Agent::password_yaml(&api.b, AGENT_PASSWORD)
    );
    let mut a = OwnAgent::start("leaving-1", &yaml);
    let ent = wait_for(20, "the agent's entity", || {
        let (code, e) = api.get(&format!("{D}/entities/leaving-1"));
        (code == 200).then_some(e)
    });
    assert_eq!(ent["deregister"], true, "{ent}");
    assert_eq!(ent["deregistration"]["handler"], "dereg", "{ent}");
    wait_for(20, "the keepalive event", || {
        (api.get(&format!("{D}/events/leaving-1/keepalive")).0 == 200).then_some(())
    });
    let pid = a.child.id().to_string();
    ward_testkit::Command::new("kill")
        .args(["-TERM", &pid])
        .run()
        .ok();
    let code = wait_for(20, "the agent to stop", || {
        a.child.try_wait().ok().flatten()
    });
    assert!(
        code.success(),
        "the agent stops cleanly on SIGTERM: {code}\n{}",
        a.log()
    );
    wait_for(20, "the entity to be removed", || {
        (api.get(&format!("{D}/entities/leaving-1")).0 == 404).then_some(())
    });
    let (_, evs) = api.get(&format!("{D}/events/leaving-1"));
    assert_eq!(evs, json!([]), "its events are gone too");
    let got = wait_for(20, "the deregistration handler's event", || {
        api.events("dereg").pop()
    });
    assert_eq!(got["check"]["metadata"]["name"], "deregistration", "{got}");
    assert_eq!(got["entity"]["metadata"]["name"], "leaving-1", "{got}");
    assert_eq!(got["check"]["status"], 1, "{got}");
    let out = got["check"]["output"].as_str().unwrap();
    assert!(
        out.contains("closed its session"),
        "deregistered by the close: {got}"
    );
    // Its keepalive event, resolved once more for its handlers.
    let last = wait_for(20, "the resolved keepalive", || {
        api.events("gone")
            .into_iter()
            .find(|e| e["check"]["output"] == "Resolving due to entity deregistering")
    });
    assert_eq!(status(&last), 0, "{last}");
    assert_eq!(
        api.get(&format!("{D}/entities/leaving-1")).0,
        404,
        "not brought back"
    );
}

#[test]
fn an_agent_naming_no_deregistration_handler_gets_the_backends() {
    let api = Api::start_with(&["--deregistration-handler", "fallback"]);
    api.handler("fallback", &[], None);
    let yaml = format!(
        "{}deregister: true\nkeepalive-warning-timeout: 600\n",
        Agent::password_yaml(&api.b, AGENT_PASSWORD)
    );
    let mut a = OwnAgent::start("leaving-2", &yaml);
    wait_for(20, "the keepalive event", || {
        (api.get(&format!("{D}/events/leaving-2/keepalive")).0 == 200).then_some(())
    });
    let pid = a.child.id().to_string();
    ward_testkit::Command::new("kill")
        .args(["-TERM", &pid])
        .run()
        .ok();
    wait_for(20, "the agent to stop", || {
        a.child.try_wait().ok().flatten()
    });
    let got = wait_for(20, "the backend's deregistration handler's event", || {
        api.events("fallback").pop()
    });
    assert_eq!(got["check"]["metadata"]["name"], "deregistration", "{got}");
    assert_eq!(got["entity"]["metadata"]["name"], "leaving-2", "{got}");
}

/// (format, command, points as `name{tag=value,…} value`): outputs from the cases of
/// crates/ward-types/src/metrics/tests*.rs, and the points they give with the tag env=test
/// (first in graphite points, last in nagios, influx and opentsdb, sorted in prometheus).
const METRIC_CASES: [(&str, &str, &[&str]); 5] = [
    (
        "nagios_perfdata",
        "printf 'PING ok - RTA = 0.80 ms | percent_packet_loss=0, rta=0.80\\n'",
        &["percent_packet_loss{env=test} 0.0", "rta{env=test} 0.8"],
    ),
    (
        "graphite_plaintext",
        "printf 'cpu.user;core=0 12.5 1700000000\\n'",
        &["cpu.user{env=test,core=0} 12.5"],
    ),
    (
        "influxdb_line",
        "printf 'weather,location=us-midwest temperature=82,humidity=30 1465839830100400200\\n'",
        &[
            "weather.temperature{location=us-midwest,env=test} 82.0",
            "weather.humidity{location=us-midwest,env=test} 30.0",
        ],
    ),
    (
        "opentsdb_line",
        "printf 'sys.cpu.user 1356998400 42.5 host=webserver01\\n'",
        &["sys.cpu.user{host=webserver01,env=test} 42.5"],
    ),
    (
        "prometheus_text",
        "printf '# TYPE http_requests_total counter\\nhttp_requests_total{code=\"200\"} 1027\\n'",
        &["http_requests_total{code=200,env=test,prom_type=counter} 1027.0"],
    ),
];

/// A metric point as `name{tag=value,…} value`.
fn show(p: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("?").to_string();
    let tags: Vec<String> = (p["tags"].as_array().into_iter().flatten())
        .map(|t| format!("{}={}", s(&t["name"]), s(&t["value"])))
        .collect();
    format!("{}{{{}}} {}", s(&p["name"]), tags.join(","), p["value"])
}

#[test]
fn check_output_metrics_in_every_format_reach_the_metric_handler() {
    let api = Api::start();
    api.handler("mh", &["has_metrics"], None);
    for (format, command, _) in METRIC_CASES {
        api.post(&format!("{D}/checks"), json!({
            "metadata": {"name": format}, "command": command, "interval": 1, "publish": true,
            "subscriptions": ["metrics"], "output_metric_format": format,
            "output_metric_tags": [{"name": "env", "value": "test"}], "output_metric_handlers": ["mh"]}));
    }
    let yaml = format!(
        "{}subscriptions: [metrics]\n",
        Agent::password_yaml(&api.b, AGENT_PASSWORD)
    );
    let _a = Agent::start("metrics-1", &yaml);
    let of = |evs: &[Value], c: &str| {
        evs.iter()
            .find(|e| e["check"]["metadata"]["name"] == c)
            .cloned()
    };
    let evs = wait_for(40, "an event of every metric check at mh", || {
        let evs = api.events("mh");
        METRIC_CASES
            .iter()
            .all(|(f, _, _)| of(&evs, f).is_some())
            .then_some(evs)
    });
    for (format, _, want) in METRIC_CASES {
        let e = of(&evs, format).unwrap();
        assert_eq!(e["check"]["status"], 0, "{e}");
        assert_eq!(e["metrics"]["handlers"], json!(["mh"]), "{e}");
        let notes = &e["check"]["metadata"]["annotations"];
        assert!(
            notes.get("ward.io/output_metric_errors").is_none(),
            "{format}: {e}"
        );
        let points = e["metrics"]["points"]
            .as_array()
            .unwrap_or_else(|| panic!("{e}"));
        let got: Vec<String> = points.iter().map(show).collect();
        assert_eq!(got, want, "{format}: {e}");
        let executed = e["check"]["executed"].as_i64().unwrap();
        let fixed = match format {
            "graphite_plaintext" => Some(1700000000),
            "influxdb_line" => Some(1465839830),
            "opentsdb_line" => Some(1356998400),
            "nagios_perfdata" => Some(executed),
            _ => None,
        };
        for t in points.iter().map(|p| p["timestamp"].as_i64().unwrap()) {
            match fixed {
                Some(f) => assert_eq!(t, f, "{format}: {e}"),
                // Stamped when parsed, after the run.
                None => assert!(t >= executed && t < executed + 600, "{format}: {e}"),
            }
        }
    }
}

/// Every `path: type` of a JSON value (`a.b[].c`), nulls left out.
fn shapes(v: &Value, at: &str, out: &mut std::collections::BTreeMap<String, &'static str>) {
    let kind = match v {
        Value::Null => return,
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(a) => {
            for x in a {
                shapes(x, &format!("{at}[]"), out);
            }
            "array"
        }
        Value::Object(o) => {
            for (k, x) in o {
                let p = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                shapes(x, &p, out);
            }
            "object"
        }
    };
    out.insert(at.to_string(), kind);
}

/// What Sensu's documented agent events have that a Ward agent's event does not, and why.
const EVENT_GAPS: &[(&str, &str)] = &[
    ("check.hooks", "check hooks run on the agent: issue 15"),
    ("sequence", "Sensu's per-check event counter on the agent"),
    ("check.subdue", "subdues are issue 15"),
];

#[test]
fn an_agents_event_has_the_fields_of_sensus_documented_events() {
    let api = Api::start();
    api.handler("rec", &[], None);
    api.post(&format!("{D}/checks"), json!({
        "metadata": {"name": "fidelity", "labels": {"team": "ops"}}, "command": "echo fine", "interval": 1,
        "publish": true, "subscriptions": ["fid"], "handlers": ["rec"], "timeout": 10}));
    let yaml = format!(
        "{}subscriptions: [fid]\nlabels:\n  region: eu\n",
        Agent::password_yaml(&api.b, AGENT_PASSWORD)
    );
    let _a = Agent::start("fidelity-1", &yaml);
    // The second event: the first keepalive (system facts) is in by then.
    let ev = wait_for(30, "two events at rec", || {
        let evs = api.events("rec");
        (evs.len() >= 2).then(|| evs[1].clone())
    });
    let mut ward = std::collections::BTreeMap::new();
    shapes(&ev, "", &mut ward);
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../conformance/sensu-docs/resources/Event"
    );
    let mut compared = 0;
    let mut missing = Vec::new();
    for f in std::fs::read_dir(dir).unwrap() {
        let path = f.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let spec = doc.get("spec").unwrap_or(&doc);
        if spec.pointer("/entity/entity_class") != Some(&json!("agent")) {
            continue;
        }
        compared += 1;
        let mut sensu = std::collections::BTreeMap::new();
        shapes(spec, "", &mut sensu);
        for (p, t) in &sensu {
            if EVENT_GAPS.iter().any(|(g, _)| {
                p == g || p.starts_with(&format!("{g}.")) || p.starts_with(&format!("{g}[]"))
            }) {
                continue;
            }
            // Free-form maps: their keys are the example's own.
            if [
                "labels.",
                "annotations.",
                "metrics.points[]",
                "check.history[]",
            ]
            .iter()
            .any(|m| p.contains(m) && !p.ends_with(m.trim_end_matches('.')))
            {
                continue;
            }
            match ward.get(p) {
                Some(w) if w == t => {}
                // An empty list in Ward where the example has items: the list is there.
                None if p.contains("[]")
                    && ward.get(&p[..p.find("[]").unwrap()]) == Some(&"array") => {}
                got => missing.push(format!(
                    "{}: {p} is {t} in Sensu, {got:?} in Ward",
                    path.display()
                )),
            }
        }
    }
    assert!(compared >= 1, "no documented agent event in {dir}");
    assert!(
        missing.is_empty(),
        "{}\nWard's event: {ev}",
        missing.join("\n")
    );
}

/// `openssl s_server` on a free port, requiring a client certificate from `ca`, writing
/// what it receives to `out`. Killed on drop.
struct TlsPeer {
    child: std::process::Child,
    port: u16,
    out: PathBuf,
    /// Held open: s_server ends a session when its stdin closes.
    _stdin: std::process::ChildStdin,
}

impl TlsPeer {
    fn start(
        dir: &std::path::Path,
        server: &ward_testkit::fixtures::Leaf,
        ca: &std::path::Path,
    ) -> TlsPeer {
        let port = free_port();
        let out = dir.join(format!("s_server-{port}.out"));
        let log = dir.join(format!("s_server-{port}.log"));
        let mut child = std::process::Command::new(require_tool("openssl"))
            .args(["s_server", "-quiet", "-Verify", "1", "-verify_return_error"])
            .arg("-accept")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&server.cert)
            .arg("-key")
            .arg(&server.key)
            .arg("-CAfile")
            .arg(ca)
            .stdin(std::process::Stdio::piped())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        ward_testkit::wait_listening(&mut child, port, "openssl s_server", &log);
        TlsPeer {
            child,
            port,
            out,
            _stdin: stdin,
        }
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for TlsPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_tcp_stream_handler_sends_events_over_tls_with_its_client_certificate() {
    let api = Api::start();
    let pki = api.b.dir.join("stream-pki");
    std::fs::create_dir(&pki).unwrap();
    let ca = ward_testkit::fixtures::TestCa::create(&pki, "logstash CA");
    let server = ca.issue("logstash", "server", "127.0.0.1");
    let client = ca.issue("ward-backend", "client", "ward-backend");
    let peer = TlsPeer::start(&pki, &server, &ca.cert_path());
    // The documented example, at the peer, through the enterprise/pipeline/v1 API.
    let streams = "/api/enterprise/pipeline/v1/namespaces/default/tcp-stream-handlers";
    api.post(
        streams,
        json!({"type": "TCPStreamHandler", "api_version": "pipeline/v1",
               "metadata": {"name": "logstash"},
               "spec": {"address": format!("127.0.0.1:{}", peer.port),
                        "tls_ca_cert_file": ca.cert_path(), "tls_cert_file": client.cert,
                        "tls_key_file": client.key, "max_connections": 1,
                        "min_reconnect_delay": "10ms", "max_reconnect_delay": "10s"}}),
    );
    let (code, got) = api.get(&format!("{streams}/logstash"));
    assert_eq!(
        (code, got["max_connections"].as_u64()),
        (200, Some(1)),
        "{got}"
    );
    // Not in core/v2, as in Sensu.
    let (code, _) = api.get(&format!("{D}/tcp-stream-handlers"));
    assert_eq!(code, 404);
    api.post(
        &format!("{D}/pipelines"),
        json!({"metadata": {"name": "tcp_logging_workflows"},
               "workflows": [{"name": "log_all_incidents",
                   "filters": [{"name": "is_incident", "type": "EventFilter", "api_version": "core/v2"}],
                   "handler": {"name": "logstash", "type": "TCPStreamHandler", "api_version": "pipeline/v1"}}]}),
    );
    let pipelines =
        json!([{"name": "tcp_logging_workflows", "type": "Pipeline", "api_version": "core/v2"}]);
    for (i, status) in [2, 2, 0, 0].iter().enumerate() {
        api.post(
            &format!("{D}/events"),
            json!({"entity": {"entity_class": "proxy", "metadata": {"name": "web-1"}},
                   "check": {"metadata": {"name": "http"}, "status": status, "interval": 60,
                             "output": format!("run {i}"), "pipelines": pipelines}}),
        );
    }
    // Incidents and the first resolution (is_incident), one event per line, over one
    // connection that s_server accepted only with the client certificate.
    wait_for(30, "three events at s_server", || {
        (peer.lines().len() >= 3).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    let outputs: Vec<String> = peer
        .lines()
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .map(|e| e["check"]["output"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(outputs, ["run 0", "run 1", "run 2"]);

    // A peer whose certificate another CA issued: the handshake is refused on Ward's side,
    // and the log says which certificate and why.
    let other_dir = api.b.dir.join("other-pki");
    std::fs::create_dir(&other_dir).unwrap();
    let other = ward_testkit::fixtures::TestCa::create(&other_dir, "other CA");
    let stranger = other.issue("stranger", "server", "127.0.0.1");
    let wrong = TlsPeer::start(&pki, &stranger, &ca.cert_path());
    let (code, out) = api.call(
        "PUT",
        &format!("{streams}/logstash"),
        Some(&json!({"metadata": {"name": "logstash"},
                     "address": format!("127.0.0.1:{}", wrong.port),
                     "tls_ca_cert_file": ca.cert_path(), "tls_cert_file": client.cert,
                     "tls_key_file": client.key, "max_connections": 1,
                     "min_reconnect_delay": "10ms", "max_reconnect_delay": "1s"})),
    );
    assert!(code == 200 || code == 201, "{code} {out}");
    api.post(
        &format!("{D}/events"),
        json!({"entity": {"entity_class": "proxy", "metadata": {"name": "web-1"}},
               "check": {"metadata": {"name": "http"}, "status": 2, "interval": 60,
                         "output": "to a stranger", "pipelines": pipelines}}),
    );
    wait_for(30, "the refused handshake in the log", || {
        api.b.log().contains("TLS handshake failed").then_some(())
    });
    let log = api.b.log();
    let line = log
        .lines()
        .find(|l| l.contains("TLS handshake failed"))
        .unwrap();
    assert!(
        line.contains("logstash") && line.contains(&wrong.port.to_string()),
        "{line}"
    );
    eprintln!("{line}");
    assert!(wrong.lines().is_empty());
    assert!(api.metric("ward_handler_failures_total{reason=\"socket\"}") >= 1.0);
}

#[test]
fn sensus_event_functions_let_a_filter_follow_another_checks_result() {
    let api = Api::start();
    // Page about the app only while the database it depends on passes (otherwise the
    // database's own alert says it all), as sensu-query-expressions.md's example.
    api.post(
        &format!("{D}/filters"),
        json!({"metadata": {"name": "deps"}, "action": "allow",
               "expressions": ["sensu.CheckDependencies(\"database\")",
                               "sensu.FetchEvent(event.entity.name, \"database\").check.output.indexOf(\"database\") == 0"]}),
    );
    api.handler("app-pager", &["deps"], Some("only_check_output"));
    api.send("web-1", "database", 2, &[]);
    api.send("web-1", "app", 2, &["app-pager"]);
    api.settle();
    assert!(api.received("app-pager").is_empty());
    api.send("web-1", "database", 0, &[]);
    api.send("web-1", "app", 2, &["app-pager"]);
    api.settle();
    assert_eq!(api.received("app-pager"), ["app status 2"]);
    // No database event on this entity: the expression throws; the filter is skipped
    // and counted, and the event handled, as Sensu does.
    let before = api.metric("ward_handler_failures_total{reason=\"filter\"}");
    api.send("web-2", "app", 2, &["app-pager"]);
    api.settle();
    assert_eq!(api.received("app-pager").len(), 2);
    assert!(api.metric("ward_handler_failures_total{reason=\"filter\"}") > before);
    assert!(
        api.b
            .log()
            .contains("no event for entity \\\"web-2\\\" and check \\\"database\\\""),
        "{}",
        api.b.log()
    );
}

#[test]
fn handlers_mutators_and_filters_use_their_runtime_assets() {
    // An asset server with its own CA, which the backend trusts (trusted-ca-file).
    let pki = ward_testkit::TempDir::new();
    let ca = ward_testkit::fixtures::TestCa::create(pki.path(), "assets CA");
    let leaf = ca.issue("assets", "server", "127.0.0.1");
    let (src, www) = (pki.join("src"), pki.join("www"));
    std::fs::create_dir_all(&www).unwrap();
    script(&src.join("bin/shout"), "tr a-z A-Z");
    script(
        &src.join("bin/keep-it"),
        "cat > \"$1.tmp\" && echo \"$TOOLS_PATH\" > \"$1.path\" && mv \"$1.tmp\" \"$1\"",
    );
    std::fs::create_dir_all(src.join("lib/js")).unwrap();
    std::fs::write(
        src.join("lib/js/checks.js"),
        "function is_loud(e) { return e.check.status == 2; }\n\
         function tag(e) { return 'tagged:' + e.check.metadata.name; }\n",
    )
    .unwrap();
    let tools = tar_gz(&src, &["bin", "lib"], &www.join("tools.tar.gz"));
    std::fs::write(www.join("tampered.tar.gz"), [&tools[..], b"!"].concat()).unwrap();
    let server = HttpsFiles::start(&www, &leaf);
    let ca_file = ca.cert_path();
    let api = Api::start_with(&["--trusted-ca-file", ca_file.to_str().unwrap()]);
    let url = |f: &str| server.url(f);
    api.post(
        &format!("{D}/assets"),
        json!({"metadata": {"name": "tools"}, "url": url("tools.tar.gz"), "sha512": sha512_hex(&tools)}),
    );
    api.post(
        &format!("{D}/assets"),
        // (Not tools' hash: that build is in the cache, and a cached hash is never fetched.)
        json!({"metadata": {"name": "tampered"}, "url": url("tampered.tar.gz"),
               "sha512": sha512_hex(b"the archive its author published")}),
    );
    api.post(
        &format!("{D}/filters"),
        json!({"metadata": {"name": "loud"}, "action": "allow", "runtime_assets": ["tools"],
               "expressions": ["is_loud(event)"]}),
    );
    api.post(
        &format!("{D}/mutators"),
        json!({"metadata": {"name": "shout"}, "command": "shout", "runtime_assets": ["tools"]}),
    );
    // A JavaScript mutator with the asset's library.
    api.post(
        &format!("{D}/mutators"),
        json!({"metadata": {"name": "tag"}, "type": "javascript", "runtime_assets": ["tools"],
               "eval": "return tag(event)"}),
    );
    let tagged = api.out.join("tagged");
    api.post(
        &format!("{D}/handlers"),
        json!({"metadata": {"name": "tagger"}, "type": "pipe", "timeout": 10,
               "command": format!("keep-it {}.$(date +%s%N)", tagged.display()),
               "runtime_assets": ["tools"], "filters": ["loud"], "mutator": "tag"}),
    );
    let kept = api.out.join("kept");
    api.post(
        &format!("{D}/handlers"),
        json!({"metadata": {"name": "keeper"}, "type": "pipe", "timeout": 10,
               "command": format!("keep-it {}.$(date +%s%N)", kept.display()),
               "runtime_assets": ["tools"], "filters": ["loud"], "mutator": "shout"}),
    );
    api.post(
        &format!("{D}/handlers"),
        json!({"metadata": {"name": "refused"}, "type": "pipe", "command": "true",
               "runtime_assets": ["tampered"]}),
    );
    api.send("web-1", "disk", 1, &["keeper"]); // not loud: filtered out by the asset's function
    api.send("web-1", "disk", 2, &["keeper", "refused", "tagger"]);
    api.settle();
    let tags: Vec<String> = std::fs::read_dir(&api.out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("tagged.") && !n.ends_with(".path") && !n.ends_with(".tmp")
        })
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(tags, ["tagged:disk"], "{}", api.b.log());
    let got: Vec<String> = std::fs::read_dir(&api.out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("kept.") && !n.ends_with(".path") && !n.ends_with(".tmp")
        })
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(got.len(), 1, "{got:?}\n{}", api.b.log());
    assert!(
        got[0].contains("\"OUTPUT\":\"DISK STATUS 2\""),
        "{}",
        got[0]
    );
    // TOOLS_PATH is the asset's directory in the cache, named by its SHA-512.
    let path_file = std::fs::read_dir(&api.out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".path"))
        .unwrap();
    let dir = std::fs::read_to_string(path_file).unwrap();
    assert!(
        dir.trim()
            .ends_with(&format!("/assets/{}", sha512_hex(&tools))),
        "{dir}"
    );
    // The tampered build was refused, and said why.
    assert!(api.metric("ward_handler_failures_total{reason=\"asset\"}") >= 1.0);
    let log = api.b.log();
    assert!(
        log.contains("asset \\\"tampered\\\"") && log.contains("its SHA-512 is"),
        "{log}"
    );
}

#[test]
fn a_handlers_secrets_come_from_the_backends_environment_and_never_its_own() {
    let dir = ward_testkit::TempDir::new();
    let env_file = dir.join("ward-backend.env");
    std::fs::write(
        &env_file,
        "SLACK_WEBHOOK_URL=https://hooks.example/s3cret-path\n",
    )
    .unwrap();
    let api = Api::start_with(&["--env-file", env_file.to_str().unwrap()]);
    let secrets = "/api/enterprise/secrets/v1/namespaces/default/secrets";
    // Sensu's documented Env-provider secret.
    api.post(
        secrets,
        json!({"type": "Secret", "api_version": "secrets/v1", "metadata": {"name": "sensu-slack-webhook"},
               "spec": {"id": "SLACK_WEBHOOK_URL", "provider": "env"}}),
    );
    // The backend's own credentials are not for handlers.
    let (code, out) = api.call(
        "POST",
        secrets,
        Some(&json!({"metadata": {"name": "db"}, "id": "PGPASSWORD", "provider": "env"})),
    );
    assert_eq!(code, 400, "{out}");
    assert!(out.contains("backend's own variables"), "{out}");
    let got = api.out.join("webhook.txt");
    api.post(
        &format!("{D}/handlers"),
        json!({"metadata": {"name": "slack"}, "type": "pipe", "timeout": 10,
               "command": format!("printf '%s' \"$SLACK_WEBHOOK_URL\" > {}", got.display()),
               "secrets": [{"name": "SLACK_WEBHOOK_URL", "secret": "sensu-slack-webhook"}]}),
    );
    api.post(
        &format!("{D}/handlers"),
        json!({"metadata": {"name": "orphan"}, "type": "pipe", "command": "true",
               "secrets": [{"name": "X", "secret": "no-such-secret"}]}),
    );
    api.send("web-1", "disk", 2, &["slack", "orphan"]);
    api.settle();
    assert_eq!(
        std::fs::read_to_string(&got).unwrap(),
        "https://hooks.example/s3cret-path"
    );
    assert!(api.metric("ward_handler_failures_total{reason=\"secret\"}") >= 1.0);
    let log = api.b.log();
    assert!(log.contains("no Secret \\\"no-such-secret\\\""), "{log}");
    assert!(!log.contains("s3cret"), "a secret's value reached the log");
    // The API shows the secret's id and provider, as Sensu's, never the value.
    let (code, s) = api.get(&format!("{secrets}/sensu-slack-webhook"));
    assert_eq!((code, s["id"].as_str()), (200, Some("SLACK_WEBHOOK_URL")));
    assert!(!s.to_string().contains("s3cret"));
}

#[test]
fn labels_the_redact_list_names_never_leave_the_agent() {
    let api = Api::start();
    api.handler("seen", &[], None);
    let yaml = format!(
        "{}labels:\n  region: eu\n  password: hunter2\n  API-Key: k-123\nannotations:\n  private_key: pk-456\n  runbook: https://wiki\n",
        Agent::password_yaml(&api.b, AGENT_PASSWORD)
    );
    let a = Agent::start("secretive", &yaml);
    // The keepalive's entity, as the backend stored it.
    let entity = wait_for(20, "the agent's entity", || {
        let (code, e) = api.get(&format!("{D}/entities/secretive"));
        (code == 200).then_some(e)
    });
    let labels = &entity["metadata"]["labels"];
    assert_eq!(labels["region"], "eu", "{entity}");
    assert_eq!(labels["password"], "REDACTED", "{entity}");
    assert_eq!(labels["API-Key"], "REDACTED", "{entity}");
    assert_eq!(entity["metadata"]["annotations"]["private_key"], "REDACTED");
    assert_eq!(entity["metadata"]["annotations"]["runbook"], "https://wiki");
    // An event from the agent: the entity its handlers and filters see is redacted too.
    let (code, out) = a.post_event(r#"{"check": {"metadata": {"name": "local"}, "status": 2, "output": "x", "handlers": ["seen"]}}"#);
    assert!(code == 202 || code == 200, "{code} {out}");
    let got = wait_for(20, "the handled event", || api.events("seen").pop());
    assert_eq!(
        got["entity"]["metadata"]["labels"]["password"], "REDACTED",
        "{got}"
    );
    let text = got.to_string();
    for secret in ["hunter2", "k-123", "pk-456"] {
        assert!(!text.contains(secret), "{secret} left the agent: {text}");
    }
    let (_, stored) = api.get(&format!("{D}/entities/secretive"));
    assert!(!stored.to_string().contains("hunter2"));
}
