//! Every kind in both shapes, and the errors that name the field.

use crate::{parse_stream, Document, Kind, Resource};
use serde_json::{json, Value};

pub(crate) const SHA: &str = "4f926bf4328fbad2b9cac873d117f771914f4b837c9c85584c38ccf55a3ef3c2e8d154812246e5dda4a87450576b2c58ad9ab40c9e2edc31b288d066b195b21b";

/// One example per kind, in the flat (REST) form, written from Sensu's documented shapes.
fn examples() -> Vec<(Kind, Value)> {
    vec![
        (Kind::Namespace, json!({"name": "production"})),
        (
            Kind::User,
            json!({"username": "alice", "groups": ["ops", "dev"], "disabled": false}),
        ),
        (
            Kind::Entity,
            json!({"entity_class": "proxy", "subscriptions": ["web", "entity:web-1"], "deregister": false,
                   "deregistration": {"handler": "slack"}, "last_seen": 0, "user": "agent",
                   "keepalive_handlers": ["keepalive"], "redact": ["password"],
                   "system": {"hostname": "web-1", "os": "linux", "network": {"interfaces": []}},
                   "metadata": {"name": "web-1", "namespace": "default", "labels": {"env": "prod"}}}),
        ),
        (
            Kind::CheckConfig,
            json!({"command": "check-cpu-usage -w 75 -c 90", "subscriptions": ["system"], "publish": true,
                   "cron": "CRON_TZ=America/New_York 0 9 * * 1-5", "timeout": 10, "ttl": 0,
                   "handlers": ["slack"], "round_robin": false, "stdin": false,
                   "high_flap_threshold": 60, "low_flap_threshold": 20, "runtime_assets": ["check-cpu-usage"],
                   "proxy_entity_name": "", "proxy_requests": {"entity_attributes": ["entity.entity_class == 'proxy'"], "splay": true, "splay_coverage": 90},
                   "output_metric_format": "prometheus_text", "output_metric_handlers": ["influxdb"],
                   "output_metric_tags": [{"name": "instance", "value": "{{ .name }}"}],
                   "output_metric_thresholds": [{"name": "cpu", "tags": [{"name": "core", "value": "0"}],
                       "thresholds": [{"min": "", "max": "90.5", "status": 2}], "null_status": 1}],
                   "env_vars": ["RUBY=/opt/ruby"], "check_hooks": [{"critical": ["ps-aux"]}, {"1": ["df"]}],
                   "subdue": {"days": {"all": [{"begin": "5:00 PM", "end": "8:00AM"}]}},
                   "subdues": [{"begin": "2024-01-31T17:00:00-05:00", "end": "2024-02-01T08:00:00-05:00", "repeat": ["weekdays"]}],
                   "secrets": [],
                   "pipelines": [{"name": "alerts", "type": "Pipeline", "api_version": "core/v2"}],
                   "scheduler": "memory", "max_output_size": 1024, "discard_output": false,
                   "metadata": {"name": "check-cpu", "namespace": "default", "labels": null, "annotations": null, "created_by": "admin"}}),
        ),
        (
            Kind::Handler,
            json!({"type": "tcp", "socket": {"host": "10.0.1.99", "port": 4444}, "timeout": 30,
                   "filters": ["is_incident"], "handlers": [], "env_vars": [], "runtime_assets": [],
                   "secrets": [{"name": "TOKEN", "secret": "api-token"}], "mutator": "only_check_output", "metadata": {"name": "tcp_handler"}}),
        ),
        (
            Kind::Event,
            json!({"entity": {"metadata": {"name": "web-1"}}, "check": {"metadata": {"name": "cpu"}, "status": 1},
                   "timestamp": 1_700_000_000, "id": "3a5c8d1e-0000-4000-8000-000000000000", "sequence": 3,
                   "metrics": {"handlers": ["influxdb"], "points": [{"name": "cpu.idle", "value": 97.5, "timestamp": 1_700_000_000, "tags": []}]},
                   "pipelines": [], "metadata": {"namespace": "default"}}),
        ),
        (
            Kind::PostgresConfig,
            json!({"dsn": "postgresql://sensu@db:5432/sensu_events", "pool_size": 20, "metadata": {"name": "pg"}}),
        ),
        (
            Kind::EventFilter,
            json!({"action": "allow", "expressions": ["event.check.occurrences == 1"], "runtime_assets": [],
                   "when": {"days": {"monday": [{"begin": "9:00AM", "end": "5:00PM"}]}},
                   "metadata": {"name": "first_occurrence", "namespace": "default"}}),
        ),
        (
            Kind::Mutator,
            json!({"type": "javascript", "eval": "data = JSON.parse(JSON.stringify(event)); return data;",
                   "timeout": 10, "env_vars": [], "runtime_assets": [], "secrets": [], "metadata": {"name": "js_mutator"}}),
        ),
        (
            Kind::Pipeline,
            json!({"workflows": [{"name": "alerts", "filters": [{"name": "is_incident", "type": "EventFilter", "api_version": "core/v2"}],
                                  "mutator": {"name": "js_mutator", "type": "Mutator", "api_version": "core/v2"},
                                  "handler": {"name": "slack", "type": "Handler", "api_version": "core/v2"}},
                                 {"name": "log_all_incidents", "filters": [{"name": "is_incident", "type": "EventFilter", "api_version": "core/v2"}],
                                  "handler": {"name": "logstash", "type": "TCPStreamHandler", "api_version": "pipeline/v1"}}],
                   "metadata": {"name": "incident_alerts", "namespace": "default"}}),
        ),
        (
            Kind::Silenced,
            json!({"subscription": "linux", "check": "", "expire": -1, "expire_on_resolve": true, "begin": 1_700_000_000,
                   "expire_at": 0, "creator": "admin", "reason": "maintenance", "metadata": {"name": "linux:*", "namespace": "default"}}),
        ),
        (
            Kind::HookConfig,
            json!({"command": "ps aux", "timeout": 60, "stdin": false, "runtime_assets": [], "metadata": {"name": "ps-aux"}}),
        ),
        (
            Kind::Asset,
            json!({"builds": [{"url": "https://assets.example.com/check-cpu-usage_linux_amd64.tar.gz", "sha512": SHA,
                               "filters": ["entity.system.os == 'linux'"], "headers": {"Authorization": "Bearer x"}}],
                   "metadata": {"name": "sensu/check-cpu-usage", "namespace": "default"}}),
        ),
        (
            Kind::Role,
            json!({"rules": [{"verbs": ["get", "list"], "resources": ["checks", "events"], "resource_names": []}],
                   "metadata": {"name": "event-reader", "namespace": "default"}}),
        ),
        (
            Kind::RoleBinding,
            json!({"subjects": [{"type": "Group", "name": "ops"}], "role_ref": {"type": "Role", "name": "event-reader"},
                   "metadata": {"name": "ops-event-reader", "namespace": "default"}}),
        ),
        (
            Kind::ClusterRole,
            json!({"rules": [{"verbs": ["*"], "resources": ["*"], "resource_names": []}], "metadata": {"name": "global-admin"}}),
        ),
        (
            Kind::ClusterRoleBinding,
            json!({"subjects": [{"type": "User", "name": "alice"}], "role_ref": {"type": "ClusterRole", "name": "global-admin"},
                   "metadata": {"name": "alice-admin"}}),
        ),
        (
            Kind::Secret,
            json!({"id": "ANSIBLE_TOKEN", "provider": "env", "metadata": {"name": "sensu-ansible-token", "namespace": "default"}}),
        ),
        (
            Kind::TCPStreamHandler,
            json!({"address": "127.0.0.1:4242", "tls_ca_cert_file": "/path/to/tls/ca.pem",
                   "tls_cert_file": "/path/to/tls/cert.pem", "tls_key_file": "/path/to/tls/key.pem",
                   "max_connections": 10, "min_reconnect_delay": "10ms", "max_reconnect_delay": "10s",
                   "metadata": {"name": "logstash", "namespace": "default"}}),
        ),
        (
            Kind::APIKey,
            json!({"metadata": {"name": "83abef1e-e7d7-4beb-91fc-79ad90084d5b", "created_by": "admin"},
                   "username": "alice", "created_at": 1_700_000_000}),
        ),
    ]
}

