//! `ward ctl`'s sensuctl verbs end to end: the real binary against a real backend.

use serde_json::{json, Value};
use ward_testkit::backend::{Backend, ADMIN};
use ward_testkit::require_tool;

fn ctl_json(b: &Backend, args: &[&str]) -> Value {
    let out = b.ctl().args(args.to_vec()).run().ok().stdout;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

fn ctl_ok(b: &Backend, args: &[&str]) -> String {
    b.ctl().args(args.to_vec()).run().ok().stdout
}

fn ctl_err(b: &Backend, args: &[&str]) -> String {
    b.ctl().args(args.to_vec()).run().fails_with(1).stderr
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| {
            x.pointer("/metadata/name")
                .or_else(|| x.get("name"))
                .and_then(Value::as_str)
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn kinds_are_created_listed_updated_and_deleted_from_flags() {
    let b = Backend::start(true);
    b.ctl_login();
    let out = ctl_ok(
        &b,
        &[
            "check",
            "create",
            "cpu",
            "--command",
            "check-cpu -w 80",
            "--interval",
            "60",
            "--subscriptions",
            "linux, web",
            "--handlers",
            "slack",
        ],
    );
    assert_eq!(out, "created CheckConfig cpu\n");
    let c = ctl_json(&b, &["check", "info", "cpu", "--format", "json"]);
    assert_eq!(c["metadata"]["name"], "cpu");
    assert_eq!(c["metadata"]["namespace"], "default");
    assert_eq!(c["command"], "check-cpu -w 80");
    assert_eq!(c["interval"], 60);
    assert_eq!(c["subscriptions"], json!(["linux", "web"]));
    assert_eq!(c["handlers"], json!(["slack"]));
    assert_eq!(c["publish"], true);
    // A second create is refused; update changes only what is given.
    let e = ctl_err(
        &b,
        &[
            "check",
            "create",
            "cpu",
            "--command",
            "x",
            "--interval",
            "5",
        ],
    );
    assert!(e.contains("409"), "{e}");
    assert_eq!(
        ctl_ok(
            &b,
            &[
                "check",
                "update",
                "cpu",
                "--interval",
                "30",
                "--publish=false"
            ]
        ),
        "updated CheckConfig cpu\n"
    );
    let c = ctl_json(&b, &["check", "info", "cpu", "--format", "json"]);
    assert_eq!(
        (c["interval"].clone(), c["publish"].clone()),
        (json!(30), json!(false))
    );
    assert_eq!(c["command"], "check-cpu -w 80");
    assert!(ctl_err(&b, &["check", "update", "cpu"]).contains("nothing to update"));
    // Tabular: sensuctl's columns.
    let table = ctl_ok(&b, &["check", "list"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap()
        .split("  ")
        .filter(|c| !c.is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(
        &header[..5],
        ["Name", "Namespace", "Command", "Interval", "Cron"],
        "{table}"
    );
    assert!(table.lines().nth(2).unwrap().starts_with("cpu "), "{table}");
    // Other kinds from flags.
    ctl_ok(
        &b,
        &[
            "handler",
            "create",
            "slack",
            "--command",
            "notify",
            "--filters",
            "is_incident",
        ],
    );
    ctl_ok(
        &b,
        &[
            "filter",
            "create",
            "busy",
            "--action",
            "deny",
            "--expressions",
            "event.check.occurrences > 3",
        ],
    );
    ctl_ok(&b, &["mutator", "create", "m", "--command", "jq ."]);
    ctl_ok(
        &b,
        &[
            "hook",
            "create",
            "ps",
            "--command",
            "ps aux",
            "--timeout",
            "10",
        ],
    );
    ctl_ok(
        &b,
        &[
            "asset",
            "create",
            "a",
            "--url",
            "https://example.com/a.tar.gz",
            "--sha512",
            &"ab".repeat(64),
        ],
    );
    ctl_ok(&b, &["namespace", "create", "ops"]);
    ctl_ok(
        &b,
        &[
            "role",
            "create",
            "reader",
            "--namespace",
            "ops",
            "--verb",
            "get,list",
            "--resource",
            "checks,events",
        ],
    );
    ctl_ok(
        &b,
        &[
            "role-binding",
            "create",
            "readers",
            "--namespace",
            "ops",
            "--role",
            "reader",
            "--user",
            "alice",
            "--group",
            "devs",
        ],
    );
    ctl_ok(
        &b,
        &[
            "cluster-role",
            "create",
            "all-reader",
            "--verb",
            "get",
            "--resource",
            "*",
        ],
    );
    ctl_ok(
        &b,
        &[
            "cluster-role-binding",
            "create",
            "all-readers",
            "--cluster-role",
            "all-reader",
            "--group",
            "auditors",
        ],
    );
    let h = ctl_json(&b, &["handler", "info", "slack", "--format", "json"]);
    assert_eq!(
        (h["type"].clone(), h["filters"].clone()),
        (json!("pipe"), json!(["is_incident"]))
    );
    let f = ctl_json(&b, &["filter", "info", "busy", "--format", "json"]);
    assert_eq!(f["expressions"], json!(["event.check.occurrences > 3"]));
    let r = ctl_json(
        &b,
        &[
            "role",
            "info",
            "reader",
            "--namespace",
            "ops",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        r["rules"],
        json!([{"verbs": ["get", "list"], "resources": ["checks", "events"]}])
    );
    let rb = ctl_json(
        &b,
        &[
            "role-binding",
            "info",
            "readers",
            "--namespace",
            "ops",
            "--format",
            "json",
        ],
    );
    assert_eq!(rb["role_ref"], json!({"type": "Role", "name": "reader"}));
    assert_eq!(
        rb["subjects"],
        json!([{"type": "User", "name": "alice"}, {"type": "Group", "name": "devs"}])
    );
    let crb = ctl_json(
        &b,
        &[
            "cluster-role-binding",
            "info",
            "all-readers",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        crb["role_ref"],
        json!({"type": "ClusterRole", "name": "all-reader"})
    );
    assert_eq!(
        names(&ctl_json(&b, &["namespace", "list", "--format", "json"])),
        ["default", "ops"]
    );
    // A silence is named SUBSCRIPTION:CHECK.
    let out = ctl_ok(
        &b,
        &[
            "silenced",
            "create",
            "--subscription",
            "linux",
            "--check",
            "cpu",
            "--expire",
            "3600",
            "--reason",
            "patching",
            "--expire-on-resolve",
        ],
    );
    assert_eq!(out, "created Silenced linux:cpu\n");
    let s = ctl_json(&b, &["silenced", "info", "linux:cpu", "--format", "json"]);
    assert_eq!(
        (
            s["reason"].clone(),
            s["expire_on_resolve"].clone(),
            s["expire"].clone()
        ),
        (json!("patching"), json!(true), json!(3600))
    );
    ctl_ok(
        &b,
        &[
            "silenced",
            "update",
            "linux:cpu",
            "--reason",
            "still patching",
        ],
    );
    assert_eq!(
        ctl_json(&b, &["silenced", "info", "linux:cpu", "--format", "json"])["reason"],
        "still patching"
    );
    assert_eq!(
        names(&ctl_json(&b, &["silenced", "list", "--format", "json"])),
        ["linux:cpu"]
    );
    // --all-namespaces lists both namespaces' roles; a namespace lists its own.
    ctl_ok(
        &b,
        &[
            "role",
            "create",
            "r2",
            "--verb",
            "get",
            "--resource",
            "checks",
        ],
    );
    assert_eq!(
        names(&ctl_json(&b, &["role", "list", "--format", "json"])),
        ["r2"]
    );
    let mut all = names(&ctl_json(
        &b,
        &["role", "list", "--all-namespaces", "--format", "json"],
    ));
    all.sort();
    assert_eq!(all, ["r2", "reader"]);
    // Deletes ask first: no "y", nothing deleted.
    let out = b
        .ctl()
        .args(["check", "delete", "cpu"])
        .stdin("n\n")
        .run()
        .fails_with(1);
    assert!(out.stderr.contains("not confirmed"), "{}", out.stderr);
    assert_eq!(
        names(&ctl_json(&b, &["check", "list", "--format", "json"])),
        ["cpu"]
    );
    let out = b
        .ctl()
        .args(["check", "delete", "cpu"])
        .stdin("y\n")
        .run()
        .ok();
    assert_eq!(out.stdout, "deleted CheckConfig cpu\n");
    assert_eq!(
        ctl_json(&b, &["check", "list", "--format", "json"]),
        json!([])
    );
    ctl_ok(&b, &["silenced", "delete", "linux:cpu", "--skip-confirm"]);
    assert_eq!(
        ctl_json(&b, &["silenced", "list", "--format", "json"]),
        json!([])
    );
}

#[test]
fn selectors_formats_and_bad_input() {
    let b = Backend::start(true);
    b.ctl_login();
    let file = b.dir.join("checks.yml");
    let doc = |n: &str, region: &str| {
        format!("---\ntype: CheckConfig\napi_version: core/v2\nmetadata:\n  name: {n}\n  labels:\n    region: {region}\nspec:\n  command: \"true\"\n  interval: 60\n  subscriptions: [linux]\n  publish: true\n")
    };
    std::fs::write(&file, doc("a", "eu") + &doc("b", "us")).unwrap();
    b.ctl().args(["create", "-f"]).arg(&file).run().ok();
    let eu = ctl_json(
        &b,
        &[
            "check",
            "list",
            "--format",
            "json",
            "--label-selector",
            "region == eu",
        ],
    );
    assert_eq!(names(&eu), ["a"]);
    let by_name = ctl_json(
        &b,
        &[
            "check",
            "list",
            "--format",
            "json",
            "--field-selector",
            "check.name in [b]",
        ],
    );
    assert_eq!(names(&by_name), ["b"]);
    let e = ctl_err(&b, &["check", "list", "--field-selector", "check.name =="]);
    assert!(e.contains("(400)"), "{e}");
    // wrapped-json: one document a line; yaml: wrapped documents.
    let w = ctl_ok(&b, &["check", "list", "--format", "wrapped-json"]);
    let lines: Vec<Value> = w
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["type"], "CheckConfig");
    assert_eq!(lines[0]["spec"]["command"], "true");
    let y = ctl_ok(&b, &["check", "info", "b", "--format", "yaml"]);
    let r = ward_types::parse_stream("y", &y).unwrap();
    assert_eq!(r[0].metadata.name, "b");
    // `table` is still accepted; an unknown kind or format is refused.
    assert!(ctl_ok(&b, &["check", "list", "--format", "table"]).contains("Name"));
    let e = ctl_err(&b, &["dump", "gadgets"]);
    assert!(e.contains("unknown resource type \"gadgets\""), "{e}");
    let e = b
        .ctl()
        .args(["check", "list", "--format", "xml"])
        .run()
        .fails_with(2)
        .stderr;
    assert!(e.contains("xml"), "{e}");
    let e = ctl_err(&b, &["check", "info", "nope"]);
    assert!(e.contains("(404)"), "{e}");
}

#[test]
fn events_execute_and_api_keys() {
    require_tool("curl");
    let b = Backend::start(true);
    b.ctl_login();
    let (code, body) = b.curl(&[
        "-u",
        &format!("{ADMIN}:{}", ward_testkit::backend::ADMIN_PASSWORD),
        &format!("{}/auth", b.url()),
    ]);
    assert_eq!(code, 200);
    let token: Value = serde_json::from_str(&body).unwrap();
    let auth = format!(
        "Authorization: Bearer {}",
        token["access_token"].as_str().unwrap()
    );
    let ev = r#"{"entity":{"entity_class":"proxy","metadata":{"name":"web-1"}},"check":{"metadata":{"name":"disk"},"status":2,"output":"full","interval":60}}"#;
    let events = format!("{}/api/core/v2/namespaces/default/events", b.url());
    let (code, body) = b.curl(&["-X", "POST", "-H", &auth, "-d", ev, &events]);
    assert_eq!(code, 201, "{body}");
    for key in [&["web-1", "disk"][..], &["web-1/disk"][..]] {
        let mut args = vec!["event", "info"];
        args.extend_from_slice(key);
        args.extend(["--format", "json"]);
        let e = ctl_json(&b, &args);
        assert_eq!(e["check"]["status"], 2);
        assert_eq!(e["entity"]["metadata"]["name"], "web-1");
    }
    let info = ctl_ok(
        &b,
        &["event", "info", "web-1", "disk", "--format", "tabular"],
    );
    assert!(
        info.starts_with("=== web-1/disk\n") && info.contains("Status:"),
        "{info}"
    );
    assert!(ctl_err(&b, &["event", "info", "web-1"]).contains("ENTITY CHECK"));
    assert!(ctl_ok(&b, &["event", "resolve", "web-1", "disk"]).contains("state passing"));
    assert_eq!(
        ctl_json(&b, &["event", "info", "web-1/disk", "--format", "json"])["check"]["status"],
        0
    );
    ctl_ok(&b, &["event", "delete", "web-1", "disk", "--skip-confirm"]);
    assert_eq!(
        ctl_json(&b, &["event", "list", "--format", "json"]),
        json!([])
    );
    // check execute: accepted (202) for a check that exists, the API's 404 otherwise.
    ctl_ok(
        &b,
        &[
            "check",
            "create",
            "cpu",
            "--command",
            "true",
            "--interval",
            "60",
            "--subscriptions",
            "linux",
        ],
    );
    assert_eq!(
        ctl_ok(
            &b,
            &[
                "check",
                "execute",
                "cpu",
                "--subscriptions",
                "web",
                "--reason",
                "now"
            ]
        ),
        "issued a request to run check cpu\n"
    );
    assert!(ctl_err(&b, &["check", "execute", "nope"]).contains("404"));
    // API keys: the key once, then never again.
    let out = ctl_ok(&b, &["api-key", "grant", ADMIN]);
    assert!(out.contains("not shown again"), "{out}");
    let name = out
        .lines()
        .find_map(|l| l.strip_prefix("Name: "))
        .unwrap()
        .to_string();
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("Key:  "))
        .unwrap()
        .to_string();
    assert!(!key.is_empty());
    let listed = ctl_ok(&b, &["api-key", "list", "--format", "json"]);
    assert!(!listed.contains(&key), "{listed}");
    assert_eq!(
        names(&serde_json::from_str(&listed).unwrap()),
        vec![name.as_str()]
    );
    let (code, _) = b.curl(&[
        "-H",
        &format!("Authorization: Key {key}"),
        &format!("{}/api/core/v2/namespaces/default/checks", b.url()),
    ]);
    assert_eq!(code, 200);
    ctl_ok(&b, &["api-key", "revoke", &name, "--skip-confirm"]);
    assert_eq!(
        ctl_json(&b, &["api-key", "list", "--format", "json"]),
        json!([])
    );
}

#[test]
fn config_edit_version_and_dump() {
    let b = Backend::start(true);
    b.ctl_login();
    let v = ctl_json(&b, &["config", "view", "--format", "json"]);
    assert_eq!(
        (
            v["username"].clone(),
            v["namespace"].clone(),
            v["format"].clone()
        ),
        (json!(ADMIN), json!("default"), json!("tabular"))
    );
    let raw = std::fs::read_to_string(b.dir.join("ctl.json")).unwrap();
    let saved: Value = serde_json::from_str(&raw).unwrap();
    let view = ctl_ok(&b, &["config", "view"]);
    assert!(
        !view.contains(saved["access_token"].as_str().unwrap()) && view.contains("API URL:"),
        "{view}"
    );
    ctl_ok(&b, &["config", "set-format", "json"]);
    ctl_ok(&b, &["namespace", "create", "ops"]);
    ctl_ok(&b, &["config", "set-namespace", "ops"]);
    ctl_ok(
        &b,
        &[
            "check",
            "create",
            "cpu",
            "--command",
            "true",
            "--interval",
            "60",
            "--subscriptions",
            "linux",
        ],
    );
    // The saved format is the default; the saved namespace is where it went.
    let listed: Value = serde_json::from_str(&ctl_ok(&b, &["check", "list"])).unwrap();
    assert_eq!(listed[0]["metadata"]["namespace"], "ops");
    assert!(ctl_err(&b, &["config", "set-format", "xml"]).contains("unknown format"));
    // edit: the editor's change is sent.
    let editor = b.dir.join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/interval: 60/interval: 30/' \"$1\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = b
        .ctl()
        .env("EDITOR", &editor)
        .env("VISUAL", "")
        .args(["edit", "check", "cpu"])
        .run()
        .ok();
    assert_eq!(out.stdout, "updated CheckConfig cpu\n");
    assert_eq!(ctl_json(&b, &["check", "info", "cpu"])["interval"], 30);
    // An edit that no longer parses is refused, nothing sent, the file kept.
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/interval: 30/interval: [oops/' \"$1\"\n",
    )
    .unwrap();
    let e = b
        .ctl()
        .env("EDITOR", &editor)
        .env("VISUAL", "")
        .args(["edit", "check", "cpu"])
        .run()
        .fails_with(1)
        .stderr;
    assert!(e.contains("nothing was sent"), "{e}");
    let kept = e.rsplit("your text is in ").next().unwrap().trim();
    assert!(
        std::fs::read_to_string(kept).unwrap().contains("[oops"),
        "{e}"
    );
    std::fs::remove_file(kept).unwrap();
    assert_eq!(ctl_json(&b, &["check", "info", "cpu"])["interval"], 30);
    // An unchanged edit sends nothing.
    let out = b
        .ctl()
        .env("EDITOR", "true")
        .env("VISUAL", "")
        .args(["edit", "check", "cpu"])
        .run()
        .ok();
    assert_eq!(out.stdout, "CheckConfig cpu unchanged\n");
    // version: ward's and the backend's.
    let out = ctl_ok(&b, &["version"]);
    assert!(
        out.contains(env!("CARGO_PKG_VERSION")) && out.contains("backend"),
        "{out}"
    );
    // dump by short names, with --omit; dump all restores into another backend.
    ctl_ok(&b, &["handler", "create", "slack", "--command", "notify"]);
    let d = ward_types::parse_stream("d", &ctl_ok(&b, &["dump", "checks,handler"])).unwrap();
    assert_eq!(
        d.iter()
            .map(|r| r.metadata.name.as_str())
            .collect::<Vec<_>>(),
        ["cpu", "slack"]
    );
    let d = ward_types::parse_stream(
        "d",
        &ctl_ok(
            &b,
            &[
                "dump",
                "all",
                "--omit",
                "handlers,users,namespaces",
                "--all-namespaces",
            ],
        ),
    )
    .unwrap();
    assert!(d.iter().all(|r| !matches!(
        r.kind,
        ward_types::Kind::Handler | ward_types::Kind::User | ward_types::Kind::Namespace
    )));
    assert!(d.iter().any(|r| r.metadata.name == "cpu"));
    let file = b.dir.join("dump.yml");
    b.ctl()
        .args(["dump", "all", "--all-namespaces", "--omit", "users", "-f"])
        .arg(&file)
        .run()
        .ok();
    let other = Backend::start(true);
    other.ctl_login();
    other.ctl().args(["create", "-f"]).arg(&file).run().ok();
    let c = ctl_json(
        &other,
        &[
            "check",
            "info",
            "cpu",
            "--namespace",
            "ops",
            "--format",
            "json",
        ],
    );
    assert_eq!(c["interval"], 30);
}

#[test]
fn without_a_ca_file_ctl_trusts_the_system_store() {
    let b = Backend::start(true);
    let configure = |env: Option<&std::path::Path>| {
        let c = b.ctl_configure();
        // The system store as rustls-native-certs reads it: SSL_CERT_FILE first.
        match env {
            Some(ca) => c.env("SSL_CERT_FILE", ca),
            None => c.env("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"),
        }
        .run()
    };
    // The test CA is not in the system's store: refused, saying where it looked and the fix.
    let out = configure(None);
    assert!(!out.success(), "{}", out.stdout);
    assert!(
        out.stderr.contains("the system's trusted roots")
            && out.stderr.contains("--trusted-ca-file"),
        "{}",
        out.stderr
    );
    // Once the store has it, no --trusted-ca-file is needed, as with sensuctl.
    let ca = b.ca().unwrap();
    configure(Some(&ca)).ok();
    let out = b
        .ctl()
        .env("SSL_CERT_FILE", &ca)
        .args(["namespace", "list", "--format", "json"])
        .run()
        .ok();
    assert!(out.stdout.contains("default"), "{}", out.stdout);
}
