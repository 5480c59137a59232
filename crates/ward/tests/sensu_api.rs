//! Issue 13, end to end through `ward backend` and `ward ctl`: every kind in Sensu's flat
//! REST bodies (created, read back identical, patched, selected, paged, deleted) and in
//! sensuctl's wrapped form (`ward ctl create -f`), and `ward ctl dump all` restoring an
//! identical dump after everything was deleted.

use serde_json::{json, Value};
use ward_testkit::backend::{Backend, ADMIN, ADMIN_PASSWORD};
use ward_testkit::require_tool;
use ward_types::Document;

/// The default namespace's collections.
const D: &str = "/api/core/v2/namespaces/default";

/// A backend, `ward ctl` logged in as the admin, and the admin's access token.
struct Api {
    b: Backend,
    auth: String,
}

impl Api {
    fn start() -> Api {
        require_tool("curl");
        let b = Backend::start(false);
        b.ctl_login();
        let auth = format!("Authorization: Bearer {}", b.token(ADMIN, ADMIN_PASSWORD));
        Api { b, auth }
    }

    /// `method path` with `body` (sent as `ctype`): (status, headers, body).
    fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        ctype: &str,
    ) -> (u16, String, String) {
        let url = format!("{}{path}", self.b.url());
        let ct = format!("Content-Type: {ctype}");
        let mut args = vec!["-i", "-X", method, "-H", &self.auth, "-H", &ct];
        if let Some(d) = body {
            args.extend(["--data-binary", d]);
        }
        args.push(&url);
        let (code, out) = self.b.curl(&args);
        let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
        (code, head.to_string(), body.to_string())
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
        let text = body.map(Value::to_string);
        let (code, _, out) = self.raw(method, path, text.as_deref(), "application/json");
        (code, out)
    }

    /// `call`, asserting `want`, the body parsed (Null when empty).
    #[track_caller]
    fn expect(&self, method: &str, path: &str, body: Option<&Value>, want: u16) -> Value {
        let (code, out) = self.call(method, path, body);
        assert_eq!(code, want, "{method} {path} {body:?}: {out}");
        serde_json::from_str(&out).unwrap_or(Value::Null)
    }

    #[track_caller]
    fn get(&self, path: &str) -> Value {
        self.expect("GET", path, None, 200)
    }

    #[track_caller]
    fn post(&self, path: &str, body: &Value) -> Value {
        self.expect("POST", path, Some(body), 201)
    }

    #[track_caller]
    fn delete(&self, path: &str) {
        self.expect("DELETE", path, None, 204);
    }

    /// The names in a list answer, sorted: `metadata.name`, a namespace's `name`, a
    /// user's `username`, an event's `ENTITY/CHECK`.
    #[track_caller]
    fn names(&self, path: &str) -> Vec<String> {
        let v = self.get(path);
        let s = |x: &Value, p: &str| x.pointer(p).and_then(Value::as_str).map(str::to_string);
        let mut names: Vec<String> = (v.as_array().unwrap_or_else(|| panic!("{path}: {v}")).iter())
            .map(|x| {
                let ev = s(x, "/entity/metadata/name").zip(s(x, "/check/metadata/name"));
                (ev.map(|(e, c)| format!("{e}/{c}")))
                    .or_else(|| s(x, "/metadata/name"))
                    .or_else(|| s(x, "/name"))
                    .or_else(|| s(x, "/username"))
                    .unwrap_or_default()
            })
            .collect();
        names.sort();
        names
    }

    /// `names` of `path` with `param` = `selector`.
    #[track_caller]
    fn select(&self, path: &str, param: &str, selector: &str) -> Vec<String> {
        self.names(&format!("{path}?{param}={}", q(selector)))
    }

    fn status(&self, method: &str, path: &str) -> u16 {
        self.call(method, path, None).0
    }

    /// `ward ctl create -f` of `docs` written as a YAML stream.
    fn ctl_create(&self, docs: &[Value]) {
        let text: String = docs
            .iter()
            .map(|d| {
                let doc: Document = serde_json::from_value(d.clone()).unwrap();
                format!("---\n{}", ward_types::to_yaml(&doc))
            })
            .collect();
        let f = self.b.dir.join("create.yml");
        std::fs::write(&f, text).unwrap();
        self.b.ctl().arg("create").arg("-f").arg(&f).run().ok();
    }
}

