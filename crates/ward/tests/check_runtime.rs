//! What a check runs with, through real agents and a real backend: its `env_vars`, and its
//! `runtime_assets` fetched over HTTPS (openssl s_server), checked against their SHA-512
//! and put on PATH; a tampered or undefined asset fails the check with status 3 and the
//! reason, never a silent skip. And the agent socket (3030): Sensu 1.x results over TCP and
//! UDP become events, bad ones are refused and counted.

use serde_json::Value;
use ward_testkit::agent::{password_backend, wait_for, Agent, AGENT_PASSWORD};
use ward_testkit::backend::Backend;
use ward_testkit::fixtures::{script, sha512_hex, tar_gz, HttpsFiles, Leaf};

fn event(b: &Backend, entity: &str, check: &str) -> Option<Value> {
    b.event(entity, check)
}

fn create(b: &Backend, yaml: &str) {
    b.create(yaml);
}

/// The check's event once it has run (its output is not empty).
fn ran(b: &Backend, check: &str) -> Value {
    wait_for(30, &format!("check {check}'s event"), || {
        event(b, "runner-1", check).filter(|e| e["check"]["executed"].as_i64() > Some(0))
    })
}

#[test]
fn env_vars_and_runtime_assets_reach_the_command_and_bad_assets_say_why() {
    let b = password_backend(&[]);
    b.ctl_login();
    // The asset server uses the backend's certificate: the agent trusts its CA.
    let tls = b.tls.clone().unwrap();
    let leaf = Leaf {
        cert: tls.join("localhost.pem"),
        key: tls.join("localhost-key.pem"),
    };
    let (src, www) = (b.dir.join("asset-src"), b.dir.join("www"));
    std::fs::create_dir_all(&www).unwrap();
    script(
        &src.join("bin/greet"),
        "echo \"hello $WHO from $(basename \"$GREETER_PATH\")\"",
    );
    let good = tar_gz(&src, &["bin"], &www.join("greeter.tar.gz"));
    std::fs::write(www.join("evil.tar.gz"), [&good[..], b"x"].concat()).unwrap();
    let files = HttpsFiles::start(&www, &leaf);
    let sha = sha512_hex(&good);
    let other_sha = sha512_hex(b"what was published");
    create(
        &b,
        &format!(
            "type: Asset\napi_version: core/v2\nmetadata: {{name: greeter}}\nspec:\n  builds:\n  - url: {}\n    sha512: {other_sha}\n    filters: [\"entity.system.os == 'windows'\"]\n  - url: {}\n    sha512: {sha}\n    filters: [\"entity.system.os == 'linux'\"]\n---\ntype: Asset\napi_version: core/v2\nmetadata: {{name: evil}}\nspec:\n  url: {}\n  sha512: {other_sha}\n",
            files.url("nothing.tar.gz"),
            files.url("greeter.tar.gz"),
            files.url("evil.tar.gz"),
        ),
    );
    let check = |name: &str, command: &str, extra: &str| {
        format!("---\ntype: CheckConfig\napi_version: core/v2\nmetadata: {{name: {name}}}\nspec:\n  command: '{command}'\n  interval: 2\n  publish: true\n  subscriptions: [runtime]\n{extra}")
    };
    create(
        &b,
        &[
            check(
                "env",
                "echo X=$X PATH=$PATH",
                "  env_vars: [\"X=1\", \"PATH=/opt/first\"]\n",
            ),
            check(
                "greet",
                "greet",
                "  env_vars: [\"WHO=world\"]\n  runtime_assets: [greeter]\n",
            ),
            check("tampered", "true", "  runtime_assets: [evil]\n"),
            check("undefined", "true", "  runtime_assets: [nowhere]\n"),
        ]
        .concat(),
    );
    let yaml = format!(
        "{}subscriptions: [runtime]\n",
        Agent::password_yaml(&b, AGENT_PASSWORD)
    );
    let a = Agent::start("runner-1", &yaml);

    // env_vars reach the command; a PATH from env_vars goes before the agent's.
    let env = ran(&b, "env");
    let out = env["check"]["output"].as_str().unwrap();
    assert!(out.starts_with("X=1 PATH=/opt/first:/"), "{env}");
    assert_eq!(env["check"]["status"], 0);

    // The linux build, fetched, checked, unpacked under the agent's cache and on PATH.
    let greet = ran(&b, "greet");
    assert_eq!(greet["check"]["status"], 0, "{greet}\n{}", a.log());
    assert_eq!(
        greet["check"]["output"].as_str().unwrap().trim(),
        format!("hello world from {sha}")
    );

    // A download whose hash is not the asset's: status 3 and why; nothing unpacked.
    let bad = ran(&b, "tampered");
    assert_eq!(bad["check"]["status"], 3, "{bad}");
    let why = bad["check"]["output"].as_str().unwrap();
    assert!(
        why.contains("asset \"evil\"") && why.contains("its SHA-512 is"),
        "{why}"
    );
    let none = ran(&b, "undefined");
    assert_eq!(none["check"]["status"], 3, "{none}");
    assert!(
        none["check"]["output"]
            .as_str()
            .unwrap()
            .contains("asset \"nowhere\": no such asset in namespace \"default\""),
        "{none}"
    );
}

