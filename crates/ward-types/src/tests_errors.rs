//! Bad inputs: every error names the field, in both shapes; nothing panics.

use crate::tests_kinds::SHA;
use crate::{Document, Kind, Resource};
use serde_json::{json, Value};

/// Flat bodies with one thing wrong, and the field their error must name.
#[test]
fn bad_flat_bodies_name_the_field() {
    let cases: Vec<(Kind, Value, &str, &str)> = vec![
        (
            Kind::CheckConfig,
            json!({"command": "x", "check_hooks": [{"+5": ["ps"]}], "metadata": {"name": "c"}}),
            "check_hooks[0].+5",
            "hook type",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "interval": "ten", "metadata": {"name": "c"}}),
            "interval",
            "whole number",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "interval": 4294967296u64, "metadata": {"name": "c"}}),
            "interval",
            "4294967295",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "intervall": 10, "metadata": {"name": "c"}}),
            "intervall",
            "known fields: command",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "interval": 10, "cron": "* * * * *", "metadata": {"name": "c"}}),
            "cron",
            "not both",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "cron": "TZ= * * * * *", "metadata": {"name": "c"}}),
            "cron",
            "time zone",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "cron": "CRON_TZ=Europe/Paris", "metadata": {"name": "c"}}),
            "cron",
            "no schedule",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "cron": "CRON_TZ=Mars/Olympus 0 9 * * *", "metadata": {"name": "c"}}),
            "cron",
            "not a time zone of the tz database",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "cron": "every day", "metadata": {"name": "c"}}),
            "cron",
            "not a cron",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "interval": 60, "ttl": 30, "metadata": {"name": "c"}}),
            "ttl",
            "greater than the interval",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "interval": 60, "low_flap_threshold": 50, "high_flap_threshold": 40, "metadata": {"name": "c"}}),
            "low_flap_threshold",
            "below",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "interval": 60, "env_vars": ["OK=1", "BROKEN"], "metadata": {"name": "c"}}),
            "env_vars[1]",
            "KEY=VALUE",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "interval": 60, "subscriptions": ["a b"], "metadata": {"name": "c"}}),
            "subscriptions[0]",
            "subscription",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "interval": 60, "subscriptions": [null], "metadata": {"name": "c"}}),
            "subscriptions[0]",
            "not null",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "interval": 60, "check_hooks": [{"critical": "ps"}], "metadata": {"name": "c"}}),
            "check_hooks[0].critical",
            "list of strings",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "interval": 60, "check_hooks": [{"bad": ["ps"]}], "metadata": {"name": "c"}}),
            "check_hooks[0].bad",
            "hook type",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "interval": 60, "proxy_requests": {"splay": true}, "metadata": {"name": "c"}}),
            "proxy_requests.splay_coverage",
            "above 0",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "interval": 60, "proxy_requests": {"splay": "yes"}, "metadata": {"name": "c"}}),
            "proxy_requests.splay",
            "true or false",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "interval": 60, "subdues": [{"begin": "tomorrow", "end": "2024-01-01T00:00:00Z"}], "metadata": {"name": "c"}}),
            "subdues[0].begin",
            "RFC 3339",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "interval": 60, "subdues": [{"begin": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z"}], "metadata": {"name": "c"}}),
            "subdues[0].end",
            "before",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "interval": 60, "subdues": [{"begin": "2024-01-01T00:00:00Z", "end": "2024-01-01T01:00:00Z", "repeat": ["often"]}], "metadata": {"name": "c"}}),
            "subdues[0].repeat[0]",
            "repeat period",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "interval": 60, "subdue": {"days": {"friday": [{"begin": "25:00PM", "end": "1:00AM"}]}}, "metadata": {"name": "c"}}),
            "subdue.days.friday[0].begin",
            "time of day",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "interval": 60, "output_metric_tags": [{"name": 1}], "metadata": {"name": "c"}}),
            "output_metric_tags[0].name",
            "a string",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "interval": 60, "output_metric_thresholds": [{"name": "m", "thresholds": [{"min": 5}]}], "metadata": {"name": "c"}}),
            "output_metric_thresholds[0].thresholds[0].min",
            "a string",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "interval": 60, "secrets": [{"name": "A"}], "metadata": {"name": "c"}}),
            "secrets[0].secret",
            "required",
        ),
        (
            Kind::Secret,
            json!({"id": "TOKEN", "provider": "vault", "metadata": {"name": "s"}}),
            "provider",
            "use env",
        ),
        (
            Kind::Secret,
            json!({"id": "PGPASSWORD", "provider": "env", "metadata": {"name": "s"}}),
            "id",
            "backend's own variables",
        ),
        (
            Kind::Secret,
            json!({"id": "A-B", "provider": "env", "metadata": {"name": "s"}}),
            "id",
            "not an environment variable name",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "interval": 60, "pipelines": [{"name": "p", "type": "Handler", "api_version": "core/v2"}], "metadata": {"name": "c"}}),
            "pipelines[0].type",
            "core/v2.Pipeline",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "interval": 60, "output_metric_format": "csv", "metadata": {"name": "c"}}),
            "output_metric_format",
            "metric format",
        ),
        (
            Kind::CheckConfig,
            json!({"interval": 60, "metadata": {"name": "c"}}),
            "command",
            "required",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "metadata": {"name": "bad name"}}),
            "metadata.name",
            "not a valid name",
        ),
        (
            Kind::CheckConfig,
            json!({"command": "x", "metadata": {"name": "c", "colour": "red"}}),
            "metadata",
            "colour",
        ),
        (
            Kind::Handler,
            json!({"type": "email", "metadata": {"name": "h"}}),
            "type",
            "handler type",
        ),
        (
            Kind::Handler,
            json!({"type": "tcp", "metadata": {"name": "h"}}),
            "socket",
            "required",
        ),
        (
            Kind::Handler,
            json!({"type": "udp", "socket": {"host": "h", "port": "53"}, "metadata": {"name": "h"}}),
            "socket.port",
            "whole number",
        ),
        (
            Kind::Handler,
            json!({"type": "pipe", "metadata": {"name": "h"}}),
            "command",
            "pipe",
        ),
        (
            Kind::EventFilter,
            json!({"expressions": ["true"], "metadata": {"name": "f"}}),
            "action",
            "required",
        ),
        (
            Kind::EventFilter,
            json!({"action": "maybe", "expressions": ["true"], "metadata": {"name": "f"}}),
            "action",
            "allow or deny",
        ),
        (
            Kind::EventFilter,
            json!({"action": "allow", "metadata": {"name": "f"}}),
            "expressions",
            "at least one",
        ),
        (
            Kind::EventFilter,
            json!({"action": "allow", "expressions": ["  "], "metadata": {"name": "f"}}),
            "expressions[0]",
            "expression",
        ),
        (
            Kind::EventFilter,
            json!({"action": "deny", "expressions": ["x"], "when": {"days": {"someday": []}}, "metadata": {"name": "f"}}),
            "when.days.someday",
            "unknown field",
        ),
        (
            Kind::Mutator,
            json!({"metadata": {"name": "m"}}),
            "command",
            "command",
        ),
        (
            Kind::Mutator,
            json!({"type": "javascript", "command": "x", "eval": "y", "metadata": {"name": "m"}}),
            "command",
            "eval, not command",
        ),
        (
            Kind::Mutator,
            json!({"type": "lua", "eval": "y", "metadata": {"name": "m"}}),
            "type",
            "mutator type",
        ),
        (
            Kind::HookConfig,
            json!({"command": "x", "timeout": 0, "metadata": {"name": "h"}}),
            "timeout",
            "greater than 0",
        ),
        (
            Kind::HookConfig,
            json!({"metadata": {"name": "h"}}),
            "command",
            "required",
        ),
        (
            Kind::Asset,
            json!({"url": "https://x/a.tgz", "sha512": "abc", "metadata": {"name": "a"}}),
            "sha512",
            "128 hex",
        ),
        (
            Kind::Asset,
            json!({"sha512": SHA, "metadata": {"name": "a"}}),
            "url",
            "required",
        ),
        (
            Kind::Asset,
            json!({"builds": [{"url": "https://x", "sha512": "zz"}], "metadata": {"name": "a"}}),
            "builds[0].sha512",
            "128 hex",
        ),
        (
            Kind::Asset,
            json!({"builds": [{"url": "https://x", "sha512": SHA, "headers": {"A": 1}}], "metadata": {"name": "a"}}),
            "builds[0].headers.A",
            "a string",
        ),
        (
            Kind::Asset,
            json!({"url": "https://x", "sha512": SHA, "metadata": {"name": "a/../b"}}),
            "metadata.name",
            "valid name",
        ),
        (
            Kind::Role,
            json!({"rules": [{"verbs": ["get", "destroy"], "resources": ["checks"]}], "metadata": {"name": "r"}}),
            "rules[0].verbs[1]",
            "\"destroy\"",
        ),
        (
            Kind::Role,
            json!({"rules": [{"verbs": "get", "resources": ["checks"]}], "metadata": {"name": "r"}}),
            "rules[0].verbs",
            "list of strings",
        ),
        (
            Kind::Role,
            json!({"rules": [{"verbs": ["get"], "resources": []}], "metadata": {"name": "r"}}),
            "rules[0].resources",
            "at least one",
        ),
        (
            Kind::ClusterRole,
            json!({"rules": [], "metadata": {"name": "r"}}),
            "rules",
            "at least one rule",
        ),
        (
            Kind::ClusterRole,
            json!({"rules": [{"verbs": ["get"], "resources": ["*"]}], "metadata": {"name": "r", "namespace": "default"}}),
            "metadata.namespace",
            "not namespaced",
        ),
        (
            Kind::RoleBinding,
            json!({"subjects": [{"type": "User", "name": "a"}], "metadata": {"name": "b"}}),
            "role_ref",
            "required",
        ),
        (
            Kind::RoleBinding,
            json!({"subjects": [{"type": "User", "name": "a"}], "role_ref": {"type": "Admin", "name": "x"}, "metadata": {"name": "b"}}),
            "role_ref.type",
            "Role or ClusterRole",
        ),
        (
            Kind::RoleBinding,
            json!({"subjects": [], "role_ref": {"type": "Role", "name": "x"}, "metadata": {"name": "b"}}),
            "subjects",
            "at least one subject",
        ),
        (
            Kind::RoleBinding,
            json!({"subjects": [{"type": "Team", "name": "a"}], "role_ref": {"type": "Role", "name": "x"}, "metadata": {"name": "b"}}),
            "subjects[0].type",
            "User or Group",
        ),
        (
            Kind::RoleBinding,
            json!({"subjects": [{"type": "User"}], "role_ref": {"type": "Role", "name": "x"}, "metadata": {"name": "b"}}),
            "subjects[0].name",
            "required",
        ),
        (
            Kind::ClusterRoleBinding,
            json!({"subjects": [{"type": "User", "name": "a"}], "role_ref": {"type": "Role", "name": "x"}, "metadata": {"name": "b"}}),
            "role_ref.type",
            "use ClusterRole",
        ),
        (
            Kind::Silenced,
            json!({"metadata": {"name": "x"}}),
            "subscription",
            "subscription or a check",
        ),
        (
            Kind::Silenced,
            json!({"subscription": "*", "check": "*"}),
            "subscription",
            "not both",
        ),
        (
            Kind::Silenced,
            json!({"check": "cpu", "expire": 1.5}),
            "expire",
            "whole number",
        ),
        (
            Kind::Silenced,
            json!({"subscription": "a:b:c"}),
            "subscription",
            "not a subscription",
        ),
        (
            Kind::Pipeline,
            json!({"workflows": [{"name": "w"}], "metadata": {"name": "p"}}),
            "workflows[0].handler",
            "required",
        ),
        (
            Kind::Pipeline,
            json!({"workflows": [{"name": "w", "handler": {"name": "h", "type": "Handler", "api_version": "core/v3"}}], "metadata": {"name": "p"}}),
            "workflows[0].handler.type",
            "core/v2.Handler",
        ),
        (
            Kind::Pipeline,
            json!({"workflows": [{"name": "w", "filters": [{"name": "f", "type": "Mutator", "api_version": "core/v2"}], "handler": {"name": "h", "type": "Handler", "api_version": "core/v2"}}], "metadata": {"name": "p"}}),
            "workflows[0].filters[0].type",
            "EventFilter",
        ),
        (
            Kind::Pipeline,
            json!({"workflows": [{"name": "w", "handler": {"name": "h", "type": "SumoLogicMetricsHandler", "api_version": "pipeline/v1"}}], "metadata": {"name": "p"}}),
            "workflows[0].handler.type",
            "no Sumo Logic handler",
        ),
        (
            Kind::TCPStreamHandler,
            json!({"address": "logstash", "max_connections": 1, "min_reconnect_delay": "10ms", "max_reconnect_delay": "10s", "metadata": {"name": "t"}}),
            "address",
            "HOST:PORT",
        ),
        (
            Kind::TCPStreamHandler,
            json!({"address": "127.0.0.1:4242", "min_reconnect_delay": "10ms", "max_reconnect_delay": "10s", "metadata": {"name": "t"}}),
            "max_connections",
            "is required",
        ),
        (
            Kind::TCPStreamHandler,
            json!({"address": "127.0.0.1:4242", "max_connections": 1, "min_reconnect_delay": "10", "max_reconnect_delay": "10s", "metadata": {"name": "t"}}),
            "min_reconnect_delay",
            "10ms or 10s",
        ),
        (
            Kind::TCPStreamHandler,
            json!({"address": "127.0.0.1:4242", "max_connections": 1, "min_reconnect_delay": "1m", "max_reconnect_delay": "10s", "metadata": {"name": "t"}}),
            "min_reconnect_delay",
            "longer than max_reconnect_delay",
        ),
        (
            Kind::TCPStreamHandler,
            json!({"address": "127.0.0.1:4242", "max_connections": 1, "min_reconnect_delay": "1s", "max_reconnect_delay": "10s", "tls_cert_file": "/c.pem", "metadata": {"name": "t"}}),
            "tls_key_file",
            "is required with tls_cert_file",
        ),
        (
            Kind::User,
            json!({"username": "bob", "password_hash": "md5:abc"}),
            "password_hash",
            "bcrypt",
        ),
        (
            Kind::User,
            json!({"username": "bob", "metadata": {"name": "alice"}}),
            "username",
            "does not match",
        ),
        (
            Kind::User,
            json!({"groups": ["a"]}),
            "metadata.name",
            "required",
        ),
        (
            Kind::APIKey,
            json!({"metadata": {"name": "k"}}),
            "username",
            "required",
        ),
        (
            Kind::Namespace,
            json!({"name": "x", "labels": {}}),
            "labels",
            "known fields: name",
        ),
        (
            Kind::Namespace,
            json!({"name": "bad/ns"}),
            "metadata.name",
            "valid name",
        ),
        (
            Kind::PostgresConfig,
            json!({"dsn": " ", "metadata": {"name": "p"}}),
            "dsn",
            "required",
        ),
    ];
    for (kind, body, field, needle) in cases {
        let e = Resource::from_flat(kind, body.clone()).unwrap_err();
        assert_eq!(e.field, field, "{kind:?} {body}: {e}");
        assert!(e.reason.contains(needle), "{kind:?} {body}: {e}");
        // The same mistake in a wrapped document names `spec.<field>`.
        if let Some(mut spec) = body.as_object().cloned() {
            let md = spec.remove("metadata").unwrap_or(json!({}));
            let doc = Document {
                type_name: kind.type_name().into(),
                api_version: String::new(),
                metadata: serde_json::from_value(md).unwrap_or_default(),
                spec: Value::Object(spec),
            };
            if let Err(e2) = Resource::from_document(doc) {
                if !field.starts_with("metadata") {
                    assert_eq!(e2.field, format!("spec.{field}"), "{kind:?} {body}: {e2}");
                }
            }
        }
    }
}

