//! cfssl CSR JSON (`ward pki gencert`/`genkey` input): any bytes give a request or a
//! ward_pki error — never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ward_pki::CertificateRequest::from_json("fuzz.json", data);
});
