//! `prometheus_text`: Sensu's `prometheus_test.go` cases, the scenarios of prometheus/common's
//! `text_parse_test.go` carried through to points, and the parser's stopping rules.

use super::tests::pt;
use super::*;
use serde_json::json;

/// Sensu's test clock.
pub(super) const NOW: i64 = 1257894000;

pub(super) fn prom(output: &str) -> Parsed {
    parse(Format::PrometheusText, output, 0, NOW)
}

/// Points as `name{tag=value,…} value @timestamp`, to compare long lists at a glance.
pub(super) fn show(points: &[Point]) -> Vec<String> {
    points
        .iter()
        .map(|p| {
            let tags: Vec<String> = p.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "{}{{{}}} {} @{}",
                p.name,
                tags.join(","),
                p.value,
                p.timestamp
            )
        })
        .collect()
}

fn err(line: usize, reason: &'static str) -> Vec<LineError> {
    vec![LineError { line, reason }]
}

#[test]
fn prometheus_as_sensu_tests_it() {
    let gc = "go_gc_duration_seconds{quantile=\"0\"} 3.3722e-05\n";
    let untyped = vec![pt(
        "go_gc_duration_seconds",
        3.3722e-05,
        NOW,
        &[("prom_type", "untyped"), ("quantile", "0")],
    )];
    assert_eq!(
        prom(gc),
        Parsed {
            points: untyped.clone(),
            errors: vec![]
        }
    );
    let summary = "# TYPE go_gc_duration_seconds summary\ngo_gc_duration_seconds{quantile=\"0\"} 3.3722e-05\ngo_gc_duration_seconds{quantile=\"0.25\"} 5.0129e-05\n";
    assert_eq!(
        prom(summary).points,
        vec![
            pt(
                "go_gc_duration_seconds",
                3.3722e-05,
                NOW,
                &[("prom_type", "summary"), ("quantile", "0")]
            ),
            pt(
                "go_gc_duration_seconds",
                5.0129e-05,
                NOW,
                &[("prom_type", "summary"), ("quantile", "0.25")]
            ),
            pt(
                "go_gc_duration_seconds_sum",
                0.0,
                NOW,
                &[("prom_type", "summary")]
            ),
            pt(
                "go_gc_duration_seconds_count",
                0.0,
                NOW,
                &[("prom_type", "summary")]
            ),
        ]
    );
    let counter = "# HELP go_memstats_alloc_bytes_total Total number of bytes allocated, even if freed.\n# TYPE go_memstats_alloc_bytes_total counter\ngo_memstats_alloc_bytes_total 4.095146016e+09\n";
    assert_eq!(
        prom(counter).points,
        vec![pt(
            "go_memstats_alloc_bytes_total",
            4.095146016e+09,
            NOW,
            &[
                (
                    "prom_help",
                    "Total number of bytes allocated, even if freed."
                ),
                ("prom_type", "counter")
            ]
        )]
    );
    // Without a final newline the last sample is lost.
    assert_eq!(
        prom("foo 1"),
        Parsed {
            points: vec![],
            errors: err(1, "unexpected end of input stream")
        }
    );
    assert_eq!(
        prom("foo{bar=\"2\"}\n"),
        Parsed {
            points: vec![],
            errors: err(1, "expected a float as the sample value")
        }
    );
    assert_eq!(prom(""), Parsed::default());
    // Sensu drops NaN samples.
    assert_eq!(
        prom("go_memstats_alloc_bytes_total NaN\n"),
        Parsed::default()
    );
}