/// A cron zone must be in the tz database: a well-formed name that is not one is refused
/// at creation, in one line that names it.
#[test]
fn cron_zones_outside_the_tz_database_are_refused() {
    let check = |cron: &str| {
        Resource::from_flat(
            Kind::CheckConfig,
            json!({"command": "x", "cron": cron, "metadata": {"name": "c"}}),
        )
    };
    let e = check("CRON_TZ=Mars/Olympus 0 9 * * *").unwrap_err();
    assert_eq!(e.field, "cron");
    assert_eq!(
        e.reason,
        "\"Mars/Olympus\" is not a time zone of the tz database (such as UTC or Europe/Paris)"
    );
    // Names are the database's, case and all.
    for bad in [
        "TZ=Europe/Pariss @hourly",
        "CRON_TZ=europe/paris 0 9 * * *",
        "TZ=PDT 0 9 * * *",
    ] {
        let e = check(bad).unwrap_err();
        assert!(e.reason.contains("tz database"), "{bad}: {e}");
    }
    for ok in [
        "CRON_TZ=Asia/Tokyo 0 9 * * *",
        "TZ=America/Argentina/Buenos_Aires 0 9 * * *",
        "CRON_TZ=Etc/GMT+5 0 9 * * *",
        "TZ=UTC @daily",
        "CRON_TZ=US/Pacific 0 9 * * *",
    ] {
        assert!(check(ok).is_ok(), "{ok}");
    }
    assert_eq!(
        crate::split_cron_zone("CRON_TZ=Asia/Tokyo 0 9 * * *"),
        Ok((Some(chrono_tz::Tz::Asia__Tokyo), "0 9 * * *"))
    );
}