/// A kind's case: its collection, a Sensu-docs-shaped spec, and a merge patch of it.
struct Case {
    type_name: &'static str,
    plural: &'static str,
    namespaced: bool,
    spec: Value,
    /// Changes one field (an array when the kind has one: arrays are replaced whole).
    patch: Value,
}

/// A realistic spec of every kind with `metadata` (as Sensu's docs show them), and a patch.
#[rustfmt::skip]
fn cases() -> Vec<Case> {
    let sha = "4f926bf4328fbad2b9cac873d117f771914f4b837c9c85584c38ccf55a3ef3c2e8d154812246e5dda4a87450576b2c58ad9ab40c9e2edc31b288d066b195b21b";
    let r = |t: &str, n: &str| json!({"name": n, "type": t, "api_version": "core/v2"});
    let rule = |v: &[&str], res: &[&str]| json!({"verbs": v, "resources": res, "resource_names": []});
    let rows = [
        ("CheckConfig", "checks", true,
         json!({"command": "check-cpu-usage -w 75 -c 90", "subscriptions": ["linux", "system"], "interval": 60, "publish": true,
                "handlers": ["slack"], "runtime_assets": ["check-cpu-usage"], "timeout": 10, "stdin": false, "round_robin": false}),
         json!({"subscriptions": ["windows"]})),
        ("Handler", "handlers", true,
         json!({"type": "pipe", "command": "sensu-slack-handler --channel '#monitoring'", "timeout": 10, "filters": ["is_incident", "not_silenced"],
                "env_vars": ["SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T0/B0/X"], "runtime_assets": ["sensu-slack-handler"]}),
         json!({"filters": ["is_incident"]})),
        ("EventFilter", "filters", true,
         json!({"action": "allow", "expressions": ["event.check.occurrences == 1"], "runtime_assets": []}),
         json!({"expressions": ["event.check.occurrences > 5", "event.check.status != 0"]})),
        ("Mutator", "mutators", true,
         json!({"command": "sensu-json-mutator", "timeout": 10, "env_vars": [], "runtime_assets": ["sensu-json-mutator"]}),
         json!({"runtime_assets": []})),
        ("Pipeline", "pipelines", true,
         json!({"workflows": [{"name": "slack_incidents", "filters": [r("EventFilter", "is_incident")], "handler": r("Handler", "slack")}]}),
         json!({"workflows": [{"name": "pager", "handler": r("Handler", "pagerduty")}]})),
        ("HookConfig", "hooks", true,
         json!({"command": "ps aux", "timeout": 10, "stdin": false, "runtime_assets": []}),
         json!({"runtime_assets": ["procps"]})),
        ("Asset", "assets", true,
         json!({"url": "https://assets.bonsai.sensu.io/a1/check-cpu-usage_0.2.2_linux_amd64.tar.gz", "sha512": sha,
                "filters": ["entity.system.os == 'linux'", "entity.system.arch == 'amd64'"], "headers": {"X-Forwarded-For": "client1"}}),
         json!({"filters": ["entity.system.os == 'linux'"]})),
        ("Entity", "entities", true,
         json!({"entity_class": "proxy", "subscriptions": ["web"], "deregister": false, "redact": ["password", "private_key"]}),
         json!({"subscriptions": ["web", "db"]})),
        ("Role", "roles", true,
         json!({"rules": [rule(&["get", "list"], &["checks"])]}),
         json!({"rules": [rule(&["get"], &["events"])]})),
        ("RoleBinding", "rolebindings", true,
         json!({"subjects": [{"type": "Group", "name": "ops"}], "role_ref": {"type": "Role", "name": "reader"}}),
         json!({"subjects": [{"type": "User", "name": "alice"}]})),
        ("ClusterRole", "clusterroles", false,
         json!({"rules": [rule(&["get", "list"], &["checks", "events"])]}),
         json!({"rules": [rule(&["*"], &["silenced"])]})),
        ("ClusterRoleBinding", "clusterrolebindings", false,
         json!({"subjects": [{"type": "Group", "name": "ops"}], "role_ref": {"type": "ClusterRole", "name": "reader"}}),
         json!({"subjects": [{"type": "User", "name": "alice"}, {"type": "Group", "name": "sre"}]})),
    ];
    rows.into_iter()
        .map(|(type_name, plural, namespaced, spec, patch)| Case { type_name, plural, namespaced, spec, patch })
        .collect()
}

