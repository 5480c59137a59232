use super::fields::KINDS;
use super::*;
use serde_json::json;

fn parse(s: &str) -> Selector {
    Selector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn one(s: &str) -> Requirement {
    let sel = parse(s);
    assert_eq!(sel.requirements().len(), 1, "{s:?}");
    sel.requirements()[0].clone()
}

fn req(key: &str, operator: Operator, values: &[&str]) -> Requirement {
    Requirement {
        key: key.into(),
        operator,
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

fn err(s: &str) -> SelectorError {
    match Selector::parse(s) {
        Ok(sel) => panic!("{s:?} parsed as {sel:?}"),
        Err(e) => e,
    }
}

fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn every_operator() {
    use Operator::*;
    assert_eq!(one("a == b"), req("a", Equals, &["b"]));
    assert_eq!(one("a != b"), req("a", NotEquals, &["b"]));
    assert_eq!(one("a in [b, c]"), req("a", In, &["b", "c"]));
    assert_eq!(one("a notin [b,c]"), req("a", NotIn, &["b", "c"]));
    assert_eq!(one("a matches b"), req("a", Matches, &["b"]));
    assert_eq!(
        one("linux in check.subscriptions"),
        req("linux", In, &["check.subscriptions"])
    );
    assert_eq!(one("a notin b"), req("a", NotIn, &["b"]));
}

#[test]
fn keywords_any_case_and_values() {
    use Operator::*;
    assert_eq!(one("a IN [b]"), req("a", In, &["b"]));
    assert_eq!(one("a NotIn [b]"), req("a", NotIn, &["b"]));
    assert_eq!(one("a MATCHES b"), req("a", Matches, &["b"]));
    assert_eq!(one("a == TRUE"), req("a", Equals, &["true"]));
    assert_eq!(one("a != False"), req("a", NotEquals, &["false"]));
    assert_eq!(one("a == matches"), req("a", Equals, &["matches"]));
    // names keep their case
    assert_eq!(one("Region == EU"), req("Region", Equals, &["EU"]));
    assert_eq!(one("a == _x.y/z9"), req("a", Equals, &["_x.y/z9"]));
    assert_eq!(one("a == ünïcode"), req("a", Equals, &["ünïcode"]));
}

#[test]
fn quoting() {
    use Operator::*;
    assert_eq!(one("a == 'us-west-1'"), req("a", Equals, &["us-west-1"]));
    assert_eq!(one("a == \"1 2\""), req("a", Equals, &["1 2"]));
    assert_eq!(one("a == \"it's\""), req("a", Equals, &["it's"]));
    assert_eq!(one("a == ''"), req("a", Equals, &[""]));
    assert_eq!(one("'my key' == b"), req("my key", Equals, &["b"]));
    assert_eq!(
        one("a in ['x-1', \"y 2\", z]"),
        req("a", In, &["x-1", "y 2", "z"])
    );
    assert_eq!(one("a == \"&& == [\""), req("a", Equals, &["&& == ["]));
}

#[test]
fn lists_and_spacing() {
    use Operator::*;
    assert_eq!(one("a in []"), req("a", In, &[]));
    assert_eq!(one("a in [b]"), req("a", In, &["b"]));
    assert_eq!(one("a in[b,c]"), req("a", In, &["b", "c"]));
    assert_eq!(one("a==b"), req("a", Equals, &["b"]));
    assert_eq!(one("a!='b'"), req("a", NotEquals, &["b"]));
    // Sensu's loose list: commas optional
    assert_eq!(one("a in [b c,,d,]"), req("a", In, &["b", "c", "d"]));
    assert_eq!(one("a in [true]"), req("a", In, &["true"]));
    // bare numbers as values (Sensu wants them quoted)
    assert_eq!(one("a == 2"), req("a", Equals, &["2"]));
    assert_eq!(one("a in [0, 1]"), req("a", In, &["0", "1"]));
    assert_eq!(one("ip == 10.0.0.1"), req("ip", Equals, &["10.0.0.1"]));
    assert_eq!(one("a notin 7"), req("a", NotIn, &["7"]));
}

#[test]
fn conjunctions() {
    let sel = parse("a == b && c != d&&e in [f]");
    let keys: Vec<&str> = sel.requirements().iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["a", "c", "e"]);
    // Sensu accepts requirements without && between them
    assert_eq!(parse("a == b c == d").requirements().len(), 2);
    let joined = parse("a == b").and(parse("c == d && e == f"));
    assert_eq!(joined.requirements().len(), 3);
    assert_eq!(joined.requirements()[2].key, "e");
    assert!(parse("").is_empty());
    assert!(parse("   ").is_empty());
}

#[test]
fn keys_include_list_references() {
    let sel = parse("linux in check.subscriptions && a in [b] && c == d && x notin y");
    let keys: Vec<&str> = sel.keys().collect();
    assert_eq!(
        keys,
        ["linux", "check.subscriptions", "a", "b", "c", "x", "y"]
    );
}

#[test]
fn errors_name_position_and_expectation() {
    let e = Selector::parse_param("labelSelector", "check.name = foo").unwrap_err();
    assert_eq!(
        e.to_string(),
        "labelSelector: at character 12: expected an operator (==, !=, in, notin, matches), found \"=\""
    );
    let cases: &[(&str, usize, &str, &str)] = &[
        ("a ==", 5, EXPECT_VALUE, "end of input"),
        ("a", 2, EXPECT_OP, "end of input"),
        ("a b", 3, EXPECT_OP, "\"b\""),
        ("&& a == b", 1, EXPECT_KEY, "\"&&\""),
        ("a == b &&", 10, EXPECT_KEY, "end of input"),
        ("a == b && && c == d", 11, EXPECT_KEY, "\"&&\""),
        ("a == b & c == d", 8, EXPECT_NEXT, "\"&\""),
        ("a == b ]", 8, EXPECT_NEXT, "\"]\""),
        ("a == -1", 6, EXPECT_VALUE, "\"-\""),
        ("1 == a", 1, EXPECT_KEY, "\"1\""),
        ("a == in", 6, EXPECT_VALUE, "\"in\""),
        ("a in b c", 9, EXPECT_OP, "end of input"),
        ("a in == b", 6, EXPECT_LIST, "\"==\""),
        ("a in [b", 8, EXPECT_ITEM, "end of input"),
        ("a in [b == c]", 9, EXPECT_ITEM, "\"==\""),
        ("a == 'open", 6, EXPECT_CLOSE, "end of input"),
        ("a == \"mixed'", 6, EXPECT_CLOSE, "end of input"),
        ("check. == x", 7, EXPECT_DOT, "\" \""),
        ("check.", 7, EXPECT_DOT, "end of input"),
        ("a.1 == x", 3, EXPECT_DOT, "\"1\""),
        ("true == x", 1, EXPECT_KEY, "\"true\""),
        ("é ! x", 3, EXPECT_OP, "\"!\""),
        ("ключ == значение && 🙂", 21, EXPECT_KEY, "\"🙂\""),
    ];
    for &(input, at, expected, found) in cases {
        let e = err(input);
        assert_eq!(
            (e.at, e.expected, e.found.as_str()),
            (at, expected, found),
            "{input:?}"
        );
        assert_eq!(e.param, "selector");
        assert!(!e.to_string().contains('\n'));
    }
}

#[test]
fn long_or_control_found_stays_on_one_short_line() {
    let long = format!("a {}", "b".repeat(500));
    let e = err(&long);
    assert!(e.to_string().len() < 160, "{e}");
    let e = err("a \n\u{7}");
    assert_eq!(e.at, 4);
    assert!(!e.to_string().contains('\n'));
    assert!(!e.to_string().contains('\u{7}'));
}

#[test]
fn odd_input_never_panics() {
    let samples = [
        "",
        " ",
        "'",
        "\"",
        "[",
        "]",
        ",",
        "=",
        "!",
        "&",
        "==",
        "!=",
        "&&",
        "a in [",
        "a in [,",
        "a == '",
        "\u{0}",
        "\u{feff}a == b",
        "a == b\u{0}",
        "🙂🙂",
        "a.b.c.",
        "a//b == c",
        "in in in",
        "a notin notin",
        "a matches",
        "'a' '",
        "a == b &&&& c == d",
        "\t\r\n",
        "a == b\n&& c == d",
        "a in ['x' 'y']",
        "__ == __",
        "a == b ,",
        "a [",
        "\u{10ffff}",
    ];
    for s in samples {
        let _ = Selector::parse(s);
    }
    // every prefix of a tricky selector, cut at each char boundary
    let tricky = "kéy in ['a b', \"c\"] && x != y && 'q' matches z";
    for (i, _) in tricky.char_indices() {
        let _ = Selector::parse(&tricky[..i]);
    }
    // arbitrary bytes, lossily decoded
    let mut x: u32 = 12345;
    for _ in 0..2000 {
        let bytes: Vec<u8> = (0..16)
            .map(|_| {
                x = x.wrapping_mul(1103515245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        let s = String::from_utf8_lossy(&bytes);
        if let Err(e) = Selector::parse(&s) {
            assert!(e.at >= 1 && e.at <= s.chars().count() + 1, "{s:?}: {e}");
        }
    }
}

#[test]
fn semantics_table() {
    let f = set(&[
        ("check.name", "disk"),
        ("check.subscriptions", "linux,web"),
        ("check.handlers", ""),
        ("check.publish", "true"),
    ]);
    let cases: &[(&str, bool)] = &[
        ("check.name == disk", true),
        ("check.name == cpu", false),
        ("absent == disk", false),
        ("check.name != disk", false),
        ("check.name != cpu", true),
        ("absent != anything", true),
        ("check.name in [cpu, disk]", true),
        ("check.name in [cpu, mem]", false),
        ("check.name in []", false),
        ("check.name notin [cpu, disk]", false),
        ("check.name notin [cpu]", true),
        ("check.name notin []", true),
        ("absent in [x]", false),
        ("absent notin [x]", true),
        ("linux in check.subscriptions", true),
        ("windows in check.subscriptions", false),
        ("linux notin check.subscriptions", false),
        ("windows notin check.subscriptions", true),
        ("web in [check.subscriptions]", true),
        // not a field: compared like ==
        ("check.name in nosuchfield", false),
        ("check.name in disk", true),
        ("check.name notin disk", false),
        ("'' in check.handlers", true),
        ("check.name matches is", true),
        ("check.name matches isk", true),
        ("check.name matches cpu", false),
        ("check.name matches ''", true),
        ("absent matches x", false),
        ("check.publish == true", true),
        ("check.publish == TRUE", true),
        ("check.publish == false", false),
        ("check.name == disk && check.publish == true", true),
        ("check.name == disk && check.publish == false", false),
        ("", true),
    ];
    for &(s, want) in cases {
        assert_eq!(parse(s).matches(&f), want, "{s:?}");
    }
}

#[test]
fn list_field_membership_trims_like_sensu() {
    let f = set(&[("tags", "[ a , b ]")]);
    assert!(parse("a in tags").matches(&f));
    assert!(parse("b in tags").matches(&f));
    assert!(!parse("c in tags").matches(&f));
}

fn check() -> Value {
    json!({
        "command": "check-disk",
        "subscriptions": ["linux", "web"],
        "handlers": ["slack"],
        "publish": true,
        "round_robin": false,
        "runtime_assets": [],
        "pipelines": [{"api_version": "core/v2", "type": "Pipeline", "name": "alerts"}],
        "metadata": {"name": "disk", "namespace": "prod", "labels": {"team": "ops"}}
    })
}

fn event() -> Value {
    json!({
        "timestamp": 1700000000,
        "metadata": {"namespace": "prod", "labels": {"src": "event", "shared": "event"}},
        "entity": {
            "entity_class": "agent",
            "subscriptions": ["linux", "entity:web-1"],
            "deregister": false,
            "metadata": {"name": "web-1", "namespace": "prod",
                         "labels": {"region": "eu", "shared": "entity"}}
        },
        "check": {
            "status": 2,
            "state": "failing",
            "last_ok": 1699999000,
            "handlers": ["slack", "pager"],
            "subscriptions": ["linux"],
            "publish": true,
            "silenced": ["linux:*"],
            "metadata": {"name": "disk", "namespace": "prod",
                         "labels": {"team": "ops", "shared": "check"}}
        }
    })
}

#[test]
fn check_fields() {
    let f = fields("CheckConfig", &check());
    let want = set(&[
        ("check.name", "disk"),
        ("check.namespace", "prod"),
        ("check.handlers", "slack"),
        ("check.publish", "true"),
        ("check.round_robin", "false"),
        ("check.runtime_assets", ""),
        ("check.subscriptions", "linux,web"),
        ("check.pipelines", "core/v2.Pipeline(Name=alerts)"),
        ("check.labels.team", "ops"),
    ]);
    assert_eq!(f, want);
    assert_eq!(fields("check_config", &check()), want);
}

#[test]
fn entity_fields() {
    let e = event()["entity"].clone();
    let f = fields("Entity", &e);
    assert_eq!(f["entity.name"], "web-1");
    assert_eq!(f["entity.namespace"], "prod");
    assert_eq!(f["entity.entity_class"], "agent");
    assert_eq!(f["entity.subscriptions"], "linux,entity:web-1");
    assert_eq!(f["entity.deregister"], "false");
    assert_eq!(f["entity.user"], "");
    assert_eq!(f["entity.labels.region"], "eu");
    assert_eq!(f.len(), 8);
}

#[test]
fn event_fields() {
    let f = fields("Event", &event());
    let pick = |k: &str| f.get(k).map(String::as_str);
    assert_eq!(pick("event.name"), Some(""));
    assert_eq!(pick("event.namespace"), Some("prod"));
    assert_eq!(pick("event.timestamp"), Some("1700000000"));
    assert_eq!(pick("event.is_silenced"), Some("true"));
    assert_eq!(pick("event.check.is_silenced"), Some("true"));
    assert_eq!(pick("event.check.name"), Some("disk"));
    assert_eq!(pick("event.check.status"), Some("2"));
    assert_eq!(pick("event.check.state"), Some("failing"));
    assert_eq!(pick("event.check.last_ok"), Some("1699999000"));
    assert_eq!(pick("event.check.handlers"), Some("slack,pager"));
    assert_eq!(pick("event.check.publish"), Some("true"));
    assert_eq!(pick("event.check.round_robin"), Some("false"));
    assert_eq!(pick("event.check.subscriptions"), Some("linux"));
    assert_eq!(pick("event.entity.name"), Some("web-1"));
    assert_eq!(pick("event.entity.entity_class"), Some("agent"));
    assert_eq!(pick("event.entity.deregister"), Some("false"));
    // merged labels: check over entity over event
    assert_eq!(pick("event.labels.shared"), Some("check"));
    assert_eq!(pick("event.labels.src"), Some("event"));
    assert_eq!(pick("event.labels.region"), Some("eu"));
    assert_eq!(pick("event.labels.team"), Some("ops"));
    assert_eq!(pick("event.entity.labels.shared"), Some("entity"));
    assert_eq!(pick("event.check.labels.shared"), Some("check"));
    // the on-demand lookup agrees with the full map
    for (k, v) in &f {
        assert_eq!(
            field("Event", &event(), k).as_deref(),
            Some(v.as_str()),
            "{k}"
        );
    }
    let quiet = json!({"check": {"status": 0, "silenced": []}, "entity": {}});
    assert_eq!(fields("Event", &quiet)["event.is_silenced"], "false");
    assert_eq!(fields("Event", &quiet)["event.check.status"], "0");
}

#[test]
fn silenced_users_rolebindings_and_the_rest() {
    let s = json!({"subscription": "linux", "creator": "admin", "expire_on_resolve": true,
                   "reason": "maint", "metadata": {"namespace": "prod", "labels": {"x": "1"}}});
    let f = fields("Silenced", &s);
    assert_eq!(f["silenced.name"], "linux:*");
    assert_eq!(f["silenced.check"], "");
    assert_eq!(f["silenced.subscription"], "linux");
    assert_eq!(f["silenced.creator"], "admin");
    assert_eq!(f["silenced.expire_on_resolve"], "true");
    assert_eq!(f["silenced.reason"], "maint");
    assert_eq!(f["silenced.labels.x"], "1");

    let u = json!({"username": "ann", "groups": ["ops", "dev"], "disabled": false,
                   "metadata": {"labels": {"x": "1"}}});
    assert_eq!(
        fields("User", &u),
        set(&[
            ("user.username", "ann"),
            ("user.groups", "ops,dev"),
            ("user.disabled", "false")
        ])
    );
    assert!(labels("User", &u).is_empty());

    let rb = json!({"role_ref": {"type": "Role", "name": "reader"},
                    "subjects": [{"type": "User", "name": "ann"}],
                    "metadata": {"name": "ann-reads", "namespace": "prod"}});
    assert_eq!(
        fields("RoleBinding", &rb),
        set(&[
            ("rolebinding.name", "ann-reads"),
            ("rolebinding.namespace", "prod"),
            ("rolebinding.role_ref.name", "reader"),
            ("rolebinding.role_ref.type", "Role"),
        ])
    );
    let crb = fields("ClusterRoleBinding", &rb);
    assert_eq!(crb["clusterrolebinding.role_ref.type"], "Role");
    assert!(!crb.contains_key("clusterrolebinding.namespace"));

    assert_eq!(
        fields("Namespace", &json!({"name": "prod"})),
        set(&[("namespace.name", "prod")])
    );
    let h = json!({"type": "pipe", "filters": ["a", "b"], "mutator": "m",
                   "metadata": {"name": "h", "namespace": "n"}});
    assert_eq!(fields("Handler", &h)["handler.filters"], "a,b");
    assert_eq!(fields("Handler", &h)["handler.type"], "pipe");
    assert_eq!(fields("Handler", &h)["handler.handlers"], "");
    let k = json!({"username": "ann", "metadata": {"name": "k1"}});
    assert_eq!(
        fields("APIKey", &k),
        set(&[("api_key.name", "k1"), ("api_key.username", "ann")])
    );
    assert_eq!(
        fields("EventFilter", &json!({"action": "allow"}))["filter.action"],
        "allow"
    );
    assert!(fields("NoSuchKind", &check()).is_empty());
}

#[test]
fn every_listed_name_resolves() {
    for &(name, kind) in KINDS {
        let f = fields(name, &json!({}));
        assert_eq!(f.len(), kind.names().len(), "{name}");
        for n in kind.names() {
            assert!(
                f.contains_key(&format!("{}.{n}", kind.prefix())),
                "{name} {n}"
            );
        }
    }
}

#[test]
fn event_labels_merge_entity_and_check() {
    let e = event();
    assert_eq!(
        labels("Event", &e),
        set(&[("src", "event"), ("shared", "event")])
    );
    assert_eq!(
        event_labels(&e),
        set(&[("region", "eu"), ("team", "ops"), ("shared", "check")])
    );
    let sel = |l: &str| Selection::parse(&[l], &[]).unwrap();
    // own labels match
    assert!(sel("src == event").admits("Event", &e));
    // only the merged entity+check labels match
    assert!(sel("region == eu && team == ops").admits("Event", &e));
    assert!(sel("shared == check").admits("Event", &e));
    // entity's value is hidden by the check's in the merge, and not an own label
    assert!(!sel("shared == entity").admits("Event", &e));
    // never mixes own and merged sets within one test
    assert!(!sel("src == event && region == eu").admits("Event", &e));
    assert!(!sel("region == us").admits("Event", &e));
    // other kinds do not merge
    assert!(!sel("region == eu").admits("Entity", &json!({"metadata": {}})));
    assert!(sel("region == eu").admits("Entity", &e["entity"]));
}

#[test]
fn selection_parse_and_admits() {
    let c = check();
    let s = Selection::parse(&[], &["check.name == disk", "linux in check.subscriptions"]).unwrap();
    assert!(s.label.is_none());
    assert_eq!(s.field.as_ref().map(|f| f.requirements().len()), Some(2));
    assert!(s.admits("CheckConfig", &c));
    let s = Selection::parse(
        &[],
        &["check.name == disk", "windows in check.subscriptions"],
    )
    .unwrap();
    assert!(!s.admits("CheckConfig", &c));
    let s = Selection::parse(&["team == ops"], &["check.labels.team == ops"]).unwrap();
    assert!(s.admits("CheckConfig", &c));
    let s = Selection::parse(&["team != ops"], &[]).unwrap();
    assert!(!s.admits("CheckConfig", &c));
    let s = Selection::parse(&["nolabel != x"], &["check.nofield != y"]).unwrap();
    assert!(s.admits("CheckConfig", &c));
    let s = Selection::parse(&["", "  "], &[]).unwrap();
    assert!(s.is_empty());
    assert!(s.admits("CheckConfig", &c));
    assert!(!Selection::parse(&["a == b"], &[]).unwrap().is_empty());

    let e = Selection::parse(&["a == b"], &["x == y", "x = y"]).unwrap_err();
    assert_eq!(e.param, "fieldSelector");
    assert!(
        e.to_string().starts_with("fieldSelector: at character 3: "),
        "{e}"
    );
    let e = Selection::parse(&["a ="], &[]).unwrap_err();
    assert!(e.to_string().starts_with("labelSelector: "), "{e}");

    let ev = event();
    let s = Selection::parse(
        &[],
        &["event.check.status == 2 && event.entity.name == 'web-1'"],
    )
    .unwrap();
    assert!(s.admits("Event", &ev));
    let s = Selection::parse(&[], &["event.check.status != 2"]).unwrap();
    assert!(!s.admits("Event", &ev));
    let s = Selection::parse(&[], &["event.check.name == disk"]).unwrap();
    assert!(
        !s.admits("CheckConfig", &c),
        "an event field on a check is absent"
    );
    assert!(!s.admits("Nope", &c));
}

#[test]
fn odd_resources_do_not_panic() {
    let s = Selection::parse(
        &["a == b"],
        &["event.check.status == 1 && event.labels.x != y && linux in event.check.subscriptions"],
    )
    .unwrap();
    let docs = [
        json!(null),
        json!([]),
        json!("x"),
        json!({"check": null, "entity": 7, "metadata": {"labels": null}}),
        json!({"check": {"status": -1.5, "subscriptions": [1, null, {"a": 1}], "metadata": []}}),
        json!({"check": {"status": 18446744073709551615u64}}),
        json!({"check": {"status": 1e300}}),
    ];
    for kind in KINDS.iter().map(|(k, _)| *k).chain(["", "Event"]) {
        for d in &docs {
            let _ = s.admits(kind, d);
            let _ = fields(kind, d);
            let _ = labels(kind, d);
            let _ = event_labels(d);
        }
    }
    assert_eq!(
        fields("Event", &docs[5])["event.check.status"],
        "18446744073709551615"
    );
    assert_eq!(fields("Event", &docs[4])["event.check.status"], "-1");
}