#[test]
fn hostile_inputs_are_errors_not_panics() {
    for kind in Kind::ALL {
        for v in [
            json!(null),
            json!(1),
            json!("x"),
            json!({"metadata": 5}),
            json!({"metadata": {"name": "é"}}),
            json!({"rules": [null, 1, "x"]}),
            json!({"workflows": [1]}),
            json!({"subjects": [1], "role_ref": 1}),
            json!({"cron": "CRON_TZ=é ", "interval": -1}),
            json!({"subdues": [{"begin": "2024-01-01T00:00:00é"}]}),
            json!({"builds": [null]}),
            json!({"check_hooks": [{}]}),
            json!({"when": {"days": {"all": [1]}}}),
        ] {
            let _ = Resource::from_flat(kind, v.clone());
            let _ = Resource::from_api_body(kind, v);
        }
    }
    assert_eq!(crate::rules_check::rfc3339("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(
        crate::rules_check::rfc3339("2024-02-29T12:00:00.5+01:00"),
        Some(1_709_204_400)
    );
    assert_eq!(crate::rules_check::rfc3339("2023-02-29T12:00:00Z"), None);
    assert_eq!(
        crate::split_cron_zone("TZ=UTC 0 * * * *"),
        Ok((Some(chrono_tz::Tz::UTC), "0 * * * *"))
    );
    assert_eq!(crate::split_cron_zone("@hourly"), Ok((None, "@hourly")));
    assert!(crate::split_cron_zone("CRON_TZ=../etc/passwd 0 * * * *").is_err());
}
