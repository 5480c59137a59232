//! One realistic check output per format, and mutated outputs that must never panic.

use super::tests::pt;
use super::tests_prometheus::{prom, show};
use super::*;
use serde_json::json;

#[test]
fn realistic_nagios_output() {
    let out = "DISK WARNING - free space: / 3326 MB (56% inode=86%); /boot 30 MB (30% inode=99%);| /=2643MB;5948;5958;0;5968 /boot=68MB;88;93;0;98 'inodes used'=14%;80;90\n";
    let p = parse(Format::NagiosPerfdata, out, 1700000000, 0);
    assert_eq!(
        p.points,
        vec![
            pt("/", 2643.0, 1700000000, &[]),
            pt("/boot", 68.0, 1700000000, &[]),
            pt("used'", 14.0, 1700000000, &[]),
        ]
    );
    // Sensu splits the quoted label at its space: "'inodes" is an item without '='.
    assert_eq!(
        p.errors,
        vec![LineError {
            line: 3,
            reason: "a perfdata item must be label=value"
        }]
    );
}

#[test]
fn realistic_graphite_output() {
    let out = "web01.cpu.user 12.50 1700000000\nweb01.cpu.system 3.1 1700000000\nweb01.load.1m;env=prod 0.42 1700000000\nweb01.disk.root.used_pct 81 1700000000\n";
    let mut p = parse(Format::GraphitePlaintext, out, 0, 0).points;
    add_tags(
        Format::GraphitePlaintext,
        &mut p,
        &json!([{"name": "dc", "value": "ams"}]),
    );
    assert_eq!(
        p,
        vec![
            pt("web01.cpu.user", 12.5, 1700000000, &[("dc", "ams")]),
            pt("web01.cpu.system", 3.1, 1700000000, &[("dc", "ams")]),
            pt(
                "web01.load.1m",
                0.42,
                1700000000,
                &[("dc", "ams"), ("env", "prod")]
            ),
            pt(
                "web01.disk.root.used_pct",
                81.0,
                1700000000,
                &[("dc", "ams")]
            ),
        ]
    );
    let rules = json!([{"name": "web01.disk.root.used_pct", "thresholds": [{"max": "80", "status": 1}, {"max": "90", "status": 2}]}]);
    assert_eq!(thresholds(&rules, &p, 0).status, Some(1));
}

#[test]
fn realistic_influx_output() {
    let out = "cpu,cpu=cpu-total,host=web01 usage_user=5.25,usage_system=1.5,usage_idle=93.25 1700000000000000000\nmem,host=web01 used_percent=43.2,available=8123456000 1700000000000000000\ndisk,host=web01,path=/var/lib/my\\ data used_percent=71 1700000000000000000\n";
    let p = parse(Format::InfluxdbLine, out, 0, 0);
    assert!(p.errors.is_empty());
    let cpu = [("cpu", "cpu-total"), ("host", "web01")];
    assert_eq!(
        p.points,
        vec![
            pt("cpu.usage_user", 5.25, 1700000000, &cpu),
            pt("cpu.usage_system", 1.5, 1700000000, &cpu),
            pt("cpu.usage_idle", 93.25, 1700000000, &cpu),
            pt("mem.used_percent", 43.2, 1700000000, &[("host", "web01")]),
            pt(
                "mem.available",
                8123456000.0,
                1700000000,
                &[("host", "web01")]
            ),
            pt(
                "disk.used_percent",
                71.0,
                1700000000,
                &[("host", "web01"), ("path", "/var/lib/my data")]
            ),
        ]
    );
}

