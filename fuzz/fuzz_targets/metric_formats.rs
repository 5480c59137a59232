//! Check output read as metrics in Sensu's five formats (`ward_types::metrics::parse`,
//! then `add_tags`): the first byte chooses the format, the rest is the output. Any input
//! gives points or line errors — never a panic — and no more points than lines of output
//! allow (bounded work).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward_types::metrics::{add_tags, parse, Format};

const FORMATS: [Format; 5] = [
    Format::NagiosPerfdata,
    Format::GraphitePlaintext,
    Format::InfluxdbLine,
    Format::OpentsdbLine,
    Format::PrometheusText,
];

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let format = FORMATS[usize::from(*first) % FORMATS.len()];
    let output = String::from_utf8_lossy(rest);
    let mut parsed = parse(format, &output, 1_700_000_000, 1_700_000_000);
    assert!(
        parsed.points.len() <= output.len() + 1,
        "{} points from {} bytes",
        parsed.points.len(),
        output.len()
    );
    let tags = serde_json::json!([{"name": "env", "value": "test"}, {"name": "__name__", "value": "x"}]);
    add_tags(format, &mut parsed.points, &tags);
});