/// The wrapped YAML of a flat example, as sensuctl writes it.
fn wrapped_yaml(kind: Kind, flat: &Value) -> String {
    let mut spec = flat.as_object().unwrap().clone();
    let metadata = spec.remove("metadata").unwrap_or(json!({}));
    let doc = json!({"type": kind.type_name(), "api_version": kind.api_version(), "metadata": metadata, "spec": spec});
    serde_saphyr::to_string(&doc).unwrap()
}

#[test]
fn every_kind_has_an_example_in_both_shapes_that_round_trips() {
    let ex = examples();
    assert_eq!(ex.len(), Kind::ALL.len());
    for (kind, flat) in ex {
        let r = Resource::from_flat(kind, flat.clone()).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(r.kind, kind);
        let yaml = wrapped_yaml(kind, &flat);
        let w = parse_stream("x.yml", &yaml).unwrap_or_else(|e| panic!("{kind:?}: {e}\n{yaml}"));
        assert_eq!(w[0], r, "{kind:?}: both shapes give the same resource");
        assert_eq!(
            Resource::from_flat(kind, r.to_flat()).unwrap(),
            r,
            "{kind:?} flat"
        );
        assert_eq!(
            Resource::from_document(r.to_document()).unwrap(),
            r,
            "{kind:?} doc"
        );
        assert_eq!(
            Resource::from_api_body(kind, flat.clone()).unwrap(),
            r,
            "{kind:?}"
        );
        let doc = serde_json::to_value(r.to_document()).unwrap();
        assert_eq!(
            Resource::from_api_body(kind, doc).unwrap(),
            r,
            "{kind:?} wrapped"
        );
        assert_eq!(r.metadata.namespace.is_some(), kind.namespaced());
    }
}

