//! The cases of Sensu Go's `agent/transformers/*_test.go` for nagios, graphite, influx and
//! opentsdb (same inputs, same expected points), and malformed input for each.

use super::*;
use serde_json::json;

pub(super) fn pt(name: &str, value: f64, timestamp: i64, tags: &[(&str, &str)]) -> Point {
    Point {
        name: name.into(),
        value,
        timestamp,
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn points(format: Format, output: &str) -> Vec<Point> {
    parse(format, output, 12345, 999).points
}

fn tagged(format: Format, output: &str, tags: Value) -> Vec<Point> {
    let mut p = parse(format, output, 12345, 999).points;
    add_tags(format, &mut p, &tags);
    p
}

#[test]
fn formats_have_sensus_names() {
    for f in Format::ALL {
        assert_eq!(Format::from_name(f.name()), Some(f));
    }
    assert_eq!(Format::InfluxdbLine.name(), "influxdb_line");
    assert_eq!(
        Format::from_name("prometheus_text"),
        Some(Format::PrometheusText)
    );
    assert_eq!(Format::from_name("not_a_format"), None);
    assert_eq!(Format::from_name("Graphite_Plaintext"), None);
}

#[test]
fn nagios_as_sensu_tests_it() {
    let n = Format::NagiosPerfdata;
    let p = parse(n, "PING ok - Packet loss = 0%, RTA = 0.80 ms", 1, 2);
    assert!(p.points.is_empty());
    assert_eq!(p.errors.len(), 1);
    let loss = vec![pt("percent_packet_loss", 0.0, 12345, &[])];
    assert_eq!(
        points(n, "PING ok - Packet loss = 0% | percent_packet_loss=0"),
        loss
    );
    assert_eq!(
        points(n, "PING ok - Packet loss = 0% | percent_packet_loss=0\n"),
        loss
    );
    let two = "PING ok - Packet loss = 0%, RTA = 0.80 ms | percent_packet_loss=0, rta=0.80";
    assert_eq!(
        points(n, two),
        vec![
            pt("percent_packet_loss", 0.0, 12345, &[]),
            pt("rta", 0.8, 12345, &[])
        ]
    );
    assert_eq!(
        tagged(
            n,
            two,
            json!([{"name": "foo", "value": "bar"}, {"name": "boo", "value": "baz"}])
        ),
        vec![
            pt(
                "percent_packet_loss",
                0.0,
                12345,
                &[("foo", "bar"), ("boo", "baz")]
            ),
            pt("rta", 0.8, 12345, &[("foo", "bar"), ("boo", "baz")]),
        ]
    );
    assert_eq!(tagged(n, two, json!([])), points(n, two));
    // GH-2511: a bare word among the perfdata is skipped, the rest kept.
    let p = parse(
        n,
        "PING ok - 0%, RTA = 0.80 ms | percent_packet_loss=0, foo",
        12345,
        0,
    );
    assert_eq!(p.points, loss);
    assert_eq!(
        p.errors,
        vec![LineError {
            line: 2,
            reason: "a perfdata item must be label=value"
        }]
    );
    assert_eq!(
        points(
            n,
            "PING ok - Packet loss = 0% foo | percent_packet_loss=0 foo"
        ),
        loss
    );
    assert!(points(n, "PING ok - 0%, RTA = 0.80 ms | percent_packet_loss").is_empty());
    assert!(points(n, "PING ok - 0%, RTA = 0.80 ms | percent_packet_loss=a").is_empty());
    // Sensu bug #2021: thresholds after ';' and a trailing space.
    let load = "CRITICAL - load average: 0.01, 0.04, 0.05|load1=0.010;0.010;0.010;0; load5=0.040;0.010;0.010;0; load15=0.050;0.010;0.010;0; \n";
    assert_eq!(
        points(n, load),
        vec![
            pt("load1", 0.01, 12345, &[]),
            pt("load5", 0.04, 12345, &[]),
            pt("load15", 0.05, 12345, &[]),
        ]
    );
}

#[test]
fn nagios_edge_cases() {
    let n = Format::NagiosPerfdata;
    // Two '|' (Nagios' long-output perfdata) is not read at all.
    assert!(points(n, "OK | a=1\nmore | b=2").is_empty());
    // The value keeps only '-', digits and '.': units go, and so do exponents.
    assert_eq!(points(n, "x | t=-1.5C;0 u=2e3 v=5%")[0].value, -1.5);
    assert_eq!(points(n, "x | u=2e3")[0].value, 23.0);
    // Numbers too large for f64 are rejected, as Go's ParseFloat rejects them.
    let huge = format!("x | big=1{}", "0".repeat(400));
    assert!(points(n, &huge).is_empty());
    for bad in [
        "x | =",
        "x | a=-",
        "x | a=1.2.3",
        "x | a=b=1",
        "x | a=--1",
        "x | a=.",
    ] {
        assert!(points(n, bad).is_empty(), "{bad}");
    }
    assert_eq!(points(n, "x | =5"), vec![pt("", 5.0, 12345, &[])]);
    // Items are split on single spaces: a tab keeps two items together.
    assert!(points(n, "x | a=1\tb=2").is_empty());
    assert_eq!(points(n, "x |   a=1    b=2  ").len(), 2);
}

#[test]
fn graphite_as_sensu_tests_it() {
    let g = Format::GraphitePlaintext;
    let one = vec![pt("metric.value", 1.0, 123456789, &[])];
    assert_eq!(points(g, "metric.value 1 123456789"), one);
    assert_eq!(points(g, "metric.value 1 123456789\n"), one);
    assert_eq!(
        points(g, "metric.value 1 123456789\nmetric.value 0 0"),
        vec![
            pt("metric.value", 1.0, 123456789, &[]),
            pt("metric.value", 0.0, 0, &[])
        ]
    );
    let p = parse(g, "metric.value 1 123456789\nfoo", 0, 0);
    assert_eq!(p.points, one);
    assert_eq!(p.errors.len(), 1);
    assert_eq!(p.errors[0].line, 2);
    assert_eq!(parse(g, "", 0, 0), Parsed::default());
    for bad in [
        "foo bar",
        "metric.value one 123456789",
        "metric.value 1 noon",
    ] {
        assert!(points(g, bad).is_empty(), "{bad}");
    }
    assert_eq!(
        points(g, "os.disk.used_bytes;GH=#4677;type=issue 2048 123456789"),
        vec![pt(
            "os.disk.used_bytes",
            2048.0,
            123456789,
            &[("GH", "#4677"), ("type", "issue")]
        )]
    );
    let host = json!([{"name": "instance", "value": "hostname"}]);
    assert_eq!(
        tagged(g, "metric.value 1 123456789", host.clone()),
        vec![pt(
            "metric.value",
            1.0,
            123456789,
            &[("instance", "hostname")]
        )]
    );
    assert_eq!(
        tagged(
            g,
            "metric.value 1 123456789",
            json!([{"name": "", "value": ""}])
        ),
        vec![pt("metric.value", 1.0, 123456789, &[("", "")])]
    );
    // The check's tags come before the line's.
    assert_eq!(
        tagged(g, "m;a=1 1 2\nm;b=2 3 4", host),
        vec![
            pt("m", 1.0, 2, &[("instance", "hostname"), ("a", "1")]),
            pt("m", 3.0, 4, &[("instance", "hostname"), ("b", "2")]),
        ]
    );
}

#[test]
fn graphite_edge_cases() {
    let g = Format::GraphitePlaintext;
    for bad in [
        "m;a 1 2",
        "m; 1 2",
        "m;a=b=c 1 2",
        "m  1 2",
        "m 1 2 3",
        "m 1 2.5",
        "m 1 0x10",
    ] {
        assert!(points(g, bad).is_empty(), "{bad}");
    }
    assert_eq!(points(g, "m;= 1 2"), vec![pt("m", 1.0, 2, &[("", "")])]);
    // Go's float syntax: underscores, hex with a binary exponent, infinities.
    let values: Vec<f64> = points(g, "a 1_000 1\nb 0x1p4 1\nc -Inf 1\nd +5 +7")
        .iter()
        .map(|p| p.value)
        .collect();
    assert_eq!(values, vec![1000.0, 16.0, f64::NEG_INFINITY, 5.0]);
    assert!(points(g, "a NaN 1")[0].value.is_nan());
    // CRLF line ends, surrounding blank lines; a blank line inside is an error.
    let p = parse(g, "\n\n a 1 2\r\n\r\nb 3 4\r\n\n", 0, 0);
    assert_eq!(p.points, vec![pt("a", 1.0, 2, &[]), pt("b", 3.0, 4, &[])]);
    assert_eq!(p.errors.len(), 1);
}

#[test]
fn a_line_too_long_for_gos_scanner_ends_the_reading() {
    let g = Format::GraphitePlaintext;
    let fits = format!("a 1 2\n{} 1 2\nc 3 4", "b".repeat(65535 - 4));
    assert_eq!(points(g, &fits).len(), 3);
    let long = format!("a 1 2\n{} 1 2\nc 3 4", "b".repeat(65535 - 3));
    let p = parse(g, &long, 0, 0);
    assert_eq!(p.points, vec![pt("a", 1.0, 2, &[])]);
    assert_eq!(p.errors.len(), 1);
    assert_eq!(p.errors[0].line, 2);
    // The '\r' of a CRLF line counts; the '\n' does not.
    let crlf = format!("{} 1 2\r\nc 3 4", "b".repeat(65535 - 5));
    assert_eq!(points(g, &crlf).len(), 2);
    let crlf = format!("{} 1 2\r\nc 3 4", "b".repeat(65535 - 4));
    assert!(points(g, &crlf).is_empty());
}

#[test]
fn influx_as_sensu_tests_it() {
    let i = Format::InfluxdbLine;
    let weather =
        "weather,location=us-midwest,season=summer temperature=82,humidity=30 1465839830100400200";
    let tags = [("location", "us-midwest"), ("season", "summer")];
    let both = vec![
        pt("weather.temperature", 82.0, 1465839830, &tags),
        pt("weather.humidity", 30.0, 1465839830, &tags),
    ];
    assert_eq!(points(i, weather), both);
    let mut two = both.clone();
    two.push(pt("weather.temperature", 82.0, 1465839830, &[]));
    assert_eq!(
        points(
            i,
            &format!("{weather}\nweather temperature=82 1465839830100400200\n")
        ),
        two
    );
    assert_eq!(points(i, &format!("{weather}\nfoo\n")), both);
    assert_eq!(
        points(
            i,
            "weather temperature=82,humidity=30 1465839830100400200\nfoo"
        ),
        vec![
            pt("weather.temperature", 82.0, 1465839830, &[]),
            pt("weather.humidity", 30.0, 1465839830, &[]),
        ]
    );
    let escaped = "wea\\ ther,locat\\,ion=us-mid\\=west,sea\"son=sum\\\\mer te\\ mp\\,er\\=at\"ure=82,h\\ um\\,id\\=it\"y=30 1465839830100400200\nw\\ e\\,a\\=t\"her te\\ mp\\,er\\=at\"ure=82 1465839830100400200\n";
    let tags = [("locat,ion", "us-mid=west"), ("sea\"son", "sum\\mer")];
    assert_eq!(
        points(i, escaped),
        vec![
            pt("wea ther.te mp,er=at\"ure", 82.0, 1465839830, &tags),
            pt("wea ther.h um,id=it\"y", 30.0, 1465839830, &tags),
            pt("w e,a=t\"her.te mp,er=at\"ure", 82.0, 1465839830, &[]),
        ]
    );
    assert_eq!(
        points(i, "weather temperature=82"),
        vec![pt("weather.temperature", 82.0, 999, &[])]
    );
    assert_eq!(
        points(i, "metric value=0 0\n"),
        vec![pt("metric.value", 0.0, 0, &[])]
    );
    for bad in [
        "weather temperature=82 12345 blah",
        "weather,location temperature= 1465839830100400200",
        "",
        "foo bar baz",
    ] {
        assert!(points(i, bad).is_empty(), "{bad}");
    }
    let host = json!([{"name": "instance", "value": "hostname"}]);
    let tags = [
        ("location", "us-midwest"),
        ("season", "summer"),
        ("instance", "hostname"),
    ];
    assert_eq!(
        tagged(i, weather, host),
        vec![
            pt("weather.temperature", 82.0, 1465839830, &tags),
            pt("weather.humidity", 30.0, 1465839830, &tags),
        ]
    );
    assert_eq!(tagged(i, weather, json!([])), both);
}

#[test]
fn influx_edge_cases() {
    let i = Format::InfluxdbLine;
    // Integer, string and boolean fields are not floats: the whole line goes.
    for bad in [
        "m a=82i",
        "m a=\"x\"",
        "m a=true",
        "m a=1,b=2i 5",
        "m,t a=1",
        "m a=1 1.5",
        "m a=1 12345678x9",
    ] {
        assert!(points(i, bad).is_empty(), "{bad}");
    }
    // Timestamps: the first 10 characters, whatever the precision.
    assert_eq!(points(i, "m a=1 1700000000123")[0].timestamp, 1700000000);
    assert_eq!(points(i, "m a=1 17")[0].timestamp, 17);
    assert_eq!(points(i, "m a=1 -1700000000123")[0].timestamp, -170000000);
    assert!(points(i, "m a=1 17000000é0").is_empty());
    // A NUL is taken for an escaped separator, as Sensu's masking takes it.
    assert_eq!(points(i, "a\0b c=1 5"), vec![pt("a b.c", 1.0, 5, &[])]);
    // A lone backslash disappears from names, not from field values; `\\` is one.
    assert_eq!(
        points(i, "m\\x,t=v\\\\w a\\b=2 5"),
        vec![pt("mx.ab", 2.0, 5, &[("t", "v\\w")])]
    );
    assert!(points(i, "m a=\\2 5").is_empty());
    // `\\ ` still escapes the space: one argument short, so no point.
    assert!(points(i, "m,t=v\\\\ a=1 5").is_empty());
    assert!(points(i, ",x a=1 5").is_empty());
    assert_eq!(points(i, ",=x a=1 5"), vec![pt(".a", 1.0, 5, &[("", "x")])]);
    assert_eq!(points(i, ",= a=1 5"), vec![pt(".a", 1.0, 5, &[("", "")])]);
}

#[test]
fn opentsdb_as_sensu_tests_it() {
    let o = Format::OpentsdbLine;
    let web = vec![pt(
        "sys.cpu.user",
        42.5,
        1356998400,
        &[("host", "webserver01")],
    )];
    assert_eq!(
        points(o, "sys.cpu.user 1356998400 42.5 host=webserver01"),
        web
    );
    let two = vec![pt(
        "sys.cpu.user",
        42.5,
        1356998400,
        &[("host", "webserver01"), ("cpu", "0")],
    )];
    assert_eq!(
        points(o, "sys.cpu.user 1356998400 42.5 host=webserver01 cpu=0\n"),
        two
    );
    assert_eq!(
        points(
            o,
            "sys.cpu.user 1356998400 42.5 host=webserver01 cpu=0\nfoo"
        ),
        two
    );
    assert_eq!(
        points(o, "sys.cpu.user 1356998400000 42.5 host=webserver01"),
        web
    );
    assert_eq!(
        points(o, "sys.cpu.user 1356998400000 42.5 host=webserver01 cpu=0"),
        two
    );
    for bad in [
        "sys.cpu.user 1356998400000 42.5",
        "sys.cpu.user foo 42.5 host=webserver01",
        "sys.cpu.user 1356998400 foo host=webserver01",
        "sys.cpu.user 1356998400 42.5 host",
    ] {
        let p = parse(o, bad, 0, 0);
        assert!(p.points.is_empty(), "{bad}");
        assert_eq!(p.errors.len(), 1, "{bad}");
    }
    let tags = json!([{"name": "foo", "value": "bar"}, {"name": "boo", "value": "baz"}]);
    assert_eq!(
        tagged(o, "sys.cpu.user 1356998400 42.5 host=webserver01", tags),
        vec![pt(
            "sys.cpu.user",
            42.5,
            1356998400,
            &[("host", "webserver01"), ("foo", "bar"), ("boo", "baz")]
        )]
    );
    assert_eq!(
        tagged(
            o,
            "sys.cpu.user 1356998400 42.5 host=webserver01",
            json!([])
        ),
        web
    );
}

#[test]
fn opentsdb_edge_cases() {
    let o = Format::OpentsdbLine;
    // Only a timestamp written with exactly 13 characters is milliseconds.
    assert_eq!(
        points(o, "m 17000000001234 1 a=b")[0].timestamp,
        17000000001234
    );
    assert_eq!(points(o, "m -100000000000 1 a=b")[0].timestamp, -100000000);
    assert_eq!(points(o, "m +100000000000 1 a=b")[0].timestamp, 100000000);
    // An empty field (two spaces) is a bad tag.
    assert!(points(o, "m 1 1 a=b  c=d").is_empty());
    assert!(points(o, "m 1 1 a=b c=d=e").is_empty());
    assert_eq!(
        points(o, "m 1 1 =")[0].tags,
        vec![(String::new(), String::new())]
    );
}

#[test]
fn unknown_tag_entries_are_read_as_go_reads_them() {
    let mut p = vec![pt("m", 1.0, 2, &[])];
    add_tags(
        Format::NagiosPerfdata,
        &mut p,
        &json!([{"name": "a"}, "junk", {"value": 3, "name": "b"}]),
    );
    assert_eq!(p, vec![pt("m", 1.0, 2, &[("a", ""), ("b", "")])]);
    add_tags(Format::NagiosPerfdata, &mut p, &json!({"name": "x"}));
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].tags.len(), 2);
}
