//! `ward pki bootstrap` plans (YAML): any text gives a plan or a ward_pki error — never a
//! panic, and no unbounded work (YAML aliases are expanded by serde-saphyr under its
//! budget).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = ward_pki::bootstrap::Plan::from_yaml("fuzz.yml", text);
});