#[test]
fn results_written_to_the_agent_socket_become_events_and_bad_ones_are_refused() {
    let b = password_backend(&[]);
    b.ctl_login();
    let a = Agent::start("runner-1", &Agent::password_yaml(&b, AGENT_PASSWORD));
    let tcp = |text: &str| -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", a.socket_port)).unwrap();
        s.write_all(text.as_bytes()).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    };
    // The example: `echo '{"name":"x","output":"y","status":1}' | nc 127.0.0.1 3030`.
    assert_eq!(
        tcp("{\"name\":\"x\",\"output\":\"y\",\"status\":1}\n"),
        "ok"
    );
    let ev = wait_for(30, "the socket's event", || event(&b, "runner-1", "x"));
    assert_eq!(
        (
            ev["check"]["status"].as_u64(),
            ev["check"]["output"].as_str()
        ),
        (Some(1), Some("y")),
        "{ev}"
    );
    assert_eq!(tcp(" ping "), "pong");
    assert_eq!(tcp("{\"name\": \"x\"}"), "invalid");
    assert_eq!(tcp("{not json"), "invalid");
    // A `source` is a proxy entity (Sensu's): the event is filed under it, created as a
    // proxy; another agent's entity is refused by the backend.
    assert_eq!(
        tcp("{\"name\":\"p\",\"output\":\"o\",\"source\":\"router-1\"}"),
        "ok"
    );
    let ev = wait_for(30, "the proxy's event", || event(&b, "router-1", "p"));
    assert_eq!(ev["entity"]["entity_class"], "proxy", "{ev}");
    assert_eq!(ev["check"]["proxy_entity_name"], "router-1", "{ev}");
    // UDP: a malformed datagram does not stop the socket (it did Sensu's, in 6.12).
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = ("127.0.0.1", a.socket_port);
    udp.send_to(b"garbage", to).unwrap();
    udp.send_to(
        b"{\"name\":\"via-udp\",\"output\":\"fine\",\"status\":2,\"handlers\":[\"h\"]}",
        to,
    )
    .unwrap();
    let ev = wait_for(30, "the datagram's event", || {
        event(&b, "runner-1", "via-udp")
    });
    assert_eq!(ev["check"]["status"], 2, "{ev}");
    assert_eq!(ev["check"]["handlers"], serde_json::json!(["h"]));
    let log = a.log();
    assert!(log.contains("output is required"), "{log}");
    let (_, metrics) = {
        let out = ward_testkit::Command::new("curl")
            .args(["-s", &format!("http://127.0.0.1:{}/metrics", a.api_port)])
            .run();
        (0, out.stdout)
    };
    assert!(
        metrics.contains("ward_agent_socket_invalid_total 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ward_agent_socket_results_total 3"),
        "{metrics}"
    );
}

