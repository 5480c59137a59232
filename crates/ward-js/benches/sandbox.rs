//! What Ward's JavaScript costs on this machine: `cargo bench -p ward-js`. Prints, for a
//! 3 KB Sensu event, the cost of a filter (the event parsed, then each expression), of each
//! expression on an already parsed event, and of a JavaScript mutator run.

use std::time::{Duration, Instant};
use ward_js::{run_mutator, with_sandbox, Limits};

fn event(i: usize) -> String {
    let history: Vec<String> = (0..21)
        .map(|k| {
            format!(
                "{{\"status\":{},\"executed\":{}}}",
                k % 3,
                1_700_000_000 + k
            )
        })
        .collect();
    format!(
        r#"{{"timestamp":{},"entity":{{"name":"web-{i}","namespace":"default","labels":{{"region":"us-west-1","env":"production"}},"annotations":{{}},"entity_class":"agent","subscriptions":["linux","web","entity:web-{i}"],"system":{{"hostname":"web-{i}","os":"linux","platform":"debian","platform_family":"debian","platform_version":"12","arch":"amd64","network":{{"interfaces":[{{"name":"lo","addresses":["127.0.0.1/8","::1/128"]}},{{"name":"eth0","mac":"52:54:00:12:34:56","addresses":["10.0.0.{}/24"]}}]}}}},"last_seen":1700000000}},"check":{{"name":"http","namespace":"default","labels":{{}},"annotations":{{}},"command":"check-http -u https://example.com","interval":60,"subscriptions":["web"],"handlers":["pager"],"status":2,"output":"HTTP CRITICAL: connection refused {}","executed":1700000000,"issued":1700000000,"duration":0.012,"history":[{}],"occurrences":{},"occurrences_watermark":3,"state":"failing","total_state_change":12,"last_ok":1699990000}},"is_incident":true,"is_resolution":false,"has_check":true,"has_metrics":false,"is_silenced":false}}"#,
        1_700_000_000 + i,
        i % 250,
        "x".repeat(1200),
        history.join(","),
        i % 5 + 1
    )
}

fn per_op(n: usize, mut f: impl FnMut(usize)) -> Duration {
    let mut runs = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        for i in 0..n {
            f(i);
        }
        runs.push(t.elapsed() / n as u32);
    }
    runs.sort();
    runs[2]
}

fn main() {
    let exprs: Vec<String> = [
        "event.check.occurrences == 1",
        "event.entity.labels.region == 'us-west-1' && event.check.status != 0",
        "hour(event.timestamp) >= 9 && weekday(event.timestamp) < 6",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let events: Vec<String> = (0..1000).map(event).collect();
    println!("event JSON: {} bytes", events[0].len());
    let limits = Limits::default();
    let n = 20_000;
    let filter = per_op(n, |i| {
        let r = with_sandbox(limits, |s| s.predicates("event", &exprs, &events[i % 1000])).unwrap();
        assert!(r.iter().all(|x| x.is_ok()));
    });
    println!(
        "a filter of 3 expressions over a new event (parse + 3 calls): {:.1} us",
        filter.as_secs_f64() * 1e6
    );
    for x in &exprs {
        // A filter of one expression, and of the same expression ten times: the
        // difference is nine evaluations on a parsed event.
        let ten: Vec<String> = std::iter::repeat_n(x.clone(), 10).collect();
        let time = |list: &[String]| {
            per_op(n, |i| {
                let r = with_sandbox(limits, |s| s.predicates("event", list, &events[i % 1000]))
                    .unwrap();
                assert!(r.iter().all(|x| x.is_ok()));
            })
        };
        let (t1, t10) = (time(std::slice::from_ref(x)), time(&ten));
        let each = t10.saturating_sub(t1).as_secs_f64() * 1e6 / 9.0;
        println!(
            "a filter of one expression: {:.1} us; each expression on a parsed event: {each:.2} us  {x}",
            t1.as_secs_f64() * 1e6
        );
    }
    let m = per_op(2_000, |i| {
        run_mutator(
            "return JSON.stringify({entity: event.entity.name, status: event.check.status})",
            &events[i % 1000],
            &[],
            Duration::from_millis(100),
            64 << 20,
        )
        .unwrap();
    });
    println!(
        "a JavaScript mutator run (parse, call, stringify, reset): {:.1} us",
        m.as_secs_f64() * 1e6
    );
}
