//! Thresholds (the cases of Sensu Go's `TestEvaluateOutputMetricThresholds`, then the exact
//! annotations), the points' JSON, and Go's number syntax and printing.

use super::gonum::{format_f, format_g, parse_float};
use super::tests::pt;
use super::*;
use serde_json::json;

#[test]
fn points_serialise_as_sensu_writes_them() {
    let p = pt(
        "disk.used",
        42.5,
        1700000000,
        &[("host", "web1"), ("empty", "")],
    );
    assert_eq!(
        p.to_json(),
        json!({"name": "disk.used", "value": 42.5, "timestamp": 1700000000,
               "tags": [{"name": "host", "value": "web1"}, {"name": "empty"}]})
    );
    let p = pt("", f64::INFINITY, 0, &[]);
    assert_eq!(
        p.to_json(),
        json!({"value": null, "timestamp": 0, "tags": []})
    );
    assert_eq!(
        serde_json::to_string(&pt("a", 1.0, 2, &[]).to_json()).unwrap(),
        r#"{"name":"a","value":1.0,"timestamp":2,"tags":[]}"#
    );
}

#[test]
fn thresholds_as_sensu_tests_them() {
    let disk = pt("disk_rate", 99999.0, 1, &[]);
    let net = pt("network_rate", 100001.0, 1, &[("device", "eth0")]);
    let crit = "sensu.io/notifications/critical";
    let disk_min_crit = "sensu.io/output_metric_thresholds/disk_rate/min/critical";
    let disk_max_crit = "sensu.io/output_metric_thresholds/disk_rate/max/critical";
    let rule = |name: &str, null_status: u32, limits: Value| json!([{"name": name, "null_status": null_status, "thresholds": limits}]);
    let cases: Vec<(Value, Vec<Point>, u32, Vec<&str>)> = vec![
        (
            rule("disk_rate", 0, json!([{"min": "200000.0", "status": 2}])),
            vec![disk.clone()],
            2,
            vec![disk_min_crit, crit],
        ),
        (
            rule("disk_rate", 0, json!([{"max": "50000.0", "status": 2}])),
            vec![disk.clone()],
            2,
            vec![disk_max_crit, crit],
        ),
        (
            rule("disk_rate", 0, json!([{"min": "50000.0", "status": 2}])),
            vec![disk.clone()],
            0,
            vec![],
        ),
        (
            rule("disk_rate", 0, json!([{"max": "200000.0", "status": 2}])),
            vec![disk.clone()],
            0,
            vec![],
        ),
        (
            rule(
                "disk_rate",
                0,
                json!([{"min": "200000.0", "status": 1}, {"max": "75000.0", "status": 2}]),
            ),
            vec![disk.clone()],
            2,
            vec![
                "sensu.io/output_metric_thresholds/disk_rate/min/warning",
                disk_max_crit,
                crit,
            ],
        ),
        (
            rule(
                "disk_rate",
                0,
                json!([{"min": "200000.0", "status": 1}, {"max": "200000.0", "status": 2}]),
            ),
            vec![disk.clone()],
            1,
            vec![
                "sensu.io/output_metric_thresholds/disk_rate/min/warning",
                "sensu.io/notifications/warning",
            ],
        ),
        (
            rule(
                "not_a_disk_rate",
                1,
                json!([{"max": "200000.0", "status": 2}]),
            ),
            vec![disk.clone()],
            1,
            vec![
                "sensu.io/output_metric_thresholds/not_a_disk_rate/null-status/warning",
                "sensu.io/notifications/warning",
            ],
        ),
        (
            rule("disk_rate", 1, json!([{"max": "200000.0", "status": 2}])),
            vec![disk.clone(), net.clone()],
            0,
            vec![],
        ),
        (
            rule("disk_rate", 1, json!([{"max": "50000.0", "status": 2}])),
            vec![disk.clone(), net.clone()],
            2,
            vec![disk_max_crit, crit],
        ),
        (
            json!([{"name": "disk_rate", "null_status": 1, "thresholds": [{"max": "50000.0", "status": 2}]},
                   {"name": "network_rate", "thresholds": [{"max": "40000", "status": 3}]}]),
            vec![disk.clone(), net.clone()],
            3,
            vec![
                disk_max_crit,
                "sensu.io/output_metric_thresholds/network_rate/max/unknown",
                "sensu.io/notifications/unknown",
            ],
        ),
    ];
    for (i, (rules, pts, status, keys)) in cases.into_iter().enumerate() {
        let v = thresholds(&rules, &pts, 0);
        assert_eq!(v.status, Some(status), "case {i}");
        let got: Vec<&str> = v.annotations.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(got, keys, "case {i}");
    }
}