#[test]
fn a_failing_check_runs_its_hooks_and_their_output_is_in_the_event() {
    let b = password_backend(&[]);
    b.ctl_login();
    // Sensu's documented shapes: HookConfigs and a check naming them per status.
    create(
        &b,
        "type: HookConfig\napi_version: core/v2\nmetadata: {name: process-tree}\nspec:\n  command: echo \"looked at the processes\"\n  timeout: 10\n  stdin: false\n---\ntype: HookConfig\napi_version: core/v2\nmetadata: {name: reader}\nspec:\n  command: grep -o '\"name\":\"failing\"' | head -1\n  timeout: 10\n  stdin: true\n---\ntype: HookConfig\napi_version: core/v2\nmetadata: {name: on-ok}\nspec:\n  command: echo never\n  timeout: 10\n---\ntype: CheckConfig\napi_version: core/v2\nmetadata: {name: failing}\nspec:\n  command: echo down; exit 2\n  interval: 2\n  publish: true\n  subscriptions: [hooked]\n  check_hooks:\n  - critical: [process-tree, reader]\n  - non-zero: [process-tree, nowhere]\n  - ok: [on-ok]\n",
    );
    let yaml = format!(
        "{}subscriptions: [hooked]\n",
        Agent::password_yaml(&b, AGENT_PASSWORD)
    );
    let _a = Agent::start("runner-1", &yaml);
    let ev = ran(&b, "failing");
    assert_eq!(ev["check"]["status"], 2, "{ev}");
    let hooks = ev["check"]["hooks"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = hooks
        .iter()
        .map(|h| h["metadata"]["name"].as_str().unwrap())
        .collect();
    // Each once, in the order of check_hooks; the ok hook does not run.
    assert_eq!(names, ["process-tree", "reader", "nowhere"], "{ev}");
    assert_eq!(hooks[0]["output"], "looked at the processes\n");
    assert_eq!(hooks[0]["status"], 0);
    assert_eq!(hooks[0]["command"], "echo \"looked at the processes\"");
    assert!(hooks[0]["executed"].as_i64() > Some(0));
    assert_eq!(
        hooks[1]["output"], "\"name\":\"failing\"\n",
        "stdin is the event: {ev}"
    );
    assert_eq!(hooks[2]["status"], 2);
    assert!(
        hooks[2]["output"]
            .as_str()
            .unwrap()
            .starts_with("hook nowhere: missing hook config"),
        "{ev}"
    );
}

#[test]
fn a_check_whose_result_is_late_past_its_ttl_goes_stale_also_across_restarts() {
    let mut b = password_backend(&[]);
    b.ctl_login();
    create(
        &b,
        "type: CheckConfig\napi_version: core/v2\nmetadata: {name: backup}\nspec:\n  command: echo fine\n  interval: 2\n  ttl: 5\n  publish: true\n  subscriptions: [ttl]\n",
    );
    let yaml = format!(
        "{}subscriptions: [ttl]\n",
        Agent::password_yaml(&b, AGENT_PASSWORD)
    );
    let mut a = Agent::start("runner-1", &yaml);
    let ok = ran(&b, "backup");
    assert_eq!(ok["check"]["status"], 0, "{ok}");
    let stale = |b: &Backend| {
        wait_for(20, "the stale-result event", || {
            event(b, "runner-1", "backup").filter(|e| e["check"]["status"] == 1)
        })
    };
    // The agent stops: within the TTL (plus the backend's 1 s tick and a margin), Sensu's
    // stale-result event.
    a.kill9();
    let t0 = std::time::Instant::now();
    let ev = stale(&b);
    let waited = t0.elapsed().as_secs_f64();
    assert!(waited < 5.0 + 3.0, "{waited:.1} s: {ev}");
    let out = ev["check"]["output"].as_str().unwrap();
    assert!(out.starts_with("Last check execution was "), "{ev}");
    assert!(out.ends_with(" seconds ago"), "{ev}");
    assert_eq!(ev["check"]["state"], "failing", "{ev}");
    // The next result resolves it.
    a.spawn();
    wait_for(30, "the resolution", || {
        event(&b, "runner-1", "backup").filter(|e| e["check"]["status"] == 0)
    });
    // The agent stops and the backend restarts: the TTL is still watched.
    a.kill9();
    b.kill9();
    b.spawn();
    let t1 = std::time::Instant::now();
    let ev = stale(&b);
    let waited = t1.elapsed().as_secs_f64();
    assert!(waited < 5.0 + 4.0, "{waited:.1} s: {ev}\n{}", b.log());
    assert!(
        b.log().contains("watching the TTLs of stored events"),
        "{}",
        b.log()
    );
}

#[test]
fn a_proxy_check_files_its_event_under_the_proxy_entity_never_another_agents() {
    let b = password_backend(&[]);
    b.ctl_login();
    // Sensu's documented proxy check shape: the agent runs it, the event is the proxy's.
    create(
        &b,
        "type: Entity\napi_version: core/v2\nmetadata: {name: switch-1, labels: {site: lyon}}\nspec:\n  entity_class: proxy\n---\ntype: CheckConfig\napi_version: core/v2\nmetadata: {name: ping-switch}\nspec:\n  command: echo switch up\n  interval: 2\n  publish: true\n  subscriptions: [proxy]\n  proxy_entity_name: switch-1\n---\ntype: CheckConfig\napi_version: core/v2\nmetadata: {name: ping-router}\nspec:\n  command: echo router up\n  interval: 2\n  publish: true\n  subscriptions: [proxy]\n  proxy_entity_name: router-9\n---\ntype: CheckConfig\napi_version: core/v2\nmetadata: {name: impersonate}\nspec:\n  command: echo I am runner-2\n  interval: 2\n  publish: true\n  subscriptions: [proxy]\n  proxy_entity_name: runner-2\n",
    );
    let yaml = |subs: &str| {
        format!(
            "{}subscriptions: [{subs}]\n",
            Agent::password_yaml(&b, AGENT_PASSWORD)
        )
    };
    let _other = Agent::start("runner-2", &yaml("other"));
    let a = Agent::start("runner-1", &yaml("proxy"));
    let switch = wait_for(30, "the switch's event", || {
        event(&b, "switch-1", "ping-switch")
    });
    assert_eq!(switch["check"]["output"], "switch up\n", "{switch}");
    // The stored proxy entity, with its labels, not the agent's.
    assert_eq!(switch["entity"]["entity_class"], "proxy", "{switch}");
    assert_eq!(
        switch["entity"]["metadata"]["labels"]["site"], "lyon",
        "{switch}"
    );
    // A proxy entity that does not exist yet is created as Sensu does.
    let router = wait_for(30, "the router's event", || {
        event(&b, "router-9", "ping-router")
    });
    assert_eq!(router["entity"]["entity_class"], "proxy", "{router}");
    // Nothing filed under the agent itself, and another agent's entity is refused.
    assert!(event(&b, "runner-1", "ping-switch").is_none());
    wait_for(30, "the refusal in the agent's log", || {
        a.log()
            .contains("which is an agent's entity: an agent files results for itself and for proxy entities only")
            .then_some(())
    });
    assert!(event(&b, "runner-2", "impersonate").is_none());
}

#[test]
fn tokens_in_a_check_are_the_agents_entity_and_a_missing_one_says_which() {
    let b = password_backend(&[]);
    b.ctl_login();
    // Sensu's documented token examples.
    create(
        &b,
        "type: CheckConfig\napi_version: core/v2\nmetadata: {name: tokens}\nspec:\n  command: echo url={{ .labels.url }} warn={{ .annotations.disk_warning | default \"80\" }} on {{ .name }} as $CHECK_URL\n  env_vars: [\"CHECK_URL={{ .labels.url }}\"]\n  interval: 2\n  publish: true\n  subscriptions: [tokens]\n---\ntype: CheckConfig\napi_version: core/v2\nmetadata: {name: unmatched}\nspec:\n  command: check-http -u {{ .labels.missing }}\n  interval: 2\n  publish: true\n  subscriptions: [tokens]\n",
    );
    let yaml = format!(
        "{}subscriptions: [tokens]\nlabels:\n  url: https://web-1.example/health\n",
        Agent::password_yaml(&b, AGENT_PASSWORD)
    );
    let _a = Agent::start("runner-1", &yaml);
    let ev = ran(&b, "tokens");
    assert_eq!(
        ev["check"]["output"],
        "url=https://web-1.example/health warn=80 on runner-1 as https://web-1.example/health\n",
        "{ev}"
    );
    // The event's check is the substituted one, as Sensu's.
    assert!(
        ev["check"]["command"]
            .as_str()
            .unwrap()
            .starts_with("echo url=https://web-1.example/health"),
        "{ev}"
    );
    let bad = ran(&b, "unmatched");
    assert_eq!(bad["check"]["status"], 3, "{bad}");
    let out = bad["check"]["output"].as_str().unwrap();
    assert!(
        out.contains("error while substituting check tokens: unmatched token: {{ .labels.missing }}: the entity has no labels.missing"),
        "{out}"
    );
}

#[test]
fn a_subdued_check_is_not_run_while_its_window_holds() {
    let b = password_backend(&[]);
    b.ctl_login();
    // RFC 3339 in UTC-7 (`date`, as an operator would write it).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let at = |secs: i64| {
        let out = ward_testkit::Command::new("date")
            .env("TZ", "Etc/GMT+7")
            .args([
                "-d",
                &format!("@{}", now + secs),
                "+%Y-%m-%dT%H:%M:%S-07:00",
            ])
            .run();
        out.stdout.trim().to_string()
    };
    // Sensu 6's subdues (begin/end with an offset), one holding now and one long past.
    create(
        &b,
        &format!(
            "type: CheckConfig\napi_version: core/v2\nmetadata: {{name: quiet}}\nspec:\n  command: echo should not run\n  interval: 1\n  publish: true\n  subscriptions: [subdue]\n  subdues:\n  - begin: \"{}\"\n    end: \"{}\"\n---\ntype: CheckConfig\napi_version: core/v2\nmetadata: {{name: loud}}\nspec:\n  command: echo runs\n  interval: 1\n  publish: true\n  subscriptions: [subdue]\n  subdues:\n  - begin: \"{}\"\n    end: \"{}\"\n",
            at(-3600),
            at(3600),
            at(-7200),
            at(-3600)
        ),
    );
    let yaml = format!(
        "{}subscriptions: [subdue]\n",
        Agent::password_yaml(&b, AGENT_PASSWORD)
    );
    let _a = Agent::start("runner-1", &yaml);
    ran(&b, "loud");
    // Three more intervals of the other one: still nothing.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(event(&b, "runner-1", "quiet").is_none(), "{}", b.log());
}

