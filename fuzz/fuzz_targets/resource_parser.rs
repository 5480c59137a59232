//! The resource parser must turn any input into resources or a FieldError/StreamError —
//! never a panic — and what it accepts must survive a round trip through its own output.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(resources) = ward_types::parse_stream("fuzz", text) {
        for r in resources {
            let doc = r.to_document();
            let json = serde_json::to_string(&doc).expect("a parsed document serialises");
            let again = ward_types::parse_stream("again", &json).expect("a parsed document parses again");
            assert_eq!(again.len(), 1);
            assert_eq!(again[0], r);
        }
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        if let Ok(ev) = ward_types::event::parse_event(&v, "default", 0) {
            let _ = ward_types::event::apply(None, &ev, 0);
        }
    }
});