#[test]
fn threshold_annotations_say_what_sensu_says() {
    let pts = vec![
        pt("disk", 0.5, 1, &[("dev", "sda"), ("host", "a")]),
        pt("disk", 97.25, 1, &[("dev", "sdb"), ("host", "a")]),
    ];
    let rules = json!([
        {"name": "disk", "tags": [{"name": "host", "value": "a"}],
         "thresholds": [{"min": " 1 ", "max": "90", "status": 1}]},
        {"name": "disk", "tags": [{"name": "dev", "value": "sdc"}, {"name": "host", "value": "a"}],
         "null_status": 2, "thresholds": [{"min": "1", "max": "90", "status": 1}, {"max": "99", "status": 2}]},
    ]);
    let v = thresholds(&rules, &pts, 0);
    assert_eq!(v.status, Some(2));
    let missing = "CRITICAL : no metric matching \"disk\" (dev=\"sdc\", host=\"a\") was found; expected min: 1 - max: 90 (status: warning); expected max: 99 (status: critical)";
    assert_eq!(
        v.annotations,
        vec![
            (
                "sensu.io/output_metric_thresholds/disk.a/min/warning".to_string(),
                "The value of disk (host=a) exceeded the configured threshold (min: 1, actual: 0.5).".to_string()
            ),
            (
                "sensu.io/output_metric_thresholds/disk.a/max/warning".to_string(),
                "The value of disk (host=a) exceeded the configured threshold (max: 90, actual: 97.25).".to_string()
            ),
            ("sensu.io/output_metric_thresholds/disk.sdc.a/null-status/critical".to_string(), missing.to_string()),
            ("sensu.io/notifications/critical".to_string(), missing.to_string()),
        ]
    );
    // The same key again keeps its place and takes the later value.
    let pts = vec![
        pt("m", 5.0, 1, &[("i", "1")]),
        pt("m", 7.0, 1, &[("i", "2")]),
    ];
    let rules = json!([{"name": "m", "thresholds": [{"max": "1", "status": 2}]}]);
    let v = thresholds(&rules, &pts, 0);
    assert_eq!(v.annotations.len(), 2);
    assert_eq!(
        v.annotations[0].1,
        "The value of m exceeded the configured threshold (max: 1, actual: 7)."
    );
    assert_eq!(
        v.annotations[1].1,
        "The value of m exceeded the configured threshold (max: 1, actual: 5)."
    );
}

#[test]
fn thresholds_apply_only_to_a_passing_check_with_points() {
    let pts = vec![pt("m", 5.0, 1, &[])];
    let rules = json!([{"name": "m", "thresholds": [{"max": "1", "status": 2}]}]);
    assert_eq!(thresholds(&rules, &pts, 1), Verdict::default());
    assert_eq!(thresholds(&rules, &[], 0), Verdict::default());
    assert_eq!(thresholds(&json!([]), &pts, 0), Verdict::default());
    assert_eq!(thresholds(&json!(null), &pts, 0), Verdict::default());
    // A status-0 rule annotates but raises nothing and sends no notification.
    let v = thresholds(
        &json!([{"name": "m", "thresholds": [{"max": "1", "status": 0}]}]),
        &pts,
        0,
    );
    assert_eq!(v.status, Some(0));
    assert_eq!(v.annotations.len(), 1);
    assert_eq!(
        v.annotations[0].0,
        "sensu.io/output_metric_thresholds/m/max/ok"
    );
    // A min that is no number skips the whole entry, its max too; a bad max only itself.
    let skip = json!([{"name": "m", "thresholds": [{"min": "ten", "max": "1", "status": 2}]}]);
    assert_eq!(
        thresholds(&skip, &pts, 0),
        Verdict {
            status: Some(0),
            annotations: vec![]
        }
    );
    let skip = json!([{"name": "m", "thresholds": [{"min": "9", "max": "x", "status": 2}]}]);
    assert_eq!(thresholds(&skip, &pts, 0).status, Some(2));
    // Go's float syntax in the limits; NaN never crosses; +Inf crosses any max.
    let hex = json!([{"name": "m", "thresholds": [{"max": "0x1p2", "status": 1}]}]);
    assert_eq!(thresholds(&hex, &pts, 0).status, Some(1));
    let nan = vec![pt("m", f64::NAN, 1, &[])];
    assert_eq!(thresholds(&rules, &nan, 0).status, Some(0));
    let inf = vec![pt("m", f64::INFINITY, 1, &[])];
    let v = thresholds(&rules, &inf, 0);
    assert!(v.annotations[0].1.ends_with("(max: 1, actual: +Inf)."));
    // A null_status of 0 adds nothing for a missing metric.
    let none = json!([{"name": "absent", "thresholds": [{"max": "1", "status": 2}]}]);
    assert_eq!(
        thresholds(&none, &pts, 0),
        Verdict {
            status: Some(0),
            annotations: vec![]
        }
    );
}

