//! Tests of the layering, the alias prefix and foreign keys.

use super::*;

const SCHEMA: Schema = Schema {
    keys: &["port", "urls", "labels", "flag"],
    map_keys: &["labels"],
    env_prefix: "WARD_TEST_",
    alias_prefix: Some("SENSU_TEST_"),
    alias_strict: true,
    foreign: &[
        Foreign {
            key: "etcd-name",
            rule: Rule::Refused {
                reason: "the store is not etcd",
                instead: "remove it",
            },
        },
        Foreign {
            key: "eventd-workers",
            rule: Rule::Ignored {
                kind: Kind::Int,
                reason: "no worker pools",
            },
        },
        Foreign {
            key: "labels-of-old",
            rule: Rule::Ignored {
                kind: Kind::Any,
                reason: "no entity",
            },
        },
    ],
};

fn file(text: &str) -> tempfile_path::TempFile {
    tempfile_path::TempFile::new(text)
}

// A tiny temp file without a dev-dependency.
mod tempfile_path {
    pub struct TempFile(pub std::path::PathBuf);
    impl TempFile {
        pub fn new(text: &str) -> Self {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "ward-settings-{}-{}.yml",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&p, text).unwrap();
            TempFile(p)
        }
    }
    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[test]
fn flags_beat_environment_beat_the_file_and_sources_are_named() {
    let f = file("port: 1\nurls: [a, b]\nlabels: {x: \"1\", y: 2}\nflag: true\n");
    let env = |k: &str| (k == "WARD_TEST_PORT").then(|| "2".to_string());
    let flags = vec![
        ("urls".to_string(), "c".to_string()),
        ("urls".to_string(), "d,e".to_string()),
    ];
    let s = Settings::resolve(&SCHEMA, Some(&f.0), &env, &flags).unwrap();
    assert_eq!(s.port("port", 0).unwrap(), 2);
    assert_eq!(s.source("port"), "$WARD_TEST_PORT");
    assert_eq!(s.list("urls"), ["c", "d", "e"]);
    assert_eq!(s.source("urls"), "--urls");
    assert_eq!(s.map("labels").unwrap()["y"], "2");
    assert!(s.boolean("flag", false).unwrap());
    assert_eq!(s.source("nothing"), "defaults");
}

#[test]
fn bad_input_names_the_key_and_its_source() {
    let cases = [
        ("prot: 1\n", "prot (from "),
        ("port: {a: 1}\n", "must be a single value or a list"),
        ("labels: [[1]]\n", "must be a mapping"),
        ("- a\n", "must be a mapping of key: value"),
        ("port: [\n", "malformed YAML"),
    ];
    for (text, want) in cases {
        let f = file(text);
        let e = Settings::resolve(&SCHEMA, Some(&f.0), &|_| None, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{text:?}: {e}");
    }
    let e =
        Settings::resolve(&SCHEMA, None, &|_| None, &[("nope".into(), "1".into())]).unwrap_err();
    assert_eq!(e.to_string(), "nope (from flags): unknown flag");
    let env = |k: &str| (k == "WARD_TEST_LABELS").then(|| "a=1,b".to_string());
    let s = Settings::resolve(&SCHEMA, None, &env, &[]).unwrap();
    let e = s.map("labels").unwrap_err().to_string();
    assert!(
        e.starts_with("labels (from $WARD_TEST_LABELS): \"b\" is not key=value"),
        "{e}"
    );
    let s = Settings::resolve(&SCHEMA, None, &|_| None, &[("flag".into(), "yes".into())]).unwrap();
    assert_eq!(
        s.boolean("flag", false).unwrap_err().to_string(),
        "flag (from --flag): \"yes\" is not true or false"
    );
}

#[test]
fn the_alias_prefix_is_read_and_the_own_prefix_wins() {
    let env = |k: &str| match k {
        "SENSU_TEST_PORT" => Some("1".to_string()),
        "SENSU_TEST_FLAG" => Some("true".to_string()),
        "WARD_TEST_FLAG" => Some("false".to_string()),
        _ => None,
    };
    let s = Settings::resolve(&SCHEMA, None, &env, &[]).unwrap();
    assert_eq!(s.port("port", 0).unwrap(), 1);
    assert_eq!(s.source("port"), "$SENSU_TEST_PORT");
    assert!(!s.boolean("flag", true).unwrap());
    assert_eq!(s.source("flag"), "$WARD_TEST_FLAG");
    let env = |k: &str| (k == "SENSU_TEST_PORT").then(|| "x".to_string());
    let s = Settings::resolve(&SCHEMA, None, &env, &[]).unwrap();
    assert_eq!(
        s.port("port", 0).unwrap_err().to_string(),
        "port (from $SENSU_TEST_PORT): \"x\" is not a port number"
    );
    // Without an alias prefix, nothing else is read.
    let own_only = Schema {
        alias_prefix: None,
        alias_strict: true,
        ..SCHEMA
    };
    let s = Settings::resolve(&own_only, None, &env, &[]).unwrap();
    assert!(!s.is_set("port"));
}

#[test]
fn foreign_keys_are_refused_or_ignored_from_every_source() {
    let f = file("etcd-name: a\n");
    let e = Settings::resolve(&SCHEMA, Some(&f.0), &|_| None, &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "etcd-name (from {}): not supported by Ward: the store is not etcd; remove it",
            f.0.display()
        )
    );
    let env = |k: &str| (k == "SENSU_TEST_ETCD_NAME").then(|| "a".to_string());
    let e = Settings::resolve(&SCHEMA, None, &env, &[]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("etcd-name (from $SENSU_TEST_ETCD_NAME): not supported by Ward"),
        "{e}"
    );
    let e = Settings::resolve(
        &SCHEMA,
        None,
        &|_| None,
        &[("etcd-name".into(), "a".into())],
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("etcd-name (from --etcd-name): not supported"),
        "{e}"
    );
    // Ignored keys: checked, then one warning each, naming the source used.
    let f = file("eventd-workers: 100\nlabels-of-old: {region: us-east-1}\n");
    let s = Settings::resolve(&SCHEMA, Some(&f.0), &|_| None, &[]).unwrap();
    assert_eq!(s.ignored().len(), 2, "{:?}", s.ignored());
    assert!(
        s.ignored()[0].starts_with("eventd-workers (from "),
        "{:?}",
        s.ignored()
    );
    let env = |k: &str| (k == "SENSU_TEST_EVENTD_WORKERS").then(|| "many".to_string());
    let e = Settings::resolve(&SCHEMA, Some(&f.0), &env, &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "eventd-workers (from $SENSU_TEST_EVENTD_WORKERS): \"many\" is not a whole number"
    );
    // A key in neither list keeps the unknown-key error and its list.
    let f = file("etcd-nam: a\n");
    let e = Settings::resolve(&SCHEMA, Some(&f.0), &|_| None, &[]).unwrap_err();
    assert!(
        e.to_string()
            .contains("unknown key; known keys: port, urls"),
        "{e}"
    );
}
