//! Ward's one HTTP client: a request on a connection of its own (HTTP/1.1, `Connection:
//! close`), over TLS with a config from this crate when the URL is https. Used by
//! `ward ctl`, the revocation fetches (CRLs, OCSP) and asset downloads; callers read the
//! body as they need (bounded, or streamed to a file).

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use ward_io::url::Endpoint;

/// Why a request got no answer (the caller names the URL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// No TCP connection (the host is down, refuses, or has no address).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The TLS handshake failed: the words say why (whose certificate, which CA).
    #[error("TLS: {0}")]
    Tls(String),
    /// The connection was made but HTTP failed.
    #[error("{0}")]
    Http(String),
}

/// One request.
pub struct Request<'a> {
    pub url: &'a Endpoint,
    pub method: &'a str,
    /// Extra headers (`Host`, and `User-Agent` unless given, are set).
    pub headers: &'a [(&'a str, String)],
    pub body: Option<(&'a str, Vec<u8>)>,
    /// The TLS config of an https URL (required for one).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// A TLS failure in plain words (the verifier's own message when it has one).
pub fn io_error_words(e: &std::io::Error) -> String {
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

/// Sends `req` and returns the response with its body still to be read.
pub async fn send(req: Request<'_>) -> Result<hyper::Response<Incoming>, HttpError> {
    let authority = req.url.authority();
    let tcp = tokio::net::TcpStream::connect((req.url.host.as_str(), req.url.port))
        .await
        .map_err(|e| HttpError::Connect(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let mut builder = hyper::Request::builder()
        .method(req.method)
        .uri(req.url.path.as_str())
        .header(hyper::header::HOST, authority.as_str())
        .header(hyper::header::CONNECTION, "close");
    if !req
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("user-agent"))
    {
        builder = builder.header(
            hyper::header::USER_AGENT,
            concat!("ward/", env!("CARGO_PKG_VERSION")),
        );
    }
    for (k, v) in req.headers {
        builder = builder.header(*k, v.as_str());
    }
    let body = match req.body {
        Some((content_type, b)) => {
            builder = builder.header(hyper::header::CONTENT_TYPE, content_type);
            b
        }
        None => Vec::new(),
    };
    let request = builder
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| HttpError::Http(format!("cannot build the request: {e}")))?;
    if req.url.tls {
        let config = req
            .tls
            .ok_or_else(|| HttpError::Tls("no TLS configuration for an https URL".into()))?;
        let name = rustls::pki_types::ServerName::try_from(req.url.host.clone())
            .map_err(|_| HttpError::Tls(format!("{:?} is not a host name", req.url.host)))?;
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| HttpError::Tls(io_error_words(&e)))?;
        exchange(TokioIo::new(stream), request).await
    } else {
        exchange(TokioIo::new(tcp), request).await
    }
}

async fn exchange<T>(
    io: T,
    request: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<Incoming>, HttpError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| HttpError::Http(format!("HTTP failed: {e}")))?;
    // The connection is driven by its own task until the body has been read.
    tokio::spawn(conn);
    sender
        .send_request(request)
        .await
        .map_err(|e| HttpError::Http(format!("the HTTP request failed: {e}")))
}