#[test]
fn prometheus_check_tags_as_sensu_tests_them() {
    let gc = "go_gc_duration_seconds{quantile=\"0\"} 3.3722e-05\n";
    let with = |tags: Value| {
        let mut p = prom(gc).points;
        add_tags(Format::PrometheusText, &mut p, &tags);
        p
    };
    assert_eq!(
        with(json!([{"name": "instance", "value": "hostname"}])),
        vec![pt(
            "go_gc_duration_seconds",
            3.3722e-05,
            NOW,
            &[
                ("instance", "hostname"),
                ("prom_type", "untyped"),
                ("quantile", "0")
            ]
        )]
    );
    assert_eq!(with(json!([])), prom(gc).points);
    assert_eq!(
        with(json!([{"name": "foo", "value": "bar"}, {"name": "boo", "value": "baz"}]))[0].tags,
        pt(
            "",
            0.0,
            0,
            &[
                ("boo", "baz"),
                ("foo", "bar"),
                ("prom_type", "untyped"),
                ("quantile", "0")
            ]
        )
        .tags
    );
    // The check's tags replace labels of their name, and `__name__` renames the point.
    assert_eq!(
        with(
            json!([{"name": "quantile", "value": "q"}, {"name": "__name__", "value": "re\nnamed"},
                    {"name": "prom_type", "value": "mine"}])
        ),
        vec![pt(
            "renamed",
            3.3722e-05,
            NOW,
            &[("prom_type", "mine"), ("quantile", "q")]
        )]
    );
}

#[test]
fn counters_gauges_help_and_escapes() {
    let text = r#"
# A normal comment.
#
# TYPE name counter
name{labelname="val1",basename="basevalue"} NaN
name {labelname="val2",basename="base\"v\\al\nue"} 0.23 1234567890
# HELP name two-line\n doc  str\\ing

 # HELP  name2  	doc str"ing 2
  #    TYPE    name2 gauge
name2{labelname="val2"	,basename   =   "basevalue2"		} +Inf 54321
name2{ labelname = "val1" , }-Inf
"#;
    let p = prom(text);
    assert_eq!(p.errors, vec![]);
    let help = "two-line\n doc  str\\ing";
    let help2 = "doc str\"ing 2";
    assert_eq!(
        p.points,
        vec![
            pt(
                "name",
                0.23,
                1234567,
                &[
                    ("basename", "base\"v\\al\nue"),
                    ("labelname", "val2"),
                    ("prom_help", help),
                    ("prom_type", "counter")
                ]
            ),
            pt(
                "name2",
                f64::INFINITY,
                54,
                &[
                    ("basename", "basevalue2"),
                    ("labelname", "val2"),
                    ("prom_help", help2),
                    ("prom_type", "gauge")
                ]
            ),
            pt(
                "name2",
                f64::NEG_INFINITY,
                NOW,
                &[
                    ("labelname", "val1"),
                    ("prom_help", help2),
                    ("prom_type", "gauge")
                ]
            ),
        ]
    );
}

#[test]
fn the_evil_summary() {
    let text = r#"
# TYPE my_summary summary
my_summary{n1="val1",quantile="0.5"} 110
decoy -1 -2
my_summary{n1="val1",quantile="0.9"} 140 1
my_summary_count{n1="val1"} 42
# Latest timestamp wins in case of a summary.
my_summary_sum{n1="val1"} 4711 2
fake_sum{n1="val1"} 2001
# TYPE another_summary summary
another_summary_count{n2="val2",n1="val1"} 20
my_summary_count{n2="val2",n1="val1"} 5 5
another_summary{n1="val1",n2="val2",quantile=".3"} -1.2
my_summary_sum{n1="val2"} 08 15
my_summary{n1="val3", quantile="0.2"} 4711
  my_summary{n1="val1",n2="val2",quantile="-12.34",} NaN
# some
# funny comments
# HELP 
# HELP
# HELP my_summary
# HELP my_summary 
"#;
    let p = prom(text);
    assert_eq!(p.errors, vec![]);
    assert_eq!(
        show(&p.points),
        [
            "my_summary{n1=val1,prom_type=summary,quantile=0.5} 110 @0",
            "my_summary{n1=val1,prom_type=summary,quantile=0.9} 140 @0",
            "my_summary_sum{n1=val1,prom_type=summary} 4711 @0",
            "my_summary_count{n1=val1,prom_type=summary} 42 @0",
            "my_summary_sum{n1=val1,n2=val2,prom_type=summary} 0 @0",
            "my_summary_count{n1=val1,n2=val2,prom_type=summary} 5 @0",
            "my_summary_sum{n1=val2,prom_type=summary} 8 @0",
            "my_summary_count{n1=val2,prom_type=summary} 0 @0",
            "my_summary{n1=val3,prom_type=summary,quantile=0.2} 4711 @1257894000",
            "my_summary_sum{n1=val3,prom_type=summary} 0 @1257894000",
            "my_summary_count{n1=val3,prom_type=summary} 0 @1257894000",
            "decoy{prom_type=untyped} -1 @0",
            "fake_sum{n1=val1,prom_type=untyped} 2001 @1257894000",
            "another_summary{n1=val1,n2=val2,prom_type=summary,quantile=0.3} -1.2 @1257894000",
            "another_summary_sum{n1=val1,n2=val2,prom_type=summary} 0 @1257894000",
            "another_summary_count{n1=val1,n2=val2,prom_type=summary} 20 @1257894000",
        ]
    );
}

