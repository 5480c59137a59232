//! TCPStreamHandlers through a real store and real sockets: pooled connections reused,
//! a connection the peer closed replaced, a peer that is down counted and retried with
//! the reconnect delay. (TLS with a client certificate, against `openssl s_server`, is in
//! crates/ward/tests/pipeline_e2e.rs.)

use super::tests_flow::{put_as as put, wait_for};
use super::*;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use ward_store::Store;
use ward_testkit::TempDir;

/// A pipeline `p` whose one workflow sends every event, as its check output, to the
/// TCPStreamHandler `logstash` at `address`.
fn setup(store: &Store, address: &str, max_connections: u64) {
    put(
        store,
        "TCPStreamHandler",
        "pipeline/v1",
        "logstash",
        json!({"address": address, "max_connections": max_connections,
               "min_reconnect_delay": "100ms", "max_reconnect_delay": "400ms"}),
    );
    put(
        store,
        "Pipeline",
        "core/v2",
        "p",
        json!({"workflows": [{"name": "all",
            "mutator": {"name": "only_check_output", "type": "Mutator", "api_version": "core/v2"},
            "handler": {"name": "logstash", "type": "TCPStreamHandler", "api_version": "pipeline/v1"}}]}),
    );
}

fn event(output: &str) -> Value {
    let body = json!({
        "entity": {"metadata": {"name": "web-1"}},
        "check": {"metadata": {"name": "http"}, "status": 2, "output": output,
                  "pipelines": [{"name": "p", "type": "Pipeline", "api_version": "core/v2"}]},
    });
    let input = ward_types::event::parse_event(&body, "default", 1_000).unwrap();
    ward_types::event::apply(None, &input, 1_000)
}

/// Lines received, and the number of connections accepted. Connections are served at
/// once; `close_after` closes each connection after that many lines.
struct Peer {
    lines: Arc<Mutex<Vec<String>>>,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    address: String,
}

async fn peer(close_after: Option<usize>) -> Peer {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = l.local_addr().unwrap().to_string();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (got, n) = (lines.clone(), accepted.clone());
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            n.fetch_add(1, Ordering::SeqCst);
            let got = got.clone();
            tokio::spawn(async move {
                let mut r = tokio::io::BufReader::new(s).lines();
                let mut seen = 0;
                while let Ok(Some(line)) = r.next_line().await {
                    got.lock().unwrap().push(line);
                    seen += 1;
                    if close_after.is_some_and(|c| seen >= c) {
                        return;
                    }
                }
            });
        }
    });
    Peer {
        lines,
        accepted,
        address,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_go_one_per_line_over_at_most_max_connections() {
    let dir = TempDir::new();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let peer = peer(None).await;
    setup(&store, &peer.address, 2);
    let p = Pipeline::new(store);
    for i in 0..50 {
        p.handle("default", &event(&format!("event {i}")));
    }
    wait_for("50 lines", || peer.lines.lock().unwrap().len() == 50).await;
    let mut got = peer.lines.lock().unwrap().clone();
    got.sort_by_key(|l| l[6..].parse::<u32>().unwrap());
    assert_eq!(
        got,
        (0..50).map(|i| format!("event {i}")).collect::<Vec<_>>()
    );
    let accepted = peer.accepted.load(Ordering::SeqCst);
    assert!((1..=2).contains(&accepted), "{accepted} connections");
    assert_eq!(p.counters.runs.load(Ordering::Relaxed), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_peer_closed_is_replaced_and_no_event_is_lost() {
    let dir = TempDir::new();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    // The peer hangs up after every second line.
    let peer = peer(Some(2)).await;
    setup(&store, &peer.address, 1);
    let p = Pipeline::new(store);
    for i in 0..6 {
        p.handle("default", &event(&format!("event {i}")));
        // One at a time, so that the hang-up is seen before the next event.
        wait_for("the line", || peer.lines.lock().unwrap().len() == i + 1).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(peer.accepted.load(Ordering::SeqCst), 3);
    assert_eq!(p.counters.failures(Reason::Socket), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_pooling_off_each_event_has_its_own_connection() {
    let dir = TempDir::new();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let peer = peer(None).await;
    setup(&store, &peer.address, 0);
    let p = Pipeline::new(store);
    for i in 0..5 {
        p.handle("default", &event(&format!("event {i}")));
    }
    wait_for("5 lines", || peer.lines.lock().unwrap().len() == 5).await;
    assert_eq!(peer.accepted.load(Ordering::SeqCst), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_is_down_is_counted_and_found_again_when_it_is_back() {
    let dir = TempDir::new();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    // A port nothing listens on (bound, then released).
    let address = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    setup(&store, &address, 1);
    let p = Pipeline::new(store);
    p.handle("default", &event("lost"));
    wait_for("the failure", || p.counters.failures(Reason::Socket) == 1).await;
    // The peer comes back on that port; the next event reaches it.
    let l = tokio::net::TcpListener::bind(&address).await.unwrap();
    p.handle("default", &event("found"));
    let (s, _) = tokio::time::timeout(Duration::from_secs(5), l.accept())
        .await
        .unwrap()
        .unwrap();
    let mut r = tokio::io::BufReader::new(s).lines();
    assert_eq!(r.next_line().await.unwrap().as_deref(), Some("found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_handler_whose_files_are_missing_is_a_config_failure_naming_the_file() {
    let dir = TempDir::new();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let peer = peer(None).await;
    setup(&store, &peer.address, 1);
    let missing = dir.join("no-such-ca.pem");
    put(
        &store,
        "TCPStreamHandler",
        "pipeline/v1",
        "logstash",
        json!({"address": peer.address, "max_connections": 1, "tls_ca_cert_file": missing,
               "min_reconnect_delay": "100ms", "max_reconnect_delay": "400ms"}),
    );
    let p = Pipeline::new(store.clone());
    let snap = p.config_snapshot();
    let e = snap.stream("default", "logstash").err().unwrap();
    assert!(e.contains("no-such-ca.pem"), "{e}");
    p.handle("default", &event("x"));
    wait_for("the failure", || p.counters.failures(Reason::Config) == 1).await;
    assert_eq!(peer.accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_pool_of_an_unchanged_handler_and_replaces_a_changed_one() {
    let dir = TempDir::new();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let peer = peer(None).await;
    setup(&store, &peer.address, 1);
    let p = Pipeline::new(store.clone());
    let before = p.config_snapshot().stream("default", "logstash").unwrap();
    p.reload().unwrap();
    let same = p.config_snapshot().stream("default", "logstash").unwrap();
    assert!(Arc::ptr_eq(&before, &same));
    setup(&store, &peer.address, 3);
    p.reload().unwrap();
    let changed = p.config_snapshot().stream("default", "logstash").unwrap();
    assert!(!Arc::ptr_eq(&before, &changed));
}
