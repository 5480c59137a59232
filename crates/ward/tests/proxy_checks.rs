//! Checks with `proxy_requests`, through a real backend and agent, as Sensu Go runs them:
//! the check is sent once per entity its `entity_attributes` all hold for, its tokens
//! substituted against that entity and `proxy_entity_name` set, so each event is filed
//! under its proxy entity; entities that do not match (and the agent's own) get nothing.
//! With `splay`, the requests are spread over `splay_coverage`% of the interval. Ad hoc
//! execution fans out the same way. Expressions that do not parse are refused at creation.

use serde_json::Value;
use std::time::{Duration, Instant};
use ward_testkit::agent::{password_backend, Agent, AGENT_PASSWORD};
use ward_testkit::backend::{Backend, ADMIN, ADMIN_PASSWORD};

fn event(b: &Backend, entity: &str, check: &str) -> Option<Value> {
    b.event(entity, check)
}

fn create(b: &Backend, yaml: &str) -> (bool, String) {
    b.create(yaml)
}

fn entity(name: &str, labels: &str) -> String {
    format!("---\ntype: Entity\napi_version: core/v2\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\nspec:\n  entity_class: proxy\n")
}

const WEBSITES: &str =
    "[\"entity.entity_class == 'proxy'\", \"entity.labels.proxy_type == 'website'\"]";

fn check(name: &str, command: &str, extra: &str) -> String {
    format!("---\ntype: CheckConfig\napi_version: core/v2\nmetadata: {{name: {name}}}\nspec:\n  command: '{command}'\n  subscriptions: [proxies]\n{extra}")
}

/// `wait_logged` for 30 s.
fn wait<T>(b: &Backend, a: &Agent, what: &str, f: impl FnMut() -> Option<T>) -> T {
    ward_testkit::agent::wait_logged(30, b, a, what, f)
}

/// The output of `check`'s latest event under `entity`, once it has run.
fn output(b: &Backend, entity: &str, check: &str) -> Option<String> {
    let ev = event(b, entity, check)?;
    (ev["check"]["executed"].as_i64() > Some(0)).then_some(())?;
    assert_eq!(ev["entity"]["metadata"]["name"], entity, "{ev}");
    assert_eq!(ev["check"]["proxy_entity_name"], entity, "{ev}");
    ev["check"]["output"].as_str().map(str::to_string)
}

#[test]
fn proxy_requests_run_the_check_once_per_matching_entity_with_its_tokens() {
    let b = password_backend(&[]);
    b.ctl_login();
    let entities = [
        entity("site-a", "proxy_type: website, url: 'https://a.example'"),
        entity("site-b", "proxy_type: website, url: 'https://b.example'"),
        // A proxy with a url, but not a website: the second expression is false.
        entity("router-1", "url: 'https://router.example'"),
    ]
    .concat();
    let (ok, out) = create(&b, &entities);
    assert!(ok, "{out}");
    let yaml = format!(
        "{}subscriptions: [proxies]\n",
        Agent::password_yaml(&b, AGENT_PASSWORD)
    );
    let a = Agent::start("runner-1", &yaml);

    // Not splayed: every 2 s, one request per website, each with its own url.
    let (ok, out) = create(
        &b,
        &check(
            "website",
            "echo checking {{ .labels.url }}",
            &format!("  interval: 2\n  publish: true\n  proxy_requests:\n    entity_attributes: {WEBSITES}\n"),
        ),
    );
    assert!(ok, "{out}");
    for (site, url) in [
        ("site-a", "https://a.example"),
        ("site-b", "https://b.example"),
    ] {
        let out = wait(&b, &a, &format!("{site}'s event"), || {
            output(&b, site, "website")
        });
        assert_eq!(out, format!("checking {url}\n"), "{}", a.log());
    }

    // Splayed: the two requests of a run are 4 s × 90 % / 2 = 1.8 s apart. (Created once
    // the agent is connected, so that both come from the same run.)
    let (ok, out) = create(
        &b,
        &check(
            "splayed",
            "echo splayed {{ .labels.url }}",
            &format!("  interval: 4\n  publish: true\n  proxy_requests:\n    entity_attributes: {WEBSITES}\n    splay: true\n    splay_coverage: 90\n"),
        ),
    );
    assert!(ok, "{out}");
    let start = Instant::now();
    let mut seen: [Option<Duration>; 2] = [None, None];
    while seen.iter().any(Option::is_none) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the splayed check's events: {seen:?}\n{}",
            a.log()
        );
        for (i, (site, url)) in [
            ("site-a", "https://a.example"),
            ("site-b", "https://b.example"),
        ]
        .into_iter()
        .enumerate()
        {
            if seen[i].is_none() {
                if let Some(out) = output(&b, site, "splayed") {
                    assert_eq!(out, format!("splayed {url}\n"));
                    seen[i] = Some(start.elapsed());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (ta, tb) = (seen[0].unwrap(), seen[1].unwrap());
    let apart = ta.abs_diff(tb);
    assert!(
        apart >= Duration::from_millis(1000) && apart <= Duration::from_millis(3500),
        "the splayed requests arrived {apart:?} apart ({ta:?}, {tb:?})"
    );

    // Ad hoc: a check that is not published, executed, fans out the same way.
    let (ok, out) = create(
        &b,
        &check(
            "adhoc",
            "echo adhoc {{ .labels.url }}",
            "  interval: 60\n  publish: false\n  proxy_requests:\n    entity_attributes: [\"entity.name == 'site-b'\"]\n",
        ),
    );
    assert!(ok, "{out}");
    let token = b.token(ADMIN, ADMIN_PASSWORD);
    let (code, body) = b.curl(&[
        "-X",
        "POST",
        "-H",
        &format!("Authorization: Bearer {token}"),
        &format!(
            "{}/api/core/v2/namespaces/default/checks/adhoc/execute",
            b.url()
        ),
    ]);
    assert_eq!(code, 202, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["agents"].as_u64(), v["proxy_entities"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
    let out = wait(&b, &a, "the ad hoc event", || output(&b, "site-b", "adhoc"));
    assert_eq!(out, "adhoc https://b.example\n");

    // Nothing for the entity that does not match, nor for the agent's own entity.
    for check in ["website", "splayed", "adhoc"] {
        for who in ["router-1", "runner-1"] {
            assert!(
                event(&b, who, check).is_none(),
                "{check} ran for {who}: {:?}",
                event(&b, who, check)
            );
        }
    }
    assert!(event(&b, "site-a", "adhoc").is_none());
}

#[test]
fn entity_attributes_that_do_not_parse_are_refused_at_creation() {
    let b = password_backend(&[]);
    b.ctl_login();
    let (ok, out) = create(
        &b,
        &check(
            "broken",
            "true",
            "  interval: 10\n  publish: true\n  proxy_requests:\n    entity_attributes: [\"entity.entity_class == 'proxy'\", \"entity.labels.x ==\"]\n",
        ),
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("spec.proxy_requests.entity_attributes[1]")
            && out.contains("entity.labels.x =="),
        "{out}"
    );
    let (ok, out) = create(
        &b,
        &check(
            "fine",
            "true",
            &format!("  interval: 10\n  publish: true\n  proxy_requests:\n    entity_attributes: {WEBSITES}\n"),
        ),
    );
    assert!(ok, "{out}");
}
