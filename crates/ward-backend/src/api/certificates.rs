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
    /// `ca-dir`, checked: the CA must load, and be one the agent port trusts
    /// (`agent-auth-trusted-ca-file`), or the CRLs it re-signs would cover no agent's
    /// certificate and make every agent's revocation status unknown. With the `file://`
    /// entries of `agent-auth-crl-urls`.
    pub fn new(
        dir: PathBuf,
        crl_urls: &[String],
        agent_trust: Option<&std::path::Path>,
    ) -> Result<CaHolder, String> {
        let ca =
            ward_pki::CertificateAuthority::load_dir(&dir).map_err(|e| format!("ca-dir: {e}"))?;
        if let Some(trusted) = agent_trust {
            let holds = ward_pki::trust::bundle_holds(trusted, &ca.cert_der)
                .map_err(|e| format!("ca-dir: {e}"))?;
            if !holds {
                return Err(format!(
                    "ca-dir: {} ({:?}) is not in agent-auth-trusted-ca-file {}: the CRLs this backend would sign cover none of the agents' certificates; name the directory of the CA that issues them",
                    dir.join("ca.pem").display(),
                    ca.common_name,
                    trusted.display()
                ));
            }
        }
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
    if ca.crl_files.is_empty() {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "agent-auth-crl-urls names no file:// CRL for this backend to re-sign: a revoked agent whose session is closed would be let in again; add file:///path/crl.pem (the CRL `ward pki crl` writes) to agent-auth-crl-urls".into(),
        ));
    }
    // A connected agent's name (recorded as the subject) first, so that a name made of
    // hex or decimal digits is not taken for a serial; else a serial.
    let (serial, subject) = match st.agents.serials_of(&which).as_slice() {
        [one] => (
            ward_pki::revocation::parse_serial(one).map_err(|e| bad(e.to_string()))?,
            Some(format!("CN={which}")),
        ),
        [] => match ward_pki::revocation::parse_serial(&which) {
            Ok(s) => (s, None),
            Err(_) => {
                return Err(ApiError(
                    StatusCode::NOT_FOUND,
                    format!("{which:?} is neither a serial nor an agent connected with a client certificate; give the serial (`ward pki info CERT`)"),
                ))
            }
        },
        many => {
            return Err(bad(format!(
                "agent {which:?} is connected with {} certificates ({}); give the serial",
                many.len(),
                many.join(", ")
            )))
        }
    };
    let dir = ca.dir.clone();
    let files = ca.crl_files.clone();
    // Revoking again is not an error: a revocation whose CRL could not be written the
    // first time is completed (CRL re-signed, sessions closed) by asking again.
    let done = tokio::task::spawn_blocking(move || {
        let hex = ward_io::text::hex_colon(&serial);
        let earlier = ward_pki::revocation::RevocationState::load(&dir)?
            .revoked
            .into_iter()
            .find(|r| r.serial == hex);
        let already = earlier.is_some();
        let rev = match earlier {
            Some(r) => r,
            None => ward_pki::revocation::revoke(&dir, &serial, code, subject)?,
        };
        let mut number = None;
        for f in &files {
            number = Some(ward_pki::revocation::publish_crl(&dir, CRL_VALIDITY, f)?.number);
        }
        Ok::<_, ward_pki::Error>((rev, number, already))
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let (rev, crl_number, already) = done.map_err(|e| bad(e.to_string()))?;
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
        "already_revoked": already,
        "sessions_closed": closed,
        "crl_number": crl_number,
        "crl_files": ca.crl_files,
    })))
}
