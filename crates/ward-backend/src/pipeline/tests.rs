use super::*;
use serde_json::json;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ward_store::Store;
use ward_testkit::TempDir;

/// Stores a handler as the store holds it: field types checked, the rules between fields
/// not (so that one an earlier version accepted, a tcp handler without a socket, can be).
fn handler(store: &Store, name: &str, spec: Value) {
    let doc = serde_json::from_value(json!({
        "type": "Handler", "api_version": "core/v2",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }))
    .unwrap();
    let r = ward_types::Resource::from_stored(doc).unwrap();
    store.put(&r, false).unwrap();
}

/// Folds statuses through the event model, as the backend stores them.
fn event(statuses: &[u64], handlers: &[&str], output: &str) -> Value {
    let mut prev: Option<Value> = None;
    for (i, s) in statuses.iter().enumerate() {
        let body = json!({
            "entity": {"metadata": {"name": "web-1"}},
            "check": {"metadata": {"name": "http"}, "status": s, "output": output, "handlers": handlers},
        });
        let t = 1_000 + i as i64;
        let input = ward_types::event::parse_event(&body, "default", t).unwrap();
        prev = Some(ward_types::event::apply(prev.as_ref(), &input, t));
    }
    prev.unwrap()
}

fn setup() -> (TempDir, Arc<Store>) {
    let dir = TempDir::new();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    (dir, store)
}

async fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sh_quote(p: &std::path::Path) -> String {
    format!("'{}'", p.display())
}

/// A pipe handler that writes its stdin to `out` (atomically, so it is complete once
/// it exists).
fn recorder(store: &Store, name: &str, out: &std::path::Path) {
    recorder_with(store, name, out, json!({}));
}