#[test]
fn go_float_syntax() {
    let ok: &[(&str, f64)] = &[
        ("1", 1.0),
        ("+1.5", 1.5),
        ("-0.25", -0.25),
        (".5", 0.5),
        ("5.", 5.0),
        ("08", 8.0),
        ("1e3", 1000.0),
        ("1E-3", 0.001),
        ("1_000.000_1", 1000.0001),
        ("1e1_0", 1e10),
        ("0x1p4", 16.0),
        ("0X1.8P1", 3.0),
        ("0x_1p0", 1.0),
        ("0x.8p1", 1.0),
        ("-0x1p-2", -0.25),
        ("inf", f64::INFINITY),
        ("+Inf", f64::INFINITY),
        ("-INFINITY", f64::NEG_INFINITY),
        ("1e-400", 0.0),
        ("0x1p-1074", 5e-324),
        ("0x1p-1075", 0.0),
        ("0x1.8p-1074", 1e-323),
        ("0x1.fffffffffffff7p1023", f64::MAX),
        ("179769313486231580793728971405301e276", f64::MAX),
        ("0.30000000000000004", 0.30000000000000004),
    ];
    for &(s, want) in ok {
        assert_eq!(parse_float(s), Some(want), "{s}");
    }
    assert!(parse_float("NaN").is_some_and(f64::is_nan));
    assert!(parse_float("-0").is_some_and(|v| v == 0.0 && v.is_sign_negative()));
    let bad = [
        "",
        "+",
        "-",
        ".",
        "e5",
        "1e",
        "1e+",
        "0x",
        "0x1",
        "0x1.8",
        "0xg",
        "+nan",
        "-NaN",
        "nanx",
        "infx",
        "infin",
        "_1",
        "1_",
        "1__0",
        "1_.5",
        "1._5",
        "1_e5",
        "0x1p1024",
        "1e309",
        "0x1.fffffffffffff8p1023",
        "1.2.3",
        "1 ",
        " 1",
        "1,5",
        "٣",
        "0b1",
        "0o7",
    ];
    for s in bad {
        assert_eq!(parse_float(s), None, "{s:?}");
    }
    // Go stops reading an exponent's digits once it reaches 10000, so e200050 is e20005
    // and 0.(20000 zeros)1e200050 is 1e4, not infinity.
    let zeros = "0".repeat(20000);
    assert_eq!(parse_float(&format!("0.{zeros}1e20005")), Some(1e4));
    assert_eq!(parse_float(&format!("0.{zeros}1e200050")), Some(1e4));
    assert_eq!(parse_float(&format!("1{zeros}e-200050")), Some(1e-5));
}

#[test]
fn go_float_printing() {
    let g: &[(f64, &str)] = &[
        (0.0, "0"),
        (-0.0, "-0"),
        (1.0, "1"),
        (0.25, "0.25"),
        (100.0, "100"),
        (172.8, "172.8"),
        (123456.0, "123456"),
        (999999.0, "999999"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (1e-5, "1e-05"),
        (-2.5e-7, "-2.5e-07"),
        (1e21, "1e+21"),
        (1.5e300, "1.5e+300"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
        (f64::NAN, "NaN"),
    ];
    for &(v, want) in g {
        assert_eq!(format_g(v), want, "{v}");
    }
    let f: &[(f64, &str)] = &[
        (99999.0, "99999"),
        (0.5, "0.5"),
        (1e21, "1000000000000000000000"),
        (1e-7, "0.0000001"),
        (-3.0, "-3"),
        (f64::INFINITY, "+Inf"),
    ];
    for &(v, want) in f {
        assert_eq!(format_f(v), want, "{v}");
    }
}
