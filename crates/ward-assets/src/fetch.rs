//! Downloading a build into a file while its SHA-512 is computed.

use super::{Build, Limits};
use http_body_util::BodyExt;
use std::path::Path;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// `build.url` into `to` (created 0600), refused unless its SHA-512 is `build.sha512`; on
/// any failure `to` is removed. Errors are one line.
pub(crate) async fn fetch(
    build: &Build,
    to: &Path,
    tls: Arc<rustls::ClientConfig>,
    limits: Limits,
) -> Result<(), String> {
    let r = tokio::time::timeout(limits.timeout, download(build, to, tls, limits.download))
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "{}: not downloaded within {} s",
                build.url,
                limits.timeout.as_secs()
            ))
        });
    if r.is_err() {
        let _ = std::fs::remove_file(to);
    }
    r
}

async fn download(
    build: &Build,
    to: &Path,
    tls: Arc<rustls::ClientConfig>,
    max: u64,
) -> Result<(), String> {
    let url = ward_io::url::parse_endpoint(&build.url, "http", "https")
        .map_err(|e| format!("url {:?}: {e}", build.url))?;
    let headers: Vec<(&str, String)> = build
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    let resp = ward_tls::http::send(ward_tls::http::Request {
        url: &url,
        method: "GET",
        headers: &headers,
        body: None,
        tls: Some(tls),
    })
    .await
    .map_err(|e| format!("{}: {e}", build.url))?;
    if resp.status() != hyper::StatusCode::OK {
        return Err(format!(
            "{}: the server answered HTTP {}",
            build.url,
            resp.status()
        ));
    }
    let file = open_private(to)
        .await
        .map_err(|e| format!("{}: {e}", to.display()))?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut hash = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA512);
    let mut total: u64 = 0;
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| format!("{}: reading the download failed: {e}", build.url))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len() as u64;
        if total > max {
            return Err(format!(
                "{}: larger than the {} MiB a download may be",
                build.url,
                max >> 20
            ));
        }
        hash.update(&data);
        // Into a buffer; the file is written a MiB at a time and synced once at the end
        // (tokio's file does both on the blocking pool).
        out.write_all(&data)
            .await
            .map_err(|e| format!("{}: {e}", to.display()))?;
    }
    let got = ward_io::text::hex(hash.finish().as_ref());
    if got != build.sha512 {
        return Err(format!(
            "{}: its SHA-512 is {}…, not the {}… the asset names; refused, nothing unpacked",
            build.url,
            &got[..16],
            &build.sha512[..16.min(build.sha512.len())]
        ));
    }
    out.flush()
        .await
        .map_err(|e| format!("{}: {e}", to.display()))?;
    out.into_inner()
        .sync_all()
        .await
        .map_err(|e| format!("{}: {e}", to.display()))?;
    Ok(())
}

async fn open_private(p: &Path) -> std::io::Result<tokio::fs::File> {
    tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
        .await
}