/// [`recorder`] with more spec fields (filters, mutator).
fn recorder_with(store: &Store, name: &str, out: &std::path::Path, more: Value) {
    let tmp = out.with_extension("tmp");
    let mut spec = json!({"type": "pipe", "command": format!("cat > {} && mv {} {}", sh_quote(&tmp), sh_quote(&tmp), sh_quote(out))});
    for (k, v) in more.as_object().unwrap() {
        spec[k] = v.clone();
    }
    handler(store, name, spec);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_event_reaches_a_pipe_handler_with_its_whole_json() {
    let (dir, store) = setup();
    let out = dir.join("got.json");
    recorder(&store, "rec", &out);
    let p = Pipeline::new(store);
    // Larger than a pipe buffer: stdin is written while the handler runs.
    let ev = event(&[0, 2], &["rec"], &"x".repeat(300_000));
    p.handle("default", &ev);
    wait_for("the handler's file", 10, || out.exists()).await;
    let got: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(got, ev);
    wait_for("the run to end", 5, || {
        p.counters.runs.load(Ordering::Relaxed) == 1
    })
    .await;
    let mut m = String::new();
    p.render_metrics(&mut m);
    assert!(m.contains("ward_handler_runs_total 1\n"), "{m}");
    assert!(
        m.contains("ward_handler_failures_total{reason=\"exit\"} 0\n"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is_incident_filters_passing_events_and_passes_a_resolution() {
    let (dir, store) = setup();
    let out = dir.join("got.json");
    recorder_with(&store, "rec", &out, json!({"filters": ["is_incident"]}));
    let every = dir.join("every.json");
    recorder(&store, "every", &every);
    let p = Pipeline::new(store);
    // Without a filter a handler gets OK events too, as in Sensu.
    p.handle("default", &event(&[0], &["every"], "ok"));
    wait_for("the OK event", 10, || every.exists()).await;
    p.handle("default", &event(&[0], &["rec"], "ok"));
    p.handle("default", &event(&[0, 0, 0], &["rec"], "ok"));
    p.handle("default", &event(&[2, 0, 0], &["rec"], "ok"));
    wait_for("three filtered", 10, || {
        p.counters.filtered.load(Ordering::Relaxed) == 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!out.exists(), "a passing event reached the handler");
    assert_eq!(p.counters.runs.load(Ordering::Relaxed), 1);
    let resolution = event(&[0, 2, 2, 0], &["rec"], "back");
    p.handle("default", &resolution);
    wait_for("the resolution", 10, || out.exists()).await;
    let got: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(got["check"]["status"], 0);
    assert_eq!(p.counters.filtered.load(Ordering::Relaxed), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sets_expand_once_and_cycles_and_unknown_names_are_not_followed() {
    let (dir, store) = setup();
    for n in ["a", "b", "c"] {
        let f = dir.join(n);
        handler(
            &store,
            n,
            json!({"type": "pipe", "command": format!("echo run >> {}", sh_quote(&f)), "env_vars": ["X=1"]}),
        );
    }
    handler(
        &store,
        "outer",
        json!({"type": "set", "handlers": ["a", "inner", "loop", "missing"]}),
    );
    handler(
        &store,
        "inner",
        json!({"type": "set", "handlers": ["b", "a", "outer"]}),
    );
    handler(
        &store,
        "loop",
        json!({"type": "set", "handlers": ["loop2", "c"]}),
    );
    handler(
        &store,
        "loop2",
        json!({"type": "set", "handlers": ["loop"]}),
    );
    let p = Pipeline::new(store);
    p.handle("default", &event(&[2], &["outer", "a"], "bad"));
    wait_for("three runs to end", 10, || {
        ["a", "b", "c"].iter().all(|n| dir.join(n).exists())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for n in ["a", "b", "c"] {
        let runs = std::fs::read_to_string(dir.join(n)).unwrap();
        assert_eq!(runs.lines().count(), 1, "{n} ran {runs:?}");
    }
    let c = &p.counters;
    assert_eq!(c.runs.load(Ordering::Relaxed), 3);
    // outer -> inner -> outer, and loop -> loop2 -> loop.
    assert_eq!(c.failures(Reason::Set), 2);
    assert_eq!(c.failures(Reason::NotFound), 1);
    assert_eq!(c.failures(Reason::Exit), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_sets_are_cut_and_a_missing_filter_skips_the_handler() {
    let (dir, store) = setup();
    let f = dir.join("leaf");
    handler(
        &store,
        "leaf",
        json!({"type": "pipe", "command": format!("echo run >> {}", sh_quote(&f))}),
    );
    let mut below = "leaf".to_string();
    for i in 0..=MAX_SET_DEPTH {
        let name = format!("s{i}");
        handler(&store, &name, json!({"type": "set", "handlers": [below]}));
        below = name;
    }
    let g = dir.join("filtered");
    handler(
        &store,
        "custom",
        json!({"type": "pipe", "command": format!("echo run >> {}", sh_quote(&g)), "filters": ["is_incident", "my_filter"]}),
    );
    handler(
        &store,
        "quiet",
        json!({"type": "pipe", "command": format!("echo run >> {}", sh_quote(&g)), "filters": ["not_silenced", "has_metrics"]}),
    );
    let p = Pipeline::new(store);
    p.handle(
        "default",
        &event(&[2], &[below.as_str(), "custom", "quiet"], "x"),
    );
    wait_for("the problems", 10, || {
        p.counters.failures(Reason::Set) == 1
            && p.counters.failures(Reason::NotFound) == 1
            && p.counters.filtered.load(Ordering::Relaxed) == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!f.exists() && !g.exists());
    assert_eq!(p.counters.runs.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_kills_the_process_group_and_counts() {
    let (dir, store) = setup();
    let pid_file = dir.join("bg.pid");
    handler(
        &store,
        "slow",
        json!({"type": "pipe", "timeout": 1, "command": format!("sleep 60 & echo $! > {}; echo too slow >&2; sleep 60", sh_quote(&pid_file))}),
    );
    handler(
        &store,
        "fails",
        json!({"type": "pipe", "command": "echo first words >&2; echo more >&2; exit 3"}),
    );
    let p = Pipeline::new(store);
    let started = Instant::now();
    p.handle("default", &event(&[1], &["slow", "fails"], "x"));
    wait_for("the timeout", 10, || {
        p.counters.failures(Reason::Timeout) == 1 && p.counters.failures(Reason::Exit) == 1
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The background sleep was in the group: gone (or a zombie awaiting its reaper).
    wait_for(
        "the background process to die",
        5,
        || match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(s) => s
                .rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z')),
        },
    )
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_full_queue_drops_and_counts() {
    let (_dir, store) = setup();
    handler(&store, "h", json!({"type": "pipe", "command": "true"}));
    let p = Pipeline::with_limits(store, 2, 1);
    let ev = event(&[2], &["h"], "x");
    // The worker cannot run before this test yields: the first two fill the queue.
    for _ in 0..10 {
        p.handle("default", &ev);
    }
    assert_eq!(p.counters.dropped.load(Ordering::Relaxed), 8);
    let mut m = String::new();
    p.render_metrics(&mut m);
    assert!(m.contains("ward_handler_dropped_total 8\n"), "{m}");
    wait_for("the queued two", 10, || {
        p.counters.runs.load(Ordering::Relaxed) == 2
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_udp_handlers_get_the_event_json() {
    let (_dir, store) = setup();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    handler(
        &store,
        "t",
        json!({"type": "tcp", "socket": {"host": "127.0.0.1", "port": tcp.local_addr().unwrap().port()}}),
    );
    handler(
        &store,
        "u",
        json!({"type": "udp", "socket": {"host": "127.0.0.1", "port": udp.local_addr().unwrap().port()}}),
    );
    handler(&store, "nosocket", json!({"type": "tcp"}));
    let p = Pipeline::new(store);
    let ev = event(&[2], &["t", "u", "nosocket"], "x");
    p.handle("default", &ev);
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        use tokio::io::AsyncReadExt;
        let (mut s, _) = tcp.accept().await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        buf
    })
    .await
    .unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&got).unwrap(), ev);
    let mut buf = vec![0u8; 65_536];
    let n = tokio::time::timeout(Duration::from_secs(10), udp.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&buf[..n]).unwrap(), ev);
    assert_eq!(p.counters.failures(Reason::Config), 1);
}