#[test]
fn an_agent_with_disable_assets_fails_checks_that_need_them_saying_so() {
    let b = password_backend(&[]);
    b.ctl_login();
    create(
        &b,
        "type: CheckConfig\napi_version: core/v2\nmetadata: {name: needs-tools}\nspec:\n  command: 'true'\n  interval: 2\n  publish: true\n  subscriptions: [noassets]\n  runtime_assets: [tools]\n",
    );
    let yaml = format!(
        "{}subscriptions: [noassets]\ndisable-assets: true\n",
        Agent::password_yaml(&b, AGENT_PASSWORD)
    );
    let _a = Agent::start("runner-1", &yaml);
    let ev = ran(&b, "needs-tools");
    assert_eq!(ev["check"]["status"], 3, "{ev}");
    assert!(
        ev["check"]["output"].as_str().unwrap().contains(
            "runtime assets are disabled on this agent (disable-assets), and this needs tools"
        ),
        "{ev}"
    );
}

#[test]
fn an_allow_list_runs_only_the_commands_it_lists_and_says_why_the_others_did_not_run() {
    let b = password_backend(&[]);
    b.ctl_login();
    // Sensu's matching: the command holds exec, and nothing but the listed args.
    let list = b.dir.join("allow-list.yaml");
    let echo_sha = sha512_hex(&std::fs::read("/bin/echo").unwrap());
    std::fs::write(
        &list,
        format!(
            "- exec: /bin/echo\n  args: [allowed]\n  sha512: {echo_sha}\n- exec: /usr/bin/printenv\n  args: [WHO]\n- exec: /bin/true\n  args: [\"\"]\n  sha512: {}\n",
            sha512_hex(b"not /bin/true")
        ),
    )
    .unwrap();
    create(
        &b,
        "type: HookConfig\napi_version: core/v2\nmetadata: {name: peek}\nspec:\n  command: /bin/echo hooked\n  timeout: 10\n---\ntype: CheckConfig\napi_version: core/v2\nmetadata: {name: allowed}\nspec:\n  command: /bin/echo allowed\n  interval: 2\n  publish: true\n  subscriptions: [listed]\n  check_hooks:\n  - ok: [peek]\n---\ntype: CheckConfig\napi_version: core/v2\nmetadata: {name: other-args}\nspec:\n  command: /bin/echo other\n  interval: 2\n  publish: true\n  subscriptions: [listed]\n---\ntype: CheckConfig\napi_version: core/v2\nmetadata: {name: shell}\nspec:\n  command: /bin/sh -c true\n  interval: 2\n  publish: true\n  subscriptions: [listed]\n---\ntype: CheckConfig\napi_version: core/v2\nmetadata: {name: no-env}\nspec:\n  command: /usr/bin/printenv WHO\n  env_vars: [WHO=world]\n  interval: 2\n  publish: true\n  subscriptions: [listed]\n---\ntype: CheckConfig\napi_version: core/v2\nmetadata: {name: changed}\nspec:\n  command: /bin/true\n  interval: 2\n  publish: true\n  subscriptions: [listed]\n",
    );
    let yaml = format!(
        "{}subscriptions: [listed]\nallow-list: {}\n",
        Agent::password_yaml(&b, AGENT_PASSWORD),
        list.display()
    );
    let _a = Agent::start("runner-1", &yaml);
    let ev = ran(&b, "allowed");
    assert_eq!(ev["check"]["status"], 0, "{ev}");
    assert_eq!(ev["check"]["output"], "allowed\n", "{ev}");
    // Hooks go through the same list.
    let hook = &ev["check"]["hooks"][0];
    assert_eq!(hook["status"], 3, "{ev}");
    assert_eq!(
        hook["output"],
        format!(
            "check hook command denied by the agent allow list: \"/bin/echo hooked\" matches no entry of {}",
            list.display()
        ),
        "{ev}"
    );
    for (check, command) in [
        ("other-args", "/bin/echo other"),
        ("shell", "/bin/sh -c true"),
    ] {
        let ev = ran(&b, check);
        assert_eq!(ev["check"]["status"], 3, "{ev}");
        assert_eq!(
            ev["check"]["output"],
            format!(
                "check command denied by the agent allow list: \"{command}\" matches no entry of {}",
                list.display()
            ),
            "{ev}"
        );
    }
    // Listed without enable_env: the check's env_vars are not set.
    let ev = ran(&b, "no-env");
    assert_eq!(
        (&ev["check"]["status"], &ev["check"]["output"]),
        (&Value::from(1), &Value::from("")),
        "{ev}"
    );
    // Listed, but the executable is not the one whose SHA-512 the list gives.
    let ev = ran(&b, "changed");
    assert_eq!(ev["check"]["status"], 3, "{ev}");
    let out = ev["check"]["output"].as_str().unwrap();
    assert!(
        out.starts_with(
            "check command denied by the agent allow list: the SHA-512 of /bin/true is "
        ) && out.ends_with(&format!("entry 3 of {} gives", list.display())),
        "{ev}"
    );
}

