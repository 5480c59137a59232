//! PEM as Ward reads it: keys through ward-pki (PKCS#8, PKCS#1, SEC1), certificates and
//! CRLs through rustls-pki-types, each certificate then parsed and described as
//! `ward pki info` does. Any input gives a value or an error — never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

fuzz_target!(|data: &[u8]| {
    let _ = ward_pki::PrivateKey::from_pem(std::path::Path::new("fuzz.pem"), data);
    let _ = PrivateKeyDer::from_pem_slice(data);
    for crl in CertificateRevocationListDer::pem_slice_iter(data).take(8) {
        let _ = crl.map(|c| x509_parser::parse_x509_crl(c.as_ref()).is_ok());
    }
    for cert in CertificateDer::pem_slice_iter(data).take(8) {
        let Ok(cert) = cert else { continue };
        if let Ok((_, x)) = x509_parser::parse_x509_certificate(cert.as_ref()) {
            let _ = ward_pki::inspect::common_name(x.subject());
            let _ = ward_pki::inspect::key_description(x.public_key());
        }
    }
});
