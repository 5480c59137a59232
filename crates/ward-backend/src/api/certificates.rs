//! `POST /api/ward/v1/certificates/{serial}/revoke` (`ward ctl cert revoke`): live
//! revocation, on a backend that holds its CA (`ca-dir`). The serial is recorded in the
//! CA's `revoked.json`, every CRL file the agent port reads (`agent-auth-crl-urls` entries
//! that are `file://`) is re-signed, and every open agent session presenting that
//! certificate is closed at once with the reason (WebSocket close 1008), so a revoked
//! agent keeps nothing: its reconnection is refused by the CRL just written.
//!
//! `{serial}` is a serial as `ward pki info` prints it (`5a:3f:…`), `0x…` hex, or decimal;
//! or the name of a connected agent, for the certificate it is connected with.

use super::access::authorize;
use super::error::{bad, ApiError, ApiResult};
use super::Shared;
use crate::rbac::{Request, Verb};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// How long a CRL the backend signs is valid (nextUpdate).
pub const CRL_VALIDITY: Duration = Duration::from_secs(7 * 24 * 3600);

/// The CA a backend holds.
#[derive(Debug, Clone)]
pub struct CaHolder {
    pub dir: PathBuf,
    /// The CRL files the agent port reads, re-signed at each revocation.
    pub crl_files: Vec<PathBuf>,
}

impl CaHolder {
    /// `ca-dir`, checked (the CA must load), and the `file://` entries of
    /// `agent-auth-crl-urls`.
    pub fn new(dir: PathBuf, crl_urls: &[String]) -> Result<CaHolder, String> {
        ward_pki::CertificateAuthority::load_dir(&dir).map_err(|e| format!("ca-dir: {e}"))?;
        let crl_files = crl_urls
            .iter()
            .filter_map(|u| match ward_io::url::parse_location(u) {
                Ok(ward_io::url::Location::File(p)) => Some(p),
                _ => None,
            })
            .collect();
        Ok(CaHolder { dir, crl_files })
    }
}

pub(super) async fn revoke_certificate(
    State(st): Shared,
    headers: axum::http::HeaderMap,
    Path(which): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let user = authorize(
        &st,
        &headers,
        Request::new(Verb::Update, "certificates", None, Some(&which)),
    )
    .await?;
    let Some(ca) = st.ca.clone() else {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "this backend holds no CA: start it with ca-dir (the directory of ca.pem and ca-key.pem) to revoke through the API, or use `ward pki revoke` and `ward pki crl` where the CA is".into(),
        ));
    };
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        "unspecified".to_string()
    } else {
        let v: Value = serde_json::from_slice(&body).map_err(|e| {
            bad(format!(
                "body: {e}; send {{\"reason\": \"keyCompromise\"}} or nothing"
            ))
        })?;
        v.get("reason")
            .and_then(Value::as_str)
            .unwrap_or("unspecified")
            .to_string()
    };
    let code = ward_pki::revocation::parse_reason(&reason).map_err(|e| bad(e.to_string()))?;
    // A serial, or a connected agent's name (recorded as the subject).
    let (serial, subject) = match ward_pki::revocation::parse_serial(&which) {
        Ok(s) => (s, None),
        Err(_) => match st.agents.serials_of(&which).as_slice() {
            [one] => (
                ward_pki::revocation::parse_serial(one).map_err(|e| bad(e.to_string()))?,
                Some(format!("CN={which}")),
            ),
            [] => {
                return Err(ApiError(
                    StatusCode::NOT_FOUND,
                    format!("{which:?} is neither a serial nor an agent connected with a client certificate; give the serial (`ward pki info CERT`)"),
                ))
            }
            many => {
                return Err(bad(format!(
                    "agent {which:?} is connected with {} certificates ({}); give the serial",
                    many.len(),
                    many.join(", ")
                )))
            }
        },
    };
    let dir = ca.dir.clone();
    let files = ca.crl_files.clone();
    let done = tokio::task::spawn_blocking(move || {
        let rev = ward_pki::revocation::revoke(&dir, &serial, code, subject)?;
        let mut number = None;
        for f in &files {
            number = Some(ward_pki::revocation::publish_crl(&dir, CRL_VALIDITY, f)?.number);
        }
        Ok::<_, ward_pki::Error>((rev, number))
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let (rev, crl_number) = done.map_err(|e| {
        let text = e.to_string();
        let status = if text.contains("already revoked") {
            StatusCode::CONFLICT
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError(status, text)
    })?;
    let closed = st.agents.close_certificate(
        &rev.serial,
        &format!(
            "certificate revoked ({}); serial {}",
            rev.reason, rev.serial
        ),
    );
    tracing::warn!(serial = %rev.serial, reason = %rev.reason, user = %user.name, sessions_closed = closed, "certificate revoked");
    Ok(Json(json!({
        "serial": rev.serial,
        "reason": rev.reason,
        "revoked_at": rev.revoked_at,
        "sessions_closed": closed,
        "crl_number": crl_number,
        "crl_files": ca.crl_files,
    })))
}