#[test]
fn a_checks_secrets_reach_its_command_over_tls_and_a_missing_one_says_which() {
    let env_dir = ward_testkit::TempDir::new();
    let env_file = env_dir.join("ward-backend.env");
    std::fs::write(&env_file, "API_TOKEN=s3cret-value\n").unwrap();
    let b = password_backend(&["--env-file", env_file.to_str().unwrap()]);
    b.ctl_login();
    // Sensu's documented env-provider Secret, and checks naming it (and one that is not).
    create(
        &b,
        "type: Secret\napi_version: secrets/v1\nmetadata: {name: api-token}\nspec:\n  id: API_TOKEN\n  provider: env\n---\ntype: CheckConfig\napi_version: core/v2\nmetadata: {name: with-secret}\nspec:\n  command: 'test \"${TOKEN#s3c}\" = ret-value && echo the token is there'\n  interval: 2\n  publish: true\n  subscriptions: [secrets]\n  secrets:\n  - name: TOKEN\n    secret: api-token\n---\ntype: CheckConfig\napi_version: core/v2\nmetadata: {name: without}\nspec:\n  command: 'true'\n  interval: 2\n  publish: true\n  subscriptions: [secrets]\n  secrets:\n  - name: TOKEN\n    secret: nowhere\n",
    );
    let yaml = format!(
        "{}subscriptions: [secrets]\n",
        Agent::password_yaml(&b, AGENT_PASSWORD)
    );
    let a = Agent::start("runner-1", &yaml);
    let ev = ran(&b, "with-secret");
    assert_eq!(ev["check"]["status"], 0, "{ev}\n{}", a.log());
    assert_eq!(ev["check"]["output"], "the token is there\n", "{ev}");
    let bad = ran(&b, "without");
    assert_eq!(bad["check"]["status"], 3, "{bad}");
    assert!(
        bad["check"]["output"]
            .as_str()
            .unwrap()
            .contains("no Secret \"nowhere\" in namespace \"default\""),
        "{bad}"
    );
    // The value is in no event and no log.
    for text in [ev.to_string(), b.log(), a.log()] {
        assert!(!text.contains("s3cret-value"), "{text}");
    }
}