#[test]
fn special_shapes() {
    let ns = Resource::from_flat(Kind::Namespace, json!({"name": "prod"})).unwrap();
    assert_eq!(ns.metadata.name, "prod");
    assert_eq!(ns.to_flat(), json!({"name": "prod"}));
    let ns2 = Resource::from_flat(Kind::Namespace, json!({"metadata": {"name": "prod"}})).unwrap();
    assert_eq!(ns2, ns);
    let sensu = "type: Namespace\napi_version: core/v2\nmetadata: {}\nspec:\n  name: prod\n";
    assert_eq!(parse_stream("n.yml", sensu).unwrap()[0], ns);

    let u = Resource::from_flat(
        Kind::User,
        json!({"username": "bob", "password": "P@ssw0rd!", "password_hash": "$2a$10$abcdefghijklmnopqrstuvABCDEFGHIJKLMNOPQRSTUVWXYZ01234", "groups": ["a"], "disabled": false, "metadata": {}}),
    )
    .unwrap();
    assert_eq!(u.metadata.name, "bob");
    assert_eq!(
        u.to_flat(),
        json!({"username": "bob", "groups": ["a"], "disabled": false})
    );

    let key = Resource::from_flat(Kind::APIKey, json!({"metadata": {"name": "k1", "created_by": "admin"}, "username": "bob", "created_at": 5, "hash": "c2VjcmV0"})).unwrap();
    assert_eq!(
        key.to_flat(),
        json!({"metadata": {"name": "k1", "created_by": "admin"}, "username": "bob", "created_at": 5})
    );

    for (sub, check, name) in [
        ("linux", "", "linux:*"),
        ("", "cpu", "*:cpu"),
        ("web", "cpu", "web:cpu"),
        ("*", "cpu", "*:cpu"),
    ] {
        let s = Resource::from_flat(
            Kind::Silenced,
            json!({"subscription": sub, "check": check, "metadata": {"name": "ignored"}}),
        )
        .unwrap();
        assert_eq!(s.metadata.name, name);
    }
    // Sensu title-cases binding types.
    let b = Resource::from_flat(Kind::RoleBinding, json!({"subjects": [{"type": "group", "name": "ops"}], "role_ref": {"type": "clusterRole", "name": "view"}, "metadata": {"name": "b"}})).unwrap();
    assert_eq!(b.spec["subjects"][0]["type"], "Group");
    assert_eq!(b.spec["role_ref"]["type"], "ClusterRole");
    // Events need no name.
    assert!(Resource::from_flat(Kind::Event, json!({"entity": {}, "check": {}})).is_ok());
}