#[test]
fn histograms() {
    let text = r#"
# HELP request_duration_microseconds The response latency.
# TYPE request_duration_microseconds histogram
request_duration_microseconds_bucket{le="100"} 123
request_duration_microseconds_bucket{le="120"} 412
request_duration_microseconds_bucket{le="144"} 592
request_duration_microseconds_bucket{le="172.8"} 1524
request_duration_microseconds_bucket{le="+Inf"} 2693
request_duration_microseconds_sum 1.7560473e+06
request_duration_microseconds_count 2693
"#;
    let h = "prom_help=The response latency.,prom_type=histogram";
    assert_eq!(
        show(&prom(text).points),
        [
            format!("request_duration_microseconds_bucket{{le=100,{h}}} 123 @{NOW}"),
            format!("request_duration_microseconds_bucket{{le=120,{h}}} 412 @{NOW}"),
            format!("request_duration_microseconds_bucket{{le=144,{h}}} 592 @{NOW}"),
            format!("request_duration_microseconds_bucket{{le=172.8,{h}}} 1524 @{NOW}"),
            format!("request_duration_microseconds_bucket{{le=+Inf,{h}}} 2693 @{NOW}"),
            format!("request_duration_microseconds_sum{{{h}}} 1756047.3 @{NOW}"),
            format!("request_duration_microseconds_count{{{h}}} 2693 @{NOW}"),
        ]
    );
    // No +Inf bucket: one is added with the count. `le` is rewritten as Go prints floats;
    // counts are whole numbers (fractions cut, negatives 0).
    let text = "# TYPE h histogram\nh_bucket{le=\"1e6\",x=\"y\"} 3.9\nh_bucket{x=\"y\",le=\"0.50\"} -1\nh_count{x=\"y\"} 4\nh_sum{x=\"y\"} -1.5\n";
    assert_eq!(
        show(&prom(text).points),
        [
            "h_bucket{le=1e+06,prom_type=histogram,x=y} 3 @1257894000",
            "h_bucket{le=0.5,prom_type=histogram,x=y} 0 @1257894000",
            "h_sum{prom_type=histogram,x=y} -1.5 @1257894000",
            "h_count{prom_type=histogram,x=y} 4 @1257894000",
            "h_bucket{le=+Inf,prom_type=histogram,x=y} 4 @1257894000",
        ]
    );
}

