//! libpq connection strings (`key=value` lists and `postgresql://` URIs), parsed and then
//! resolved against an empty environment: a map or a ward_pg error — never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = ward_pg::conninfo::parse_dsn(text);
    let _ = ward_pg::conninfo::resolve(text, &|_| None);
});
