//! Sensu's documented Silenced examples (the corpus in conformance/sensu-docs, from
//! silencing.md and plan-maintenance.md), with the events their pages describe: each
//! silences what its page says and nothing else.

use ward_types::silence::{silenced_by, Entry, Target};

fn entry(file: &str) -> Entry {
    let path = format!(
        "{}/../../conformance/sensu-docs/resources/Silenced/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let docs = ward_types::parse_stream(&path, &text).unwrap();
    Entry::from_resource(&docs[0])
}

/// An agent's event: `check` run through `check_subs` on `entity` subscribed to `subs`.
fn event(entity: &str, subs: &[&str], check: &str, check_subs: &[&str]) -> Target {
    let mut entity_subscriptions: Vec<String> = subs.iter().map(|s| s.to_string()).collect();
    entity_subscriptions.push(format!("entity:{entity}"));
    Target {
        check: check.into(),
        entity: entity.into(),
        entity_subscriptions,
        check_subscriptions: check_subs.iter().map(|s| s.to_string()).collect(),
        proxy: false,
    }
}

/// At a minute after the entry begins (the page's own maintenance window), or now.
fn silenced(e: &Entry, t: &Target) -> bool {
    let at = if e.begin > 0 {
        e.begin + 60
    } else {
        ward_types::unix_now()
    };
    !silenced_by(std::slice::from_ref(e), t, at).is_empty()
}

#[test]
fn the_documented_silences_silence_what_their_pages_say() {
    // plan-maintenance.md: check-http on the entity sensu-site only.
    let e = entry("001.yml");
    assert_eq!(e.name, "entity:sensu-site:check-http");
    assert!(silenced(
        &e,
        &event("sensu-site", &["web"], "check-http", &["web"])
    ));
    assert!(!silenced(
        &e,
        &event("sensu-site", &["web"], "check-disk", &["web"])
    ));
    assert!(!silenced(
        &e,
        &event("other-site", &["web"], "check-http", &["web"])
    ));
    // Its window (begin, expire 3600) is over: it silences nothing after expire_at.
    let after = silenced_by(
        std::slice::from_ref(&e),
        &event("sensu-site", &["web"], "check-http", &["web"]),
        e.expire_at,
    );
    assert!(after.is_empty());

    // silencing.md: every check on the entity i-424242.
    let e = entry("003.yml");
    assert_eq!(e.name, "entity:i-424242:*");
    assert!(silenced(
        &e,
        &event("i-424242", &[], "check_cpu", &["linux"])
    ));
    assert!(silenced(
        &e,
        &event("i-424242", &[], "check_ntp", &["linux"])
    ));
    assert!(!silenced(
        &e,
        &event("i-000001", &[], "check_cpu", &["linux"])
    ));

    // silencing.md: check_ntp on i-424242.
    let e = entry("005.yml");
    assert!(silenced(
        &e,
        &event("i-424242", &[], "check_ntp", &["linux"])
    ));
    assert!(!silenced(
        &e,
        &event("i-424242", &[], "check_cpu", &["linux"])
    ));

    // silencing.md: every check of the appserver subscription, on entities that have it.
    let e = entry("007.yml");
    assert!(silenced(
        &e,
        &event("app-1", &["appserver"], "check_cpu", &["appserver"])
    ));
    assert!(!silenced(
        &e,
        &event("db-1", &["database"], "check_cpu", &["database"])
    ));
    // The check runs through appserver and database; a database host is not silenced.
    assert!(!silenced(
        &e,
        &event(
            "db-1",
            &["database"],
            "check_cpu",
            &["appserver", "database"]
        )
    ));

    // silencing.md: mysql_status through appserver.
    let e = entry("009.yml");
    assert!(silenced(
        &e,
        &event("app-1", &["appserver"], "mysql_status", &["appserver"])
    ));
    assert!(!silenced(
        &e,
        &event("app-1", &["appserver"], "check_cpu", &["appserver"])
    ));

    // silencing.md: mysql_status on every entity.
    let e = entry("011.yml");
    assert!(silenced(
        &e,
        &event("app-1", &["appserver"], "mysql_status", &["appserver"])
    ));
    assert!(silenced(
        &e,
        &event("db-9", &["database"], "mysql_status", &["database"])
    ));
    assert!(!silenced(
        &e,
        &event("db-9", &["database"], "check_cpu", &["database"])
    ));
}