#[test]
fn parse_errors_stop_the_parse_where_go_stops() {
    let none: &[(&str, usize, &str)] = &[
        ("metric{label=\"\\t\"} 3.14\n", 1, "invalid escape sequence"),
        (
            "\nmetric{label=\"new\nline\"} 3.14\n",
            2,
            "label value contains an unescaped new-line",
        ),
        ("metric{@=\"bla\"} 3.14\n", 1, "invalid label name"),
        (
            "metric{__name__=\"bla\"} 3.14\n",
            1,
            "label name \"__name__\" is reserved",
        ),
        (
            "metric{label+=\"bla\"} 3.14\n",
            1,
            "expected '=' after a label name",
        ),
        (
            "metric{label=bla} 3.14\n",
            1,
            "expected '\"' at the start of a label value",
        ),
        (
            "\n# TYPE metric summary\nmetric{quantile=\"bla\"} 3.14\n",
            3,
            "expected a float as the value of the 'quantile' label",
        ),
        (
            "metric{label=\"bla\"+} 3.14\n",
            1,
            "unexpected end of a label value",
        ),
        (
            "metric{label=\"bla\"} blubb\n",
            1,
            "expected a float as the sample value",
        ),
        (
            "\n# HELP metric one\n# HELP metric two\n",
            3,
            "second HELP line for a metric name",
        ),
        (
            "\n# TYPE metric counter\n# TYPE metric untyped\n",
            3,
            "second TYPE line for a metric name, or TYPE reported after samples",
        ),
        ("\n# TYPE metric bla\n", 2, "unknown metric type"),
        ("\n# TYPE met-ric\n", 2, "invalid metric name in comment"),
        (
            "@invalidmetric{label=\"bla\"} 3.14 2\n",
            1,
            "invalid metric name",
        ),
        ("{label=\"bla\"} 3.14 2\n", 1, "invalid metric name"),
        (
            "\n# TYPE metric histogram\nmetric_bucket{le=\"bla\"} 3.14\n",
            3,
            "expected a float as the value of the 'le' label",
        ),
        (
            "\n# TYPE metric histogram\nmetric_bucket{le=\"0x1p-3\"} 3.14\n",
            3,
            "expected a float as the value of the 'le' label",
        ),
        (
            "\n# TYPE metric summary\nmetric{quantile=\"0x1p-3\"} 3.14\n",
            3,
            "expected a float as the value of the 'quantile' label",
        ),
        (
            "metric{label=\"bla\",label=\"bla\"} 3.14\n",
            1,
            "duplicate label names for a metric",
        ),
        ("# HELP m bad \\t escape\n", 1, "invalid escape sequence"),
    ];
    for &(text, line, reason) in none {
        assert_eq!(
            prom(text),
            Parsed {
                points: vec![],
                errors: err(line, reason)
            },
            "{text:?}"
        );
    }
    // Numbers Go reads but this parser refuses: underscores, hex, base prefixes.
    for v in [
        "1_2", "0x1p-3", "0x1P-3", "0B1", "0O1", "0X1", "0x1", "0b1", "0o1",
    ] {
        let p = prom(&format!("foo {v}\n"));
        assert_eq!(
            p.errors,
            err(1, "expected a float as the sample value"),
            "{v}"
        );
        assert!(p.points.is_empty());
    }
    // What came before the error stays, and so does a sample whose value was read.
    let bla = pt("bla", 3.25, NOW, &[("prom_type", "untyped")]);
    assert_eq!(
        prom("\nbla 3.25\nblubber 42"),
        Parsed {
            points: vec![bla.clone()],
            errors: err(3, "unexpected end of input stream")
        }
    );
    let metric = |ts| {
        pt(
            "metric",
            3.25,
            ts,
            &[("label", "bla"), ("prom_type", "untyped")],
        )
    };
    assert_eq!(
        prom("metric{label=\"bla\"} 3.25 2.72\nnext 1\n"),
        Parsed {
            points: vec![metric(NOW)],
            errors: err(1, "expected an integer as the timestamp")
        }
    );
    assert_eq!(
        prom("metric{label=\"bla\"} 3.25 2000 3\n"),
        Parsed {
            points: vec![metric(2)],
            errors: err(1, "spurious string after the timestamp")
        }
    );
    let p = prom("\nmetric 4.12\n# TYPE metric counter\n");
    assert_eq!(
        p.errors,
        err(
            3,
            "second TYPE line for a metric name, or TYPE reported after samples"
        )
    );
    assert_eq!(
        p.points,
        vec![pt("metric", 4.12, NOW, &[("prom_type", "untyped")])]
    );
}