impl Case {
    fn collection(&self) -> String {
        if self.namespaced {
            format!("{D}/{}", self.plural)
        } else {
            format!("/api/core/v2/{}", self.plural)
        }
    }

    /// The flat object as the API should show it: the spec's fields and `metadata`
    /// (without `created_by`, which the server sets).
    fn flat(&self, name: &str, region: &str) -> Value {
        let mut v = self.spec.clone();
        v["metadata"] = json!({"name": name, "labels": {"region": region}});
        if self.namespaced {
            v["metadata"]["namespace"] = json!("default");
        }
        v
    }

    /// The selector field prefix (Sensu's `check.name`, `filter.name`…).
    fn prefix(&self) -> &'static str {
        match self.plural {
            "checks" => "check",
            "filters" => "filter",
            "entities" => "entity",
            p => p.strip_suffix('s').unwrap_or(p),
        }
    }
}

/// A GET answer without the server-set `metadata.created_by` (asserted to be the admin).
#[track_caller]
fn without_created_by(mut v: Value) -> Value {
    let by = v["metadata"]
        .as_object_mut()
        .and_then(|m| m.remove("created_by"));
    assert_eq!(by, Some(json!(ADMIN)), "{v}");
    v
}

fn q(s: &str) -> String {
    s.replace(' ', "%20")
        .replace('=', "%3D")
        .replace('!', "%21")
        .replace('[', "%5B")
        .replace(']', "%5D")
        .replace(',', "%2C")
}

