//! The agent frame decoder must turn any input into a frame or a FrameError — never a
//! panic — and a frame it accepts must decode again, equal, from its own encoding whenever
//! that encoding is within the frame limit (`encode_checked`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward_types::agent::Frame;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Frame::decode(data) {
        let Ok(bytes) = frame.encode_checked() else {
            return;
        };
        assert_eq!(
            Frame::decode(&bytes),
            Ok(frame),
            "a decoded frame must survive its own encoding: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
});
