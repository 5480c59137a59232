//! cfssl's JSON output (`{"cert","csr","key"}` on one line) and cfssljson's `-bare` files
//! (`NAME.pem`, `NAME-key.pem`, `NAME.csr`).

use crate::authority::IssuedCertificate;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use ward_io::files::{self, Overwrite, PlannedFile};

/// `cfssl gencert`'s output, keys in cfssl's (alphabetical) order.
#[derive(Debug, Serialize)]
pub struct GencertOutput<'a> {
    pub cert: &'a str,
    pub csr: &'a str,
    pub key: &'a str,
}

/// One line of JSON, as cfssl prints it.
pub fn gencert_json(issued: &IssuedCertificate) -> String {
    serde_json::to_string(&GencertOutput {
        cert: &issued.cert_pem,
        csr: &issued.csr_pem,
        key: issued.key_pem.as_deref().unwrap_or(""),
    })
    .expect("strings serialize")
}

#[derive(Debug, Deserialize)]
struct BareInput {
    #[serde(alias = "certificate")]
    cert: Option<String>,
    #[serde(alias = "private_key")]
    key: Option<String>,
    #[serde(alias = "certificate_request")]
    csr: Option<String>,
}

/// The files `-bare NAME` writes for an issued certificate.
pub fn bare_files(
    base: &Path,
    cert: Option<&str>,
    key: Option<&str>,
    csr: Option<&str>,
) -> Vec<PlannedFile> {
    let with = |suffix: &str| -> PathBuf {
        let mut s = base.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    let mut out = Vec::new();
    if let Some(c) = cert.filter(|c| !c.is_empty()) {
        out.push(PlannedFile::public(with(".pem"), c.as_bytes().to_vec()));
    }
    if let Some(k) = key.filter(|k| !k.is_empty()) {
        out.push(PlannedFile::key(with("-key.pem"), k.as_bytes().to_vec()));
    }
    if let Some(r) = csr.filter(|r| !r.is_empty()) {
        out.push(PlannedFile::public(with(".csr"), r.as_bytes().to_vec()));
    }
    out
}

/// `ward pki json -bare NAME`: reads cfssl JSON and writes the files; returns their paths.
pub fn write_bare(
    base: &Path,
    json: &[u8],
    overwrite: Overwrite,
    owner: Option<ward_io::owner::Owner>,
) -> Result<Vec<PathBuf>> {
    let input: BareInput = serde_json::from_slice(json).map_err(|e| Error::Malformed {
        what: "stdin".into(),
        format: "cfssl JSON",
        reason: if json.iter().all(u8::is_ascii_whitespace) {
            "no input; pipe `ward pki gencert` into it".into()
        } else {
            e.to_string()
        },
    })?;
    for (field, value, marker) in [
        ("cert", &input.cert, "CERTIFICATE"),
        ("key", &input.key, "PRIVATE KEY"),
        ("csr", &input.csr, "CERTIFICATE REQUEST"),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            if !v.contains("-----BEGIN ") || !v.contains(marker) {
                return Err(Error::Malformed {
                    what: "stdin".into(),
                    format: "cfssl JSON",
                    reason: format!("field {field:?} does not hold a PEM {marker}"),
                });
            }
        }
    }
    let planned = bare_files(
        base,
        input.cert.as_deref(),
        input.key.as_deref(),
        input.csr.as_deref(),
    );
    if planned.is_empty() {
        return Err(Error::Malformed {
            what: "stdin".into(),
            format: "cfssl JSON",
            reason: "no cert, key or csr field".into(),
        });
    }
    let planned = ward_io::owner::owned(planned, owner);
    files::write_all(&planned, overwrite)?;
    Ok(planned.into_iter().map(|p| p.path).collect())
}