#[test]
fn every_kind_round_trips_flat_and_wrapped_and_patches_selects_and_deletes() {
    let api = Api::start();
    for case in cases() {
        let coll = case.collection();
        let one = |n: &str| format!("{coll}/{n}");
        let what = case.type_name;
        // Flat via the API.
        let posted = case.flat("eu1", "eu");
        api.post(&coll, &posted);
        let got = api.get(&one("eu1"));
        assert_eq!(without_created_by(got), posted, "{what}: read back");
        assert_eq!(api.call("POST", &coll, Some(&posted)).0, 409, "{what}");
        // Wrapped via ctl, and PUT of a flat body.
        let mut md = case.flat("us1", "us")["metadata"].take();
        if !case.namespaced {
            md.as_object_mut().unwrap().remove("namespace");
        }
        let doc =
            json!({"type": what, "api_version": "core/v2", "metadata": md, "spec": case.spec});
        api.ctl_create(&[doc]);
        let got = api.get(&one("us1"));
        assert_eq!(
            without_created_by(got),
            case.flat("us1", "us"),
            "{what}: ctl create"
        );
        api.expect("PUT", &one("ap1"), Some(&case.flat("ap1", "ap")), 201);

        // Selectors: exactly the matching ones (`!=` admits what has no such label, as
        // the seeded cluster roles).
        let all = api.names(&coll);
        let but = |x: &str| -> Vec<String> { all.iter().filter(|n| *n != x).cloned().collect() };
        let sel = |param: &str, s: &str| api.select(&coll, param, s);
        assert_eq!(sel("labelSelector", "region == eu"), ["eu1"], "{what}");
        assert_eq!(sel("labelSelector", "region != eu"), but("eu1"), "{what}");
        assert_eq!(
            sel("labelSelector", "region in [eu, us]"),
            ["eu1", "us1"],
            "{what}"
        );
        assert_eq!(
            sel("labelSelector", "region notin [eu, us]"),
            but("eu1")
                .into_iter()
                .filter(|n| n != "us1")
                .collect::<Vec<_>>(),
            "{what}"
        );
        let by_name = format!("{}.name == us1", case.prefix());
        assert_eq!(sel("fieldSelector", &by_name), ["us1"], "{what}");
        let by_name = format!("{}.name != us1", case.prefix());
        assert_eq!(sel("fieldSelector", &by_name), but("us1"), "{what}");

        // A merge patch: one field (an array, replaced whole) and a new label.
        let mut patch = case.patch.clone();
        patch["metadata"] = json!({"labels": {"patched": "yes"}});
        let (code, _, out) = api.raw(
            "PATCH",
            &one("eu1"),
            Some(&patch.to_string()),
            "application/merge-patch+json",
        );
        assert_eq!(code, 200, "{what}: {out}");
        let mut want = case.flat("eu1", "eu");
        for (k, v) in case.patch.as_object().unwrap() {
            want[k] = v.clone();
        }
        want["metadata"]["labels"]["patched"] = json!("yes");
        let answered: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(without_created_by(answered), want, "{what}: PATCH answer");
        let got = api.get(&one("eu1"));
        assert_eq!(without_created_by(got), want, "{what}: after PATCH");
        // JSON Patch, and a patch renaming the resource: 400, nothing changed.
        let (code, _, out) = api.raw(
            "PATCH",
            &one("eu1"),
            Some(r#"[{"op":"remove","path":"/metadata/labels"}]"#),
            "application/json-patch+json",
        );
        assert_eq!(code, 400, "{what}: {out}");
        assert!(out.contains("JSON Patch is not supported"), "{out}");
        let (code, out) = api.call(
            "PATCH",
            &one("eu1"),
            Some(&json!({"metadata": {"name": "renamed"}})),
        );
        assert_eq!(code, 400, "{what}: {out}");
        assert!(out.contains("metadata.name"), "{out}");
        assert_eq!(api.status("GET", &one("renamed")), 404);
        let got = api.get(&one("eu1"));
        assert_eq!(
            without_created_by(got),
            want,
            "{what}: after refused patches"
        );

        // DELETE, then 404.
        for n in ["eu1", "us1", "ap1"] {
            api.delete(&one(n));
            let (code, out) = api.call("GET", &one(n), None);
            assert_eq!(code, 404, "{what} {n}: {out}");
        }
    }
}

#[test]
fn bodies_that_do_not_fit_are_refused_and_store_nothing() {
    let api = Api::start();
    let checks = &format!("{D}/checks");
    // An unknown field: 400 naming it, nothing stored.
    let body =
        json!({"metadata": {"name": "typo"}, "command": "true", "interval": 60, "intervall": 30});
    let (code, out) = api.call("POST", checks, Some(&body));
    assert_eq!(code, 400, "{out}");
    assert!(out.contains("intervall"), "{out}");
    assert_eq!(api.status("GET", &format!("{checks}/typo")), 404);
    // A wrapped body of another kind: 400 naming the type, nothing stored.
    let handler = json!({"type": "Handler", "api_version": "core/v2", "metadata": {"name": "h"}, "spec": {"type": "pipe", "command": "cat"}});
    let (code, out) = api.call("POST", checks, Some(&handler));
    assert_eq!(code, 400, "{out}");
    assert!(out.contains("Handler") && out.contains("type"), "{out}");
    assert_eq!(api.status("GET", &format!("{checks}/h")), 404);
    // A name in the body that differs from the URL's.
    let (code, out) = api.call(
        "PUT",
        &format!("{checks}/a"),
        Some(&json!({"metadata": {"name": "b"}, "command": "true", "interval": 60})),
    );
    assert_eq!(code, 400, "{out}");
    // A bad selector: 400 naming the parameter.
    let (code, out) = api.call(
        "GET",
        &format!("{checks}?labelSelector={}", q("region ==")),
        None,
    );
    assert_eq!(code, 400, "{out}");
    assert!(out.contains("labelSelector"), "{out}");
    let (code, out) = api.call(
        "GET",
        &format!("{checks}?fieldSelector={}", q("check.name in")),
        None,
    );
    assert_eq!(code, 400, "{out}");
    assert!(out.contains("fieldSelector"), "{out}");
}

#[test]
fn lists_span_namespaces_and_page_with_sensu_continue() {
    let api = Api::start();
    api.post("/api/core/v2/namespaces", &json!({"name": "ops"}));
    let check = |n: &str| json!({"metadata": {"name": n}, "command": "true", "interval": 60, "subscriptions": ["linux"]});
    for n in ["a", "b", "c"] {
        api.post(&format!("{D}/checks"), &check(n));
    }
    api.post("/api/core/v2/namespaces/ops/checks", &check("d"));
    let all = api.get("/api/core/v2/checks");
    let mut seen: Vec<String> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}/{}",
                c["metadata"]["namespace"].as_str().unwrap(),
                c["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    seen.sort();
    assert_eq!(seen, ["default/a", "default/b", "default/c", "ops/d"]);
    assert_eq!(api.names("/api/core/v2/namespaces/ops/checks"), ["d"]);
    // limit=1: one item and Sensu-Continue, until the last page, which has none.
    let mut pages = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..5 {
        let path = match &next {
            Some(c) => format!("{D}/checks?limit=1&continue={c}"),
            None => format!("{D}/checks?limit=1"),
        };
        let (code, head, body) = api.raw("GET", &path, None, "application/json");
        assert_eq!(code, 200, "{body}");
        let page: Vec<Value> = serde_json::from_str(&body).unwrap();
        pages.push(
            page.iter()
                .map(|c| c["metadata"]["name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>(),
        );
        next = head.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("sensu-continue:")
                .then(|| l["sensu-continue:".len()..].trim().to_string())
        });
        if next.is_none() {
            break;
        }
    }
    let flat: Vec<String> = pages.iter().flatten().cloned().collect();
    assert_eq!(flat, ["a", "b", "c"], "pages: {pages:?}");
    assert!(pages.iter().all(|p| p.len() <= 1), "{pages:?}");
    let (code, out) = api.call("GET", &format!("{D}/checks?continue=%25%25"), None);
    assert_eq!(code, 400, "{out}");
}

#[test]
fn a_silence_is_named_subscription_colon_check() {
    let api = Api::start();
    let coll = &format!("{D}/silenced");
    let body = json!({"subscription": "linux", "check": "check-cpu", "reason": "kernel upgrade", "expire_on_resolve": true, "expire": 3600});
    api.post(coll, &body);
    let got = api.get(&format!("{coll}/linux:check-cpu"));
    assert_eq!(got["metadata"]["name"], "linux:check-cpu", "{got}");
    assert_eq!(got["metadata"]["namespace"], "default", "{got}");
    for (k, v) in body.as_object().unwrap() {
        assert_eq!(&got[k], v, "{k}: {got}");
    }
    // Wrapped, through ctl; a name that disagrees is recomputed, as Sensu does.
    api.ctl_create(&[json!({"type": "Silenced", "api_version": "core/v2",
        "metadata": {"name": "windows:check-disk", "namespace": "default", "labels": {"team": "os"}},
        "spec": {"subscription": "windows", "check": "check-disk", "reason": "patching"}})]);
    let got = api.get(&format!("{coll}/windows:check-disk"));
    assert_eq!(got["reason"], "patching", "{got}");
    assert_eq!(got["metadata"]["labels"]["team"], "os", "{got}");
    let sel = format!(
        "{coll}?fieldSelector={}",
        q("silenced.subscription == linux")
    );
    assert_eq!(api.names(&sel), ["linux:check-cpu"]);
    assert_eq!(
        api.select(coll, "labelSelector", "team == os"),
        ["windows:check-disk"]
    );
    let patched = api.expect(
        "PATCH",
        &format!("{coll}/linux:check-cpu"),
        Some(&json!({"reason": "reboot"})),
        200,
    );
    assert_eq!(patched["reason"], "reboot", "{patched}");
    assert_eq!(
        api.get(&format!("{coll}/linux:check-cpu"))["reason"],
        "reboot"
    );
    api.delete(&format!("{coll}/linux:check-cpu"));
    assert_eq!(api.status("GET", &format!("{coll}/linux:check-cpu")), 404);
}

#[test]
fn namespaces_and_users_round_trip() {
    let api = Api::start();
    api.post("/api/core/v2/namespaces", &json!({"name": "ops"}));
    assert_eq!(
        api.get("/api/core/v2/namespaces/ops"),
        json!({"name": "ops"})
    );
    api.ctl_create(&[json!({"type": "Namespace", "api_version": "core/v2", "metadata": {"name": "qa"}, "spec": {"name": "qa"}})]);
    assert_eq!(api.get("/api/core/v2/namespaces/qa"), json!({"name": "qa"}));
    assert_eq!(
        api.names("/api/core/v2/namespaces"),
        ["default", "ops", "qa"]
    );
    let sel = format!(
        "/api/core/v2/namespaces?fieldSelector={}",
        q("namespace.name == qa")
    );
    assert_eq!(api.names(&sel), ["qa"]);
    api.delete("/api/core/v2/namespaces/qa");
    assert_eq!(api.status("GET", "/api/core/v2/namespaces/qa"), 404);

    let alice = json!({"username": "alice", "password": "alice password 1", "groups": ["ops"]});
    api.post("/api/core/v2/users", &alice);
    assert_eq!(api.call("POST", "/api/core/v2/users", Some(&alice)).0, 409);
    let got = api.get("/api/core/v2/users/alice");
    assert_eq!(
        got,
        json!({"username": "alice", "groups": ["ops"], "disabled": false})
    );
    api.ctl_create(&[json!({"type": "User", "api_version": "core/v2", "metadata": {"name": "bob"},
        "spec": {"username": "bob", "password": "bob password 1", "groups": ["dev"], "disabled": false}})]);
    let got = api.get("/api/core/v2/users/bob");
    assert_eq!(
        got,
        json!({"username": "bob", "groups": ["dev"], "disabled": false})
    );
    let (code, body) = api
        .b
        .curl(&["-u", "bob:bob password 1", &format!("{}/auth", api.b.url())]);
    assert_eq!(code, 200, "bob logs in with the password ctl sent: {body}");
    // DELETE disables (Sensu's semantics); the user is still there.
    api.delete("/api/core/v2/users/bob");
    let got = api.get("/api/core/v2/users/bob");
    assert_eq!(got["disabled"], true, "{got}");
}

/// Alice (ops) and Bob (dev).
fn two_users(api: &Api) {
    for (u, g) in [("alice", "ops"), ("bob", "dev")] {
        let body = json!({"username": u, "password": format!("{u} password 1"), "groups": [g]});
        api.post("/api/core/v2/users", &body);
    }
}

#[test]
fn users_take_a_merge_patch() {
    let api = Api::start();
    two_users(&api);
    let patch = json!({"groups": ["ops", "sre"]});
    let got = api.expect("PATCH", "/api/core/v2/users/alice", Some(&patch), 200);
    let want = json!({"username": "alice", "groups": ["ops", "sre"], "disabled": false});
    assert_eq!(got, want);
}

#[test]
fn user_lists_are_selected() {
    let api = Api::start();
    two_users(&api);
    let sel = |s: &str| format!("/api/core/v2/users?fieldSelector={}", q(s));
    assert_eq!(api.names(&sel("user.username == alice")), ["alice"]);
    assert_eq!(api.names(&sel("dev in user.groups")), ["bob"]);
    let (code, out) = api.call("GET", &sel("user.username =="), None);
    assert_eq!(code, 400, "{out}");
}

#[test]
fn a_silence_records_its_creator_begin_and_expiry() {
    let api = Api::start();
    let coll = &format!("{D}/silenced");
    let body = json!({"subscription": "linux", "check": "check-cpu", "expire": 3600});
    api.post(coll, &body);
    let got = api.get(&format!("{coll}/linux:check-cpu"));
    assert_eq!(got["creator"], ADMIN, "{got}");
    let begin = got["begin"]
        .as_i64()
        .unwrap_or_else(|| panic!("no begin: {got}"));
    assert!(begin > 1_700_000_000, "{got}");
    assert_eq!(got["expire_at"].as_i64(), Some(begin + 3600), "{got}");
}

#[test]
fn an_event_gets_an_id() {
    let api = Api::start();
    let ev = &format!("{D}/events/server1/server-health");
    api.post(ev, &event_body("server1", "server-health", 2, 1));
    let got = api.get(ev);
    let id = got["id"].as_str().unwrap_or_else(|| panic!("no id: {got}"));
    assert_eq!(id.len(), 36, "a UUID: {got}");
}

fn event_body(entity: &str, check: &str, status: u32, timestamp: i64) -> Value {
    json!({"entity": {"entity_class": "proxy", "metadata": {"name": entity, "namespace": "default"}},
           "check": {"output": format!("status {status}"), "status": status, "interval": 60, "handlers": ["slack"],
                     "metadata": {"name": check}},
           "timestamp": timestamp})
}

#[test]
fn events_post_by_path_read_back_repost_select_and_delete() {
    let api = Api::start();
    let ev = &format!("{D}/events");
    api.post(
        &format!("{ev}/server1/server-health"),
        &event_body("server1", "server-health", 2, 1_765_000_000),
    );
    let got = api.get(&format!("{ev}/server1/server-health"));
    assert_eq!(got["check"]["status"], 2, "{got}");
    assert_eq!(got["check"]["output"], "status 2", "{got}");
    assert_eq!(got["entity"]["metadata"]["name"], "server1", "{got}");
    assert_eq!(got["timestamp"], 1_765_000_000, "{got}");
    // What GET returned (top-level metadata, timestamp, history…) goes back as it is.
    let mut again = got.clone();
    again["check"]["output"] = json!("edited");
    again["timestamp"] = json!(1_765_000_100);
    let (code, out) = api.call("POST", &format!("{ev}/server1/server-health"), Some(&again));
    assert_eq!(code, 201, "{out}");
    let got = api.get(&format!("{ev}/server1/server-health"));
    assert_eq!(got["check"]["output"], "edited", "{got}");
    assert_eq!(got["timestamp"], 1_765_000_100, "{got}");
    // The path and the body must agree.
    let (code, out) = api.call(
        "POST",
        &format!("{ev}/server2/server-health"),
        Some(&event_body("server1", "server-health", 0, 1)),
    );
    assert_eq!(code, 400, "{out}");
    // POST to the collection.
    let body = event_body("server2", "disk", 0, 1_765_000_200);
    api.post(ev, &body);
    let got = api.get(&format!("{ev}/server2/disk"));
    assert_eq!(got["check"]["status"], 0, "{got}");
    // Selectors and the list across namespaces.
    assert_eq!(
        api.select(ev, "fieldSelector", "event.check.status == 2"),
        ["server1/server-health"]
    );
    assert_eq!(
        api.select(ev, "fieldSelector", "event.entity.name != server1"),
        ["server2/disk"]
    );
    assert_eq!(
        api.names("/api/core/v2/events"),
        ["server1/server-health", "server2/disk"]
    );
    api.delete(&format!("{ev}/server1/server-health"));
    assert_eq!(
        api.status("GET", &format!("{ev}/server1/server-health")),
        404
    );
}

/// `ward ctl dump all --format yaml --file F`: the file's text.
fn dump(api: &Api, file: &str) -> String {
    let f = api.b.dir.join(file);
    api.b
        .ctl()
        .args(["dump", "all", "--format", "yaml", "--file"])
        .arg(&f)
        .run()
        .ok();
    std::fs::read_to_string(&f).unwrap()
}

/// A dump without `created_by` lines: a restore PUTs every resource, the seeded roles
/// too, and the server sets `created_by` on every write (as Sensu does).
fn without_creators(dump: &str) -> String {
    dump.lines()
        .filter(|l| !l.trim_start().starts_with("created_by:"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Creates one resource of every kind but events (a user, a namespace, every case, a
/// silence, a proxy entity); returns the admin's view of the dump.
fn create_everything(api: &Api) {
    let alice = json!({"username": "alice", "password": "alice password 1", "groups": ["ops"]});
    api.post("/api/core/v2/users", &alice);
    api.post("/api/core/v2/namespaces", &json!({"name": "ops"}));
    for case in cases() {
        api.post(&case.collection(), &case.flat("keep", "eu"));
    }
    let silence = json!({"subscription": "linux", "check": "check-cpu", "reason": "r"});
    api.post(&format!("{D}/silenced"), &silence);
}

/// Deletes what `create_everything` made (the user is disabled, as DELETE does).
fn delete_everything(api: &Api) {
    for case in cases() {
        api.delete(&format!("{}/keep", case.collection()));
    }
    let ns = "/api/core/v2/namespaces";
    api.delete(&format!("{ns}/default/silenced/linux:check-cpu"));
    api.delete(&format!("{ns}/ops"));
    api.delete("/api/core/v2/users/alice");
}

#[test]
fn a_dump_restores_everything_identically_after_a_delete() {
    let api = Api::start();
    create_everything(&api);
    let before = dump(&api, "dump.yml");
    for kind in [
        "CheckConfig",
        "Silenced",
        "Namespace",
        "ClusterRole",
        "User",
        "Pipeline",
    ] {
        assert!(
            before.contains(&format!("type: {kind}")),
            "{kind} missing:\n{before}"
        );
    }
    delete_everything(&api);
    let emptied = dump(&api, "emptied.yml");
    assert!(!emptied.contains("name: keep"), "{emptied}");
    let f = api.b.dir.join("dump.yml");
    api.b.ctl().arg("create").arg("-f").arg(&f).run().ok();
    let after = dump(&api, "restored.yml");
    // Identical, in the same order, but for created_by.
    assert_eq!(without_creators(&after), without_creators(&before));
    // Alice is back, enabled, with her password.
    let (code, body) = api.b.curl(&[
        "-u",
        "alice:alice password 1",
        &format!("{}/auth", api.b.url()),
    ]);
    assert_eq!(code, 200, "{body}");
}

#[test]
fn a_dump_with_events_restores_them() {
    let api = Api::start();
    let ev = &format!("{D}/events/server1/server-health");
    api.post(
        ev,
        &event_body("server1", "server-health", 2, 1_765_000_000),
    );
    let before = api.get(ev);
    let f = api.b.dir.join("dump.yml");
    dump(&api, "dump.yml");
    api.delete(ev);
    let out = api.b.ctl().arg("create").arg("-f").arg(&f).run();
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(api.get(ev), before);
}

#[test]
fn ctl_creates_an_event_from_its_wrapped_form() {
    let api = Api::start();
    let mut spec = event_body("server2", "disk", 0, 1_765_000_200);
    spec["entity"]["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");
    let doc = json!({"type": "Event", "api_version": "core/v2",
        "metadata": {"name": "server2/disk", "namespace": "default"}, "spec": spec});
    api.ctl_create(&[doc]);
    let got = api.get(&format!("{D}/events/server2/disk"));
    assert_eq!(got["check"]["status"], 0, "{got}");
    assert_eq!(got["timestamp"], 1_765_000_200, "{got}");
}

#[test]
fn ctl_creates_and_deletes_an_asset_named_with_a_slash() {
    let api = Api::start();
    let doc = json!({"type": "Asset", "api_version": "core/v2",
        "metadata": {"name": "sensu/check-cpu-usage", "namespace": "default"},
        "spec": {"url": "https://assets.bonsai.sensu.io/a1/check-cpu-usage.tar.gz", "sha512": "4f926bf4328fbad2b9cac873d117f771914f4b837c9c85584c38ccf55a3ef3c2e8d154812246e5dda4a87450576b2c58ad9ab40c9e2edc31b288d066b195b21b"}});
    let path = &format!("{D}/assets/sensu%2Fcheck-cpu-usage");
    let f = api.b.dir.join("asset.yml");
    let d: Document = serde_json::from_value(doc).unwrap();
    std::fs::write(&f, ward_types::to_yaml(&d)).unwrap();
    let out = api.b.ctl().arg("create").arg("-f").arg(&f).run();
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(api.get(path)["metadata"]["name"], "sensu/check-cpu-usage");
    let out = api.b.ctl().arg("delete").arg("-f").arg(&f).run();
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(api.status("GET", path), 404);
}

#[test]
fn dump_takes_dash_f_as_sensuctl_does() {
    let api = Api::start();
    let f = api.b.dir.join("d.yml");
    let out = api.b.ctl().args(["dump", "all", "-f"]).arg(&f).run();
    assert!(out.success(), "{}", out.stderr);
    assert!(std::fs::read_to_string(&f)
        .unwrap()
        .contains("type: ClusterRole"));
}