#[test]
fn realistic_opentsdb_output() {
    let out = "sys.cpu.user 1700000000123 42.5 host=web01 cpu=0\nsys.cpu.user 1700000000123 40 host=web01 cpu=1\nsys.if.bytes_in 1700000000 1.2e9 host=web01 iface=eth0\n";
    let mut p = parse(Format::OpentsdbLine, out, 0, 0).points;
    add_tags(
        Format::OpentsdbLine,
        &mut p,
        &json!([{"name": "dc", "value": "ams"}]),
    );
    assert_eq!(
        p,
        vec![
            pt(
                "sys.cpu.user",
                42.5,
                1700000000,
                &[("host", "web01"), ("cpu", "0"), ("dc", "ams")]
            ),
            pt(
                "sys.cpu.user",
                40.0,
                1700000000,
                &[("host", "web01"), ("cpu", "1"), ("dc", "ams")]
            ),
            pt(
                "sys.if.bytes_in",
                1.2e9,
                1700000000,
                &[("host", "web01"), ("iface", "eth0"), ("dc", "ams")]
            ),
        ]
    );
}

#[test]
fn realistic_prometheus_output() {
    let text = "# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 0.42
# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 123456.78
node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 2345.5
# HELP http_request_duration_seconds Request latency.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{handler=\"/\",le=\"0.1\"} 90
http_request_duration_seconds_bucket{handler=\"/\",le=\"1\"} 99
http_request_duration_seconds_bucket{handler=\"/\",le=\"+Inf\"} 100
http_request_duration_seconds_sum{handler=\"/\"} 12.5
http_request_duration_seconds_count{handler=\"/\"} 100
# HELP rpc_duration_seconds RPC latency.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile=\"0.99\"} 0.031
rpc_duration_seconds_sum 8.5
rpc_duration_seconds_count 1000
";
    let mut p = prom(text);
    assert_eq!(p.errors, vec![]);
    add_tags(
        Format::PrometheusText,
        &mut p.points,
        &json!([{"name": "host", "value": "web01"}]),
    );
    let (h, r) = (
        "host=web01,prom_help=Request latency.,prom_type=histogram",
        "host=web01,prom_help=RPC latency.,prom_type=summary",
    );
    let cpu =
        "host=web01,mode=idle,prom_help=Seconds the CPUs spent in each mode.,prom_type=counter";
    assert_eq!(
        show(&p.points),
        [
            "node_load1{host=web01,prom_help=1m load average.,prom_type=gauge} 0.42 @1257894000"
                .to_string(),
            format!("node_cpu_seconds_total{{cpu=0,{cpu}}} 123456.78 @1257894000"),
            format!(
                "node_cpu_seconds_total{{cpu=0,{}}} 2345.5 @1257894000",
                cpu.replace("idle", "user")
            ),
            format!(
                "http_request_duration_seconds_bucket{{handler=/,{}}} 90 @1257894000",
                h.replace("host=web01,", "host=web01,le=0.1,")
            ),
            format!(
                "http_request_duration_seconds_bucket{{handler=/,{}}} 99 @1257894000",
                h.replace("host=web01,", "host=web01,le=1,")
            ),
            format!(
                "http_request_duration_seconds_bucket{{handler=/,{}}} 100 @1257894000",
                h.replace("host=web01,", "host=web01,le=+Inf,")
            ),
            format!("http_request_duration_seconds_sum{{handler=/,{h}}} 12.5 @1257894000"),
            format!("http_request_duration_seconds_count{{handler=/,{h}}} 100 @1257894000"),
            format!("rpc_duration_seconds{{{r},quantile=0.99}} 0.031 @1257894000"),
            format!("rpc_duration_seconds_sum{{{r}}} 8.5 @1257894000"),
            format!("rpc_duration_seconds_count{{{r}}} 1000 @1257894000"),
        ]
    );
    let rules = json!([{"name": "node_load1", "thresholds": [{"max": "0.4", "status": 1}]},
                       {"name": "rpc_duration_seconds", "tags": [{"name": "quantile", "value": "0.99"}],
                        "thresholds": [{"max": "0.025", "status": 2}]}]);
    let v = thresholds(&rules, &p.points, 0);
    assert_eq!(v.status, Some(2));
    assert_eq!(
        v.annotations[1].0,
        "sensu.io/output_metric_thresholds/rpc_duration_seconds.0.99/max/critical"
    );
}

/// A small deterministic generator for the mutation run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// Mutates `seed` `rounds` times with the characters the parsers care about.
fn mutants(seed: &str, rounds: usize, rng: &mut Rng) -> Vec<String> {
    const BITS: &[&str] = &[
        " ",
        "\t",
        "\n",
        "\r",
        "|",
        ";",
        "=",
        ",",
        "\\",
        "\"",
        "{",
        "}",
        "#",
        "\0",
        "_",
        ".",
        "-",
        "+",
        "e",
        "p",
        "0x",
        "1",
        "9",
        "NaN",
        "Inf",
        "é",
        "ſ",
        "# TYPE x summary\n",
        "# HELP x a\\nb\n",
        "_count",
        "_sum",
        "_bucket",
        "quantile=\"",
        "le=\"",
        "99999999999999999999",
    ];
    let mut out = Vec::new();
    let mut text: Vec<char> = seed.chars().collect();
    for _ in 0..rounds {
        let at = rng.below(text.len() + 1);
        match rng.below(4) {
            0 if !text.is_empty() => {
                let end = (at + rng.below(8)).min(text.len());
                text.drain(at.min(end)..end);
            }
            1 => {
                let piece = BITS[rng.below(BITS.len())];
                text.splice(at..at, piece.chars());
            }
            2 if !text.is_empty() => {
                let start = rng.below(text.len());
                let end = (start + rng.below(16)).min(text.len());
                let copy: Vec<char> = text[start..end].to_vec();
                text.splice(at..at, copy);
            }
            _ => text.truncate(at),
        }
        if text.len() > 4096 {
            text.truncate(4096);
        }
        out.push(text.iter().collect());
    }
    out
}

#[test]
fn mutated_outputs_never_panic() {
    let seeds = [
        "PING ok - Packet loss = 0%, RTA = 0.80 ms | percent_packet_loss=0, rta=0.80;1;2",
        "os.disk.used_bytes;GH=#4677;type=issue 2048 123456789\nmetric.value 1 123456789",
        "wea\\ ther,locat\\,ion=us-mid\\=west temperature=82,humidity=30 1465839830100400200",
        "sys.cpu.user 1356998400000 42.5 host=webserver01 cpu=0\nfoo",
    ];
    let mut rng = Rng(0x9e3779b97f4a7c15);
    for seed in seeds {
        for text in mutants(seed, 400, &mut rng) {
            for f in Format::ALL {
                let p = parse(f, &text, 1, 2);
                let mut pts = p.points;
                add_tags(f, &mut pts, &json!([{"name": "__name__", "value": "x"}]));
                let rules = json!([{"name": "x", "thresholds": [{"min": "1", "max": "2", "status": 2}], "null_status": 1}]);
                let _ = thresholds(&rules, &pts, 0);
            }
        }
    }
}

#[test]
fn mutated_exposition_never_panics() {
    let seeds = [
        "# HELP a x\\ny\n# TYPE a summary\na{q=\"1\",quantile=\"0.5\"} 1 2\na_sum 3\na_count 4\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2 1700000000000\n",
        "m{a=\"b\\\"c\",d=\"e\"} -Inf\n# TYPE g gauge_histogram\ng 1\n",
    ];
    let mut rng = Rng(0x2545f4914f6cdd1d);
    for seed in seeds {
        for text in mutants(seed, 1500, &mut rng) {
            let p = parse(Format::PrometheusText, &text, 1, i64::MAX);
            assert!(p.errors.len() <= 1);
        }
    }
}

#[test]
fn an_output_copying_a_long_help_onto_many_samples_is_cut_at_the_limit() {
    let text = format!(
        "# HELP a {}\n{}",
        "h".repeat(1 << 20),
        "a 1\n".repeat(100_000)
    );
    let p = prom(&text);
    // 64 MiB of points holds 63 copies of the 1 MiB help text, not 100 000.
    assert_eq!(p.points.len(), 63);
    assert_eq!(
        p.errors,
        vec![LineError {
            line: 100_002,
            reason: "the metric points exceed 64 MiB of names and tags; the rest is ignored"
        }]
    );
}