#[test]
fn api_bodies_in_either_shape() {
    let wrapped = json!({"type": "Handler", "api_version": "core/v2", "metadata": {"name": "h"}, "spec": {"type": "set", "handlers": ["a"]}});
    let flat = json!({"type": "set", "handlers": ["a"], "metadata": {"name": "h"}});
    let a = Resource::from_api_body(Kind::Handler, wrapped).unwrap();
    assert_eq!(a, Resource::from_api_body(Kind::Handler, flat).unwrap());
    // A wrapped body without a type is taken as the collection's kind.
    let bare = json!({"metadata": {"name": "h"}, "spec": {"type": "set"}});
    assert_eq!(
        Resource::from_api_body(Kind::Handler, bare).unwrap().kind,
        Kind::Handler
    );
    let other = json!({"type": "CheckConfig", "metadata": {"name": "h"}, "spec": {"command": "x"}});
    let e = Resource::from_api_body(Kind::Handler, other).unwrap_err();
    assert_eq!(e.field, "type", "{e}");
    let e = Resource::from_api_body(Kind::Handler, json!([1])).unwrap_err();
    assert_eq!(e.field, "body");
    let e = Resource::from_api_body(
        Kind::Handler,
        json!({"type": "pipe", "api_version": "core/v2", "spec": {}, "extra": 1}),
    )
    .unwrap_err();
    assert!(e.to_string().contains("extra"), "{e}");
}

#[test]
fn labels_null_and_created_by() {
    let yaml = "type: CheckConfig\nmetadata:\n  name: c\n  labels: null\n  annotations: ~\n  created_by: admin\nspec:\n  command: x\n  interval: 10\n";
    let r = &parse_stream("c.yml", yaml).unwrap()[0];
    assert!(r.metadata.labels.is_empty() && r.metadata.annotations.is_empty());
    assert_eq!(r.metadata.created_by.as_deref(), Some("admin"));
    let d: Document = serde_json::from_value(
        json!({"type": "Namespace", "metadata": null, "spec": {"name": "x"}}),
    )
    .unwrap();
    assert_eq!(Resource::from_document(d).unwrap().metadata.name, "x");
}

#[test]
fn stored_documents_skip_the_rules_not_the_types() {
    let doc = |spec: Value| Document {
        type_name: "Handler".into(),
        api_version: "core/v2".into(),
        metadata: serde_json::from_value(json!({"name": "h"})).unwrap(),
        spec,
    };
    let old = doc(json!({"type": "pipe"}));
    assert!(Resource::from_document(old.clone()).is_err());
    assert!(Resource::from_stored(old).is_ok());
    let e = Resource::from_stored(doc(json!({"type": "pipe", "timeout": "x"}))).unwrap_err();
    assert_eq!(e.field, "spec.timeout");
    let argon = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
    let u = json!({"username": "w", "password_hash": argon});
    assert!(Resource::from_flat(Kind::User, u).is_ok());
}
