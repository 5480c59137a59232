//! The API client: one HTTPS (or HTTP) request per connection, with TLS failures turned
//! into plain words.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
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

fn io_error_words(e: &std::io::Error) -> String {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return match inner {
            rustls::Error::General(msg) => msg.clone(),
            rustls::Error::AlertReceived(a) => {
                format!("the server refused the TLS handshake ({a:?})")
            }
            other => other.to_string(),
        };
    }
    e.to_string()
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
        let endpoint = self.parts()?;
        let authority = endpoint.authority();
        let ward_io::url::Endpoint {
            tls,
            host,
            port,
            path: base,
        } = endpoint;
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("{}: cannot connect: {e}", self.url))?;
        // An API URL with a path (a backend behind a proxy at /ward/) prefixes every request.
        let uri = format!("{}{path}", base.trim_end_matches('/'));
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", authority.as_str())
            .header(
                "user-agent",
                concat!("ward-ctl/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        let resp = if tls {
            let trust = self.trust.clone().ok_or_else(|| {
                format!(
                    "{}: HTTPS needs --trusted-ca-file (or --insecure-skip-tls-verify)",
                    self.url
                )
            })?;
            let config = ward_tls::client_config(&trust)?;
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|_| format!("{host:?} is not a host name"))?;
            let stream = connector
                .connect(name, tcp)
                .await
                .map_err(|e| format!("{}: TLS: {}", self.url, io_error_words(&e)))?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            sender
                .send_request(req)
                .await
                .map_err(|e| format!("{}: {e}", self.url))?
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            sender
                .send_request(req)
                .await
                .map_err(|e| format!("{}: {e}; is this a TLS port? use https://", self.url))?
        };
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
