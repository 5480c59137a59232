//! Locations (`file://`, `http://`) and the HTTP fetches, bounded in number and time.

use super::*;

/// CRL and OCSP locations come from the one URL parser.
pub(super) use ward_io::url::{parse_location, Endpoint as HttpUrl, Location};

/// HTTP fetches: at most [`MAX_FETCHES`] at once, [`FETCH_TIMEOUT`] each, and a host that
/// refused or timed out is left alone for [`FAILURE_RETRY`].
#[derive(Debug)]
pub(super) struct Fetcher {
    pub(super) permits: Semaphore,
    pub(super) down: Mutex<HashMap<String, (Instant, String)>>,
}

pub(super) enum FetchError {
    /// The host did not answer: remembered per host.
    Unreachable(String),
    Other(String),
}

impl Fetcher {
    pub(super) fn new() -> Self {
        Fetcher {
            permits: Semaphore::new(MAX_FETCHES),
            down: Mutex::new(HashMap::new()),
        }
    }

    pub(super) async fn fetch(
        &self,
        url: &HttpUrl,
        post: Option<(&'static str, Vec<u8>)>,
        max: usize,
    ) -> Result<Vec<u8>, String> {
        let host_key = format!("{}:{}", url.host, url.port);
        if let Some((at, why)) = lock(&self.down).get(&host_key) {
            if at.elapsed() < FAILURE_RETRY {
                return Err(format!(
                    "{why} (not retried for {} s)",
                    FAILURE_RETRY.as_secs()
                ));
            }
        }
        let _permit = match tokio::time::timeout(FETCH_TIMEOUT, self.permits.acquire()).await {
            Ok(Ok(p)) => p,
            _ => return Err("too many revocation fetches in flight; gave up waiting".into()),
        };
        let result = match tokio::time::timeout(FETCH_TIMEOUT, http_request(url, post, max)).await {
            Err(_) => Err(FetchError::Unreachable(format!(
                "no answer from {} within {} s",
                url.authority(),
                FETCH_TIMEOUT.as_secs()
            ))),
            Ok(r) => r,
        };
        match result {
            Ok(body) => {
                lock(&self.down).remove(&host_key);
                Ok(body)
            }
            Err(FetchError::Unreachable(why)) => {
                let mut down = lock(&self.down);
                if down.len() > 4096 {
                    down.retain(|_, (at, _)| at.elapsed() < FAILURE_RETRY);
                }
                down.insert(host_key, (Instant::now(), why.clone()));
                Err(why)
            }
            Err(FetchError::Other(why)) => Err(why),
        }
    }
}

pub(super) async fn http_request(
    url: &HttpUrl,
    post: Option<(&'static str, Vec<u8>)>,
    max: usize,
) -> Result<Vec<u8>, FetchError> {
    use http_body_util::{BodyExt, Limited};
    let authority = url.authority();
    let resp = crate::http::send(crate::http::Request {
        url,
        method: if post.is_some() { "POST" } else { "GET" },
        headers: &[],
        body: post,
        tls: None,
    })
    .await
    .map_err(|e| match e {
        crate::http::HttpError::Connect(m) => {
            FetchError::Unreachable(format!("cannot connect to {authority}: {m}"))
        }
        other => FetchError::Other(format!("{authority}: {other}")),
    })?;
    if resp.status() != hyper::StatusCode::OK {
        return Err(FetchError::Other(format!(
            "{authority} answered HTTP {}",
            resp.status()
        )));
    }
    let body = Limited::new(resp.into_body(), max)
        .collect()
        .await
        .map_err(|e| {
            FetchError::Other(format!("reading the answer from {authority} failed: {e}"))
        })?;
    Ok(body.to_bytes().to_vec())
}
