//! A strict PostgreSQL event store that starts with a replay journal left by an earlier
//! non-strict outage (a backend restarted after the config was made strict): it must never
//! add to the journal or the embedded store, and must put the journal into PostgreSQL before
//! anything newer. Driven at the library level, because the API only accepts a strict
//! config while PostgreSQL answers, which makes this state racy to reach end to end.

use std::sync::Arc;
use std::time::Duration;
use ward_backend::api::Metrics;
use ward_backend::eventd::postgres::{Mode, PgEventStore};
use ward_store::postgres::{PgSettings, QueuedEvent};
use ward_store::Store;
use ward_testkit::postgres::GuidePg;

fn event(check: &str, executed: i64) -> QueuedEvent {
    let body = serde_json::json!({
        "entity": {"metadata": {"name": "web-1"}},
        "check": {"metadata": {"name": check}, "status": 2, "executed": executed}
    });
    QueuedEvent {
        input: ward_types::event::parse_event(&body, "default", executed)
            .unwrap()
            .prepare(),
        received_at: executed,
    }
}

fn settings(dsn: String) -> PgSettings {
    let r = ward_store::resource_from_json(serde_json::json!({
        "type": "PostgresConfig", "api_version": "store/v1",
        "metadata": {"name": "strict_pg"},
        "spec": {"dsn": dsn, "pool_size": 3, "strict": true}
    }))
    .unwrap();
    PgSettings::from_resource(&r).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_store_drains_the_journal_first_and_never_adds_to_it() {
    let pg = GuidePg::start();
    let dir = ward_testkit::TempDir::new();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    // Left by the outage: one event in the embedded store and its journal.
    store
        .record_events_for_replay(&[event("during", 1_000)])
        .unwrap();
    pg.cluster.stop_immediate();
    let settings = settings(pg.dsn());
    let params = ward_pg::conninfo::resolve(&settings.dsn, &|_| None).unwrap();
    let metrics = Arc::new(Metrics::default());
    let s = PgEventStore::start(settings, params, store.clone(), "t".into(), metrics.clone());
    assert_eq!(s.mode(), Mode::Connecting);
    // PostgreSQL is down: a newer event waits; it is neither acknowledged nor written here.
    let waiting = {
        let s = s.clone();
        tokio::spawn(async move {
            let pending = s.enqueue(event("newer", 2_000)).unwrap();
            pending.await.unwrap()
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !waiting.is_finished(),
        "acknowledged while PostgreSQL was down"
    );
    assert!(store.event("default", "web-1", "newer").unwrap().is_none());
    assert_eq!(store.replay_pending().unwrap(), 1);
    assert_eq!(
        metrics
            .pg_fallback_events
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    // PostgreSQL returns: the journal goes in first, then the waiting event.
    pg.cluster.start_again();
    let stored = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the waiting event was stored once PostgreSQL answered")
        .unwrap()
        .unwrap()
        .expect("PostgreSQL's writers answer the stored event");
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["check"]["metadata"]["name"], "newer");
    assert_eq!(s.mode(), Mode::Active);
    assert_eq!(store.replay_pending().unwrap(), 0);
    let rows = pg
        .cluster
        .sql_in(
            "ward_events",
            "SELECT check_name, updated_at FROM events ORDER BY updated_at",
        )
        .ok()
        .stdout;
    assert_eq!(rows.trim(), "during|1000\nnewer|2000");
    s.shutdown().await;
}