#[test]
fn the_parsers_stopping_rules() {
    // A blank after the value reads as a missing timestamp: the rest is lost.
    let p = prom("a 1 \nb 2\n");
    assert_eq!(show(&p.points), ["a{prom_type=untyped} 1 @1257894000"]);
    assert_eq!(p.errors, err(1, "expected an integer as the timestamp"));
    // The TYPE word is the rest of the line, trailing blanks included.
    assert_eq!(
        prom("# TYPE a counter \n").errors,
        err(1, "unknown metric type")
    );
    // CRLF output: "1\r" is no float.
    assert_eq!(
        prom("a 1\r\nb 2\r\n").errors,
        err(1, "expected a float as the sample value")
    );
    // A timestamp cut off by the end of the output is not kept; the value is.
    let p = prom("a 1 1700000000123");
    assert_eq!(show(&p.points), ["a{prom_type=untyped} 1 @1257894000"]);
    assert_eq!(p.errors, err(1, "unexpected end of input stream"));
    // A HELP or TYPE cut off by the end of the output does not count either.
    assert_eq!(
        prom("a 1\n# HELP a text").points[0].tags,
        pt("", 0.0, 0, &[("prom_type", "untyped")]).tags
    );
    // Timestamps are milliseconds, cut to seconds toward zero, wrapping as Go's int64 does.
    let ts = |t: &str| prom(&format!("a 1 {t}\n")).points[0].timestamp;
    assert_eq!(ts("1700000000123"), 1700000000);
    assert_eq!(ts("-1500"), -1);
    assert_eq!(ts("+999"), 0);
    assert_eq!(ts("9223372036854775807"), 0);
    assert_eq!(ts("9223372036854"), 9223372036);
    assert_eq!(ts("9223372036855"), -9223372036);
}

#[test]
fn types_and_families() {
    // Go upper-cases the type with Unicode rules, and drops backslashes from it.
    let p = prom("# TYPE s ſummary\ns{quantile=\"0.5\"} 1\n# TYPE c coun\\ter\nc 2\n# TYPE h hıstogram\nh_count 3\n# TYPE k gauge2\n");
    assert_eq!(p.errors, err(7, "unknown metric type"));
    assert_eq!(
        show(&p.points),
        [
            "s{prom_type=summary,quantile=0.5} 1 @1257894000",
            "s_sum{prom_type=summary} 0 @1257894000",
            "s_count{prom_type=summary} 0 @1257894000",
            "c{prom_type=counter} 2 @1257894000",
            "h_sum{prom_type=histogram} 0 @1257894000",
            "h_count{prom_type=histogram} 3 @1257894000",
            "h_bucket{le=+Inf,prom_type=histogram} 3 @1257894000",
        ]
    );
    // gauge_histogram is accepted and yields nothing; its _bucket lines are their own family.
    let p = prom("# TYPE g gauge_histogram\ng_bucket{le=\"1\"} 2\ng 3\nu 4\n");
    assert_eq!(p.errors, vec![]);
    assert_eq!(
        show(&p.points),
        [
            "g_bucket{le=1,prom_type=untyped} 2 @1257894000",
            "u{prom_type=untyped} 4 @1257894000"
        ]
    );
    // _count and _sum join only a summary or histogram of that name; HELP can name them.
    let p = prom("# TYPE s summary\n# HELP s_sum About s.\ns_sum 2\nx_count 3\n# TYPE g gauge\ng_sum 4\ns{quantile=\"NaN\"} 5\n");
    assert_eq!(p.errors, vec![]);
    assert_eq!(
        show(&p.points),
        [
            "s_sum{prom_help=About s.,prom_type=summary} 2 @1257894000",
            "s_count{prom_help=About s.,prom_type=summary} 0 @1257894000",
            "x_count{prom_type=untyped} 3 @1257894000",
            "g_sum{prom_type=untyped} 4 @1257894000",
        ]
    );
    // Plain samples with the same labels are all kept; a prom_type label is overwritten.
    let p = prom("m{prom_type=\"x\",a=\"b\"} 1\nm{a=\"b\", prom_type=\"x\"} 2\n  \n\t\nm{} 3\nm{a=\"x\\\"y\\\\z\\nw\",} 4\n");
    assert_eq!(p.errors, vec![]);
    assert_eq!(
        show(&p.points),
        [
            "m{a=b,prom_type=untyped} 1 @1257894000",
            "m{a=b,prom_type=untyped} 2 @1257894000",
            "m{prom_type=untyped} 3 @1257894000",
            "m{a=x\"y\\z\nw,prom_type=untyped} 4 @1257894000",
        ]
    );
}
