//! The agent's StatsD input (UDP 8125): any bytes, split into lines as the listener splits
//! a datagram, parsed by `ward_types::metrics::statsd` and summed — a sample or a one-line
//! error, never a panic — and a flush yields named points stamped with the flush's time
//! (sums may overflow to infinity: Sensu's JSON writes such a value as null).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward_types::metrics::statsd::{parse_line, Aggregate};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut a = Aggregate::default();
    for line in text.split('\n').filter(|l| !l.trim().is_empty()) {
        match parse_line(line) {
            Ok(s) => {
                assert!(!s.name.is_empty());
                assert!(s.rate > 0.0 && s.rate <= 1.0);
                a.add(s);
            }
            Err(e) => assert!(!e.is_empty() && !e.contains('\n'), "{e:?}"),
        }
    }
    for p in a.flush(1_700_000_000, 10.0) {
        assert!(!p.name.is_empty());
        assert_eq!(p.timestamp, 1_700_000_000, "{p:?}");
    }
});
