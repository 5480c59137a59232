//! The API client: one HTTPS (or HTTP) request per connection, with TLS failures turned
//! into plain words.

use http_body_util::BodyExt;
use std::sync::Arc;
use ward_tls::Trust;

/// A response: status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub continue_token: Option<String>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The server's message for an error.
    pub fn message(&self) -> String {
        self.json()
            .get("message")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned())
    }
}

/// Where the API is and how to trust it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: String,
    pub trust: Option<Trust>,
}

impl Endpoint {
    /// The API URL's parts (through `ward_io::url`).
    fn parts(&self) -> Result<ward_io::url::Endpoint, String> {
        ward_io::url::parse_endpoint(&self.url, "http", "https")
            .map_err(|e| format!("{:?}: {e}", self.url))
    }

    /// `GET /auth` with Basic credentials: the tokens (`access_token`, `refresh_token`,
    /// `expires_at`), or "login failed (STATUS): the server's message".
    pub async fn login(&self, username: &str, password: &str) -> Result<serde_json::Value, String> {
        use base64::Engine;
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        let r = self
            .request(
                "GET",
                "/auth",
                &[("authorization", format!("Basic {basic}"))],
                None,
            )
            .await?;
        if r.status != 200 {
            return Err(format!("login failed ({}): {}", r.status, r.message()));
        }
        Ok(r.json())
    }

    /// Sends one request.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Reply, String> {
        let mut endpoint = self.parts()?;
        // An API URL with a path (a backend behind a proxy at /ward/) prefixes every request.
        endpoint.path = format!("{}{path}", endpoint.path.trim_end_matches('/'));
        let tls = if endpoint.tls {
            let trust = self.trust.clone().ok_or_else(|| {
                format!(
                    "{}: HTTPS needs --trusted-ca-file (or --insecure-skip-tls-verify)",
                    self.url
                )
            })?;
            Some(Arc::new(ward_tls::client_config(&trust)?))
        } else {
            None
        };
        let mut all: Vec<(&str, String)> = vec![(
            "user-agent",
            concat!("ward-ctl/", env!("CARGO_PKG_VERSION")).to_string(),
        )];
        all.extend(headers.iter().map(|(k, v)| (*k, v.clone())));
        let resp = ward_tls::http::send(ward_tls::http::Request {
            url: &endpoint,
            method,
            headers: &all,
            body: body.map(|b| ("application/json", b)),
            tls,
        })
        .await
        .map_err(|e| match e {
            ward_tls::http::HttpError::Http(m) if !endpoint.tls => {
                format!("{}: {m}; is this a TLS port? use https://", self.url)
            }
            other => format!("{}: {other}", self.url),
        })?;
        let status = resp.status().as_u16();
        let continue_token = resp
            .headers()
            .get("ward-continue")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes()
            .to_vec();
        Ok(Reply {
            status,
            body,
            continue_token,
        })
    }
}
